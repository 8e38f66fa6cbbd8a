"""Our evidence predicate types (schemas/PREDICATES.md): frozen msgspec structs, strict.

Each predicate names its release (`release: {product, version}`); the decoder
refuses unknown fields, wrong types and values outside their enumerations.
`decode_predicate` maps a statement's predicate type to its struct; any other
type is generic evidence (None).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import msgspec

from ledger.errors import EncodingError
from ledger.records.formats import is_sha256_digest, parse_offset_time
from ledger.records.vex import VexStatement

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
SBOM = f"{BASE}/sbom/v1"
VEX = f"{BASE}/vex/v1"
REQUIREMENTS = f"{BASE}/requirements/v1"
ANOMALY = f"{BASE}/anomaly/v1"
GATE_DECISION = "https://slsa.dev/verification_summary/v1"

Digest = str  # "sha256:<64 hex>"
RiskClass = Literal["low", "medium", "high"]  # a change's risk, and the risk class of a requirement
RISK_CLASSES: tuple[RiskClass, ...] = get_args(RiskClass)  # lowest first
RequirementType = Literal["system", "software", "risk-control"]  # IEC 62304 §5.2, §7.2
REQUIREMENT_TYPES: tuple[RequirementType, ...] = get_args(RequirementType)
MAX_ATTACHMENT_NAME = 256
Time = str  # RFC 3339 UTC


class Release(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The release a piece of evidence belongs to."""

    product: str
    version: str


class Attachment(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """An evidence file a statement binds by its SHA-256, kept in the ledger (`PUT /v1/blobs/…`).

    `name` is the file's name as the pipeline knew it (a label for people: the digest is what
    binds), `size` its length in bytes, `media_type` its IANA media type when known.
    """

    name: str
    digest: Digest
    size: int
    media_type: str | None = None


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
    risk_class: RiskClass
    affects_intended_use: bool
    patient_facing_output: bool
    components: list[str]
    author: str
    attachments: list[Attachment] | None = None


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
    attachments: list[Attachment] | None = None


class RequirementResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The test cases of one report that verify one requirement, by outcome (IEC 62304 §5.7, §7.3.1).

    `failing_tests` names the failed or skipped ones (`classname::name` for
    JUnit): at most MAX_FAILING_TESTS, sorted, each at most
    MAX_TEST_NAME_CHARS (a longer name is cut and ends in U+2026, and a
    control character shows as U+FFFD); the counts are exact
    (ledger.records.requirements.requirement_results). A failed test is an
    anomaly to resolve or to list as a known residual anomaly (§5.8.2, §5.8.3).
    """

    requirement: str
    passed: int
    failed: int
    skipped: int
    failing_tests: list[str] = msgspec.field(default_factory=list)


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
    requirements: list[RequirementResult] | None = None  # per requirement the report's cases verify
    attachments: list[Attachment] | None = None


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
    attachments: list[Attachment] | None = None


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
    attachments: list[Attachment] | None = None


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
    attachments: list[Attachment] | None = None


class PolicyException(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A time-boxed, justified bypass of one policy rule."""

    release: Release
    rule: str
    justification: str
    expires: Time
    review_due: Time
    attachments: list[Attachment] | None = None


class ExceptionReview(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The retrospective review of an exception."""

    release: Release
    exception_entry: int
    outcome: Literal["accepted", "remediation-required"]
    comment: str
    attachments: list[Attachment] | None = None


class Deployment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An artifact deployed to an environment."""

    release: Release
    environment: str
    artifact_digest: Digest
    started: Time
    finished: Time
    result: Literal["succeeded", "failed"]
    infrastructure_revision: str | None = None
    attachments: list[Attachment] | None = None


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
    attachments: list[Attachment] | None = None


class SoupGaps(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How many SOUP items lack a version, a supplier, a licence: what a reviewer must chase."""

    version: int
    supplier: int
    licence: int


class Sbom(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A software bill of materials of the subject, and its SOUP list (IEC 62304 §8.1.2; FD&C §524B).

    The SBOM file is kept as the tool wrote it (`sbom_digest`), with the SOUP list read from it
    (`soup_list_digest`: ledger.records.sbom.encode_soup_list, canonical JSON), both stored as
    evidence files: a real SBOM lists far more components than an entry can hold.
    """

    release: Release
    format: Literal["CycloneDX", "SPDX"]
    spec_version: str
    tools: list[str]
    components: int
    gaps: SoupGaps
    sbom_digest: Digest
    soup_list_digest: Digest
    attachments: list[Attachment] | None = None


class Vex(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Vulnerability dispositions for the release's components (OpenVEX or CycloneDX VEX).

    `statements` are read from the document (ledger.records.vex.parse_vex), which is kept as an
    evidence file (`vex_digest`).
    """

    release: Release
    format: Literal["OpenVEX", "CycloneDX"]
    spec_version: str
    statements: list[VexStatement]
    vex_digest: Digest
    author: str | None = None
    attachments: list[Attachment] | None = None


class RequirementGroup(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ids of a baseline's requirements of one type and risk class (None: the baseline gives none)."""

    type: RequirementType
    risk_class: RiskClass | None
    ids: list[str]


class Requirements(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A requirements baseline of the release (IEC 62304 §5.2; risk controls §7.2), kept as files.

    `groups` lists every requirement id by type and risk class, which is all the policy's rules
    need, so that a release's compliance follows from its entries alone. `baseline_digest` is
    the baseline in its canonical form (ledger.records.requirements `encode_baseline`): every
    requirement with its title, type, risk class and the risk controls it implements, for the
    traceability matrix; `source_digest` the file as the team wrote it. Both are evidence files.
    A newer baseline of the same release replaces an older one.
    """

    release: Release
    document_id: str
    document_version: str
    groups: list[RequirementGroup]
    baseline_digest: Digest
    source_digest: Digest
    attachments: list[Attachment] | None = None


class Anomaly(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A known residual anomaly, evaluated and justified before release (IEC 62304 §5.8.2, §5.8.3).

    It dispositions the failed or skipped verification of `requirements` (their ids in the
    release's baseline; `tests` names the test cases, `classname::name`, when known):
    `evaluation` says how the anomaly was evaluated (that it does not contribute to an
    unacceptable risk), `justification` why the release may go with it. The signer is the person
    who dispositions it.
    """

    release: Release
    anomaly_id: str
    description: str
    requirements: list[str]
    evaluation: str
    justification: str
    tests: list[str] = msgspec.field(default_factory=list)
    attachments: list[Attachment] | None = None


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
    | Deployment | Rollback | Sbom | Vex | Requirements | Anomaly | Seal | GateDecision
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
    SBOM: Sbom,
    VEX: Vex,
    REQUIREMENTS: Requirements,
    ANOMALY: Anomaly,
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
    SBOM: "sbom",
    VEX: "vex",
    REQUIREMENTS: "requirements",
    ANOMALY: "anomaly",
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


# Evidence files a predicate names by digest, and what each is (ledger.records.attachments).
FILE_FIELDS = {
    "report_digest": "report",
    "sbom_digest": "SBOM",
    "soup_list_digest": "SOUP list",
    "vex_digest": "VEX document",
    "baseline_digest": "requirements baseline",
    "source_digest": "requirements file",
}
_DIGEST_FIELDS = ("artifact_digest", "from_digest", "to_digest", "dependency_lock_digest", *FILE_FIELDS)
_TIME_FIELDS = ("expires", "review_due", "started", "finished", "time_verified", "signed_at")


def _check_formats(value: Predicate) -> None:
    """Digests are `sha256:<64 hex>` and times RFC 3339 with an offset (schemas/PREDICATES.md)."""
    digests = [getattr(value, name, None) for name in _DIGEST_FIELDS]
    digests += [a.digest for a in getattr(value, "artifacts", [])]
    digests += [a.digest for a in getattr(value, "attachments", None) or []]
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
    _check_attachments(value)
    if isinstance(value, TestRun):
        _check_test_run(value)
    if isinstance(value, Scan) and min(msgspec.structs.astuple(value.findings)) < 0:
        raise EncodingError("scan findings must be >= 0")
    if isinstance(value, PolicyException) and not value.justification.strip():
        raise EncodingError("an exception needs a justification")
    if isinstance(value, Validation) and value.manual and not value.manual_steps:
        raise EncodingError("a manual validation must list its steps")
    if isinstance(value, Approval) and not value.role.strip():
        raise EncodingError("an approval must name the role it is given in")
    if isinstance(value, Sbom) and min(value.components, *msgspec.structs.astuple(value.gaps)) < 0:
        raise EncodingError("SBOM counts must be >= 0")
    if isinstance(value, Requirements | Anomaly):
        _check_traceability(value)


def _check_traceability(value: Requirements | Anomaly) -> None:
    if isinstance(value, Requirements):
        ids = [i for group in value.groups for i in group.ids]
        if not ids or len(set(ids)) != len(ids) or not all(i.strip() for i in ids):
            raise EncodingError("a requirements baseline lists each requirement id once, and at least one")
        return
    texts = (value.anomaly_id, value.description, value.evaluation, value.justification)
    if not all(t.strip() for t in texts) or not value.requirements:
        raise EncodingError(
            "an anomaly needs an id, a description, an evaluation, a justification and the "
            "requirements whose verification it dispositions"
        )


def _check_test_run(value: TestRun) -> None:
    if min(value.passed, value.failed, value.skipped) < 0:
        raise EncodingError("test-run counts must be >= 0")
    for result in value.requirements or []:
        if min(result.passed, result.failed, result.skipped) < 0 or not result.requirement.strip():
            raise EncodingError("a requirement's result needs its id and counts >= 0")


def _check_attachments(value: Predicate) -> None:
    for attachment in getattr(value, "attachments", None) or []:
        if not 0 < len(attachment.name) <= MAX_ATTACHMENT_NAME or attachment.size < 0:
            raise EncodingError(
                f"an attachment needs a name of 1 to {MAX_ATTACHMENT_NAME} characters and a size >= 0"
            )
