"""An artifact's history proven complete from the completeness index (ledger/verify/artifact_chain.py).

A small synthetic log: entries built with their artifact back-links as the sequencer writes
them, the index over their chains, and a checkpoint the ledger key signs. The verifier must
list every entry about a digest in log order from an honest source, prove an unknown digest
absent, and fail, naming the entry, for every way a server could withhold, alter, substitute
or reorder a member, or show a proof against another root.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import msgspec
import pytest

from ledger.core.checkpoint import Checkpoint, sign_checkpoint
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.entry import GENESIS_PREV, ArtifactLink, ChainLink, encode_entry
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey
from ledger.core.sparse_merkle import Head, artifact_key, encode_proof, index_root, prove
from ledger.errors import (
    EncodingError,
    NotFoundError,
    RootMismatchError,
    SignatureError,
    TooLargeError,
    VerificationError,
)
from ledger.rules.chains import index_extension
from ledger.verify.artifact_chain import (
    ArtifactHistory,
    IndexCheckpoint,
    open_index_checkpoint,
    verify_artifact_history,
)

A, B, C = (f"sha256:{n:064x}" for n in (0xA, 0xB, 0xC))
NOBODY = f"sha256:{0xD:064x}"
# The subjects of each entry in log order: A's chain is entries 1, 3, 5 and 6.
SUBJECTS: list[tuple[str, ...]] = [(), (A,), (B,), (A, B), (C,), (A,), (B, A)]
ORIGIN = "ledger.test/unit"
SIGNER = SignerKey.generate(ORIGIN)
TIME = "2026-01-01T00:00:00.000Z"


def _envelope(subjects: tuple[str, ...], n: int) -> object:
    body = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"s{i}", "digest": {"sha256": d[7:]}} for i, d in enumerate(subjects)]
        or [{"name": "commit", "digest": {"gitCommit": "ab" * 20}}],
        "predicateType": "https://evledger.test/generic/v1",
        "predicate": {"n": n},
    }
    return sign_envelope(INTOTO_PAYLOAD_TYPE, msgspec.json.encode(body), [SIGNER])


@dataclass
class Log:
    entries: list[bytes]
    heads: dict[str, Head]
    chained_from: int = 0

    def checkpoint(self, size: int | None = None, signer: SignerKey = SIGNER) -> str:
        size = len(self.entries) if size is None else size
        root = index_root((artifact_key(d), h) for d, h in self.heads.items())
        lines = (index_extension(root, self.chained_from),)
        return sign_checkpoint(Checkpoint(ORIGIN, size, bytes(32), lines), signer)

    def proof(self, digest: str) -> bytes:
        return encode_proof(
            prove([(artifact_key(d), h) for d, h in self.heads.items()], artifact_key(digest))
        )

    def at(self) -> IndexCheckpoint:
        return open_index_checkpoint(self.checkpoint(), SIGNER.verifier(), len(self.entries))

    def source(self) -> Callable[[int], bytes]:
        def entry_at(index: int) -> bytes:
            if not 0 <= index < len(self.entries):
                raise NotFoundError(f"no entry {index}")
            return self.entries[index]

        return entry_at


def build_log(subjects: list[tuple[str, ...]] = SUBJECTS) -> Log:
    entries: list[bytes] = []
    heads: dict[str, Head] = {}
    prev = GENESIS_PREV
    for index, names in enumerate(subjects):
        links = []
        for digest in sorted(names):
            head = heads.get(digest)
            back = None if head is None else ChainLink(head.last_index, head.last_leaf.hex())
            links.append(ArtifactLink(digest, 0 if head is None else head.count, back))
        data = encode_entry(index, prev, TIME, _envelope(names, index), artifacts=links or None)  # type: ignore[arg-type]
        prev = leaf_hash(data)
        for digest in names:
            count = heads[digest].count + 1 if digest in heads else 1
            heads[digest] = Head(count, index, prev)
        entries.append(data)
    return Log(entries, heads)


def history(log: Log, digest: str, source: Callable[[int], bytes] | None = None) -> ArtifactHistory:
    return verify_artifact_history(log.at(), digest, log.proof(digest), source or log.source())


def test_an_honest_source_gives_every_entry_about_the_artifact_in_log_order() -> None:
    log = build_log()
    found = history(log, A)
    assert [m.index for m in found.members] == [1, 3, 5, 6]
    assert [m.link.seq for m in found.members] == [0, 1, 2, 3]
    assert [m.data for m in found.members] == [log.entries[i] for i in (1, 3, 5, 6)]
    assert found.count == 4
    assert found.statement() == (
        f"complete at checkpoint 7: 4 of 4 entries about {A} "
        "(the completeness index names entry 6 as the newest)"
    )
    assert [m.index for m in history(log, B).members] == [2, 3, 6]
    assert [m.index for m in history(log, C).members] == [4]


def test_an_artifact_nobody_recorded_is_proven_absent() -> None:
    log = build_log()
    found = history(log, NOBODY)
    assert found.head is None
    assert found.members == ()
    assert found.statement() == f"no entry names {NOBODY} at checkpoint 7 (proven absent)"


def test_entries_before_the_first_chained_index_are_said_not_to_be_covered() -> None:
    log = build_log()
    log.chained_from = 1
    assert history(log, A).statement().endswith("; entries before index 1 are not covered (not chained)")


def _serving(log: Log, changes: dict[int, bytes | None]) -> Callable[[int], bytes]:
    """A source that serves `changes[index]` instead of the entry (None: withholds it)."""

    def entry_at(index: int) -> bytes:
        if index in changes:
            data = changes[index]
            if data is None:
                raise NotFoundError(f"the server has no entry {index}")
            return data
        return log.entries[index]

    return entry_at


def _fails(log: Log, source: Callable[[int], bytes], *needles: str) -> VerificationError:
    with pytest.raises(VerificationError) as caught:
        history(log, A, source)
    for needle in needles:
        assert needle in str(caught.value)
    return caught.value


def test_a_withheld_middle_entry_fails_naming_it() -> None:
    log = build_log()
    _fails(
        log, _serving(log, {3: None}), "entry 3 (member 1 of the chain", "withheld", "back-link of entry 5"
    )


def test_another_entry_served_in_place_of_a_middle_one_fails_naming_it() -> None:
    log = build_log()
    error = _fails(log, _serving(log, {5: log.entries[4]}), "entry 5 (member 2", "another leaf hash")
    assert error.expected == leaf_hash(log.entries[5]).hex()
    assert error.calculated == leaf_hash(log.entries[4]).hex()


def test_an_entry_with_one_byte_changed_fails() -> None:
    log = build_log()
    tampered = log.entries[3].replace(b'"time":"2026', b'"time":"2027')
    assert tampered != log.entries[3]
    _fails(log, _serving(log, {3: tampered}), "entry 3", "another leaf hash")


def test_the_head_entry_swapped_for_an_older_member_fails() -> None:
    log = build_log()
    _fails(log, _serving(log, {6: log.entries[5]}), "entry 6 (member 3", "the completeness index's head")


def test_a_head_that_cuts_off_the_newest_members_is_another_root() -> None:
    log = build_log()
    cut = replace(log, heads={**log.heads, A: Head(3, 5, leaf_hash(log.entries[5]))})
    at = log.at()  # the checkpoint commits to the whole chain
    with pytest.raises(RootMismatchError):
        verify_artifact_history(at, A, cut.proof(A), log.source())


def test_a_chain_shorter_than_its_count_fails_at_the_member_out_of_place() -> None:
    log = build_log()
    # an index whose head claims one more entry than the chain holds: seq no longer matches
    log.heads[A] = replace(log.heads[A], count=5)
    _fails(log, log.source(), "entry 6", "another place in the chain")


def test_a_proof_against_another_root_fails() -> None:
    log = build_log()
    older = build_log(SUBJECTS[:6])  # the same log one entry earlier: another index root
    at = open_index_checkpoint(older.checkpoint(), SIGNER.verifier(), 6)
    with pytest.raises(RootMismatchError):
        verify_artifact_history(at, A, log.proof(A), log.source())


def test_a_checkpoint_signed_by_another_key_is_refused() -> None:
    log = build_log()
    forged = log.checkpoint(signer=SignerKey.generate(ORIGIN))
    with pytest.raises(SignatureError):
        open_index_checkpoint(forged, SIGNER.verifier())


def test_a_response_size_other_than_the_signed_one_is_refused() -> None:
    log = build_log()
    with pytest.raises(VerificationError, match="tree size"):
        open_index_checkpoint(log.checkpoint(), SIGNER.verifier(), 8)


def test_a_checkpoint_without_an_index_line_proves_nothing() -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 3, bytes(32), ("evledger-keys 0",)), SIGNER)
    with pytest.raises(VerificationError, match="no evledger-index line"):
        open_index_checkpoint(note, SIGNER.verifier())


def test_a_head_beyond_the_checkpoint_is_refused() -> None:
    log = build_log()
    at = open_index_checkpoint(log.checkpoint(size=6), SIGNER.verifier())
    with pytest.raises(VerificationError, match="names entry 6 as the newest"):
        verify_artifact_history(at, A, log.proof(A), log.source())


def test_a_malformed_proof_is_an_encoding_error() -> None:
    log = build_log()
    with pytest.raises(EncodingError):
        verify_artifact_history(log.at(), A, log.proof(A) + b"\x00", log.source())


def test_a_chain_over_the_limit_is_refused_before_fetching() -> None:
    log = build_log()

    def nothing(index: int) -> bytes:
        raise AssertionError(f"fetched entry {index}")

    with pytest.raises(TooLargeError, match="at most 3"):
        verify_artifact_history(log.at(), A, log.proof(A), nothing, limit=3)
