"""transparency-dev/merkle's RFC 9162 proof vectors, every happy path and every tampered case.

Each file says what to check and whether the check must fail (`wantErr`); the
test is parametrised by file (see conftest.py) so each case is reported by its
`desc`. Hashes are base64; "" is the empty byte string; `proof` may be null.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ledger.core.proof import verify_consistency, verify_inclusion
from ledger.errors import LedgerError

EXPECTED_VECTOR_COUNT = 196
EXPECTED_PER_KIND = {"inclusion": 98, "consistency": 98}


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b64(h) for h in value or []]


def _check(vector) -> None:
    data = vector.data
    if vector.kind == "inclusion":
        verify_inclusion(
            data["leafIdx"],
            data["treeSize"],
            _b64(data["leafHash"]),
            _proof(data["proof"]),
            _b64(data["root"]),
        )
    else:
        verify_consistency(
            data["size1"], data["size2"], _proof(data["proof"]), _b64(data["root1"]), _b64(data["root2"])
        )


def test_vector_folder_holds_all_196_cases(rfc9162_vectors_dir: Path) -> None:
    counts = {kind: len(list((rfc9162_vectors_dir / kind).rglob("*.json"))) for kind in EXPECTED_PER_KIND}
    assert counts == EXPECTED_PER_KIND
    assert sum(counts.values()) == EXPECTED_VECTOR_COUNT


def test_vector_folder_has_both_outcomes(rfc9162_vectors_dir: Path) -> None:
    # A vector set of only failures would pass against a verifier that rejects everything.
    wanted = [json.loads(p.read_text())["wantErr"] for p in rfc9162_vectors_dir.rglob("*.json")]
    assert wanted.count(False) == 12
    assert wanted.count(True) == EXPECTED_VECTOR_COUNT - 12


def test_rfc9162_vector(rfc9162_vector) -> None:
    if rfc9162_vector.data["wantErr"]:
        with pytest.raises(LedgerError):
            _check(rfc9162_vector)
    else:
        _check(rfc9162_vector)
