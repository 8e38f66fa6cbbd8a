"""Evidence files the commands store before they append the statement that names them (docs/cli.md).

`evledger attest …`, `record …` and `submit` take `--attach FILE` (repeatable): each file is
read, named by its SHA-256 in the predicate's `attachments` (ledger.records.attachments), and
stored in the ledger (`PUT /v1/blobs/…`) before the statement is appended, so that a statement
never names a file the ledger lacks. Storing is idempotent: a retried job stores nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.client import LedgerClient
from cli.files import read_input
from ledger.errors import InputError
from ledger.records.attachments import attachment_of
from ledger.records.predicates import Attachment

MAX_FILE_BYTES = 1 << 30  # the service's default EVLEDGER_MAX_BLOB

AttachOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--attach",
        metavar="FILE",
        help="Another file this evidence is about (a PDF report, a log, a dataset manifest): stored in "
        "the ledger and bound by its SHA-256 in the statement's attachments. Repeatable.",
    ),
]


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    """A file to store before the statement that names it: what it is (for people), and its bytes."""

    what: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Attached:
    """`--attach` files read: their attachments for the predicate, and the files to store."""

    attachments: list[Attachment]
    files: list[EvidenceFile]

    @classmethod
    def read(cls, paths: Sequence[Path] | None) -> Attached:
        """The attachments of `--attach` files, and the files to store; InputError for a file given twice."""
        attachments: list[Attachment] = []
        files: list[EvidenceFile] = []
        for path in paths or []:
            if str(path) == "-":
                raise InputError("--attach takes files, not standard input: a file names its attachment")
            data = read_input(path, "attachment", MAX_FILE_BYTES)
            attachment = attachment_of(path.name, data)
            if any(a.digest == attachment.digest for a in attachments):
                raise InputError(f"--attach {path}: the same file is attached twice")
            attachments.append(attachment)
            files.append(EvidenceFile(f"attachment {path.name}", data))
        return cls(attachments, files)


def store_files(client: LedgerClient, product: str, files: Sequence[EvidenceFile]) -> list[dict[str, Any]]:
    """Store each file for `product` (`PUT /v1/blobs/…`); the server's answers, each with `what` added."""
    if files and not product:
        raise InputError("evidence files are stored for a product: the statement must name its release")
    return [{"what": file.what, **client.put_blob(file.data, product)} for file in files]


def stored_lines(stored: Sequence[dict[str, Any]]) -> list[str]:
    """One line per stored file, for people."""
    return [
        f"{answer['what']} {'stored' if answer['created'] else 'already stored'} in the ledger: "
        f"{answer['digest']} ({answer['size']:,} bytes)"
        for answer in stored
    ]
