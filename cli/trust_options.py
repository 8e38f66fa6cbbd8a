"""The options every verifier shares for trust beyond the ledger key: witness policy, TSA certificates.

`--witness-policy FILE` (docs/trust-model.md) makes a verifier refuse a checkpoint that lacks
the policy's quorum of witness cosignatures; `--tsa-cert CERT.pem` (repeatable) makes it
require an RFC 3161 token over the checkpoint by an authority it trusts, and check the
ledger's clock against it; `--timestamp TOKEN` (repeatable) gives such tokens as files where
the evidence is a bare checkpoint file. The checks themselves are `ledger.verify.anchoring`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from cli.files import read_input, read_text
from ledger.errors import VerificationError
from ledger.verify.anchoring import (
    LEDGER_KEY_ONLY,
    Anchoring,
    Trust,
    check_anchoring,
)
from ledger.verify.trusted_time import load_tsa_certificates
from ledger.verify.witness_policy import parse_witness_policy

MAX_TOKEN_BYTES = 64 * 1024

WitnessPolicyOption = Annotated[
    Path | None,
    typer.Option(
        "--witness-policy",
        metavar="FILE",
        help="Trust these witnesses (`witness <name> <key> <url>` lines, `quorum <n>`) and refuse a "
        "checkpoint without the quorum's cosignatures.",
    ),
]
TsaCertOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--tsa-cert",
        metavar="CERT.pem",
        help="Trust this time-stamping authority (repeatable): the checkpoint must carry an RFC 3161 "
        "token it signed, and entry times must not be later than that token's time.",
    ),
]
TimestampOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--timestamp",
        metavar="TOKEN",
        help="An RFC 3161 token (DER) over the checkpoint, as `evledger dossier --tlog-proofs` writes "
        "them (repeatable; with --server they are fetched instead).",
    ),
]


def load_trust(policy: Path | None, tsa_certs: Sequence[Path] | None) -> Trust:
    """The trust the options give; InputError (exit 2) for an unreadable or malformed file."""
    if policy is None and not tsa_certs:
        return LEDGER_KEY_ONLY
    parsed = (
        None if policy is None else parse_witness_policy(read_text(policy, "witness policy"), str(policy))
    )
    certificates = tuple(
        certificate
        for path in tsa_certs or ()
        for certificate in load_tsa_certificates(read_input(path, "TSA certificate"))
    )
    return Trust(parsed, certificates)


def token_files(paths: Sequence[Path] | None) -> list[bytes]:
    """The bytes of each `--timestamp` file."""
    return [read_input(path, "timestamp token", MAX_TOKEN_BYTES) for path in paths or ()]


def anchored(note: str | bytes, timestamps: Sequence[bytes], trust: Trust, what: str) -> Anchoring:
    """`check_anchoring` with the checkpoint named in the failure (`what`: a file, a URL)."""
    try:
        return check_anchoring(note, timestamps, trust)
    except VerificationError as exc:
        raise exc.restated(f"{what}: {exc.args[0]}") from exc


def anchoring_fields(anchoring: Anchoring) -> dict[str, object]:
    """The `--json` form of what the anchors established: the cosigners and the trusted times."""
    quorum = anchoring.quorum
    return {
        "witnesses": None
        if quorum is None
        else {
            "required": quorum.policy.quorum,
            "cosigned_by": [{"name": w.name, "key": w.key.keyid, "timestamp": t} for w, t in quorum.cosigned],
        },
        "trusted_times": [
            {"tsa": t.tsa, "time": t.time.isoformat(), "serial": t.serial} for t in anchoring.times
        ],
    }
