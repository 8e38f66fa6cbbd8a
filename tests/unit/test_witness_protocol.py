"""C2SP tlog-witness `add-checkpoint` wire formats and decision (ledger/core/witness_protocol.py).

The request example is the one of c2sp.org/tlog-witness §add-checkpoint (C2SP/C2SP
tlog-witness.md at commit 055270b5928827a49ee84620903e141c2e97d79f). Trees and consistency
proofs come from `reference_tree.ReferenceTree`, written from RFC 9162's recursive definitions
without ledger.core, so a proof the witness accepts is one the RFC defines.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_tree import ReferenceTree

from ledger.core.checkpoint import Checkpoint, sign_checkpoint
from ledger.core.cosignature import cosign
from ledger.core.keys import ALG_COSIGNATURE_V1, SignerKey, VerifierKey
from ledger.core.note import sign_note
from ledger.core.witness_protocol import (
    MAX_BODY_BYTES,
    MAX_PROOF_LINES,
    SIZE_CONTENT_TYPE,
    AddCheckpoint,
    Authenticated,
    Refusal,
    decide,
    format_add_checkpoint,
    format_size_body,
    parse_add_checkpoint,
    parse_cosignature_response,
    parse_size_body,
)
from ledger.errors import EncodingError, SignatureError, TooLargeError

ORIGIN = "log.example/test"
LOG = SignerKey.from_seed(ORIGIN, bytes(range(32)))
OTHER_LOG = SignerKey.from_seed(ORIGIN, bytes(range(1, 33)))  # same name, another key
WITNESS = SignerKey.from_seed("witness.example/w1", bytes(range(2, 34)), ALG_COSIGNATURE_V1)
LOGS: dict[str, tuple[VerifierKey, ...]] = {ORIGIN: (LOG.verifier(),)}

SPEC_EXAMPLE = (
    "old 20852014\n"
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
    "\n"
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "— example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "— example.com/behind-the-sofa "
    "opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"
)


def leaves(n: int, salt: bytes = b"") -> list[bytes]:
    """`n` distinct leaf hashes; another `salt` gives another log's leaves."""
    return [hashlib.sha256(b"\x00" + salt + i.to_bytes(8, "big")).digest() for i in range(n)]


TREE = ReferenceTree(leaves(64))
FORK = ReferenceTree(leaves(64, b"fork"))


def note_for(size: int, tree: ReferenceTree = TREE, signer: SignerKey = LOG) -> str:
    """The signed checkpoint of the first `size` leaves of `tree`."""
    return sign_checkpoint(Checkpoint(ORIGIN, size, tree.root(size)), signer)


def checkpoint_of(size: int, tree: ReferenceTree = TREE) -> Checkpoint:
    """The (unsigned) checkpoint of the first `size` leaves of `tree`."""
    return Checkpoint(ORIGIN, size, tree.root(size))


def request(
    old: int, size: int, tree: ReferenceTree = TREE, proof: list[bytes] | None = None
) -> AddCheckpoint:
    """An add-checkpoint from `old` to `size`, with the RFC's proof unless `proof` is given."""
    if proof is None:
        proof = TREE.consistency_proof(old, size) if 0 < old < size else []
    return parse_add_checkpoint(format_add_checkpoint(old, proof, note_for(size, tree)))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- wire formats ---------------------------------------------------------------------------


def test_spec_example_request_parses() -> None:
    parsed = parse_add_checkpoint(SPEC_EXAMPLE.encode())
    assert parsed.old_size == 20852014
    assert [b64(h) for h in parsed.proof] == SPEC_EXAMPLE.split("\n")[1:5]
    assert parsed.origin == "example.com/behind-the-sofa"
    assert parsed.checkpoint == SPEC_EXAMPLE.split("\n\n", 1)[1]
    # and it is written back byte for byte
    assert format_add_checkpoint(parsed.old_size, parsed.proof, parsed.checkpoint) == SPEC_EXAMPLE.encode()


@pytest.mark.parametrize(("old", "size"), [(0, 0), (0, 1), (0, 17), (1, 2), (3, 7), (8, 8), (13, 64)])
def test_request_round_trip(old: int, size: int) -> None:
    proof = TREE.consistency_proof(old, size) if 0 < old < size else []
    note = note_for(size)
    body = format_add_checkpoint(old, proof, note)
    assert body.startswith(f"old {old}\n".encode())
    assert parse_add_checkpoint(body) == AddCheckpoint(old, tuple(proof), note)


def test_size_body_round_trip_and_content_type() -> None:
    assert SIZE_CONTENT_TYPE == "text/x.tlog.size"
    for size in (0, 1, 20852163, 2**64 - 1):
        assert format_size_body(size) == f"{size}\n".encode()
        assert parse_size_body(format_size_body(size)) == size


@pytest.mark.parametrize(
    "body", [b"05\n", b"5", b"-1\n", b" 5\n", b"5 \n", b"+5\n", b"\n", b"5\n\n", b"18446744073709551616\n"]
)
def test_size_body_malformed(body: bytes) -> None:
    with pytest.raises(EncodingError):
        parse_size_body(body)


def _valid_parts() -> tuple[str, list[str], str]:
    proof = [b64(h) for h in TREE.consistency_proof(3, 7)]
    return "old 3", proof, note_for(7)


def _body(old_line: str, proof: list[str], note: str) -> bytes:
    return ("".join(line + "\n" for line in [old_line, *proof]) + "\n" + note).encode()


@pytest.mark.parametrize(
    "old_line",
    [
        "old 03",
        "old 00",
        "old +3",
        "old -3",
        "old  3",
        "old 3 ",
        "Old 3",
        "old",
        "old 0x3",
        "3",
        "old 3.0",
        "old 18446744073709551616",
        "old \uff13",  # a fullwidth digit three
    ],
)
def test_malformed_old_line_is_refused(old_line: str) -> None:
    _, proof, note = _valid_parts()
    with pytest.raises(EncodingError):
        parse_add_checkpoint(_body(old_line, proof, note))


def test_sixty_three_proof_lines_parse_and_sixty_four_are_refused() -> None:
    note = note_for(7)
    hashes = [b64(hashlib.sha256(bytes([i])).digest()) for i in range(MAX_PROOF_LINES + 1)]
    assert len(parse_add_checkpoint(_body("old 3", hashes[:MAX_PROOF_LINES], note)).proof) == 63
    with pytest.raises(EncodingError, match="over 63"):
        parse_add_checkpoint(_body("old 3", hashes, note))


@pytest.mark.parametrize(
    "bad_line",
    [
        "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw",  # no padding
        "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkax=",  # non-canonical trailing bits
        "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\r",  # CRLF
        "_6WVhPs2CwSsb5rYBH5cjHV_wSmA79abXAwhXw3Kj_0=",  # URL-safe alphabet
        " PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=",
        "not base64 at all",
        b64(bytes(31)),  # wrong hash lengths
        b64(bytes(33)),
        b64(bytes(64)),
        "",  # an empty proof line would end the proof; here it sits between two lines
    ],
)
def test_bad_proof_line_is_refused(bad_line: str) -> None:
    old_line, proof, note = _valid_parts()
    with pytest.raises(EncodingError):
        parse_add_checkpoint(_body(old_line, [proof[0], bad_line, *proof[1:]], note))


def test_structural_errors_are_refused() -> None:
    old_line, proof, note = _valid_parts()
    good = _body(old_line, proof, note)
    parse_add_checkpoint(good)
    missing_blank = ("".join(line + "\n" for line in [old_line, *proof]) + note).encode()
    no_signatures = _body(old_line, proof, Checkpoint(ORIGIN, 7, TREE.root(7)).text())
    not_a_checkpoint = _body(old_line, proof, sign_note("hello\n", [LOG]))
    proof_with_old_zero = _body("old 0", proof, note)
    crlf = good.replace(b"\n", b"\r\n")
    for body in (
        b"",
        b"old 3\n",
        b"\n\n",
        missing_blank,
        no_signatures,
        not_a_checkpoint,
        proof_with_old_zero,
        crlf,
        good[:-1],
        good + b"trailing",
        b"\xff" + good,
        good.replace(b"old", b"old\xc3"),
    ):
        with pytest.raises(EncodingError):
            parse_add_checkpoint(body)


def test_non_utf8_is_refused() -> None:
    with pytest.raises(EncodingError, match="UTF-8"):
        parse_add_checkpoint(b"old 0\n\n" + note_for(1).encode().replace(b"log.example", b"log.\xffexample"))


def test_oversized_body_is_refused_before_parsing() -> None:
    old_line, proof, note = _valid_parts()
    body = _body(old_line, proof, note)
    with pytest.raises(TooLargeError):
        parse_add_checkpoint(body + b"x" * (MAX_BODY_BYTES + 1 - len(body)))


def test_format_refuses_what_the_witness_would_refuse() -> None:
    with pytest.raises(EncodingError):
        format_add_checkpoint(0, [bytes(32)], note_for(1))
    with pytest.raises(EncodingError):
        format_add_checkpoint(1, [bytes(31)], note_for(2))
    with pytest.raises(EncodingError):
        format_add_checkpoint(1, [bytes(32)] * 64, note_for(2))


# --- the cosignature response ----------------------------------------------------------------


def test_cosignature_response_keeps_only_the_witness_lines() -> None:
    note = note_for(9)
    text = Checkpoint(ORIGIN, 9, TREE.root(9)).text()
    other = SignerKey.from_seed("witness.example/w2", bytes(range(3, 35)), ALG_COSIGNATURE_V1)
    mine = cosign(text, WITNESS, 1_700_000_000)
    body = (cosign(text, other, 1_700_000_001) + mine).encode()
    assert parse_cosignature_response(body, note, WITNESS.verifier()) == [mine]
    assert parse_cosignature_response(body, note, other.verifier()) != [mine]


def test_cosignature_response_refusals() -> None:
    note = note_for(9)
    text = Checkpoint(ORIGIN, 9, TREE.root(9)).text()
    witness = WITNESS.verifier()
    other = SignerKey.from_seed("witness.example/w2", bytes(range(3, 35)), ALG_COSIGNATURE_V1)
    # only another witness's line: none by this one
    with pytest.raises(SignatureError):
        parse_cosignature_response(cosign(text, other, 1).encode(), note, witness)
    # a line by this witness over another checkpoint must not verify, even next to a good one
    wrong = cosign(Checkpoint(ORIGIN, 8, TREE.root(8)).text(), WITNESS, 1)
    with pytest.raises(SignatureError):
        parse_cosignature_response((cosign(text, WITNESS, 1) + wrong).encode(), note, witness)
    # a line by this witness that is too short to be a cosignature
    short = f"— {WITNESS.name} {b64(WITNESS.key_id.to_bytes(4, 'big') + bytes(10))}\n"
    with pytest.raises(SignatureError):
        parse_cosignature_response(short.encode(), note, witness)
    for body in (b"", b"\n", b"hello\n", cosign(text, WITNESS, 1).encode()[:-1], b"\xff\n"):
        with pytest.raises(EncodingError):
            parse_cosignature_response(body, note, witness)


# --- the decision ----------------------------------------------------------------------------


def accepted(outcome: Authenticated | Refusal) -> Checkpoint:
    assert isinstance(outcome, Authenticated), outcome
    return outcome.checkpoint


def refused(outcome: Authenticated | Refusal, status: int) -> Refusal:
    assert isinstance(outcome, Refusal), outcome
    assert outcome.status == status, outcome
    return outcome


def test_first_submission_with_old_zero_is_cosigned() -> None:
    assert accepted(decide(request(0, 5), LOGS, None)) == checkpoint_of(5)
    assert accepted(decide(request(0, 0), LOGS, None)) == checkpoint_of(0)


def test_growth_with_a_valid_proof_is_cosigned() -> None:
    for old, size in [(1, 2), (5, 9), (8, 16), (16, 17), (31, 64)]:
        assert accepted(decide(request(old, size), LOGS, checkpoint_of(old))) == checkpoint_of(size)


def test_growth_from_an_empty_cosigned_tree_needs_no_proof() -> None:
    assert accepted(decide(request(0, 6), LOGS, checkpoint_of(0))) == checkpoint_of(6)


def test_old_size_other_than_the_stored_is_409_with_the_stored_size() -> None:
    behind = refused(decide(request(3, 9), LOGS, checkpoint_of(5)), 409)
    assert behind.latest_size == 5
    assert not behind.evidence
    ahead = refused(decide(request(7, 9), LOGS, checkpoint_of(5)), 409)
    assert ahead.latest_size == 5
    fresh_client = refused(decide(request(0, 9), LOGS, checkpoint_of(5)), 409)
    assert fresh_client.latest_size == 5
    never_cosigned = refused(decide(request(4, 9), LOGS, None), 409)
    assert never_cosigned.latest_size == 0


def test_same_size_same_root_is_cosigned_again() -> None:
    assert accepted(decide(request(5, 5), LOGS, checkpoint_of(5))) == checkpoint_of(5)


def test_same_size_other_root_is_a_fork_409_kept_as_evidence() -> None:
    fork = refused(decide(request(5, 5, FORK), LOGS, checkpoint_of(5)), 409)
    assert fork.latest_size == 5
    assert fork.evidence


def test_bad_proof_is_422_kept_as_evidence() -> None:
    good = TREE.consistency_proof(5, 9)
    tampered = [good[0][:-1] + bytes([good[0][-1] ^ 1]), *good[1:]]
    for proof in (tampered, good[:-1], [*good, good[0]], [], list(reversed(good))):
        refusal = refused(decide(request(5, 9, proof=proof), LOGS, checkpoint_of(5)), 422)
        assert refusal.evidence


def test_a_larger_tree_that_does_not_extend_the_cosigned_one_is_refused() -> None:
    # The fork's own, valid-looking proof from 5 to 9 does not lead from the cosigned root.
    fork_proof = FORK.consistency_proof(5, 9)
    refused(decide(request(5, 9, FORK, proof=fork_proof), LOGS, checkpoint_of(5)), 422)
    # nor does the honest log's proof lead to the fork's root
    refused(decide(request(5, 9, FORK), LOGS, checkpoint_of(5)), 422)


def test_equal_sizes_with_a_proof_is_422() -> None:
    refused(decide(request(5, 5, proof=[bytes(32)]), LOGS, checkpoint_of(5)), 422)


def test_unknown_origin_is_404() -> None:
    stranger = SignerKey.from_seed("other.example/log", bytes(range(4, 36)))
    note = sign_checkpoint(Checkpoint(stranger.name, 3, TREE.root(3)), stranger)
    refused(decide(parse_add_checkpoint(format_add_checkpoint(0, [], note)), LOGS, None), 404)
    refused(decide(request(0, 3), {}, None), 404)


def test_wrong_key_is_403_and_unknown_extra_signatures_are_ignored() -> None:
    wrong = parse_add_checkpoint(format_add_checkpoint(0, [], note_for(3, signer=OTHER_LOG)))
    refused(decide(wrong, LOGS, None), 403)
    # a bad signature by the trusted key itself is refused too (c2sp.org/signed-note)
    text = checkpoint_of(3).text()
    forged = sign_note(checkpoint_of(4).text(), [LOG]).split("\n\n", 1)[1]
    refused(decide(parse_add_checkpoint(f"old 0\n\n{text}\n{forged}".encode()), LOGS, None), 403)
    # other witnesses' cosignatures and unknown keys next to the log's signature do not matter
    cosigned = note_for(3) + cosign(text, WITNESS, 7) + sign_note(text, [OTHER_LOG]).split("\n\n", 1)[1]
    assert accepted(
        decide(parse_add_checkpoint(f"old 0\n\n{cosigned}".encode()), LOGS, None)
    ) == checkpoint_of(3)
    # a witness with two keys for one origin accepts either
    both = {ORIGIN: (OTHER_LOG.verifier(), LOG.verifier())}
    assert accepted(decide(request(0, 3), both, None)) == checkpoint_of(3)


def test_old_size_above_the_checkpoint_size_is_400() -> None:
    refused(decide(request(9, 5), LOGS, checkpoint_of(9)), 400)
    refused(decide(request(9, 5), LOGS, None), 400)


def test_a_smaller_tree_than_the_stored_one_is_never_cosigned() -> None:
    stored = checkpoint_of(20)
    for size in range(20):
        for old in (0, size, 20):
            outcome = decide(request(old, size), LOGS, stored)
            assert isinstance(outcome, Refusal), (old, size)
            assert outcome.status in (400, 409), (old, size, outcome)


@given(st.integers(1, 64), st.integers(1, 64))
def test_any_rfc_proof_from_the_stored_size_is_cosigned_and_any_fork_refused(a: int, b: int) -> None:
    old, size = min(a, b), max(a, b)
    assert accepted(decide(request(old, size), LOGS, checkpoint_of(old))) == checkpoint_of(size)
    outcome = decide(request(old, size, FORK), LOGS, checkpoint_of(old))
    assert isinstance(outcome, Refusal)
    assert outcome.status in (409, 422)
