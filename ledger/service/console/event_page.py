"""The console's page of one event of a release, and the files it names (docs/console.md, issue #15).

`/ui/releases/P/V/events/I` shows entry I as evidence of release (P, V): who signed it (the key's
registered owner and roles), when, its kind, its statement, its inclusion proof against the
checkpoint the page was read at, and what its kind says: a test run's failed and skipped test
cases and a scan's SARIF results (read from the stored report), an SBOM's SOUP list, a
validation's dataset, an approval's decision and the entries it reviewed, a gate decision's
findings. Every file the entry names is listed, with a download link when the ledger holds it.

`/ui/releases/P/V/events/I/files/sha256:<hex>` downloads one of them: only a file the event
names, streamed from the blob store's checked read, under the blob route's own product-scope
rule (`routes_blobs.visible_blob`), as an attachment the browser never renders (octet-stream,
nosniff, a file name of safe characters). Entry I must be an event of the release (404
otherwise), the index a decimal number (400), and a token scoped to products must hold P (403).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from litestar import get
from litestar.params import FromPath
from litestar.response import Stream, Template

from ledger.core.proof import verify_inclusion
from ledger.errors import InputError, NotFoundError, VerificationError
from ledger.query import timeline
from ledger.query.event_details import file_contents, headline
from ledger.query.report import plain
from ledger.records.attachments import referenced_files
from ledger.rules.events import Event
from ledger.service.auth import Token
from ledger.service.console.pages import SECURITY_HEADERS, SESSION, ConsoleSvc, SignedIn, frame, page
from ledger.service.params import Product, Version
from ledger.service.routes_blobs import visible_blob
from ledger.service.state import ServiceState

MAX_INDEX_DIGITS = 18  # below 2**63: what the log's indices fit in
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_FILE_NAME = 120


def release_path(product: str, version: str) -> str:
    """The console path of a release, each part percent-encoded (a `/` in a name stays in its part)."""
    return f"/ui/releases/{quote(product, safe='')}/{quote(version, safe='')}"


def entry_index(text: str) -> int:
    """The log index a path names: a decimal number; InputError (400) for anything else."""
    if not text.isascii() or not text.isdigit() or len(text) > MAX_INDEX_DIGITS:
        raise InputError(f"an entry is named by its index, a number; got {text[:40]!r}")
    return int(text)


def download_name(name: str) -> str:
    """A file name a browser saves safely: the last path segment, letters, digits, `._-` only."""
    last = name.replace("\\", "/").rsplit("/", 1)[-1]
    return _UNSAFE.sub("_", last).strip("._")[:MAX_FILE_NAME] or "evidence-file"


@dataclass(frozen=True, slots=True)
class FileRow:
    """A file the event names: what it is, its name, size and media type, and if this reader may get it."""

    digest: str
    what: str
    name: str
    size: int | None
    media_type: str | None
    available: bool = False


async def _release_event(
    svc: ServiceState, token: Token, product: str, version: str, index: str
) -> tuple[timeline.ReleaseTimeline, Event]:
    """The release's timeline and its event `index`: 403, 400 and 404 as the module says, in that order."""
    token.require_product(product)
    wanted = entry_index(index)
    found = await timeline.release_timeline(svc.store, svc.index, svc.sequencer, product, version)
    event = next((e for e in found.events if e.index == wanted), None)
    if event is None:
        raise NotFoundError(f"entry {wanted} is not an event of release {product} {version}")
    return found, event


def _named(event: Event) -> dict[str, FileRow]:
    """Each file the event names, by digest, as its predicate describes it (an attachment has a name)."""
    attachments = {a.digest: a for a in getattr(event.predicate, "attachments", None) or []}
    named = {}
    for ref in referenced_files(event.predicate):
        attached = attachments.get(ref.digest)
        if attached is not None:
            row = FileRow(ref.digest, ref.what, attached.name, attached.size, attached.media_type)
        else:
            hex_part = ref.digest.removeprefix("sha256:")
            row = FileRow(ref.digest, ref.what, f"{ref.what.replace(' ', '-')}-{hex_part[:12]}", None, None)
        named[ref.digest] = row
    return named


async def _files(svc: ServiceState, token: Token, event: Event) -> list[FileRow]:
    """The event's files, each available when stored and readable under the blob route's rule."""
    rows = []
    for row in _named(event).values():
        blob = bytes.fromhex(row.digest.removeprefix("sha256:"))
        try:
            info = visible_blob(await svc.blobs.info(blob), token, blob)
        except NotFoundError:
            rows.append(row)
            continue
        rows.append(replace(row, size=info.size, available=True))
    return rows


async def _inclusion(svc: ServiceState, event: Event) -> dict[str, Any]:
    """The event's inclusion proof against the newest checkpoint, and whether it leads to its root."""
    checkpoint = await svc.latest_checkpoint(fresh=True)
    hashes = await svc.proofs.inclusion(event.index, checkpoint.tree_size)
    try:
        verify_inclusion(event.index, checkpoint.tree_size, event.leaf_hash, hashes, checkpoint.root_hash)
        holds = True
    except VerificationError:
        holds = False
    return {"checkpoint": checkpoint, "hashes": [h.hex() for h in hashes], "holds": holds}


@get("/releases/{product:str}/{version:str}/events/{index:str}", dependencies=SESSION)
async def release_event(
    svc: ConsoleSvc, session: SignedIn, product: Product, version: Version, index: FromPath[str]
) -> Template:
    """One event of the release: signer, time, kind, statement, inclusion proof, details and files."""
    found, event = await _release_event(svc, session.token, product, version, index)
    files = await _files(svc, session.token, event)
    readable = {f.digest for f in files if f.available}
    raw = event.raw_predicate
    return page(
        "event.html",
        **frame(
            session, product=product, version=version, base=release_path(product, version),
            event=event, headline=headline(event), predicate=event.predicate,
            fields=[(key, plain(raw[key])) for key in sorted(raw)],
            subjects=event.statement.subject if event.statement is not None else [],
            in_release={e.index for e in found.events}, files=files,
            contents=await file_contents(svc.blobs, event, readable),
            proof=await _inclusion(svc, event),
        ),
    )  # fmt: skip


@get("/releases/{product:str}/{version:str}/events/{index:str}/files/{digest:str}", dependencies=SESSION)
async def release_file(  # noqa: PLR0913, PLR0917 - the release, the event and the file: the path's parts
    svc: ConsoleSvc,
    session: SignedIn,
    product: Product,
    version: Version,
    index: FromPath[str],
    digest: FromPath[str],
) -> Stream:
    """A file the event names, as a download: streamed from the checked read, never rendered."""
    _, event = await _release_event(svc, session.token, product, version, index)
    wanted = timeline.parse_digest(digest)
    named = _named(event)
    if wanted not in named:
        raise NotFoundError(f"entry {event.index} names no file {wanted}")
    blob = bytes.fromhex(wanted.removeprefix("sha256:"))
    info = visible_blob(await svc.blobs.info(blob), session.token, blob)
    name = download_name(named[wanted].name)
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Length": str(info.size),
        "Repr-Digest": f"sha-256=:{base64.b64encode(blob).decode()}:",  # RFC 9530
    }
    return Stream(svc.blobs.read(blob), media_type="application/octet-stream", headers=headers)


EVENT_ROUTES = [release_event, release_file]
"""The event pages and their files' downloads."""
