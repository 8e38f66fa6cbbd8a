"""Release policies (schemas/POLICY.md, schemas/policy.example.toml): the rules a release is held to. Pure.

A policy is written in TOML by the QA lead, checked strictly here (unknown
keys, wrong types, unknown test suites, rules and roles are refused with the
key named), and published into the log as a `policy.published` admin record
(docs/formats.md#envelopes) that carries the whole policy and its digest. Every
compliance result and gate decision names that entry and digest, so an
inspector re-evaluates against exactly the policy that was in force.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from typing import Annotated, Literal

import msgspec

from ledger.errors import EncodingError
from ledger.records.predicates import RISK_CLASSES, RequirementType, RiskClass, TestSuite

# Stable rule ids: findings, exceptions (`predicate.rule`) and allowed_rules use them.
CHANGE_CLASSIFIED = "change.classified"
CHANGE_COMPONENT_RISK = "change.component-risk"
TESTS_REQUIRED = "tests.required-suites"
TESTS_PASSED = "tests.passed"
VALIDATION_REQUIRED = "validation.required"
REQUIREMENTS_COVERAGE = "requirements.coverage"
ANOMALIES_DISPOSITIONED = "anomalies.dispositioned"
SBOM_REQUIRED = "sbom.required"
APPROVALS_REQUIRED = "approvals.required-roles"
APPROVALS_REJECTED = "approvals.rejected"
APPROVALS_AFTER_EVIDENCE = "approvals.after-evidence"
APPROVALS_ENTRIES_IN_RELEASE = "approvals.entries-in-release"
SOD_NOT_AUTHOR = "sod.approver-not-author"
SOD_ONE_ROLE = "sod.one-person-one-role"
FINDINGS_MAX_OPEN = "findings.max-open"
CONTINUITY = "continuity.artifact"
DEPLOY_GATE_ALLOW = "deployments.gate-allow"
DEPLOY_AFTER_EVIDENCE = "deployments.after-evidence"
EXCEPTION_VALID = "exceptions.valid"
EXCEPTION_REVIEW = "exceptions.review-due"

RULES: dict[str, str] = {
    CHANGE_CLASSIFIED: "the release records a change with its risk class (it selects the tier)",
    CHANGE_COMPONENT_RISK: "the release's risk class is at least the minimum of every component it changes",
    TESTS_REQUIRED: "every suite the tier requires ran on the candidate artifact",
    TESTS_PASSED: "every test run on the candidate artifact passed",
    VALIDATION_REQUIRED: "the candidate artifact passed validation (when the tier requires it)",
    REQUIREMENTS_COVERAGE: "every requirement the tier selects has a passing test on the candidate artifact",
    ANOMALIES_DISPOSITIONED: "a failed or skipped verification of a requirement has a later anomaly record",
    SBOM_REQUIRED: "an SBOM of the candidate artifact is recorded (when the tier requires one)",
    APPROVALS_REQUIRED: "every role the tier requires approved the candidate artifact",
    APPROVALS_REJECTED: "no standing rejection of the candidate artifact",
    APPROVALS_AFTER_EVIDENCE: "approvals come after the evidence they approve",
    APPROVALS_ENTRIES_IN_RELEASE: "every entry an approval lists is an entry of its release",
    SOD_NOT_AUTHOR: "no approver is an author of the change",
    SOD_ONE_ROLE: "no one person fills two required approval roles",
    FINDINGS_MAX_OPEN: "open scan findings stay within the tier's limits",
    CONTINUITY: "what is deployed is exactly the artifact built, tested, validated and approved",
    DEPLOY_GATE_ALLOW: "a deployment follows a gate decision allowing its digest into its environment",
    DEPLOY_AFTER_EVIDENCE: "a deployment does not start before the evidence of its digest was recorded",
    EXCEPTION_VALID: "an exception is justified, allowed, time-boxed and in force when it is relied on",
    EXCEPTION_REVIEW: "every exception is reviewed by its review date",
}
# Rules an exception can never bypass: the tier itself, and the exception process. Every other rule,
# the deployment and approval rules included, may be bypassed only if the policy lists it in
# `[exceptions] allowed_rules` (schemas/POLICY.md, "Exceptions").
NOT_WAIVABLE = frozenset({CHANGE_CLASSIFIED, EXCEPTION_VALID, EXCEPTION_REVIEW})

ROLE_PATTERN = r"^[a-z][a-z0-9-]{0,63}$"  # key roles too (ledger.records.admin): one spelling of a role
Text = Annotated[str, msgspec.Meta(pattern=r"\S", max_length=200)]
Role = Annotated[str, msgspec.Meta(pattern=ROLE_PATTERN)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Days = Annotated[int, msgspec.Meta(ge=1, le=3650)]
DaysOrZero = Annotated[int, msgspec.Meta(ge=0, le=3650)]


def _no_duplicates(values: list[str], key: str) -> None:
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        raise ValueError(f"{key} lists {seen[0]!r} twice")


class FindingLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The most open scan findings allowed, per severity (info findings are never limited)."""

    critical: Count
    high: Count
    medium: Count
    low: Count


# A requirement's risk class as the coverage setting selects it: a class, or `unclassified` (none given).
CoverageClass = Literal["low", "medium", "high", "unclassified"]
UNCLASSIFIED = "unclassified"


class Coverage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which requirements must each have a passing test on the candidate (IEC 62304 §5.7, §7.3.1).

    A requirement of the baseline in force is selected when its type is one of `types` and its
    risk class one of `risk_classes` (`unclassified`: the baseline gives it none). Both keys are
    required; an empty list selects nothing, so the tier then requires no coverage.
    """

    types: list[RequirementType]
    risk_classes: list[CoverageClass]

    def __post_init__(self) -> None:
        """Refuse duplicate types or classes."""
        _no_duplicates(list(self.types), "types")
        _no_duplicates(list(self.risk_classes), "risk_classes")

    def selects(self, requirement_type: str, risk_class: str | None) -> bool:
        """Whether a requirement of this type and risk class (None: unclassified) must be covered."""
        chosen = UNCLASSIFIED if risk_class is None else risk_class
        return requirement_type in self.types and chosen in self.risk_classes

    def describe(self) -> str:
        """The selection in words (`software, risk-control requirements of risk medium, high`)."""
        return f"{', '.join(self.types)} requirements of risk {', '.join(self.risk_classes)}"


class Tier(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a change of one risk class needs before it may be released.

    `require_sbom`, `coverage` and `require_anomaly_disposition` may be left out (then the tier
    requires no SBOM, no requirement coverage, no anomaly records): policies published before
    they existed have none, and are encoded without them, so their digests stay as signed.
    """

    required_suites: list[TestSuite]
    required_approval_roles: list[Role]
    require_validation: bool
    max_open_findings: FindingLimits | None = None  # None: scans are not required
    require_sbom: bool | msgspec.UnsetType = msgspec.UNSET
    coverage: Coverage | msgspec.UnsetType = msgspec.UNSET
    require_anomaly_disposition: bool | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        """Refuse duplicate suites or roles (a duplicate is almost always a typo for another one)."""
        _no_duplicates(list(self.required_suites), "required_suites")
        _no_duplicates(self.required_approval_roles, "required_approval_roles")

    def requires_sbom(self) -> bool:
        """Whether the candidate needs an SBOM (IEC 62304 §8.1.2 SOUP; rule sbom.required)."""
        return self.require_sbom is True

    def coverage_required(self) -> Coverage | None:
        """The requirements that need a passing test on the candidate; None when the tier selects none."""
        if isinstance(self.coverage, msgspec.UnsetType) or not self.coverage.types:
            return None
        return self.coverage if self.coverage.risk_classes else None

    def requires_anomaly_disposition(self) -> bool:
        """Whether every failed or skipped verification of a requirement needs an anomaly record (§5.8)."""
        return self.require_anomaly_disposition is True


class Tiers(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One tier per risk class; all three must be written out."""

    low: Tier
    medium: Tier
    high: Tier


class SeparationOfDuties(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who may approve."""

    approver_not_author: bool
    one_person_one_role: bool


class ExceptionRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which rules a time-boxed exception may bypass, for how long, and when it must be reviewed."""

    allowed_rules: list[str]
    max_duration_days: Days
    review_within_days: DaysOrZero

    def __post_init__(self) -> None:
        """Refuse unknown rule ids and the rules no exception may bypass."""
        _no_duplicates(self.allowed_rules, "allowed_rules")
        for rule in self.allowed_rules:
            if rule not in RULES:
                raise ValueError(f"allowed_rules names unknown rule {rule!r} (known: {', '.join(RULES)})")
            if rule in NOT_WAIVABLE:
                raise ValueError(f"allowed_rules: rule {rule!r} can never be bypassed by an exception")


class Continuity(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Environments where the deployed digest must be the one tested, validated and approved."""

    environments: list[Text]

    def __post_init__(self) -> None:
        """Refuse duplicate environments."""
        _no_duplicates(self.environments, "environments")


class ApprovalRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How approvals relate to the evidence they approve.

    `entries_in_release` may be left out (off): policies published before it existed have
    none, and are encoded without it, so their digests stay as they were signed.
    """

    after_evidence: bool
    entries_in_release: bool | msgspec.UnsetType = msgspec.UNSET

    def checks_entries(self) -> bool:
        """Whether every entry an approval lists must be an entry of its release."""
        return self.entries_in_release is True


class DeploymentRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a deployment needs before it (the optional `[deployments]` section; both keys required in it).

    `require_gate_allow`: environments whose deployments need an earlier gate decision allowing
    the same digest into the same environment; `not_before_evidence`: a deployment may not
    start before the evidence of its digest was recorded.
    """

    require_gate_allow: list[Text]
    not_before_evidence: bool

    def __post_init__(self) -> None:
        """Refuse duplicate environments."""
        _no_duplicates(self.require_gate_allow, "require_gate_allow")


ComponentName = Annotated[str, msgspec.Meta(pattern=r"\S", max_length=200)]


def component_key(name: str) -> str:
    """How component names are compared: ignoring case and runs of white space (`Result  Calculator`)."""
    return " ".join(name.split()).casefold()


class Classification(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The least risk class a change touching each component must carry (rule change.component-risk).

    IEC 62304 §7.4.1 asks that the software contribution of a change to hazards be analysed;
    the policy writes the outcome of that analysis down once per component. `components` maps
    a component name, as change records list it (compared ignoring case and extra white
    space), to `low`, `medium` or `high`.
    """

    components: dict[ComponentName, RiskClass]

    def __post_init__(self) -> None:
        """Refuse two names that are the same component (they could give it two classes)."""
        seen: dict[str, str] = {}
        for name in self.components:
            key = component_key(name)
            if key in seen:
                raise ValueError(f"components {seen[key]!r} and {name!r} name the same component")
            seen[key] = name

    def minimum(self, component: str) -> RiskClass | None:
        """The least risk class a change touching `component` must carry (None: the policy sets none)."""
        key = component_key(component)
        return next((risk for name, risk in self.components.items() if component_key(name) == key), None)


def _check_component_classes(data: object) -> None:
    """Name the component whose class is not a risk class (msgspec's message would not name the key)."""
    section = data.get("classification") if isinstance(data, dict) else None
    components = section.get("components") if isinstance(section, dict) else None
    for name, risk in components.items() if isinstance(components, dict) else ():
        if risk not in RISK_CLASSES:
            raise EncodingError(
                f"policy is invalid: key classification.components.{name}: {risk!r} is not a risk class "
                f"(one of {', '.join(RISK_CLASSES)})"
            )


# Who may seal before any policy is published, and under a policy without [sealing] (every policy
# published before the section existed: its digest, and so its record, must stay as signed).
DEFAULT_SEAL_ROLES = frozenset({"release-manager"})


class Sealing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who may seal a release (close its record): a key holding one of these roles."""

    roles: list[Role]

    def __post_init__(self) -> None:
        """At least one role, none twice: a policy nobody can seal under would leave every release open."""
        if not self.roles:
            raise ValueError("sealing.roles must name at least one role")
        _no_duplicates(self.roles, "roles")


class Policy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A complete release policy (schemas/POLICY.md); every section and key is required but a few.

    `description` may be left out, and so may `sealing` (then only keys with role
    release-manager may seal), `deployments` and `approvals.entries_in_release` (then those
    rules are off), `classification` (then no component sets a least risk class) and a tier's
    `require_sbom`, `coverage` and `require_anomaly_disposition` (then the tier requires none of
    them). A policy without them is encoded without them, so a policy published before they
    existed keeps the digest it was published under, and its meaning.
    """

    name: Text
    version: Text
    tiers: Tiers
    separation_of_duties: SeparationOfDuties
    exceptions: ExceptionRules
    continuity: Continuity
    approvals: ApprovalRules
    sealing: Sealing | msgspec.UnsetType = msgspec.UNSET
    deployments: DeploymentRules | msgspec.UnsetType = msgspec.UNSET
    classification: Classification | msgspec.UnsetType = msgspec.UNSET
    description: str = ""

    def __post_init__(self) -> None:
        """Refuse a gate requirement for an environment no gate may be asked about (not in continuity)."""
        for environment in self.gated_environments():
            if environment not in self.continuity.environments:
                raise ValueError(
                    f"deployments.require_gate_allow names {environment!r}, which continuity.environments "
                    "does not list: a gate can only be asked about (and deployments there are only "
                    "checked in) the continuity environments"
                )

    def gated_environments(self) -> list[str]:
        """The environments whose deployments need an earlier gate allow (none without `[deployments]`)."""
        if isinstance(self.deployments, msgspec.UnsetType):
            return []
        return list(self.deployments.require_gate_allow)

    def deployments_after_evidence(self) -> bool:
        """Whether a deployment may not start before the evidence of its digest was recorded."""
        return not isinstance(self.deployments, msgspec.UnsetType) and self.deployments.not_before_evidence

    def names_environment(self, environment: str) -> bool:
        """Whether a gate may be asked about `environment`: one the policy names (its continuity list).

        A policy that names no environment leaves the gate open to any (issue #12 asks to refuse
        a gate request for an environment the policy does not name: a typo such as `prod` for
        `production` would otherwise be allowed without the checks meant for it).
        """
        environments = self.continuity.environments
        return not environments or environment in environments

    def component_minimum(self, component: str) -> RiskClass | None:
        """The least risk class a change touching `component` must carry (None without one)."""
        if isinstance(self.classification, msgspec.UnsetType):
            return None
        return self.classification.minimum(component)

    def seal_roles(self) -> frozenset[str]:
        """The roles whose keys may seal a release under this policy."""
        if isinstance(self.sealing, msgspec.UnsetType):
            return DEFAULT_SEAL_ROLES
        return frozenset(self.sealing.roles)

    def rules_in_force(self) -> tuple[str, ...]:
        """The rule ids (keys of `RULES`, in its order) this policy applies; the others it switches off.

        A release record lists every rule in force with its result, and names the rest as off,
        so that a rule without findings reads as met only when the policy applied it. Like
        findings.max-open, the rules a tier or `[classification]` sets up (sbom.required,
        requirements.coverage, anomalies.dispositioned, change.component-risk) are always in
        force: a policy without their settings requires nothing of them, so they are met.
        """
        sod = self.separation_of_duties
        off = {
            SOD_NOT_AUTHOR: not sod.approver_not_author,
            SOD_ONE_ROLE: not sod.one_person_one_role,
            APPROVALS_AFTER_EVIDENCE: not self.approvals.after_evidence,
            APPROVALS_ENTRIES_IN_RELEASE: not self.approvals.checks_entries(),
            DEPLOY_GATE_ALLOW: not self.gated_environments(),
            DEPLOY_AFTER_EVIDENCE: not self.deployments_after_evidence(),
        }
        return tuple(rule for rule in RULES if not off.get(rule, False))

    def tier(self, risk_class: RiskClass) -> Tier:
        """The tier for a change's risk class."""
        tier: Tier = getattr(self.tiers, risk_class)
        return tier


_canonical = msgspec.json.Encoder(order="sorted")
_AT = re.compile(r"^(?P<message>.*) - at `\$\.?(?P<key>.*)`$", re.DOTALL)
_KEY_IN = re.compile(r"^(?P<message>.*) - at `key` in `\$\.?(?P<key>.*)`$", re.DOTALL)


_FIELD = re.compile(r"^Object (?P<what>contains unknown|missing required) field `(?P<field>[^`]*)`$")


def _explain(exc: msgspec.ValidationError) -> str:
    """The validation message with its JSON path written as the TOML key (`tiers.high.required_suites[2]`)."""
    name_of = _KEY_IN.match(str(exc))
    if name_of is not None:  # a table's key (a component name) is not what its type allows
        return f"key {name_of['key']} (a name in it): {name_of['message']}"
    match = _AT.match(str(exc))
    message, key = (match["message"], match["key"]) if match else (str(exc), "")
    field = _FIELD.match(message)
    if field is not None:
        name = f"{key}.{field['field']}" if key else field["field"]
        return f"unknown key {name}" if field["what"] == "contains unknown" else f"missing key {name}"
    return f"key {key}: {message}" if key else message


def policy_from_data(data: object) -> Policy:
    """Convert parsed TOML or JSON data to a Policy; EncodingError naming the offending key.

    Precondition: none; any value is checked (unknown keys, types, suites, rules, roles, ranges).
    """
    _check_component_classes(data)
    try:
        return msgspec.convert(data, Policy)
    except msgspec.ValidationError as exc:
        raise EncodingError(f"policy is invalid: {_explain(exc)}") from exc


def load_policy_toml(text: str) -> Policy:
    """Parse a policy file (TOML, as schemas/policy.example.toml); EncodingError naming the bad key.

    Precondition: `text` is the file's decoded text (the caller reads and decodes it as UTF-8).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EncodingError(f"policy file is not valid TOML: {exc}") from exc
    return policy_from_data(data)


def encode_policy(policy: Policy) -> bytes:
    """The canonical JSON of a policy: every key written out, keys sorted, no whitespace, no floats."""
    return _canonical.encode(policy)


def policy_digest(policy: Policy) -> str:
    """`sha256:<hex>` of the canonical JSON: the policy's identity in results and gate decisions."""
    return "sha256:" + hashlib.sha256(encode_policy(policy)).hexdigest()


def describe_policy(policy: Policy) -> list[str]:
    """The policy in plain lines, tier by tier and rule by rule, for `evledger policy check`."""
    lines = [f"policy {policy.name} version {policy.version} ({policy_digest(policy)})"]
    for risk in RISK_CLASSES:
        tier = policy.tier(risk)
        limits = tier.max_open_findings
        findings = (
            "no scan required"
            if limits is None
            else f"open findings at most critical {limits.critical}, high {limits.high}, "
            f"medium {limits.medium}, low {limits.low}"
        )
        lines += [
            f"tier {risk}:",
            f"  test suites:     {', '.join(tier.required_suites) or '(none)'}",
            f"  approval roles:  {', '.join(tier.required_approval_roles) or '(none)'}",
            f"  validation:      {'required' if tier.require_validation else 'not required'}",
            f"  findings:        {findings}",
            f"  SBOM:            {'required' if tier.requires_sbom() else 'not required'}",
            f"  coverage:        {_coverage(tier)}",
            "  anomalies:       "
            + (
                "each failed or skipped verification of a requirement needs an anomaly record"
                if tier.requires_anomaly_disposition()
                else "no anomaly record required"
            ),
        ]
    sod, exc = policy.separation_of_duties, policy.exceptions
    in_force = policy.rules_in_force()
    lines += [
        (
            f"separation of duties: approver not author {_yes(sod.approver_not_author)}, "
            f"one person one role {_yes(sod.one_person_one_role)}"
        ),
        (
            f"exceptions: may bypass {', '.join(exc.allowed_rules) or '(no rule)'}; at most "
            f"{exc.max_duration_days} days; review due within {exc.review_within_days} days of expiry"
        ),
        f"continuity: deployed digest checked in {', '.join(policy.continuity.environments) or '(none)'}",
        f"approvals after evidence: {_yes(policy.approvals.after_evidence)}",
        f"approvals list only entries of their release: {_yes(policy.approvals.checks_entries())}",
        "deployments need an earlier gate allow in: " + (", ".join(policy.gated_environments()) or "(none)"),
        f"deployments start after the evidence of their digest: {_yes(policy.deployments_after_evidence())}",
        f"components' least risk class: {_classification(policy)}",
        f"sealing: by a key with role {' or '.join(sorted(policy.seal_roles()))}"
        + (" (the default: the policy has no [sealing])" if policy.sealing is msgspec.UNSET else ""),
        "rules:",
        *(f"  {rule}: {text}" + ("" if rule in in_force else " (off)") for rule, text in RULES.items()),
    ]
    return lines


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _coverage(tier: Tier) -> str:
    coverage = tier.coverage_required()
    return "not required" if coverage is None else f"a passing test of each of the {coverage.describe()}"


def _classification(policy: Policy) -> str:
    if isinstance(policy.classification, msgspec.UnsetType) or not policy.classification.components:
        return "(none)"
    components = policy.classification.components
    return ", ".join(f"{name} {components[name]}" for name in sorted(components, key=component_key))
