"""Example-based tests of the CDR readers: realistic records of each format, written
by hand from the documented layouts, and the edge cases each reader documents."""

from __future__ import annotations

import dataclasses
import io
import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from starwrs.collector.readers import Call, Direction, Rejection, detect, normalize_number, read
from starwrs.collector.readers._common import MAX_LINE, RecordError, split_csv

NY = "America/New_York"


def calls(data: bytes, fmt: str = "auto", **options: object) -> list[Call | Rejection]:
    return list(read(data, fmt, name="f", **options))  # type: ignore[arg-type]


def one(data: bytes, fmt: str = "auto", **options: object) -> Call:
    [call] = calls(data, fmt, **options)
    assert isinstance(call, Call), call
    return call


def reasons(data: bytes, fmt: str = "auto", **options: object) -> list[tuple[int, str]]:
    return [(r.line, r.reason) for r in calls(data, fmt, **options) if isinstance(r, Rejection)]


# -- Asterisk Master.csv -------------------------------------------------------------

OUTBOUND = (
    b'"","2001","917185550123","from-internal","""Alice Smith"" <2001>",'
    b'"PJSIP/2001-00000012","PJSIP/trunk-00000013","Dial","PJSIP/17185550123@trunk,60",'
    b'"2024-03-05 10:15:00","2024-03-05 10:15:07","2024-03-05 10:17:07",127,120,'
    b'"ANSWERED","DOCUMENTATION"\n'
)


def test_asterisk_an_answered_outbound_call_with_the_16_base_fields() -> None:
    call = one(OUTBOUND, tz=NY)
    assert call == Call(
        start=datetime(2024, 3, 5, 15, 15, tzinfo=UTC),  # EST, UTC-5
        answered=True, duration=127, billable=120, calling="2001", called="917185550123",
        dialled="917185550123", direction=Direction.OUTBOUND, account="",
        trunk="PJSIP/trunk-00000013", call_id="", status="ANSWERED", source="asterisk",
        file="f", line=1,
    )  # fmt: skip
    assert call.minutes == Decimal("2.0")
    assert call.in_out == "0"


def test_asterisk_unanswered_calls_bill_nothing() -> None:
    for disposition in (b"NO ANSWER", b"BUSY", b"FAILED", b"CONGESTION"):
        line = (
            b'"sales","+12125550100","2002","from-trunk","""Bob"" <+12125550100>",'
            b'"PJSIP/trunk-0000001a","PJSIP/2002-0000001b","Dial","PJSIP/2002,30",'
            b'"2024-07-01 09:00:00",,"2024-07-01 09:00:30",30,0,"'
            + disposition
            + b'","DOCUMENTATION"'
        )
        call = one(line, tz=NY)
        assert (call.answered, call.billable, call.duration, call.status) == (
            False, 0, 30, disposition.decode())  # fmt: skip
        assert call.direction is Direction.INBOUND
        assert call.in_out == "1"
        assert call.start == datetime(2024, 7, 1, 13, 0, tzinfo=UTC)  # EDT, UTC-4
        assert call.trunk == "PJSIP/trunk-0000001a"
        assert call.account == "sales"


def test_asterisk_optional_columns_and_embedded_quotes() -> None:
    base = OUTBOUND.rstrip(b"\n")
    both = base + b',"1709651700.18","project ""X"", phase 2"'
    assert one(both, tz=NY).call_id == "1709651700.18"
    new = base + b',"pbx1-1709651700.18","","pbx1-1709651700.17",3'
    assert one(new, tz=NY).call_id == "pbx1-1709651700.18"  # uniqueid, then newcdrcolumns
    only_new = base + b',"","1709651700.17",3'
    assert one(only_new, tz=NY).call_id == "1709651700.17"  # linkedid
    userfield_only = base + b',"cost centre 7"'
    assert one(userfield_only, tz=NY).call_id == ""
    assert one(userfield_only, tz=NY, userfield=True).call_id == ""
    # declared layout: a 17-field record that "looks like" a uniqueid is still a userfield
    assert one(base + b',"1709651700.18"', tz=NY, uniqueid=False).call_id == ""


def test_asterisk_padding_usegmtime_and_the_number_in_clid() -> None:
    line = (
        b' "" , "" , "2002" , "ext-local" , "Carol <7185550199>" , "SIP/gw-01" , "SIP/2002-02" ,'
        b' "Dial" , "" , " 2024-11-03 01:30:00 " , "2024-11-03 01:30:05" ,'
        b' "2024-11-03 01:31:05" , 65 , 60 , "ANSWERED" , "BILLING"  \r\n'
    )
    call = one(line, tz="UTC")  # usegmtime=yes
    assert call.calling == "7185550199"
    assert call.direction is Direction.INBOUND
    assert call.start == datetime(2024, 11, 3, 1, 30, tzinfo=UTC)
    # the same wall-clock time in New York occurs twice: the first one (EDT) is taken
    assert one(line, tz=NY).start == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)


def test_asterisk_bad_records_are_rejected_with_reasons() -> None:
    gap = OUTBOUND.replace(b"2024-03-05 10:15:00", b"2024-03-10 02:30:00")  # skipped hour
    assert reasons(gap, "asterisk", tz=NY) == [
        (1, "local time 2024-03-10 02:30:00 does not exist in America/New_York")]  # fmt: skip
    assert reasons(OUTBOUND.replace(b'"ANSWERED"', b'"MAYBE"'), "asterisk", tz=NY) == [
        (1, "unknown disposition 'MAYBE'")]  # fmt: skip
    assert reasons(OUTBOUND.replace(b",127,", b",12x,"), "asterisk", tz=NY) == [
        (1, "duration is not a whole number: '12x'")]  # fmt: skip
    assert reasons(b'"a","b"\n' + OUTBOUND, "asterisk", tz=NY) == [
        (1, "2 fields; a Master.csv record has 16 or 17 or 18 or 19 or 20 or 21")]  # fmt: skip
    assert reasons(b'"a","b\n', "asterisk", tz=NY) == [(1, "unterminated quoted field 2")]
    assert reasons(b'"a"b,"c"\n', "asterisk", tz=NY) == [
        (1, "text after the closing quote of field 1")]  # fmt: skip
    strict = reasons(OUTBOUND, "asterisk", tz=NY, uniqueid=True, userfield=False,
                     newcdrcolumns=False)  # fmt: skip
    assert strict == [(1, "16 fields; a Master.csv record has 17")]


# -- Cisco CUCM ------------------------------------------------------------------------

CUCM_HEADER = (
    b'"cdrRecordType","globalCallID_callManagerId","globalCallID_callId",'
    b'"origLegCallIdentifier","dateTimeOrigination","callingPartyNumber",'
    b'"originalCalledPartyNumber","finalCalledPartyNumber","destCause_value",'
    b'"dateTimeConnect","dateTimeDisconnect","duration","origDeviceName","destDeviceName",'
    b'"clientMatterCode"\r\n'
    b"INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,VARCHAR(50),VARCHAR(50),VARCHAR(50),INTEGER,"
    b"INTEGER,INTEGER,INTEGER,VARCHAR(129),VARCHAR(129),VARCHAR(32)\r\n"
)
CUCM_CDR = (
    b'1,2,388289,17586046,1709650500,"1001","917185550123","917185550123",16,'
    b'1709650507,1709650627,120,"SEP00112233AABB","SIPTrunk-PSTN","4711"\r\n'
)
CUCM_CMR = b'2,2,388289,17586046,0,"","","",0,0,0,0,"","",""\r\n'


def test_cucm_a_cdr_is_read_and_a_cmr_skipped() -> None:
    got = calls(CUCM_HEADER + CUCM_CMR + CUCM_CDR)
    assert got == [
        Call(
            start=datetime(2024, 3, 5, 14, 55, tzinfo=UTC), answered=True, duration=127,
            billable=120, calling="1001", called="917185550123", dialled="917185550123",
            direction=Direction.OUTBOUND, account="4711", trunk="SIPTrunk-PSTN",
            call_id="2-388289", status="16", source="cucm", file="f", line=4,
        )
    ]  # fmt: skip


def test_cucm_unanswered_inbound_call() -> None:
    line = (
        b'1,1,5,6,1709650500,"+12125550100","7185550100","2001",17,0,1709650520,0,"GW1",'
        b'"SEP0A","" \n'
    )
    call = one(CUCM_HEADER + line)
    assert (call.answered, call.duration, call.billable) == (False, 20, 0)
    assert call.direction is Direction.INBOUND
    assert call.trunk == "GW1"
    assert call.dialled == "7185550100"
    assert call.called == "2001"


def test_cucm_header_problems() -> None:
    assert reasons(CUCM_CDR, "cucm") == [(1, "record before the CUCM field-name header line")]
    names_only = CUCM_HEADER.split(b"\r\n")[0] + b"\n"
    assert reasons(names_only + CUCM_CDR + CUCM_CDR, "cucm") == [
        (2, "expected the field-type header line after the field names")]  # fmt: skip
    assert len(calls(names_only + CUCM_CDR + CUCM_CDR, "cucm")) == 2  # the next one reads
    short = CUCM_HEADER.replace(b',"clientMatterCode"', b"").replace(b",VARCHAR(32)", b"")
    assert reasons(short + CUCM_CDR, "cucm") == [(3, "15 fields; the header names 14")]
    lacking = CUCM_HEADER.replace(b'"duration"', b'"durationX"')
    assert reasons(lacking + CUCM_CMR + CUCM_CDR, "cucm") == [(4, "the header lacks duration")]
    assert reasons(CUCM_HEADER + b"7" + CUCM_CMR[1:], "cucm") == [(3, "unknown cdrRecordType 7")]


# -- Avaya IP Office SMDR --------------------------------------------------------------

AVAYA_HEADER = ",".join(
    ["Call Start", "Connected Time", "Ring Time", "Caller", "Direction", "Called Number",
     "Dialled Number", "Account", "Is Internal", "Call ID", "Continuation", "Party1Device",
     "Party1Name", "Party2Device", "Party2Name", "Hold Time", "Park Time"]
).encode()  # fmt: skip


def test_avaya_ip_office_records() -> None:
    lines = [
        # a lost incoming call: never connected, rang 9 s
        b"2024/06/28 09:28:41,00:00:00,9,7185550144,I,4324,4324,,0,1000014155,0,E4324,"
        b"Joe Bloggs,T9161,LINE 5.1,0,0",
        # external incoming call transferred to voicemail: two segments, one Call ID
        b"2024/06/28 09:30:57,00:00:13,7,7185550177,I,2999,2999,,0,1000014160,1,E4750,"
        b"John Smith,T9002,LINE 1.2,11,0",
        b"2024/06/28 09:30:57,00:00:21,0,7185550177,I,2999,2999,,0,1000014160,0,V9502,"
        b"VM Channel 2,T9002,LINE 1.2,0,0",
        # internal call (O with Is Internal 1)
        b"2024/06/26 10:27:44,00:00:44,4,4688,O,4207,4207,,1,1000013898,0,E4688,Joe Bloggs,"
        b"E4207,John Smith,0,0",
        # outgoing call on a line, with account code, 30-field release
        b"2024/06/26 14:03:12,00:05:01,5,4688,O,917185550123,917185550123,PRJ42,0,1000013901,"
        b"0,E4688,Joe Bloggs,T9001,Line 1.1,3,0,n/a,0,,,,,,,,,,,",
    ]
    got = calls(b"\r\n".join(lines) + b"\r\n", tz="Europe/London")
    assert [c.line for c in got] == [1, 2, 3, 4, 5]
    lost, vm1, vm2, internal, out = got
    assert isinstance(lost, Call)
    assert not lost.answered
    assert lost.duration == 9
    assert lost.start == datetime(2024, 6, 28, 8, 28, 41, tzinfo=UTC)  # BST, UTC+1
    assert lost.trunk == "T9161"
    assert lost.direction is Direction.INBOUND
    assert isinstance(vm1, Call)
    assert (vm1.billable, vm1.duration) == (13, 31)
    assert isinstance(vm2, Call)
    assert vm2.call_id == vm1.call_id == "1000014160"
    assert isinstance(internal, Call)
    assert internal.direction is Direction.INTERNAL
    assert internal.in_out is None
    assert internal.trunk == ""
    assert isinstance(out, Call)
    assert out.account == "PRJ42"
    assert out.duration == 301 + 5 + 3
    assert out.direction is Direction.OUTBOUND
    assert out.dialled == "917185550123"


def test_avaya_header_fixes_the_field_count_and_bad_fields_are_rejected() -> None:
    record = b"2024/06/26 10:27:44,00:00:44,4,4688,O,4207,4207,,1,1000013898,0,E1,A,E2,B,0,0"
    assert len(calls(AVAYA_HEADER + b"\n" + record, tz="UTC")) == 1
    assert reasons(AVAYA_HEADER + b"\n" + record + b",extra", tz="UTC") == [
        (2, "18 fields; the header names 17")]  # fmt: skip
    assert reasons(record.replace(b",O,", b",X,"), "avaya", tz="UTC") == [
        (1, "Direction is not I or O: 'X'")]  # fmt: skip
    assert reasons(record.replace(b"00:00:44", b"0:61:00"), "avaya", tz="UTC") == [
        (1, "Connected Time is not HH:MM:SS: '0:61:00'")]  # fmt: skip
    assert reasons(record[:60], "avaya", tz="UTC") == [
        (1, "10 fields; an SMDR record has 17 or more")]  # fmt: skip


# -- Mitel SMDR --------------------------------------------------------------------------


def mitel(**columns: str) -> bytes:
    """A record from ``c<first>=value`` pairs, placed at their (1-based) columns."""
    line = [" "] * 90
    for key, value in columns.items():
        first = int(key[1:])
        line[first - 1 : first - 1 + len(value)] = value
    return "".join(line).encode()


def test_mitel_outgoing_call_with_answer_supervision() -> None:
    # station 214 took trunk 054 and dialled 1-613-592-2122: answer supervision (A)
    line = mitel(c2="06/13", c8="11:42", c15="00:08:29", c24="214", c34="16135922122",
                 c60="A", c62="T054", c73="4711", c86="000")  # fmt: skip
    call = one(line, tz="America/Toronto", today=date(2024, 6, 14))
    assert call == Call(
        start=datetime(2024, 6, 13, 15, 42, tzinfo=UTC), answered=True, duration=509,
        billable=509, calling="214", called="16135922122", dialled="16135922122",
        direction=Direction.OUTBOUND, account="4711", trunk="T054", call_id="", status="A",
        source="mitel", file="f", line=1,
    )  # fmt: skip


def test_mitel_incoming_calls_pm_clock_ani_and_unanswered() -> None:
    toronto = {"tz": "America/Toronto", "today": date(2024, 1, 31)}
    # 3:10 PM, trunk 102 rang station 201, answered after 8 s; ANI/DNIS reporting on
    answered = mitel(c2="01/30", c8="03:10", c13="P", c15="00:02:22", c24="T102", c30="008",
                     c34="201", c62="201", c86="000") + b" 6135550142 2015550100"  # fmt: skip
    call = one(answered, **toronto)
    assert call.start == datetime(2024, 1, 30, 20, 10, tzinfo=UTC)
    assert (call.direction, call.calling, call.called, call.trunk) == (
        Direction.INBOUND, "6135550142", "201", "T102")  # fmt: skip
    busy = mitel(c2="01/30", c8="09:11", c15="00:00:12", c24="X116", c34="63224", c60="B",
                 c62="224")  # fmt: skip
    assert not one(busy, **toronto).answered
    unanswered = mitel(c2="01/30", c8="09:12", c15="00:00:31", c24="T090", c30="***",
                       c62="ATT2")  # fmt: skip
    call = one(unanswered, **toronto)
    assert (call.answered, call.billable, call.called) == (False, 0, "ATT2")


def test_mitel_internal_call_long_call_mark_and_year() -> None:
    line = mitel(c1="%", c2="12/31", c8="23:50", c15="00:12:00", c24="2001", c34="2002",
                 c62="2002")  # fmt: skip
    call = one(line, tz="UTC", today=date(2025, 1, 1))  # read the next day: last year
    assert call.start == datetime(2024, 12, 31, 23, 50, tzinfo=UTC)
    assert call.direction is Direction.INTERNAL
    assert call.trunk == ""
    assert one(line, tz="UTC", today=date(2024, 12, 30)).start.year == 2024  # +1 day slack
    leap = mitel(c2="02/29", c8="10:00", c15="00:00:10", c24="2001", c62="2002")
    assert one(leap, tz="UTC", today=date(2027, 3, 1)).start.year == 2024


def test_mitel_meter_pulses_and_bad_lines() -> None:
    metered = mitel(c2="03/05", c8="10:15", c15="00:02:00", c24="2001", c34="16135950000",
                    c55="00042", c60="A", c62="T054")  # fmt: skip
    assert one(metered, tz="UTC", today=date(2024, 3, 5), meter_pulses=True).dialled == (
        "16135950000")  # fmt: skip
    assert one(metered, tz="UTC", today=date(2024, 3, 5)).dialled == (
        "16135950000          00042")  # without the option, pulses read as digits  # fmt: skip
    options = {"tz": "UTC", "today": date(2024, 3, 5)}
    short = "SMDR records reach the called party (column 62)"
    assert reasons(metered[:50], "mitel", **options) == [
        (1, f"record ends at column 50; {short}")]  # fmt: skip
    shifted = b" " + metered[:-1]
    assert reasons(shifted, "mitel", **options) == [
        (1, "column 7 is not blank (not a standard SMDR record)")]  # fmt: skip
    assert reasons(metered.replace(b"00:02:00", b"99:99:99"), "mitel", **options) == [
        (1, "duration is 100 hours or more (99:99:99)")]  # fmt: skip
    assert reasons(metered.replace(b"10:15 ", b"10:15Q"), "mitel", **options) == [
        (1, "column 13 is not P or blank: 'Q'")]  # fmt: skip


def test_mitel_line_stripped_of_trailing_blanks_keeps_a_short_called_party() -> None:
    # station 1 called station 7; the logger dropped every blank after column 62, so
    # the line ends inside the called-party field (found by the read-back property)
    line = mitel(c2="03/04", c8="09:30", c15="00:01:05", c24="1", c60="A", c62="7").rstrip()
    assert len(line) == 62
    call = one(line, "mitel", tz="UTC", today=date(2024, 3, 5))
    assert (call.calling, call.called, call.direction) == ("1", "7", Direction.INTERNAL)
    # blanks where the called party belongs, ending before the field does: cut short
    short = "SMDR records reach the called party (column 62)"
    assert reasons(line[:61] + b"  ", "mitel", tz="UTC", today=date(2024, 3, 5)) == [
        (1, f"record ends at column 63; {short}")]  # fmt: skip


# -- detection, the entry point, numbers -------------------------------------------------


def test_detection_by_the_first_line() -> None:
    assert detect(OUTBOUND) == "asterisk"
    assert detect(CUCM_HEADER) == "cucm"
    assert detect(AVAYA_HEADER) == "avaya"
    assert detect(b"2024/06/28 09:28:41,00:00:00,9,,I,4324") == "avaya"
    assert detect(mitel(c2="01/30", c8="03:10", c15="00:02:22", c24="T102")) == "mitel"
    assert detect(b"\xef\xbb\xbf" + OUTBOUND) == "asterisk"
    assert detect(b'"just","three","fields"') is None
    assert reasons(b"\n\n  \nhello\n" + OUTBOUND, tz="UTC") == [
        (4, "format not recognised (not asterisk, cucm, avaya or mitel)")]  # fmt: skip
    assert calls(b"", tz="UTC") == []
    assert calls(b"\n \n", tz="UTC") == []


def test_read_takes_files_and_names_them(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_bytes(OUTBOUND * 3)
    with path.open("rb") as fileobj:
        got = list(read(fileobj, tz=NY))
    assert [(c.file, c.line) for c in got] == [(str(path), n) for n in (1, 2, 3)]
    stream = io.BytesIO(OUTBOUND)
    assert [c.file for c in read(stream, "asterisk", tz=NY, name="pbx1")] == ["pbx1"]


def test_read_refuses_a_missing_zone_and_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="IANA time zone"):
        read(OUTBOUND, "asterisk")
    with pytest.raises(ValueError, match="IANA time zone"):
        read(OUTBOUND)  # detected as asterisk, which needs tz
    with pytest.raises(ValueError, match="unknown time zone"):
        read(OUTBOUND, "asterisk", tz="Mars/Olympus")
    with pytest.raises(ValueError, match="unknown CDR format"):
        read(OUTBOUND, "csv", tz="UTC")
    assert calls(CUCM_HEADER + CUCM_CDR, "cucm")  # CUCM needs no zone


def test_reading_is_lazy_and_chunk_sized() -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield OUTBOUND[:7]
            yield OUTBOUND[7:]

    first = list(itertools.islice(read(endless(), "asterisk", tz=NY), 1000))
    assert len(first) == 1000
    assert first[-1].line == 1000


def test_long_lines_nul_bytes_and_latin_1() -> None:
    data = b"x" * (MAX_LINE + 10) + b"\n" + b"\x00" * 40 + b"\n" + OUTBOUND.replace(
        b"Alice Smith", "Aliçe Sm\u00eeth".encode("latin-1"))  # fmt: skip
    got = calls(data, "asterisk", tz=NY)
    assert [(r.line, r.reason) for r in got if isinstance(r, Rejection)] == [
        (1, f"line longer than {MAX_LINE} bytes"), (2, "line contains NUL bytes")]  # fmt: skip
    assert isinstance(got[-1], Call)
    assert got[-1].line == 3


def test_split_csv() -> None:
    assert split_csv('"a ""b"", c",d , "e" ,') == ['a "b", c', "d", "e", ""]
    assert split_csv("") == [""]
    assert split_csv('it"s,x') == ['it"s', "x"]
    with pytest.raises(RecordError, match="text after the closing quote of field 1"):
        split_csv('"a"b,c')


@pytest.mark.parametrize(
    ("written", "options", "e164"),
    [
        ("2124786783", {}, "+12124786783"),
        ("1 (212) 478-6783", {}, "+12124786783"),
        ("+1 212 478 6783", {}, "+12124786783"),
        ("011 44 20 7946 0000", {}, "+442079460000"),
        ("+44 20 7946 0000", {}, "+442079460000"),
        ("919194786783", {"access_code": "9"}, "+19194786783"),
        ("9194786783", {"access_code": "9"}, "+19194786783"),  # valid as written: NPA 919
        ("94786783", {"access_code": "9", "home_npa": "212"}, "+12124786783"),
        ("4786783", {"home_npa": "212"}, "+12124786783"),
        ("4786783", {}, None),
        ("1124786783", {}, None),  # NPA starting with 1
        ("2121786783", {}, None),  # NXX starting with 1
        ("2001", {}, None),
        ("911", {}, None),
        ("", {}, None),
        ("Anonymous", {}, None),
        ("+1 112 478 6783", {}, None),
        ("0111", {}, None),
    ],
)
def test_normalize_number(written: str, options: dict[str, str], e164: str | None) -> None:
    assert normalize_number(written, **options) == e164  # type: ignore[arg-type]


def test_minutes_round_up_to_a_tenth_as_the_datamart_does() -> None:
    call = one(OUTBOUND.replace(b",127,120,", b",200,91,"), tz=NY)
    assert call.minutes == Decimal("1.6")  # 1.516 -> 1.6 (16 tenths started), not 1.5
    assert str(call.minutes) == "1.6"
    # the same rule as rating's duration: every 6 s started is a tenth
    for billable, minutes in ((0, "0.0"), (1, "0.1"), (6, "0.1"), (7, "0.2"), (120, "2.0")):
        assert str(dataclasses.replace(call, billable=billable).minutes) == minutes
    with pytest.raises(ValueError, match="UTC"):
        dataclasses.replace(call, start=datetime(2024, 1, 1))
