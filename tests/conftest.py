"""Test-wide settings: Hypothesis profiles.

``dev`` (default) keeps the suite quick on a laptop; ``ci`` (chosen when the CI
environment variable is set, or with HYPOTHESIS_PROFILE=ci) derandomizes, so a CI run
is reproducible, and runs the full example counts that tests ask for with
:func:`scaled` (a tenth of them under ``dev``).  The default count is 200 under both:
at 500 a CI run of the whole suite took 47 minutes on the 2-core machine, and most
properties here reach their interesting cases in far fewer examples; the few whose
space is larger ask for more with ``scaled``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


def scaled(examples: int) -> int:
    """Scale an example count to the active profile (full size under ``ci``)."""
    return examples if settings.default.derandomize else max(50, examples // 10)
