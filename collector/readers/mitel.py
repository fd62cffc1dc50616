"""Mitel MiVoice Business (3300 ICP, SX-2000 lineage) SMDR: fixed-width lines, as
the controller streams them on TCP port 1752 or an SMDR logger saves them.

Theory of operation
-------------------
A record is one line whose *columns* carry the fields (Mitel's "Summary of Fields in
SMDR Records", standard record: Extended Digit Length and Extended Time to Answer
off).  Columns are numbered from 1; ``_`` is a blank spacer::

    zmm/dd_hh:mmp_hh:mm:ss_pppp_fttt_xxxxxxxxxxxxxxxxxxxxxmmmmmhsqqqqk_rrrr_aaaaaaaaaaaasiii__
    ^1   ^6      ^14       ^24  ^29   ^34                  ^55  ^60  ^66   ^73        ^85  ^90

=======  =====  ===============================  ====================================
columns  sym    field                            Call / datamart
=======  =====  ===============================  ====================================
1        z      long call: blank <5 min, ``-``   checked
                5-9:59, ``%`` 10-29:59, ``+`` 30+
2-6      mm/dd  date (no year)                   ``start`` (year: see ``today``)
8-12     hh:mm  start time (00-23, or 00-12)     ``start`` (minutes; seconds 0)
13       p      ``P``/``p`` = PM (12-hour
                clock), blank otherwise
15-22    hh:mm  duration hh:mm:ss                ``duration``; ``billable`` when
         :ss                                     answered → ``duration`` (minutes)
24-27    pppp   calling party: station, ``Tnnn`` trunk → inbound, ``trunk``; station →
                CO trunk, ``Xnnn`` non-CO trunk, ``calling`` → ``orig_number``
                ``ATTm`` / ``ATmm`` attendant
29       f      ``*`` attendant involved         —
30-32    ttt    time to answer (s), ``***``      ``***``: not answered
                unanswered
34-59    x…x    digits dialed on the trunk (26;  ``dialled`` → ``dialed_number``;
                34-54, 21 digits, with meter     outbound: also ``called`` →
                pulses)                          ``term_number``
55-59    mmmmm  meter pulses (``meter_pulses``)  —
60       h      call completion status: ``A``    ``status``; ``B``/``E``: not
                answer supervision, ``B`` busy,  answered
                ``E`` error/invalid, ``T`` toll
                reversal / TAFAS, blank …
61       s      ``S`` speed call, ``F`` forward  —
62-65    qqqq   called party: station, trunk,    trunk → outbound, ``trunk``;
                attendant                        station → ``called``
66       k      ``T`` transfer, ``C`` conference —
68-71    rrrr   third party (transfer/conf.)     —
73-84    a…a    account code                     ``account`` → ``idacc.ldacc``
85       s      route optimization flag          —
86-88    iii    system identifier                —
92-101   a…a    ANI (ANI/DNIS reporting on)      inbound: ``calling`` →
                                                 ``orig_number``
103-112  d…d    DNIS (ANI/DNIS reporting on)     —
=======  =====  ===============================  ====================================

``answered`` = completion status not ``B`` / ``E``, time to answer not ``***``, and a
duration above 0.  A call between two stations is ``internal``.  A record must reach
the called party (column 62, and a party set there when the line ends before column
65: a logger that strips trailing blanks leaves a one-digit station at column 62 as
the line's last character, and that call is read, not lost); a shorter line, or a
blank where a spacer (7, 14, 23) belongs, is rejected, so a line in another layout (Extended Digit
Length) is rejected rather than misread.  ``call_id`` is empty: the standard record
has no call identifier.

SMDR gives no year: a record's year is the latest one that puts its date no later
than ``today`` + 1 day (``today`` defaults to the current date in ``tz``), so a file
read soon after it was written — as a collector does — dates every record right.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta, tzinfo

from starwrs.collector.readers._common import (
    RecordError,
    Source,
    drive,
    local_to_utc,
    parse_hms,
    zone,
)
from starwrs.collector.readers.model import Call, Direction, Rejection

FORMAT = "mitel"
#: the standard record's width, and with ANI/DNIS reporting
WIDTH = 90
WIDTH_ANI = 112
#: a record must reach the called party (columns 62-65) and, if shorter than the
#: field, hold a party there
MIN_WIDTH = 62
CALLED_END = 65
LONG_CALL_MARKS = " -%+"

_DATE = re.compile(r"([0-9]{2})/([0-9]{2})")
_TIME = re.compile(r"([0-9]{2}):([0-9]{2})")
_PARTY = re.compile(r"[0-9*#]+|[TX][0-9]+|AT(?:T[0-9]|[0-9]{2})")
_TRUNK = re.compile(r"[TX][0-9]+")
_DIALLED = re.compile(r"[0-9*# ]*")
_ANSWER_TIME = re.compile(r"[0-9]{3}|\*\*\*| {3}")
_STATUS = re.compile(r"[A-Z ]")
#: how many years back a date may lie
_YEARS_BACK = 8


def col(line: str, first: int, last: int) -> str:
    """Columns *first*..*last* (1-based, inclusive) of a record."""
    return line[first - 1 : last]


def read(
    source: Source,
    *,
    tz: str | tzinfo | None,
    name: str = "-",
    today: date | None = None,
    meter_pulses: bool = False,
) -> Iterator[Call | Rejection]:
    """Read Mitel SMDR lines (see the module docstring); lazy, one record per line.

    Raises:
        ValueError: *tz* missing or unknown (the file is not touched).
    """
    local = zone(tz, FORMAT)
    reference = today if today is not None else datetime.now(local).date()

    def parse(lineno: int, text: str) -> Call:
        return _call(text, local, reference, meter_pulses, name, lineno)

    return drive(source, name, parse)


def infer_year(month: int, day: int, today: date) -> date:
    """The latest date with this month and day no later than *today* + 1 day."""
    latest = today + timedelta(days=1)
    for year in range(latest.year, latest.year - _YEARS_BACK, -1):
        try:
            found = date(year, month, day)
        except ValueError:
            continue
        if found <= latest:
            return found
    raise RecordError(f"no date {month:02}/{day:02}")


def _party(value: str, what: str) -> str:
    party = value.strip()
    if party and not _PARTY.fullmatch(party):
        raise RecordError(f"{what} is not a station, trunk or attendant: {party!r}")
    return party


def _call(
    text: str, local: tzinfo, today: date, meter_pulses: bool, name: str, lineno: int
) -> Call:
    if len(text) < MIN_WIDTH or (len(text) < CALLED_END and not text[MIN_WIDTH - 1 :].strip()):
        raise RecordError(
            f"record ends at column {len(text)}; SMDR records reach the called party "
            f"(column {MIN_WIDTH})"
        )
    line = text.ljust(WIDTH_ANI)
    if col(line, 1, 1) not in LONG_CALL_MARKS:
        raise RecordError(f"column 1 is not a long-call mark: {col(line, 1, 1)!r}")
    for spacer in (7, 14, 23):
        if col(line, spacer, spacer) != " ":
            raise RecordError(f"column {spacer} is not blank (not a standard SMDR record)")
    found = _DATE.fullmatch(col(line, 2, 6))
    if found is None:
        raise RecordError(f"date is not mm/dd: {col(line, 2, 6)!r}")
    day = infer_year(int(found.group(1)), int(found.group(2)), today)
    found = _TIME.fullmatch(col(line, 8, 12))
    if found is None:
        raise RecordError(f"start time is not hh:mm: {col(line, 8, 12)!r}")
    hour, minute = int(found.group(1)), int(found.group(2))
    if col(line, 13, 13) in "Pp":
        if not 1 <= hour <= 12:
            raise RecordError(f"PM hour {hour} is not 01-12")
        hour = hour % 12 + 12
    elif col(line, 13, 13) != " ":
        raise RecordError(f"column 13 is not P or blank: {col(line, 13, 13)!r}")
    if hour > 23 or minute > 59:
        raise RecordError(f"start time {hour:02}:{minute:02} is not a time of day")
    start = local_to_utc(datetime(day.year, day.month, day.day, hour, minute), local)
    if col(line, 15, 22) == "99:99:99":
        raise RecordError("duration is 100 hours or more (99:99:99)")
    duration = parse_hms(col(line, 15, 22), "duration")
    calling = _party(col(line, 24, 27), "calling party")
    if not calling:
        raise RecordError("calling party is blank")
    if col(line, 29, 29) not in " *":
        raise RecordError(f"attendant flag is not * or blank: {col(line, 29, 29)!r}")
    answer_time = col(line, 30, 32)
    if not _ANSWER_TIME.fullmatch(answer_time):
        raise RecordError(f"time to answer is not 000-999 or ***: {answer_time!r}")
    digits_end = 54 if meter_pulses else 59
    if not _DIALLED.fullmatch(col(line, 34, digits_end)):
        raise RecordError(f"digits dialed are not 0-9 * #: {col(line, 34, digits_end).strip()!r}")
    dialled = col(line, 34, digits_end).strip()
    if meter_pulses and not col(line, 55, 59).strip().isdigit() and col(line, 55, 59).strip():
        raise RecordError(f"meter pulses are not a number: {col(line, 55, 59)!r}")
    status = col(line, 60, 60)
    if not _STATUS.fullmatch(status):
        raise RecordError(f"call completion status is not a letter: {status!r}")
    status = status.strip()
    called = _party(col(line, 62, 65), "called party")
    ani = col(line, 92, 101).strip() if col(line, 91, 91) == " " else ""
    if _TRUNK.fullmatch(calling):
        direction, trunk = Direction.INBOUND, calling
        calling_number, called_number = ani, called or dialled
    elif _TRUNK.fullmatch(called):
        direction, trunk = Direction.OUTBOUND, called
        calling_number, called_number = calling, dialled
    else:
        direction, trunk = Direction.INTERNAL, ""
        calling_number, called_number = calling, called or dialled
    answered = status not in ("B", "E") and answer_time != "***" and duration > 0
    return Call(
        start=start,
        answered=answered,
        duration=duration,
        billable=duration if answered else 0,
        calling=calling_number,
        called=called_number,
        dialled=dialled,
        direction=direction,
        account=col(line, 73, 84).strip(),
        trunk=trunk,
        call_id="",
        status=status,
        source=FORMAT,
        file=name,
        line=lineno,
    )
