# ruff: noqa: S608 -- SQL text is built from our own table and column names only; values
# travel as parameters or as registered Arrow tables
"""The bulk load of priced calls: :func:`load_calls` (re-exported by :mod:`.store`).

Theory of operation
-------------------
A batch arrives in natural form (ids, codes, numbers, times: :data:`CALL_COLUMNS`) as a
:class:`pyarrow.Table` or a dict of numpy arrays.  Resolving dimension keys with SQL
joins would cost a hash probe per call and dimension; instead every key is computed
*per distinct value* and spread to the calls with one numpy gather:

1. each code column is dictionary-encoded (free when it already is -- the generator
   sends dictionaries); several columns that form one key combine their dictionary
   indices into one small integer per call;
2. the distinct combinations (a handful: billing ids, toll-free numbers, cards, ID
   codes, access types, usages, VOS codes) are looked up in their dimension, after
   inserting the missing ones with new keys (max + 1, ...);
3. time and place keys are arithmetic (minutes since 1970; country * 10**6 + NPA *
   1000 + NXX, or + routing code abroad); the distinct minutes and places that the
   file lacks are inserted into ``gmt``/``lst`` and ``orig_geo``/``term_geo``/
   ``report_geo``, their attributes taken from the first call that has them (a day the
   batch uses in :data:`DENSE_DAY_MINUTES` minutes or more gets all its minutes at once,
   so the next loads of that day leave the time dimensions -- and their commit -- alone);
4. every code column is checked against its dimension (:class:`LoadError`, nothing
   written);
5. one ``INSERT INTO perspective_base SELECT ... FROM`` the Arrow batch with the key
   columns added -- a projection, no joins -- sorted by (``corp_id``, ``gmt_key``)
   unless the batch already is.

A dimension's rows are looked up before anything is inserted (most loads insert
none), and the code dimensions are read in one statement: a load is some fifteen
statements whatever its size.  All of it is one DuckDB transaction (or part of the
caller's: ``transaction=False``,
as :func:`~starwrs.storage.datamart.export.load_ipc` loads a large file in chunks).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from starwrs.storage.datamart import reference as ref
from starwrs.storage.datamart.schema import FACT_COLUMNS

__all__ = ["CALL_COLUMNS", "RATE_SQL", "LoadError", "LoadResult", "load_calls"]

#: numpy arrays (dtype noted in the name; numpy's dtype typing is too strict to help)
IntArray = npt.NDArray[Any]


class LoadError(Exception):
    """A batch of calls cannot be loaded; nothing of it was written."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one :func:`load_calls` did: fact rows inserted, dimension rows added."""

    rows: int
    dimension_rows: int


#: The columns of a priced-call batch: name -> SQL default when absent (None = required).
#: Strings may come as Arrow dictionary arrays (cheapest); numbers (``*_number``,
#: ``*_npa``, ``*_nxx``, ``*_routing_cd``) as integers or strings; times as timestamps
#: (GMT resp. the access switch's wall time); money and durations exact as
#: ``decimal32(9,2)`` / ``decimal32(7,1)`` (any numeric is cast).  Blank codes are ''.
CALL_COLUMNS: dict[str, str | None] = {
    "enterprise_id": None,
    "corp_id": None,
    "billing_id": None,
    "service_loc_id": None,
    "enterprise_name": "NULL",
    "corporate_name": "NULL",
    "billing_name": "NULL",
    "serv_loc_name": "NULL",
    "gmt": None,
    "lst": None,
    "product": None,  # product.product_abv: V, S, C, T, H
    "access_code": None,
    "in_out": None,  # '1' inbound, '0' outbound
    "use_cd": None,
    "subusage": "''",
    "range": None,
    "orig_country_cd": None,  # '001' = World Zone 1 (then npa/nxx), else routing_cd
    "orig_npa": "NULL",
    "orig_nxx": "NULL",
    "orig_routing_cd": "NULL",
    "orig_city": "NULL",
    "orig_state": "NULL",
    "orig_country_name": "NULL",
    "term_country_cd": None,
    "term_npa": "NULL",
    "term_nxx": "NULL",
    "term_routing_cd": "NULL",
    "term_city": "NULL",
    "term_state": "NULL",
    "term_country_name": "NULL",
    "orig_number": None,
    "term_number": None,
    "dialed_number": None,
    "tollfree": "''",
    "card_number": "''",
    "idacc": "''",
    "vos_cd": "''",
    "vos_detail": "''",
    "pay_phone_cd": "''",
    "line_speed": "''",
    "evs_product_cd": "''",
    "pricing_method": "NULL",
    "product_time": "NULL",
    "directory_assist": "'N'",
    "ncr_ind": "''",
    "cell_phone_cd": "''",
    "conf_call_id": "''",
    "cross_corp_ind": "''",
    "non_cross_corp_id": "NULL",
    "enhance_call_rto": "NULL",
    "realtime_ani": "NULL",
    "nct_id": "''",
    "nct_call_log": "NULL",
    "currency_cd": "'USA'",
    "axs_term_cd": "'11'",
    "axs_term_ind": "NULL",  # NULL = axs_term_cd
    "bill_period": "NULL",  # NULL = the seed's MMYY of the GMT month (698 = June 1998)
    "duration": None,
    "amount": None,
    "nosurcharge_amt": "NULL",  # NULL = amount
    "tax": "0",
    "ncr_surcharge": "0",
    "intl_surcharge": "0",
    "realtime_ani_surcharge": "0",
    "payphone_surcharge": "0",
    "product_duration": "0",
    "product_usage": "0",
}

#: code column -> (dimension, its key column), checked by every load
_CODE_CHECKS: dict[str, tuple[str, str]] = {
    "pay_phone_cd": ("pay_phone", "pay_phone_cd"),
    "line_speed": ("data_stream", "line_speed"),
    "evs_product_cd": ("evs_product", "evs_product_cd"),
    "directory_assist": ("directory_assist", "directory_assist"),
    "range": ("range", "range"),
    "ncr_ind": ("ncr", "ncr_ind"),
    "cell_phone_cd": ("cell_phone", "cell_phone_cd"),
    "conf_call_id": ("conf_call", "conf_call_id"),
    "cross_corp_ind": ("cross_corp", "cross_corp_id"),
    "currency_cd": ("currency", "currency_cd"),
    "axs_term_cd": ("access_term", "acc_term_cd"),
}

_PRODUCT_KEY = {abv: key for key, _name, abv in ref.PRODUCTS}


class _Batch:
    """The batch's columns, decoded on demand, with defaults for absent ones."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.n = table.num_rows
        self.present = set(table.column_names) & set(CALL_COLUMNS)
        self._arrays: dict[str, pa.Array] = {}
        self._codes: dict[str, tuple[IntArray, list[Any]]] = {}

    def array(self, name: str) -> pa.Array:
        if name not in self._arrays:
            self._arrays[name] = self.table.column(name).combine_chunks()
        return self._arrays[name]

    def codes(self, name: str, default: str | None = "") -> tuple[IntArray, list[Any]]:
        """(index per call, distinct values); a null value is None."""
        if name not in self.present:
            return np.zeros(self.n, dtype=np.int64), [default]
        if name not in self._codes:
            self._codes[name] = self._decode(name)
        return self._codes[name]

    def _decode(self, name: str) -> tuple[IntArray, list[Any]]:
        arr = self.array(name)
        if not isinstance(arr.type, pa.DictionaryType):
            arr = pc.dictionary_encode(arr)
        values = arr.dictionary.to_pylist()
        indices = arr.indices
        if indices.null_count:
            values.append(None)
            indices = pc.fill_null(indices, len(values) - 1)
        return indices.to_numpy(zero_copy_only=False).astype(np.int64), values

    def ints(self, name: str) -> tuple[IntArray, npt.NDArray[Any]]:
        """(values, valid) of a numeric column (strings of digits allowed; '' = null)."""
        if name not in self.present:
            return np.zeros(self.n, dtype=np.int64), np.zeros(self.n, dtype=bool)
        arr = self.array(name)
        if pa.types.is_integer(arr.type):
            valid = (
                np.ones(self.n, dtype=bool)
                if not arr.null_count
                else arr.is_valid().to_numpy(zero_copy_only=False)
            )
            return pc.fill_null(arr, 0).to_numpy().astype(np.int64), valid
        index, values = self.codes(name, None)
        try:
            as_int = [int(v) if v not in (None, "") else 0 for v in values]
        except (TypeError, ValueError):
            raise LoadError(f"column {name} must hold digits") from None
        valid = np.array([v not in (None, "") for v in values], dtype=bool)
        return np.array(as_int, dtype=np.int64)[index], valid[index]

    def seconds(self, name: str) -> IntArray:
        arr = self.array(name)
        if pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
            arr = arr.cast(pa.timestamp(arr.type.unit))
        arr = pc.cast(arr, pa.timestamp("s"), safe=False)
        if arr.null_count:
            raise LoadError(f"column {name} has null times")
        return np.asarray(arr.cast(pa.int64()).to_numpy(), dtype=np.int64)


def _compress(index: IntArray, space: int) -> tuple[IntArray, IntArray]:
    """(distinct values of *index* ascending, the position of each call's value in them)."""
    if space <= 4 * len(index) + 1024:
        present = np.zeros(space, dtype=bool)
        present[index] = True
        uniq = np.flatnonzero(present)
        remap = np.zeros(space, dtype=np.int64)
        remap[uniq] = np.arange(len(uniq))
        return uniq, remap[index]
    uniq, inverse = np.unique(index, return_inverse=True)
    return uniq, inverse.astype(np.int64)


def _combine(
    parts: Sequence[tuple[IntArray, list[Any]]],
) -> tuple[IntArray, list[tuple[Any, ...]]]:
    """Per-call index of the distinct combinations of several coded columns, and the
    combinations (one column at a time, so the index never grows past the calls)."""
    index, values = parts[0]
    uniq, inverse = _compress(index, len(values))
    combos: list[tuple[Any, ...]] = [(values[u],) for u in uniq.tolist()]
    for index, values in parts[1:]:
        width = len(values)
        uniq, inverse = _compress(inverse * width + index, len(combos) * width)
        combos = [combos[u // width] + (values[u % width],) for u in uniq.tolist()]
    return inverse, combos


class _Tx:
    """Small-table helpers inside the load's transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.added = 0
        self.names: list[str] = []

    def register(self, table: pa.Table) -> str:
        name = f"_starwrs_{uuid.uuid4().hex[:12]}"
        self.con.register(name, table)
        self.names.append(name)
        return name

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(params)).fetchall()

    def insert(self, sql: str) -> None:
        rows = self.con.execute(sql).fetchone()
        self.added += int(rows[0]) if rows else 0

    def known(self, table: str, key: str, natural: str, values: list[Any]) -> dict[Any, int]:
        """natural -> key of the *values* the table has (one statement, nothing registered)."""
        if not values:
            return {}
        found = self.execute(
            f"SELECT {natural}, {key} FROM {table} WHERE {natural} IN (SELECT unnest(?))",
            [values],
        )
        return dict(found)

    def keyed(
        self, table: str, key: str, natural: str, rows: pa.Table, extra: str = ""
    ) -> dict[Any, int]:
        """Insert the missing rows (``rows``: natural key first, then the other columns
        in table order after the key) with new keys; return natural -> key."""
        wanted = rows.column(0).to_pylist()
        found = self.known(table, key, natural, wanted)
        if len(found) == len(set(wanted)):  # all there (most loads): no insert
            return found
        name = self.register(rows)
        cols = ", ".join(f"n.{c}" for c in rows.column_names)
        self.insert(
            f"INSERT INTO {table} SELECT (SELECT coalesce(max({key}), 0) FROM {table})"
            f" + row_number() OVER (ORDER BY n.{rows.column_names[0]}), {cols}{extra}"
            f" FROM {name} n WHERE NOT EXISTS"
            f" (SELECT 1 FROM {table} t WHERE t.{natural} = n.{rows.column_names[0]})"
        )
        pairs = self.execute(
            f"SELECT t.{natural}, t.{key} FROM {table} t"
            f" JOIN {name} n ON t.{natural} = n.{rows.column_names[0]}"
        )
        return dict(pairs)

    def close(self) -> None:
        for name in self.names:
            self.con.unregister(name)


def _keys(
    inverse: IntArray, combos: list[tuple[Any, ...]], key_of: Callable[[tuple[Any, ...]], int]
) -> IntArray:
    return np.array([key_of(c) for c in combos], dtype=np.int64)[inverse]


def _billing(b: _Batch, tx: _Tx) -> IntArray:
    cols = ("enterprise_id", "corp_id", "billing_id", "service_loc_id")
    inverse, combos = _combine([b.codes(c, None) for c in cols])
    if any(v is None for c in combos for v in c):
        raise LoadError(
            "priced calls lack a billing hierarchy id (enterprise/corp/billing/service location)"
        )
    first = np.full(len(combos), -1, dtype=np.int64)
    first[inverse[::-1]] = np.arange(b.n)[::-1]
    names = {}
    for c in ("enterprise_name", "corporate_name", "billing_name", "serv_loc_name"):
        index, values = b.codes(c, None)
        names[c] = [values[i] for i in index[first]]
    rows = pa.table(
        {
            "combo": ["_".join(c) for c in combos],
            "level": pa.array([4] * len(combos), pa.int16()),
            "enterprise_id": [c[0] for c in combos],
            "corporate_id": [c[1] for c in combos],
            "billing_id": [c[2] for c in combos],
            "service_loc_id": [c[3] for c in combos],
            **{k: pa.array(v, pa.string()) for k, v in names.items()},
        }
    )
    found = tx.keyed(
        "billing_corp", "billing_corp_key", "entp_corp_bill_serv_combo", rows, ", 'MCI'"
    )
    return np.array([found["_".join(c)] for c in combos], dtype=np.int64)[inverse]


def _simple_key(
    b: _Batch, tx: _Tx, column: str, table: str, key: str, natural: str, extra: str
) -> IntArray:
    index, values = b.codes(column)
    values = ["" if v is None else str(v) for v in values]
    rows = pa.table(
        {natural: pa.array(values, pa.string()), "level": pa.array([1] * len(values), pa.int16())}
    )
    found = tx.keyed(table, key, natural, rows, extra)
    found[""] = 0
    return np.array([found[v] for v in values], dtype=np.int64)[index]


def _idacc(b: _Batch, tx: _Tx) -> IntArray:
    inverse, combos = _combine([b.codes("corp_id", None), b.codes("idacc")])
    wanted = [(str(c), str(i)) for c, i in combos if i not in (None, "")]
    found: dict[Any, int] = {}
    if wanted:
        rows = pa.table(
            {
                "d": [f"{c}_{i}" for c, i in wanted],
                "level": pa.array([1] * len(wanted), pa.int16()),
                "idacc": [i for _c, i in wanted],
                "corporate_id": [c for c, _i in wanted],
            }
        )
        found = tx.keyed("idacc", "idacc_key", "idacc_description", rows)
    return _keys(inverse, combos, lambda c: 0 if c[1] in (None, "") else found[f"{c[0]}_{c[1]}"])


def _static_keys(b: _Batch, tx: _Tx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    index, values = b.codes("product", None)
    try:
        keys = pa.array([_PRODUCT_KEY[v] for v in values], pa.string())
        out["product_key"] = pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), keys)
    except KeyError as exc:
        raise LoadError(f"unknown product code {exc.args[0]!r}") from None
    inverse, combos = _combine([b.codes("access_code", None), b.codes("in_out", None)])
    try:
        out["access_type_key"] = _keys(inverse, combos, lambda c: ref.access_type_key(c[0], c[1]))
    except ValueError as exc:
        raise LoadError(str(exc)) from None
    inverse, combos = _combine([b.codes("use_cd", None), b.codes("subusage")])
    try:
        out["usage_key"] = _keys(inverse, combos, lambda c: ref.usage_key(c[0], c[1] or ""))
    except ValueError as exc:
        raise LoadError(str(exc)) from None
    vos = {
        (cd, detail): key
        for key, cd, detail in tx.execute("SELECT vos_key, vos_cd, vos_detail FROM vos")
    }
    inverse, combos = _combine([b.codes("vos_cd"), b.codes("vos_detail")])
    missing = [c for c in combos if c not in vos]
    if missing:
        raise LoadError(f"unknown vos code {missing[0][0]!r}/{missing[0][1]!r}")
    out["vos_key"] = _keys(inverse, combos, lambda c: vos[c])
    return out


#: a day of which a batch has calls in at least this many minutes gets all its 1440
#: minutes in the time dimensions at once (:func:`_minutes`)
DENSE_DAY_MINUTES = 360


def _minutes(b: _Batch, tx: _Tx, column: str, table: str) -> IntArray:
    """The calls' minutes (the time key); inserts the minutes *table* lacks.

    A day the batch uses densely (:data:`DENSE_DAY_MINUTES`) is inserted whole, so the
    later loads of that day find every minute there and leave the dimension (and its
    share of their commit) alone; a sparse day gets only the minutes used.
    """
    minutes = b.seconds(column) // 60
    day_low = int(minutes.min()) // 1440
    low, high = day_low * 1440, (int(minutes.max()) // 1440 + 1) * 1440 - 1
    present = np.zeros(high - low + 1, dtype=bool)
    present[minutes - low] = True
    dense = present.reshape(-1, 1440)
    dense[dense.sum(axis=1) >= DENSE_DAY_MINUTES] = True
    have = tx.con.execute(
        f"SELECT time_key FROM {table} WHERE time_key BETWEEN ? AND ?", [low, high]
    ).fetchnumpy()["time_key"]
    known = np.asarray(have, dtype=np.int64) - low
    present[known[(known >= 0) & (known <= high - low)]] = False
    if not present.any():
        return minutes
    keys = pa.table({"k": pa.array(np.flatnonzero(present) + low, pa.int32())})
    name = tx.register(keys)
    tx.insert(
        f"""
        INSERT INTO {table}
        SELECT k, strftime(d, '%A, %B %-d, %Y %H:%M'), 'Y', 'minute',
               hour(d) * 60 + minute(d) + 1,
               (dayofyear(d) - 1) * 1440 + hour(d) * 60 + minute(d) + 1,
               CAST(year(d) AS VARCHAR), monthname(d), CAST(strftime(d, '%U') AS SMALLINT) + 1,
               {RATE_SQL.format(d="d")},
               day(d), dayname(d), hour(d), minute(d), d, month(d), isodow(d), CAST(d AS DATE)
          FROM (SELECT k, TIMESTAMP '1970-01-01' + to_minutes(k) AS d FROM {name} n
                 WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.time_key = n.k))
        """
    )
    return minutes


#: The rate period (``reference.RATE_PERIODS``) of a wall-clock TIMESTAMP ``{d}``.
RATE_SQL = (
    "CASE WHEN "
    + " OR ".join(f"(month({{d}}) = {m} AND day({{d}}) = {dd})" for m, dd in ref.HOLIDAYS)
    + " THEN '7' WHEN isodow({d}) >= 6 THEN '4' WHEN hour({d}) BETWEEN 8 AND 16 THEN '1'"
    " WHEN hour({d}) BETWEEN 17 AND 22 THEN '2' ELSE '3' END"
)


def _geo_key(b: _Batch, side: str) -> IntArray:
    cc, _ = b.ints(f"{side}_country_cd")
    npa, npa_ok = b.ints(f"{side}_npa")
    nxx, _ = b.ints(f"{side}_nxx")
    routing, _ = b.ints(f"{side}_routing_cd")
    return cc * 1_000_000 + np.where(npa_ok, npa * 1000 + nxx, routing)


def _first_positions(index: IntArray, size: int) -> IntArray:
    """For each value 0..size-1 of *index*, the first position holding it (-1: none)."""
    first = np.full(size, -1, dtype=np.int64)
    first[index[::-1]] = np.arange(len(index) - 1, -1, -1)
    return first


def _distinct(keys: IntArray) -> tuple[IntArray, IntArray]:
    """(distinct keys, the first position of each): dense for World Zone 1 keys
    (1 000 000 .. 1 999 999), sorting only the few others."""
    zone1 = (keys >= 1_000_000) & (keys < 2_000_000)
    pos = np.flatnonzero(zone1)
    first = _first_positions(keys[pos] - 1_000_000, 1_000_000)
    dense = np.flatnonzero(first >= 0)
    uniq, at = [dense + 1_000_000], [pos[first[dense]]]
    others = np.flatnonzero(~zone1)
    if len(others):
        u, f = np.unique(keys[others], return_index=True)
        uniq.append(u)
        at.append(others[f])
    return np.concatenate(uniq), np.concatenate(at)


def _geo_rows(b: _Batch, tx: _Tx, table: str, keys: IntArray, side_of: npt.NDArray[Any]) -> None:
    """Insert the places of *keys* the table lacks; *side_of* True = orig attributes."""
    uniq, first = _distinct(keys)
    if len(uniq) > 64:  # most places are known after the first loads: send only new ones
        name = tx.register(pa.table({"k": pa.array(uniq, pa.int32())}))
        known = tx.con.execute(
            f"SELECT n.k FROM {name} n SEMI JOIN {table} t ON t.geo_key = n.k"
        ).fetchnumpy()["k"]
    else:
        known = tx.con.execute(
            f"SELECT geo_key FROM {table} WHERE geo_key IN (SELECT unnest(?))",
            [uniq.tolist()],
        ).fetchnumpy()["geo_key"]
    wanted = ~np.isin(uniq, np.asarray(known, dtype=np.int64))
    if not wanted.any():
        return
    rows_at = pa.array(first[wanted])
    from_orig = pa.array(side_of[first[wanted]])
    columns: dict[str, pa.Array] = {"k": pa.array(uniq[wanted], pa.int32())}
    for attr, kind in (
        ("country_cd", pa.int64()),
        ("npa", pa.string()),
        ("nxx", pa.string()),
        ("routing_cd", pa.int16()),
        ("city", pa.string()),
        ("state", pa.string()),
        ("country_name", pa.string()),
    ):
        picked = []
        for side in ("orig", "term"):
            column = f"{side}_{attr}"
            if column in b.present:
                arr = b.array(column).take(rows_at)
                if isinstance(arr.type, pa.DictionaryType):
                    arr = arr.dictionary_decode()
                if pa.types.is_string(arr.type) and kind != pa.string():
                    arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)
                picked.append(pc.cast(arr, kind))
            else:
                picked.append(pa.nulls(len(rows_at), kind))
        value = pc.if_else(from_orig, picked[0], picked[1])
        if kind == pa.string():
            value = pc.if_else(pc.equal(value, ""), pa.scalar(None, pa.string()), value)
        columns[attr] = value
    name = tx.register(pa.table(columns))
    tx.insert(
        f"INSERT INTO {table} SELECT k, concat_ws(' ', cc, npa, nxx, routing_cd, city, state,"
        " country_name), CASE WHEN npa IS NOT NULL THEN 5 WHEN routing_cd IS NOT NULL THEN 3"
        " ELSE 1 END, cc, npa, nxx, routing_cd, NULL, NULL, city, state, country_name"
        f" FROM (SELECT *, CASE WHEN country_cd IS NULL THEN NULL"
        f" ELSE lpad(CAST(country_cd AS VARCHAR), 3, '0') END AS cc FROM {name}) n"
        f" WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.geo_key = n.k)"
    )


def _check_codes(b: _Batch, tx: _Tx) -> None:
    checked = [(column, table, key) for column, (table, key) in _CODE_CHECKS.items()
               if column in b.present]  # fmt: skip
    if not checked:
        return
    union = " UNION ALL ".join(
        f"SELECT {n} AS k, CAST({key} AS VARCHAR) AS v FROM {table}"
        for n, (_column, table, key) in enumerate(checked)
    )
    codes: dict[int, set[Any]] = {n: set() for n in range(len(checked))}
    for n, value in tx.execute(union):  # every code dimension in one statement
        codes[n].add(value)
    for n, (column, _table, _key) in enumerate(checked):
        index, values = b.codes(column, None)
        counts = np.bincount(index, minlength=len(values))
        used = sorted({values[i] for i in np.flatnonzero(counts).tolist()}, key=str)
        bad = [v for v in used if v not in codes[n]]
        if bad:
            raise LoadError(f"unknown {column} code {bad[0]!r}")


def _is_sorted(corp_index: IntArray, corp_values: list[Any], gmt: IntArray) -> bool:
    order = np.argsort(np.array([str(v) for v in corp_values])).argsort()
    corp_rank = order[corp_index]
    d_corp, d_gmt = np.diff(corp_rank), np.diff(gmt)
    return bool(np.all((d_corp > 0) | ((d_corp == 0) & (d_gmt >= 0))))


def _bill_period(seconds: IntArray) -> IntArray:
    days = seconds // 86400
    low = int(days.min())
    span = np.arange(low, int(days.max()) + 1)
    table = np.array(
        [
            (d.month * 100 + d.year % 100)
            for d in (dt.date(1970, 1, 1) + dt.timedelta(days=int(x)) for x in span)
        ],
        dtype=np.int64,
    )
    return np.asarray(table[days - low])


def load_calls(
    con: duckdb.DuckDBPyConnection,
    calls: pa.Table | Mapping[str, Any],
    *,
    check_codes: bool = True,
    transaction: bool = True,
) -> LoadResult:
    """Insert a batch of priced calls (and the dimension rows they need), atomically.

    Args:
        con: an open partition (``store.open_partition``).
        calls: the batch, columns as :data:`CALL_COLUMNS` (others are ignored).
        check_codes: verify the code columns against their dimensions first.
        transaction: run in a transaction of its own (commit or roll back); False when
            the caller holds one around several batches (and rolls it back on error).

    Returns:
        Rows inserted into ``perspective_base`` and into the dimensions.

    Raises:
        LoadError: a required column is missing, a code is unknown, or a value does not
            fit the schema; the partition is unchanged.
    """
    table = calls if isinstance(calls, pa.Table) else pa.table(dict(calls))
    b = _Batch(table)
    missing = [c for c, default in CALL_COLUMNS.items() if default is None and c not in b.present]
    if missing:
        raise LoadError(f"priced calls lack column(s) {', '.join(missing)}")
    if b.n == 0:
        return LoadResult(0, 0)
    tx = _Tx(con)
    if transaction:
        con.execute("BEGIN TRANSACTION")
    try:
        if check_codes:
            _check_codes(b, tx)
        keys: dict[str, Any] = _static_keys(b, tx)
        keys["billing_corp_key"] = _billing(b, tx)
        keys["tollfree_key"] = _simple_key(
            b, tx, "tollfree", "tollfree", "tollfree_key", "tollfree", ""
        )
        keys["card_key"] = _simple_key(
            b, tx, "card_number", "card", "card_key", "card_number", ", NULL, NULL"
        )
        keys["idacc_key"] = _idacc(b, tx)
        keys["gmt_key"] = _minutes(b, tx, "gmt", "gmt")
        keys["lst_key"] = _minutes(b, tx, "lst", "lst")
        in_index, in_values = b.codes("in_out", None)
        inbound = np.array([v == "1" for v in in_values], dtype=bool)[in_index]
        orig, term = _geo_key(b, "orig"), _geo_key(b, "term")
        report = np.where(inbound, orig, term)
        _geo_rows(b, tx, "orig_geo", orig, np.ones(b.n, dtype=bool))
        _geo_rows(b, tx, "term_geo", term, np.zeros(b.n, dtype=bool))
        _geo_rows(b, tx, "report_geo", report, inbound)
        keys |= {"orig_geo_key": orig, "term_geo_key": term, "report_geo_key": report}
        _nct_index, nct_values = b.codes("nct_id")
        new_nct = [str(v) for v in nct_values if v not in (None, "")]
        if new_nct:
            name = tx.register(pa.table({"i": pa.array(new_nct, pa.string())}))
            tx.insert(
                f"INSERT INTO nct SELECT i, 'NCT ' || i, 1 FROM {name} n"
                " WHERE NOT EXISTS (SELECT 1 FROM nct t WHERE t.nct_id = n.i)"
            )
        gmt_seconds = b.seconds("gmt")
        if "bill_period" not in b.present:
            keys["bill_period"] = _bill_period(gmt_seconds)
        corp_index, corp_values = b.codes("corp_id", None)
        order = not _is_sorted(corp_index, corp_values, gmt_seconds)
        inserted = _insert_facts(b, tx, keys, inbound, order=order)
        if transaction:
            con.execute("COMMIT")
    except BaseException as exc:
        if transaction:
            con.execute("ROLLBACK")
        if isinstance(exc, duckdb.ConstraintException | duckdb.ConversionException):
            raise LoadError(f"priced calls do not fit the schema: {exc}") from exc
        if isinstance(exc, duckdb.BinderException):
            raise LoadError(f"priced calls have a column of the wrong type: {exc}") from exc
        raise
    finally:
        tx.close()
    return LoadResult(inserted, tx.added)


def _insert_facts(
    b: _Batch, tx: _Tx, keys: dict[str, Any], inbound: npt.NDArray[Any], *, order: bool
) -> int:
    columns: dict[str, pa.Array] = {}
    exprs: list[str] = []
    for name, kind in FACT_COLUMNS:
        if name in keys:
            value = keys[name]
            if isinstance(value, pa.Array):
                columns[name] = value
            else:
                width = (
                    np.int32 if "INTEGER" in kind else np.int16 if "SMALLINT" in kind else np.int64
                )
                columns[name] = pa.array(value.astype(width))
            exprs.append(name)
        elif name == "report_number":
            exprs.append(
                "CASE WHEN inbound THEN CAST(orig_number AS VARCHAR)"
                " ELSE CAST(term_number AS VARCHAR) END"
            )
        elif name == "axs_term_ind":
            cd = "axs_term_cd" if "axs_term_cd" in b.present else str(CALL_COLUMNS["axs_term_cd"])
            if name in b.present:
                columns[name] = b.table.column(name)
                cd = f"coalesce(axs_term_ind, {cd})"
            exprs.append(cd)
        elif name == "nosurcharge_amt":
            if name in b.present:
                columns[name] = b.table.column(name)
            exprs.append("coalesce(nosurcharge_amt, amount)" if name in b.present else "amount")
        elif name in b.present:
            columns[name] = b.table.column(name)
            exprs.append(f"CAST({name} AS VARCHAR)" if name.endswith("_number") else name)
        else:
            default = CALL_COLUMNS[name]
            exprs.append(str(default))
    for name in ("orig_number", "term_number"):
        columns[name] = b.table.column(name)
    columns["inbound"] = pa.array(inbound)
    facts = pa.table(columns)
    name = tx.register(facts)
    order_by = " ORDER BY corp_id, gmt_key" if order else ""
    row = tx.con.execute(
        f"INSERT INTO perspective_base SELECT {', '.join(exprs)} FROM {name}{order_by}"
    ).fetchone()
    return int(row[0]) if row else 0
