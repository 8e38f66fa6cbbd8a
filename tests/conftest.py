"""Settings every test shares: the Hypothesis profile, chosen by whether the run is CI (ci_mode.py).

Profile `ci` (loaded when CI=true) derandomizes Hypothesis: the examples are a
function of each test, so a CI failure comes back on every run of the same
commit, and no example database carries state from one run to the next. It
leaves out what depends on the machine's load, as Hypothesis's own CI profile
does (the one it loads by itself whenever a `CI` variable exists, whatever its
value): no deadline and no too-slow health check, so a busy runner cannot fail
a test that a quiet one passes. It runs Hypothesis's default 100 examples,
except where a test sets its own. Any other run loads the `default` profile,
which explores new examples every time. `pytest --hypothesis-profile=NAME`
overrides both.
"""

from __future__ import annotations

import os

from ci_mode import ci_requested
from hypothesis import HealthCheck, settings

CI_PROFILE = "ci"

settings.register_profile(
    CI_PROFILE,
    parent=settings.get_profile("default"),  # not Hypothesis's built-in `ci`: this one states every choice
    derandomize=True,
    max_examples=100,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(CI_PROFILE if ci_requested() else "default")

# The CLI tries a request again while the service answers 503 or cannot be reached (cli/client.py),
# waiting seconds each time. Tests that stop or never start a service want the answer at once:
# retries are off unless a test asks for them (tests/unit/test_client_retries.py tests them).
os.environ.setdefault("EVLEDGER_RETRIES", "0")
