"""Admission: what an envelope must satisfy before the sequencer will take it (docs/formats.md#envelopes).

Pure: it decodes the payload, extracts what the query API indexes, and checks
signatures against the key registry. The sequencer re-checks key validity at
the exact index an entry gets (a key may be revoked while a request waits),
which costs no signature verification.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from ledger.core.dsse import (
    ADMIN_PAYLOAD_TYPE,
    INTOTO_PAYLOAD_TYPE,
    MAX_KEYLESS_SIGNATURES,
    Envelope,
    Signature,
    SignatureCheck,
    check_now,
    envelope_payload,
    pae,
    verify_envelope,
)
from ledger.core.encoding import MAX_JSON_DEPTH, b64decode_lenient, json_holds_nul, json_nests_deeper_than
from ledger.core.keys import VerifierKey, parse_verifier_key
from ledger.core.sparse_merkle import MAX_CHAINED_SUBJECTS, is_chained_digest
from ledger.errors import (
    EncodingError,
    MalformedRequestError,
    PermissionDeniedError,
    SignatureError,
    UntrustedSignerError,
)
from ledger.records.admin import ROLE_ADMIN, AdminRecord, KeyRegistered, decode_admin_record
from ledger.records.predicates import (
    BASE,
    PREDICATE_TYPES,
    Approval,
    Predicate,
    decode_predicate,
    unknown_own_type,
)
from ledger.records.statement import Statement, decode_statement, release_of, seal_of, subject_digests
from ledger.rules.registry import KeyRegistry

# An index past any log: admitting "as of now" before the sequencer assigns the real index
# (it re-checks the keys there, without verifying signatures again).
AS_OF_NOW = 1 << 62


@dataclass(frozen=True, slots=True)
class Admitted:
    """An envelope that passed admission, with the columns it will be indexed under."""

    envelope: Envelope
    kind: str
    product: str | None
    version: str | None
    subjects: tuple[str, ...]
    admin: AdminRecord | None
    signers: tuple[VerifierKey, ...]
    seal: tuple[int, str] | None = None
    statement_hash: bytes = b""  # SHA-256 of PAE(payloadType, payload): the statement signed
    # `envelope` is what the entry stores: the payload as sent, every signature naming its keyid
    # (admission names the key of one sent without), and no field the signatures do not cover.
    # Set by the writer, never read from the envelope: the (count, head leaf hash) the release's
    # chain must still have when this entry joins it (a gate decision evaluated on that chain).
    expected_chain: tuple[int, str] | None = None
    # What admission decoded of a statement, kept only when asked (`admit(keep_decoded=True)`):
    # a reader of the entry it just admitted (a dossier's verifier) then does not decode the
    # payload again. The writer does not keep them: a batch's decoded statements would
    # outlive admission and weigh on the worker's memory bound (docs/deployment.md).
    statement: Statement | None = None
    predicate: Predicate | None = None

    @property
    def signer_keyid(self) -> str:
        """The keyid recorded as the entry's signer (the first verified signature)."""
        return self.signers[0].keyid

    @property
    def release(self) -> tuple[str, str] | None:
        """(product, version) when the entry joins a release's chain: it names both."""
        if self.product is None or self.version is None:
            return None
        return self.product, self.version


@dataclass(frozen=True, slots=True)
class _Inspected:
    kind: str
    product: str | None
    version: str | None
    subjects: tuple[str, ...]
    admin: AdminRecord | None
    seal: tuple[int, str] | None = None
    approval_role: str | None = None
    payload: bytes = b""
    undated_approval: bool = False  # an approval without signed_at: readable, no longer appended
    statement: Statement | None = None
    predicate: Predicate | None = None

    def statement_hash(self, payload_type: str) -> bytes:
        """SHA-256 of the signed message, PAE(payloadType, payload): equal for the same statement."""
        return hashlib.sha256(pae(payload_type, self.payload)).digest()


def _inspect(envelope: Envelope) -> _Inspected:
    try:
        payload = envelope_payload(envelope)
    except EncodingError as exc:
        raise MalformedRequestError(str(exc)) from exc  # an envelope, not a statement, is malformed
    if json_holds_nul(payload):
        raise EncodingError("the payload holds U+0000 (NUL), which the ledger can neither store nor index")
    if json_nests_deeper_than(payload, MAX_JSON_DEPTH):
        raise EncodingError(f"the payload nests arrays and objects more than {MAX_JSON_DEPTH} levels deep")
    if envelope.payload_type == INTOTO_PAYLOAD_TYPE:
        statement = decode_statement(payload)
        product, version = release_of(statement)
        predicate = decode_predicate(statement.predicate_type, statement.predicate)
        seal = seal_of(statement)
        if seal is not None and version is None:
            raise EncodingError(
                "a release seal must name its release (predicate.release product and version)"
            )
        approval = predicate if isinstance(predicate, Approval) else None
        role = approval.role if approval is not None else None
        undated = approval is not None and approval.signed_at is None
        subjects = subject_digests(statement)
        return _Inspected(
            statement.predicate_type, product, version, subjects, None, seal, role, payload, undated,
            statement, predicate,
        )  # fmt: skip
    if envelope.payload_type == ADMIN_PAYLOAD_TYPE:
        record = decode_admin_record(payload)
        kind = type(record).__struct_config__.tag
        return _Inspected(str(kind), None, None, (), record, payload=payload)
    raise EncodingError(
        f"payloadType must be {INTOTO_PAYLOAD_TYPE} or {ADMIN_PAYLOAD_TYPE}, got {envelope.payload_type!r}"
    )


def admit(  # noqa: PLR0913 - the envelope, where and when it is judged, and two options
    envelope: Envelope,
    registry: KeyRegistry,
    index: int,
    check: SignatureCheck = check_now,
    *,
    at: datetime | None = None,
    keep_decoded: bool = False,
) -> Admitted:
    """Check an envelope as if it were appended at `index`; `check` verifies each signature.

    Raises EncodingError for a payload that is not a Statement or admin record,
    SignatureError when no registered, unrevoked key signed it (or a known
    key's signature fails), PermissionDeniedError for an admin record without
    an admin signature or a key used outside its products. `index` AS_OF_NOW
    admits a new append, which must also meet the rules the log's older entries
    predate (an approval states when it was signed). `keep_decoded` keeps the decoded
    statement and predicate in the result, for a reader that goes on to read the entry.
    `at` is when the entry was (or will be) recorded: a key that expired by then may not sign
    (ledger.rules.registry). A verifier passes the entry's own time; a new append the time now,
    and the sequencer judges again at the time it stamps.

    A new append (`index` AS_OF_NOW) may carry signatures without a keyid (DSSE makes it
    optional): `_name_keyless` finds each one's key, and the admitted envelope names it. In
    the log every signature names its key, so a verifier (a real `index`) treats a signature
    without one as by no registered key.
    """
    inspected = _inspect(envelope)
    if index == AS_OF_NOW:
        envelope = _name_keyless(envelope, inspected, registry, index, at)
    if index == AS_OF_NOW and unknown_own_type(inspected.kind):
        # A rule for what is appended from now on, like the one below: the log's entries stay valid.
        known = ", ".join(sorted(t.removeprefix(f"{BASE}/") for t in PREDICATE_TYPES if t.startswith(BASE)))
        raise EncodingError(
            f"predicate type {inspected.kind!r} is under {BASE}/ but is none of the ledger's "
            f"predicates ({known}); other namespaces are recorded as generic evidence"
        )
    if index == AS_OF_NOW:
        _refuse_too_many_chained_subjects(inspected.subjects)
    if index == AS_OF_NOW and inspected.undated_approval:
        # A rule for what is appended from now on: approvals recorded before it stay valid.
        raise EncodingError(
            "an approval must state when it was signed (predicate.signed_at, an RFC 3339 time; "
            "21 CFR 11.50(a)(2))"
        )
    try:
        signers = verify_envelope(
            envelope, lambda keyid: registry.signing_key(keyid, index, at), inspected.payload, check
        )
    except UntrustedSignerError as exc:
        reason = registry.explain_refusal([s.keyid or "(no keyid)" for s in envelope.signatures], index, at)
        raise UntrustedSignerError(f"no signature by a key that may sign here: {reason}") from exc
    return _authorise(envelope, inspected, registry, signers, keep_decoded=keep_decoded)


def _refuse_too_many_chained_subjects(subjects: tuple[str, ...]) -> None:
    """EncodingError when a statement names more than MAX_CHAINED_SUBJECTS distinct sha256 subject digests.

    Each one gets an artifact back-link in the entry (docs/completeness-index.md#index-keys). A rule
    for what is appended from now on: statements recorded before it stay valid (they carry no links).
    """
    chained = sum(1 for digest in subjects if is_chained_digest(digest))  # `subjects` are distinct
    if chained > MAX_CHAINED_SUBJECTS:
        raise EncodingError(
            f"the statement names {chained} distinct sha256 subject digests; at most "
            f"{MAX_CHAINED_SUBJECTS} are allowed (each joins its artifact's chain): split it into "
            "several statements"
        )


def _keyless_candidates(
    inspected: _Inspected, registry: KeyRegistry, index: int, at: datetime | None
) -> list[VerifierKey]:
    """The keys that may sign the envelope at `index` (recorded at `at`), in registration order.

    Admin keys for an admin record, else the keys allowed for the statement's product.
    """
    candidates = []
    for keyid, key in registry.keys.items():
        verifier = registry.signing_key(keyid, index, at)
        if verifier is None:
            continue
        admin = inspected.admin is not None
        if (ROLE_ADMIN in key.roles) if admin else key.allows_product(inspected.product):
            candidates.append(verifier)
    return candidates


def _name_keyless(
    envelope: Envelope, inspected: _Inspected, registry: KeyRegistry, index: int, at: datetime | None
) -> Envelope:
    """The envelope with each signature sent without a keyid named by the registered key it verifies under.

    DSSE makes `keyid` an optional, unsigned hint (envelope.md), so naming the key changes nothing
    signed; the stored entry then lets every verifier check the signature directly. Candidates are
    the keys that may sign the envelope at `index` (`_keyless_candidates`); the first one under which
    the signature verifies names it (an Ed25519 signature verifies under one key only). At most
    MAX_KEYLESS_SIGNATURES signatures may come without a keyid (SignatureError past it), which
    bounds the work to that many times the number of candidates. UntrustedSignerError when no
    candidate verifies one of them; MalformedRequestError when its base64 does not decode.
    """
    keyless = [n for n, s in enumerate(envelope.signatures) if not s.keyid]
    if not keyless:
        return envelope
    if len(keyless) > MAX_KEYLESS_SIGNATURES:
        raise SignatureError(
            f"an envelope may hold at most {MAX_KEYLESS_SIGNATURES} signatures without a keyid, "
            f"this one holds {len(keyless)}: name the signing keys' keyids"
        )
    candidates = _keyless_candidates(inspected, registry, index, at)
    message = pae(envelope.payload_type, inspected.payload)
    signatures = list(envelope.signatures)
    for n in keyless:
        try:
            raw = b64decode_lenient(signatures[n].sig, f"signatures[{n}] (without keyid)")
        except EncodingError as exc:
            raise MalformedRequestError(str(exc)) from exc
        found = next((key for key in candidates if _verifies(key, message, raw)), None)
        if found is None:
            scope = (
                "admin keys"
                if inspected.admin is not None
                else f"keys for product {inspected.product!r}"
                if inspected.product
                else "keys for any product"
            )
            raise UntrustedSignerError(
                f"no registered key verified signatures[{n}], which names no keyid "
                f"(tried the {len(candidates)} {scope} that may sign now): name its keyid, "
                "or register the key that made it"
            )
        signatures[n] = Signature(sig=signatures[n].sig, keyid=found.keyid)
    return Envelope(envelope.payload, envelope.payload_type, signatures)


def _verifies(key: VerifierKey, message: bytes, raw: bytes) -> bool:
    try:
        key.verify(message, raw)
    except SignatureError:
        return False
    return True


def _authorise(
    envelope: Envelope,
    inspected: _Inspected,
    registry: KeyRegistry,
    signers: list[VerifierKey],
    *,
    keep_decoded: bool = False,
) -> Admitted:
    if inspected.admin is not None:
        admin_key = registry.require_admin(signers)
        ordered = (admin_key.verifier, *[s for s in signers if s != admin_key.verifier])
    else:
        allowed = [s for s in signers if registry.keys[s.keyid].allows_product(inspected.product)]
        if not allowed:
            raise PermissionDeniedError(
                f"no signing key is registered for product {inspected.product!r}"
                if inspected.product
                else "the statement names no product (predicate.release.product), "
                "and its signing key is limited to products"
            )
        if inspected.approval_role is not None:
            allowed = [s for s in allowed if inspected.approval_role in registry.keys[s.keyid].roles]
            if not allowed:
                raise PermissionDeniedError(
                    f"an approval in role {inspected.approval_role!r} must be signed by a key "
                    "registered with that role"
                )
        if inspected.seal is not None:
            allowed = registry.sealers(allowed)
        ordered = tuple(allowed)
    return Admitted(
        envelope,
        inspected.kind,
        inspected.product,
        inspected.version,
        inspected.subjects,
        inspected.admin,
        ordered,
        inspected.seal,
        inspected.statement_hash(envelope.payload_type),
        statement=inspected.statement if keep_decoded else None,
        predicate=inspected.predicate if keep_decoded else None,
    )


def admit_genesis(envelope: Envelope) -> Admitted:
    """Check entry 0: the ledger key's own registration, self-signed, with role admin."""
    inspected = _inspect(envelope)
    record = inspected.admin
    if not isinstance(record, KeyRegistered) or "admin" not in record.roles:
        raise EncodingError("entry 0 must register the ledger key with role 'admin'")
    key = parse_verifier_key(record.key)
    signers = verify_envelope(envelope, lambda keyid: key if keyid == key.keyid else None)
    if signers != [key]:
        raise SignatureError("entry 0 must be signed by the key it registers")
    return Admitted(
        envelope, inspected.kind, None, None, (), record, (key,),
        statement_hash=inspected.statement_hash(envelope.payload_type),
    )  # fmt: skip
