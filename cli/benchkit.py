"""Shared machinery of ``starwrs bench``: timing loops and the result line shape.

Theory of operation
-------------------
Every benchmark measures a thing *and a baseline in the same run* and reports the
ratio, so numbers from a busy shared machine still compare fairly.  A benchmark is
a function ``run(quick: bool) -> list[Result]``; ``starwrs bench NAME`` prints each
result as a table row, or with ``--json`` as one JSON object per line with exactly
the keys ``name, value, unit, baseline_name, baseline_value, ratio``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

__all__ = ["Result", "rate"]


@dataclass(frozen=True, slots=True)
class Result:
    """One measured quantity against its same-run baseline."""

    name: str
    value: float
    unit: str
    baseline_name: str
    baseline_value: float
    ratio: float

    def to_json(self) -> dict[str, object]:
        """The JSON-line shape shared by every ``starwrs bench``."""
        return asdict(self)


def rate(fn: Callable[[], object], *, seconds: float = 1.0, batch: int = 100) -> float:
    """Call *fn* repeatedly for about *seconds*; return calls per second.

    Takes the best of three windows so a noisy neighbour costs less.
    """
    best = 0.0
    window = seconds / 3
    for _ in range(3):
        count = 0
        start = time.perf_counter()
        deadline = start + window
        now = start
        while now < deadline:
            for _ in range(batch):
                fn()
            count += batch
            now = time.perf_counter()
        best = max(best, count / (now - start))
    return best


def compare(
    name: str, value: float, unit: str, baseline_name: str, baseline_value: float
) -> Result:
    """Build a :class:`Result`, computing the ratio value / baseline."""
    ratio = value / baseline_value if baseline_value else 0.0
    return Result(name, value, unit, baseline_name, baseline_value, round(ratio, 4))
