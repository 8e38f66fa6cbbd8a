"""Releases, artifacts and searches read out of the evidence index as events (docs/http-api.md, issue #4).

A release's timeline is its back-link chain plus the generic evidence about
what its builds produced: two index queries on one connection (the chain, then
a GIN scan for the evidence) however long the log, then one msgspec decode per
entry. Signers are named from the key registry the sequencer keeps; a keyid
it does not know yet (registered through another service process) is caught
up from the store's key events.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ledger.core.keys import VerifierKey
from ledger.errors import InputError, NotFoundError
from ledger.query.registry_follow import catch_up
from ledger.records.admin import ADMIN_KINDS
from ledger.records.formats import SHA256_DIGEST_ANY_CASE, anchored, normal_sha256_digest, parse_offset_time
from ledger.records.predicates import KIND_NAMES, RELEASE_SEAL
from ledger.rules.chains import chain_is_complete
from ledger.rules.events import Decoded, Event, SignerNames, decode_event
from ledger.rules.registry import KeyRegistry
from ledger.storage.protocol import EntryRow, EvidenceIndex, LogStore

MAX_PAGE = 1000
DEFAULT_PAGE = 100
DIGEST_PATTERN = anchored(SHA256_DIGEST_ANY_CASE)
_CURSOR = re.compile(r"[0-9]{1,18}")
SHORT_KINDS: dict[str, tuple[str, ...]] = {}
for _type, _short in KIND_NAMES.items():
    SHORT_KINDS[_short] = (*SHORT_KINDS.get(_short, ()), _type)


class RegistryHolder(Protocol):
    """Whoever keeps the current key registry (the service's sequencer), and the key that proves it."""

    registry: KeyRegistry
    ledger_key: VerifierKey
    origin: str | None


@dataclass(frozen=True, slots=True)
class ReleaseTimeline:
    """A release's events in index order, and what its chain says about it."""

    product: str
    version: str
    events: list[Event]
    count: int  # entries on the release's chain
    head: Event  # the chain's newest entry
    sealed: bool
    complete: bool  # the chain walked from the head back to seq 0 has no gap


@dataclass(frozen=True, slots=True)
class Page:
    """One page of events; `next_cursor` continues after it (None at the end)."""

    events: list[Event]
    next_cursor: str | None


async def current_registry(store: LogStore, holder: RegistryHolder, keyids: Iterable[str]) -> KeyRegistry:
    """The holder's registry, caught up with the stored log first if it lacks any of `keyids`.

    Caught up as the log proves it (`ledger.query.registry_follow.catch_up`: admin entries replayed
    below the newest checkpoint the ledger key signed); the caught-up copy replaces the
    holder's registry, so the next request finds it current.
    """
    registry = holder.registry
    if all(k in registry.keys for k in keyids):
        return registry
    fresh = await catch_up(store, registry, holder.ledger_key, holder.origin)
    if fresh is not registry:
        holder.registry = fresh
    return fresh


async def _decode(store: LogStore, holder: RegistryHolder, rows: Sequence[EntryRow]) -> list[Decoded]:
    names = SignerNames(await current_registry(store, holder, {r.signer_keyid for r in rows}))
    return [decode_event(r.data, r.signer_keyid, names) for r in rows]


async def release_timeline(
    store: LogStore, index: EvidenceIndex, holder: RegistryHolder, product: str, version: str
) -> ReleaseTimeline:
    """The timeline of release (product, version); NotFoundError when it has no entry.

    Precondition: `index` reads the entries of `store` (whose key events name the signers).
    """
    decoded = await _decode(store, holder, await index.release_timeline_entries(product, version))
    chain = [d for d in decoded if d.event.release_seq is not None]
    if not chain:
        raise NotFoundError(f"no release {product} {version}")
    head = max(chain, key=lambda d: d.event.release_seq or 0).event
    return ReleaseTimeline(
        product=product,
        version=version,
        events=[d.event for d in decoded],
        count=len(chain),
        head=head,
        sealed=head.predicate_type == RELEASE_SEAL,
        complete=chain_is_complete(chain, product, version),
    )


def parse_digest(text: str) -> str:
    """`sha256:<64 hex>` in its stored spelling (lowercase); InputError otherwise."""
    digest = normal_sha256_digest(text)
    if digest is None:
        raise InputError(f"an artifact digest is written sha256:<64 hex digits>, got {text[:80]!r}")
    return digest


def parse_cursor(cursor: str | None) -> int:
    """The index a cursor continues from (0 without one); InputError for anything but what we issue."""
    if cursor is None or cursor == "":
        return 0
    if not _CURSOR.fullmatch(cursor):
        raise InputError(f"cursor {cursor[:40]!r} is not one this server issued")
    return int(cursor)


def _page(decoded: list[Decoded], rows: Sequence[EntryRow], limit: int) -> Page:
    more = len(rows) > limit
    return Page([d.event for d in decoded[:limit]], str(rows[limit].index) if more else None)


async def artifact_events(  # noqa: PLR0913, PLR0917 - the log, its index, the registry, the request's three
    store: LogStore, index: EvidenceIndex, holder: RegistryHolder, digest: str, cursor: str | None, limit: int
) -> Page:
    """Entries about an artifact (subjects, build artifacts), a page at a time, index order.

    Preconditions: `index` reads the entries of `store`; `digest` passed `parse_digest`;
    1 <= `limit` <= MAX_PAGE.
    """
    rows = await index.entries_about_artifact(digest, parse_cursor(cursor), limit + 1)
    return _page(await _decode(store, holder, rows[:limit]), rows, limit)


def resolve_kinds(kind: str | None) -> tuple[str, ...]:
    """Stored kind values for a `kind` filter: a short name, a predicate type or an admin kind.

    InputError for `evidence` (generic evidence has one kind per predicate type:
    give the type) and for a word that is none of these.
    """
    if kind is None or kind == "":
        return ()
    if kind in SHORT_KINDS:
        return SHORT_KINDS[kind]
    if kind in ADMIN_KINDS or "://" in kind:
        return (kind,)
    if kind == "evidence":
        raise InputError("generic evidence is searched by its predicate type, e.g. kind=https://…/v1")
    names = ", ".join([*SHORT_KINDS, *ADMIN_KINDS])
    raise InputError(f"kind must be one of {names}, or a predicate type URI; got {kind[:80]!r}")


def parse_moment(text: str | None, what: str) -> datetime | None:
    """An RFC 3339 time with a zone (`Z` or an offset); InputError otherwise."""
    if text is None or text == "":
        return None
    moment = parse_offset_time(text)
    if moment is None:
        raise InputError(f"{what} must be an RFC 3339 time with a zone, e.g. 2026-01-31T12:00:00Z")
    return moment


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A search's filters as the route received them; every one is optional."""

    kind: str | None = None
    product: str | None = None
    version: str | None = None
    signer: str | None = None
    since: str | None = None  # inclusive
    until: str | None = None  # exclusive
    cursor: str | None = None
    limit: int = DEFAULT_PAGE
    # Any of these keyids (an owner's keys, `audit_lists.search_by_owner`), instead of `signer`;
    # None: no such filter; empty: no key, so nothing matches.
    signer_keyids: tuple[str, ...] | None = None


async def search(store: LogStore, index: EvidenceIndex, holder: RegistryHolder, query: SearchQuery) -> Page:
    """Entries matching every filter, a page at a time, index order; InputError for a bad filter.

    Times become index bounds first (entry times never go backwards), so every
    page is one ordered index scan from its cursor. A combination of filters may
    return a short (even empty) page with a cursor: the store bounds the entries
    one request reads. Preconditions: `index` reads the entries of `store`;
    1 <= `query.limit` <= MAX_PAGE.
    """
    kinds = resolve_kinds(query.kind)
    if query.version and not query.product:
        raise InputError("version filters within a product: give product too")
    start = parse_cursor(query.cursor)
    since = parse_moment(query.since, "since")
    until = parse_moment(query.until, "until")
    stop = None
    if since is not None:
        first = await index.first_index_at_or_after(since)
        if first is None:
            return Page([], None)
        start = max(start, first)
    if until is not None:
        stop = await index.first_index_at_or_after(until)
    signers: tuple[str, ...] = (query.signer,) if query.signer else ()
    if query.signer_keyids is not None:
        signers = query.signer_keyids
        if not signers:
            return Page([], None)
    if stop is not None and start >= stop:
        return Page([], None)
    rows, resume = await index.search_entries(
        start=start,
        stop=stop,
        kinds=kinds,
        product=query.product or None,
        version=query.version or None,
        signers=signers,
        limit=query.limit + 1,
    )
    page = _page(await _decode(store, holder, rows[: query.limit]), rows, query.limit)
    if page.next_cursor is None and resume is not None:
        return Page(page.events, str(resume))
    return page
