"""Inspector commands over a whole log: `verify-log` (every entry, through its tiles), `verify-consistency`.

Both trust nothing but the ledger key given with `--key`. `verify-log` reads
the checkpoint and every tile from a server or a directory copy, replays every
entry with `LogReplayer` (the checks every verifier applies), rebuilds the tree
from the entries' own bytes and compares each served hash tile and, at the
end, the root with the signed checkpoint. Memory stays flat in the log's size:
one entry bundle (and the prefetched next one), the compact range, the key
registry and at most one open tile per tile level.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import Future
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from cli.client import LedgerClient
from cli.errors import JsonOption, command_errors, emit_success, failure_context
from cli.files import ProofFile, load_verifier_key, parse_hashes, proof_hashes, read_text
from cli.offline import KeyOption, OriginOption, ProofFileOption, settle
from cli.settings import TokenOption
from cli.tile_source import (
    MAX_BUNDLE_BYTES,
    MAX_CHECKPOINT_BYTES,
    DirectoryTiles,
    HttpTiles,
    Prefetcher,
    TileSource,
)
from ledger.core.checkpoint import Checkpoint, open_checkpoint
from ledger.core.dsse import check_now
from ledger.core.encoding import JSON_ERRORS
from ledger.core.entry import parse_entry
from ledger.core.hashing import HASH_SIZE, leaf_hash
from ledger.core.keys import VerifierKey, parse_verifier_key
from ledger.core.proof import verify_consistency
from ledger.core.tiles import TILE_WIDTH, Tile, decode_entry_bundle, tile_width
from ledger.errors import EncodingError, InputError, LedgerError, RootMismatchError, VerificationError
from ledger.records.admin import KeyRegistered, KeyRevoked
from ledger.rules.replay import LogReplayer, ReplayedEntry, latest_plausible_time
from ledger.verify.audit_checks import check_key_chain_claim
from ledger.verify.signature_pool import DeferredSignatures
from ledger.verify.tree_check import BuiltTile, Progress, TileBuilder, compare_tile

MAX_TILE_BYTES = TILE_WIDTH * HASH_SIZE

ServerOption = Annotated[
    str | None,
    typer.Option("--server", metavar="URL", envvar="EVLEDGER_SERVER", help="Base URL of the ledger service."),
]
TilesOption = Annotated[
    Path | None,
    typer.Option(
        "--tiles",
        metavar="DIR",
        help="Read a copy of the log: DIR/checkpoint, DIR/tile/... as the HTTP paths (wins over --server).",
    ),
]
HELPERS_FROM_ENTRIES = 4096  # below this, starting helpers (about 0.3 s) costs more than it saves


JobsOption = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        min=0,
        metavar="N",
        help="Processes that check signatures beside the replay (0: check them in the replay itself). "
        f"Default: one per core (none on a single core or below {HELPERS_FROM_ENTRIES:,} entries).",
    ),
]


def default_jobs(tree_size: int) -> int:
    """One signature-checking process per core: a check costs about twice the rest of a replay.

    Measured on 2 cores (60,000 entries from a tile directory, 3 interleaved rounds):
    8,716-9,488 entries/s with no helper, 10,158-12,389 with one, 11,126-13,525 with
    two. On a single core, or for a small log, there is nothing to gain.
    """
    cores = os.cpu_count() or 1
    return cores if cores > 1 and tree_size >= HELPERS_FROM_ENTRIES else 0


def open_served_checkpoint(data: bytes, verifier: VerifierKey, origin: str | None, where: str) -> Checkpoint:
    """Verify a checkpoint a source served; a malformed one fails verification like a bad signature."""
    with failure_context(f"checkpoint {where}"):
        try:
            return open_checkpoint(data, verifier, origin)
        except EncodingError as exc:
            raise VerificationError(f"not a signed checkpoint: {exc}") from exc


class LogWalk:
    """One pass over the level-0 tiles of a verified checkpoint, in log order."""

    def __init__(
        self,
        source: TileSource,
        fetch: Prefetcher,
        verifier: VerifierKey,
        progress: Progress,
        signatures: DeferredSignatures | None = None,
    ) -> None:
        """Verify with `verifier`; read through `fetch`; `source` only names what is read.

        With `signatures`, entry signatures are checked by its helper processes (see
        `ledger.verify.signature_pool`); without, in the replay itself.
        """
        self.source = source
        self.fetch = fetch
        self.verifier = verifier
        self.progress = progress
        self.signatures = signatures
        self.replayer = LogReplayer(
            check_now if signatures is None else signatures, not_after=latest_plausible_time()
        )
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
        size = checkpoint.size
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
            replayed = self.replayer.check(data)
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


def verify_log(
    key: KeyOption,
    server: ServerOption = None,
    token: TokenOption = None,
    tiles: TilesOption = None,
    origin: OriginOption = None,
    jobs: JobsOption = None,
    json_output: JsonOption = False,
) -> None:
    """Audit the whole log through its tiles, trusting only the ledger key.

    Checks the checkpoint's signature, then every entry (canonical bytes, index,
    chain link, envelope signature by a key registered in the log, admin role),
    every hash tile, and the tree root against the checkpoint. Exit 1 names the
    first entry or tile that differs.
    """
    with command_errors(json_output=json_output), ExitStack() as stack:
        verifier = load_verifier_key(key)
        source: TileSource
        if tiles is not None:
            source = DirectoryTiles(tiles)
        elif server:
            source = HttpTiles(stack.enter_context(LedgerClient(server, token)), server)
        else:
            raise InputError("give --server URL (or EVLEDGER_SERVER) or --tiles DIR")
        fetch = stack.enter_context(Prefetcher(source))
        note = source.read("checkpoint", MAX_CHECKPOINT_BYTES)  # none at all: nothing to verify (exit 2)
        checkpoint = open_served_checkpoint(note, verifier, origin, source.describe("checkpoint"))
        progress = Progress("verify-log", checkpoint.size, enabled=not json_output and sys.stderr.isatty())
        helpers = default_jobs(checkpoint.size) if jobs is None else jobs
        signatures = stack.enter_context(DeferredSignatures(helpers)) if helpers > 0 else None
        walk = LogWalk(source, fetch, verifier, progress, signatures)
        try:
            walk.run(checkpoint)
        finally:
            progress.close()
        seconds = progress.elapsed
        rate = checkpoint.size / seconds if seconds > 0 else 0.0
        emit_success(
            json_output=json_output,
            fields={
                "origin": checkpoint.origin,
                "tree_size": checkpoint.size,
                "root_hash": checkpoint.root_hash.hex(),
                "signatures": walk.signature_count,
                "seconds": round(seconds, 3),
                "entries_per_second": round(rate),
                "signed_by": verifier.keyid,
            },
            lines=[
                (
                    f"verified: log {checkpoint.origin}: {checkpoint.size:,} entries, "
                    f"{walk.signature_count:,} signatures checked, root {checkpoint.root_hash.hex()} "
                    f"({seconds:.1f} s, {rate:,.0f} entries/s)"
                )
            ],
        )


_consistency_decoder = msgspec.json.Decoder(ProofFile)


def fetch_consistency_proof(client: LedgerClient, first: int, second: int) -> list[bytes]:
    """The server's proof from `first` to `second` (needs 0 < first < second).

    The server is not trusted: a malformed answer fails verification (exit 1).
    """
    response = client.get("/v1/proofs/consistency", first=first, second=second)
    try:
        served = _consistency_decoder.decode(response.content)
        settle("tree size", first, "the old checkpoint", served.first, "the server's proof")
        settle("tree size", second, "the new checkpoint", served.second, "the server's proof")
        return parse_hashes(served.hashes, "server proof hash")
    except (*JSON_ERRORS, EncodingError) as exc:
        raise VerificationError(f"the server's consistency proof is malformed: {exc}") from exc


def verify_consistency_command(
    old: Annotated[Path, typer.Argument(metavar="OLD", help="The older signed checkpoint file.")],
    new: Annotated[Path, typer.Argument(metavar="NEW", help="The newer signed checkpoint file.")],
    key: KeyOption,
    server: ServerOption = None,
    token: TokenOption = None,
    proof: ProofFileOption = None,
    origin: OriginOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check that the log in checkpoint NEW is an append-only extension of the log in OLD.

    Both must verify with --key and name the same origin. The RFC 9162 consistency
    proof comes from --proof FILE or, without it, from the server (--server URL).
    """
    with command_errors(json_output=json_output):
        verifier = load_verifier_key(key)
        old_note, new_note = read_text(old, "old checkpoint"), read_text(new, "new checkpoint")
        with failure_context(f"old checkpoint {old}"):
            old_signed = open_checkpoint(old_note, verifier, origin)
        with failure_context(f"new checkpoint {new}"):
            new_signed = open_checkpoint(new_note, verifier, old_signed.origin)
        hashes: list[bytes] = []
        if proof is not None:
            hashes, proof_file = proof_hashes(proof, None)
            if proof_file is not None:
                source = f"proof file {proof}"
                settle("tree size", old_signed.size, "the old checkpoint", proof_file.first, source)
                settle("tree size", new_signed.size, "the new checkpoint", proof_file.second, source)
        elif 0 < old_signed.size < new_signed.size:
            if not server:
                raise InputError("give --proof FILE, or --server URL to fetch the proof")
            with LedgerClient(server, token) as client:
                hashes = fetch_consistency_proof(client, old_signed.size, new_signed.size)
        verify_consistency(
            old_signed.size, new_signed.size, hashes, old_signed.root_hash, new_signed.root_hash
        )
        emit_success(
            json_output=json_output,
            fields={
                "origin": old_signed.origin,
                "old": {"tree_size": old_signed.size, "root_hash": old_signed.root_hash.hex()},
                "new": {"tree_size": new_signed.size, "root_hash": new_signed.root_hash.hex()},
                "proof_hashes": len(hashes),
                "signed_by": verifier.keyid,
            },
            lines=[
                f"verified: log {old_signed.origin} at size {new_signed.size} extends size {old_signed.size}",
                f"  old root hash:  {old_signed.root_hash.hex()}",
                f"  new root hash:  {new_signed.root_hash.hex()}",
                f"  signed by:      {verifier.keyid}",
            ],
        )
