"""Whether this test run is CI: the one place the suite reads `CI` from the environment.

CI services set `CI=true` (and `.ci/run` exports it). A CI run is strict and
repeatable where a developer's run may be lenient and exploratory:

- Hypothesis runs the `ci` profile (tests/conftest.py): derandomized, so every
  run tries the same examples, and with no example database to replay from;
- the RFC 9162 vectors must be present (tests/unit/rfc9162_support.py): their
  absence fails the run instead of skipping 198 tests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

CI_VALUES = frozenset({"true", "1", "yes"})


def ci_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """True when `CI` is `true`, `1` or `yes` (any case); unset, empty, `false` or `0` mean a local run."""
    return environ.get("CI", "").strip().lower() in CI_VALUES
