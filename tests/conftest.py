"""Test-wide settings: Hypothesis profiles.

``dev`` (default) keeps the suite quick on a laptop; ``ci`` (chosen when the CI
environment variable is set, or with HYPOTHESIS_PROFILE=ci) runs more examples and
derandomizes, so a CI run is reproducible.
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
    max_examples=500,
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
    return examples if settings.default.max_examples >= 500 else max(50, examples // 10)
