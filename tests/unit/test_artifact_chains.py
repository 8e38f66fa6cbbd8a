"""Per-artifact hash chains (issue #13, docs/completeness-index.md), against the in-memory store.

Every entry whose statement names a sha256 subject digest links back to the previous entry
naming it; the batch planner hands the new head of every chain it extended to the store, and
every verifier re-derives the links (from the first chained index on).
"""

from __future__ import annotations

import asyncio
import itertools
import random

import msgspec
import pytest
from sequencer_support import ALICE, BOB, FakeStore, check_log, request, started

from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.entry import ArtifactLink, ChainLink, Entry, encode_entry, parse_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.core.sparse_merkle import KEY_EVENTS_KEY, MAX_CHAINED_SUBJECTS, Head, artifact_key, release_key
from ledger.errors import ChainError, EncodingError
from ledger.rules.admission import admit
from ledger.rules.chains import UNSTATED, Chains
from ledger.rules.replay import LogReplayer
from ledger.storage.protocol import IndexHeadRow

NOW_OR_LATER = 2**62


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def about(
    signer: SignerKey, subjects: list[dict[str, str]], *, note: str = "", release: str = ""
) -> Envelope:
    """A signed statement about `subjects` (digest maps), in release prod/`release` when given."""
    predicate: dict[str, object] = {"note": note}
    if release:
        predicate["release"] = {"product": "prod", "version": release}
    body = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"s{n}", "digest": d} for n, d in enumerate(subjects)],
        "predicateType": "https://evledger.test/generic/v1",
        "predicate": predicate,
    }
    return sign_envelope(INTOTO_PAYLOAD_TYPE, msgspec.json.encode(body), [signer])


def sha(*numbers: int) -> list[dict[str, str]]:
    return [{"sha256": f"{n:064x}"} for n in numbers]


def entries(store: FakeStore) -> list[tuple[Entry, bytes]]:
    return [(parse_entry(data), leaf_hash(data)) for data in store.entry_bytes()]


def chain_of(store: FakeStore, wanted: str) -> list[tuple[int, ArtifactLink, bytes]]:
    """Every entry carrying a link for `wanted`, in log order: (index, link, leaf hash)."""
    return [
        (entry.index, link, leaf)
        for entry, leaf in entries(store)
        for link in entry.artifacts or ()
        if link.digest == wanted
    ]


def assert_whole_chain(members: list[tuple[int, ArtifactLink, bytes]]) -> None:
    """seq 0..n-1, each linking to the one before by index and leaf hash."""
    assert [link.seq for _, link, _ in members] == list(range(len(members)))
    assert members[0][1].prev is None
    for (index, _, leaf), (_, link, _) in itertools.pairwise(members):
        assert link.prev == ChainLink(index, leaf.hex())


def recomputed_heads(store: FakeStore) -> dict[bytes, IndexHeadRow]:
    """The head of every chain, recomputed from the entries' own links alone."""
    chains = Chains()
    for entry, leaf in entries(store):
        chains.advance(entry.index, leaf, entry.release, entry.keys, "", entry.artifacts)
    return {row.key_hash: row for row in chains.index_rows()}


def test_an_artifacts_entries_form_one_chain_across_batches_and_within_a_batch() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.01)
        for n in range(3):  # one batch each
            await sequencer.append(request(sequencer, about(ALICE, sha(7), note=f"alone {n}")))
        together = [about(BOB, sha(7), note=f"together {n}") for n in range(5)]
        await asyncio.gather(*(sequencer.append(request(sequencer, e)) for e in together))
        await sequencer.append(
            request(sequencer, *[about(ALICE, sha(7), note=f"one request {n}") for n in range(2)])
        )
        members = chain_of(store, digest(7))
        assert len(members) == 10
        assert_whole_chain(members)
        stored = store.data.index_heads[artifact_key(digest(7))]
        index, _, leaf = members[-1]
        assert (stored.kind, stored.digest, stored.head) == ("artifact", digest(7), Head(10, index, leaf))
        assert stored.bucket == int.from_bytes(artifact_key(digest(7))[:2], "big")
        check_log(store)
        await sequencer.stop()

    asyncio.run(scenario())


def test_two_subjects_join_two_chains_and_a_git_commit_forms_none() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store)
        await sequencer.append(request(sequencer, about(ALICE, sha(1), note="first")))
        both = about(ALICE, [*sha(2, 1), {"gitCommit": "ab" * 20}, {"sha256": f"{1:064X}"}], note="two")
        appended = await sequencer.append(request(sequencer, both))
        entry = parse_entry(store.data.entries[appended.first_index].data)
        assert [link.digest for link in entry.artifacts or ()] == [digest(1), digest(2)]  # sorted, one each
        first = chain_of(store, digest(1))
        assert [(i, link.seq) for i, link, _ in first] == [(first[0][0], 0), (appended.first_index, 1)]
        assert_whole_chain(first)
        assert [link.seq for _, link, _ in chain_of(store, digest(2))] == [0]
        git_only = await sequencer.append(request(sequencer, about(ALICE, [{"gitCommit": "cd" * 20}])))
        data = store.data.entries[git_only.first_index].data
        assert parse_entry(data).artifacts is None
        assert b'"artifacts"' not in data  # the entry format is unchanged for it
        assert not any(
            row.digest and row.digest.startswith("gitCommit") for row in store.data.index_heads.values()
        )
        await sequencer.stop()

    asyncio.run(scenario())


def test_a_statement_may_name_at_most_64_sha256_subjects_from_now_on() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store)
        too_many = about(ALICE, sha(*range(MAX_CHAINED_SUBJECTS + 1)))
        with pytest.raises(EncodingError, match=r"65 distinct sha256 subject digests; at most 64"):
            request(sequencer, too_many)
        # Other algorithms do not count, and a digest named twice counts once.
        most = about(ALICE, [*sha(*range(MAX_CHAINED_SUBJECTS)), *sha(0), {"sha512": "ab" * 64}])
        appended = await sequencer.append(request(sequencer, most))
        entry = parse_entry(store.data.entries[appended.first_index].data)
        assert len(entry.artifacts or ()) == MAX_CHAINED_SUBJECTS
        # A rule for new appends: verifying an entry at its own index does not apply it.
        assert admit(too_many, sequencer.registry, appended.first_index + 1).subjects
        await sequencer.stop()

    asyncio.run(scenario())


def test_the_stored_heads_are_the_heads_recomputed_from_the_entries() -> None:
    async def scenario() -> None:
        store = FakeStore()
        sequencer = await started(store, max_delay=0.005)
        rng = random.Random(13)  # noqa: S311 - a repeatable workload, not a secret
        envelopes = []
        for n in range(120):
            numbers = rng.sample(range(12), rng.choice([1, 1, 2, 3]))
            version = rng.choice(["", "1.0", "2.0", "3.0"])
            envelopes.append(about(rng.choice([ALICE, BOB]), sha(*numbers), note=str(n), release=version))
        for start in range(0, len(envelopes), 30):
            part = envelopes[start : start + 30]
            await asyncio.gather(*(sequencer.append(request(sequencer, e)) for e in part))
        expected = recomputed_heads(store)
        assert store.data.index_heads == expected
        kinds = sorted(row.kind for row in expected.values())
        assert (kinds.count("release"), kinds.count("keys"), kinds.count("artifact")) == (3, 1, 12)
        assert expected[release_key("prod", "2.0")].product == "prod"
        keys = expected[KEY_EVENTS_KEY].head
        assert (keys.count, keys.last_index) == (3, 2)  # the ledger key, ALICE and BOB
        for n in range(12):
            assert_whole_chain(chain_of(store, digest(n)))
        await sequencer.stop()

    asyncio.run(scenario())


# --- the entry format ------------------------------------------------------------------------


def _reencoded(entry: Entry, artifacts: list[ArtifactLink] | None) -> bytes:
    return encode_entry(
        entry.index, bytes.fromhex(entry.prev), entry.time, entry.envelope,
        release=entry.release, keys=entry.keys, artifacts=artifacts,
    )  # fmt: skip


def _logged(*envelopes: Envelope) -> list[bytes]:
    async def scenario() -> list[bytes]:
        store = FakeStore()
        sequencer = await started(store)
        for envelope in envelopes:
            await sequencer.append(request(sequencer, envelope))
        await sequencer.stop()
        return store.entry_bytes()

    return asyncio.run(scenario())


def test_parse_entry_refuses_artifact_links_out_of_order_repeated_empty_or_malformed() -> None:
    log = _logged(about(ALICE, sha(1, 2)))
    entry = parse_entry(log[-1])
    one, two = entry.artifacts or []
    assert parse_entry(_reencoded(entry, [one, two])) == entry
    link = ChainLink(1, "00" * 32)
    bad = {
        "not sorted": [two, one],
        "repeated": [one, one],
        "empty": [],
        "not sha256": [ArtifactLink("sha512:" + "ab" * 64, 0)],
        "seq without prev": [ArtifactLink(digest(1), 1)],
        "prev at seq 0": [ArtifactLink(digest(1), 0, link)],
        "prev not earlier": [ArtifactLink(digest(1), 1, ChainLink(entry.index, "00" * 32))],
        "too many": [ArtifactLink(digest(n), 0) for n in range(MAX_CHAINED_SUBJECTS + 1)],
    }
    for links in bad.values():
        forged = _reencoded(entry, links)
        with pytest.raises(EncodingError):
            parse_entry(forged)


# --- verifiers ---------------------------------------------------------------------------------


def _replay(log: list[bytes], chained_from: int | None = 0) -> None:
    replayer = LogReplayer(chained_from=chained_from)
    for data in log:
        replayer.check(data)


def _with_artifacts(log: list[bytes], index: int, artifacts: list[ArtifactLink] | None) -> list[bytes]:
    """The log up to entry `index`, whose artifact links are replaced (a forger re-encodes it)."""
    return [*log[:index], _reencoded(parse_entry(log[index]), artifacts)]


def test_the_replayer_checks_artifact_links_from_the_first_chained_index_on() -> None:
    log = _logged(
        about(ALICE, sha(5), note="a"), about(ALICE, sha(6), note="b"), about(BOB, sha(5, 6), note="c")
    )
    last = len(log) - 1
    _replay(log)
    _replay(log, UNSTATED)
    links = parse_entry(log[last]).artifacts or []
    five, six = links
    assert (five.seq, six.seq) == (1, 1)
    forged = {
        "wrong seq": [msgspec.structs.replace(five, seq=2), six],
        "wrong prev": [
            five,
            msgspec.structs.replace(six, prev=ChainLink(last - 2, (six.prev or five.prev).leaf_hash)),
        ],
        "one missing": [six],
        "an extra digest": [*links, ArtifactLink(digest(7), 0)],
        "all missing": None,
    }
    for artifacts in forged.values():
        tampered = _with_artifacts(log, last, artifacts)
        with pytest.raises(ChainError, match="artifact back-links"):
            _replay(tampered)
    # Below the first chained index an entry carries none: with links there, it is refused.
    with pytest.raises(ChainError, match="artifact back-links"):
        _replay(log, last)


def test_without_a_stated_first_chained_index_links_begin_at_the_first_entry_carrying_them() -> None:
    log = _logged(
        about(ALICE, sha(5), note="a"), about(ALICE, sha(5), note="b"), about(ALICE, sha(5), note="c")
    )
    a, b, c = len(log) - 3, len(log) - 2, len(log) - 1
    # An old log: no entry carries links (re-encoding moves the `prev` of the next ones: rebuild them).
    old = list(log[:a])
    for index in (a, b, c):
        entry = parse_entry(log[index])
        prev = leaf_hash(old[-1])
        old.append(
            encode_entry(index, prev, entry.time, entry.envelope, release=entry.release, keys=entry.keys)
        )
    _replay(old, UNSTATED)
    _replay(old, len(old))  # a ledger upgraded after these: they are below its first chained index
    for chained_from in (0, c):  # from there on, every one must carry its links
        with pytest.raises(ChainError, match="artifact back-links"):
            _replay(old, chained_from)
    # Links that begin at b (seq 0 there) and then stop at c: refused.
    entry_b = parse_entry(old[b])
    chained_b = encode_entry(
        b, leaf_hash(old[a]), entry_b.time, entry_b.envelope, artifacts=[ArtifactLink(digest(5), 0)]
    )
    entry_c = parse_entry(old[c])
    bare_c = encode_entry(c, leaf_hash(chained_b), entry_c.time, entry_c.envelope)
    _replay([*old[:b], chained_b], UNSTATED)
    with pytest.raises(ChainError, match="artifact back-links"):
        _replay([*old[:b], chained_b, bare_c], UNSTATED)
