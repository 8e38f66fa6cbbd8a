"""transparency-dev/merkle's RFC 9162 proof vectors, every happy path and every tampered case.

Each file says what to check and whether the check must fail (`wantErr`); the
test is parametrised by file (see conftest.py) so each case is reported by its
`desc`. Hashes are base64; "" is the empty byte string; `proof` may be null.
Every case that must fail fails as a VerificationError (a bad size, length or
root), never as another error of the ledger.

Where the vectors are absent, a local run skips these tests and a CI run fails
them (rfc9162_support.py); the last tests check that on folders of their own.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from rfc9162_support import MISSING_ID, RFC9162_VECTORS, require_vectors, vector_params

from ledger.core.proof import verify_consistency, verify_inclusion
from ledger.errors import VerificationError

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
        with pytest.raises(VerificationError):
            _check(rfc9162_vector)
    else:
        _check(rfc9162_vector)


# --- when the vectors are absent ------------------------------------------------------------------


def _one_vector(root: Path) -> Path:
    """`root` holding a copy of one real vector file (or a stand-in when the real ones are absent)."""
    folder = root / "inclusion" / "happy-path"
    folder.mkdir(parents=True)
    real = sorted((RFC9162_VECTORS / "inclusion").rglob("*.json"))
    text = real[0].read_text(encoding="utf-8") if real else '{"desc": "stand-in", "wantErr": false}'
    (folder / "0.json").write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize("folder", ["empty", "absent", "other files only"])
def test_absent_vectors_skip_a_local_run_with_where_they_were_looked_for(tmp_path: Path, folder: str) -> None:
    root = _vector_root(tmp_path, folder)
    assert [p.id for p in vector_params(root)] == [MISSING_ID]
    with pytest.raises(pytest.skip.Exception, match="RFC 9162 vectors not found at") as skipped:
        require_vectors(root, ci=False)
    assert str(root) in str(skipped.value)


@pytest.mark.parametrize("folder", ["empty", "absent", "other files only"])
def test_absent_vectors_fail_a_ci_run(tmp_path: Path, folder: str) -> None:
    root = _vector_root(tmp_path, folder)
    with pytest.raises(pytest.fail.Exception, match=r"a CI run \(CI=true\) must check all 196") as failed:
        require_vectors(root, ci=True)
    assert str(root) in str(failed.value)
    assert not failed.value.pytrace  # the message alone, no traceback of the conftest


@pytest.mark.parametrize("ci", [False, True], ids=["local", "ci"])
def test_present_vectors_are_collected_one_test_each(tmp_path: Path, ci: bool) -> None:
    root = _one_vector(tmp_path / "vectors")
    assert require_vectors(root, ci=ci) == root
    (param,) = vector_params(root)
    assert param.id == f"inclusion/happy-path/{param.values[0].data['desc']}"
    assert param.values[0].kind == "inclusion"


def _vector_root(tmp_path: Path, folder: str) -> Path:
    root = tmp_path / "vectors"
    if folder == "empty":
        (root / "inclusion").mkdir(parents=True)
        (root / "consistency").mkdir()
    elif folder == "other files only":
        (root / "inclusion").mkdir(parents=True)
        (root / "inclusion" / "README.md").write_text("vectors go here", encoding="utf-8")
        (root / "0.json").write_text("{}", encoding="utf-8")  # not under inclusion/ or consistency/
    return root
