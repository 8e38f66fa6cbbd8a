"""The evidence files a statement binds by digest, and attaching a file to a predicate. Pure.

A predicate names files in two ways (schemas/PREDICATES.md): fields that say what the file is
(`report_digest` of a test run or a scan, `sbom_digest` and `soup_list_digest` of an SBOM,
`vex_digest` of a VEX statement: `predicates.FILE_FIELDS`), and `attachments`, any other file
(a PDF validation report, a log, a dataset manifest), each `{name, digest, size, media_type?}`.
`referenced_files` lists both: what an audit package must hold (`evledger dossier
--with-blobs`) and what `evledger verify` checks in it.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from typing import Any

import msgspec

from ledger.errors import InputError
from ledger.records.predicates import FILE_FIELDS, MAX_ATTACHMENT_NAME, Attachment, Predicate


@dataclass(frozen=True, slots=True)
class FileReference:
    """A file an entry names: its digest (`sha256:<hex>`) and what it is, for people."""

    digest: str
    what: str


def referenced_files(predicate: Predicate | None) -> list[FileReference]:
    """Every evidence file `predicate` names, in field order then attachment order, each digest once.

    Precondition: `predicate` was decoded by `decode_predicate` (its digests are well formed);
    None (generic evidence) names none.
    """
    if predicate is None:
        return []
    found: dict[str, FileReference] = {}
    for field, what in FILE_FIELDS.items():
        digest = getattr(predicate, field, None)
        if isinstance(digest, str):
            found.setdefault(digest, FileReference(digest, what))
    for attachment in getattr(predicate, "attachments", None) or []:
        found.setdefault(attachment.digest, FileReference(attachment.digest, f"attachment {attachment.name}"))
    return list(found.values())


def attachment_of(name: str, data: bytes, media_type: str | None = None) -> Attachment:
    """The attachment of a file called `name` with these bytes (media type: given, or guessed from the name).

    InputError for an empty name or one over MAX_ATTACHMENT_NAME characters.
    """
    if not 0 < len(name) <= MAX_ATTACHMENT_NAME:
        raise InputError(f"an attachment's name is 1 to {MAX_ATTACHMENT_NAME} characters, got {name[:40]!r}")
    guessed = media_type or mimetypes.guess_type(name, strict=False)[0]
    return Attachment(name, f"sha256:{hashlib.sha256(data).hexdigest()}", len(data), guessed)


def with_attachments(predicate: dict[str, Any], attachments: list[Attachment]) -> dict[str, Any]:
    """`predicate` (a JSON object) with `attachments` added after any it lists already, each digest once."""
    if not attachments:
        return predicate
    listed = predicate.get("attachments") or []
    if not isinstance(listed, list):
        raise InputError("the predicate's attachments must be a list")
    seen = {item.get("digest") for item in listed if isinstance(item, dict)}
    added = [msgspec.to_builtins(a) for a in attachments if a.digest not in seen]  # None fields omitted
    return {**predicate, "attachments": [*listed, *added]}
