"""The bulk reader (``columnar.read_table``) against the per-record reader
(``model.read``): on files the strategies write, with garbage lines, cut records,
bytes that are no text, DST gaps and folds, mixed layouts and every format, both give
the same calls in the same order and the same rejections with the same reasons."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starwrs.collector.readers import Call, Rejection, read
from starwrs.collector.readers.columnar import calls_table, read_table
from starwrs.collector.readers.testing import Row, Sample, samples

from ..conftest import scaled
from .test_readers import garbage

FORMATS = ["asterisk", "cucm", "avaya", "mitel"]


def reference(
    data: bytes, fmt: str, options: dict[str, object]
) -> tuple[pa.Table, list[Rejection]]:
    calls: list[Call] = []
    rejections: list[Rejection] = []
    for record in read(data, fmt, **options):  # type: ignore[arg-type]
        (calls if isinstance(record, Call) else rejections).append(record)  # type: ignore[arg-type]
    return calls_table(calls), rejections


def same(data: bytes, fmt: str, **options: object) -> int:
    """Assert both readers agree; the calls read in bulk."""
    want_calls, want_rejections = reference(data, fmt, options)
    got = read_table(data, fmt, **options)  # type: ignore[arg-type]
    assert got.calls.to_pylist() == want_calls.to_pylist()
    assert got.calls.schema == want_calls.schema
    assert got.rejections == want_rejections
    return got.bulk


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


_printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
_numbers = st.one_of(
    st.sampled_from(["2001", "917185550123", "+442079460000", "*72", "", "12#", "1234567"]),
    _printable,
)
_zones = st.sampled_from(["America/New_York", "UTC", "Australia/Lord_Howe", "Asia/Kolkata"])


@st.composite
def _times(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(
            st.sampled_from(
                [
                    "",
                    "2024-02-30 10:00:00",
                    "2024-13-01 00:00:00",
                    " 2024-01-01 10:00:00",
                    "2024-01-01 10:00",
                    "x",
                ]
            )
        )
    instant = draw(st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2040, 1, 1)))
    return f"{instant:%Y-%m-%d %H:%M:%S}"


@st.composite
def canonical_records(draw: st.DrawFn) -> bytes:
    """A Master.csv line in canonical form (what cdr_csv writes), its values drawn to
    hit every check of the bulk path, valid and not."""
    count = draw(st.sampled_from([16, 16, 17, 18, 19, 20, 21, 15, 22]))
    fields = [_quoted(draw(_printable)) for _ in range(count)]
    fields[1] = _quoted(draw(_numbers))
    fields[2] = _quoted(draw(_numbers))
    fields[4] = _quoted(
        draw(st.sampled_from(['"A" <2001>', "<+12125551000> ", "", "<>", "x <1> <2>", "< 3 >"]))
    )
    for k in (9, 10, 11):
        if k < count:
            fields[k] = _quoted(draw(_times()))
    for k in (12, 13):
        if k < count:
            number = draw(st.one_of(st.integers(0, 10**11).map(str), _printable))
            fields[k] = (
                _quoted(number)
                if draw(st.integers(0, 9)) == 0
                else number.replace('"', "").replace(",", "")
            )
    if count > 14:
        fields[14] = _quoted(draw(st.sampled_from(["ANSWERED", "NO ANSWER", "BUSY", "x"])))
    if count > 16:
        fields[16] = _quoted(draw(st.sampled_from(["1700000000.42", "h-1700000000.1", "uf", ""])))
    if count in (19, 20, 21) and draw(st.booleans()):
        fields[-1] = str(draw(st.integers(0, 99)))
    return ",".join(fields).encode() + draw(st.sampled_from([b"\n", b"\r\n"]))


@settings(max_examples=scaled(500))
@given(records=st.lists(canonical_records(), max_size=12), tz=_zones, known=st.booleans())
def test_canonical_records_in_bulk(records: list[bytes], tz: str, known: bool) -> None:
    options: dict[str, object] = {"tz": tz, "name": "c"}
    if known:
        options.update(uniqueid=True, userfield=False, newcdrcolumns=False)
    same(b"".join(records), "asterisk", **options)


def test_the_bulk_path_reads_a_well_formed_file() -> None:
    data = b"".join(_line(f"2024-01-{d:02d} 10:00:00") for d in range(1, 29)) * 3
    assert same(data, "asterisk", tz="America/New_York", name="f") == 84


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=scaled(150))
@given(
    data=st.data(),
    lines=st.lists(st.tuples(st.integers(min_value=0), garbage), max_size=4),
    repeat=st.integers(1, 3),
)
def test_the_bulk_read_is_the_per_record_read(
    fmt: str, data: st.DataObject, lines: list[tuple[int, bytes]], repeat: int
) -> None:
    sample = data.draw(samples(fmt))
    rows = list(sample.rows) * (repeat if fmt == "asterisk" else 1)
    for where, text in lines:
        rows.insert(where % (len(rows) + 1), Row(text))
    dirty: Sample = sample.with_rows(rows)
    same(dirty.data, fmt, **dirty.read_options())


@settings(max_examples=scaled(150))
@given(data=st.data(), cut=st.integers(min_value=0))
def test_cut_and_mixed_asterisk_files(data: st.DataObject, cut: int) -> None:
    first = data.draw(samples("asterisk"))
    second = data.draw(samples("asterisk"))  # another layout, maybe
    blob = first.data + b"\n" + second.data
    blob = blob[: cut % (len(blob) + 1)] + blob[cut % (len(blob) + 1) + 1 :]
    same(blob, "asterisk", tz=first.options["tz"], name="f")


@settings(max_examples=scaled(150))
@given(blob=st.binary(max_size=600))
def test_binary_garbage(blob: bytes) -> None:
    same(blob, "asterisk", tz="UTC", name="junk")


def _line(
    start: str, *, answer: str | None = None, end: str | None = None, extra: str = ""
) -> bytes:
    answer = start if answer is None else answer
    end = start if end is None else end
    return (
        f'"","2001","917185550123","from-internal","""A"" <2001>","PJSIP/2001-1",'
        f'"PJSIP/trunk-1","Dial","PJSIP/x,60","{start}","{answer}","{end}",127,120,'
        f'"ANSWERED","DOCUMENTATION"{extra}\n'
    ).encode()


@pytest.mark.parametrize("tz", ["America/New_York", "Europe/London", "Australia/Lord_Howe"])
def test_every_minute_around_the_dst_changes(tz: str) -> None:
    zone = ZoneInfo(tz)
    lines = []
    for year_day in (dt.datetime(2024, 3, 9), dt.datetime(2024, 10, 5), dt.datetime(2024, 4, 6)):
        for minute in range(0, 3 * 24 * 60, 7):
            t = year_day + dt.timedelta(minutes=minute, seconds=minute % 60)
            lines.append(_line(f"{t:%Y-%m-%d %H:%M:%S}"))
    data = b"".join(lines)
    assert zone.key == tz
    same(data, "asterisk", tz=tz, name="dst")


def test_odd_values_the_bulk_path_must_leave_to_the_reader() -> None:
    lines = [
        _line("2024-02-30 10:00:00"),  # no such day
        _line("2023-02-29 10:00:00"),
        _line("2024-02-29 10:00:00"),  # a leap day
        _line("0000-01-01 10:00:00"),
        _line("9999-12-31 23:59:59"),
        _line("2024-01-01 24:00:00"),
        _line("2024-01-01 10:60:00"),
        _line("2024-01-01 10:00:60"),
        _line("2024-01-01T10:00:00"),
        _line(" 2024-01-01 10:00:00 "),
        _line("2024-01-01 10:00:00", answer=""),
        _line("2024-01-01 10:00:00", end=""),
        _line(""),
        _line("2024-1-01 10:00:00"),
        _line("2024-01-01 10:00:00", extra=',"1700000000.5"'),
        _line("2024-01-01 10:00:00", extra=',"user field"'),
        _line("2024-01-01 10:00:00", extra=',"host-1700000000.5","uf"'),
        _line("2024-01-01 10:00:00", extra=',"1700000000.5","uf","peer","linked",7'),
        _line("2024-01-01 10:00:00", extra=',"","uf","peer","linked",7'),
        _line("2024-01-01 10:00:00", extra=',"uf","peer","linked",x'),
        _line("2024-01-01 10:00:00").replace(b"127,120", b"127,12345678901"),
        _line("2024-01-01 10:00:00").replace(b"127,120", b"+127,120"),
        _line("2024-01-01 10:00:00").replace(b"127,120", b'"127", 120 '),
        _line("2024-01-01 10:00:00").replace(b'"2001"', b'""', 1),  # the number from clid
        _line("2024-01-01 10:00:00").replace(b'"2001"', b'""', 1).replace(b"<2001>", b"< 2002 > "),
        _line("2024-01-01 10:00:00").replace(b'"2001"', b'""', 1).replace(b"<2001>", b"<>"),
        _line("2024-01-01 10:00:00").replace(b'"ANSWERED"', b'"NO ANSWER"'),
        _line("2024-01-01 10:00:00").replace(b'"ANSWERED"', b'"answered"'),
        _line("2024-01-01 10:00:00").replace(b'"2001"', b'"  2001  "', 1),
        _line("2024-01-01 10:00:00").replace(b'"2001"', b' "2001"', 1),
        _line("2024-01-01 10:00:00").replace(b'"2001"', b'"2001" ', 1),
        _line("2024-01-01 10:00:00").replace(b'"2001"', b'"20"01', 1),
        _line("2024-01-01 10:00:00").replace(b'"2001"', b'20"01', 1),
        _line("2024-01-01 10:00:00").replace(b'"2001"', b'"20""01"', 1),
        _line("2024-01-01 10:00:00").replace(b'"2001"', b'"2\t001"', 1),
        _line("2024-01-01 10:00:00").replace(b'"2001"', "\u00e9".encode("latin-1"), 1),
        _line("2024-01-01 10:00:00").replace(b'"2001"', "\u00e9".encode(), 1),
        _line("2024-01-01 10:00:00").replace(b"\n", b"\r\n"),
        _line("2024-01-01 10:00:00").replace(b"\n", b"\r\r\n"),
        b"\xef\xbb\xbf" + _line("2024-01-01 10:00:00"),
        _line("2024-01-01 10:00:00").replace(b'"917185550123"', b'"*72"'),
        _line("2024-01-01 10:00:00").replace(b'"2001"', b'"+4420"', 1),
        b"\n",
        b"   \n",
        _line("2024-01-01 10:00:00").rstrip(b"\n"),
    ]
    for first in (0, 1):  # with the BOM line first, and not
        data = b"".join(lines[first:] + lines[:first])
        same(data, "asterisk", tz="America/New_York", name="odd")
        same(data, "asterisk", tz="UTC", name="odd", uniqueid=True)
        same(data, "asterisk", tz="UTC", name="odd", max_extension_digits=3)


def test_an_empty_body_and_an_overlong_line() -> None:
    same(b"", "asterisk", tz="UTC")
    long = _line("2024-01-01 10:00:00").replace(b'"Dial"', b'"' + b"x" * 70_000 + b'"')
    same(long + _line("2024-01-01 10:00:00") + long.rstrip(b"\n"), "asterisk", tz="UTC")
