"""The whole-log walk: every entry and every tile of a log, checked against its signed checkpoint.

Trusts nothing but the ledger key. `walk_log` reads the checkpoint and every
tile from a `TileSource` (a server or a directory copy, C2SP tlog-tiles),
replays every entry with `LogReplayer` (the checks every verifier applies:
canonical bytes, index, chain link, envelope signature by a key registered in
the log, admin role, plausible times), rebuilds the tree from the entries' own
bytes (RFC 9162 §2.1.1 leaf hashes) and compares each served hash tile and, at
the end, the root with the signed checkpoint, and the completeness index the
entries give with the checkpoint's `evledger-index` line (`ledger.verify.index_check`;
the replay takes its first chained index from that line). Memory stays flat in the log's
size: one entry bundle (and the prefetched next one), the compact range, the
key registry and at most one open tile per tile level. The first failure in
log order is raised as a VerificationError that names the entry or tile.
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import dataclass

from ledger.core.checkpoint import Checkpoint
from ledger.core.dsse import check_now
from ledger.core.entry import parse_entry
from ledger.core.hashing import HASH_SIZE, leaf_hash
from ledger.core.keys import VerifierKey, parse_verifier_key
from ledger.core.tiles import TILE_WIDTH, Tile, decode_entry_bundle, tile_width
from ledger.errors import (
    ChainError,
    EncodingError,
    LedgerError,
    RootMismatchError,
    VerificationError,
    failure_context,
)
from ledger.records.admin import KeyRegistered, KeyRevoked
from ledger.rules.replay import LogReplayer, ReplayedEntry, latest_plausible_time
from ledger.verify.anchoring import NO_ANCHORS, AnchorCheck, Anchoring, entry_time_limit
from ledger.verify.audit_checks import check_key_chain_claim
from ledger.verify.checkpoints import open_served_checkpoint
from ledger.verify.index_check import IndexCheck, chained_from_note, stated_first_chained_index
from ledger.verify.signature_pool import DeferredSignatures
from ledger.verify.tile_source import (
    MAX_BUNDLE_BYTES,
    MAX_CHECKPOINT_BYTES,
    MAX_TILE_BYTES,
    Prefetcher,
    TileSource,
)
from ledger.verify.tree_check import BuiltTile, Progress, TileBuilder, compare_tile

HELPERS_FROM_ENTRIES = 4096  # below this, starting helpers (about 0.3 s) costs more than it saves


def default_jobs(tree_size: int) -> int:
    """One signature-checking process per core: a check costs about twice the rest of a replay.

    Measured on 2 cores (60,000 entries from a tile directory, 3 interleaved rounds):
    8,716-9,488 entries/s with no helper, 10,158-12,389 with one, 11,126-13,525 with
    two. On a single core, or for a small log, there is nothing to gain.
    """
    cores = os.cpu_count() or 1
    return cores if cores > 1 and tree_size >= HELPERS_FROM_ENTRIES else 0


@dataclass(frozen=True, slots=True)
class WalkReport:
    """What a walk that passed went through: the verified checkpoint, the signatures checked, the time."""

    checkpoint: Checkpoint
    signatures: int
    seconds: float
    anchoring: Anchoring = NO_ANCHORS
    index_matched: bool = False  # the checkpoint carries an index root and the entries give the same


def walk_log(  # noqa: PLR0913 - the source, the key, then keyword-only options
    source: TileSource,
    verifier: VerifierKey,
    *,
    origin: str | None = None,
    jobs: int | None = None,
    progress: bool = False,
    anchor: AnchorCheck | None = None,
) -> WalkReport:
    """Verify the whole log `source` serves, trusting only `verifier` (the ledger key).

    Checks the checkpoint's signature (and that it names `origin`, when given), then
    every entry, every hash tile and the tree root against the checkpoint. `jobs`
    helper processes check signatures beside the replay (0: none; None: `default_jobs`).
    With `progress`, a counter is drawn on stderr. NotFoundError when the source has
    no checkpoint at all (nothing to verify); VerificationError at the first failure.
    With `anchor`, the checkpoint's anchors are checked before any entry (it gets the served
    note and its opened checkpoint; `ledger.verify.anchoring`), and no entry may then claim a
    time later than the checkpoint's trusted time. The checkpoint's `evledger-index` root, when it
    carries one, must be the completeness index the entries give (`ledger.verify.index_check`).
    """
    with ExitStack() as stack:
        fetch = stack.enter_context(Prefetcher(source))
        note = source.read("checkpoint", MAX_CHECKPOINT_BYTES)
        checkpoint = open_served_checkpoint(note, verifier, origin, source.describe("checkpoint"))
        anchoring = NO_ANCHORS if anchor is None else anchor(note, checkpoint)
        counter = Progress("verify-log", checkpoint.size, enabled=progress)
        helpers = default_jobs(checkpoint.size) if jobs is None else jobs
        signatures = stack.enter_context(DeferredSignatures(helpers)) if helpers > 0 else None
        with failure_context("checkpoint"):
            chained_from = stated_first_chained_index(checkpoint.extensions)
        walk = LogWalk(
            source,
            fetch,
            verifier,
            counter,
            signatures,
            not_after=entry_time_limit(anchoring),
            chained_from=chained_from,
        )
        try:
            walk.run(checkpoint)
        finally:
            counter.close()
        matched = walk.check_index(checkpoint)
        return WalkReport(checkpoint, walk.signature_count, counter.elapsed, anchoring, matched)


class LogWalk:
    """One pass over the level-0 tiles of a verified checkpoint, in log order."""

    def __init__(  # noqa: PLR0913 - what a walk reads and checks with, then keyword options
        self,
        source: TileSource,
        fetch: Prefetcher,
        verifier: VerifierKey,
        progress: Progress,
        signatures: DeferredSignatures | None = None,
        *,
        not_after: str | None = None,
        chained_from: int | None = None,
        replayer: LogReplayer | None = None,
    ) -> None:
        """Verify with `verifier`; read through `fetch`; `source` only names what is read.

        With `signatures`, entry signatures are checked by its helper processes (see
        `ledger.verify.signature_pool`); without, in the replay itself. No entry time may be
        later than `not_after` (default: the verifier's clock, `latest_plausible_time`).
        `chained_from` is the first chained index the checkpoint's `evledger-index` line states
        (None: unstated, `LogReplayer`). `replayer`, when given, is used instead of a new one
        (made with the same `check`, `not_after` and `chained_from`).
        """
        self.source = source
        self.fetch = fetch
        self.verifier = verifier
        self.progress = progress
        self.signatures = signatures
        self.chained_from = chained_from
        self.replayer = replayer or LogReplayer(
            check_now if signatures is None else signatures,
            not_after=not_after or latest_plausible_time(),
            chained_from=chained_from,
        )
        self.index = IndexCheck(self.replayer.chains)
        self.size = 0  # the size of the checkpoint `run` checks
        self.builder = TileBuilder()
        self.signature_count = 0
        self.last_key_event = -1  # index of the newest key registration or revocation seen

    def run(self, checkpoint: Checkpoint) -> None:
        """Check every entry and tile the checkpoint covers, then its root; raise VerificationError.

        The failure reported is the first in log order: signature checks still out are
        settled before any other failure is reported (`ledger.verify.signature_pool`).
        """
        try:
            self._run(checkpoint)
        except LedgerError:
            if self.signatures is not None:
                self.signatures.settle()  # raises instead when an earlier signature failed
            raise

    def _run(self, checkpoint: Checkpoint) -> None:
        size = self.size = checkpoint.size
        count = -(-size // TILE_WIDTH)
        tiles = (Tile(0, n, tile_width(0, n, size)) for n in range(count))
        current = next(tiles, None)
        queued = self._request(current)
        while current is not None and queued is not None:
            following = next(tiles, None)
            upcoming = self._request(following)  # fetched while this tile is hashed and replayed
            self._check_level0(current, queued[0].result(), queued[1].result())
            current, queued = following, upcoming
        if self.signatures is not None:
            self.signatures.settle()
        for built in self.builder.partial_tiles():
            if built.tile.level:
                self._check_upper(built)
        root = self.builder.root()
        if root != checkpoint.root_hash:
            raise RootMismatchError(
                f"the {size} entries rebuild a tree whose root is not the checkpoint's",
                expected=checkpoint.root_hash.hex(),
                calculated=root.hex(),
                labels=("checkpoint root", "computed root"),
            )
        with failure_context("checkpoint"):
            check_key_chain_claim(checkpoint, self.last_key_event)

    def check_index(self, checkpoint: Checkpoint) -> bool:
        """After `run`: the checkpoint's index root is the one the entries give; False when it has none.

        VerificationError (naming the checkpoint and the chains that changed) otherwise.
        """
        return self.index.compare(checkpoint.size, checkpoint.extensions)

    def _request(self, tile: Tile | None) -> tuple[Future[bytes], Future[bytes]] | None:
        if tile is None:
            return None
        return (
            self.fetch.submit(tile.path(), MAX_TILE_BYTES),
            self.fetch.submit(tile.entries_path(), MAX_BUNDLE_BYTES),
        )

    def _open_bundle(self, tile: Tile, hashes: bytes, bundle: bytes) -> list[bytes]:
        """The bundle's entries, once it and its hash tile hold exactly `tile.width` of them."""
        try:
            entries = decode_entry_bundle(bundle, tile.width)
        except EncodingError as exc:
            first, where = tile.index * TILE_WIDTH, self.source.describe(tile.entries_path())
            raise VerificationError(f"{where} (entries {first}..{first + tile.width - 1}): {exc}") from exc
        if len(hashes) != tile.width * HASH_SIZE:
            raise VerificationError(
                f"hash tile {self.source.describe(tile.path())} is {len(hashes)} bytes, "
                f"not {tile.width} hashes",
                expected=str(tile.width * HASH_SIZE),
                calculated=str(len(hashes)),
                labels=("bytes needed", "bytes served"),
            )
        return entries

    def _check_level0(self, tile: Tile, hashes: bytes, bundle: bytes) -> None:
        entries = self._open_bundle(tile, hashes, bundle)
        signatures = self.signatures
        for slot, data in enumerate(entries):
            if signatures is not None:
                signatures.index = self.replayer.next_index
            # Bytes that are not what the tile commits to are reported as altered before any
            # check of what they say (a changed time, say, would otherwise read as a chain break).
            served, calculated = hashes[slot * HASH_SIZE : (slot + 1) * HASH_SIZE], leaf_hash(data)
            if served != calculated:
                raise self._leaf_mismatch(tile, slot, entries, served, calculated)
            replayed = self._replay(data)
            if replayed.entry.index == 0:
                self._check_genesis(replayed)
            self.signature_count += len(replayed.admitted.signers)
            if isinstance(replayed.admitted.admin, KeyRegistered | KeyRevoked):
                self.last_key_event = replayed.entry.index
            for built in self.builder.append(replayed.leaf_hash):
                if built.tile.level:
                    self._check_upper(built)
        if signatures is not None:
            signatures.submit()
        self.progress.advance(len(entries))

    def _replay(self, data: bytes) -> ReplayedEntry:
        """Replay the next entry and note the chains it joined for the index."""
        try:
            replayed = self.replayer.check(data)
        except ChainError as exc:
            if self.chained_from is not None:
                exc.add_note(chained_from_note(self.chained_from, self.size))
            raise
        self.index.note(replayed.entry)
        return replayed

    def _check_upper(self, built: BuiltTile) -> None:
        path = built.tile.path()
        compare_tile(built, self.fetch.submit(path, MAX_TILE_BYTES).result(), self.source.describe(path))

    def _check_genesis(self, replayed: ReplayedEntry) -> None:
        record = replayed.admitted.admin
        registered = record.key if isinstance(record, KeyRegistered) else ""
        if parse_verifier_key(registered) != self.verifier:
            raise VerificationError(
                "entry 0 registers another ledger key than the trusted one",
                expected=self.verifier.format(),
                calculated=registered,
                labels=("trusted ledger key", "entry 0 registers"),
            )

    def _leaf_mismatch(
        self, tile: Tile, slot: int, entries: list[bytes], served: bytes, calculated: bytes
    ) -> VerificationError:
        """Which side was altered: entry `index + 1`'s `prev` link, when present, tells."""
        index = tile.index * TILE_WIDTH + slot
        successor_prev = None
        if slot + 1 < len(entries):
            try:
                successor_prev = parse_entry(entries[slot + 1]).prev
            except LedgerError:
                successor_prev = None
        hash_tile = self.source.describe(tile.path())
        bundle = self.source.describe(tile.entries_path())
        if successor_prev == calculated.hex():
            message = (
                f"hash tile {hash_tile}, slot {slot}, is not the leaf hash of entry {index} "
                f"(entry {index + 1} links to the entry's own hash): the hash tile was altered"
            )
        elif successor_prev == served.hex():
            message = (
                f"entry {index} in {bundle} was altered: its leaf hash differs from slot {slot} "
                f"of hash tile {tile.path()} and from entry {index + 1}'s prev link"
            )
        else:
            message = f"entry {index} in {bundle} does not hash to slot {slot} of hash tile {hash_tile}"
        return VerificationError(
            message,
            expected=served.hex(),
            calculated=calculated.hex(),
            labels=("hash tile holds", "entry hashes to"),
        )
