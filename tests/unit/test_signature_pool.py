"""Signature checks on helper processes (`ledger.verify.signature_pool`): verdicts as if checked at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.core.keys import SignerKey, VerifierKey
from ledger.errors import SignatureError
from ledger.verify.signature_pool import DeferredSignatures, first_bad_signature

SIGNER = SignerKey.generate("pipeline")
OTHER = SignerKey.generate("pipeline")


def signed(n: int) -> tuple[VerifierKey, bytes, bytes]:
    message = b"DSSEv1 message %d" % n
    return SIGNER.verifier(), message, SIGNER.sign(message)


def as_check(key: VerifierKey, message: bytes, signature: bytes) -> tuple[bytes, bytes, bytes]:
    return key.public_key, message, signature


@pytest.fixture(scope="module")
def pool() -> Iterator[DeferredSignatures]:
    with DeferredSignatures(2) as signatures:
        yield signatures


def test_first_bad_signature_finds_each_kind_of_bad_signature():
    good = [as_check(*signed(n)) for n in range(5)]
    assert first_bad_signature(good) == -1
    key, message, signature = signed(9)
    forged = bytes([signature[0] ^ 1]) + signature[1:]
    for bad in (
        (key.public_key, message, forged),  # a flipped bit
        (key.public_key, message + b"!", signature),  # another message
        (OTHER.verifier().public_key, message, signature),  # another key
        (key.public_key, message, signature[:63]),  # too short
        (key.public_key, message, signature + b"\x00"),  # too long
    ):
        assert first_bad_signature([*good[:3], bad, *good[3:]]) == 3


def queue(pool: DeferredSignatures, index: int, check: tuple[VerifierKey, bytes, bytes]) -> None:
    pool.index = index
    pool(*check)


def test_good_signatures_settle_quietly(pool: DeferredSignatures):
    for index in range(600):
        queue(pool, index, signed(index))
        if index % 100 == 99:
            pool.submit()
    pool.settle()


def test_the_first_bad_signature_in_log_order_is_named(pool: DeferredSignatures):
    # Two forgeries in different batches: the earlier one is the failure, whether it surfaces
    # while later batches are handed out (the bound on batches out) or when all are settled.
    def check_all() -> None:
        for index in range(1000):
            key, message, signature = signed(index)
            if index in (250, 700):
                signature = bytes(64)
            queue(pool, index, (key, message, signature))
            if index % 100 == 99:
                pool.submit()
        pool.settle()

    with pytest.raises(
        SignatureError, match=r"^entry 250: signature by pipeline\+[0-9a-f]{8} does not verify$"
    ):
        check_all()
    pool.settle()  # nothing is left over from the failed run


def test_a_bad_signature_in_the_last_batch_is_named(pool: DeferredSignatures):
    for index in range(10):
        key, message, signature = signed(index)
        queue(pool, index, (key, message, signature if index != 9 else signature[::-1]))
    with pytest.raises(SignatureError, match=r"^entry 9: "):
        pool.settle()


def test_no_more_than_jobs_plus_one_batches_are_out(pool: DeferredSignatures):
    for index in range(20):
        queue(pool, index, signed(index))
        pool.submit()
        assert len(pool._running) <= 3
    pool.settle()
    assert not pool._running
