"""Cisco Unified Communications Manager CDR flat files (``cdr_<cluster>_<node>_<UTC
yyyymmddhhmm>_<seq>``), as the CDR Repository Manager pushes them to a billing server.

Theory of operation
-------------------
A flat file is comma-separated: line 1 names the fields (quoted:
``"cdrRecordType","globalCallID_callManagerId",…``), line 2 gives their types
(``INTEGER,INTEGER,…,VARCHAR(50),…,UNIQUEIDENTIFIER``), every later line is one record
with text fields quoted and integers bare.  The reader takes the columns it needs *by
name* from the header, so any CUCM release's field list (and order) reads; a header
line seen again later (files concatenated) starts over.  A record must have as many
fields as the header names.  ``cdrRecordType`` 1 is a CDR; 2 (a CMR, the diagnostic
record of CMR files or mixed files) and 0 (a start record, never written) carry no
billing data and are skipped, not rejected.

All times are seconds since 1970, UTC: ``tz`` is not needed.  ``dateTimeConnect`` 0
means the call was never connected.

==============================  ===================  ============================
CUCM field                      Call                 datamart
==============================  ===================  ============================
dateTimeOrigination             ``start``            ``gmt`` / ``lst``
dateTimeConnect ≠ 0             ``answered``         —
dateTimeDisconnect -            ``duration`` (s)     —
dateTimeOrigination
duration (connect → disconnect) ``billable`` (s)     ``duration`` (minutes)
callingPartyNumber              ``calling``          ``orig_number``
finalCalledPartyNumber          ``called``           ``term_number``
originalCalledPartyNumber       ``dialled``          ``dialed_number``
— (from the numbers)            ``direction``        ``access_type.in_out``
clientMatterCode (optional)     ``account``          ``idacc.ldacc``
destDeviceName (outbound) /     ``trunk``            ``access_type``
origDeviceName (optional)
globalCallID_callManagerId      ``call_id``          —
``-`` globalCallID_callId
destCause_value (optional)      ``status``           — (Q.850 cause: 16 normal,
                                                     17 busy, 0 none)
==============================  ===================  ============================

``direction`` is not a CDR field: it follows from the numbers (at most
``max_extension_digits`` digits is a directory number on the cluster, see
``_common.guess_direction``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from starwrs.collector.readers._common import (
    RecordError,
    Source,
    drive,
    guess_direction,
    parse_count,
    split_csv,
    utc_from_epoch,
)
from starwrs.collector.readers.model import Call, Direction, Rejection

FORMAT = "cucm"
REQUIRED = (
    "cdrRecordType",
    "globalCallID_callManagerId",
    "globalCallID_callId",
    "dateTimeOrigination",
    "dateTimeConnect",
    "dateTimeDisconnect",
    "callingPartyNumber",
    "originalCalledPartyNumber",
    "finalCalledPartyNumber",
    "duration",
)
OPTIONAL = ("clientMatterCode", "origDeviceName", "destDeviceName", "destCause_value")
#: cdrRecordType values that are not CDRs: 0 start record (unused), 2 CMR
SKIPPED_TYPES = frozenset({0, 2})
_HEADER_NAMES = ("cdrrecordtype", "cmrrecordtype")
_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_ ]*(\([0-9, ]+\))?")
#: CUCM writes times as unsigned 32-bit seconds
_LAST_EPOCH = 2**32 - 1


class _Header:
    """The current field-name header: column positions by (lower-case) name."""

    def __init__(self, names: list[str]) -> None:
        self.count = len(names)
        self.index = {field.strip().lower(): pos for pos, field in enumerate(names)}
        self.missing = [field for field in REQUIRED if field.lower() not in self.index]
        self.types_pending = True

    def get(self, fields: list[str], field: str) -> str:
        pos = self.index.get(field.lower())
        return "" if pos is None else fields[pos].strip()


def read(
    source: Source, *, name: str = "-", max_extension_digits: int = 6
) -> Iterator[Call | Rejection]:
    """Read a CUCM CDR flat file (see the module docstring); lazy, one record per line."""
    header: _Header | None = None

    def parse(lineno: int, text: str) -> Call | None:
        nonlocal header
        fields = split_csv(text)
        if fields[0].strip().lower() in _HEADER_NAMES:
            header = _Header(fields)
            return None
        if header is None:
            raise RecordError("record before the CUCM field-name header line")
        if header.types_pending:
            header.types_pending = False
            if len(fields) == header.count and all(_TYPE.fullmatch(f.strip()) for f in fields):
                return None
            raise RecordError("expected the field-type header line after the field names")
        if len(fields) != header.count:
            raise RecordError(f"{len(fields)} fields; the header names {header.count}")
        record_type = parse_count(header.get(fields, "cdrRecordType"), "cdrRecordType")
        if record_type in SKIPPED_TYPES:
            return None
        if record_type != 1:
            raise RecordError(f"unknown cdrRecordType {record_type}")
        if header.missing:
            raise RecordError("the header lacks " + ", ".join(header.missing))
        return _call(header, fields, name, lineno, max_extension_digits)

    return drive(source, name, parse)


def _epoch(text: str, what: str) -> int:
    seconds = parse_count(text, what)
    if seconds > _LAST_EPOCH:
        raise RecordError(f"{what} is past 2106: {seconds}")
    return seconds


def _call(
    header: _Header, fields: list[str], name: str, lineno: int, max_extension_digits: int
) -> Call:
    def get(field: str) -> str:
        return header.get(fields, field)

    origination = _epoch(get("dateTimeOrigination"), "dateTimeOrigination")
    if origination == 0:
        raise RecordError("dateTimeOrigination is 0")
    connect = _epoch(get("dateTimeConnect"), "dateTimeConnect")
    disconnect = _epoch(get("dateTimeDisconnect"), "dateTimeDisconnect")
    if disconnect < origination:
        raise RecordError("dateTimeDisconnect is before dateTimeOrigination")
    if connect and not origination <= connect <= disconnect:
        raise RecordError("dateTimeConnect is outside origination..disconnect")
    duration = parse_count(get("duration"), "duration")
    manager = parse_count(get("globalCallID_callManagerId"), "globalCallID_callManagerId")
    call = parse_count(get("globalCallID_callId"), "globalCallID_callId")
    calling = get("callingPartyNumber")
    called = get("finalCalledPartyNumber")
    direction = guess_direction(calling, called, max_extension_digits)
    trunk_field = "destDeviceName" if direction is Direction.OUTBOUND else "origDeviceName"
    return Call(
        start=utc_from_epoch(origination),
        answered=connect != 0,
        duration=disconnect - origination,
        billable=duration if connect else 0,
        calling=calling,
        called=called,
        dialled=get("originalCalledPartyNumber"),
        direction=direction,
        account=get("clientMatterCode"),
        trunk=get(trunk_field),
        call_id=f"{manager}-{call}",
        status=get("destCause_value"),
        source=FORMAT,
        file=name,
        line=lineno,
    )
