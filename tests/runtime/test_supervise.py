"""The supervisor's restart back-off (the restart itself: tests/e2e/test_system.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starwrs.runtime.supervise import RESTART_FIRST, RESTART_MAX, RESTART_STABLE, restart_delay


def test_a_first_crash_restarts_after_the_first_delay() -> None:
    assert restart_delay(None, lived=0.1) == RESTART_FIRST


def test_a_crash_loop_doubles_up_to_the_ceiling() -> None:
    delays = []
    delay = None
    for _ in range(10):
        delay = restart_delay(delay, lived=0.5)
        delays.append(delay)
    assert delays[:5] == [1, 2, 4, 8, 16]
    assert delays[5:] == [RESTART_MAX] * 5


def test_a_run_that_lasted_resets_the_back_off() -> None:
    assert restart_delay(RESTART_MAX, lived=RESTART_STABLE) == RESTART_FIRST
    assert restart_delay(RESTART_MAX, lived=RESTART_STABLE - 1) == RESTART_MAX


@given(
    st.one_of(st.none(), st.floats(RESTART_FIRST, RESTART_MAX)),
    st.floats(0, 10 * RESTART_STABLE),
)
def test_the_delay_always_stays_in_bounds(previous: float | None, lived: float) -> None:
    assert RESTART_FIRST <= restart_delay(previous, lived) <= RESTART_MAX
