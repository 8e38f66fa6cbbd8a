"""`SessionStore` on PostgreSQL (015_console_sessions.sql): the web console's sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from ledger.storage.outage import unavailable_on_outage
from ledger.storage.protocol import SessionRow, TokenRow

_START_SQL = """INSERT INTO console_sessions (session_hash, token_id, csrf, expires_at)
    VALUES ($1, $2, $3, $4)"""
_SESSION_SQL = """SELECT s.csrf, s.expires_at, s.ended_at,
        t.id, t.role, t.products, t.expires_at AS token_expires, t.revoked_at
    FROM console_sessions s JOIN api_tokens t ON t.id = s.token_id WHERE s.session_hash = $1"""
_END_SQL = "UPDATE console_sessions SET ended_at = now() WHERE session_hash = $1 AND ended_at IS NULL"


@unavailable_on_outage  # a lost connection is a 503 with Retry-After, not a 500
class PostgresSessionStore:
    """The console sessions of one ledger database, through its log store's pool."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        """Use `pool`, a `PostgresStore`'s. Precondition: migrated to 015_console_sessions.sql."""
        self._pool = pool

    async def start_session(
        self, session_hash: bytes, token_id: int, csrf: str, expires_at: datetime
    ) -> None:
        """Record a new session of token `token_id`, lasting until `expires_at` (SessionStore)."""
        await self._pool.execute(_START_SQL, session_hash, token_id, csrf, expires_at)

    async def session(self, session_hash: bytes) -> SessionRow | None:
        """The session whose id hashes to `session_hash`, with its token's grants; None if unknown."""
        row = await self._pool.fetchrow(_SESSION_SQL, session_hash)
        if row is None:
            return None
        token = TokenRow(
            row["id"], row["role"], tuple(row["products"]), row["token_expires"], row["revoked_at"]
        )
        return SessionRow(token, row["csrf"], row["expires_at"], row["ended_at"])

    async def end_session(self, session_hash: bytes) -> None:
        """End the session now (sign-out)."""
        await self._pool.execute(_END_SQL, session_hash)
