"""The key registry, replayed from the log's admin records (docs/formats.md#envelopes).

A key registered by entry i may sign entries i+1 onwards; a key revoked by
entry j may not sign entries j+1 onwards; a key registered with an expiry may not
sign an entry the ledger records at or after it (the entry's own time decides, so
every verifier replays the same answer). A published policy names the roles
that may seal a release from the next entry on (`release-manager` until one
does). The same class serves the sequencer (which extends it as it integrates)
and the verifiers (which rebuild it from the entries they were given), so both
apply exactly the same rules, through one `apply`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from ledger.core.encoding import format_time
from ledger.core.keys import VerifierKey, parse_verifier_key
from ledger.errors import EncodingError, PermissionDeniedError
from ledger.records.admin import ROLE_ADMIN, AdminRecord, KeyRegistered, KeyRevoked, PolicyPublished
from ledger.records.policy import DEFAULT_SEAL_ROLES
from ledger.storage.protocol import ChainHead


@dataclass(slots=True)
class RegisteredKey:
    """A key as the registry knows it at some index."""

    verifier: VerifierKey
    owner: str
    roles: frozenset[str]
    products: frozenset[str]
    registered_at: int
    revoked_at: int | None = None
    revoke_reason: str = ""
    expires: datetime | None = None

    def expired_at(self, at: datetime | None) -> bool:
        """Whether the key has expired by `at` (None: no time to judge by, as for a key list)."""
        return self.expires is not None and at is not None and at >= self.expires

    @property
    def keyid(self) -> str:
        """The keyid string (`<name>+<hex id>`)."""
        return self.verifier.keyid

    def allows_product(self, product: str | None) -> bool:
        """Whether this key may sign for `product` (a key with no products may sign for any)."""
        return not self.products or (product is not None and product in self.products)


@dataclass(slots=True)
class KeyRegistry:
    """Keys by keyid string, and the roles that may seal; as of log index `applied_through`.

    `key_head` is the newest key event (the head of the key-event chain, ledger.rules.chains),
    kept by whoever replays or appends key events; None before entry 0. `seal_roles` is
    None only for a verifier that holds the key events but not the policy in force at the
    entries it checks (a dossier's entries before its policy): it cannot judge a sealer.
    """

    keys: dict[str, RegisteredKey] = field(default_factory=dict)
    applied_through: int = -1
    seal_roles: frozenset[str] | None = DEFAULT_SEAL_ROLES
    key_head: ChainHead | None = None

    def copy(self) -> KeyRegistry:
        """An independent copy: changes to it (registrations, revocations) leave this one as it is."""
        return KeyRegistry(
            {k: replace(v) for k, v in self.keys.items()},
            self.applied_through,
            self.seal_roles,
            self.key_head,
        )

    def apply(self, index: int, record: AdminRecord) -> None:
        """Apply the admin record of entry `index`: the one rule every writer and verifier follows.

        Precondition: `index` is past `applied_through` and the record was admitted there
        (signed by an admin key); EncodingError for a registration of a known key or a
        revocation of an unknown or revoked one.
        """
        if isinstance(record, KeyRegistered):
            self.register(index, record)
        elif isinstance(record, KeyRevoked):
            self.revoke(index, record)
        elif isinstance(record, PolicyPublished):
            self.seal_roles = record.policy.seal_roles()
        self.applied_through = max(self.applied_through, index)

    def register(self, index: int, record: KeyRegistered) -> RegisteredKey:
        """Apply a key.registered record at `index`; a keyid may be registered only once."""
        verifier = parse_verifier_key(record.key)
        if verifier.keyid in self.keys:
            raise EncodingError(f"key {verifier.keyid} is already registered")
        key = RegisteredKey(
            verifier,
            record.owner,
            frozenset(record.roles),
            frozenset(record.products),
            index,
            expires=record.expiry(),
        )
        self.keys[verifier.keyid] = key
        self.applied_through = max(self.applied_through, index)
        return key

    def revoke(self, index: int, record: KeyRevoked) -> RegisteredKey:
        """Apply a key.revoked record at `index`; the key must be registered and not yet revoked."""
        key = self.keys.get(record.keyid)
        if key is None:
            raise EncodingError(f"cannot revoke unknown key {record.keyid}")
        if key.revoked_at is not None:
            raise EncodingError(f"key {record.keyid} was already revoked at entry {key.revoked_at}")
        key.revoked_at = index
        key.revoke_reason = record.reason
        self.applied_through = max(self.applied_through, index)
        return key

    def signing_key(self, keyid: str, index: int, at: datetime | None = None) -> VerifierKey | None:
        """The key that may sign entry `index`, recorded at `at`, under this keyid; None if it may not.

        None when the key is unknown, registered only later, revoked by then or expired at `at`.
        `at` is None only where no entry time exists yet and none is judged (then the sequencer
        judges expiry at the time it stamps, `ledger.append.batch`).
        """
        key = self.keys.get(keyid)
        if key is None or key.registered_at >= index:
            return None
        if key.revoked_at is not None and key.revoked_at < index:
            return None
        if key.expired_at(at):
            return None
        return key.verifier

    def explain_refusal(self, keyids: list[str], index: int, at: datetime | None = None) -> str:
        """Plain words for why none of `keyids` may sign entry `index` (recorded at `at`)."""
        reasons = []
        for keyid in keyids:
            key = self.keys.get(keyid)
            if key is None:
                reasons.append(f"{keyid} is not registered")
            elif key.registered_at >= index:
                reasons.append(f"{keyid} is registered only from entry {key.registered_at + 1}")
            elif key.revoked_at is not None and key.revoked_at < index:
                reasons.append(f"{keyid} was revoked at entry {key.revoked_at} ({key.revoke_reason})")
            elif key.expires is not None and key.expired_at(at):
                reasons.append(
                    f"{keyid} expired at {format_time(key.expires)} (its registration, entry "
                    f"{key.registered_at}, set that expiry; register a new key for {key.owner})"
                )
            else:
                reasons.append(f"{keyid} did not produce a valid signature")
        return "; ".join(reasons) or "no signatures"

    def sealers(self, signers: list[VerifierKey]) -> list[VerifierKey]:
        """The signers whose keys hold a role that may seal; PermissionDeniedError if none does.

        With `seal_roles` unknown (None) every signer is returned: the caller cannot judge.
        """
        if self.seal_roles is None:
            return signers
        allowed = [s for s in signers if self.keys[s.keyid].roles & self.seal_roles]
        if not allowed:
            raise PermissionDeniedError(
                f"a release seal must be signed by a key with role {' or '.join(sorted(self.seal_roles))} "
                "(the roles the policy in force names for sealing)"
            )
        return allowed

    def require_admin(self, signers: list[VerifierKey]) -> RegisteredKey:
        """Return the first signer holding role `admin`; PermissionDeniedError if none does."""
        for verifier in signers:
            key = self.keys[verifier.keyid]
            if ROLE_ADMIN in key.roles:
                return key
        raise PermissionDeniedError("admin records must be signed by a key with role 'admin'")
