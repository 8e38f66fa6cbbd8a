"""Settings every test shares: the Hypothesis profile, chosen by whether the run is CI (ci_mode.py).

Profile `ci` (loaded when CI=true) derandomizes Hypothesis: the examples are a
function of each test, so a CI failure is reproduced by running the same
commit again, and no example database carries state from one run to the next.
It keeps Hypothesis's default deadline (200 ms, which tests that call slow code
lift with `deadline=None`) and its default of 100 examples for tests that do
not set their own. Outside CI the default profile explores new examples on
every run. Pick another with `pytest --hypothesis-profile=NAME`.
"""

from __future__ import annotations

from ci_mode import ci_requested
from hypothesis import settings

CI_PROFILE = "ci"

settings.register_profile(CI_PROFILE, derandomize=True, max_examples=100, database=None, print_blob=True)
if ci_requested():
    settings.load_profile(CI_PROFILE)
