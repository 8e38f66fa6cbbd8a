"""Console sessions: sign in once with an API token, then an HttpOnly cookie (docs/console.md).

The browser holds only a random session id (SESSION_COOKIE: HttpOnly, SameSite=Strict, Path=/ui,
Secure behind HTTPS); the database keeps its SHA-256, the token it stands for and a CSRF secret
(015_console_sessions.sql). Every request re-checks the token itself (`auth.admit`), so a
revoked or expired token ends its sessions at once. Every form that changes something carries
the session's CSRF secret, compared in constant time, and must come from the console's own origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ledger.errors import LedgerError, PermissionDeniedError
from ledger.service.auth import READ_ROLES, Token, Tokens, admit
from ledger.storage.protocol import SessionStore

SESSION_COOKIE = "evl_session"
SESSION_LIFETIME = timedelta(hours=8)  # a working day; signing in again is one paste of a token
CSRF_FIELD = "csrf"


@dataclass(frozen=True, slots=True)
class Session:
    """A live console session: the token it stands for, and the CSRF secret its forms must carry."""

    session_hash: bytes
    token: Token
    csrf: str

    def require_csrf(self, sent: str | None) -> None:
        """PermissionDeniedError (403) unless `sent` is this session's CSRF secret."""
        if sent is None or not hmac.compare_digest(sent.encode(), self.csrf.encode()):
            raise PermissionDeniedError("the form did not come from this console session; reload the page")


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


class ConsoleSessions:
    """Start, find and end console sessions over `store`, checking tokens with `tokens`."""

    def __init__(self, store: SessionStore, tokens: Tokens) -> None:
        """Keep the session store and the service's token cache."""
        self._store = store
        self._tokens = tokens

    async def sign_in(self, secret: str) -> str:
        """A new session id for the API token `secret` (any role may read): 401/403 as the API answers."""
        token = await self._tokens.authenticate(f"Bearer {secret.strip()}", READ_ROLES)
        session_id = secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + SESSION_LIFETIME
        await self._store.start_session(
            _hash(session_id), token.row.token_id, secrets.token_urlsafe(24), expires
        )
        return session_id

    async def current(self, session_id: str | None) -> Session | None:
        """The live session `session_id` names; None if absent, unknown, ended, expired, or its token is."""
        if not session_id or len(session_id) > 128:
            return None
        digest = _hash(session_id)
        row = await self._store.session(digest)
        if row is None or row.ended_at is not None or row.expires_at <= datetime.now(UTC):
            return None
        try:
            token = admit(Token(row.token), READ_ROLES)
        except LedgerError:
            return None  # revoked or expired since: the session ends with its token
        return Session(digest, token, row.csrf)

    async def sign_out(self, session: Session) -> None:
        """End `session` now."""
        await self._store.end_session(session.session_hash)
