"""The files a user names on the command line: reading keys, proofs and receipts; creating key files.

Every reader caps how much it reads (`-` reads stdin) and turns an unreadable
or malformed input into an InputError (exit 2) that names the file, so
commands never see an OSError or a half-parsed value. Writers never replace
an existing file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import msgspec

from ledger.core.encoding import JSON_ERRORS
from ledger.core.keys import SIGNER_PREFIX, VerifierKey, parse_verifier_key
from ledger.errors import EncodingError, InputError, KeyFormatError, TooLargeError, failure_context
from ledger.verify.checkpoints import parse_hashes
from ledger.verify.receipt import InclusionClaim, receipt_file_claim

MAX_INPUT_BYTES = 1 << 20  # keys, notes, proofs and receipts are a few kilobytes at most
SIGNER_KEY_MODE = 0o600
VERIFIER_KEY_MODE = 0o644  # further narrowed by the umask, as for any file the user creates


class ProofFile(msgspec.Struct):
    """A proof as the HTTP API returns it (docs/http-api.md); other keys are ignored."""

    hashes: list[str]
    index: int | None = None
    tree_size: int | None = None
    leaf_hash: str | None = None
    first: int | None = None
    second: int | None = None


_proof_decoder = msgspec.json.Decoder(ProofFile)


def read_input(path: Path, what: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of `path` (`-` reads stdin); InputError if unreadable, TooLargeError over `limit` bytes."""
    try:
        if str(path) == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with path.open("rb") as stream:
                data = stream.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise TooLargeError(f"{what} {path} is over {limit} bytes")
    return data


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of `path` (see `read_input`); EncodingError if it is not UTF-8."""
    try:
        return read_input(path, what).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError(f"{what} {path} is not UTF-8 text") from exc


def load_verifier_key(path: Path) -> VerifierKey:
    """The verifier key in a `.pub` file (docs/formats.md#keys); a signer key file is refused, not used."""
    text = read_text(path, "key file")
    if text.lstrip().startswith(SIGNER_PREFIX):
        raise KeyFormatError(f"{path} holds a signer (private) key; give the verifier key (.pub file)")
    with failure_context(f"key file {path}"):
        return parse_verifier_key(text)


def load_proof_file(path: Path) -> ProofFile:
    """A proof file: a JSON object with a `hashes` list (as the API returns it), or one hex hash per line."""
    text = read_text(path, "proof file")
    if not text.lstrip().startswith("{"):
        return ProofFile(hashes=[line.strip() for line in text.splitlines() if line.strip()])
    try:
        return _proof_decoder.decode(text)
    except JSON_ERRORS as exc:
        raise EncodingError(f"proof file {path} is not a proof object: {exc}") from exc


def proof_hashes(proof: Path | None, hashes: list[str] | None) -> tuple[list[bytes], ProofFile | None]:
    """The proof from `--proof FILE` or repeated `--hash` (neither: an empty proof), with the file if any."""
    if proof is not None and hashes:
        raise InputError("give the proof as --proof FILE or as --hash values, not both")
    if proof is None:
        return parse_hashes(hashes or [], "--hash"), None
    proof_file = load_proof_file(proof)
    return parse_hashes(proof_file.hashes, f"proof file {proof} hash"), proof_file


def load_receipt(path: Path) -> InclusionClaim:
    """What an append receipt file claims (`ledger.verify.receipt.receipt_file_claim`); its hashes are hex."""
    return receipt_file_claim(read_input(path, "receipt"), f"receipt {path}")


def create_exclusive(path: Path, text: str, *, private: bool) -> None:
    """Create `path` holding `text`; refuse (InputError) if anything exists there, even a dangling link.

    O_CREAT|O_EXCL creates the file atomically with its final permissions, so
    a private key is never readable by others, not even before it is written,
    and nothing planted at `path` is overwritten or followed. A partly written
    file is removed.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags, SIGNER_KEY_MODE if private else VERIFIER_KEY_MODE)
    except FileExistsError as exc:
        raise InputError(f"{path} already exists; refusing to overwrite it") from exc
    try:
        if private:
            os.fchmod(descriptor, SIGNER_KEY_MODE)  # exactly 0600 whatever the umask; never wider
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@contextmanager
def replaced_on_success(path: Path) -> Iterator[IO[bytes]]:
    """A new file beside `path` to write into; it replaces `path` only if the block ends without an error.

    On any error the new file is removed and `path` is left as it was: a command that fails
    half-way (a file that does not verify, a transfer that breaks off) writes nothing.
    """
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, on success and on failure
        dir=path.parent, prefix=f".{path.name}.", suffix=".partial", delete=False
    )
    try:
        with handle:
            yield handle
        Path(handle.name).replace(path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
