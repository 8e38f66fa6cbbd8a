"""What an auditor starts from without knowing a release: releases, keys, policies (issue #12).

Releases are listed from the evidence index in (product, version) order, a page
at a time, within a token's products, narrowed by state and by the environments
they were deployed to. Keys and policies are read from their admin entries in
the log (the kind index) and replayed in index order, so every service process
answers the same as committed, whatever its own registry has caught up with. A
search by owner resolves the owner's keyids the same way and searches each.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import msgspec

from ledger.core.dsse import envelope_payload
from ledger.core.encoding import format_time
from ledger.core.entry import parse_entry
from ledger.errors import EncodingError, InputError, PermissionDeniedError
from ledger.query import timeline
from ledger.records.admin import (
    KEY_EVENT_KINDS,
    POLICY_KIND,
    KeyRegistered,
    KeyRevoked,
    PolicyPublished,
    decode_admin_record,
)
from ledger.records.predicates import DEPLOYMENT, RELEASE_SEAL, Deployment, decode_predicate
from ledger.records.statement import MAX_NAME, decode_statement
from ledger.rules.registry import KeyRegistry, RegisteredKey
from ledger.storage.protocol import EntryRow, EvidenceIndex, LogStore, ReleaseSummaryRow

RELEASE_STATES = ("open", "sealed")
# A page filtered by state or environment reads at most this many releases past the page (then
# returns a cursor), so a request's work is bounded however rare the state or environment asked for.
STATE_SCAN = 1000
MAX_CURSOR = 2048  # characters: two names of at most a few hundred characters each, in base64
_cursor_decoder = msgspec.json.Decoder(tuple[str, str])
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ReleaseSummary(msgspec.Struct, frozen=True):
    """A release: its chain's length, first and newest entries, and the seal's index when sealed.

    Also the wire type of `GET /v1/releases` (one per release).
    """

    product: str
    version: str
    events: int
    first_index: int
    last_index: int
    first_time: str
    last_time: str
    sealed_at: int | None


class ReleaseList(msgspec.Struct, frozen=True):
    """One page of releases (`GET /v1/releases`); `next_cursor` continues after it (null at the end)."""

    releases: list[ReleaseSummary]
    next_cursor: str | None


def encode_release_cursor(product: str, version: str) -> str:
    """The opaque cursor continuing after release (product, version): URL-safe base64 of JSON."""
    return base64.urlsafe_b64encode(msgspec.json.encode((product, version))).decode().rstrip("=")


def parse_release_cursor(cursor: str | None) -> tuple[str, str] | None:
    """The release a cursor continues after (None without one); InputError for anything we did not issue."""
    if cursor is None or cursor == "":
        return None
    refused = InputError(f"cursor {cursor[:40]!r} is not one this server issued")
    if len(cursor) > MAX_CURSOR:
        raise refused
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        product, version = _cursor_decoder.decode(raw)
        # Text PostgreSQL can store and compare: no NUL, no lone surrogate.
        for name in (product, version):
            name.encode("utf-8")
    except (binascii.Error, ValueError, msgspec.DecodeError, UnicodeError) as exc:
        raise refused from exc
    if "\x00" in product + version:
        raise refused
    return product, version


def check_filter_name(value: str, what: str) -> str:
    """`value` as a product or environment to filter by; InputError when no release could carry it.

    At most MAX_NAME characters (as a statement's release names) and no control character.
    """
    if len(value) > MAX_NAME:
        raise InputError(f"{what} is longer than {MAX_NAME} characters")
    if _CONTROL.search(value):
        raise InputError(f"{what} {value[:40]!r} holds a control character")
    return value


async def _rows_in_scope(
    index: EvidenceIndex,
    product: str | None,
    scope: Collection[str],
    after: tuple[str, str] | None,
    count: int,
) -> list[ReleaseSummaryRow]:
    """Up to `count` releases after `after`: `product`'s, else those of the products in `scope` (empty: all).

    A scope is listed one product after another, in code point order, each product a skip scan.
    """
    if product is not None or not scope:
        return await index.releases(product=product, after=after, count=count)
    rows: list[ReleaseSummaryRow] = []
    for name in sorted(set(scope)):
        if after is not None and name < after[0]:
            continue
        start = after if after is not None and name == after[0] else None
        rows += await index.releases(product=name, after=start, count=count - len(rows))
        if len(rows) == count:
            break
    return rows


def deployed_into(row: EntryRow) -> str | None:
    """The environment a deployment entry names; None when today's rules cannot read its predicate."""
    try:
        statement = decode_statement(envelope_payload(parse_entry(row.data).envelope))
        deployment = decode_predicate(DEPLOYMENT, statement.predicate)
    except EncodingError:
        return None
    return deployment.environment if isinstance(deployment, Deployment) else None


async def deployed_releases(
    index: EvidenceIndex, releases: Sequence[tuple[str, str]], environment: str
) -> set[tuple[str, str]]:
    """Those of `releases` with a deployment into `environment` on their chain (failed attempts included)."""
    rows = await index.release_entries_of_kind(DEPLOYMENT, releases)
    return {(r.product or "", r.version or "") for r in rows if deployed_into(r) == environment}


async def releases(  # noqa: PLR0913 - each filter is one keyword
    index: EvidenceIndex,
    *,
    product: str | None,
    state: str | None,
    cursor: str | None,
    limit: int,
    deployed_to: str | None = None,
    scope: Collection[str] = (),
) -> ReleaseList:
    """A page of releases in (product, version) order, narrowed by every filter given.

    `product`: only its releases; `state`: open or sealed; `deployed_to`: only releases with a
    deployment into that environment on their chain (a failed attempt counts: it is a
    deployment event); `scope`: the products a token may read (empty: every product), so a
    `product` outside it is PermissionDeniedError. InputError for an unknown state, a name no
    release could carry, or a cursor this server did not issue. A filtered page reads at most
    `limit` + STATE_SCAN releases, so it may be short (even empty) and still carry a cursor.
    Precondition: 1 <= `limit` <= timeline.MAX_PAGE.
    """
    if state is not None and state != "" and state not in RELEASE_STATES:
        raise InputError(f"state must be open or sealed, got {state[:40]!r}")
    wanted = state or None
    product = check_filter_name(product, "product") if product else None
    environment = check_filter_name(deployed_to, "environment") if deployed_to else None
    if product is not None and scope and product not in scope:
        raise PermissionDeniedError(f"this token may not read product {product!r}")
    after = parse_release_cursor(cursor)
    narrowed = wanted is not None or environment is not None
    count = limit + 1 + (STATE_SCAN if narrowed else 0)
    rows = await _rows_in_scope(index, product, scope, after, count)
    candidates = [r for r in rows if wanted is None or (r.last_kind == RELEASE_SEAL) == (wanted == "sealed")]
    if environment is not None:
        deployed = await deployed_releases(index, [(r.product, r.version) for r in candidates], environment)
        candidates = [r for r in candidates if (r.product, r.version) in deployed]
    found: list[ReleaseSummary] = []
    for row in candidates:
        sealed_at = row.last_index if row.last_kind == RELEASE_SEAL else None
        if len(found) == limit:
            last = found[-1]
            return ReleaseList(found, encode_release_cursor(last.product, last.version))
        found.append(
            ReleaseSummary(
                product=row.product,
                version=row.version,
                events=row.last_seq + 1,
                first_index=row.first_index,
                last_index=row.last_index,
                first_time=format_time(row.first_time),
                last_time=format_time(row.last_time),
                sealed_at=sealed_at,
            )
        )
    if len(rows) == count:  # the scan stopped before the end: continue after the last release read
        return ReleaseList(found, encode_release_cursor(rows[-1].product, rows[-1].version))
    return ReleaseList(found, None)


@dataclass(frozen=True, slots=True)
class KeyHistory:
    """A key as registered, with the entries (index, time, signer's keyid) that registered and revoked it."""

    key: RegisteredKey
    registered_time: str
    revoked_time: str | None
    registered_by: str = ""
    revoked_by: str | None = None


def _admin_record(row: EntryRow) -> object:
    return decode_admin_record(envelope_payload(parse_entry(row.data).envelope))


async def key_histories(store: LogStore) -> list[KeyHistory]:
    """Every key ever registered, in order of registration, replayed from the log's key events."""
    rows = await store.entries_of_kinds(KEY_EVENT_KINDS, 0)
    registry = KeyRegistry()
    times = {r.index: format_time(r.integrated_at) for r in rows}
    signers = {r.index: r.signer_keyid for r in rows}
    for row in rows:
        record = _admin_record(row)
        if isinstance(record, KeyRegistered):
            registry.register(row.index, record)
        elif isinstance(record, KeyRevoked):
            registry.revoke(row.index, record)
    keys = sorted(registry.keys.values(), key=lambda k: k.registered_at)
    return [
        KeyHistory(
            k,
            times[k.registered_at],
            None if k.revoked_at is None else times[k.revoked_at],
            signers[k.registered_at],
            None if k.revoked_at is None else signers[k.revoked_at],
        )
        for k in keys
    ]


@dataclass(frozen=True, slots=True)
class PublishedPolicy:
    """A policy.published entry: where and when, what it published, whether it is in force now, who signed."""

    index: int
    time: str
    name: str
    version: str
    digest: str
    in_force: bool
    signer: str = ""  # the keyid string of the admin key that published it


async def published_policies(store: LogStore) -> list[PublishedPolicy]:
    """Every published policy in index order; the newest is the one in force."""
    rows = await store.entries_of_kinds((POLICY_KIND,), 0)
    found = []
    for number, row in enumerate(rows):
        record = _admin_record(row)
        if not isinstance(record, PolicyPublished):  # the kind index says it is
            continue
        found.append(
            PublishedPolicy(
                index=row.index,
                time=format_time(row.integrated_at),
                name=record.name,
                version=record.version,
                digest=record.digest,
                in_force=number == len(rows) - 1,
                signer=row.signer_keyid,
            )
        )
    return found


async def owner_keyids(store: LogStore, owner: str) -> list[str]:
    """The keyids ever registered to `owner` (exactly as registered), revoked ones included."""
    return [h.key.keyid for h in await key_histories(store) if h.key.owner == owner]


async def search_by_owner(
    store: LogStore,
    index: EvidenceIndex,
    holder: timeline.RegistryHolder,
    query: timeline.SearchQuery,
    owner: str,
) -> timeline.Page:
    """`timeline.search` over the entries signed by any key ever registered to `owner`, index order.

    Preconditions as `timeline.search`; `query.signer` is None (the two do not combine).
    """
    keyids = tuple(await owner_keyids(store, owner))
    return await timeline.search(store, index, holder, replace(query, signer_keyids=keyids))
