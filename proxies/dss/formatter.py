"""The formatter (seed 001, Figure 12(b), Figure 13(c) steps 650-665): query rows -> report file.

Theory of operation
-------------------
The report SQL (:mod:`starwrs.proxies.dss.sql`) hands over rows that are already
filtered, aggregated, sorted, cut at the threshold and subtotalled: ``(_rt, dims...,
facts...)`` as its :class:`~starwrs.proxies.dss.sql.ReportPlan` describes, the ``T``
(total) row first.  :class:`ReportFormatter` turns them into the records of the report
file of PROTOCOL.md section 6, one row at a time:

* line 1 holds the column ids, ``0`` first (the row-type column); every later line
  starts with its row type, ``D`` detail, ``S`` subtotal, ``T`` total;
* dimension values are written as text (dates ISO ``YYYY-MM-DD``), translated codes as
  their literals (the translation table), empty where a subtotal or the total has no
  value; numbers as plain decimals with the column's DECIMAL digits, half away from
  zero, no thousands separator;
* derived columns are computed here, with the one evaluator the viewer shares
  (:mod:`starwrs.proxies.dss.expr`): ``Cn`` from the line itself, ``CTn`` from the
  report total, so percentages of a report add up to 100 within rounding;
* ``S`` lines only with TOTALMODE 1 or 3, the ``T`` line (last) only with 2 or 3; the
  totals of the selected additive facts are kept for the NRL's ``TOTAL=`` whatever the
  mode (:attr:`ReportFormatter.totals`).

:func:`write_report` streams the records into a ``.csv`` (RFC 4180, UTF-8, ``\\r\\n``)
or, with ``compress``, a ``.csv_zip`` (a zip archive holding the one ``.csv``).  It
writes a temporary file in the target directory, fsyncs it, and only then links it
under a fresh unique name (never replacing a file) and fsyncs the directory: a failure
anywhere -- the query, a full disk -- removes the temporary file and leaves no report
behind, and a report that exists is whole.  :func:`iter_rows` reads a DuckDB result in
batches, so memory stays bounded whatever the number of rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import secrets
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from starwrs.grammar.vocab import TotalMode
from starwrs.proxies.dss import expr as ex
from starwrs.proxies.dss.columns import COLUMNS, translate
from starwrs.proxies.dss.sql import ReportPlan

__all__ = [
    "BATCH_ROWS",
    "ReportFile",
    "ReportFormatter",
    "format_number",
    "format_value",
    "iter_rows",
    "write_report",
]

#: rows fetched from the database at a time
BATCH_ROWS = 10_000


class _Cursor(Protocol):
    def fetchmany(self, size: int = ...) -> list[Any]: ...


def iter_rows(result: _Cursor, batch: int = BATCH_ROWS) -> Iterator[Sequence[object]]:
    """The rows of a DuckDB result (or any DB-API cursor), *batch* at a time."""
    while rows := result.fetchmany(batch):
        yield from rows


def format_number(value: object, decimals: int) -> str:
    """A number as the file writes it: plain decimal, *decimals* digits ("" if empty)."""
    if value is None:
        return ""
    if type(value) is not Decimal:
        if isinstance(value, float):
            raise TypeError("report numbers are exact: got a float")
        value = Decimal(str(value))
    assert isinstance(value, Decimal)
    return format(ex.quantize(value, decimals), "f")


def format_value(colid: int, value: object) -> str:
    """A dimension value as the file writes it (translated where the table says)."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, dt.date | dt.datetime | dt.time) else str(value)
    return translate(colid, text) if COLUMNS[colid].translate else text


_Cell = Callable[[Sequence[object], dict[int, object]], str]


class ReportFormatter:
    """Rows of the report query -> records of the report file.

    Args:
        plan: the query's :class:`~starwrs.proxies.dss.sql.ReportPlan`.
    """

    def __init__(self, plan: ReportPlan) -> None:
        self.plan = plan
        n_dims = len(plan.dims)
        self._fact_at = {c: 1 + n_dims + i for i, c in enumerate(plan.facts)}
        self._total_row: Sequence[object] | None = None
        self._total_values: dict[int, object] = {}
        self.details = 0
        self.subtotals = 0
        mode = plan.total_mode
        self._write_s = mode in (TotalMode.SUBTOTAL, TotalMode.BOTH)
        self._write_t = mode in (TotalMode.TOTAL, TotalMode.BOTH)
        dim_at = {c: 1 + i for i, c in enumerate(plan.dims)}
        self._cells: list[_Cell] = []
        for c in plan.columns:
            col = COLUMNS[c]
            if col.dimension:
                self._cells.append(self._dimension_cell(c, dim_at[c]))
            elif col.derived:
                self._cells.append(self._derived_cell(c))
            else:
                self._cells.append(self._fact_cell(self._fact_at[c], col.decimals))
        self._needs_facts = bool(plan.derived)

    @staticmethod
    def _dimension_cell(colid: int, at: int) -> _Cell:
        if COLUMNS[colid].translate:
            return lambda row, facts: format_value(colid, row[at])

        def cell(row: Sequence[object], facts: dict[int, object]) -> str:
            value = row[at]
            return value if type(value) is str else format_value(colid, value)

        return cell

    @staticmethod
    def _fact_cell(at: int, decimals: int) -> _Cell:
        return lambda row, facts: format_number(row[at], decimals)

    def _derived_cell(self, colid: int) -> _Cell:
        run = ex.compile_expression(ex.parse_expression(COLUMNS[colid].equation))
        decimals = COLUMNS[colid].decimals

        def cell(row: Sequence[object], facts: dict[int, object]) -> str:
            return format_number(run(facts, self._total_values), decimals)  # type: ignore[arg-type]

        return cell

    def header(self) -> list[str]:
        """Line 1: ``0`` and the column ids."""
        return ["0", *(str(c) for c in self.plan.columns)]

    @property
    def totals(self) -> tuple[tuple[int, str], ...]:
        """(column id, formatted total) of every selected additive fact, in file order."""
        return tuple(
            (c, format_number(self._total_values.get(c, 0), COLUMNS[c].decimals))
            for c in self.plan.columns
            if COLUMNS[c].additive
        )

    def _record(self, row_type: str, row: Sequence[object]) -> list[str]:
        facts = {c: row[i] for c, i in self._fact_at.items()} if self._needs_facts else {}
        return [row_type, *(cell(row, facts) for cell in self._cells)]

    def records(self, rows: Iterable[Sequence[object]]) -> Iterator[list[str]]:
        """The file's records: the header, then one per D/S line, then the T line.

        Args:
            rows: the query's rows in its order (the ``T`` row first).
        """
        yield self.header()
        for row in rows:
            row_type = row[0]
            if row_type == "T":
                self._total_row = row
                self._total_values = {c: row[i] for c, i in self._fact_at.items()}
            elif row_type == "D":
                self.details += 1
                yield self._record("D", row)
            elif row_type == "S":
                if self._write_s:
                    self.subtotals += 1
                    yield self._record("S", row)
            else:
                raise ValueError(f"unknown row type {row_type!r}")
        if self._write_t:
            total = self._total_row
            if total is None:  # no T row (not from our SQL): zeros
                total = ["T"] + [None] * len(self.plan.dims) + [0] * len(self.plan.facts)
            yield self._record("T", total)


@dataclass(frozen=True, slots=True)
class ReportFile:
    """A report file written by :func:`write_report`.

    Attributes:
        path: where it is.
        size: bytes (the NRL's FSIZE).
        sha256: hex digest of the file (the bulk put's checksum).
        compressed: a ``.csv_zip``.
        rows: D lines.
        subtotals: S lines.
        totals: (column id, formatted total) of the selected additive facts.
    """

    path: Path
    size: int
    sha256: str
    compressed: bool
    rows: int
    subtotals: int
    totals: tuple[tuple[int, str], ...]

    @property
    def name(self) -> str:
        """The file's unique name."""
        return self.path.name

    @property
    def nrl_total(self) -> tuple[tuple[str, str], ...]:
        """The NRL's ``TOTAL=<<36,3491.70><58,236.90><67,580>>`` rows."""
        return tuple((str(c), value) for c, value in self.totals)


class _HashingWriter(io.RawIOBase):
    """A write-only, unseekable stream that hashes and counts what passes through."""

    def __init__(self, raw: io.BufferedWriter) -> None:
        super().__init__()
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.raw.write(view)
        self.digest.update(view)
        self.size += len(view)
        return len(view)

    def flush(self) -> None:
        self.raw.flush()


class _Utf8Lines:
    """What ``csv.writer`` writes to: encodes, buffers, and writes to *out* in chunks.

    No io wrapper sits between, so a failed write leaves nothing that flushes later.
    """

    def __init__(self, out: Any, chunk: int = 1 << 16) -> None:
        self.out = out
        self.chunk = chunk
        self.buffer = bytearray()

    def write(self, text: str) -> int:
        self.buffer += text.encode("utf-8")
        if len(self.buffer) >= self.chunk:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self.buffer:
            self.out.write(bytes(self.buffer))
            self.buffer.clear()


def _write_csv(out: Any, records: Iterable[list[str]]) -> None:
    lines = _Utf8Lines(out)
    writer = csv.writer(lines, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    for record in records:
        writer.writerow(record)
    lines.flush()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_report(
    rows: Iterable[Sequence[object]],
    plan: ReportPlan,
    directory: Path | str,
    *,
    compress: bool = False,
    stem: str = "report",
) -> ReportFile:
    """Format *rows* into a new report file in *directory*, atomically.

    Args:
        rows: the report query's rows, in its order (e.g. :func:`iter_rows`).
        plan: the query's plan.
        directory: where the file goes (must exist; the same file system as the
            temporary file, which is written there too).
        compress: write a ``.csv_zip`` (COMPRESS=1) instead of a ``.csv``.
        stem: the start of the file name; a unique suffix is added
            (``<stem>_<20 hex>.csv``).

    Returns:
        The :class:`ReportFile` (path, size, sha256, line counts, totals).

    Raises:
        OSError: writing failed (a full disk ...); no file is left behind.
        Exception: whatever *rows* raised (a failed query); no file is left behind.
    """
    directory = Path(directory)
    formatter = ReportFormatter(plan)
    suffix = ".csv_zip" if compress else ".csv"
    name = f"{stem}_{secrets.token_hex(10)}"
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".partial-", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            sink = _HashingWriter(raw)
            if compress:
                with (
                    zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive,
                    archive.open(f"{name}.csv", "w", force_zip64=True) as member,
                ):
                    _write_csv(member, formatter.records(rows))
            else:
                _write_csv(sink, formatter.records(rows))
            raw.flush()
            os.fsync(raw.fileno())
        while True:
            path = directory / f"{name}{suffix}"
            try:
                os.link(tmp, path)  # never replaces an existing report
            except FileExistsError:
                name = f"{stem}_{secrets.token_hex(10)}"
                continue
            break
        tmp.unlink()
        _fsync_dir(directory)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ReportFile(
        path=path,
        size=sink.size,
        sha256=sink.digest.hexdigest(),
        compressed=compress,
        rows=formatter.details,
        subtotals=formatter.subtotals,
        totals=formatter.totals,
    )
