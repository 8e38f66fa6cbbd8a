"""CI mode (tests/ci_mode.py) and the Hypothesis profile it selects (tests/conftest.py).

Run under CI=true and without it (and under CI=false, which Hypothesis on its own
would take for CI), these tests check that each run got its own profile.
"""

from __future__ import annotations

import pytest
from ci_mode import ci_requested
from hypothesis import HealthCheck, settings


@pytest.mark.parametrize(
    ("environ", "ci"),
    [
        ({"CI": "true"}, True),
        ({"CI": "TRUE"}, True),
        ({"CI": "1"}, True),
        ({"CI": " yes "}, True),
        ({}, False),
        ({"CI": ""}, False),
        ({"CI": "false"}, False),
        ({"CI": "0"}, False),
        ({"GITHUB_ACTIONS": "true"}, False),
    ],
)
def test_ci_is_requested_by_the_ci_variable_alone(environ: dict[str, str], ci: bool) -> None:
    assert ci_requested(environ) is ci


def test_the_ci_profile_is_derandomized_and_independent_of_the_machine_load() -> None:
    ci = settings.get_profile("ci")
    assert ci.derandomize is True
    assert ci.database is None  # nothing replayed from an earlier run
    assert ci.max_examples == settings.get_profile("default").max_examples == 100
    assert ci.deadline is None
    assert HealthCheck.too_slow in ci.suppress_health_check
    assert ci.print_blob is True  # a failure prints the blob that reproduces it


def test_the_loaded_profile_follows_the_ci_variable() -> None:
    ci = ci_requested()
    assert settings.default.derandomize is ci
    assert (settings.default.database is None) is ci
    assert (settings.default.deadline is None) is ci
    # A test's own settings (max_examples, deadline) take the rest from the loaded profile.
    assert settings(max_examples=7, deadline=None).derandomize is ci
