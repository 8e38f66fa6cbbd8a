"""Shared fixtures of the unit tests: where the RFC 9162 proof vectors live.

The vectors (transparency-dev/merkle's testdata, one JSON file per case with
`desc` and `wantErr`) sit next to the repository, in ../shared/vectors/rfc9162.
A user's clone may not have that folder: then every vector test is skipped
with a reason that says where the folder was looked for, rather than passing
on zero cases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

RFC9162_VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "rfc9162"
RFC9162_KINDS = ("inclusion", "consistency")
SKIP_REASON = (
    f"RFC 9162 vectors not found at {RFC9162_VECTORS} "
    "(they live in the shared folder next to the repository, absent from a plain clone)"
)


@dataclass(frozen=True)
class Vector:
    """One vector file: its kind (`inclusion` or `consistency`), path and decoded JSON."""

    kind: str
    path: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        """`<folder relative to the vector root>/<desc>`, the test id."""
        folder = self.path.parent.relative_to(RFC9162_VECTORS).as_posix()
        return f"{folder}/{self.data['desc']}"


def rfc9162_vector_files() -> list[Path]:
    """Every JSON vector under inclusion/ and consistency/, sorted; empty when the folder is absent."""
    return [path for kind in RFC9162_KINDS for path in sorted((RFC9162_VECTORS / kind).rglob("*.json"))]


def load_vector(path: Path) -> Vector:
    kind = path.relative_to(RFC9162_VECTORS).parts[0]
    return Vector(kind, path, json.loads(path.read_text(encoding="utf-8")))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise any test taking `rfc9162_vector` by vector file, with the `desc` in the id."""
    if "rfc9162_vector" not in metafunc.fixturenames:
        return
    files = rfc9162_vector_files()
    if not files:
        metafunc.parametrize(
            "rfc9162_vector",
            [pytest.param(None, id="vectors-missing", marks=pytest.mark.skip(reason=SKIP_REASON))],
        )
        return
    vectors = [load_vector(path) for path in files]
    metafunc.parametrize("rfc9162_vector", [pytest.param(v, id=v.name) for v in vectors])


@pytest.fixture
def rfc9162_vectors_dir() -> Path:
    """The vector folder; skips the test when it is absent."""
    if not RFC9162_VECTORS.is_dir():
        pytest.skip(SKIP_REASON)
    return RFC9162_VECTORS
