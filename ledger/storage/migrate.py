"""Owner-side database operations: migrations, the log head row, API tokens and their life cycle.

These run with the DSN's own role (the database owner), never as the service
role: the service may not create tokens or change the schema.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

import asyncpg

from ledger.core.encoding import format_time
from ledger.errors import ConflictError, InputError, NotFoundError
from ledger.records.statement import MAX_NAME
from ledger.storage.protocol import TokenRow

_MIGRATION_LOCK = 0x65766C64  # advisory lock id ("evld"): one migrator at a time
TOKEN_PREFIX = "evl_"  # noqa: S105 - a visible prefix, not a secret
MAX_TOKEN_ID = (1 << 63) - 1  # api_tokens.id is a bigint
TOKEN_ROLES = ("appender", "auditor", "admin")  # as the CHECK on api_tokens.role (001_schema.sql)


def migration_files() -> list[tuple[str, str]]:
    """(name, SQL) of every migration, in order of name."""
    folder = resources.files("ledger.storage") / "migrations"
    return sorted((f.name, f.read_text()) for f in folder.iterdir() if f.name.endswith(".sql"))


async def migrate(dsn: str) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction; return their names."""
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, sql in migration_files():
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied.append(name)
    finally:
        await conn.close()
    return applied


async def create_head(dsn: str, origin: str) -> None:
    """Create the empty log head for `origin` if there is none yet."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """INSERT INTO log_head (id, origin, tree_size, compact_range, last_leaf_hash)
               VALUES (1, $1, 0, '{}', $2) ON CONFLICT (id) DO NOTHING""",
            origin,
            bytes(32),
        )
    finally:
        await conn.close()


def hash_token(token: str) -> bytes:
    """What is stored of a token: its SHA-256."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What an operator sees of a token: its grants and life, its name; never the token itself."""

    grants: TokenRow
    name: str | None
    created_at: datetime
    revoked_reason: str | None


# Every token query answers these columns, in this order (see `_token_info`).
_GRANT_COLUMNS = "id, role, products, expires_at, revoked_at, name, created_at, revoked_reason"
_SELECT_TOKENS_SQL = f"SELECT {_GRANT_COLUMNS} FROM api_tokens"  # noqa: S608 - constants only
_REVOKE_SQL = f"""UPDATE api_tokens SET revoked_at = now(), revoked_reason = $2
                  WHERE id = $1 AND revoked_at IS NULL RETURNING {_GRANT_COLUMNS}"""  # noqa: S608
MAX_TOKEN_NAME, MAX_REVOKE_REASON = 200, 500  # as the CHECKs of 008_token_lifecycle.sql


def _token_info(row: asyncpg.Record) -> TokenInfo:
    return TokenInfo(TokenRow(row[0], row[1], tuple(row[2]), row[3], row[4]), row[5], row[6], row[7])


def _check_text(text: str, what: str, limit: int) -> None:
    """One line of 1 to `limit` printable characters (it is shown in tables and stored as text)."""
    if not 1 <= len(text) <= limit or not text.isprintable() or text != text.strip():
        raise InputError(f"{what} must be 1 to {limit} printable characters without surrounding spaces")


@asynccontextmanager
async def _owner_connection(dsn: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """A connection as the DSN's own role; a schema older than this code is an InputError, not a crash."""
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    except (asyncpg.UndefinedColumnError, asyncpg.UndefinedTableError) as exc:
        raise InputError(
            f"this database's schema is older than this evledger ({exc}): run `evledger init` first"
        ) from exc
    finally:
        await conn.close()


def check_new_token(role: str, products: list[str], name: str | None, expires_at: datetime | None) -> None:
    """Refuse a token request that cannot be stored (InputError), before any database is touched.

    An unknown role, a product name no statement can carry, a bad name, or an expiry not
    in the future. Callers check before starting a database; `issue_token` checks again.
    """
    if role not in TOKEN_ROLES:
        raise InputError(f"the role must be one of {', '.join(TOKEN_ROLES)}, not {role!r}")
    for product in products:
        if not 0 < len(product) <= MAX_NAME:
            raise InputError(f"a product name has 1 to {MAX_NAME} characters, not {len(product)}")
    if name is not None:
        _check_text(name, "a token's name", MAX_TOKEN_NAME)
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise InputError(f"the expiry {format_time(expires_at)} is not in the future")


def check_revoke_reason(reason: str) -> None:
    """InputError unless the reason is one line of 1 to MAX_REVOKE_REASON printable characters."""
    _check_text(reason, "the reason", MAX_REVOKE_REASON)


async def issue_token(
    dsn: str,
    role: str,
    products: list[str],
    *,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[int, str]:
    """Create an API token for `role` (limited to `products`; none means all); return its id and the token.

    The token is shown only here; the database keeps its SHA-256. InputError as `check_new_token`.
    """
    check_new_token(role, products, name, expires_at)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with _owner_connection(dsn) as conn:
        token_id: int = await conn.fetchval(
            """INSERT INTO api_tokens (token_hash, role, products, name, expires_at)
               VALUES ($1, $2, $3, $4, $5) RETURNING id""",
            hash_token(token),
            role,
            products,
            name,
            expires_at,
        )
    return token_id, token


async def create_token(dsn: str, role: str, products: list[str]) -> str:
    """A new API token for `role` and `products`, with no name and no expiry (see `issue_token`)."""
    return (await issue_token(dsn, role, products))[1]


async def list_tokens(dsn: str) -> list[TokenInfo]:
    """Every token ever issued, revoked and expired ones included, in order of id."""
    async with _owner_connection(dsn) as conn:
        rows = await conn.fetch(_SELECT_TOKENS_SQL + " ORDER BY id")
    return [_token_info(row) for row in rows]


async def revoke_token(dsn: str, token_id: int, reason: str) -> TokenInfo:
    """Mark token `token_id` revoked for `reason`, for good; return it as it now stands.

    NotFoundError for an unknown id; ConflictError when it was revoked before (the first
    revocation and its reason stand). The service refuses it within TOKEN_CACHE_SECONDS.
    """
    check_revoke_reason(reason)
    if not 1 <= token_id <= MAX_TOKEN_ID:
        raise NotFoundError(f"no token has id {token_id}: `evledger token list` shows them")
    async with _owner_connection(dsn) as conn:
        row = await conn.fetchrow(_REVOKE_SQL, token_id, reason)
        if row is None:
            row = await conn.fetchrow(_SELECT_TOKENS_SQL + " WHERE id = $1", token_id)
            if row is None:
                raise NotFoundError(f"no token has id {token_id}: `evledger token list` shows them")
            earlier = _token_info(row)
            raise ConflictError(
                f"token {token_id} was already revoked at {format_time(row[4])}: {earlier.revoked_reason}"
            )
    return _token_info(row)
