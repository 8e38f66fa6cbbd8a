"""Verify: the checks an inspector, a monitor or a witness runs (public API).

Dossiers, receipts and tlog-proofs, a walk over the whole log through its
tiles, and the audit of a database against its own log. Every check trusts
only the ledger's public key (its `.pub` file, docs/formats.md) and raises a
`VerificationError` (or one of its kinds: `RootMismatchError`,
`SignatureError`, `ChainError`) at the first thing that does not hold, and an
`InputError` for evidence too malformed to judge. Pure apart from the tile
and row sources the caller passes in: no event loop, no HTTP, no SQL.

Verifying a dossier or a receipt with only the ledger's public key::

    from pathlib import Path

    import msgspec

    from ledger.verify import Receipt, decode_dossier, parse_verifier_key, verify_dossier, verify_receipt

    key = parse_verifier_key(Path("ledger.pub").read_text())
    dossier = decode_dossier(Path("app-1.4.dossier.json").read_bytes(), "app-1.4.dossier.json")
    report = verify_dossier(dossier, key)  # VerificationError when it does not hold
    print(report.completeness.statement())

    receipt = msgspec.json.decode(Path("receipt.json").read_bytes(), type=Receipt)
    checkpoint = verify_receipt(receipt, key, entry=Path("entry.bin").read_bytes())
    print(f"entry {receipt.index} is in the log of {checkpoint.size} entries")

A whole log: `walk_log(DirectoryTiles(Path("copy")), key)`, or any other
`TileSource`; a database: `await audit_store(store, key, progress=False)` with
a `ledger.storage.protocol.LogStore`.
"""

from ledger.core.keys import VerifierKey, parse_verifier_key
from ledger.core.tlog_proof import TlogProof, parse_tlog_proof, verify_tlog_proof
from ledger.errors import (
    ChainError,
    EncodingError,
    InputError,
    LedgerError,
    NotFoundError,
    RootMismatchError,
    SignatureError,
    UnavailableError,
    VerificationError,
)
from ledger.verify.audit import AuditReport, ReadAhead, audit_store
from ledger.verify.checkpoints import open_checkpoints, verify_extension
from ledger.verify.dossier import Dossier, DossierReport, decode_dossier, verify_dossier
from ledger.verify.log_walk import WalkReport, walk_log
from ledger.verify.receipt import InclusionClaim, Receipt, verify_inclusion_claim, verify_receipt
from ledger.verify.tile_source import DirectoryTiles, TileSource

__all__ = [
    "AuditReport",
    "ChainError",
    "DirectoryTiles",
    "Dossier",
    "DossierReport",
    "EncodingError",
    "InclusionClaim",
    "InputError",
    "LedgerError",
    "NotFoundError",
    "ReadAhead",
    "Receipt",
    "RootMismatchError",
    "SignatureError",
    "TileSource",
    "TlogProof",
    "UnavailableError",
    "VerificationError",
    "VerifierKey",
    "WalkReport",
    "audit_store",
    "decode_dossier",
    "open_checkpoints",
    "parse_tlog_proof",
    "parse_verifier_key",
    "verify_dossier",
    "verify_extension",
    "verify_inclusion_claim",
    "verify_receipt",
    "verify_tlog_proof",
    "walk_log",
]
