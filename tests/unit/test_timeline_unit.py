"""Timeline pieces without a database: event records and summaries, chain completeness, filters, SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any

import msgspec
import pytest

from cli.timeline_cmd import facts
from ledger.append.batch import PendingRequest, plan_batch
from ledger.append.bootstrap import genesis_request
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.entry import ChainLink, ReleaseLink, parse_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.errors import InputError
from ledger.query.timeline import parse_cursor, parse_digest, parse_moment, resolve_kinds
from ledger.records import predicates as p
from ledger.records.admin import KeyRegistered, encode_admin_record
from ledger.rules.admission import admit
from ledger.rules.chains import chain_is_complete
from ledger.rules.events import Decoded, SignerNames, admitted_event, decode_event, event_from_entry
from ledger.rules.registry import KeyRegistry
from ledger.service.routes_releases import event_view
from ledger.storage.entry_queries import BUILD_KIND, BUILD_KINDS, is_combination, search_sql
from ledger.storage.protocol import Head

LEDGER = SignerKey.from_seed("ledger.test/unit", bytes(range(32)))
CI = SignerKey.from_seed("ci.test/unit", bytes(range(1, 33)))
DIGEST = "sha256:" + "ab" * 32
WHEN = "2026-01-02T03:04:05.000Z"
REL = p.Release("prod", "1.0")
PREDICATES: list[tuple[str, Any]] = [
    (p.CHANGE, p.Change(REL, "C-1", p.ChangeSummary("w", "y", "r", "m"), "low", False, True, ["ui"], "Ann")),  # noqa: FBT003
    (p.BUILD, p.Build(REL, "repo", "c0ffee", "b-1", "ci", [p.Artifact("x.tar", "sha256:" + "cd" * 32)])),
    (p.TEST_RUN, p.TestRun(REL, "unit", "pytest", "c0ffee", "ci", 10, 1, 0, "failed")),
    (p.SCAN, p.Scan(REL, "grype", "1", p.Findings(critical=2))),
    (p.VALIDATION, p.Validation(REL, "sens", p.Dataset("gold", "3", DIGEST), "passed", ["D-1"])),
    (p.APPROVAL, p.Approval(REL, "admin", "review", "rejected", DIGEST, [2, 3], WHEN, "no")),
    (p.EXCEPTION, p.PolicyException(REL, "scan-clean", "vendor fix pending", WHEN, WHEN)),
    (p.EXCEPTION_REVIEW, p.ExceptionReview(REL, 7, "accepted", "fixed")),
    (p.DEPLOYMENT, p.Deployment(REL, "prod-eu", DIGEST, WHEN, WHEN, "succeeded")),
    (p.ROLLBACK, p.Rollback(REL, "prod-eu", DIGEST, "sha256:" + "ef" * 32, "alarm", WHEN, WHEN, "succeeded")),
    ("https://example.org/custom/v1", {"release": msgspec.to_builtins(REL), "n": 3, "deep": {"x": 1}}),
]


def _statement(predicate_type: str, predicate: Any) -> bytes:
    body = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "a", "digest": {"sha256": "AB" * 32}}],
        "predicateType": predicate_type,
        "predicate": msgspec.to_builtins(predicate),
    }
    return msgspec.json.encode(body)


def _ledger(statements: list[bytes]) -> tuple[list[bytes], KeyRegistry]:
    """Entry 0, a registration of CI (role admin, so it may approve in that role), then the statements."""
    start = Head("ledger.test/unit", 0, (), bytes(32), "", -1)
    now = datetime(2026, 1, 2, tzinfo=UTC)
    genesis = plan_batch(start, [genesis_request(LEDGER, "ledger")], KeyRegistry(), LEDGER, now, genesis=True)
    assert genesis.write is not None
    record = KeyRegistered(CI.verifier().format(), "Casey CI", ["admin", "appender"], [])
    envelopes = [sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(record), [LEDGER])]
    registry = genesis.registry.copy()
    admitted = [admit(envelopes[0], registry, 1)]
    registry.register(1, record)
    admitted += [admit(sign_envelope(INTOTO_PAYLOAD_TYPE, body, [CI]), registry, 2) for body in statements]
    plan = plan_batch(
        genesis.write.head, [PendingRequest([a]) for a in admitted], genesis.registry, LEDGER, now
    )
    assert plan.write is not None
    assert not plan.rejected
    return [e.data for e in genesis.write.entries + plan.write.entries], plan.registry


@pytest.fixture(scope="module")
def decoded() -> list[Decoded]:
    entries, registry = _ledger([_statement(t, v) for t, v in PREDICATES])
    return [
        decode_event(data, CI.keyid if i > 1 else LEDGER.keyid, SignerNames(registry))
        for i, data in enumerate(entries)
    ]


def test_records_name_kind_signer_and_summary(decoded: list[Decoded]) -> None:
    kinds = [d.event.kind for d in decoded]
    assert kinds[:2] == ["key.registered", "key.registered"]
    assert kinds[2:] == [*(p.kind_name(t) for t, _ in PREDICATES)]
    registration = decoded[1].event
    assert registration.summary["owner"] == "Casey CI"
    assert registration.release_seq is None
    evidence = [d.event for d in decoded[2:]]
    assert [r.release_seq for r in evidence] == list(range(len(PREDICATES)))
    assert all(r.signer.owner == "Casey CI" and r.signer.roles == ("admin", "appender") for r in evidence)
    assert all(r.subjects == (DIGEST,) for r in evidence)
    by_kind = {r.kind: r.summary for r in evidence}
    assert by_kind["approval"]["approver"] == "Casey CI"
    assert by_kind["rollback"]["digests"] == [DIGEST, "sha256:" + "ef" * 32]
    assert by_kind["evidence"] == {"predicate_keys": ["deep", "n", "release"], "values": {"n": 3}}
    for record in evidence:
        line = facts(msgspec.to_builtins(event_view(record)))
        assert line
        assert "fields:" not in line  # every kind has its own renderer, generic ones show values


def test_release_event_summaries_match_the_records() -> None:
    """A dossier's events (built from what admission decoded) are the events the timeline route shows."""
    entries, registry = _ledger([_statement(t, v) for t, v in PREDICATES])
    names = SignerNames(registry)
    for data in entries[2:]:
        entry = parse_entry(data)
        admitted = admit(entry.envelope, registry, entry.index, keep_decoded=True)
        from_admission = admitted_event(entry, leaf_hash(data), admitted, names(admitted.signer_keyid))
        assert from_admission is not None
        assert from_admission == decode_event(data, CI.keyid, names).event
        assert from_admission == event_from_entry(data, registry)


def test_an_event_cannot_be_built_from_an_admission_that_kept_nothing() -> None:
    entries, registry = _ledger([_statement(*PREDICATES[0])])
    entry = parse_entry(entries[2])
    admitted = admit(entry.envelope, registry, entry.index)
    with pytest.raises(ValueError, match="keep_decoded"):
        admitted_event(entry, leaf_hash(entries[2]), admitted, SignerNames(registry)(admitted.signer_keyid))


def test_complete_chain(decoded: list[Decoded]) -> None:
    chain = decoded[2:]
    assert chain_is_complete(chain, "prod", "1.0")
    assert chain_is_complete(list(reversed(chain)), "prod", "1.0")
    assert not chain_is_complete(chain, "prod", "2.0")
    assert not chain_is_complete([], "prod", "1.0")


def test_a_missing_entry_is_a_gap(decoded: list[Decoded]) -> None:
    chain = decoded[2:]
    assert not chain_is_complete(chain[:3] + chain[4:], "prod", "1.0")
    assert not chain_is_complete(chain[1:], "prod", "1.0")  # seq 0 left out
    # An entry from outside the chain (an admin record) cannot be slipped in.
    assert not chain_is_complete([*chain, decoded[1]], "prod", "1.0")


def test_a_link_to_other_bytes_is_a_gap(decoded: list[Decoded]) -> None:
    chain = decoded[2:]
    victim = chain[3]
    forged = msgspec.structs.replace(victim, event=msgspec.structs.replace(victim.event, leaf_hash=bytes(32)))
    assert not chain_is_complete([*chain[:3], forged, *chain[4:]], "prod", "1.0")


def test_a_link_that_skips_a_seq_is_a_gap(decoded: list[Decoded]) -> None:
    chain = decoded[2:4]
    link = ReleaseLink("prod", "1.0", 2, ChainLink(chain[0].event.index, chain[0].event.leaf_hash.hex()))
    skipped = Decoded(link, msgspec.structs.replace(chain[-1].event, release_seq=2))
    assert not chain_is_complete([chain[0], skipped], "prod", "1.0")


def test_filters() -> None:
    assert resolve_kinds("build") == (p.BUILD, p.SLSA_PROVENANCE, p.SLSA_PROVENANCE_V02)
    assert resolve_kinds("test-run") == (p.TEST_RUN,)
    assert resolve_kinds("key.revoked") == ("key.revoked",)
    assert resolve_kinds("https://example.org/x/v1") == ("https://example.org/x/v1",)
    assert resolve_kinds(None) == resolve_kinds("") == ()
    for bad in ("evidence", "builds", "DROP TABLE entries"):
        with pytest.raises(InputError):
            resolve_kinds(bad)
    assert parse_digest("sha256:" + "AB" * 32) == "sha256:" + "ab" * 32
    assert parse_cursor(None) == parse_cursor("") == 0
    assert parse_cursor("42") == 42
    for cursor in ("-1", "4.2", "1e3", "9" * 19):
        with pytest.raises(InputError):
            parse_cursor(cursor)
    assert parse_moment("2026-01-02T03:04:05Z", "since") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_moment("2026-01-02T04:04:05.5+01:00", "since") == datetime(2026, 1, 2, 3, 4, 5, 500000, UTC)
    for moment in ("2026-01-02", "2026-01-02T03:04:05", "soon"):
        with pytest.raises(InputError):
            parse_moment(moment, "since")


def test_search_sql_binds_every_value() -> None:
    sql, args = search_sql(
        start=5, stop=9, kinds=["k1", "k2"], product="p'; --", version="v", signers=["s"], limit=11
    )
    assert sql.count("UNION ALL") == 1
    assert "p'; --" not in sql
    assert args == [5, 11, 9, "p'; --", "v", "k1", "s", "k2", "s"]  # each arm binds its kind and signer
    sql, args = search_sql(start=0, stop=None, kinds=[], product=None, version=None, signers=[], limit=3)
    assert sql.endswith("WHERE idx >= $1 ORDER BY idx LIMIT $2")
    assert args == [0, 3]


@pytest.mark.parametrize(
    ("filters", "combined"),
    [
        ({}, False),
        ({"kinds": ["k"]}, False),
        ({"kinds": ["k1", "k2"]}, False),
        ({"signers": ["s"]}, False),
        ({"signers": ["s1", "s2"]}, False),  # an owner's keys: one scan each, merged
        ({"product": "p"}, False),
        ({"product": "p", "version": "v", "kinds": ["k"], "signers": ["s"]}, False),  # one release: its index
        ({"product": "p", "kinds": ["k"]}, True),
        ({"signers": ["s"], "kinds": ["k"]}, True),
    ],
)
def test_combinations_no_index_serves(filters: dict[str, Any], combined: bool) -> None:
    query = {"kinds": [], "product": None, "version": None, "signers": []} | filters
    assert is_combination(**query) == combined


def test_build_kind_matches_predicates_and_migration() -> None:
    assert BUILD_KIND == p.BUILD
    # the storage layer's own copy of the build kinds (it may not import the records layer)
    assert set(BUILD_KINDS) == {t for t, name in p.KIND_NAMES.items() if name == "build"}
    migration = resources.files("ledger.storage") / "migrations" / "005_timeline_indexes.sql"
    assert f"WHERE kind = '{BUILD_KIND}'" in migration.read_text()
