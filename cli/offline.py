"""Offline commands: key generation, and signed-note and Merkle-proof checks for inspectors.

Nothing here opens a database or a socket: inputs come from files and flags
and are checked with the pure core (`ledger.core`) and the verification
library (`ledger.verify`: receipts and inclusion claims, checkpoint
consistency), trusting nothing but the verifier key given with `--key`. A FILE
argument of `-` reads standard input.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.client import LedgerClient
from cli.errors import JsonOption, command_errors, emit_success
from cli.files import create_exclusive, load_receipt, load_verifier_key, proof_hashes, read_input
from cli.served import anchored_extension
from cli.settings import ENV_KEY_PASSPHRASE, TokenOption
from cli.trust_options import (
    TimestampOption,
    TsaCertOption,
    WitnessPolicyOption,
    anchored,
    anchoring_fields,
    load_trust,
    token_files,
)
from ledger.core.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint_text
from ledger.core.encoding import hash_from_hex
from ledger.core.hashing import leaf_hash
from ledger.core.key_files import encrypt_signer_key
from ledger.core.keys import ALG_COSIGNATURE_V1, ALG_ED25519, SignerKey
from ledger.core.note import open_note
from ledger.core.tiles import MAX_ENTRY_SIZE
from ledger.errors import EncodingError, InputError, failure_context
from ledger.verify.anchoring import Trust
from ledger.verify.checkpoints import open_checkpoints, settle, verify_extension
from ledger.verify.receipt import InclusionClaim, verify_inclusion_claim

KeyOption = Annotated[
    Path, typer.Option("--key", metavar="PUBFILE", help="The verifier key file (.pub) to trust.")
]
OriginOption = Annotated[
    str | None,
    typer.Option("--origin", metavar="ORIGIN", help="Also require the checkpoint to name this log origin."),
]
ProofFileOption = Annotated[
    Path | None,
    typer.Option(
        "--proof",
        metavar="FILE",
        help='Proof file: JSON with a "hashes" list of hex, or one hex hash per line.',
    ),
]
HashOption = Annotated[
    list[str] | None, typer.Option("--hash", metavar="HEX", help="One proof hash; repeat in proof order.")
]

verify_proof_app = typer.Typer(
    help="Check a Merkle inclusion or consistency proof against signed checkpoints.", no_args_is_help=True
)


def _checkpoint_summary(checkpoint: Checkpoint) -> dict[str, object]:
    return {
        "origin": checkpoint.origin,
        "tree_size": checkpoint.size,
        "root_hash": checkpoint.root_hash.hex(),
        "extensions": list(checkpoint.extensions),
    }


def _checkpoint_lines(checkpoint: Checkpoint) -> list[str]:
    return [
        f"  origin:     {checkpoint.origin}",
        f"  tree size:  {checkpoint.size}",
        f"  root hash:  {checkpoint.root_hash.hex()}",
        *(f"  extension:  {line}" for line in checkpoint.extensions),
    ]


def key_file_prefix(name: str, out: Path | None) -> Path:
    """The PATH of PATH.key and PATH.pub: `out`, else the key name's last `/` segment (in the cwd)."""
    prefix = out if out is not None else Path(name.rsplit("/", 1)[-1])
    if prefix.name in {"", ".", ".."}:
        raise InputError(f"cannot make key file names from {str(prefix)!r}; give --out PATH")
    return prefix


def _new_passphrase() -> str:
    """The passphrase for a new encrypted key: EVLEDGER_KEY_PASSPHRASE when set, else typed twice."""
    given = os.environ.get(ENV_KEY_PASSPHRASE)
    if given is None:
        if not sys.stdin.isatty():
            raise InputError(f"--passphrase needs a terminal to type the passphrase, or {ENV_KEY_PASSPHRASE}")
        given = str(typer.prompt("Passphrase", hide_input=True, confirmation_prompt=True, err=True))
    if not given:
        raise InputError("the passphrase must not be empty")
    return given


def keygen(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Key name, e.g. ledger.example/prod (no spaces, no '+').")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", metavar="PATH", help="Write PATH.key and PATH.pub.")
    ] = None,
    witness: Annotated[
        bool,
        typer.Option(
            "--witness",
            help="Make a witness key for `evledger witness serve`: a C2SP cosignature/v1 key "
            "(signature type 0x04), which signs only cosignatures, never notes or envelopes.",
        ),
    ] = False,
    passphrase: Annotated[
        bool,
        typer.Option(
            "--passphrase",
            help="Encrypt the signer key with a passphrase (asked twice; EVLEDGER_KEY_PASSPHRASE when set): "
            "every command that signs with it then asks for it again.",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Generate an Ed25519 key pair: PATH.key (signer, mode 0600) and PATH.pub (verifier).

    PATH defaults to the name's last '/' segment. Existing files are never overwritten.
    With --witness the pair is a witness's cosignature/v1 key (type 0x04) for `evledger witness serve`.
    With --passphrase PATH.key is encrypted (docs/formats.md#keys).
    """
    with command_errors(json_output=json_output):
        if passphrase and witness:
            raise InputError("--passphrase is for people's signer keys; a witness key is not encrypted")
        signer = SignerKey.generate(name, ALG_COSIGNATURE_V1 if witness else ALG_ED25519)
        verifier = signer.verifier()
        prefix = key_file_prefix(name, out)
        key_path, pub_path = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
        for path in (key_path, pub_path):
            if path.exists() or path.is_symlink():
                raise InputError(f"{path} already exists; refusing to overwrite it")
        key_text = encrypt_signer_key(signer, _new_passphrase()).format() if passphrase else signer.format()
        create_exclusive(key_path, key_text + "\n", private=True)
        try:
            create_exclusive(pub_path, verifier.format() + "\n", private=False)
        except BaseException:
            key_path.unlink(missing_ok=True)
            raise
        emit_success(
            json_output=json_output,
            fields={
                "name": name,
                "keyid": verifier.keyid,
                "verifier_key": verifier.format(),
                "signer_key_file": str(key_path),
                "verifier_key_file": str(pub_path),
                "encrypted": passphrase,
            },
            lines=[
                f"wrote signer key   {key_path} (mode 0600; "
                + ("encrypted with your passphrase; " if passphrase else "")
                + "keep it secret)",
                f"wrote verifier key {pub_path}",
                f"key ID:       {verifier.keyid}",
                f"verifier key: {verifier.format()}",
            ],
        )


def verify_note(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The signed note, e.g. a checkpoint.")],
    key: KeyOption,
    origin: OriginOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check that a signed note (C2SP signed-note) carries a valid signature by the key in PUBFILE.

    Signatures by other keys (witnesses) are listed but not checked. If the note is a
    checkpoint, its origin, tree size and root hash are printed too.
    """
    with command_errors(json_output=json_output):
        verifier = load_verifier_key(key)
        data = read_input(file, "note")
        checkpoint: Checkpoint | None = None
        with failure_context(f"note {file}"):
            note = open_note(data, [verifier])
            if origin is not None:
                checkpoint = open_checkpoint(data, verifier, origin)
            else:
                try:
                    checkpoint = parse_checkpoint_text(note.text)
                except EncodingError:
                    checkpoint = None  # a plain note, not a checkpoint: nothing more to show
        signed_by = [trusted_key.keyid for trusted_key in note.verified]
        trusted = {(trusted_key.name, trusted_key.key_id) for trusted_key in note.verified}
        unchecked = [f"{s.name}+{s.key_id:08x}" for s in note.signatures if (s.name, s.key_id) not in trusted]
        lines = [f"verified: note {file} is signed by {', '.join(signed_by)}"]
        if checkpoint is not None:
            lines += ["  it is a checkpoint:", *_checkpoint_lines(checkpoint)]
        else:
            lines += ["  note text:", *(f"  | {line}" for line in note.text.splitlines())]
        if unchecked:
            lines.append(f"  not checked (other keys): {', '.join(unchecked)}")
        summary = _checkpoint_summary(checkpoint) if checkpoint is not None else None
        fields = {"signed_by": signed_by, "unchecked_signatures": unchecked, "text": note.text}
        emit_success(json_output=json_output, fields={**fields, "checkpoint": summary}, lines=lines)


def _claim_from_files(checkpoint: Path, proof: Path | None, hashes: list[str] | None) -> InclusionClaim:
    note = read_input(checkpoint, "checkpoint")
    proof_list, proof_file = proof_hashes(proof, hashes)
    if proof_file is None:
        return InclusionClaim(note, f"checkpoint {checkpoint}", proof_list, "--hash")
    if proof_file.leaf_hash is not None:
        hash_from_hex(proof_file.leaf_hash, f"proof file {proof} leaf_hash")
    return InclusionClaim(
        note,
        f"checkpoint {checkpoint}",
        proof_list,
        f"proof file {proof}",
        proof_file.index,
        proof_file.leaf_hash,
        proof_file.tree_size,
    )


def _given_leaf_hash(leaf_hash_hex: str | None, entry: Path | None) -> str | None:
    if leaf_hash_hex is not None and entry is not None:
        raise InputError("give the leaf as --leaf-hash HEX or as --entry FILE, not both")
    if entry is not None:
        return leaf_hash(read_input(entry, "entry file", MAX_ENTRY_SIZE)).hex()
    if leaf_hash_hex is not None:
        hash_from_hex(leaf_hash_hex, "--leaf-hash")
    return leaf_hash_hex


@verify_proof_app.command("inclusion")
def verify_inclusion_proof(
    *,
    key: KeyOption,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", metavar="FILE", help="The signed checkpoint.")
    ] = None,
    leaf_hash_hex: Annotated[
        str | None, typer.Option("--leaf-hash", metavar="HEX", help="The leaf hash.")
    ] = None,
    entry: Annotated[
        Path | None, typer.Option("--entry", metavar="FILE", help="The raw entry bytes (hashed as a leaf).")
    ] = None,
    index: Annotated[
        int | None, typer.Option("--index", metavar="N", help="The leaf's index in the log.")
    ] = None,
    proof: ProofFileOption = None,
    hashes: HashOption = None,
    receipt: Annotated[
        Path | None,
        typer.Option(
            "--receipt", metavar="FILE", help="An append receipt: index, leaf hash, checkpoint and proof."
        ),
    ] = None,
    origin: OriginOption = None,
    witness_policy: WitnessPolicyOption = None,
    tsa_cert: TsaCertOption = None,
    timestamp: TimestampOption = None,
    anchored_by: Annotated[
        str | None,
        typer.Option(
            "--anchored-by",
            metavar="URL",
            help="With --witness-policy or --tsa-cert: fetch this ledger's newest anchored checkpoint "
            "and prove it extends the evidence's own (a receipt's checkpoint is signed by the ledger alone).",
        ),
    ] = None,
    token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check that a leaf is at --index in the tree a signed checkpoint commits to.

    Give either --checkpoint with a proof (--proof FILE or --hash ...), or --receipt. The
    leaf (--entry or --leaf-hash) and --index may come from the receipt or proof file; when
    given as well they must match it. Tree size and root come from the verified checkpoint.
    With --witness-policy the checkpoint must carry the quorum's cosignatures, and with
    --tsa-cert a --timestamp token over it by a trusted authority. A receipt's checkpoint
    carries neither (receipts never wait for witnesses): add --anchored-by URL to prove that
    the server's anchored checkpoint extends it.
    """
    with command_errors(json_output=json_output):
        if index is not None and index < 0:
            raise InputError(f"--index must be 0 or more, not {index}")
        verifier = load_verifier_key(key)
        trust = load_trust(witness_policy, tsa_cert)
        given_leaf = _given_leaf_hash(leaf_hash_hex, entry)
        if receipt is not None:
            if checkpoint is not None or proof is not None or hashes:
                raise InputError(
                    "--receipt carries the checkpoint and proof: drop --checkpoint, --proof, --hash"
                )
            claim = load_receipt(receipt)
        elif checkpoint is None:
            raise InputError("give --checkpoint FILE with the proof, or --receipt FILE")
        else:
            claim = _claim_from_files(checkpoint, proof, hashes)
        leaf_index = settle("index", index, "--index", claim.index, claim.source)
        leaf_hex = settle("leaf hash", given_leaf, "the leaf given", claim.leaf_hash, claim.source)
        if leaf_index is None:
            raise InputError("give the leaf's --index (or a --receipt or --proof file that names it)")
        if leaf_hex is None:
            raise InputError("give the leaf as --leaf-hash HEX or --entry FILE")
        signed = verify_inclusion_claim(claim, verifier, leaf_index, leaf_hex, origin)
        lines = [f"verified: leaf {leaf_hex} is at index {leaf_index} of the log", *_checkpoint_lines(signed)]
        lines.append(f"  signed by:  {verifier.keyid}")
        if anchored_by is not None and trust.requires_anchors:
            with LedgerClient(anchored_by, token) as client:
                newer, anchoring = anchored_extension(client, signed, verifier, trust)
            lines.append(f"  extended by the anchored checkpoint of size {newer.size} at {anchored_by}:")
        else:
            anchoring = anchored(
                claim.checkpoint_note, token_files(timestamp), trust, claim.checkpoint_source
            )
        fields = {"index": leaf_index, "leaf_hash": leaf_hex, "signed_by": verifier.keyid, "time": claim.time}
        lines += [f"  {line}" for line in anchoring.statements()]
        fields["anchoring"] = anchoring_fields(anchoring)
        if claim.time is not None:
            lines.append(f"  time:       {claim.time} (as the receipt states; the proof does not cover it)")
        emit_success(json_output=json_output, fields={**_checkpoint_summary(signed), **fields}, lines=lines)


@verify_proof_app.command("consistency")
def verify_consistency_proof(
    *,
    old: Annotated[Path, typer.Option("--old", metavar="FILE", help="The older signed checkpoint.")],
    new: Annotated[Path, typer.Option("--new", metavar="FILE", help="The newer signed checkpoint.")],
    key: KeyOption,
    proof: ProofFileOption = None,
    hashes: HashOption = None,
    origin: OriginOption = None,
    witness_policy: WitnessPolicyOption = None,
    tsa_cert: TsaCertOption = None,
    timestamp: TimestampOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check that the log in the --new checkpoint is an append-only extension of the --old one.

    Both checkpoints must verify with --key and name the same origin. Give the proof as
    --proof FILE or --hash ...; equal tree sizes need no proof and equal roots. With
    --witness-policy both must carry the quorum's cosignatures; with --tsa-cert the new one
    a --timestamp token by a trusted authority.
    """
    with command_errors(json_output=json_output):
        verifier = load_verifier_key(key)
        trust = load_trust(witness_policy, tsa_cert)
        proof_list, proof_file = proof_hashes(proof, hashes)
        old_note, new_note = read_input(old, "old checkpoint"), read_input(new, "new checkpoint")
        old_signed, new_signed = open_checkpoints(
            old_note, new_note, verifier, origin, subjects=(f"old checkpoint {old}", f"new checkpoint {new}")
        )
        claimed = (proof_file.first, proof_file.second) if proof_file is not None else (None, None)
        verify_extension(
            old_signed, new_signed, proof_list, claimed_sizes=claimed, claimed_by=f"proof file {proof}"
        )
        anchored(old_note, [], Trust(trust.policy), f"old checkpoint {old}")
        anchoring = anchored(new_note, token_files(timestamp), trust, f"new checkpoint {new}")
        emit_success(
            json_output=json_output,
            fields={
                "origin": old_signed.origin,
                "old": _checkpoint_summary(old_signed),
                "new": _checkpoint_summary(new_signed),
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
