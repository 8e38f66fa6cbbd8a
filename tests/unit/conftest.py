"""Shared fixtures of the unit tests: the RFC 9162 proof vectors (see rfc9162_support.py).

Any test taking `rfc9162_vector` is parametrised by vector file, with its `desc`
in the id. When the vectors are absent it gets one case instead, which is
skipped with a reason, or fails in a CI run (CI=true); `rfc9162_vectors_dir`
does the same for tests that read the folder as a whole.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ci_mode import ci_requested
from rfc9162_support import RFC9162_VECTORS, Vector, require_vectors, vector_params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rfc9162_vector" in metafunc.fixturenames:
        metafunc.parametrize("rfc9162_vector", vector_params(RFC9162_VECTORS), indirect=True)


@pytest.fixture
def rfc9162_vector(request: pytest.FixtureRequest) -> Vector:
    """The vector of this parameter; skips (fails in CI) the one case standing for absent vectors."""
    if request.param is None:
        require_vectors(RFC9162_VECTORS, ci=ci_requested())  # there are none: this skips, or fails in CI
    vector: Vector = request.param
    return vector


@pytest.fixture
def rfc9162_vectors_dir() -> Path:
    """The vector folder; skips the test when it holds no vectors, or fails it in a CI run."""
    return require_vectors(RFC9162_VECTORS, ci=ci_requested())
