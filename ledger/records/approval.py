"""Approval statements made for a person to sign elsewhere (the console's browser signing). Pure.

An approval is an electronic signature (21 CFR 11.50): the statement names the release, the
candidate's digest, the entries reviewed, the role, the meaning, the decision and the moment of
signing, and the signer's key names the person. `approval_statement` makes the exact Statement v1
bytes the person is shown and then signs; `approval_in` reads one back, so whoever receives the
signed envelope can check it is the approval it expects before appending it. The predicate is
`ledger.records.predicates.Approval`; admission (`ledger.rules.admission`) judges the signature
and the key's role, as for any approval.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from ledger.errors import EncodingError, InputError
from ledger.records.attest import check_statement, subject_digest_of
from ledger.records.predicates import APPROVAL, Approval, decode_predicate
from ledger.records.statement import STATEMENT_TYPE_V1, decode_statement

SUBJECT_NAME = "artifact"  # as `evledger record approval` names the candidate by default
_encoder = msgspec.json.Encoder(order="sorted")


def approval_statement(  # noqa: PLR0913 - keyword-only: the approval predicate's own fields
    *,
    product: str,
    version: str,
    role: str,
    meaning: str,
    decision: str,
    artifact_digest: str,
    entries: Sequence[int],
    signed_at: str,
    comment: str | None = None,
) -> bytes:
    """Statement v1 bytes (sorted keys) of an approval of `artifact_digest` in `product` `version`.

    `entries` (the log indices reviewed) are kept sorted and once each; an empty `comment` is
    left out. InputError naming the field for anything the ledger would refuse: an unknown
    meaning or decision, an empty role, a digest not written `sha256:<64 hex>`, a bad time.
    """
    if not role.strip():
        raise InputError("the role must not be empty")
    fields = {
        "release": {"product": product, "version": version},
        "role": role, "meaning": meaning, "decision": decision, "artifact_digest": artifact_digest,
        "entries": sorted(set(entries)), "signed_at": signed_at, "comment": comment or None,
    }  # fmt: skip
    try:
        predicate = msgspec.convert(fields, type=Approval)
    except msgspec.ValidationError as exc:
        raise InputError(f"approval: {exc}") from None
    body = {k: v for k, v in msgspec.to_builtins(predicate).items() if v is not None}
    statement = {
        "_type": STATEMENT_TYPE_V1,
        "subject": [{"name": SUBJECT_NAME, "digest": subject_digest_of(artifact_digest)}],
        "predicateType": APPROVAL,
        "predicate": body,
    }
    try:
        return check_statement(_encoder.encode(statement))
    except EncodingError as exc:
        raise InputError(str(exc)) from None


def approval_in(payload: bytes) -> Approval:
    """The approval `payload` states; EncodingError when it is not an approval statement."""
    statement = decode_statement(payload)
    if statement.predicate_type != APPROVAL:
        raise EncodingError(f"the statement is a {statement.predicate_type}, not an approval ({APPROVAL})")
    approval = decode_predicate(APPROVAL, statement.predicate)
    assert isinstance(approval, Approval)  # noqa: S101 - decode_predicate's type for APPROVAL
    return approval
