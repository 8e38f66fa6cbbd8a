"""in-toto Statement v1 (github.com/in-toto/attestation spec/v1/statement.md), as carried in DSSE.

Only what the ledger indexes is interpreted here: the subjects' digests, the
predicate type, and the release a predicate names (`predicate.release`).
Following the spec's parsing rules (spec/v1/README.md#parsing-rules), unknown
fields are ignored; the payload is stored exactly as signed, so they stay in
the log. Statement v0.1 (`https://in-toto.io/Statement/v0.1`, which builders
of SLSA Provenance v0.2 still emit) has the same shape for what is read here.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ledger.core.encoding import JSON_ERRORS
from ledger.errors import EncodingError
from ledger.records.formats import is_hex64
from ledger.records.predicates import GATE_DECISION, RELEASE_SEAL, gate_release

STATEMENT_TYPE_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_TYPE_V01 = "https://in-toto.io/Statement/v0.1"
STATEMENT_TYPES = (STATEMENT_TYPE_V1, STATEMENT_TYPE_V01)  # the `_type`s admitted


class ResourceDescriptor(msgspec.Struct, frozen=True, rename="camel"):
    """An in-toto ResourceDescriptor; only `name` and `digest` matter to the ledger."""

    name: str = ""
    uri: str = ""
    digest: dict[str, str] = msgspec.field(default_factory=dict)
    download_location: str = ""
    media_type: str = ""
    annotations: dict[str, Any] = msgspec.field(default_factory=dict)


class Statement(msgspec.Struct, frozen=True):
    """An in-toto Statement v1 (or v0.1); other fields are ignored here and kept in the stored payload."""

    type: str = msgspec.field(name="_type")
    subject: list[ResourceDescriptor] = msgspec.field(default_factory=list)
    predicate_type: str = msgspec.field(name="predicateType", default="")
    predicate: dict[str, Any] = msgspec.field(default_factory=dict)


_decoder = msgspec.json.Decoder(Statement)
# PostgreSQL indexes these as text (docs/architecture.md#storage). A btree index row holds at
# most 2,704 bytes and a GIN entry about as much; at up to 4 UTF-8 bytes a character, these
# limits keep every row inside, so that no admitted statement can fail its batch at commit.
MAX_NAME = 256  # predicate.release product and version
MAX_PREDICATE_TYPE = 512
MAX_DIGEST_ALGORITHM = 64
MAX_DIGEST_VALUE = 512


def decode_statement(payload: bytes) -> Statement:
    """Parse a Statement v1 or v0.1; it needs at least one subject with a digest and a predicate type."""
    try:
        statement = _decoder.decode(payload)
    except JSON_ERRORS as exc:
        raise EncodingError(f"payload is not an in-toto Statement: {exc}") from exc
    if statement.type not in STATEMENT_TYPES:
        raise EncodingError(f"statement _type must be {' or '.join(STATEMENT_TYPES)}, got {statement.type!r}")
    if not statement.predicate_type:
        raise EncodingError("statement predicateType must not be empty")
    if len(statement.predicate_type) > MAX_PREDICATE_TYPE:
        raise EncodingError(f"statement predicateType is longer than {MAX_PREDICATE_TYPE} characters")
    if not statement.subject or any(not s.digest for s in statement.subject):
        raise EncodingError("statement needs at least one subject, each with a digest")
    for subject in statement.subject:
        for algorithm, value in subject.digest.items():
            if len(algorithm) > MAX_DIGEST_ALGORITHM or len(value) > MAX_DIGEST_VALUE:
                raise EncodingError(
                    f"a subject digest has at most {MAX_DIGEST_ALGORITHM} characters of algorithm "
                    f"and {MAX_DIGEST_VALUE} of value"
                )
    return statement


def subject_digests(statement: Statement) -> tuple[str, ...]:
    """Every subject digest as `<algorithm>:<value>` (e.g. sha256:ab12…, gitCommit:…), sorted, unique."""
    return tuple(
        sorted({f"{alg}:{value.lower()}" for s in statement.subject for alg, value in s.digest.items()})
    )


def release_of(statement: Statement) -> tuple[str | None, str | None]:
    """The (product, version) named in `predicate.release`, or (None, None) when absent.

    A gate decision (SLSA VSA) names it under its URI-named extension key instead
    (`predicates.GATE_EXTENSION`), or at the top level as written before issue #12.
    """
    if statement.predicate_type == GATE_DECISION:
        release = gate_release(statement.predicate)
    else:
        release = statement.predicate.get("release")
    if release is None:
        return None, None
    if not isinstance(release, dict):
        raise EncodingError("predicate.release must be an object with product and version")
    product, version = release.get("product"), release.get("version")
    if not isinstance(product, str) or not 0 < len(product) <= MAX_NAME:
        raise EncodingError(f"predicate.release.product must be a string of 1 to {MAX_NAME} characters")
    if version is not None and (not isinstance(version, str) or not 0 < len(version) <= MAX_NAME):
        raise EncodingError(f"predicate.release.version must be a string of 1 to {MAX_NAME} characters")
    return product, version


def seal_of(statement: Statement) -> tuple[int, str] | None:
    """For a release seal, the (count, head leaf hash) it commits to; None for other statements."""
    if statement.predicate_type != RELEASE_SEAL:
        return None
    count, head = statement.predicate.get("count"), statement.predicate.get("head")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise EncodingError("a release seal needs predicate.count, the number of release entries before it")
    if not isinstance(head, str) or not is_hex64(head):
        raise EncodingError(
            "a release seal needs predicate.head, the hex leaf hash of the release's last entry"
        )
    return count, head
