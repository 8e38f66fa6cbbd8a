"""Owner-side database operations: migrations, the log head row, API tokens.

These run with the DSN's own role (the database owner), never as the service
role: the service may not create tokens or change the schema.
"""

from __future__ import annotations

import hashlib
import secrets
from importlib import resources

import asyncpg

_MIGRATION_LOCK = 0x65766C64  # advisory lock id ("evld"): one migrator at a time
TOKEN_PREFIX = "evl_"  # noqa: S105 - a visible prefix, not a secret


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


async def create_token(dsn: str, role: str, products: list[str]) -> str:
    """Create an API token for `role` (limited to `products`; none means all) and return it.

    The token is shown only here; the database keeps its SHA-256.
    """
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO api_tokens (token_hash, role, products) VALUES ($1, $2, $3)",
            hash_token(token),
            role,
            products,
        )
    finally:
        await conn.close()
    return token
