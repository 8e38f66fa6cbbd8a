"""Gate decisions as evidence: a compliance result written as an in-toto SLSA VSA v1 statement. Pure.

`POST /v1/gates/evaluate` (product, version, environment) evaluates the release
(ledger.compliance.evaluate), then the ledger signs the statement built here
and appends it like any evidence (schemas/PREDICATES.md, "gate decision"). The
decision is `allow` exactly when the result is compliant (waived findings
included as waived); the statement names the policy entry and digest, and every
entry the decision considered, so an inspector can recompute the same decision.

URIs: `urn:evledger:entry:<index>` names an entry of the verifier's log and
`urn:evledger:release:<product>:<version>` (percent-encoded) a release. Input
entries are identified by their RFC 9162 leaf hash, under the digest name
`rfc9162LeafHash` (it is not a plain SHA-256 of the entry).

SLSA VSA v1 (https://slsa.dev/spec/v1.0/verification_summary): `verifier.id` is "URI
indicating the verifier's identity", here `https://evledger.dev/verifier/<ledger key name>`
(`verifier_uri`); `verifiedLevels` "Indicates the highest level of each track verified for
the artifact ..., or "FAILED" if policy verification failed", so an allow is
[EVLEDGER_POLICY_COMPLIANT] and a deny ["FAILED"]; and "Producers MAY add extension fields
using field names that are URIs", so the gate's own fields (release, environment, decision,
findings) are under `https://evledger.dev/gate-decision/v1` (`predicates.GATE_EXTENSION`).
`slsaVersion` is "1.0".
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal
from urllib.parse import quote

import msgspec

from ledger.compliance.evaluate import ComplianceResult
from ledger.errors import InputError
from ledger.records import predicates as p
from ledger.records.formats import is_hex64, parse_offset_time
from ledger.records.statement import STATEMENT_TYPE_V1

VERIFIED_LEVEL = "EVLEDGER_POLICY_COMPLIANT"
LEAF_DIGEST = "rfc9162LeafHash"
_encoder = msgspec.json.Encoder(order="sorted")

Decision = Literal["allow", "deny"]


def decision_of(result: ComplianceResult) -> Decision:
    """`allow` iff the release is compliant under the policy (waived findings do not count)."""
    return "allow" if result.status == "compliant" else "deny"


def entry_uri(index: int) -> str:
    """The URI of a log entry in gate decisions (relative to the verifier's log)."""
    return f"urn:evledger:entry:{index}"


def verifier_uri(key_name: str) -> str:
    """The VSA `verifier.id` of the ledger whose key is named `key_name` (percent-encoded, `/` kept)."""
    return f"{p.VERIFIER_BASE}{quote(key_name, safe='/')}"


def release_uri(release: p.Release) -> str:
    """The URI of a release: its product and version, percent-encoded."""
    return f"urn:evledger:release:{quote(release.product, safe='')}:{quote(release.version, safe='')}"


def _subjects(result: ComplianceResult, release: p.Release) -> list[dict[str, object]]:
    """The artifacts decided on (the result's candidates), else a digest of `product@version`."""
    subjects: list[dict[str, object]] = []
    for artifact in result.candidates:
        algorithm, _, value = artifact.digest.partition(":")
        subjects.append({"name": artifact.name, "digest": {algorithm: value}})
    if subjects:
        return subjects
    name = f"{release.product}@{release.version}"
    return [{"name": name, "digest": {"sha256": hashlib.sha256(name.encode()).hexdigest()}}]


def _check(
    result: ComplianceResult,
    release: p.Release,
    environment: str,
    policy_ref: tuple[int, str],
    time: str,
) -> None:
    """The preconditions of `gate_statement`: one release, environment and policy throughout."""
    if result.release is not None and result.release != release:
        raise InputError(f"the result is about {result.release}, not {release}")
    if result.environment != environment:
        raise InputError(f"the result was evaluated for {result.environment!r}, not {environment!r}")
    if (result.policy.entry, result.policy.digest) != policy_ref:
        raise InputError(
            f"the result names policy {result.policy.entry} {result.policy.digest}, not {policy_ref}"
        )
    if parse_offset_time(time) is None:
        raise InputError(f"gate time {time!r} is not an RFC 3339 time with an offset")


def gate_statement(  # noqa: PLR0913 - each argument is one VSA field, named at the call site
    result: ComplianceResult,
    release: p.Release,
    *,
    environment: str,
    policy_ref: tuple[int, str],
    input_entries: Sequence[tuple[int, str]],
    verifier_id: str,
    time: str,
) -> bytes:
    """The gate decision for `result` as in-toto Statement v1 JSON bytes (keys sorted), to sign and append.

    Preconditions: `result` was evaluated for `release` and `environment` against the policy
    `policy_ref` = (entry index, "sha256:<hex>" digest); `input_entries` are (index, leaf hash
    as 64 lowercase hex) of the entries evaluated; `verifier_id` names the ledger (its key
    name; the statement's `verifier.id` is `verifier_uri(verifier_id)`); `time` is RFC 3339.
    InputError when one of them does not hold.
    """
    _check(result, release, environment, policy_ref, time)
    inputs = []
    for index, leaf in sorted(input_entries):
        if not is_hex64(leaf):
            raise InputError(f"input entry {index}: leaf hash must be 64 lowercase hex digits")
        inputs.append(p.InputAttestation(entry_uri(index), {LEAF_DIGEST: leaf}))
    algorithm, _, value = policy_ref[1].partition(":")
    decision = decision_of(result)
    predicate = p.GateDecision(
        verifier=p.Verifier(verifier_uri(verifier_id)),
        time_verified=time,
        resource_uri=release_uri(release),
        policy=p.PolicyRef(entry_uri(policy_ref[0]), {algorithm: value}),
        input_attestations=inputs,
        verification_result="PASSED" if decision == "allow" else "FAILED",
        verified_levels=[VERIFIED_LEVEL] if decision == "allow" else [p.FAILED_LEVEL],
        gate=p.GateDetails(
            release=release,
            environment=environment,
            decision=decision,
            findings=[msgspec.to_builtins(f) for f in result.findings],
        ),
        slsa_version=p.SLSA_VERSION,
    )
    statement = {
        "_type": STATEMENT_TYPE_V1,
        "subject": _subjects(result, release),
        "predicateType": p.GATE_DECISION,
        "predicate": msgspec.to_builtins(predicate),
    }
    return _encoder.encode(statement)
