"""The harvest's read of a batch (``intake.read_batch``, the bulk reader) against the
record-by-record read it replaced (kept here as the reference): the same calls, lines,
quarantine (rejections and duplicate call ids, with their file, line, reason and
record), for batches that start anywhere in their file and carry header lines."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from starwrs.collector import batch as batches
from starwrs.collector.readers import Call, Rejection, read
from starwrs.collector.readers.columnar import CALL_TYPES
from starwrs.collector.readers.testing import Row, samples
from starwrs.proxies.harvest.intake import read_batch

from ..collector.test_readers import garbage
from ..conftest import scaled


def reference(
    batch: batches.Batch,
) -> tuple[pa.Table, list[tuple[str, int, str, bytes]], list[bytes]]:
    """The read before the bulk reader, as it was."""
    source = batch.source
    body_lines = batch.body.split(b"\n")
    shift = batch.first_line - 1 - batch.header_lines

    def raw(line: int) -> bytes:
        return body_lines[line - 1][:512].rstrip(b"\r") if 0 < line <= len(body_lines) else b""

    calls: list[Call] = []
    lines: list[int] = []
    quarantine: list[tuple[str, int, str, bytes]] = []
    seen: dict[tuple[str, dt.datetime], int] = {}
    records = read(batch.body, batch.format, tz=batch.timezone, name=source, today=batch.file_date)
    for record in records:
        if isinstance(record, Rejection):
            quarantine.append((source, record.line + shift, record.reason, raw(record.line)))
            continue
        if record.call_id:
            key = (record.call_id, record.start)
            if key in seen:
                quarantine.append(
                    (
                        source,
                        record.line + shift,
                        f"duplicate of line {seen[key] + shift} (call id {record.call_id})",
                        raw(record.line),
                    )
                )
                continue
            seen[key] = record.line
        calls.append(record)
        lines.append(record.line)
    columns: dict[str, list[Any]] = {name: [] for name in CALL_TYPES}
    for call in calls:
        for name in CALL_TYPES:
            columns[name].append(getattr(call, name))
    columns["direction"] = [str(d) for d in columns["direction"]]
    columns["line"] = [line + shift for line in lines]
    table = pa.table({n: pa.array(v, type=CALL_TYPES[n]) for n, v in columns.items()})
    return table, quarantine, [raw(line) for line in lines]


@settings(max_examples=scaled(150))
@given(
    data=st.data(),
    fmt=st.sampled_from(["asterisk", "asterisk", "cucm", "avaya", "mitel"]),
    copies=st.integers(1, 3),
    lines=st.lists(st.tuples(st.integers(min_value=0), garbage), max_size=3),
    first_line=st.integers(1, 5000),
)
def test_read_batch_is_the_record_by_record_read(
    data: st.DataObject,
    fmt: str,
    copies: int,
    lines: list[tuple[int, bytes]],
    first_line: int,
) -> None:
    sample = data.draw(samples(fmt))
    rows = list(sample.rows) * copies  # the same call ids again: duplicates
    for where, text in lines:
        rows.insert(where % (len(rows) + 1), Row(text))
    dirty = sample.with_rows(rows)
    options = dirty.read_options()
    header = 0
    if fmt == "cucm":  # the field-name and field-type lines
        header = 1 + next(
            (i for i, r in enumerate(dirty.rows) if r.text.startswith(b"INTEGER")), -1
        )
    batch = batches.Batch(
        batch_id="b" * 32,
        enterprise="00022924",
        format=fmt,
        records=1,
        body=dirty.data,
        source="pbx:/var/log/x.csv",
        first_line=first_line,
        timezone=str(options.get("tz", "UTC")),
        header_lines=max(0, header),
        file_date=options.get("today"),
    )
    table, quarantine, raw = reference(batch)
    got = read_batch(batch)
    assert got.table.to_pylist() == table.to_pylist()
    assert sorted(got.quarantine, key=lambda q: q[1]) == sorted(quarantine, key=lambda q: q[1])
    assert [got.raw(i) for i in range(got.table.num_rows)] == raw
