"""Our evidence predicate types (schemas/PREDICATES.md): frozen msgspec structs, strict.

Each predicate names its release (`release: {product, version}`); the decoder
refuses unknown fields, wrong types and values outside their enumerations.
`decode_predicate` maps a statement's predicate type to its struct; any other
type is generic evidence (None).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ledger.errors import EncodingError
from ledger.records.formats import is_sha256_digest, parse_offset_time

BASE = "https://evledger.dev"
CHANGE = f"{BASE}/change/v1"
BUILD = f"{BASE}/build/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
SLSA_PROVENANCE_V02 = "https://slsa.dev/provenance/v0.2"  # still emitted by builders, in Statement v0.1
TEST_RUN = f"{BASE}/test-run/v1"
SCAN = f"{BASE}/scan/v1"
VALIDATION = f"{BASE}/validation/v1"
APPROVAL = f"{BASE}/approval/v1"
EXCEPTION = f"{BASE}/exception/v1"
EXCEPTION_REVIEW = f"{BASE}/exception-review/v1"
DEPLOYMENT = f"{BASE}/deployment/v1"
ROLLBACK = f"{BASE}/rollback/v1"
RELEASE_SEAL = f"{BASE}/release-seal/v1"
GATE_DECISION = "https://slsa.dev/verification_summary/v1"

Digest = str  # "sha256:<64 hex>"
Time = str  # RFC 3339 UTC


class Release(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The release a piece of evidence belongs to."""

    product: str
    version: str


class ChangeSummary(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A plain-language summary a reviewer can read without translation."""

    what: str
    why: str
    risk: str
    mitigation: str


class Change(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A controlled change and its risk classification."""

    release: Release
    change_id: str
    summary: ChangeSummary
    risk_class: Literal["low", "medium", "high"]
    affects_intended_use: bool
    patient_facing_output: bool
    components: list[str]
    author: str


class Artifact(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A named artifact and its digest."""

    name: str
    digest: Digest


class Build(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Source, builder and the artifacts a build produced."""

    release: Release
    repository: str
    commit: str
    build_id: str
    builder: str
    artifacts: list[Artifact]
    dependency_lock_digest: str | None = None
    infrastructure_revision: str | None = None


TestSuite = Literal[
    "unit", "integration", "regression", "system", "security", "performance", "validation", "other"
]


class TestRun(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One suite's execution against the statement's subject."""

    release: Release
    suite: TestSuite
    command: str
    commit: str
    environment: str
    passed: int
    failed: int
    skipped: int
    result: Literal["passed", "failed"]
    report_digest: str | None = None
    report_location: str | None = None


class Findings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Open findings by severity."""

    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    info: int = 0


SarifLevel = Literal["none", "note", "warning", "error"]  # SARIF 2.1.0 §3.27.10
Severity = Literal["critical", "high", "medium", "low", "info"]


class SeverityMapping(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A severity chosen by the pipeline for a tool's SARIF level (`evledger attest sarif --severity-map`)."""

    tool: str
    level: SarifLevel
    severity: Severity


class Scan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A static-analysis, dependency or container scan."""

    release: Release
    tool: str
    tool_version: str
    findings: Findings
    report_digest: str | None = None
    severity_map: list[SeverityMapping] | None = None


class Dataset(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A versioned (golden) dataset."""

    name: str
    version: str
    digest: Digest


class Validation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A validation run against a dataset."""

    release: Release
    objective: str
    dataset: Dataset
    result: Literal["passed", "failed"]
    defects: list[str] = msgspec.field(default_factory=list)
    manual: bool = False
    manual_steps: list[str] = msgspec.field(default_factory=list)


class Approval(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A signed decision by the key's registered owner, in a role, with a meaning (21 CFR 11.50).

    `signed_at` is when the person signed (11.50(a)(2): the date and time of signing), which
    orders their decisions: a decision signed earlier never overrides a later one, however late
    it reaches the log (a decision counts as made no later than it was recorded). The ledger
    requires it of every approval it appends (ledger.rules.admission); approvals it recorded before
    it did have none, and count as made when they were recorded.
    """

    release: Release
    role: str
    meaning: Literal["review", "approval", "responsibility", "authorship"]
    decision: Literal["approved", "rejected"]
    artifact_digest: Digest
    entries: list[int]
    signed_at: Time | None = None
    comment: str | None = None


class PolicyException(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A time-boxed, justified bypass of one policy rule."""

    release: Release
    rule: str
    justification: str
    expires: Time
    review_due: Time


class ExceptionReview(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The retrospective review of an exception."""

    release: Release
    exception_entry: int
    outcome: Literal["accepted", "remediation-required"]
    comment: str


class Deployment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An artifact deployed to an environment."""

    release: Release
    environment: str
    artifact_digest: Digest
    started: Time
    finished: Time
    result: Literal["succeeded", "failed"]
    infrastructure_revision: str | None = None


class Rollback(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A return to an earlier artifact."""

    release: Release
    environment: str
    from_digest: Digest
    to_digest: Digest
    reason: str
    started: Time
    finished: Time
    result: Literal["succeeded", "failed"]


class Seal(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Closes a release's record: the count and head of its chain before the seal."""

    release: Release
    count: int
    head: str


class Verifier(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """VSA verifier identity."""

    id: str


class PolicyRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """VSA policy reference: where the policy is and its digest."""

    uri: str
    digest: dict[str, str]


class InputAttestation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """VSA input: an entry the decision considered."""

    uri: str
    digest: dict[str, str]


GATE_EXTENSION = f"{BASE}/gate-decision/v1"
VERIFIER_BASE = f"{BASE}/verifier/"
SLSA_VERSION = "1.0"
FAILED_LEVEL = "FAILED"


class GateDetails(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the ledger's gate adds to a VSA, under the URI-named key GATE_EXTENSION."""

    release: Release
    environment: str
    decision: Literal["allow", "deny"]
    findings: list[dict[str, Any]] = msgspec.field(default_factory=list)


class GateDecision(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """A gate decision as a SLSA Verification Summary Attestation v1, signed by the ledger key.

    The VSA v1 parsing rules (https://slsa.dev/spec/v1.0/verification_summary#parsing-rules):
    "Producers MAY add extension fields using field names that are URIs." The gate's own
    fields (release, environment, decision, findings) are therefore under the key
    `https://evledger.dev/gate-decision/v1` (GATE_EXTENSION); `verifier.id` is a URI
    (`https://evledger.dev/verifier/<ledger key name>`); a deny is `verificationResult`
    FAILED with `verifiedLevels` ["FAILED"] ("the highest level of each track verified ...,
    or "FAILED" if policy verification failed"). Decisions recorded before (LegacyGateDecision,
    their fields at the top level) are read into this type too.
    """

    verifier: Verifier
    time_verified: Time
    resource_uri: str
    policy: PolicyRef
    input_attestations: list[InputAttestation]
    verification_result: Literal["PASSED", "FAILED"]
    verified_levels: list[str]
    gate: GateDetails = msgspec.field(name=GATE_EXTENSION)
    slsa_version: str | None = None

    @property
    def release(self) -> Release:
        """The release decided on."""
        return self.gate.release

    @property
    def environment(self) -> str:
        """The environment the release was evaluated for."""
        return self.gate.environment

    @property
    def decision(self) -> Literal["allow", "deny"]:
        """`allow` or `deny`."""
        return self.gate.decision

    @property
    def findings(self) -> list[dict[str, Any]]:
        """The compliance findings the decision follows from."""
        return self.gate.findings


class LegacyGateDecision(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """A gate decision as the ledger wrote it before issue #12: its own fields at the top level.

    Only read (they stay in logs): `verifier.id` the ledger key's name, `verifiedLevels`
    empty for a deny. `upgrade` reads it as a GateDecision, values unchanged.
    """

    verifier: Verifier
    time_verified: Time
    resource_uri: str
    policy: PolicyRef
    input_attestations: list[InputAttestation]
    verification_result: Literal["PASSED", "FAILED"]
    verified_levels: list[str]
    release: Release
    environment: str
    decision: Literal["allow", "deny"]
    findings: list[dict[str, Any]] = msgspec.field(default_factory=list)

    def upgrade(self) -> GateDecision:
        """The same decision as a GateDecision (the values as signed, none rewritten)."""
        return GateDecision(
            self.verifier, self.time_verified, self.resource_uri, self.policy, self.input_attestations,
            self.verification_result, self.verified_levels,
            GateDetails(self.release, self.environment, self.decision, self.findings),
        )  # fmt: skip


def decode_gate(predicate: dict[str, Any]) -> GateDecision | None:
    """Our gate decision in a VSA predicate, in either shape; None for someone else's VSA.

    A predicate with our extension key (GATE_EXTENSION) must be a valid GateDecision
    (EncodingError otherwise). One without it is one of ours only in the legacy shape,
    exactly; any other VSA (the spec's example, with `dependencyLevels`, say) is generic
    evidence about its subjects.
    """
    if GATE_EXTENSION not in predicate:
        try:
            legacy = msgspec.convert(predicate, LegacyGateDecision)
        except msgspec.ValidationError:
            return None
        return legacy.upgrade()
    try:
        value = msgspec.convert(predicate, GateDecision)
    except msgspec.ValidationError as exc:
        raise EncodingError(f"gate-decision predicate is invalid: {exc}") from exc
    if (value.decision == "allow") != (value.verification_result == "PASSED"):
        raise EncodingError("a gate decision's verificationResult must be PASSED for allow, FAILED for deny")
    if value.verification_result == "FAILED" and value.verified_levels != [FAILED_LEVEL]:
        raise EncodingError(f"a FAILED gate decision's verifiedLevels must be [{FAILED_LEVEL!r}]")
    return value


def gate_release(predicate: dict[str, Any]) -> object:
    """The raw `release` a VSA predicate names: under our extension key, else at the top level."""
    extension = predicate.get(GATE_EXTENSION)
    if isinstance(extension, dict) and "release" in extension:
        return extension["release"]
    return predicate.get("release")


Predicate = (
    Change | Build | TestRun | Scan | Validation | Approval | PolicyException | ExceptionReview
    | Deployment | Rollback | Seal | GateDecision
)  # fmt: skip

PREDICATE_TYPES: dict[str, type[Any]] = {
    CHANGE: Change,
    BUILD: Build,
    TEST_RUN: TestRun,
    SCAN: Scan,
    VALIDATION: Validation,
    APPROVAL: Approval,
    EXCEPTION: PolicyException,
    EXCEPTION_REVIEW: ExceptionReview,
    DEPLOYMENT: Deployment,
    ROLLBACK: Rollback,
    RELEASE_SEAL: Seal,
    GATE_DECISION: GateDecision,
}
KIND_NAMES: dict[str, str] = {
    CHANGE: "change",
    BUILD: "build",
    SLSA_PROVENANCE: "build",
    SLSA_PROVENANCE_V02: "build",
    TEST_RUN: "test-run",
    SCAN: "scan",
    VALIDATION: "validation",
    APPROVAL: "approval",
    EXCEPTION: "exception",
    EXCEPTION_REVIEW: "exception-review",
    DEPLOYMENT: "deployment",
    ROLLBACK: "rollback",
    RELEASE_SEAL: "release-seal",
    GATE_DECISION: "gate-decision",
}


def unknown_own_type(predicate_type: str) -> bool:
    """Whether `predicate_type` is under our namespace (BASE) but not one of our predicates: a typo.

    Any other predicate type is generic evidence about its subjects; one of ours that does not
    exist would be too, forever, so admission refuses it instead (issue #12).
    """
    return predicate_type.startswith(f"{BASE}/") and predicate_type not in PREDICATE_TYPES


def kind_name(predicate_type: str) -> str:
    """The short name of a predicate type (`evidence` for generic ones)."""
    return KIND_NAMES.get(predicate_type, "evidence")


def decode_predicate(predicate_type: str, predicate: dict[str, Any]) -> Predicate | None:
    """Validate and convert one of our predicates; None for generic evidence (and SLSA provenance).

    A VSA is ours only in our gate's shape (`decode_gate`); any other is generic evidence.
    """
    cls = PREDICATE_TYPES.get(predicate_type)
    if cls is None:
        return None
    if cls is GateDecision:
        gate = decode_gate(predicate)
        if gate is not None:
            _check_values(gate)
        return gate
    try:
        value: Predicate = msgspec.convert(predicate, cls)
    except msgspec.ValidationError as exc:
        raise EncodingError(f"{kind_name(predicate_type)} predicate is invalid: {exc}") from exc
    _check_values(value)
    return value


_DIGEST_FIELDS = ("artifact_digest", "from_digest", "to_digest", "dependency_lock_digest", "report_digest")
_TIME_FIELDS = ("expires", "review_due", "started", "finished", "time_verified", "signed_at")


def _check_formats(value: Predicate) -> None:
    """Digests are `sha256:<64 hex>` and times RFC 3339 with an offset (schemas/PREDICATES.md)."""
    digests = [getattr(value, name, None) for name in _DIGEST_FIELDS]
    digests += [a.digest for a in getattr(value, "artifacts", [])]
    if isinstance(value, Validation):
        digests.append(value.dataset.digest)
    for digest in digests:
        if digest is not None and not is_sha256_digest(digest):
            raise EncodingError(f"digest {digest!r} is not sha256:<64 lowercase hex>")
    for name in _TIME_FIELDS:
        moment = getattr(value, name, None)
        if moment is None:
            continue
        if parse_offset_time(moment) is None:
            raise EncodingError(f"{name} {moment!r} is not an RFC 3339 date-time with an offset")


def _check_values(value: Predicate) -> None:
    """Rules a schema type cannot say: formats, non-negative counts, required text, manual steps."""
    _check_formats(value)
    if isinstance(value, TestRun) and min(value.passed, value.failed, value.skipped) < 0:
        raise EncodingError("test-run counts must be >= 0")
    if isinstance(value, Scan) and min(msgspec.structs.astuple(value.findings)) < 0:
        raise EncodingError("scan findings must be >= 0")
    if isinstance(value, PolicyException) and not value.justification.strip():
        raise EncodingError("an exception needs a justification")
    if isinstance(value, Validation) and value.manual and not value.manual_steps:
        raise EncodingError("a manual validation must list its steps")
    if isinstance(value, Approval) and not value.role.strip():
        raise EncodingError("an approval must name the role it is given in")
