"""Avaya IP Office SMDR, comma-separated: the records IP Office sends to its SMDR
TCP port (one per line, no header) or the CSV files a Delta Server / SMDR logger
writes (the first line names the fields).

Theory of operation
-------------------
One record per call segment, fields bare (not quoted), in this fixed order; a call
that moves between devices gives several records with one ``Call ID``, every segment
but the last with ``Continuation`` 1.  Releases add fields at the end (17 in the
oldest, 30 since 4.x, more in 9.x-11.x: server IP addresses, unique call ids, record
time); the reader needs the first 17 and ignores the rest.  When a header line
(first field ``Call Start``) is present, every record must have its field count;
without one, any count from 17 up is read.  A header seen again later starts over.

====  ======================  ===================  ===========================
#     IP Office field         Call                 datamart
====  ======================  ===================  ===========================
1     Call Start              ``start`` (local     ``gmt`` / ``lst``
      YYYY/MM/DD HH:MM:SS     time, ``tz``)
2     Connected Time          ``billable`` (s);    ``duration`` (minutes)
      HH:MM:SS                ``answered`` = > 0
3     Ring Time (s)           ``duration`` = connected + ring + hold + park
4     Caller                  ``calling``          ``orig_number``
5     Direction I / O         ``direction``        ``access_type.in_out``
6     Called Number           ``called``           ``term_number``
7     Dialled Number          ``dialled``          ``dialed_number``
8     Account                 ``account``          ``idacc.ldacc``
9     Is Internal 0 / 1       1: ``internal``      (not loaded)
10    Call ID                 ``call_id``          —
11    Continuation 0 / 1      checked              —
12    Party1Device            ``trunk`` when it is a line (``T…``)
13    Party1Name              —
14    Party2Device            ``trunk`` when it is a line and Party1Device is not
15    Party2Name              —
16    Hold Time (s)           in ``duration``
17    Park Time (s)           in ``duration``
18…   AuthValid, AuthCode,    —
      User Charged, Call
      Charge, Currency, …
====  ======================  ===================  ===========================

IP Office marks an internal call ``O`` with Is Internal 1: Is Internal decides first.
``status`` is empty (SMDR has no completion code).  A name containing a comma cannot
be told from a field separator (IP Office does not quote): such a record is rejected
when its header fixes the count, and may be misread without one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import tzinfo

from starwrs.collector.readers._common import (
    RecordError,
    Source,
    drive,
    parse_count,
    parse_hms,
    parse_local,
    split_csv,
    zone,
)
from starwrs.collector.readers.model import Call, Direction, Rejection

FORMAT = "avaya"
#: the field names of the 30-field record, as a Delta Server header writes them
FIELDS = (
    "Call Start",
    "Connected Time",
    "Ring Time",
    "Caller",
    "Direction",
    "Called Number",
    "Dialled Number",
    "Account",
    "Is Internal",
    "Call ID",
    "Continuation",
    "Party1Device",
    "Party1Name",
    "Party2Device",
    "Party2Name",
    "Hold Time",
    "Park Time",
    "AuthValid",
    "AuthCode",
    "User Charged",
    "Call Charge",
    "Currency",
    "Amount at Last User Change",
    "Call Units",
    "Units at Last User Change",
    "Cost per Unit",
    "Mark Up",
    "External Targeting Cause",
    "External Targeter Id",
    "External Targeted Number",
)
#: fields the reader needs
MIN_FIELDS = 17
TIME_FORMAT = "%Y/%m/%d %H:%M:%S"
_DIRECTIONS = {"I": Direction.INBOUND, "O": Direction.OUTBOUND}


def read(source: Source, *, tz: str | tzinfo | None, name: str = "-") -> Iterator[Call | Rejection]:
    """Read IP Office SMDR CSV (see the module docstring); lazy, one record per line.

    Raises:
        ValueError: *tz* missing or unknown (the file is not touched).
    """
    local = zone(tz, FORMAT)
    expected: int | None = None  # the header's field count

    def parse(lineno: int, text: str) -> Call | None:
        nonlocal expected
        fields = [field.strip() for field in split_csv(text)]
        if fields[0].replace(" ", "").replace("_", "").lower() == "callstart":
            if len(fields) < MIN_FIELDS:
                expected = None
                raise RecordError(f"header names {len(fields)} fields; SMDR has {MIN_FIELDS}+")
            expected = len(fields)
            return None
        if expected is not None and len(fields) != expected:
            raise RecordError(f"{len(fields)} fields; the header names {expected}")
        if len(fields) < MIN_FIELDS:
            raise RecordError(f"{len(fields)} fields; an SMDR record has {MIN_FIELDS} or more")
        return _call(fields, local, name, lineno)

    return drive(source, name, parse)


def _flag(value: str, what: str) -> bool:
    if value not in ("0", "1"):
        raise RecordError(f"{what} is not 0 or 1: {value[:40]!r}")
    return value == "1"


def _call(fields: list[str], local: tzinfo, name: str, lineno: int) -> Call:
    start = parse_local(fields[0], TIME_FORMAT, local, "Call Start")
    connected = parse_hms(fields[1], "Connected Time")
    ring = parse_count(fields[2], "Ring Time")
    hold = parse_count(fields[15], "Hold Time")
    park = parse_count(fields[16], "Park Time")
    direction = _DIRECTIONS.get(fields[4])
    if direction is None:
        raise RecordError(f"Direction is not I or O: {fields[4][:40]!r}")
    if _flag(fields[8], "Is Internal"):
        direction = Direction.INTERNAL
    call_id = fields[9]
    parse_count(call_id, "Call ID")
    _flag(fields[10], "Continuation")
    trunk = next((device for device in (fields[11], fields[13]) if device.startswith("T")), "")
    return Call(
        start=start,
        answered=connected > 0,
        duration=connected + ring + hold + park,
        billable=connected,
        calling=fields[3],
        called=fields[5],
        dialled=fields[6],
        direction=direction,
        account=fields[7],
        trunk=trunk,
        call_id=call_id,
        status="",
        source=FORMAT,
        file=name,
        line=lineno,
    )
