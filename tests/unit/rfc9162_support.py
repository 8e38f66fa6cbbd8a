"""Finding and loading the RFC 9162 proof vectors, and what to do when they are absent.

The vectors (transparency-dev/merkle's testdata, one JSON file per case with
`desc` and `wantErr`, under `inclusion/` and `consistency/`) are not part of
the repository: they sit next to it, in `shared/vectors/rfc9162` beside the
checkout's folder. A user's clone may not have them; then every vector test is
skipped, with a reason that says where they were looked for. A CI run
(ci_mode.py) must not lose 198 tests that way: there, their absence is a failure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _pytest.mark.structures import ParameterSet

RFC9162_VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "rfc9162"
RFC9162_KINDS = ("inclusion", "consistency")
MISSING_ID = "vectors-missing"


@dataclass(frozen=True)
class Vector:
    """One vector file: its kind (`inclusion` or `consistency`), path, folder and decoded JSON."""

    kind: str
    path: Path
    root: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        """`<folder relative to the vector root>/<desc>`, the test id."""
        return f"{self.path.parent.relative_to(self.root).as_posix()}/{self.data['desc']}"


def vector_files(root: Path) -> list[Path]:
    """Every JSON vector under `root`/inclusion and `root`/consistency, sorted; empty when there are none."""
    return [path for kind in RFC9162_KINDS for path in sorted((root / kind).rglob("*.json"))]


def load_vector(root: Path, path: Path) -> Vector:
    kind = path.relative_to(root).parts[0]
    return Vector(kind, path, root, json.loads(path.read_text(encoding="utf-8")))


def vector_params(root: Path) -> list[ParameterSet]:
    """One parameter per vector file, with its name as the id; one `None` marking their absence."""
    files = vector_files(root)
    if not files:
        return [pytest.param(None, id=MISSING_ID)]
    return [pytest.param(vector, id=vector.name) for vector in (load_vector(root, path) for path in files)]


def absence_message(root: Path, *, ci: bool) -> str:
    where = f"RFC 9162 vectors not found at {root} (no JSON files under inclusion/ or consistency/)"
    if ci:
        return f"{where}: a CI run (CI=true) must check all 196 of them; put them there, or run without CI"
    return f"{where}: they live in the shared folder beside the repository, absent from a plain clone"


def require_vectors(root: Path, *, ci: bool) -> Path:
    """`root` when it holds vectors; otherwise skip the test, or fail it in a CI run."""
    if vector_files(root):
        return root
    if ci:
        pytest.fail(absence_message(root, ci=True), pytrace=False)
    pytest.skip(absence_message(root, ci=False))
