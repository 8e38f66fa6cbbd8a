"""Administration records (docs/formats.md#envelopes): payloads of type application/vnd.evledger.admin+json.

They register and revoke the keys that may sign evidence, and publish policies.
Admin records must be signed by a key with role `admin`; entry 0 is the ledger
key's own self-signed registration.
"""

from __future__ import annotations

import re
from datetime import datetime

import msgspec

from ledger.core.encoding import JSON_ERRORS
from ledger.core.keys import parse_verifier_key
from ledger.errors import EncodingError, InputError
from ledger.records.formats import parse_offset_time
from ledger.records.policy import ROLE_PATTERN, Policy, policy_digest

ROLE_ADMIN = "admin"
# Roles are the organisation's own words (qa, clinical, release-manager…), written as simple names.
_ROLE_NAME = re.compile(ROLE_PATTERN)


class KeyRegistered(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="key.registered"
):
    """A key may sign from the next index on, for `products` (empty: all) in `roles`, until `expires`.

    `expires` (RFC 3339 with an offset; issue #12) is the moment from which the key may no longer
    sign: an entry the ledger records at or after it is refused, as for a revoked key. A
    registration without it (every one written before it existed) never expires; it is then
    left out of the record, so those records keep their bytes.
    """

    key: str
    owner: str
    roles: list[str]
    products: list[str] = msgspec.field(default_factory=list)
    expires: str | msgspec.UnsetType = msgspec.UNSET

    def expiry(self) -> datetime | None:
        """When the key stops being able to sign (None: never); EncodingError for a malformed time."""
        if isinstance(self.expires, msgspec.UnsetType):
            return None
        moment = parse_offset_time(self.expires)
        if moment is None:
            raise EncodingError(
                f"admin record is invalid: expires {self.expires[:40]!r} is not an RFC 3339 date-time "
                "with an offset (e.g. 2027-06-30T00:00:00Z)"
            )
        return moment


class KeyRevoked(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="key.revoked"
):
    """A key may no longer sign anything appended after this entry."""

    keyid: str
    reason: str


class PolicyPublished(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="policy.published"
):
    """A release policy becomes the one in force: the whole policy and its digest (schemas/POLICY.md).

    Decoding checks the policy strictly (ledger.records.policy) and that `digest` is
    `policy_digest(policy)`, so the digest a result names always identifies this policy.
    """

    policy: Policy
    digest: str

    def __post_init__(self) -> None:
        """Refuse a record whose stated digest is not its policy's."""
        if self.digest != policy_digest(self.policy):
            raise ValueError(f"digest must be the policy's, {policy_digest(self.policy)}")

    @property
    def name(self) -> str:
        """The policy's name."""
        return self.policy.name

    @property
    def version(self) -> str:
        """The policy's version."""
        return self.policy.version


AdminRecord = KeyRegistered | KeyRevoked | PolicyPublished
# The kinds as entries are indexed under them (the `kind` column): what the key registry and the
# policy in force are replayed from, and the key events among them.
KEY_EVENT_KINDS = tuple(str(t.__struct_config__.tag) for t in (KeyRegistered, KeyRevoked))
POLICY_KIND = str(PolicyPublished.__struct_config__.tag)
ADMIN_KINDS = (*KEY_EVENT_KINDS, POLICY_KIND)

_decoder: msgspec.json.Decoder[AdminRecord] = msgspec.json.Decoder(AdminRecord)
_encoder = msgspec.json.Encoder(order="sorted")


def decode_admin_record(payload: bytes) -> AdminRecord:
    """Parse an admin payload; unknown kinds, unknown fields and wrong types are refused."""
    try:
        record = _decoder.decode(payload)
    except JSON_ERRORS as exc:
        raise EncodingError(f"admin record is invalid: {exc}") from exc
    if isinstance(record, KeyRegistered):
        try:
            parse_verifier_key(record.key)
        except InputError as exc:
            raise EncodingError(f"admin record is invalid: {exc}") from exc
        if not record.owner.strip():
            raise EncodingError("admin record is invalid: key owner must not be empty")
        record.expiry()
        bad = sorted(role for role in record.roles if not _ROLE_NAME.fullmatch(role))
        if not record.roles or bad:
            raise EncodingError(
                "admin record is invalid: a key needs at least one role, each a lowercase name "
                f"of letters, digits and '-' (refused: {bad})"
            )
    return record


def encode_admin_record(record: AdminRecord) -> bytes:
    """The payload bytes of an admin record (sorted keys)."""
    return _encoder.encode(record)


def policy_record(policy: Policy) -> PolicyPublished:
    """The `policy.published` admin record for `policy`, digest included (docs/formats.md#envelopes)."""
    return PolicyPublished(policy=policy, digest=policy_digest(policy))


def encode_policy_record(policy: Policy) -> bytes:
    """The admin payload that publishes `policy` (sign it with an admin key, payloadType admin)."""
    return encode_admin_record(policy_record(policy))


def policy_from_record(record: PolicyPublished) -> Policy:
    """The policy a `policy.published` record carries, after checking the digest it states.

    Precondition: `record` was decoded by ledger.records.admin.decode_admin_record (which checks the
    digest too); the check is repeated so that a hand-built record cannot name a wrong digest.
    """
    digest = policy_digest(record.policy)
    if record.digest != digest:
        raise EncodingError(f"policy record states digest {record.digest}, but the policy's is {digest}")
    return record.policy
