"""Property tests of the CDR readers: for each format, files written by the
strategies of ``starwrs.collector.readers.testing`` read back to the calls written,
whatever the chunking; garbage, cut and binary lines end only in rejections at the
right line numbers and never in an exception; ``auto`` detects every format."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from starwrs.collector.readers import Call, Rejection, detect, read
from starwrs.collector.readers._common import RecordError, split_csv, split_csv_slowly
from starwrs.collector.readers.testing import Row, Sample, samples

from ..conftest import scaled

FORMATS = ["asterisk", "cucm", "avaya", "mitel"]
#: examples per test and format for tests that draw whole files: a file is ~300
#: Hypothesis draws (~0.1 s each example on this machine), and there are 20 such tests
READS = scaled(80)

#: a line that is no record of any format: text or bytes, never blank, no newline
garbage = (
    st.one_of(
        st.binary(min_size=1, max_size=60),
        st.text(min_size=1, max_size=60).map(str.encode),
        st.sampled_from(
            [b'"unterminated,"x', b",,,,,,,,,,,,,,,,", b"\x00\x00\x00", b"\xff\xfe\xfd"]
        ),
    )
    .map(lambda raw: raw.replace(b"\n", b""))
    .filter(lambda raw: raw.strip() != b"" and not raw.startswith(b"\xef\xbb\xbf"))
)


def run(sample: Sample, data: bytes | list[bytes] | None = None, fmt: str | None = None) -> list:
    source = sample.data if data is None else data
    return list(read(source, fmt or sample.format, **sample.read_options()))


def records_from(sample: Sample) -> int:
    """The first row after the header lines (CUCM: after the field-type line)."""
    if sample.format != "cucm":
        return 0
    return 1 + next(i for i, row in enumerate(sample.rows) if row.text.startswith(b"INTEGER"))


def last_separator(text: bytes) -> int:
    """Where the record's last field separator is: the last comma outside quotes (a
    quoted field may hold commas; cutting after the last separator leaves a record
    whose last field is merely empty, which is valid)."""
    quoted, last = False, -1
    for i, byte in enumerate(text):
        if byte == ord('"'):
            quoted = not quoted
        elif byte == ord(",") and not quoted:
            last = i
    return last


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=READS)
@given(data=st.data())
def test_written_records_read_back_to_the_same_calls(fmt: str, data: st.DataObject) -> None:
    sample = data.draw(samples(fmt))
    got = run(sample)
    assert got == sample.expected()


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=READS)
@given(data=st.data(), cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_any_chunking_gives_the_same_result(fmt: str, data: st.DataObject, cuts: list[int]) -> None:
    sample = data.draw(samples(fmt))
    assert run(sample, split(sample.data, cuts)) == sample.expected()


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=READS)
@given(data=st.data())
def test_auto_detects_the_format(fmt: str, data: st.DataObject) -> None:
    sample = data.draw(samples(fmt))
    assume(sample.expected())
    first = next(row.text for row in sample.rows if row.text.removeprefix(b"\xef\xbb\xbf").strip())
    assert detect(first) == fmt
    assert run(sample, fmt="auto") == sample.expected()


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=READS)
@given(data=st.data(), lines=st.lists(st.tuples(st.integers(min_value=0), garbage), max_size=5))
def test_garbage_lines_are_rejected_where_they_are(
    fmt: str, data: st.DataObject, lines: list[tuple[int, bytes]]
) -> None:
    sample = data.draw(samples(fmt))
    rows = list(sample.rows)
    first = records_from(sample)
    if rows and rows[0].text.startswith(b"\xef\xbb\xbf"):
        first = max(first, 1)  # the byte-order mark stays at the start of the file
    inserted = [Row(text) for _, text in lines]
    for (where, _), row in zip(lines, inserted, strict=True):
        rows.insert(first + where % (len(rows) - first + 1), row)
    dirty = sample.with_rows(rows)
    garbage_at = {n for n, row in enumerate(dirty.rows, 1) if any(row is g for g in inserted)}
    got = run(dirty)
    assert [r for r in got if isinstance(r, Call)] == dirty.expected()
    rejections = [r for r in got if isinstance(r, Rejection)]
    assert {r.line for r in rejections} == garbage_at
    assert len(rejections) == len(garbage_at)
    assert all(r.file == sample.name and r.reason for r in rejections)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=READS)
@given(data=st.data())
def test_a_record_cut_short_is_rejected(fmt: str, data: st.DataObject) -> None:
    sample = data.draw(samples(fmt, strict=True))
    records = [i for i, row in enumerate(sample.rows) if row.call is not None]
    assume(records)
    index = data.draw(st.sampled_from(records))
    text = sample.rows[index].text
    # CSV: cut before the last comma (a separator is lost, or a quote left open);
    # Mitel: cut before column 62, where the called party starts (a cut inside that
    # field reads like a line a logger stripped of its trailing blanks, which is valid)
    last = 61 if fmt == "mitel" else last_separator(text)
    cut = data.draw(st.integers(1, last).filter(lambda n: text[:n].strip(b" \t\xef\xbb\xbf")))
    rows = list(sample.rows)
    rows[index] = Row(text[:cut], sample.rows[index].eol)
    cut_sample = sample.with_rows(rows)
    got = run(cut_sample)
    assert [r for r in got if isinstance(r, Call)] == cut_sample.expected()
    rejections = [r for r in got if isinstance(r, Rejection)]
    assert [r.line for r in rejections] == [index + 1]


@pytest.mark.parametrize("fmt", [*FORMATS, "auto"])
@settings(max_examples=scaled(200))
@given(blob=st.binary(max_size=400), cuts=st.lists(st.integers(min_value=0), max_size=4))
def test_binary_garbage_ends_only_in_rejections(fmt: str, blob: bytes, cuts: list[int]) -> None:
    got = list(read(split(blob, cuts), fmt, tz="UTC", name="junk"))
    assert all(isinstance(r, Rejection) for r in got)
    lines = blob.count(b"\n") + 1
    assert all(1 <= r.line <= lines for r in got)
    assert [r.line for r in got] == sorted({r.line for r in got})


def _split(splitter: object, text: str) -> list[str] | None:
    try:
        return splitter(text)  # type: ignore[operator, no-any-return]
    except RecordError:
        return None


@settings(max_examples=scaled(600))
@given(st.text(st.sampled_from('ab ,""\t\r\x00\u00e9'), max_size=30))
def test_the_csv_fast_path_agrees_with_the_reference(text: str) -> None:
    assert _split(split_csv, text) == _split(split_csv_slowly, text)
