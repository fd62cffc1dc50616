"""A whole batch body to one Arrow table of :class:`~.model.Call` columns, in bulk.

Theory of operation
-------------------
:func:`read_table` gives exactly what :func:`~.model.read` yields -- the same calls,
in line order, and the same rejections with their file, line and reason -- as a
table (``CALL_TYPES``) and a list of :class:`~.model.Rejection`, for a body held in
memory (the harvest's batches).  Every format but Asterisk is read record by record
(:func:`~.model.read`).  An Asterisk ``Master.csv`` is read in bulk, with no Python
per record, for the lines in *canonical* form, and record by record for the others:

1. the lines are cut at ``\\n`` (numpy) and looked at without splitting: a line is
   canonical when it is printable ASCII only (a ``\\r`` before its end aside) and
   every field is either quoted -- ``"…"``, a quote inside doubled, nothing between
   the closing quote and the comma -- or bare without a quote (one RE2 match per
   line and field count: ``_line_pattern``).  For such a line the stdlib ``csv``
   splitter the reader uses and Arrow's CSV parser give the same fields, and
   ``str.strip()`` strips only blanks;
2. the canonical lines of each field count are parsed by ``pyarrow.csv`` (only the
   fields a Call needs), and each check the reader makes is one vectorized test
   (times: ``YYYY-MM-DD HH:MM:SS`` with its digits, a real date, a local time that
   exists in the PBX's zone; counts: 1-10 digits; the disposition; the sequence);
   the layout of a 17- or 20-field record by whether field 17 looks like a uniqueid;
3. local times become UTC by the zone's offset per *hour* of wall-clock time, found
   with :mod:`zoneinfo` exactly as :func:`~._common.local_to_utc` finds it, at five
   points of the hour (cached per zone and hour): an hour whose points do not all
   exist with one offset (a DST change, a zone's rare shift) is left to step 4;
4. every line that is not canonical, or fails a test, or falls in such an hour, is
   read by the reader's own per-line parse (``asterisk.parser``,
   ``_common.drive_lines``): it gives the call, or the rejection and its reason.

So a well-formed file costs a few vectorized passes; a malformed record costs what
it always did, and reads the same.  A property test holds :func:`read_table` to
:func:`~.model.read` on written, garbled and cut files.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from starwrs.collector.readers import asterisk
from starwrs.collector.readers._common import MAX_LINE, drive_lines, split_csv, zone
from starwrs.collector.readers.model import Call, Rejection, read

__all__ = ["CALL_TYPES", "Table", "calls_table", "read_table"]

#: the columns (and types) of the table: :class:`Call`'s fields, ``direction`` as text
CALL_TYPES: dict[str, pa.DataType] = {
    "start": pa.timestamp("us", "UTC"),
    "duration": pa.int64(),
    "billable": pa.int64(),
    "answered": pa.bool_(),
    "calling": pa.string(),
    "called": pa.string(),
    "dialled": pa.string(),
    "direction": pa.string(),
    "account": pa.string(),
    "trunk": pa.string(),
    "call_id": pa.string(),
    "status": pa.string(),
    "source": pa.string(),
    "file": pa.string(),
    "line": pa.int64(),
}
SCHEMA = pa.schema(list(CALL_TYPES.items()))

IntArray = npt.NDArray[np.int64]


#: the Master.csv fields every call is read from (their names in ``asterisk``'s layouts)
_CALL_FIELDS = (
    "accountcode",
    "src",
    "dst",
    "clid",
    "channel",
    "dstchannel",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
)


@dataclass(frozen=True)
class Table:
    """What a body reads as: the calls (``CALL_TYPES``, line order) and the rejections
    (line order)."""

    calls: pa.Table
    rejections: list[Rejection]
    #: of the calls, how many were read in bulk (the rest record by record)
    bulk: int = 0


def calls_table(calls: Iterable[Call]) -> pa.Table:
    """Calls as a table of ``CALL_TYPES`` (one Python pass; for few calls)."""
    columns: dict[str, list[Any]] = {name: [] for name in CALL_TYPES}
    for call in calls:
        for name in CALL_TYPES:
            columns[name].append(getattr(call, name))
    columns["direction"] = [str(d) for d in columns["direction"]]
    return pa.table({n: pa.array(v, type=CALL_TYPES[n]) for n, v in columns.items()})


def read_table(
    data: bytes,
    format: str,
    *,
    tz: str | tzinfo | None = None,
    name: str = "-",
    today: date | None = None,
    max_extension_digits: int = 6,
    uniqueid: bool | None = None,
    userfield: bool | None = None,
    newcdrcolumns: bool | None = None,
    meter_pulses: bool = False,
) -> Table:
    """Read the records of *data* (see the module docstring); the options are those of
    :func:`~.model.read`.

    Raises:
        ValueError: as :func:`~.model.read` (unknown format, missing or unknown zone).
    """
    if format == "asterisk":
        return _Asterisk(
            data,
            zone(tz, asterisk.FORMAT),
            name,
            max_extension_digits,
            (uniqueid, userfield, newcdrcolumns),
        ).read()
    calls: list[Call] = []
    rejections: list[Rejection] = []
    for record in read(
        data,
        format,
        tz=tz,
        name=name,
        today=today,
        max_extension_digits=max_extension_digits,
        uniqueid=uniqueid,
        userfield=userfield,
        newcdrcolumns=newcdrcolumns,
        meter_pulses=meter_pulses,
    ):
        (calls if isinstance(record, Call) else rejections).append(record)  # type: ignore[arg-type]
    return Table(calls_table(calls), rejections)


# -- Asterisk in bulk ---------------------------------------------------------------------

#: a canonical field: quoted (printable, quotes doubled) or bare (printable, no quote
#: or comma); see the module docstring
_FIELD = r'(?:"(?:[ !#-~]|"")*"|[ !#-+\--~]*)'
_UNIQUEID = r"^(?:[0-9A-Za-z_.-]+-)?[0-9]{9,}\.[0-9]+$"  # asterisk._UNIQUEID, on ASCII
_DIGIT_BYTES = np.zeros(256, dtype=bool)
_DIGIT_BYTES[48:58] = True
_STATION_BYTES = _DIGIT_BYTES.copy()  # _common._EXTENSION: [0-9*#]
_STATION_BYTES[[ord("*"), ord("#")]] = True
_CLID = r"<(?P<n>[^<>]*)> *$"  # asterisk._CLID_NUMBER, on printable ASCII
#: the years read in bulk (others, and every one a datetime may overflow near, per line)
_YEARS = (1800, 2200)


@functools.cache
def _line_pattern(fields: int) -> str:
    """A line (its ``\\n`` included, when it has one) of *fields* canonical fields."""
    return rf"^{_FIELD}(?:,{_FIELD}){{{fields - 1}}}\r?\n?$"


class _Asterisk:
    def __init__(
        self,
        data: bytes,
        local: tzinfo,
        name: str,
        max_extension_digits: int,
        options: tuple[bool | None, bool | None, bool | None],
    ) -> None:
        self.data = data
        self.local = local
        self.name = name
        self.max_digits = max_extension_digits
        self.options = options
        self.allowed = asterisk.allowed_layouts(*options)

    # -- lines -------------------------------------------------------------------------

    def _lines(self) -> None:
        buf = np.frombuffer(self.data, dtype=np.uint8)
        ends = np.flatnonzero(buf == 10)
        starts = np.empty(len(ends) + 1, dtype=np.int64)
        starts[0] = 0
        starts[1:] = ends + 1
        if starts[-1] >= len(buf):  # the data ends with its last line's \n
            starts = starts[:-1]
            bounds = np.append(starts, len(buf))
        else:
            bounds = np.append(starts, len(buf))
            ends = np.append(ends, len(buf))
        self.starts, self.ends = starts, ends  # [start, end) without the \n
        self.n = len(starts)
        # every line with its \n, as one binary array over the data (no copy)
        self.lines = pa.Array.from_buffers(
            pa.binary(),
            self.n,
            [None, pa.py_buffer(bounds.astype(np.int32)), pa.py_buffer(self.data)],
        )

    def _raw(self, i: int) -> bytes | None:
        line = self.data[int(self.starts[i]) : int(self.ends[i])]
        if line.endswith(b"\r"):
            line = line[:-1]
        return None if len(line) > MAX_LINE else line

    def _first_count(self) -> int | None:
        """The field count of the first line that splits (the likely one of all)."""
        for i in range(min(self.n, 16)):
            raw = self._raw(i)
            if raw and raw.strip():
                try:
                    return len(split_csv(raw.decode("ascii")))
                except (UnicodeDecodeError, ValueError):
                    continue
        return None

    # -- the read ----------------------------------------------------------------------

    def read(self) -> Table:
        if len(self.data) >= 2**31 - 1:  # int32 offsets; a batch is far smaller
            return self._slowly(np.arange(0))
        self._lines()
        if not self.n:
            return Table(SCHEMA.empty_table(), [])
        counts = sorted({len(names) for _, names in self.allowed})
        first = self._first_count()
        order = ([first] if first in counts else []) + [c for c in counts if c != first]
        rest = np.arange(self.n)
        short = (self.ends - self.starts) <= MAX_LINE + 1
        rest = rest[short[rest]]
        groups: list[tuple[int, IntArray]] = []
        for count in order:
            if not len(rest):
                break
            subset = self.lines if len(rest) == self.n else self.lines.take(pa.array(rest))
            hit = pc.match_substring_regex(subset, _line_pattern(count))
            mask = np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)
            if mask.any():
                groups.append((count, rest[mask]))
            rest = rest[~mask]
        grouped = np.zeros(self.n, dtype=bool)
        tables: list[pa.Table] = []
        slow: list[IntArray] = []
        for count, rows in groups:
            grouped[rows] = True
            table, left = self._bulk(count, rows)
            tables.append(table)
            slow.append(left)
        slow.append(np.flatnonzero(~grouped))
        late = self._slowly(np.sort(np.concatenate(slow)))
        tables = [t for t in (*tables, late.calls) if t.num_rows]
        if not tables:
            return Table(SCHEMA.empty_table(), late.rejections)
        calls = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        if len(tables) > 1:  # more than one source: back to line order
            calls = calls.take(pc.sort_indices(calls.column("line")))
        return Table(calls, late.rejections, calls.num_rows - late.calls.num_rows)

    def _slowly(self, rows: IntArray) -> Table:
        """The lines *rows* (sorted indexes), by the reader's own per-line parse."""
        if not len(rows):
            return Table(SCHEMA.empty_table(), [])
        if not hasattr(self, "starts"):
            self._lines()
        parse = asterisk.parser(
            tz=self.local,
            name=self.name,
            uniqueid=self.options[0],
            userfield=self.options[1],
            newcdrcolumns=self.options[2],
            max_extension_digits=self.max_digits,
        )
        calls: list[Call] = []
        rejections: list[Rejection] = []
        lines = ((int(i) + 1, self._raw(int(i))) for i in rows)
        for record in drive_lines(lines, self.name, parse):
            (calls if isinstance(record, Call) else rejections).append(record)  # type: ignore[arg-type]
        return Table(calls_table(calls), rejections)

    def _bulk(self, count: int, rows: IntArray) -> tuple[pa.Table, IntArray]:
        """The canonical lines *rows* of *count* fields: their calls, and the rows the
        per-line parse must read after all."""
        fits = [(layout, names) for layout, names in self.allowed if len(names) == count]
        wanted = {*_CALL_FIELDS, "uniqueid", "linkedid", "sequence"}
        used = sorted({i for _, names in fits for i, f in enumerate(names) if f in wanted})
        if len(fits) > 1:
            used = sorted({*used, 16})  # uniqueid or userfield
        if len(rows) == self.n:
            source = pa.py_buffer(self.data)
        else:
            taken = self.lines.take(pa.array(rows))
            offsets = np.frombuffer(taken.buffers()[1], dtype=np.int32, count=len(rows) + 1)
            source = taken.buffers()[2][int(offsets[0]) : int(offsets[-1])]
        try:
            parsed = pcsv.read_csv(
                pa.BufferReader(source),
                read_options=pcsv.ReadOptions(autogenerate_column_names=True),
                parse_options=pcsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=True),
                convert_options=pcsv.ConvertOptions(
                    include_columns=[f"f{i}" for i in used],
                    column_types={f"f{i}": pa.string() for i in used},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return SCHEMA.empty_table(), rows
        if parsed.num_rows != len(rows):
            return SCHEMA.empty_table(), rows
        field = {i: pc.ascii_trim(parsed.column(f"f{i}").combine_chunks(), " ") for i in used}
        ok = np.ones(len(rows), dtype=bool)

        def column(name: str, layout_names: tuple[str, ...]) -> pa.Array | None:
            return field[layout_names.index(name)] if name in layout_names else None

        names_a = fits[0][1]
        if len(fits) > 1:  # 17 or 20 fields: uniqueid or userfield in field 17
            uid_layout = next(names for layout, names in fits if layout.uniqueid)
            uf_layout = next(names for layout, names in fits if not layout.uniqueid)
            is_uid = _mask(pc.match_substring_regex(field[16], _UNIQUEID))
            call_id = self._call_id(uid_layout, column)
            other = self._call_id(uf_layout, column)
            call_id = pc.if_else(pa.array(is_uid), call_id, other)
            sequence = [column("sequence", uid_layout), column("sequence", uf_layout)]
        else:
            call_id = self._call_id(names_a, column)
            sequence = [column("sequence", names_a)]
        for seq in sequence:
            if seq is not None:
                ok &= _count(seq)
        get = {f: column(f, names_a) for f in _CALL_FIELDS}
        start_s, good = self._times(get["start"], required=True)
        ok &= good
        ok &= self._times(get["answer"], required=False)[1]
        ok &= self._times(get["end"], required=True)[1]
        for name in ("duration", "billsec"):
            ok &= _count(get[name])
        disposition = get["disposition"]
        ok &= _mask(pc.is_in(disposition, pa.array(sorted(asterisk.DISPOSITIONS))))
        left = rows[~ok]
        if not ok.any():
            return SCHEMA.empty_table(), left
        if ok.all():
            pick = {k: v for k, v in get.items() if v is not None}
        else:
            keep = pa.array(ok)
            pick = {k: pc.filter(v, keep) for k, v in get.items() if v is not None}
            call_id = pc.filter(call_id, keep)
            start_s = start_s[ok]
        src = pick["src"]
        empty_src = pc.equal(src, "")
        if _mask(empty_src).any():
            found = pc.struct_field(pc.extract_regex(pick["clid"], _CLID), [0])
            from_clid = pc.fill_null(pc.utf8_trim_whitespace(found), "")
            calling = pc.if_else(empty_src, from_clid, src)
        else:
            calling = src
        called = pick["dst"]
        inside_from = self._extension(calling)
        inside_to = self._extension(called)
        internal = pc.and_(inside_from, inside_to)
        inbound = pc.and_(pc.invert(inside_from), inside_to)
        outbound = pc.invert(pc.or_(internal, inbound))
        direction = pc.if_else(internal, "internal", pc.if_else(inbound, "inbound", "outbound"))
        answered = pc.equal(pick["disposition"], "ANSWERED")
        billsec = pc.cast(pick["billsec"], pa.int64())
        kept = len(start_s)
        table = pa.table(
            {
                "start": pa.array(start_s * 1_000_000, pa.int64()).view(CALL_TYPES["start"]),
                "duration": pc.cast(pick["duration"], pa.int64()),
                "billable": pc.if_else(answered, billsec, 0),
                "answered": answered,
                "calling": calling,
                "called": called,
                "dialled": called,
                "direction": direction.cast(pa.string()),
                "account": pick["accountcode"],
                "trunk": pc.if_else(outbound, pick["dstchannel"], pick["channel"]),
                "call_id": call_id,
                "status": pick["disposition"],
                "source": pa.repeat(pa.scalar(asterisk.FORMAT), kept),
                "file": pa.repeat(pa.scalar(self.name), kept),
                "line": pa.array(rows[ok] + 1, pa.int64()),
            },
            schema=SCHEMA,
        )
        return table, left

    @staticmethod
    def _call_id(names: tuple[str, ...], column: Any) -> pa.Array:
        """``uniqueid or linkedid or ''`` of the layout *names* (asterisk._call)."""
        uid, linked = column("uniqueid", names), column("linkedid", names)
        if uid is None and linked is None:
            return pa.repeat(pa.scalar(""), len(column("src", names)))
        if uid is None:
            return linked
        if linked is None:
            return uid
        return pc.if_else(pc.equal(uid, ""), linked, uid)

    def _extension(self, numbers: pa.Array) -> pa.Array:
        """``_common.is_extension`` of each (ASCII) number: 1 to max_digits of
        ``[0-9*#]``."""
        lengths, inside = _bytes_in(numbers, _STATION_BYTES)
        return pa.array(inside & (lengths >= 1) & (lengths <= self.max_digits))

    # -- times -------------------------------------------------------------------------

    def _times(self, values: pa.Array, *, required: bool) -> tuple[IntArray, npt.NDArray[Any]]:
        """(UTC epoch seconds, readable in bulk) of local ``YYYY-MM-DD HH:MM:SS`` texts;
        an empty one is readable when not *required* (its seconds are 0)."""
        n = len(values)
        offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)
        offsets = offsets[values.offset : values.offset + n + 1].astype(np.int64)
        lengths = np.diff(offsets)
        seconds = np.zeros(n, dtype=np.int64)
        ok = np.zeros(n, dtype=bool) if required else lengths == 0
        at = np.flatnonzero(lengths == 19)
        if not len(at):
            return seconds, ok
        raw = np.frombuffer(values.buffers()[2], dtype=np.uint8)
        if len(at) == n:  # every text 19 bytes: the values side by side, no copy
            text = raw[offsets[0] : offsets[0] + 19 * n].reshape(n, 19)
        else:
            text = raw[offsets[at][:, None] + np.arange(19)]
        shape = np.all((text[:, _DIGIT_PLACES] - 48) <= 9, axis=1)  # uint8: below '0' wraps
        shape &= np.all(text[:, _SEPARATOR_PLACES] == _SEPARATORS, axis=1)
        at, text = at[shape], text[shape]
        chosen = values if len(at) == n else values.take(pa.array(at))
        try:  # Arrow's ISO 8601 parser refuses what datetime() refuses (30 Feb, 24:00, :60)
            naive = np.asarray(pc.cast(chosen, pa.timestamp("s")).cast(pa.int64()).to_numpy())
            good = (naive >= _BOUNDS[0]) & (naive <= _BOUNDS[1])
        except pa.ArrowInvalid:  # some date is not real: find which
            naive, good = _civil_seconds(text)
        at, naive = at[good], naive[good]
        offset, known = _hour_offsets(self.local, naive // 3600)
        seconds[at] = naive - offset
        ok[at] = known
        return seconds, ok


_DIGIT_PLACES = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_SEPARATOR_PLACES = [4, 7, 10, 13, 16]
_SEPARATORS = np.frombuffer(b"-- ::", dtype=np.uint8)
#: epoch seconds of the first and last second of the years read in bulk
_BOUNDS = (
    int((datetime(_YEARS[0], 1, 1) - datetime(1970, 1, 1)).total_seconds()),
    int((datetime(_YEARS[1], 12, 31, 23, 59, 59) - datetime(1970, 1, 1)).total_seconds()),
)


def _civil_seconds(text: npt.NDArray[np.uint8]) -> tuple[IntArray, npt.NDArray[Any]]:
    """(naive epoch seconds, a real date and time in the years read in bulk) of
    ``YYYY-MM-DD HH:MM:SS`` texts already of that shape (one row of bytes each)."""
    digits = text.astype(np.int64) - 48

    def number(a: int, b: int) -> IntArray:
        value = np.zeros(len(text), dtype=np.int64)
        for k in range(a, b):
            value = value * 10 + digits[:, k]
        return value

    year, month, day = number(0, 4), number(5, 7), number(8, 10)
    hour, minute, second = number(11, 13), number(14, 16), number(17, 19)
    good = (year >= _YEARS[0]) & (year <= _YEARS[1]) & (month >= 1) & (month <= 12)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    last = month_days[np.clip(month, 1, 12) - 1] + ((month == 2) & leap)
    good &= (day >= 1) & (day <= last) & (hour <= 23) & (minute <= 59) & (second <= 59)
    naive = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return naive, good


def _bytes_in(values: pa.Array, allowed: npt.NDArray[Any]) -> tuple[IntArray, npt.NDArray[Any]]:
    """(length, every byte *allowed*) of each value of a string array (no nulls)."""
    n = len(values)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)
    offsets = offsets[values.offset : values.offset + n + 1].astype(np.int64)
    lengths = np.diff(offsets)
    data = values.buffers()[2]
    if data is None or not n or offsets[-1] == offsets[0]:
        return lengths, np.ones(n, dtype=bool)
    raw = np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]
    bad = ~allowed[raw]
    if not bad.any():
        return lengths, np.ones(n, dtype=bool)
    # the values holding a bad byte: the value of each bad byte's position
    owner = np.searchsorted(offsets, np.flatnonzero(bad) + offsets[0], side="right") - 1
    inside = np.ones(n, dtype=bool)
    inside[owner] = False
    return lengths, inside


def _count(values: pa.Array) -> npt.NDArray[Any]:
    """``_common.parse_count`` accepts it: 1 to 10 decimal digits."""
    lengths, digits = _bytes_in(values, _DIGIT_BYTES)
    return np.asarray(digits & (lengths >= 1) & (lengths <= 10))


def _mask(values: pa.Array | pa.ChunkedArray) -> npt.NDArray[Any]:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _days_from_civil(year: IntArray, month: IntArray, day: IntArray) -> IntArray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return np.asarray(era * 146097 + doe - 719468, dtype=np.int64)


# -- the zone's offset per hour of wall-clock time -----------------------------------------

_EPOCH = datetime(1970, 1, 1)
#: points of an hour checked (seconds after the hour)
_POINTS = (0, 900, 1800, 2700, 3599)
_offsets: dict[tuple[tzinfo, int], int | None] = {}
_offsets_lock = threading.Lock()
_OFFSETS_KEPT = 1_000_000


def _offset_of_hour(local: tzinfo, hour: int) -> int | None:
    """UTC - wall clock (s) in the wall-clock hour *hour* (hours since 1970), when every
    checked point of it exists (``_common.local_to_utc``) with that one offset."""
    if local is UTC:
        return 0
    found: set[int] = set()
    for point in _POINTS:
        naive = _EPOCH + timedelta(seconds=hour * 3600 + point)
        try:
            utc = naive.replace(tzinfo=local, fold=0).astimezone(UTC)
        except (OverflowError, ValueError):
            return None
        if utc.astimezone(local).replace(tzinfo=None) != naive:
            return None
        found.add(int((naive - utc.replace(tzinfo=None)).total_seconds()))
    return found.pop() if len(found) == 1 else None


def _hour_offsets(local: tzinfo, hours: IntArray) -> tuple[IntArray, npt.NDArray[Any]]:
    """(offset per value, known) for wall-clock hours (see :func:`_offset_of_hour`)."""
    if not len(hours):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    low = int(hours.min())
    span = int(hours.max()) - low + 1
    if span <= 4 * len(hours) + 1024:  # dense: no sort
        present = np.zeros(span, dtype=bool)
        present[hours - low] = True
        distinct = np.flatnonzero(present) + low
        where = np.zeros(span, dtype=np.int64)
        where[distinct - low] = np.arange(len(distinct))
        inverse = where[hours - low]
    else:
        distinct, inverse = np.unique(hours, return_inverse=True)
    values = np.zeros(len(distinct), dtype=np.int64)
    known = np.ones(len(distinct), dtype=bool)
    with _offsets_lock:
        if len(_offsets) > _OFFSETS_KEPT:
            _offsets.clear()
        for k, hour in enumerate(distinct.tolist()):
            entry = (local, hour)
            if entry not in _offsets:
                _offsets[entry] = _offset_of_hour(local, hour)
            offset = _offsets[entry]
            if offset is None:
                known[k] = False
            else:
                values[k] = offset
    return values[inverse], known[inverse]
