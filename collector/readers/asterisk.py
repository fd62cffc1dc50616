"""Asterisk ``cdr_csv``: ``/var/log/asterisk/cdr-csv/Master.csv``.

Theory of operation
-------------------
``cdr_csv`` appends one line per CDR, fields in a fixed order: every text field in
double quotes (a quote inside doubled), ``duration``, ``billsec`` and ``sequence`` as
bare integers, an unset time as an empty bare field.  ``cdr.conf``'s ``[csv]`` section
decides which optional fields follow the 16 base ones, always in this order (``#``
counts with every option on):

====  ============  ===================  =========================================
#     field         written when          Call / datamart
====  ============  ===================  =========================================
1     accountcode   always                ``account`` → ``idacc.ldacc``
2     src           always                ``calling`` → ``orig_number`` (empty src:
                                          the number in clid's ``<…>``)
3     dst           always                ``called`` and ``dialled`` →
                                          ``term_number``, ``dialed_number``
4     dcontext      always                —
5     clid          always                (``calling`` when src is empty)
6     channel       always                ``trunk`` for inbound / internal calls
7     dstchannel    always                ``trunk`` for outbound calls
8     lastapp       always                —
9     lastdata      always                —
10    start         always                ``start`` → ``gmt`` / ``lst``
11    answer        always (empty: not    checked, not kept
                    answered)
12    end           always                checked, not kept
13    duration      always                ``duration`` (s)
14    billsec       always                ``billable`` (s) → ``duration`` (minutes)
15    disposition   always                ``status``; ``answered`` = ``ANSWERED``
                                          (``NO ANSWER``, ``BUSY``, ``FAILED``,
                                          ``CONGESTION``: billable 0)
16    amaflags      always                —
17    uniqueid      ``loguniqueid=yes``   ``call_id``
18    userfield     ``loguserfield=yes``  —
19    peeraccount   ``newcdrcolumns=yes`` —
20    linkedid      ``newcdrcolumns=yes`` ``call_id`` when no uniqueid is logged
21    sequence      ``newcdrcolumns=yes`` checked (an integer), not kept
====  ============  ===================  =========================================

Times are the PBX's local time (``tz``), or GMT with ``usegmtime=yes`` (``tz="UTC"``).
``direction`` is not in the record: it follows from the numbers
(``_common.guess_direction``: an extension has at most ``max_extension_digits``
digits).  All fields are stripped of blanks (padding), inside quotes too.

The layout is given by ``uniqueid`` / ``userfield`` / ``newcdrcolumns`` (True/False);
each left None is inferred per record from its field count (16 to 21).  Only 17 and 20
fields are ambiguous (uniqueid or userfield): field 17 is taken as a uniqueid when it
looks like one (``1700000000.42``, or ``host-1700000000.42``), else as the userfield.
A record whose field count fits no allowed layout is rejected.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import tzinfo

from starwrs.collector.readers._common import (
    RecordError,
    Source,
    drive,
    guess_direction,
    parse_count,
    parse_local,
    split_csv,
    zone,
)
from starwrs.collector.readers.model import Call, Direction, Rejection

FORMAT = "asterisk"
BASE_FIELDS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
)
DISPOSITIONS = frozenset({"ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"})
#: cdr_csv's DATE_FORMAT
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_UNIQUEID = re.compile(r"(?:[\w.-]+-)?[0-9]{9,}\.[0-9]+")
_CLID_NUMBER = re.compile(r"<([^<>]*)>\s*$")


@dataclass(frozen=True, slots=True)
class Layout:
    """Which optional ``[csv]`` fields a Master.csv carries."""

    uniqueid: bool
    userfield: bool
    newcdrcolumns: bool

    @property
    def fields(self) -> tuple[str, ...]:
        names = list(BASE_FIELDS)
        if self.uniqueid:
            names.append("uniqueid")
        if self.userfield:
            names.append("userfield")
        if self.newcdrcolumns:
            names += ["peeraccount", "linkedid", "sequence"]
        return tuple(names)


LAYOUTS = tuple(Layout(*flags) for flags in itertools.product((False, True), repeat=3))


def looks_like_uniqueid(value: str) -> bool:
    """Whether a field 17 reads as an Asterisk uniqueid (epoch.sequence)."""
    return _UNIQUEID.fullmatch(value) is not None


def read(
    source: Source,
    *,
    tz: str | tzinfo | None,
    name: str = "-",
    uniqueid: bool | None = None,
    userfield: bool | None = None,
    newcdrcolumns: bool | None = None,
    max_extension_digits: int = 6,
) -> Iterator[Call | Rejection]:
    """Read a Master.csv (see the module docstring); lazy, one record per line.

    Raises:
        ValueError: *tz* missing or unknown (the file is not touched).
    """
    parse = parser(
        tz=tz,
        name=name,
        uniqueid=uniqueid,
        userfield=userfield,
        newcdrcolumns=newcdrcolumns,
        max_extension_digits=max_extension_digits,
    )
    return drive(source, name, parse)


def allowed_layouts(
    uniqueid: bool | None, userfield: bool | None, newcdrcolumns: bool | None
) -> list[tuple[Layout, tuple[str, ...]]]:
    """The layouts (and their field names) the ``[csv]`` options given allow."""
    return [
        (layout, layout.fields)
        for layout in LAYOUTS
        if uniqueid in (None, layout.uniqueid)
        and userfield in (None, layout.userfield)
        and newcdrcolumns in (None, layout.newcdrcolumns)
    ]


def parser(
    *,
    tz: str | tzinfo | None,
    name: str = "-",
    uniqueid: bool | None = None,
    userfield: bool | None = None,
    newcdrcolumns: bool | None = None,
    max_extension_digits: int = 6,
) -> Callable[[int, str], Call]:
    """The per-line parse :func:`read` drives (``_common.drive``): one record's text to
    its :class:`Call`, or :class:`RecordError` with the reason.

    Raises:
        ValueError: *tz* missing or unknown.
    """
    local = zone(tz, FORMAT)
    allowed = allowed_layouts(uniqueid, userfield, newcdrcolumns)
    counts = sorted({len(names) for _, names in allowed})

    def parse(lineno: int, text: str) -> Call:
        fields = [field.strip() for field in split_csv(text)]
        fits = [fit for fit in allowed if len(fit[1]) == len(fields)]
        if not fits:
            wanted = " or ".join(str(count) for count in counts)
            raise RecordError(f"{len(fields)} fields; a Master.csv record has {wanted}")
        _, names = fits[0]
        if len(fits) > 1:  # uniqueid or userfield in field 17
            wants_uniqueid = looks_like_uniqueid(fields[16])
            _, names = next(fit for fit in fits if fit[0].uniqueid == wants_uniqueid)
        values = dict(zip(names, fields, strict=True))
        return _call(values, local, name, lineno, max_extension_digits)

    return parse


def _call(
    values: dict[str, str], local: tzinfo, name: str, lineno: int, max_extension_digits: int
) -> Call:
    if not values["start"]:
        raise RecordError("start time is empty")
    start = parse_local(values["start"], TIME_FORMAT, local, "start")
    if values["answer"]:
        parse_local(values["answer"], TIME_FORMAT, local, "answer")
    if not values["end"]:
        raise RecordError("end time is empty")
    parse_local(values["end"], TIME_FORMAT, local, "end")
    duration = parse_count(values["duration"], "duration")
    billsec = parse_count(values["billsec"], "billsec")
    disposition = values["disposition"]
    if disposition not in DISPOSITIONS:
        raise RecordError(f"unknown disposition {disposition[:40]!r}")
    if "sequence" in values:
        parse_count(values["sequence"], "sequence")
    answered = disposition == "ANSWERED"
    calling = values["src"]
    if not calling:
        found = _CLID_NUMBER.search(values["clid"])
        calling = found.group(1).strip() if found else ""
    called = values["dst"]
    direction = guess_direction(calling, called, max_extension_digits)
    trunk = values["dstchannel"] if direction is Direction.OUTBOUND else values["channel"]
    call_id = values.get("uniqueid") or values.get("linkedid", "")
    return Call(
        start=start,
        answered=answered,
        duration=duration,
        billable=billsec if answered else 0,
        calling=calling,
        called=called,
        dialled=called,
        direction=direction,
        account=values["accountcode"],
        trunk=trunk,
        call_id=call_id,
        status=disposition,
        source=FORMAT,
        file=name,
        line=lineno,
    )
