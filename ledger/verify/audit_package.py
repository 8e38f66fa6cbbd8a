"""Audit packages: a dossier and every evidence file its entries name, in one ZIP file (issue #14).

`evledger dossier --with-blobs -o release.zip` writes one; `evledger verify release.zip` checks
it offline. The layout is fixed, and nothing else may be in the package:

- `dossier.json`: the release's dossier, exactly as the ledger served it;
- `files/sha256/<64 hex>`: each file an entry names (`ledger.records.attachments`), under the
  SHA-256 of its bytes.

A package verifies when its dossier verifies (ledger.verify.dossier) and, for the entries the
dossier proved, every file they name is present and hashes to its name. A missing file, a file
whose bytes hash otherwise, a file no entry names and any other member are all failures, each
named with the entries concerned: an auditor must be able to trust that the package holds the
evidence itself, all of it, and nothing else.

Members are read as a stream and hashed a block at a time, so a package of any size verifies
in constant memory; a member is never extracted to disk.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ledger.core.dsse import envelope_payload
from ledger.core.encoding import b64decode_strict
from ledger.core.entry import parse_entry
from ledger.errors import LedgerError, VerificationError
from ledger.records.attachments import FileReference, referenced_files
from ledger.records.predicates import decode_predicate
from ledger.records.statement import decode_statement
from ledger.rules.events import Event
from ledger.verify.dossier import Dossier

DOSSIER_MEMBER = "dossier.json"
FILES_FOLDER = "files/sha256/"
READ_BLOCK = 1 << 20
ZIP_MAGIC = b"PK\x03\x04"
# What reading a damaged member raises: a bad CRC or header, a truncated archive, broken deflate data.
_DAMAGED = (zipfile.BadZipFile, OSError, EOFError, zlib.error)


@dataclass(frozen=True, slots=True)
class NamedFile:
    """A file entries name: its digest (`sha256:<hex>`), and each (entry index, what it is there)."""

    digest: str
    named_by: tuple[tuple[int, str], ...]

    def member(self) -> str:
        """Its member name in a package."""
        return FILES_FOLDER + self.digest.removeprefix("sha256:")

    def describe(self) -> str:
        """`sha256:… (the report of entry 12, …)` for people."""
        places = ", ".join(f"{what} of entry {index}" for index, what in self.named_by)
        return f"{self.digest} ({places})"


@dataclass(slots=True)
class PackageReport:
    """What checking a package's files found (`check_package`)."""

    files: list[NamedFile]
    size: int = 0  # bytes of evidence files checked
    missing: list[NamedFile] = field(default_factory=list)
    altered: list[tuple[NamedFile, str]] = field(default_factory=list)  # and what its bytes are instead
    unnamed: list[str] = field(default_factory=list)  # members no entry names, or not of the layout

    @property
    def intact(self) -> bool:
        """Whether every named file is present and intact, and nothing else is in the package."""
        return not (self.missing or self.altered or self.unnamed)

    def statement(self) -> str:
        """One line for people."""
        if self.intact:
            return f"{len(self.files)} evidence files present, each hashing to the digest its entries name"
        intact = len(self.files) - len(self.missing) - len(self.altered)
        return f"{intact} of {len(self.files)} evidence files intact"


def named_files(references: Iterable[tuple[int, Sequence[FileReference]]]) -> list[NamedFile]:
    """The files named by (entry index, its references), each digest once, in order of first naming."""
    found: dict[str, list[tuple[int, str]]] = {}
    for index, refs in references:
        for ref in refs:
            found.setdefault(ref.digest, []).append((index, ref.what))
    return [NamedFile(digest, tuple(places)) for digest, places in found.items()]


def files_of_events(events: Iterable[Event]) -> list[NamedFile]:
    """The files the verified events name (what a package must hold)."""
    return named_files((event.index, referenced_files(event.predicate)) for event in events)


def files_of_dossier(dossier: Dossier) -> list[NamedFile]:
    """The files a dossier's release entries name, read without verifying them (for `dossier --with-blobs`).

    What the exporter fetches; `evledger verify` then decides from the entries it proved. An entry
    that does not decode is a VerificationError naming it: the dossier is not intact.
    """
    references = []
    for item in dossier.entries:
        try:
            entry = parse_entry(b64decode_strict(item.entry, "entry"))
            statement = decode_statement(envelope_payload(entry.envelope))
            predicate = decode_predicate(statement.predicate_type, statement.predicate)
        except LedgerError as exc:
            raise VerificationError(f"the dossier's entry {item.index} does not decode: {exc}") from exc
        references.append((item.index, referenced_files(predicate)))
    return named_files(references)


def _digest_of(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, int]:
    """The SHA-256 of a member's bytes and their length, read a block at a time."""
    hasher = hashlib.sha256()
    size = 0
    with archive.open(info) as member:
        while block := member.read(READ_BLOCK):
            hasher.update(block)
            size += len(block)
    return f"sha256:{hasher.hexdigest()}", size


def check_package(archive: zipfile.ZipFile, files: list[NamedFile]) -> PackageReport:
    """Check that `archive` holds exactly `files` beside its dossier, each intact.

    Precondition: `files` come from verified events (`files_of_events`). A member whose
    compressed data is damaged (its CRC-32 fails) counts as altered.
    """
    report = PackageReport(files)
    wanted = {f.member(): f for f in files}
    seen: set[str] = set()
    for info in archive.infolist():
        name = info.filename
        if name == DOSSIER_MEMBER or (info.is_dir() and FILES_FOLDER.startswith(name)):
            continue
        named = wanted.get(name)
        if named is None or name in seen:  # not of the layout, named by no entry, or twice in the archive
            report.unnamed.append(name)
            continue
        seen.add(name)
        try:
            digest, size = _digest_of(archive, info)
        except _DAMAGED as exc:
            report.altered.append((named, f"is unreadable ({exc})"))
            continue
        report.size += size
        if digest != named.digest:
            report.altered.append((named, f"hashes to {digest}"))
    report.missing = [f for member, f in wanted.items() if member not in seen]
    return report


def read_dossier_member(archive: zipfile.ZipFile, limit: int) -> bytes:
    """The package's `dossier.json`, of at most `limit` bytes (VerificationError if none, or larger)."""
    try:
        info = archive.getinfo(DOSSIER_MEMBER)
    except KeyError:
        raise VerificationError(f"the audit package holds no {DOSSIER_MEMBER}") from None
    if info.file_size > limit:
        raise VerificationError(f"the package's {DOSSIER_MEMBER} is over {limit:,} bytes")
    try:
        with archive.open(info) as member:
            return member.read(limit + 1)[:limit]
    except _DAMAGED as exc:
        raise VerificationError(f"the package's {DOSSIER_MEMBER} is damaged: {exc}") from exc


def package_files(archive: zipfile.ZipFile) -> Callable[[str], bytes | None]:
    """A reader of the package's evidence files by digest (`sha256:<hex>`): the bytes, or None when absent.

    Each file is read whole and checked against its digest again; one that differs reads as absent.
    Precondition: files of the size a report shows (a SOUP list, a baseline), not gigabytes.
    """

    def read(digest: str) -> bytes | None:
        try:
            data = archive.read(FILES_FOLDER + digest.removeprefix("sha256:"))
        except (KeyError, *_DAMAGED):
            return None
        return data if f"sha256:{hashlib.sha256(data).hexdigest()}" == digest else None

    return read


def require_intact(report: PackageReport) -> None:
    """VerificationError naming every missing, altered or unexpected file, unless the package is intact."""
    if report.intact:
        return
    problems = [f"missing: {f.describe()}" for f in report.missing]
    problems += [f"altered: {f.describe()} {instead}" for f, instead in report.altered]
    problems += [f"not named by any entry: {name}" for name in report.unnamed]
    raise VerificationError(
        "the audit package's evidence files do not match its entries: " + "; ".join(problems)
    )
