"""The text formats records share: SHA-256 digests, hex hashes and times with an offset. Pure.

One spelling of each, used by admission (what may enter the log), by the
readers of the log (compliance, timelines, search) and by the JSON Schemas and
OpenAPI patterns published for them, so that a value the ledger accepted is a
value every reader can read. The canonical entry time (RFC 3339 UTC with
milliseconds) is `ledger.core.encoding.format_time`; the times here are the
ones people and tools write into predicates and queries.
"""

from __future__ import annotations

import re
from datetime import datetime

from ledger.errors import EncodingError

HEX64 = "[0-9a-f]{64}"  # a SHA-256 value as lowercase hex: a leaf hash, a seal's head
SHA256_DIGEST = f"sha256:{HEX64}"  # an artifact digest as predicates store it (schemas/PREDICATES.md)
# Inputs (tool output, URLs) may write the hex in upper case; they are lowered before use.
HEX64_ANY_CASE = "[0-9a-fA-F]{64}"
SHA256_DIGEST_ANY_CASE = f"sha256:{HEX64_ANY_CASE}"

_HEX64 = re.compile(HEX64)
_SHA256_DIGEST = re.compile(SHA256_DIGEST)
_SHA256_DIGEST_ANY_CASE = re.compile(SHA256_DIGEST_ANY_CASE)


def anchored(pattern: str) -> str:
    """`pattern` as a whole-string JSON Schema / OpenAPI `pattern` (those match anywhere otherwise)."""
    return f"^{pattern}$"


def is_hex64(text: str) -> bool:
    """Whether `text` is 64 lowercase hex digits."""
    return _HEX64.fullmatch(text) is not None


def is_sha256_digest(text: str) -> bool:
    """Whether `text` is `sha256:` and 64 lowercase hex digits, the stored spelling."""
    return _SHA256_DIGEST.fullmatch(text) is not None


def normal_sha256_digest(text: str) -> str | None:
    """`sha256:<64 hex>` in its stored (lowercase) spelling, from either case; None for anything else."""
    return text.lower() if _SHA256_DIGEST_ANY_CASE.fullmatch(text) else None


def parse_offset_time(text: str) -> datetime | None:
    """A date and time with its zone (`Z` or an offset, RFC 3339 §5.6), or None for anything else.

    This is the rule admission applies to every time in a predicate, so the readers
    of the log use it too: a time the ledger accepted is one they can read. It is what
    Python's ISO 8601 reader takes with a `T` separator and a zone.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None or "T" not in text.upper():
        return None
    return moment


UTF8_BOM = b"\xef\xbb\xbf"


def strip_bom(data: bytes) -> bytes:
    """`data` without a leading UTF-8 byte order mark (RFC 8259 §8.1 lets a JSON parser ignore one)."""
    return data.removeprefix(UTF8_BOM)


def bounded_text(value: str | None, what: str, where: str, limit: int) -> str | None:
    """`value` without surrounding white space, None when empty; EncodingError over `limit` characters.

    For the texts read from another tool's document (`what`, e.g. "CycloneDX SBOM"), each at the
    path `where` in it: an SBOM's or a VEX document's names, versions and licences.
    """
    if value is None:
        return None
    text = value.strip()
    if len(text) > limit:
        raise EncodingError(f"{what}: {where} is {len(text)} characters, over the {limit} allowed")
    return text or None
