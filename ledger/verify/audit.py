"""The audit of a ledger database: recompute the whole log from its rows, compare it with all that is stored.

Through the storage Protocol (`ledger.storage.protocol.LogStore`, read-only),
in index order, in pages: every entry's leaf hash (RFC 9162 §2.1.1), every
entry through `LogReplayer` (times included: never backwards, never in the
future), its query columns, every hash tile (C2SP tlog-tiles), every
checkpoint ever issued (its signature by the ledger key that entry 0
registers, its row, the root the entries rebuild at its size, and the
completeness index root they give, `ledger.verify.index_check`), the log
head, and finally that no entry, checkpoint or tile lies beyond the head. The
first disagreement is raised as a VerificationError with the index and the
checkpoint it contradicts. The audit covers the log up to the head read at the
start, so it may run while the service appends; rows beyond the head are
looked for again after a second read of the head. Memory is flat in the log's
size apart from the key registry.

No event loop is named here: the caller runs the coroutines, and may pass a
`ReadAhead` (`asyncio.ensure_future`) so that the next page is read while one
is checked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, Protocol

from ledger.core.checkpoint import open_checkpoint
from ledger.core.hashing import EMPTY_ROOT, HASH_SIZE
from ledger.core.keys import VerifierKey
from ledger.core.sparse_merkle import Head as IndexHead
from ledger.core.tiles import TILE_WIDTH
from ledger.errors import ChainError, InputError, LedgerError, VerificationError, failure_context
from ledger.rules.chains import index_line_of, is_key_event
from ledger.rules.replay import LogReplayer, ReplayedEntry, latest_plausible_time
from ledger.storage.protocol import CheckpointRow, EntryRow, Head, LogStore, TileRow
from ledger.verify.audit_checks import (
    check_checkpoint_row,
    check_head,
    check_key_chain_claim,
    check_nothing_beyond,
    check_row_columns,
    check_row_hash,
    ledger_key_of,
)
from ledger.verify.index_check import IndexCheck, chained_from_note
from ledger.verify.tree_check import BuiltTile, Progress, TileBuilder, compare_tile

ENTRY_PAGE = 4 * TILE_WIDTH  # pages start on a tile boundary, so a page's level-0 tiles are its own
CHECKPOINT_PAGE = 1000
Page = tuple[list[EntryRow], list[TileRow]]  # a page of entries, and the level-0 tiles they fill


class PendingPage(Protocol):
    """A page read under way: awaited for the page, cancelled when the audit stops before it."""

    def __await__(self) -> Generator[Any, None, Page]:
        """Wait for the page."""
        ...

    def cancel(self) -> bool:
        """Give the read up."""
        ...


# Starts a page read and returns it under way (`asyncio.ensure_future` runs it as a task).
ReadAhead = Callable[[Coroutine[Any, Any, Page]], PendingPage]


class _InTurn:
    """A page read that runs only when awaited: no read-ahead."""

    __slots__ = ("_read",)

    def __init__(self, read: Coroutine[Any, Any, Page]) -> None:
        self._read = read

    def __await__(self) -> Generator[Any, None, Page]:
        return self._read.__await__()

    def cancel(self) -> bool:
        self._read.close()  # never started, or finished: closing it only keeps it from being reported
        return True


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What an audit that passed went through."""

    origin: str
    tree_size: int
    root_hash: bytes
    checkpoints: int
    tiles: int
    key_events: int
    signatures: int
    index_roots: int = 0  # checkpoints whose completeness index root was recomputed and matched


class LogAudit:
    """One pass over the stored log up to `head.tree_size`."""

    def __init__(
        self,
        store: LogStore,
        head: Head,
        trusted: VerifierKey | None,
        progress: Progress,
        read_ahead: ReadAhead | None = None,
    ) -> None:
        """Audit `store` up to `head`; `trusted`, when given, must be the key entry 0 registers.

        With `read_ahead`, each page of entries is read while the one before it is
        checked; without, pages are read in turn.
        """
        self.store = store
        self.read_ahead: ReadAhead = read_ahead if read_ahead is not None else _InTurn
        self.head = head
        self.trusted = trusted
        self.progress = progress
        self.replayer = LogReplayer(not_after=latest_plausible_time())
        self.index = IndexCheck(self.replayer.chains)
        self.stated_from: tuple[int, int] | None = None  # (first chained index, size of the checkpoint)
        self.builder = TileBuilder()
        self.ledger_key: VerifierKey | None = None
        self.pending: deque[CheckpointRow] = deque()
        self.checkpoints_read_to = 0  # the next page of checkpoints starts at this tree size
        self.checkpoints = self.tiles = self.signatures = 0
        self.key_events = 0
        self.last_event = -1
        self.last_admin = -1
        self.last_time = ""
        self.last_checked = 0  # tree size of the newest checkpoint checked
        self.page_tiles: dict[int, TileRow] = {}

    async def run(self) -> AuditReport:
        """Audit everything; raise VerificationError at the first disagreement."""
        size = self.head.tree_size
        await self._refill_checkpoints()
        page = self.read_ahead(self._read_page(0)) if size else None
        try:
            for start in range(0, size, ENTRY_PAGE):
                assert page is not None  # noqa: S101 - one page is always requested ahead
                rows, tiles = await page
                following = start + ENTRY_PAGE
                # The next page is read while this one is checked.
                page = self.read_ahead(self._read_page(following)) if following < size else None
                self.page_tiles = {tile.index: tile for tile in tiles}
                await self._check_page(start, min(ENTRY_PAGE, size - start), rows)
        finally:
            if page is not None:
                page.cancel()  # a failure stops the audit: the page read ahead is not wanted
        for built in self.builder.partial_tiles():
            await self._check_tile(built)
        self._check_end()
        await self._check_nothing_beyond()
        return AuditReport(
            self.head.origin,
            size,
            self.builder.root(),
            self.checkpoints,
            self.tiles,
            self.key_events,
            self.signatures,
            self.index.compared,
        )

    async def _check_nothing_beyond(self) -> None:
        """No entry, checkpoint or tile lies past the head (rows written around the sequencer).

        The service may have appended since the audit read the head: what lies past the
        head read now is looked for, and only if the head has not moved does the first
        read's head bound it (a moved head must still be whole, which the next audit checks).
        """
        now = await self.store.head()
        size = now.tree_size if now is not None else self.head.tree_size
        check_nothing_beyond(await self.store.rows_beyond(size), size)

    async def _read_page(self, start: int) -> tuple[list[EntryRow], list[TileRow]]:
        count = min(ENTRY_PAGE, self.head.tree_size - start)
        rows = await self.store.entries(start, count)
        first, last = start // TILE_WIDTH, (start + count - 1) // TILE_WIDTH
        return rows, await self.store.tiles([(0, index) for index in range(first, last + 1)])

    async def _check_page(self, start: int, count: int, rows: list[EntryRow]) -> None:
        for row in rows:
            index = self.builder.size
            try:
                check_row_hash(row, index)
            except VerificationError as exc:
                exc.add_note(self._contradicted(index))
                raise
            self._check_slot(row)
            try:
                replayed = self._check_entry(row, index)
            except ChainError as exc:
                exc.add_note(self._contradicted(index))
                if self.stated_from is not None:
                    exc.add_note(chained_from_note(*self.stated_from))
                raise
            except VerificationError as exc:
                exc.add_note(self._contradicted(index))
                raise
            if index == 0:
                self.ledger_key = ledger_key_of(replayed, self.trusted)
                await self._state_first_chained_index(self.ledger_key)
            for built in self.builder.append(row.leaf_hash):
                await self._check_tile(built)
            await self._check_checkpoints()
        self.progress.advance(len(rows))
        if self.builder.size != start + count:
            missing = self.builder.size
            error = VerificationError(f"entry {missing} is missing from the database")
            error.add_note(self._contradicted(missing))
            raise error

    def _check_slot(self, row: EntryRow) -> None:
        """The entry's leaf hash is its slot of the stored level-0 tile (before replay: names this index)."""
        tile_index, slot = divmod(row.index, TILE_WIDTH)
        stored = self.page_tiles.get(tile_index)
        if stored is None or stored.width <= slot:
            return  # reported with the whole tile, when it is complete
        served = stored.hashes[slot * HASH_SIZE : (slot + 1) * HASH_SIZE]
        if served != row.leaf_hash:
            raise VerificationError(
                f"hash tile 0/{tile_index} in the database, slot {slot}, is not the leaf hash of entry "
                f"{row.index}: the entry or the tile was altered",
                expected=served.hex(),
                calculated=row.leaf_hash.hex(),
                labels=("hash tile holds", "entry's leaf_hash"),
            )

    def _check_entry(self, row: EntryRow, index: int) -> ReplayedEntry:
        replayed = self.replayer.check(row.data)
        check_row_columns(row, replayed)
        self.index.note(replayed.entry)
        if is_key_event(replayed.admitted):
            self.last_event = index
            self.key_events += 1
        if replayed.admitted.admin is not None:
            self.last_admin = index
        self.last_time = replayed.entry.time
        self.signatures += len(replayed.admitted.signers)
        return replayed

    def _contradicted(self, index: int) -> str:
        """Which checkpoint a bad entry contradicts: the first one issued over it."""
        if self.pending:
            return f"index {index} contradicts the checkpoint at size {self.pending[0].tree_size}"
        return f"index {index} (no stored checkpoint covers it yet)"

    async def _state_first_chained_index(self, ledger_key: VerifierKey) -> None:
        """Replay from entry 1 on with the first chained index the newest checkpoint states.

        docs/completeness-index.md#checkpoints: entries below it carry no artifact links, entries
        from it on exactly the implied ones. The checkpoint at the head is read ahead of its turn
        (entry 0, which carries no artifact link, names the key it must verify with); every
        checkpoint's line is then compared with it (`IndexCheck.compare`). When the head checkpoint
        does not open or has no (well-formed) line, the first stored ones are asked, in order.
        """
        head = await self.store.checkpoint(self.head.tree_size)
        # A head checkpoint that does not open (its own check reports it, at its turn) leaves the
        # first checkpoints to state it: the first page of them, in order.
        rows = [head] if head is not None else []
        rows += await self.store.checkpoints_from(0, CHECKPOINT_PAGE)
        for row in rows:
            try:
                line = index_line_of(open_checkpoint(row.note, ledger_key, self.head.origin).extensions)
            except LedgerError:
                continue
            if line is not None:
                self.replayer.chains.chained_from = line[1]
                self.stated_from = (line[1], row.tree_size)
                self.index.chained_from_source = f"the checkpoint at size {row.tree_size}"
                return

    async def _refill_checkpoints(self) -> None:
        if self.pending or self.checkpoints_read_to > self.head.tree_size:
            return
        rows = await self.store.checkpoints_from(self.checkpoints_read_to, CHECKPOINT_PAGE)
        self.pending.extend(row for row in rows if row.tree_size <= self.head.tree_size)
        self.checkpoints_read_to = rows[-1].tree_size + 1 if rows else self.head.tree_size + 1

    async def _check_checkpoints(self) -> None:
        size = self.builder.size
        while self.pending and self.pending[0].tree_size <= size:
            row = self.pending.popleft()
            # Checked after every entry, so an earlier size can only be a checkpoint of the empty tree.
            root = self.builder.root() if row.tree_size == size else EMPTY_ROOT
            assert self.ledger_key is not None  # noqa: S101 - set by entry 0, before any size >= 1
            with failure_context(f"checkpoint at size {row.tree_size}"):
                signed = check_checkpoint_row(row, root, self.ledger_key, self.head.origin)
                check_key_chain_claim(signed, self.last_event)
            if row.tree_size == size:  # (a checkpoint of the empty tree has no chain to compare)
                await self._compare_index(row.tree_size, signed.extensions)
            self.checkpoints += 1
            self.last_checked = row.tree_size
            await self._refill_checkpoints()

    async def _compare_index(self, size: int, extensions: tuple[str, ...]) -> None:
        """The checkpoint's index root against the entries'; a mismatch also names the first key disagreeing.

        That key is found by comparing the recomputed map with the database's own chain heads
        at that size (`LogStore.index_view`, rewound there), read only after a mismatch.
        """
        try:
            self.index.compare(size, extensions)  # names the checkpoint itself
        except VerificationError as exc:
            if self.index.mismatched_at == size:
                exc.add_note(self.index.first_disagreement(await stored_index_at(self.store, size)))
            raise

    async def _check_tile(self, built: BuiltTile) -> None:
        tile = built.tile
        stored = self.page_tiles.get(tile.index) if tile.level == 0 else None
        if stored is None:
            found = await self.store.tiles([(tile.level, tile.index)])
            stored = found[0] if found else None
        width = len(built.hashes) // HASH_SIZE
        if stored is None or stored.width < width:
            have = "no row" if stored is None else f"width {stored.width}"
            raise VerificationError(
                f"hash tile {tile.level}/{tile.index} should hold {width} hashes, the database has {have}"
            )
        if tile.is_full and stored.width != width:
            raise VerificationError(f"full hash tile {tile.level}/{tile.index} has width {stored.width}")
        compare_tile(built, stored.hashes[: len(built.hashes)], "the database")
        self.tiles += 1

    def _check_end(self) -> None:
        size = self.head.tree_size
        if size and self.last_checked != size:
            raise VerificationError(
                f"log_head is at size {size}, but no checkpoint was issued at that size",
                expected=str(size),
                calculated=str(self.last_checked),
                labels=("log_head size", "last checkpoint size"),
            )
        leaf = self.replayer.chain.prev_leaf_hash
        check_head(
            self.head, self.builder.compact.hashes, leaf, self.last_time,
            last_key_event=self.last_event, last_admin_entry=self.last_admin,
        )  # fmt: skip


async def stored_index_at(store: LogStore, size: int) -> dict[bytes, IndexHead]:
    """Every chain head the store holds, as it held them at log size `size` (a checkpoint's).

    One snapshot: every stored head, with those that moved since put back (`IndexView.rewind`).
    """
    view = await store.index_view(-1, 0, size)
    held = {key: head for content in view.contents.values() for key, head in content}
    for key, head in view.rewind.items():
        if head is None:
            held.pop(key, None)
        else:
            held[key] = head
    return held


async def audit_store(
    store: LogStore, trusted: VerifierKey | None, *, progress: bool, read_ahead: ReadAhead | None = None
) -> AuditReport:
    """Audit the log in `store` up to its current head; raise VerificationError at the first disagreement.

    Precondition: the database is initialised (`evledger init`); InputError otherwise.
    `trusted`, when given, must be the ledger key entry 0 registers. With `progress`, a
    counter is drawn on stderr. `read_ahead` (for example `asyncio.ensure_future`)
    reads the next page of entries while one is checked. The store's own errors
    (an unreachable database) propagate unchanged.
    """
    head = await store.head()
    if head is None:
        raise InputError("the database holds no ledger (run `evledger init` first)")
    counter = Progress("audit", head.tree_size, enabled=progress)
    try:
        return await LogAudit(store, head, trusted, counter, read_ahead).run()
    finally:
        counter.close()
