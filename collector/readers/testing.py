"""Hypothesis strategies that *write* valid CDR files of the four formats, for our
tests and for yours (requires ``hypothesis``, a test extra)::

    from hypothesis import given
    from starwrs.collector.readers import read
    from starwrs.collector.readers.testing import samples

    @given(samples("asterisk"))
    def test_my_pipeline(sample):
        assert list(read(sample.data, sample.format, **sample.options)) == sample.expected()

Theory of operation
-------------------
Each ``<format>_rows`` strategy first draws a :class:`Call` the format can express
(its direction, numbers and durations consistent with the reader's documented
mapping), then writes that call as a record of the format, drawing every field the
Call does not keep (names, channels, device names, flags, padding) at random.  A
:class:`Sample` is the file: its rows (header lines, records, skipped records such as
CUCM CMRs, blank lines), each with its line end (LF or CRLF; the last one sometimes
missing), and the reader options it needs.  ``expected()`` is what a reader must
yield for it; tests insert garbage rows or cut rows and re-render with
:meth:`Sample.with_rows`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st
from starwrs.collector.readers import asterisk, avaya, cucm
from starwrs.collector.readers._common import RecordError, local_to_utc
from starwrs.collector.readers.model import Call, Direction

__all__ = ["ZONES", "Row", "Sample", "samples"]

#: zones the samples use: no DST, US and European DST, a half-hour offset, a
#: half-hour DST shift
ZONES = ("UTC", "America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Lord_Howe")

Draw = Any  # hypothesis' draw function


@dataclass(frozen=True)
class Row:
    """One line of a sample file: its bytes (no line end), its line end, and the
    call it must read as (None: a header, a skipped record, a blank line)."""

    text: bytes
    eol: bytes = b"\n"
    call: Call | None = None


@dataclass(frozen=True)
class Sample:
    """A CDR file written by a strategy, and what reading it must give."""

    format: str
    rows: tuple[Row, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    name: str = "sample"

    @property
    def data(self) -> bytes:
        return b"".join(row.text + row.eol for row in self.rows)

    def expected(self) -> list[Call]:
        """The calls, with the file name and the line numbers they are on."""
        return [
            dataclasses.replace(row.call, file=self.name, line=number)
            for number, row in enumerate(self.rows, start=1)
            if row.call is not None
        ]

    def with_rows(self, rows: Sequence[Row]) -> Sample:
        """The same file with other rows (every row but the last ends its line)."""
        fixed = [
            row if row.eol or i == len(rows) - 1 else dataclasses.replace(row, eol=b"\n")
            for i, row in enumerate(rows)
        ]
        return dataclasses.replace(self, rows=tuple(fixed))

    def read_options(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}


# -- building blocks ---------------------------------------------------------------

_PLACEHOLDER = {"source": "", "file": "", "line": 0}

stations = st.integers(1, 99999).map(str)
#: public numbers: NANP with and without the 1, an access code, E.164, 011
_nanp = st.builds(
    "{}{}{:04}".format, st.integers(200, 999), st.integers(200, 999), st.integers(0, 9999)
)
public_numbers = st.one_of(
    _nanp,
    _nanp.map("1{}".format),
    _nanp.map("91{}".format),
    st.integers(10**7, 10**14 - 1).map("+{}".format),
    st.builds("011{}{}".format, st.integers(2, 9), st.integers(10**6, 10**11)),
)
#: callers: a public number, or none (withheld)
callers = st.one_of(public_numbers, st.just(""))
_outbound_callers = st.one_of(stations, public_numbers)
digit_strings = {n: st.text("0123456789", max_size=n) for n in (8, 10, 12)}
_ANY_CHAR = st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r\x00")
#: free text as a PBX may write it: quotes, commas, angle brackets, all of Unicode
free_text = st.text(st.one_of(st.sampled_from("\",<> 'x"), _ANY_CHAR), max_size=8).filter(
    lambda text: text == text.strip()
)
#: text for formats that neither quote nor escape (no comma, no quote at the start)
bare_text = st.text(st.sampled_from("abcXYZ0123456789 .-_*#/+"), min_size=0, max_size=10).filter(
    lambda text: text == text.strip() and not text.startswith('"')
)


def _local(instant: datetime, zone: tzinfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _unambiguous(instant: datetime, zone: tzinfo) -> bool:
    """The instant's wall-clock time reads back as the same instant."""
    try:
        return local_to_utc(_local(instant, zone), zone) == instant
    except RecordError:
        return False


@functools.lru_cache(maxsize=64)
def starts(
    zone: tzinfo,
    *,
    minute: bool = False,
    first: datetime = datetime(2000, 1, 1),
    last: datetime = datetime(2037, 12, 31),
) -> st.SearchStrategy[datetime]:
    """Aware UTC start instants (whole seconds, or minutes) from *first* to *last*
    (naive, UTC) whose local time is unambiguous."""
    instants = st.datetimes(min_value=first, max_value=last, timezones=st.just(UTC)).map(
        lambda t: t.replace(microsecond=0, second=0 if minute else t.second)
    )
    return instants.filter(lambda t: _unambiguous(t, zone))


@st.composite
def durations(draw: Draw, most: int = 200_000, least: int = 0) -> tuple[bool, int, int]:
    """(answered, duration, billable) with billable <= duration, 0 when unanswered;
    an answered call bills at least *least* seconds."""
    answered = draw(st.booleans())
    duration = draw(st.integers(least if answered else 0, most))
    billable = draw(st.integers(least, duration)) if answered else 0
    return answered, duration, billable


@st.composite
def parties(draw: Draw, direction: Direction) -> tuple[str, str]:
    """(calling, called) that the number rule reads as *direction*."""
    if direction is Direction.INTERNAL:
        return draw(stations), draw(stations)
    if direction is Direction.INBOUND:
        return draw(callers), draw(stations)
    return draw(_outbound_callers), draw(public_numbers)


def _call(**values: Any) -> Call:
    return Call(**{**_PLACEHOLDER, **values})


@st.composite
def _assemble(draw: Draw, fmt: str, rows: list[Row], options: Mapping[str, Any]) -> Sample:
    """Line ends, blank lines, a byte-order mark, the missing last newline."""
    out: list[Row] = []
    for row in rows:
        if draw(st.integers(0, 9)) == 0:
            out.append(Row(draw(st.sampled_from([b"", b"  ", b"\t"]))))
        out.append(dataclasses.replace(row, eol=draw(st.sampled_from([b"\n", b"\r\n"]))))
    if out and draw(st.booleans()):
        out[-1] = dataclasses.replace(out[-1], eol=b"")
    if out and draw(st.integers(0, 9)) == 0:
        out[0] = dataclasses.replace(out[0], text=b"\xef\xbb\xbf" + out[0].text)
    return Sample(fmt, tuple(out), dict(options))


# -- Asterisk ----------------------------------------------------------------------


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


_hosts = st.builds(
    "{}{}".format, st.sampled_from("abcpbx"), st.text("abcdefxyz0123456789", max_size=6)
)
_userfields = free_text.filter(lambda text: not asterisk.looks_like_uniqueid(text))
_amaflags = st.sampled_from(["DOCUMENTATION", "BILLING", "OMIT", "DEFAULT"])
_unanswered = st.sampled_from(sorted(asterisk.DISPOSITIONS - {"ANSWERED"}))
_pads = st.sampled_from(["", " ", "  "])
_contexts = st.sampled_from(["from-internal", "from-trunk", "ext-local", "", "macro-dial"])
_apps = st.sampled_from(["Dial", "Queue", "VoiceMail", "Hangup", ""])
_app_data = st.sampled_from(["SIP/trunk/15551234567,60,tT", "PJSIP/2001,30", '"quoted",x', ""])
_separators = st.sampled_from([",", ", ", " ,"])


@st.composite
def asterisk_rows(draw: Draw, layout: asterisk.Layout, zone: tzinfo) -> Row:
    direction = draw(st.sampled_from(Direction))
    calling, called = draw(parties(direction))
    answered, duration, billable = draw(durations())
    start = draw(starts(zone))
    channel, dstchannel = draw(free_text), draw(free_text)
    disposition = "ANSWERED" if answered else draw(_unanswered)
    uniqueid = f"{draw(st.integers(10**9, 2 * 10**9))}.{draw(st.integers(0, 9999))}"
    if draw(st.booleans()):
        uniqueid = f"{draw(_hosts)}-{uniqueid}"
    linkedid = uniqueid if draw(st.booleans()) else draw(free_text)
    userfield = draw(_userfields)
    call_id = uniqueid if layout.uniqueid else (linkedid if layout.newcdrcolumns else "")
    account = draw(free_text)
    call = _call(
        start=start, answered=answered, duration=duration, billable=billable,
        calling=calling, called=called, dialled=called, direction=direction,
        account=account, trunk=dstchannel if direction is Direction.OUTBOUND else channel,
        call_id=call_id, status=disposition, source="asterisk",
    )  # fmt: skip
    src, clid = calling, draw(free_text)
    if not calling:
        clid = draw(st.sampled_from(['"Anonymous" <>', "", "Anonymous"]))
    elif draw(st.booleans()):  # src empty: the number comes from clid
        src, clid = "", f"{_quote(draw(free_text))} <{calling}>"
    pad = draw(_pads)

    def time(instant: datetime | None) -> str:
        if instant is None:
            return ""
        return _quote(f"{pad}{_local(instant, zone):%Y-%m-%d %H:%M:%S}{pad}")

    answer = start + timedelta(seconds=duration - billable) if answered else None
    fields = [_quote(account), _quote(pad + src + pad), _quote(called), _quote(draw(_contexts)),
              _quote(clid), _quote(channel), _quote(dstchannel), _quote(draw(_apps)),
              _quote(draw(_app_data)), time(start), time(answer),
              time(start + timedelta(seconds=duration)), f"{pad}{duration}", str(billable),
              _quote(disposition), _quote(draw(_amaflags))]  # fmt: skip
    if layout.uniqueid:
        fields.append(_quote(uniqueid))
    if layout.userfield:
        fields.append(_quote(userfield))
    if layout.newcdrcolumns:
        fields += [_quote(draw(_contexts)), _quote(linkedid), str(draw(st.integers(0, 99)))]
    separator = draw(_separators)
    return Row(separator.join(fields).encode(), call=call)


@st.composite
def asterisk_samples(draw: Draw, strict: bool = False) -> Sample:
    tz = draw(st.sampled_from(ZONES))
    layout = draw(st.sampled_from(asterisk.LAYOUTS))
    rows = draw(st.lists(asterisk_rows(layout, ZoneInfo(tz)), max_size=6))
    options: dict[str, Any] = {"tz": tz}
    if strict or draw(st.booleans()):
        options.update(uniqueid=layout.uniqueid, userfield=layout.userfield,
                       newcdrcolumns=layout.newcdrcolumns)  # fmt: skip
    sample: Sample = draw(_assemble("asterisk", rows, options))
    return sample


# -- Cisco CUCM ----------------------------------------------------------------------

#: the fields of a CUCM CDR flat file, in the CDR definition's order (the first 70)
CUCM_FIELDS = (
    "cdrRecordType",
    "globalCallID_callManagerId",
    "globalCallID_callId",
    "origLegCallIdentifier",
    "dateTimeOrigination",
    "origNodeId",
    "origSpan",
    "origIpAddr",
    "callingPartyNumber",
    "callingPartyUnicodeLoginUserID",
    "origCause_location",
    "origCause_value",
    "origPrecedenceLevel",
    "origMediaTransportAddress_IP",
    "origMediaTransportAddress_Port",
    "origMediaCap_payloadCapability",
    "origMediaCap_maxFramesPerPacket",
    "origMediaCap_g723BitRate",
    "origVideoCap_Codec",
    "origVideoCap_Bandwidth",
    "origVideoCap_Resolution",
    "origVideoTransportAddress_IP",
    "origVideoTransportAddress_Port",
    "origRSVPAudioStat",
    "origRSVPVideoStat",
    "destLegIdentifier",
    "destNodeId",
    "destSpan",
    "destIpAddr",
    "originalCalledPartyNumber",
    "finalCalledPartyNumber",
    "finalCalledPartyUnicodeLoginUserID",
    "destCause_location",
    "destCause_value",
    "destPrecedenceLevel",
    "destMediaTransportAddress_IP",
    "destMediaTransportAddress_Port",
    "destMediaCap_payloadCapability",
    "destMediaCap_maxFramesPerPacket",
    "destMediaCap_g723BitRate",
    "destVideoCap_Codec",
    "destVideoCap_Bandwidth",
    "destVideoCap_Resolution",
    "destVideoTransportAddress_IP",
    "destVideoTransportAddress_Port",
    "destRSVPAudioStat",
    "destRSVPVideoStat",
    "dateTimeConnect",
    "dateTimeDisconnect",
    "lastRedirectDn",
    "pkid",
    "originalCalledPartyNumberPartition",
    "callingPartyNumberPartition",
    "finalCalledPartyNumberPartition",
    "lastRedirectDnPartition",
    "duration",
    "origDeviceName",
    "destDeviceName",
    "origCallTerminationOnBehalfOf",
    "destCallTerminationOnBehalfOf",
    "origCalledPartyRedirectOnBehalfOf",
    "lastRedirectRedirectOnBehalfOf",
    "origCalledPartyRedirectReason",
    "lastRedirectRedirectReason",
    "destConversationId",
    "globalCallId_ClusterID",
    "joinOnBehalfOf",
    "comment",
    "authCodeDescription",
    "authorizationLevel",
    "clientMatterCode",
)
_CUCM_TEXT = frozenset(
    {
        "callingPartyNumber",
        "callingPartyUnicodeLoginUserID",
        "origRSVPAudioStat",
        "origRSVPVideoStat",
        "originalCalledPartyNumber",
        "finalCalledPartyNumber",
        "finalCalledPartyUnicodeLoginUserID",
        "destRSVPAudioStat",
        "destRSVPVideoStat",
        "lastRedirectDn",
        "originalCalledPartyNumberPartition",
        "callingPartyNumberPartition",
        "finalCalledPartyNumberPartition",
        "lastRedirectDnPartition",
        "origDeviceName",
        "destDeviceName",
        "globalCallId_ClusterID",
        "comment",
        "authCodeDescription",
        "clientMatterCode",
    }
)


def _cucm_type(name: str) -> str:
    if name == "pkid":
        return "UNIQUEIDENTIFIER"
    return "VARCHAR(50)" if name in _CUCM_TEXT else "INTEGER"


_devices = st.one_of(
    st.integers(0, 16**12 - 1).map("SEP{:012X}".format),
    st.text("ABCDEFGHIJ", min_size=1, max_size=6).map("SIPTrunk-{}".format),
    st.integers(0, 999).map("GW{}".format),
)
_causes = st.sampled_from([0, 16, 17, 31])


@st.composite
def cucm_rows(draw: Draw, names: Sequence[str]) -> list[Row]:
    """A CDR (and sometimes a CMR before it) for the header *names*."""
    direction = draw(st.sampled_from(Direction))
    calling, called = draw(parties(direction))
    answered, duration, billable = draw(durations(most=100_000))
    origination = draw(st.integers(10**9, 2**32 - 1 - duration))
    manager, callid = draw(st.integers(1, 9)), draw(st.integers(1, 10**9))
    orig_device, dest_device = draw(_devices), draw(_devices)
    values: dict[str, str | int] = {
        "cdrRecordType": 1, "globalCallID_callManagerId": manager,
        "globalCallID_callId": callid, "dateTimeOrigination": origination,
        "callingPartyNumber": calling, "originalCalledPartyNumber": draw(public_numbers),
        "finalCalledPartyNumber": called,
        "dateTimeConnect": origination + duration - billable if answered else 0,
        "dateTimeDisconnect": origination + duration, "duration": billable,
        "origDeviceName": orig_device, "destDeviceName": dest_device,
        "clientMatterCode": draw(digit_strings[8]),
        "destCause_value": draw(_causes),
        "pkid": "2d4a6f1e-0c6b-4c3e-9a51-0a1b2c3d4e5f",
    }  # fmt: skip

    def has(name: str, default: str) -> str:
        return str(values[name]) if name in names else default

    call = _call(
        start=datetime.fromtimestamp(origination, UTC), answered=answered, duration=duration,
        billable=billable, calling=calling, called=called,
        dialled=str(values["originalCalledPartyNumber"]), direction=direction,
        account=has("clientMatterCode", ""),
        trunk=has("destDeviceName" if direction is Direction.OUTBOUND else "origDeviceName", ""),
        call_id=f"{manager}-{callid}", status=has("destCause_value", ""), source="cucm",
    )  # fmt: skip

    def line(record: Mapping[str, str | int]) -> bytes:
        cells = []
        for name in names:
            value = record.get(name, "" if name in _CUCM_TEXT else 0)
            cells.append(_quote(str(value)) if name in _CUCM_TEXT or name == "pkid" else str(value))
        return ",".join(cells).encode()

    rows = [Row(line(values), call=call)]
    if draw(st.booleans()):  # a CMR of the same call, skipped by the reader
        rows.insert(0, Row(line({"cdrRecordType": 2, "globalCallID_callId": callid})))
    return rows


@st.composite
def cucm_samples(draw: Draw, strict: bool = False) -> Sample:
    names = list(CUCM_FIELDS)
    if draw(st.booleans()):  # another release's order and fields: the reader goes by name
        names = [names[0], *draw(st.permutations(names[1:]))]
        names = [name for name in names if name in cucm.REQUIRED or draw(st.booleans())]
    header = [Row(",".join(_quote(name) for name in names).encode()),
              Row(",".join(_cucm_type(name) for name in names).encode())]  # fmt: skip
    groups = draw(st.lists(cucm_rows(names), max_size=5))
    sample: Sample = draw(
        _assemble("cucm", header + [row for group in groups for row in group], {})
    )
    return sample


# -- Avaya IP Office -----------------------------------------------------------------

_AVAYA_WIDTHS = (17, 30, 35)
_lines = st.one_of(st.just(""), st.integers(9000, 9999).map("T{}".format))
_extensions = st.builds("{}{}".format, st.sampled_from("EVU"), st.integers(10, 99999))


@st.composite
def avaya_rows(draw: Draw, zone: tzinfo, width: int) -> Row:
    direction = draw(st.sampled_from(Direction))
    answered, duration, billable = draw(durations(most=300_000, least=1))
    start = draw(starts(zone))
    rest = duration - billable
    ring = draw(st.integers(0, rest))
    hold = draw(st.integers(0, rest - ring))
    trunk = draw(_lines)
    other = draw(_extensions)
    devices = [trunk, other] if draw(st.booleans()) else [other, trunk]
    if not trunk:
        devices = [other, draw(_extensions)]
    call = _call(
        start=start, answered=answered, duration=duration, billable=billable,
        calling=draw(bare_text), called=draw(bare_text), dialled=draw(bare_text),
        direction=direction, account=draw(bare_text), trunk=trunk,
        call_id=str(draw(st.integers(0, 10**10 - 1))), status="", source="avaya",
    )  # fmt: skip
    hours, seconds = divmod(billable, 3600)
    sign = "I" if direction is Direction.INBOUND else "O"
    if direction is Direction.INTERNAL:
        sign = draw(st.sampled_from("IO"))
    fields = [
        f"{_local(start, zone):%Y/%m/%d %H:%M:%S}",
        f"{hours:02}:{seconds // 60:02}:{seconds % 60:02}",
        str(ring), call.calling, sign, call.called, call.dialled, call.account,
        "1" if direction is Direction.INTERNAL else "0", call.call_id,
        draw(st.sampled_from("01")), devices[0], draw(bare_text), devices[1], draw(bare_text),
        str(hold), str(rest - ring - hold),
    ]  # fmt: skip
    fields += [draw(bare_text) for _ in range(width - len(fields))]
    return Row(",".join(fields).encode(), call=call)


@st.composite
def avaya_samples(draw: Draw, strict: bool = False) -> Sample:
    tz = draw(st.sampled_from(ZONES))
    width = draw(st.sampled_from(_AVAYA_WIDTHS))
    rows = draw(st.lists(avaya_rows(ZoneInfo(tz), width), max_size=6))
    if strict or draw(st.booleans()):
        names = [*avaya.FIELDS, "Caller Server IP", "Caller Call ID", "Called Server IP",
                 "Called Call ID", "SMDR Record Time"][:width]  # fmt: skip
        rows.insert(0, Row(",".join(names).encode()))
    sample: Sample = draw(_assemble("avaya", rows, {"tz": tz}))
    return sample


# -- Mitel -----------------------------------------------------------------------------


def _long_call(duration: int) -> str:
    minutes = duration // 60
    return " " if minutes < 5 else "-" if minutes < 10 else "%" if minutes < 30 else "+"


_mitel_stations = st.integers(1, 9999).map(str)
_mitel_trunks = st.builds("{}{:03}".format, st.sampled_from("TX"), st.integers(0, 999))
_mitel_digits = {flag: st.text("0123456789*#", max_size=21 if flag else 26) for flag in (0, 1)}


@st.composite
def mitel_rows(draw: Draw, zone: tzinfo, today: date, meter_pulses: bool, ani_dnis: bool) -> Row:
    direction = draw(st.sampled_from(Direction))
    answered, duration, _ = draw(durations(most=359_999))
    answered = answered and duration > 0
    last = datetime(today.year, today.month, today.day) - timedelta(days=1)
    start = draw(starts(zone, minute=True, first=last - timedelta(days=358), last=last))
    station, trunk_id = _mitel_stations, _mitel_trunks
    dialled = draw(_mitel_digits[meter_pulses])
    ani = str(draw(st.integers(2 * 10**9, 10**10 - 1))) if ani_dnis else ""
    if direction is Direction.INBOUND:
        trunk, party_from, party_to = draw(trunk_id), None, draw(station)
        calling, called = ani, party_to
    elif direction is Direction.OUTBOUND:
        trunk, party_from = draw(trunk_id), draw(st.one_of(station, st.just("ATT1")))
        dialled = dialled or "0"
        party_to, calling, called = trunk, party_from, dialled
    else:
        trunk, party_from, party_to = "", draw(station), draw(station)
        calling, called = party_from, party_to
    if answered:
        status, answer_time = draw(st.sampled_from("AT ")), draw(st.sampled_from(["   ", "007"]))
    elif duration == 0:
        status, answer_time = draw(st.sampled_from("ABET ")), draw(st.sampled_from(["   ", "***"]))
    else:
        status = draw(st.sampled_from("BEAT "))
        answer_time = "***" if status in "AT " else draw(st.sampled_from(["   ", "***", "012"]))
    account = draw(digit_strings[12])
    call = _call(
        start=start, answered=answered, duration=duration,
        billable=duration if answered else 0, calling=calling, called=called,
        dialled=dialled, direction=direction, account=account, trunk=trunk, call_id="",
        status=status.strip(), source="mitel",
    )  # fmt: skip
    local = _local(start, zone)
    if draw(st.booleans()):  # 12-hour clock: 00-11 am, 12-11 P
        hour, mark = local.hour, " "
        if hour >= 12:
            hour, mark = hour - 12 or 12, "P"
        clock = f"{hour:02}:{local.minute:02}{mark}"
    else:
        clock = f"{local:%H:%M} "
    hours, seconds = divmod(duration, 3600)
    mark = draw(st.sampled_from([" ", _long_call(duration)]))
    digits_field = dialled.ljust(21) + f"{draw(st.integers(0, 99999)):05}" if (
        meter_pulses) else dialled.ljust(26)  # fmt: skip
    line = (
        f"{mark}{local:%m/%d} {clock} {hours:02}:{seconds // 60:02}:{seconds % 60:02} "
        f"{(party_from or trunk):<4} {draw(st.sampled_from(' *'))}{answer_time} {digits_field}"
        f"{status}{draw(st.sampled_from(' SF'))}{party_to:<4}{draw(st.sampled_from(' TC'))} "
        f"{draw(st.sampled_from(['    ', '201 ']))} {account:<12}{draw(st.sampled_from(' R'))}"
        f"{draw(st.sampled_from(['000', '   ', '012']))}  "
    )
    if ani_dnis:
        line += f" {ani:<10} {draw(digit_strings[10]):<10}"
    if draw(st.booleans()):  # a logger that drops trailing blanks
        line = line.rstrip()
    return Row(line.encode(), call=call)


@st.composite
def mitel_samples(draw: Draw, strict: bool = False) -> Sample:
    tz = draw(st.sampled_from(ZONES))
    today = draw(st.dates(min_value=date(2001, 1, 1), max_value=date(2037, 12, 1)))
    meter_pulses, ani_dnis = draw(st.booleans()), draw(st.booleans())
    rows = draw(st.lists(mitel_rows(ZoneInfo(tz), today, meter_pulses, ani_dnis), max_size=6))
    options = {"tz": tz, "today": today, "meter_pulses": meter_pulses}
    sample: Sample = draw(_assemble("mitel", rows, options))
    return sample


# -- all formats ---------------------------------------------------------------------

_SAMPLES = {
    "asterisk": asterisk_samples,
    "cucm": cucm_samples,
    "avaya": avaya_samples,
    "mitel": mitel_samples,
}


def samples(fmt: str, *, strict: bool = False) -> st.SearchStrategy[Sample]:
    """Valid files of format *fmt*.  ``strict``: the layout is fixed by the options
    (Asterisk) or a header (IP Office), so a record cut short cannot pass as a record
    of a shorter layout."""
    return _SAMPLES[fmt](strict=strict)
