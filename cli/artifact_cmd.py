"""`evledger artifact DIGEST`: every entry about an artifact, proven complete (docs/cli.md, issue #13).

It asks the server for the artifact chain's head in the completeness index
(`GET /v1/index/proof?artifact=`), opens the checkpoint that commits to the index
with the ledger key, verifies the proof, then fetches the chain's entries one by
one (`GET /v1/entries/{index}`) from the head back to the first, checking each
against the back-link that names it (`ledger.verify.artifact_chain`). It prints one
row per entry in log order and a footer saying at which checkpoint the list is
complete. An artifact no entry names is proven absent (exit 0). Any entry that is
withheld, altered or out of place fails the command (exit 1).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec
import typer

from cli.client import LedgerClient
from cli.errors import JsonOption, command_errors, emit_success
from cli.files import load_verifier_key
from cli.offline import KeyOption, OriginOption
from cli.served import served_index_proof
from cli.settings import DEFAULT_SERVER, ServerOption, TokenOption
from cli.trust_options import WitnessPolicyOption, anchored, load_trust
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, envelope_payload
from ledger.core.encoding import JSON_ERRORS, b64decode_strict
from ledger.errors import EncodingError
from ledger.query.timeline import parse_digest
from ledger.records.predicates import kind_name
from ledger.records.statement import decode_statement, release_of
from ledger.verify.artifact_chain import (
    ArtifactHistory,
    ArtifactMember,
    EntrySource,
    open_index_checkpoint,
    verify_artifact_history,
)

_HEADERS = ("index", "time", "kind", "release", "signer")
T = TypeVar("T")


class _EntryAnswer(msgspec.Struct):
    """What this command reads of `GET /v1/entries/{index}`: the entry's exact bytes in base64."""

    entry: str


def _decode_answer(body: bytes, kind: type[T], what: str) -> T:
    try:
        return msgspec.json.decode(body, type=kind)
    except JSON_ERRORS as exc:
        raise EncodingError(f"the server's answer to {what} is not what the API documents: {exc}") from exc


def _entry_source(client: LedgerClient) -> EntrySource:
    """`entry_at` for the verifier: the exact bytes of an entry, fetched (NotFoundError on a 404)."""

    def entry_at(index: int) -> bytes:
        answer = _decode_answer(client.get(f"/v1/entries/{index}").content, _EntryAnswer, f"entry {index}")
        return b64decode_strict(answer.entry, f"entry {index}")

    return entry_at


def describe(member: ArtifactMember) -> dict[str, Any]:
    """One verified entry as the command shows it: place, time, kind, release and signers.

    The kind is the predicate type's short name (`evidence` for generic statements); an
    envelope that is not an in-toto Statement shows its payload type. The release is the
    entry's release back-link, else the statement's `predicate.release`, else none.
    """
    entry = member.entry
    envelope = entry.envelope
    kind, predicate_type = envelope.payload_type, envelope.payload_type
    product: str | None = None
    version: str | None = None
    if envelope.payload_type == INTOTO_PAYLOAD_TYPE:
        try:
            statement = decode_statement(envelope_payload(envelope))
            predicate_type = statement.predicate_type
            kind = kind_name(predicate_type)
            product, version = release_of(statement)
        except EncodingError:
            kind = "statement (does not decode)"
    if entry.release is not None:
        product, version = entry.release.product, entry.release.version
    return {
        "index": member.index,
        "leaf_hash": member.leaf_hash.hex(),
        "seq": member.link.seq,
        "time": entry.time,
        "kind": kind,
        "predicate_type": predicate_type,
        "product": product,
        "version": version,
        "signers": [s.keyid for s in envelope.signatures],
    }


def render_table(history: ArtifactHistory, rows: list[dict[str, Any]]) -> list[str]:
    """The lines the command prints: the digest, a header, one row per entry, then the proven statement."""
    cells = [
        (
            str(r["index"]),
            r["time"],
            r["kind"] if r["kind"] != "evidence" else f"evidence ({r['predicate_type']})",
            " ".join(v for v in (r["product"], r["version"]) if v) or "-",
            ", ".join(k or "(no keyid)" for k in r["signers"]) or "-",
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [_HEADERS, *cells]) for i in range(len(_HEADERS) - 1)]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()

    table = [line(_HEADERS), line(tuple("-" * w for w in [*widths, len(_HEADERS[-1])])), *map(line, cells)]
    return [f"artifact {history.digest}", *(table if rows else []), "", history.statement()]


def artifact(
    digest: Annotated[str, typer.Argument(help="The artifact's digest, sha256:<64 hex digits>.")],
    key: KeyOption,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
    origin: OriginOption = None,
    witness_policy: WitnessPolicyOption = None,
    json_output: JsonOption = False,
) -> None:
    """List every entry about an artifact, proven complete at the newest checkpoint (or proven absent)."""
    with command_errors(json_output=json_output):
        wanted = parse_digest(digest)
        verifier = load_verifier_key(key)
        trust = load_trust(witness_policy, None)
        with LedgerClient(server, token) as client:
            answer = served_index_proof(client, {"artifact": wanted})
            at = open_index_checkpoint(answer.checkpoint, verifier, answer.tree_size, origin)
            anchored(answer.checkpoint, [], trust, "the index proof's checkpoint")
            history = verify_artifact_history(at, wanted, answer.proof, _entry_source(client))
        rows = [describe(m) for m in history.members]
        fields = {
            "digest": history.digest,
            "tree_size": history.at.tree_size,
            "chained_from": history.at.chained_from,
            "count": history.count,
            "newest": None if history.head is None else history.head.last_index,
            "entries": rows,
            "statement": history.statement(),
        }
        emit_success(json_output=json_output, fields=fields, lines=render_table(history, rows))
