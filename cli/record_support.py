"""What every `evledger record KIND` command shares (docs/cli.md#evledger-record).

Options are checked here, with messages that name the option: digests
(`sha256:<64 hex>`), times (RFC 3339 with a zone), enumerations (listing the
allowed values, taken from the predicate's own type so they never drift). The
predicate is then built exactly as the ledger reads it, with `msgspec.convert`
and `ledger.records.predicates.decode_predicate`, so nothing the ledger would
refuse as content is ever signed or sent. `append_statement` stores the `--attach`
files, signs the statement with `--key`, appends it over HTTP with an idempotency
key (by default derived from the statement, as `evledger attest` does), and prints
the receipt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, get_args, get_type_hints
from urllib.parse import quote

import msgspec
import typer

from cli.append_cmds import receipt_lines
from cli.client import LedgerClient
from cli.errors import emit_success
from cli.evidence_files import Attached, EvidenceFile, store_files, stored_lines
from cli.settings import load_signer
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.encoding import format_time
from ledger.core.keys import SignerKey
from ledger.errors import EncodingError, InputError
from ledger.records.attest import idempotency_key as attest_idempotency_key
from ledger.records.formats import normal_sha256_digest, parse_offset_time
from ledger.records.predicates import PREDICATE_TYPES, decode_predicate, kind_name
from ledger.records.statement import STATEMENT_TYPE_V1, decode_statement, release_of, subject_digests

_encoder = msgspec.json.Encoder(order="sorted")
_DURATION = re.compile(r"([1-9][0-9]{0,4})([hdw])")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
_GIT_COMMIT = re.compile(r"[0-9a-fA-F]{7,64}")
_FIELD_PATH = re.compile(r"`\$\.([a-z_]+)(?:\[\d+\])?(?:\.([a-z_]+))?`")
# Predicate fields whose option is named in the singular, being repeatable (one value each time).
_REPEATED = {
    "artifacts": "--artifact",
    "components": "--component",
    "defects": "--defect",
    "manual_steps": "--manual-step",
    "entries": "--entry",
    "requirements": "--requirement",
    "tests": "--test",
}

ProductArgument = Annotated[
    str, typer.Argument(help="The product, as all of its release's evidence names it (e.g. ivd-analyzer).")
]
VersionArgument = Annotated[str, typer.Argument(help="The release's version (e.g. 2.4.0).")]
IdempotencyKeyOption = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        help="Makes a retried job safe: the same key and statement return the first receipt "
        "(default: derived from the statement itself).",
    ),
]
SUBJECT_DIGEST_HELP = (
    "The digest (sha256:<64 hex>) of the artifact this evidence is about, normally the release candidate."
)
SubjectNameOption = Annotated[
    str,
    typer.Option(
        "--subject-name", help="The name the statement gives its subject artifact (e.g. analyzer.tar)."
    ),
]


def option_name(field: str) -> str:
    """The command-line option of a predicate field (`risk_class` → `--risk-class`)."""
    return _REPEATED.get(field, "--" + field.replace("_", "-"))


def allowed(cls: type[Any], field: str) -> tuple[str, ...]:
    """The values a predicate's enumerated field accepts, as its type declares them."""
    return tuple(str(v) for v in get_args(get_type_hints(cls)[field]))


def choices_help(text: str, cls: type[Any], field: str) -> str:
    """Help text ending with the field's allowed values."""
    return f"{text} One of: {', '.join(allowed(cls, field))}."


def check_choice(cls: type[Any], field: str, value: str) -> str:
    """`value` when the field allows it; InputError listing the allowed values otherwise."""
    values = allowed(cls, field)
    if value not in values:
        raise InputError(f"{option_name(field)} must be one of {', '.join(values)}; got {value!r}")
    return value


def check_digest(option: str, value: str) -> str:
    """`sha256:<64 hex>` in its stored (lowercase) spelling; InputError naming `option` otherwise."""
    digest = normal_sha256_digest(value.strip())
    if digest is None:
        raise InputError(f"{option} must be written sha256:<64 hex digits>; got {value!r}")
    return digest


def check_time(option: str, value: str) -> str:
    """An RFC 3339 time with a zone, written in UTC as the ledger writes times; InputError otherwise."""
    moment = parse_offset_time(value.strip())
    if moment is None:
        raise InputError(
            f"{option} must be an RFC 3339 date and time with a zone, e.g. 2026-03-01T14:30:00Z; "
            f"got {value!r}"
        )
    return format_time(moment)


def check_time_or_duration(option: str, value: str, now: datetime) -> str:
    """A duration from `now` (`12h`, `7d`, `2w`) or an RFC 3339 time; InputError otherwise."""
    duration = _DURATION.fullmatch(value.strip())
    if duration is not None:
        return format_time(now + timedelta(**{_UNITS[duration[2]]: int(duration[1])}))
    try:
        return check_time(option, value)
    except InputError:
        raise InputError(
            f"{option} must be a duration from now (12h, 7d, 2w) or an RFC 3339 date and time with a "
            f"zone, e.g. 2026-03-01T14:30:00Z; got {value!r}"
        ) from None


def check_text(**values: str) -> None:
    """Refuse an empty (or blank) text option, naming it."""
    for field, value in values.items():
        if not value.strip():
            raise InputError(f"{option_name(field)} must not be empty")


def now() -> datetime:
    """The present, in UTC."""
    return datetime.now(UTC)


def now_text() -> str:
    """The present as the ledger writes times (RFC 3339 UTC, milliseconds)."""
    return format_time(now())


def artifact_subject(name: str, digest: str) -> dict[str, Any]:
    """An in-toto subject: an artifact by its SHA-256 digest (`digest` passed `check_digest`)."""
    check_text(subject_name=name)
    return {"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}}


def commit_subject(commit: str) -> dict[str, Any]:
    """An in-toto subject: the source commit (`gitCommit`), as the change's subject (cli/story.py)."""
    if not _GIT_COMMIT.fullmatch(commit.strip()):
        raise InputError(f"--commit must be a git commit id (7 to 64 hex digits); got {commit!r}")
    return {"name": "git", "digest": {"gitCommit": commit.strip().lower()}}


def _explain(cls: type[Any], message: str) -> str:
    """The msgspec message with the predicate field replaced by its option (and the allowed values)."""
    found = _FIELD_PATH.search(message)
    if found is None:
        return message
    outer, inner = found[1], found[2]
    option = option_name(f"{outer}_{inner}" if inner else outer)
    text = message.replace(found[0], option).replace(" - at ", " for ")
    hints = get_type_hints(cls)
    if inner is None and outer in hints and get_args(hints[outer]) and "enum" in message:
        text += f" (one of {', '.join(allowed(cls, outer))})"
    return text


def build_predicate(
    predicate_type: str, fields: dict[str, Any], attached: Attached | None = None
) -> dict[str, Any]:
    """The predicate as the ledger reads it: converted by msgspec, checked by `decode_predicate`.

    Precondition: `predicate_type` is one of ours. Optional fields left as None are
    omitted; `attached` files (`--attach`) become its `attachments`. InputError, naming the
    option where it can, for anything the ledger would refuse.
    """
    if attached is not None and attached.attachments:
        fields = {**fields, "attachments": [msgspec.to_builtins(a) for a in attached.attachments]}
    cls = PREDICATE_TYPES[predicate_type]
    try:
        value = msgspec.convert(fields, type=cls)
    except msgspec.ValidationError as exc:
        raise InputError(f"{kind_name(predicate_type)}: {_explain(cls, str(exc))}") from None
    body = {k: v for k, v in msgspec.to_builtins(value).items() if v is not None}
    try:
        decode_predicate(predicate_type, body)
    except EncodingError as exc:
        raise InputError(str(exc)) from None
    return body


def statement(predicate_type: str, subjects: list[dict[str, Any]], predicate: dict[str, Any]) -> bytes:
    """Statement v1 bytes (sorted keys: the same options, the same bytes), checked as admission would."""
    payload = _encoder.encode(
        {
            "_type": STATEMENT_TYPE_V1,
            "subject": subjects,
            "predicateType": predicate_type,
            "predicate": predicate,
        }
    )
    try:
        decoded = decode_statement(payload)
        release_of(decoded)
    except EncodingError as exc:
        raise InputError(str(exc)) from None
    return payload


def idempotency_key(payload: bytes) -> str:
    """A deterministic Idempotency-Key for a statement: `evledger attest`'s, the statement as its own report.

    A retried job sends the same key for the same statement, and no other statement shares
    it. Precondition: `payload` was made by `statement`.
    """
    return attest_idempotency_key(payload, payload)


def require_token(token: str | None) -> str:
    """The API token; InputError when none was given."""
    if not token:
        raise InputError("give the API token with --token or EVLEDGER_TOKEN")
    return token


def release_path(product: str, version: str) -> str:
    """The release's route prefix, with product and version escaped."""
    return f"/v1/releases/{quote(product, safe='')}/{quote(version, safe='')}"


def timeline(client: LedgerClient, product: str, version: str) -> dict[str, Any]:
    """The release's timeline as `GET …/timeline` answers it (NotFoundError for a release with no entry)."""
    found: dict[str, Any] = client.get(release_path(product, version) + "/timeline").json()
    return found


def append_statement(
    client: LedgerClient,
    payload: bytes,
    signer: SignerKey,
    *,
    idempotency_key_given: str | None,
    summary: str,
    json_output: bool,
    files: Sequence[EvidenceFile] = (),
) -> None:
    """Store `files`, sign `payload` (made by `statement`) with `signer`, append it, and print the receipt.

    Prints the idempotency key, `summary` and "appended: entry N" (or "already
    recorded as entry N" when the ledger answered with the original receipt), and a line
    per file stored. The files (`--attach`) are stored first, for the statement's product.
    """
    chosen = idempotency_key_given or idempotency_key(payload)
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, [signer])
    decoded = decode_statement(payload)
    stored = store_files(client, release_of(decoded)[0] or "", files)
    appended = client.append_envelopes([envelope], chosen)
    lines = [f"idempotency key: {chosen}", summary]
    lines += receipt_lines(appended.receipts, "appended", already_recorded=appended.already_recorded)
    lines += stored_lines(stored)
    fields: dict[str, Any] = {
        "idempotency_key": chosen,
        "predicate_type": decoded.predicate_type,
        "subjects": list(subject_digests(decoded)),
        "predicate": decoded.predicate,
        "signer": signer.keyid,
        "receipts": appended.receipts,
        "already_recorded": appended.already_recorded,
        "files": stored,
    }
    emit_success(json_output=json_output, fields=fields, lines=lines)


def send(
    payload: bytes,
    *,
    key: Path | None,
    token: str | None,
    server: str,
    idempotency_key_given: str | None,
    summary: str,
    json_output: bool,
    files: Sequence[EvidenceFile] = (),
) -> None:
    """Load the signer key; store `files`, then sign and append `payload` (see `append_statement`)."""
    signer = load_signer(key)
    with LedgerClient(server, require_token(token)) as client:
        append_statement(
            client,
            payload,
            signer,
            idempotency_key_given=idempotency_key_given,
            summary=summary,
            json_output=json_output,
            files=files,
        )
