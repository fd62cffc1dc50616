"""proxies/rs/schedule.py: periods on the user's wall clock, DST, catch-up without repeats."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starwrs.grammar.codecs import DateRange, Schedule
from starwrs.grammar.vocab import ScheduleKind
from starwrs.proxies.rs.schedule import (
    ZONE_OF_CODE,
    adhoc_runs,
    recurring_runs,
    zone_for,
)

from ..conftest import scaled

NY = ZoneInfo("America/New_York")
UTC = dt.UTC


def at(text: str, zone: ZoneInfo = UTC) -> dt.datetime:  # type: ignore[assignment]
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone)


def test_daily_in_new_york_covers_23_and_25_hours_on_the_change_days() -> None:
    spring = recurring_runs(ScheduleKind.DAILY, NY, since=None, now=at("2026-03-09T03:00", NY))
    assert [(r.start, r.end, r.hours) for r in spring] == [
        (at("2026-03-08T05:00"), at("2026-03-09T04:00"), 23.0)
    ]
    assert spring[0].label == "EST"
    assert spring[0].offset == -5
    fall = recurring_runs(ScheduleKind.DAILY, NY, since=None, now=at("2026-11-02T00:30", NY))
    assert [(r.start, r.end, r.hours) for r in fall] == [
        (at("2026-11-01T04:00"), at("2026-11-02T05:00"), 25.0)
    ]
    assert (fall[0].label, fall[0].offset) == ("EDT", -4)


def test_weekly_starts_on_the_users_week_start() -> None:
    now = at("2026-12-02T12:00", NY)  # a Wednesday
    monday = recurring_runs(ScheduleKind.WEEKLY, NY, since=None, now=now)
    assert monday[0].start.astimezone(NY) == at("2026-11-23T00:00", NY)
    assert monday[0].end.astimezone(NY) == at("2026-11-30T00:00", NY)
    sunday = recurring_runs(ScheduleKind.WEEKLY, NY, since=None, now=now, week_start=6)
    assert sunday[0].start.astimezone(NY) == at("2026-11-22T00:00", NY)
    assert sunday[0].end.astimezone(NY) == at("2026-11-29T00:00", NY)
    # the week that holds the fall change has 7 * 24 + 1 hours
    fall = recurring_runs(ScheduleKind.WEEKLY, NY, since=None, now=at("2026-11-03T00:00", NY))
    assert fall[0].hours == 7 * 24 + 1


def test_monthly_and_hourly() -> None:
    now = at("2026-03-15T10:20", NY)
    (month,) = recurring_runs(ScheduleKind.MONTHLY, NY, since=None, now=now)
    assert month.start.astimezone(NY) == at("2026-02-01T00:00", NY)
    assert month.end.astimezone(NY) == at("2026-03-01T00:00", NY)
    (hour,) = recurring_runs(ScheduleKind.HOURLY, NY, since=None, now=now)
    assert hour.start.astimezone(NY) == at("2026-03-15T09:00", NY)
    assert hour.hours == 1
    january = recurring_runs(ScheduleKind.MONTHLY, NY, since=None, now=at("2026-01-05T00:00", NY))
    assert january[0].start.astimezone(NY) == at("2025-12-01T00:00", NY)


def test_catch_up_after_an_outage_runs_each_missed_period_once() -> None:
    since = at("2026-06-10T04:00")  # midnight in New York, EDT
    now = at("2026-06-13T15:00", NY)
    runs = recurring_runs(ScheduleKind.DAILY, NY, since=since, now=now)
    assert [r.start.astimezone(NY).day for r in runs] == [10, 11, 12]
    assert runs[0].start == since
    again = recurring_runs(ScheduleKind.DAILY, NY, since=runs[-1].end, now=now)
    assert again == []


def test_catch_up_is_capped() -> None:
    runs = recurring_runs(
        ScheduleKind.HOURLY, NY, since=at("2026-01-01T00:00"), now=at("2026-02-01T00:00"), limit=5
    )
    assert len(runs) == 5
    assert runs[-1].end == at("2026-02-01T00:00")


@settings(max_examples=scaled(300))
@given(
    kind=st.sampled_from(
        [ScheduleKind.HOURLY, ScheduleKind.DAILY, ScheduleKind.WEEKLY, ScheduleKind.MONTHLY]
    ),
    zone=st.sampled_from(
        sorted(
            set(ZONE_OF_CODE.values()) | {"Asia/Kolkata", "America/Havana", "Australia/Lord_Howe"}
        )
    ),
    start=st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1)),
    steps=st.lists(st.integers(1, 50 * 3600), min_size=1, max_size=6),
    week_start=st.integers(0, 6),
)
def test_runs_tile_time_without_gaps_or_repeats(
    kind: ScheduleKind, zone: str, start: dt.datetime, steps: list[int], week_start: int
) -> None:
    """However the scheduler's wake-ups fall, consecutive runs tile time exactly."""
    tz = ZoneInfo(zone)
    now = start.replace(tzinfo=UTC)
    (first,) = recurring_runs(kind, tz, since=None, now=now, week_start=week_start)
    assert first.end <= now
    runs = [first]
    for step in steps:
        now += dt.timedelta(seconds=step)
        runs += recurring_runs(
            kind, tz, since=runs[-1].end, now=now, week_start=week_start, limit=10**6
        )
    for before, after in itertools.pairwise(runs):
        assert before.end == after.start
    assert all(r.start < r.end for r in runs)
    assert runs[-1].end <= now


def test_adhoc_runs_read_dates_on_the_users_clock() -> None:
    schedule = Schedule(
        ScheduleKind.ADHOC,
        (
            DateRange(dt.datetime(1998, 6, 2), dt.datetime(1998, 7, 15, 12)),
            DateRange(dt.datetime(1998, 12, 1), dt.datetime(1998, 12, 2)),
        ),
    )
    runs = adhoc_runs(schedule, NY)
    assert runs[0].start == at("1998-06-02T04:00")
    assert (runs[0].label, runs[0].offset) == ("EDT", -4)
    assert runs[1].start == at("1998-12-01T05:00")
    assert (runs[1].label, runs[1].offset) == ("EST", -5)


def test_zone_codes() -> None:
    assert zone_for("45") == NY
    assert zone_for("America/Chicago") == ZoneInfo("America/Chicago")
    assert zone_for("nonsense") == ZoneInfo("UTC")
    assert zone_for(None) == ZoneInfo("UTC")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        recurring_runs(ScheduleKind.DAILY, NY, since=None, now=dt.datetime(2026, 1, 1))
