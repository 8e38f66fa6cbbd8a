"""The completeness index recomputed beside a replay and compared with every checkpoint (issue #13).

`ledger.verify.index_check.IndexCheck` follows a `LogReplayer` over a log of 1,000+ random
appends (releases, artifacts, multi-subject statements, key events) and compares every
checkpoint's `evledger-index` root; `audit_store` does the same over the stored log. Forged
checkpoints, signed by the ledger key itself, carry a wrong root, a stale one, a wrong
first chained index or none at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from functools import cache

import pytest
from index_check_support import AuditableStore, extensions_at, random_ledger, re_signed
from sequencer_support import LEDGER_KEY

from ledger.core.encoding import b64encode
from ledger.core.entry import parse_entry
from ledger.core.sparse_merkle import (
    EMPTY,
    KEY_EVENTS_KEY,
    Head,
    artifact_key,
    encode_proof,
    index_root,
    prove,
    release_key,
)
from ledger.errors import ChainError, UnavailableError, VerificationError
from ledger.rules.chains import INDEX_EXTENSION, index_extension, index_line_of
from ledger.rules.replay import LogReplayer
from ledger.verify.audit import AuditReport, audit_store, stored_index_at
from ledger.verify.index_check import IndexCheck, ServedProof, stated_first_chained_index

ENTRIES = 1_050


@cache
def _pristine() -> AuditableStore:
    return random_ledger(ENTRIES)


@pytest.fixture
def store() -> AuditableStore:
    """A copy of the random ledger (the tests forge its checkpoints)."""
    pristine = _pristine()
    copy = AuditableStore()
    copy.data = pristine.data.copy()
    return copy


def audit(store: AuditableStore) -> AuditReport:
    return asyncio.run(audit_store(store, LEDGER_KEY.verifier(), progress=False))


def replay_checking(store: AuditableStore, check: IndexCheck | None = None, skip: int = -1) -> IndexCheck:
    """Replay the stored log, comparing the index at every checkpoint; entry `skip` is not noted."""
    replayer = LogReplayer(chained_from=0)
    check = check or IndexCheck(replayer.chains)
    sizes = set(store.data.checkpoints)
    for index in range(store.size):
        replayed = replayer.check(store.data.entries[index].data)
        if index != skip:
            check.note(replayed.entry)
        if index + 1 in sizes:
            if not check.compare(index + 1, extensions_at(store, index + 1)):
                assert (
                    index == 0
                )  # entry 0's checkpoint (as `sequencer_support.genesis` writes it) has no line
                continue
            # The incremental tree agrees with the one-pass recomputation of the whole map.
            assert check.root() == index_root(replayer.chains.index().items())
    return check


def two_checkpoints_apart(store: AuditableStore) -> tuple[int, int]:
    """Two consecutive checkpoint sizes in the middle of the log whose index roots differ."""
    sizes = sorted(store.data.checkpoints)
    for earlier, later in zip(sizes[len(sizes) // 2 :], sizes[len(sizes) // 2 + 1 :], strict=False):
        if index_line_of(extensions_at(store, earlier)) != index_line_of(extensions_at(store, later)):
            return earlier, later
    raise AssertionError("no two checkpoints with different index roots")


def test_the_random_ledger_is_what_the_tests_need(store: AuditableStore):
    assert store.size >= ENTRIES
    replayer = LogReplayer(chained_from=0)
    for index in range(store.size):
        replayer.check(store.data.entries[index].data)
    chains = replayer.chains
    assert len(chains.releases) == 6
    assert len(chains.artifacts) == 150
    assert chains.keys is not None
    assert chains.keys.seq >= 6  # the ledger key, ALICE, BOB and key events appended at random
    assert len(store.data.checkpoints) > 50


def test_every_checkpoint_root_of_a_random_ledger_is_recomputed_and_matches(store: AuditableStore):
    check = replay_checking(store)
    assert check.compared == len(store.data.checkpoints) - 1  # all but entry 0's
    assert check.last_match == store.size


def chains_joined(store: AuditableStore, index: int) -> set[object]:
    entry = parse_entry(store.data.entries[index].data)
    joined: set[object] = {link.digest for link in entry.artifacts or ()}
    if entry.release is not None:
        joined.add((entry.release.product, entry.release.version))
    if entry.keys is not None:
        joined.add("keys")
    return joined


def lone_entry_of_its_batch(store: AuditableStore, after: int) -> tuple[int, int]:
    """An entry past `after` whose chains no other entry of its batch joins, and its batch's checkpoint."""
    sizes = sorted(store.data.checkpoints)
    for first, end in itertools.pairwise(sizes):
        if first <= after:
            continue
        for index in range(first, end):
            others = set().union(*(chains_joined(store, i) for i in range(first, end) if i != index))
            if not chains_joined(store, index) & others:
                return index, end
    raise AssertionError("no entry whose chains are its own in its batch")


def test_a_replay_that_misses_one_entry_is_caught_at_the_next_checkpoint(store: AuditableStore):
    # The mutation check: an index recomputed without one entry's chains must fail the comparison.
    skipped, checkpoint = lone_entry_of_its_batch(store, 600)
    with pytest.raises(VerificationError, match="is not the one its entries give") as caught:
        replay_checking(store, skip=skipped)
    assert f"the checkpoint at size {checkpoint} " in str(caught.value)


def test_a_wrong_root_names_the_checkpoint_and_the_chains_changed_since_the_last_match(
    store: AuditableStore,
):
    earlier, later = two_checkpoints_apart(store)
    line = index_line_of(extensions_at(store, later))
    assert line is not None
    flipped = bytes([line[0][0] ^ 1]) + line[0][1:]
    extensions = tuple(
        index_extension(flipped, line[1]) if e.startswith(INDEX_EXTENSION + " ") else e
        for e in extensions_at(store, later)
    )
    re_signed(store, later, extensions)
    with pytest.raises(VerificationError) as caught:
        replay_checking(store)
    message = str(caught.value)
    assert f"the index root of the checkpoint at size {later} is not the one its entries give" in message
    assert f"since the last checkpoint that matched (size {earlier})" in message
    assert "release " in message or "artifact sha256:" in message or "the key events" in message
    assert (caught.value.expected, caught.value.calculated) == (flipped.hex(), line[0].hex())


def test_audit_of_a_random_ledger_passes_and_counts_the_index_roots(store: AuditableStore):
    report = audit(store)
    assert report.tree_size == store.size
    assert report.checkpoints == len(store.data.checkpoints)
    assert report.index_roots == report.checkpoints - 1  # all but entry 0's, which has no line


def test_audit_catches_a_stale_index_root(store: AuditableStore):
    earlier, later = two_checkpoints_apart(store)
    stale = extensions_at(store, earlier)[1]  # the previous checkpoint's line, served again
    re_signed(store, later, (extensions_at(store, later)[0], stale))
    with pytest.raises(VerificationError, match=f"checkpoint at size {later} is not the one") as caught:
        audit(store)
    assert f"(size {earlier})" in str(caught.value)


def test_audit_catches_a_wrong_first_chained_index(store: AuditableStore):
    _, later = two_checkpoints_apart(store)
    line = index_line_of(extensions_at(store, later))
    assert line is not None
    re_signed(store, later, (extensions_at(store, later)[0], index_extension(line[0], 7)))
    with pytest.raises(VerificationError, match=f"checkpoint at size {later} states another first chained"):
        audit(store)


def test_audit_of_a_head_checkpoint_stating_another_first_chained_index_names_it(store: AuditableStore):
    # The replay takes the first chained index from the head checkpoint; the first checkpoint
    # compared (entry 0's has no line) states the true one.
    line = index_line_of(extensions_at(store, store.size))
    assert line is not None
    re_signed(store, store.size, (extensions_at(store, store.size)[0], index_extension(line[0], 500)))
    first = sorted(store.data.checkpoints)[1]
    with pytest.raises(VerificationError) as caught:
        audit(store)
    message = str(caught.value)
    assert f"the checkpoint at size {first} states another first chained index" in message
    assert f"(the checkpoint at size {store.size} states it)" in message
    assert (caught.value.expected, caught.value.calculated) == ("0", "500")


def test_a_chain_failure_under_a_stated_first_chained_index_says_where_it_came_from(store: AuditableStore):
    # Without the earlier checkpoints' lines, the replay itself fails: entries below 500 carry links.
    for size in sorted(store.data.checkpoints)[1:]:
        line = index_line_of(extensions_at(store, size))
        assert line is not None
        re_signed(store, size, (extensions_at(store, size)[0], index_extension(line[0], 500)))
    with pytest.raises(ChainError) as caught:
        audit(store)
    assert "list of artifact back-links is wrong" in str(caught.value)
    notes = " ".join(caught.value.__notes__)
    assert f"first chained index 500 on, as the checkpoint at size {store.size} states" in notes


def test_audit_accepts_checkpoints_without_the_line_and_compares_the_others(store: AuditableStore):
    sizes = sorted(store.data.checkpoints)[:-1]  # signed "before an upgrade"; the head keeps its line
    for size in sizes[2::2]:
        re_signed(store, size, extensions_at(store, size)[:1])
    report = audit(store)
    assert report.checkpoints == len(store.data.checkpoints)
    assert report.index_roots == report.checkpoints - 1 - len(sizes[2::2])


def test_a_malformed_line_is_refused():
    with pytest.raises(VerificationError, match=INDEX_EXTENSION):
        stated_first_chained_index(("evledger-keys 1", f"{INDEX_EXTENSION} {b64encode(EMPTY)} 01"))
    check = IndexCheck(LogReplayer(chained_from=0).chains)
    with pytest.raises(VerificationError, match="checkpoint at size 3"):
        check.compare(3, (f"{INDEX_EXTENSION} nope 0",))
    assert not check.compare(3, ("evledger-keys 1",))
    assert check.compare(0, (index_extension(EMPTY, 0),))  # the empty map
    assert check.compared == 1


def test_audit_of_a_stale_index_root_says_the_stored_heads_agree_with_the_entries(store: AuditableStore):
    earlier, later = two_checkpoints_apart(store)
    stale = extensions_at(store, earlier)[1]
    re_signed(store, later, (extensions_at(store, later)[0], stale))
    with pytest.raises(VerificationError) as caught:
        audit(store)
    notes = " ".join(caught.value.__notes__)
    assert f"stored chain heads at size {later} agree with the entries on every key" in notes
    assert "a stale or forged root" in notes


def test_audit_names_the_first_key_whose_stored_head_disagrees_with_the_entries(store: AuditableStore):
    # A sequencer that planned from a tampered stored head: the head, and the root it signed, are wrong.
    later = store.size
    key, row = sorted(store.data.index_heads.items())[len(store.data.index_heads) // 2]
    tampered = Head(row.head.count + 1, row.head.last_index, row.head.last_leaf)
    store.data.index_heads[key] = dataclasses.replace(row, head=tampered)
    held = asyncio.run(stored_index_at(store, later))
    line = index_line_of(extensions_at(store, later))
    assert line is not None
    assert held[key] == tampered
    re_signed(
        store, later, (extensions_at(store, later)[0], index_extension(index_root(held.items()), line[1]))
    )
    with pytest.raises(VerificationError, match=f"checkpoint at size {later} is not the one") as caught:
        audit(store)
    notes = " ".join(caught.value.__notes__)
    expected = f"the first key that disagrees, in key order, is {key.hex()} ("
    assert expected in notes, notes
    assert f"the database holds {row.head.count + 1} entries" in notes
    assert f"the entries give {row.head.count} entries" in notes


# --- the monitor's question to the server: which changed chain does it prove otherwise ---------------


def _served_map(store: AuditableStore, size: int, moved: bytes | None) -> dict[bytes, Head]:
    """The index the entries give at `size`, with the head of `moved` (if any) counting one entry more."""
    replayer = LogReplayer(chained_from=0)
    for index in range(size):
        replayer.check(store.data.entries[index].data)
    heads = replayer.chains.index()
    if moved is not None:
        head = heads[moved]
        heads[moved] = Head(head.count + 1, head.last_index, head.last_leaf)
    return heads


def _failed_check(store: AuditableStore, served: dict[bytes, Head]) -> tuple[IndexCheck, int]:
    """The IndexCheck of a replay whose checkpoint at `later` commits to the root of `served`."""
    _, later = two_checkpoints_apart(store)
    line = index_line_of(extensions_at(store, later))
    assert line is not None
    re_signed(
        store, later, (extensions_at(store, later)[0], index_extension(index_root(served.items()), line[1]))
    )
    replayer = LogReplayer(chained_from=0)
    check = IndexCheck(replayer.chains)
    with pytest.raises(VerificationError, match=f"checkpoint at size {later} is not the one"):  # noqa: PT012
        for index in range(store.size):
            check.note(replayer.check(store.data.entries[index].data).entry)
            if index + 1 in store.data.checkpoints:
                check.compare(index + 1, extensions_at(store, index + 1))
    return check, later


def _prover(heads: dict[bytes, Head], size: int, asked: list[dict[str, str]]) -> ServedProof:
    """A server holding `heads` at `size`: proves any chain named by release or artifact."""

    def served(query: dict[str, str]) -> tuple[int, bytes]:
        asked.append(query)
        key = (
            artifact_key(query["artifact"])
            if "artifact" in query
            else release_key(query["product"], query["version"])
        )
        return size, encode_proof(prove(heads.items(), key))

    return served


def _changed(store: AuditableStore) -> tuple[int, set[bytes]]:
    """The later of two checkpoints apart, and the keys whose heads moved between them."""
    earlier, later = two_checkpoints_apart(store)
    before, after = _served_map(store, earlier, None), _served_map(store, later, None)
    return later, {key for key, head in after.items() if before.get(key) != head}


def test_a_bad_index_names_the_first_changed_chain_the_server_proves_otherwise(store: AuditableStore):
    later, changed = _changed(store)
    artifacts = sorted(key for key in changed if key in {artifact_key(d) for d in _digests(store, later)})
    key = artifacts[min(2, len(artifacts) - 1)]  # not the first: the ones before it must prove fine
    served = _served_map(store, later, key)
    check, _ = _failed_check(store, served)
    asked: list[dict[str, str]] = []
    named = check.served_disagreement(_prover(served, later, asked))
    name = next(name for k, name, _ in check.suspects if k == key)
    count = served[key].count - 1
    assert f"whose head the server proves otherwise is {name}: the server proves {count + 1} entries" in named
    assert f"the entries give {count} entries" in named
    assert asked[-1] == {"artifact": name.removeprefix("artifact ")}


def _digests(store: AuditableStore, size: int) -> set[str]:
    """Every chained artifact digest of the first `size` entries."""
    return {
        link.digest for i in range(size) for link in parse_entry(store.data.entries[i].data).artifacts or ()
    }


def test_a_bad_index_says_when_every_changed_chain_proves_its_recomputed_head(store: AuditableStore):
    later, changed = _changed(store)
    still = next(key for key in sorted(_served_map(store, later, None)) if key not in changed)
    served = _served_map(store, later, still)  # a chain the last batches did not move
    check, _ = _failed_check(store, served)
    named = check.served_disagreement(_prover(served, later, []))
    assert "the disagreement lies in a chain the entries did not move" in named


def test_a_bad_index_names_the_first_chain_the_server_cannot_prove(store: AuditableStore):
    later, _ = _changed(store)
    check, _ = _failed_check(store, _served_map(store, later, KEY_EVENTS_KEY))

    def refusing(query: dict[str, str]) -> tuple[int, bytes]:
        del query
        raise UnavailableError("503: proofs are refused until an operator runs `evledger audit`")

    named = check.served_disagreement(refusing)
    assert named.startswith("the server could not prove the head of ")
    assert "proofs are refused" in named


def test_a_bad_index_refuses_proofs_at_another_size(store: AuditableStore):
    later, _ = _changed(store)
    heads = _served_map(store, later, KEY_EVENTS_KEY)
    check, _ = _failed_check(store, heads)
    named = check.served_disagreement(_prover(heads, later + 1, []))
    assert f"now proves at size {later + 1}, not {later}" in named
