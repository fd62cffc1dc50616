"""When a scheduled report runs, and over which period, in the user's own time zone.

Theory of operation
-------------------
A recurring report (seed Appendix A ``SCHEDULE``: H hourly, D daily, W weekly,
M monthly) runs once each period has *ended*, over exactly that period, where
"period" is measured on the user's wall clock: a daily report covers local
midnight to local midnight, so in New York it covers 23 hours on the day clocks
go forward and 25 on the day they go back; a weekly one runs from the user's
week start (Monday unless order entry says otherwise); a monthly one from the 1st.
Hourly periods are local clock hours (the seed offers them for unpriced data only).

Everything here is pure: :func:`recurring_runs` takes the zone, the last period
end already run and *now*, and returns the runs that fell due in between, oldest
first -- so a scheduler that was down while runs fell due catches up on each of
them exactly once when it comes back (capped at :data:`CATCH_UP_LIMIT`, newest
kept), and one that restarts twice in a period runs nothing twice.  All datetimes
in and out are timezone-aware; the periods are returned in UTC (the Appendix D ARD
is sent in GMT) with the zone's label and offset at the period's start for its
``TIMEZONE=<LABEL=…,OFFSET=…>``.

An ad hoc schedule runs every START/END pair once, at once (:func:`adhoc_runs`);
its dates are the user's local times.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from starwrs.grammar.codecs import Schedule
from starwrs.grammar.vocab import ScheduleKind

__all__ = [
    "CATCH_UP_LIMIT",
    "ZONE_OF_CODE",
    "Run",
    "adhoc_runs",
    "recurring_runs",
    "zone_for",
]

UTC = dt.UTC

#: most missed runs of one report made up after an outage (the newest are kept)
CATCH_UP_LIMIT = 62

#: StarOE time-zone codes (PL_TIMEZONE, proxies/oe/reference.py) -> IANA zones.
#: The seed shows code 45 on a report in "EST"; the others are order entry's own.
ZONE_OF_CODE: dict[str, str] = {
    "40": "UTC",
    "41": "America/Halifax",
    "45": "America/New_York",
    "46": "America/Chicago",
    "47": "America/Denver",
    "48": "America/Los_Angeles",
    "49": "America/Anchorage",
    "50": "Pacific/Honolulu",
    "51": "Europe/Paris",
}


def zone_for(code_or_name: str | None) -> ZoneInfo:
    """The zone of a StarOE code (``45``) or an IANA name; UTC when unknown or empty."""
    name = ZONE_OF_CODE.get((code_or_name or "").strip(), (code_or_name or "").strip())
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a report: the period it covers, in UTC, and how to label it."""

    start: dt.datetime
    end: dt.datetime
    #: the zone's abbreviation at the period's start (``EST``, ``EDT``)
    label: str
    #: the zone's offset from GMT at the period's start, in hours (may be fractional)
    offset: float

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


def _run(start: dt.datetime, end: dt.datetime, zone: ZoneInfo) -> Run:
    local = start.astimezone(zone)
    offset = local.utcoffset() or dt.timedelta(0)
    return Run(
        start.astimezone(UTC),
        end.astimezone(UTC),
        local.tzname() or "GMT",
        offset.total_seconds() / 3600,
    )


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The first instant of *day* on the zone's wall clock, in UTC.

    Where midnight itself does not exist (a zone that springs forward at 00:00),
    ``fold=0`` reads it with the offset before the change, which is the instant
    the day's first existing wall time (01:00) names: still the day's start.
    """
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(UTC)


def _boundary_at_or_before(
    kind: ScheduleKind, moment: dt.datetime, zone: ZoneInfo, week_start: int
) -> dt.datetime:
    local = moment.astimezone(zone)
    if kind is ScheduleKind.HOURLY:
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    day = local.date()
    if kind is ScheduleKind.WEEKLY:
        day -= dt.timedelta(days=(day.weekday() - week_start) % 7)
    elif kind is ScheduleKind.MONTHLY:
        day = day.replace(day=1)
    return _midnight(day, zone)


def _previous(kind: ScheduleKind, boundary: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The period boundary before *boundary* (itself a boundary)."""
    if kind is ScheduleKind.HOURLY:
        local = (boundary - dt.timedelta(hours=1)).astimezone(zone)
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    day = boundary.astimezone(zone).date()
    if kind is ScheduleKind.DAILY:
        day -= dt.timedelta(days=1)
    elif kind is ScheduleKind.WEEKLY:
        day -= dt.timedelta(days=7)
    else:
        day = (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    return _midnight(day, zone)


def recurring_runs(
    kind: ScheduleKind,
    zone: ZoneInfo,
    *,
    since: dt.datetime | None,
    now: dt.datetime,
    week_start: int = 0,
    limit: int = CATCH_UP_LIMIT,
) -> list[Run]:
    """The runs of a recurring schedule whose periods ended in ``(since, now]``.

    Args:
        kind: HOURLY, DAILY, WEEKLY or MONTHLY.
        zone: the user's time zone.
        since: the end of the last period already run; None for a report never run
            (then only the period that ended last is due: a report saved today
            does not make up for the years before it was saved).
        now: the current time (aware).
        week_start: 0 = Monday ... 6 = Sunday (``datetime.weekday`` numbering).
        limit: the most runs returned (the newest ones).

    Returns:
        The runs, oldest first.

    Raises:
        ValueError: *kind* is ad hoc, or a datetime is naive.
    """
    if kind is ScheduleKind.ADHOC:
        raise ValueError("an ad hoc schedule has no recurring runs")
    if now.tzinfo is None or (since is not None and since.tzinfo is None):
        raise ValueError("datetimes must be timezone-aware")
    end = _boundary_at_or_before(kind, now, zone, week_start)
    runs: list[Run] = []
    while len(runs) < (1 if since is None else limit):
        if since is not None and end <= since:
            break
        start = _previous(kind, end, zone)
        runs.append(_run(start, end, zone))
        end = start
    runs.reverse()
    return runs


def adhoc_runs(schedule: Schedule, zone: ZoneInfo) -> list[Run]:
    """Every START/END pair of an ad hoc schedule, read on the user's wall clock."""
    runs = []
    for pair in schedule.ranges:
        start = pair.start.replace(tzinfo=zone) if pair.start.tzinfo is None else pair.start
        end = pair.end.replace(tzinfo=zone) if pair.end.tzinfo is None else pair.end
        runs.append(_run(start, end, zone))
    return runs
