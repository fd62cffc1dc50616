"""Array helpers of the bulk rating (:mod:`.rating_bulk`): gathers with SQL's NULL as
``-1``, dictionary columns, DuckDB's integer arithmetic, the normalization of numbers
written as ``+`` and digits, and the memos of values a process has met.

Theory of operation
-------------------
Everything here works on numpy arrays of row indexes into small tables of distinct
values; ``-1`` is NULL and every gather keeps it.  :func:`clean_numbers` is the numbers
step of the rating statement (``rating_sql._norm_ctes``: ``NUMBER_PATTERN``, then
without the outside digits) for texts of ``+`` and digits, by byte columns: its five
forms exclude each other, so one mask each gives what the regular expression gives.
:class:`Memo` keeps the rows a statement computed for values (a clock's quarter-hour,
a place's ``gk``) whose answer cannot change while the process runs.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "CLOCKS",
    "PLACES",
    "QUARTERS",
    "WIDTH",
    "Memo",
    "charges",
    "checked_mul",
    "clean_numbers",
    "dense",
    "first",
    "flat",
    "i64",
    "labels",
    "numpy",
    "over",
    "pick",
    "tdiv",
    "zone_code",
]

IntArray = npt.NDArray[np.int64]


def flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def i64(values: Any) -> IntArray:
    return np.asarray(values, dtype=np.int64)


def numpy(array: pa.Array | pa.ChunkedArray, fill: Any) -> npt.NDArray[Any]:
    return np.asarray(pc.fill_null(array, fill).to_numpy(zero_copy_only=False))


def pick(index: IntArray, values: npt.NDArray[Any], missing: Any) -> npt.NDArray[Any]:
    """``values[index]``, *missing* where index is -1."""
    if not len(values):
        return np.full(len(index), missing, dtype=np.asarray([missing]).dtype)
    out = values[np.clip(index, 0, None)]
    return np.where(index >= 0, out, missing)


def first(*indexes: IntArray) -> IntArray:
    """SQL ``coalesce`` of row indexes (-1 is NULL)."""
    out = indexes[0].copy()
    for index in indexes[1:]:
        out = np.where(out >= 0, out, index)
    return out


def dense(keys: IntArray) -> tuple[IntArray, IntArray]:
    """(distinct keys ascending, each key's position in them); keys >= 0."""
    if not len(keys):
        return i64([]), i64([])
    top = int(keys.max()) + 1
    if top <= 4 * len(keys) + 4096:
        present = np.zeros(top, dtype=bool)
        present[keys] = True
        distinct = np.flatnonzero(present)
        where = np.zeros(top, dtype=np.int64)
        where[distinct] = np.arange(len(distinct))
        return distinct.astype(np.int64), where[keys]
    distinct, inverse = np.unique(keys, return_inverse=True)
    return distinct.astype(np.int64), inverse.astype(np.int64)


def labels(codes: IntArray, labels: list[str] | pa.Array) -> pa.DictionaryArray:
    """A dictionary array of *codes* into *labels* (-1: null), holding only the labels
    used, each once (``load_calls`` reads a dictionary whole)."""
    dictionary = labels if isinstance(labels, pa.Array) else pa.array(labels, pa.string())
    used, inverse = dense(np.where(codes >= 0, codes, 0))
    unique = pc.dictionary_encode(dictionary.take(pa.array(used)))  # a null label: a null
    remap = numpy(unique.indices, -1).astype(np.int64)[inverse]
    mask = (codes < 0) | (remap < 0)
    return pa.DictionaryArray.from_arrays(
        pa.array(np.where(mask, 0, remap).astype(np.int32), mask=mask if mask.any() else None),
        unique.dictionary,
    )


def tdiv(a: IntArray, b: int) -> IntArray:
    """DuckDB's integer ``//`` (toward zero; numpy's floors)."""
    return np.where(a >= 0, a // b, -((-a) // b))


def over(index: IntArray, values: pa.Array) -> pa.DictionaryArray:
    """A dictionary array of *values* (a small distinct table's column) by *index*;
    null where index is -1 or the value is null."""
    mask = index < 0
    if values.null_count and len(values):
        mask |= pick(index, np.asarray(values.is_null().to_numpy(zero_copy_only=False)), True)
        # no null in a dictionary (Arrow cannot unify such dictionaries): those entries are
        # never pointed at, any value does
        values = pc.fill_null(values, pa.scalar("", values.type) if pa.types.is_string(
            values.type) else pa.scalar(0, values.type))  # fmt: skip
    return pa.DictionaryArray.from_arrays(
        pa.array(np.where(mask, 0, index).astype(np.int32), mask=mask if mask.any() else None),
        values,
    )


def distinct_codes(values: pa.Array) -> tuple[IntArray, pa.Array]:
    """(each value's index into the distinct values or -1 for null, the distinct values):
    for :func:`over` on a column of a table with a row per place, whose values repeat
    (a country code, a state), so that the dictionary is the few values, not one per
    place -- a smaller staged file, and less for the DSS to decode."""
    encoded = pc.dictionary_encode(values)
    return numpy(encoded.indices, -1).astype(np.int64), encoded.dictionary


def checked_mul(a: IntArray, b: IntArray) -> IntArray:
    """a * b in int64, raising as DuckDB does when a product does not fit."""
    big = np.abs(a.astype(np.float64) * b.astype(np.float64)) >= 9.2e18
    if big.any():
        for x, y in zip(a[big].tolist(), b[big].tolist(), strict=True):
            if not -(2**63) <= x * y < 2**63:
                raise OverflowError(f"Overflow in multiplication of INT64 ({x} * {y})!")
    return a * b


#: the longest number text normalized in numpy (longer ones: by the statement)
WIDTH = 24


def _classify(
    m: npt.NDArray[np.uint8], length: IntArray, home: bytes
) -> tuple[npt.NDArray[np.uint8], IntArray]:
    """``NUMBER_PATTERN`` and ``_e164_of`` on texts of ``+`` and digits (rows of *m*,
    zero-padded; *length* each): the E.164 bytes (18 wide) and their length (0: none).
    Its five forms exclude each other, so their order does not matter."""
    rows = len(length)
    width = m.shape[1]

    def col(k: int) -> npt.NDArray[np.uint8]:
        return m[:, k] if k < width else np.zeros(rows, np.uint8)

    def in29(k: int) -> npt.NDArray[np.bool_]:
        return (col(k) >= 50) & (col(k) <= 57)

    plus = col(0) == 43
    a = plus & (length == 12) & (col(1) == 49) & in29(2) & in29(5)
    b = plus & (length >= 9) & (length <= 16) & (col(1) != 49)
    c = ~plus & (length >= 10) & (length <= 18) & (col(0) == 48) & (col(1) == 49)
    c &= (col(2) == 49) & (col(3) != 49)
    d = ~plus & (
        ((length == 10) & in29(0) & in29(3)) | ((length == 11) & (col(0) == 49) & in29(1) & in29(4))
    )
    e = ~plus & (length == 7) & in29(0) & (len(home) == 3)
    out = np.zeros((rows, 18), dtype=np.uint8)
    size = np.zeros(rows, dtype=np.int64)
    padded = np.zeros((rows, max(width, 18)), dtype=np.uint8)
    padded[:, :width] = m
    same = a | b  # already E.164
    out[same] = padded[same, :18]
    size[same] = length[same]
    out[c, 0] = 43
    out[c, 1:16] = padded[c, 3:18]
    size[c] = length[c] - 2
    if d.any():
        start = length[d] - 10
        out[d, 0], out[d, 1] = 43, 49
        out[d, 2:12] = padded[np.flatnonzero(d)[:, None], start[:, None] + np.arange(10)]
        size[d] = 12
    if e.any():
        out[e, 0], out[e, 1] = 43, 49
        out[e, 2:5] = np.frombuffer(home, dtype=np.uint8)
        out[e, 5:12] = padded[e, :7]
        size[e] = 12
    return out, size


def clean_numbers(t: pa.Array, outside: str, home: str) -> tuple[pa.Array, IntArray]:
    """The numbers step of the statement (``_norm_ctes``) for texts of ``+`` and digits
    (at most ``WIDTH``) of one site: E.164 (null: none) and ``gk`` (-1: none)."""
    rows = len(t)
    offsets = np.frombuffer(t.buffers()[1], dtype=np.int32)[t.offset : t.offset + rows + 1]
    offsets = offsets.astype(np.int64)
    length = np.diff(offsets)
    data = t.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(1, np.uint8)
    inside = np.arange(WIDTH)[None, :] < length[:, None]
    m = np.zeros((rows, WIDTH), dtype=np.uint8)
    if rows and raw.size:
        m[inside] = raw[(offsets[:-1, None] + np.arange(WIDTH)[None, :])[inside]]
    out, size = _classify(m, length, home.encode("ascii", "replace"))
    skip = len(outside)
    if skip and outside.isascii():
        prefix = np.frombuffer(outside.encode(), dtype=np.uint8)
        again = (size == 0) & (length >= skip)
        if skip <= WIDTH:
            again &= np.all(m[:, :skip] == prefix[None, :], axis=1)
        else:
            again &= False
        if again.any():
            rest = np.zeros((int(again.sum()), WIDTH), dtype=np.uint8)
            rest[:, : WIDTH - skip] = m[again, skip:]
            out2, size2 = _classify(rest, length[again] - skip, home.encode("ascii", "replace"))
            out[again], size[again] = out2, size2
    elif skip:  # an outside prefix that is not ASCII never starts a text of digits
        pass
    valid = size > 0
    flat = out[np.arange(18)[None, :] < size[:, None]]
    ends = np.zeros(rows + 1, dtype=np.int32)
    ends[1:] = np.cumsum(size)
    e = pa.Array.from_buffers(
        pa.string(),
        rows,
        [pa.array(valid).buffers()[1], pa.py_buffer(ends), pa.py_buffer(flat.tobytes())],
        null_count=int(rows - valid.sum()),
    )
    digits = out.astype(np.int64) - 48
    nanp = valid & (out[:, 1] == 49) & (out[:, 0] == 43)

    def six(at: int) -> IntArray:
        return np.asarray(sum(digits[:, at + k] * 10 ** (5 - k) for k in range(6)), np.int64)

    gk = np.where(nanp, 1_000_000_000 + six(2), 2_000_000_000 + six(1))
    return e, np.where(valid, gk, -1).astype(np.int64)


class Memo:
    """Rows a statement computed, by an int64 key, kept for the process (bounded)."""

    def __init__(self, limit: int = 1_000_000) -> None:
        self.keys = i64([])
        self.table: pa.Table | None = None
        self.limit = limit
        self.lock = threading.Lock()

    def find(self, keys: IntArray) -> tuple[IntArray, pa.Table | None]:
        """(row of each key in the table, -1: unknown; the table, None when empty)."""
        with self.lock:
            known, table = self.keys, self.table
        if table is None or not len(known):
            return np.full(len(keys), -1, dtype=np.int64), None
        at = np.clip(np.searchsorted(known, keys), 0, len(known) - 1)
        return np.where(known[at] == keys, at, -1), table

    def add(self, keys: IntArray, rows: pa.Table) -> None:
        with self.lock:
            if self.table is not None and len(self.keys) + len(keys) <= self.limit:
                keys = np.concatenate([self.keys, keys])
                rows = pa.concat_tables([self.table, rows])
            distinct, first = np.unique(keys, return_index=True)
            self.keys, self.table = distinct, rows.take(pa.array(first))


#: the clock of a (zone, quarter-hour), the place of a gk
CLOCKS = Memo()
PLACES = Memo()
#: quarter-hours per zone in a clock key (zone code * QUARTERS + quarter + half)
QUARTERS = 2**40
_zone_codes: dict[str, int] = {}
_zone_lock = threading.Lock()


def zone_code(zone: str) -> int:
    with _zone_lock:
        return _zone_codes.setdefault(zone, len(_zone_codes))


def charges(
    tables: dict[str, pa.Table],
    plans: pa.Table,
    rate_no: IntArray,
    plan: IntArray,
    seconds: IntArray,
    discount: IntArray,
    far_abroad: npt.NDArray[np.bool_],
) -> tuple[dict[str, IntArray], IntArray]:
    """Step 7 of the rating statement (``PRICE_SQL``: billed seconds, gross, net, the
    international surcharge, amount, tax in cents) of each call with a tariff line
    (*rate_no* into ``rate_t``; -1: none, then 0), and each call's row of ``plan_t``."""
    rate_t, plan_t = tables["rate_t"], tables["plan_t"]
    has = rate_no >= 0
    col = {
        c: numpy(rate_t.column(c), 0).astype(np.int64)
        for c in ("rate_micro", "connect_micro", "minimum_cents", "first_s", "next_s")
    }
    by_no = np.full(int(numpy(rate_t.column("rate_no"), 0).max(initial=-1)) + 1, -1, np.int64)
    by_no[numpy(rate_t.column("rate_no"), 0)] = np.arange(rate_t.num_rows)
    r = np.where(has, pick(rate_no, by_no, -1), -1)
    get = {c: pick(r, v, 0) for c, v in col.items()}
    plan_row = numpy(pc.index_in(plans.column("plan_id"), value_set=plan_t.column("plan_id")), -1)
    p = pick(plan, plan_row.astype(np.int64), -1)
    tax_ppm = pick(p, numpy(plan_t.column("tax_ppm"), 0).astype(np.int64), 0)
    intl_cents = pick(p, numpy(plan_t.column("intl_cents"), 0).astype(np.int64), 0)
    s = np.where(has, seconds, 0)
    first_s, next_s = get["first_s"], np.where(has, get["next_s"], 1)
    billed = np.where(
        s <= 0,
        0,
        np.where(s <= first_s, first_s, first_s + (s - first_s + next_s - 1) // next_s * next_s),
    )
    gross = np.maximum(
        (checked_mul(get["rate_micro"], billed) + get["connect_micro"] * 60 + 300000) // 600000,
        get["minimum_cents"],
    )
    net = gross - (checked_mul(gross, discount) + 5000) // 10000
    intl = np.where(far_abroad, intl_cents, 0)
    amount = net + intl
    tax = (checked_mul(amount, tax_ppm) + 500000) // 1000000
    out = {"amount": amount, "net": net, "tax": tax, "intl": intl}
    return {k: np.where(has, v, 0) for k, v in out.items()}, p
