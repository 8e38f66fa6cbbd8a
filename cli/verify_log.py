"""Inspector commands over a whole log: `verify-log` (every entry, through its tiles), `verify-consistency`.

Both trust nothing but the ledger key given with `--key`. `verify-log` picks
the tile source (a server, or a directory copy with `--tiles`) and runs
`ledger.verify.log_walk.walk_log` over it: every entry replayed, every hash
tile and the root compared with the signed checkpoint. `verify-consistency`
proves that one checkpoint's log extends another's
(`ledger.verify.checkpoints`). This module reads the flags, fetches over HTTP and prints.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from cli.client import LedgerClient
from cli.errors import JsonOption, command_errors, emit_success
from cli.files import load_verifier_key, proof_hashes, read_text
from cli.offline import KeyOption, OriginOption, ProofFileOption
from cli.served import fetch_consistency_proof, served_anchors
from cli.settings import OptionalServerOption, TokenOption
from cli.tile_source import HttpTiles
from cli.trust_options import (
    TimestampOption,
    TsaCertOption,
    WitnessPolicyOption,
    anchored,
    anchoring_fields,
    load_trust,
    token_files,
)
from ledger.core.checkpoint import Checkpoint
from ledger.errors import InputError
from ledger.verify.anchoring import Anchoring, Trust
from ledger.verify.checkpoints import open_checkpoints, verify_extension
from ledger.verify.log_walk import HELPERS_FROM_ENTRIES, walk_log
from ledger.verify.tile_source import DirectoryTiles, TileSource

TilesOption = Annotated[
    Path | None,
    typer.Option(
        "--tiles",
        metavar="DIR",
        help="Read a copy of the log: DIR/checkpoint, DIR/tile/... as the HTTP paths (wins over --server).",
    ),
]


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


def verify_log(
    key: KeyOption,
    server: OptionalServerOption = None,
    token: TokenOption = None,
    tiles: TilesOption = None,
    origin: OriginOption = None,
    jobs: JobsOption = None,
    witness_policy: WitnessPolicyOption = None,
    tsa_cert: TsaCertOption = None,
    timestamp: TimestampOption = None,
    json_output: JsonOption = False,
) -> None:
    """Audit the whole log through its tiles, trusting only the ledger key.

    Checks the checkpoint's signature, then every entry (canonical bytes, index,
    chain link, envelope signature by a key registered in the log, admin role),
    every hash tile, the tree root and the completeness index root against the
    checkpoint. Exit 1 names the first entry or tile that differs. With --witness-policy
    the checkpoint must carry the quorum's cosignatures; with --tsa-cert an RFC 3161 token
    by a trusted authority (from the server, or --timestamp files with --tiles), and no
    entry may be dated after it.
    """
    with command_errors(json_output=json_output), ExitStack() as stack:
        verifier = load_verifier_key(key)
        trust = load_trust(witness_policy, tsa_cert)
        source: TileSource
        client: LedgerClient | None = None
        if tiles is not None:
            source = DirectoryTiles(tiles)
        elif server:
            client = stack.enter_context(LedgerClient(server, token))
            source = HttpTiles(client, server)
        else:
            raise InputError("give --server URL (or EVLEDGER_SERVER) or --tiles DIR")
        given_tokens = token_files(timestamp)

        def anchor(note: bytes, checkpoint: Checkpoint) -> Anchoring:
            tokens = given_tokens
            if trust.tsa_certificates and not tokens and client is not None:
                tokens = served_anchors(client, checkpoint.size)[1]
            return anchored(note, tokens, trust, source.describe("checkpoint"))

        # No checkpoint at all: nothing to verify (exit 2).
        report = walk_log(
            source,
            verifier,
            origin=origin,
            jobs=jobs,
            progress=not json_output and sys.stderr.isatty(),
            anchor=anchor if trust.requires_anchors else None,
        )
        checkpoint, seconds = report.checkpoint, report.seconds
        rate = checkpoint.size / seconds if seconds > 0 else 0.0
        emit_success(
            json_output=json_output,
            fields={
                "origin": checkpoint.origin,
                "tree_size": checkpoint.size,
                "root_hash": checkpoint.root_hash.hex(),
                "signatures": report.signatures,
                "seconds": round(seconds, 3),
                "entries_per_second": round(rate),
                "signed_by": verifier.keyid,
                "anchoring": anchoring_fields(report.anchoring),
                "index_matched": report.index_matched,
            },
            lines=[
                (
                    f"verified: log {checkpoint.origin}: {checkpoint.size:,} entries, "
                    f"{report.signatures:,} signatures checked, root {checkpoint.root_hash.hex()} "
                    f"({seconds:.1f} s, {rate:,.0f} entries/s)"
                ),
                (
                    "  completeness index recomputed: matches the checkpoint"
                    if report.index_matched
                    else "  completeness index: the checkpoint carries none (signed before an upgrade)"
                ),
                *(f"  {line}" for line in report.anchoring.statements()),
            ],
        )


def verify_consistency_command(
    old: Annotated[Path, typer.Argument(metavar="OLD", help="The older signed checkpoint file.")],
    new: Annotated[Path, typer.Argument(metavar="NEW", help="The newer signed checkpoint file.")],
    key: KeyOption,
    server: OptionalServerOption = None,
    token: TokenOption = None,
    proof: ProofFileOption = None,
    origin: OriginOption = None,
    witness_policy: WitnessPolicyOption = None,
    tsa_cert: TsaCertOption = None,
    timestamp: TimestampOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check that the log in checkpoint NEW is an append-only extension of the log in OLD.

    Both must verify with --key and name the same origin. The RFC 9162 consistency
    proof comes from --proof FILE or, without it, from the server (--server URL).
    With --witness-policy both must carry the quorum's cosignatures; with --tsa-cert NEW
    needs a token by a trusted authority (--timestamp files, or fetched with --server).
    """
    with command_errors(json_output=json_output):
        verifier = load_verifier_key(key)
        trust = load_trust(witness_policy, tsa_cert)
        tokens = token_files(timestamp)
        old_note, new_note = read_text(old, "old checkpoint"), read_text(new, "new checkpoint")
        old_signed, new_signed = open_checkpoints(
            old_note, new_note, verifier, origin, subjects=(f"old checkpoint {old}", f"new checkpoint {new}")
        )
        hashes: list[bytes] = []
        claimed: tuple[int | None, int | None] = (None, None)
        if proof is not None:
            hashes, proof_file = proof_hashes(proof, None)
            if proof_file is not None:
                claimed = (proof_file.first, proof_file.second)
        elif 0 < old_signed.size < new_signed.size:
            if not server:
                raise InputError("give --proof FILE, or --server URL to fetch the proof")
            with LedgerClient(server, token) as client:
                hashes = fetch_consistency_proof(client, old_signed.size, new_signed.size)
        verify_extension(
            old_signed, new_signed, hashes, claimed_sizes=claimed, claimed_by=f"proof file {proof}"
        )
        if trust.tsa_certificates and not tokens and server:
            with LedgerClient(server, token) as client:
                tokens = served_anchors(client, new_signed.size)[1]
        anchored(old_note, [], Trust(trust.policy), f"old checkpoint {old}")
        anchoring = anchored(new_note, tokens, trust, f"new checkpoint {new}")
        emit_success(
            json_output=json_output,
            fields={
                "origin": old_signed.origin,
                "old": {"tree_size": old_signed.size, "root_hash": old_signed.root_hash.hex()},
                "new": {"tree_size": new_signed.size, "root_hash": new_signed.root_hash.hex()},
                "proof_hashes": len(hashes),
                "signed_by": verifier.keyid,
                "anchoring": anchoring_fields(anchoring),
            },
            lines=[
                f"verified: log {old_signed.origin} at size {new_signed.size} extends size {old_signed.size}",
                f"  old root hash:  {old_signed.root_hash.hex()}",
                f"  new root hash:  {new_signed.root_hash.hex()}",
                f"  signed by:      {verifier.keyid}",
                *(f"  {line}" for line in anchoring.statements()),
            ],
        )
