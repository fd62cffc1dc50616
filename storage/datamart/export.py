# ruff: noqa: S608 -- SQL text is built from our own table and column names only; the
# corp id travels as a parameter
"""One corp's calls out of a partition, and the Arrow IPC stream files of LOAD / XPRT.

Theory of operation
-------------------
:func:`export_batches` is the inverse of :func:`~starwrs.storage.datamart.load.load_calls`:
it yields a corp's calls as :class:`pyarrow.RecordBatch` es with exactly the columns of
:data:`~starwrs.storage.datamart.load.CALL_COLUMNS` (codes and values, no keys), so
``load_calls`` on another partition stores the same calls there -- under that
partition's own keys.  Like the load, it never joins per call:

1. the small dimensions the corp uses (billing hierarchy, toll-free numbers, cards,
   ID codes: only the rows its calls point at) and the reference ones (product,
   access type, usage, VOS, the three geographies whole) are read once, each
   attribute column dictionary-encoded over the dimension's rows;
2. the fact rows stream from one projection (``WHERE corp_id = ?``: the zonemap reads
   only the corp's row groups), in stored order, *batch_rows* at a time;
3. per batch every key column is looked up in its dimension's keys (one vectorised
   hash probe, :func:`pyarrow.compute.index_in`) and each attribute becomes a
   dictionary array over the encoded column -- a gather of small integers, no
   strings copied.  Times are computed from the keys (minutes since 1970), code
   columns pass through as DuckDB's ENUM dictionaries, money and minutes as
   ``decimal32`` (as the generator sends them: about 150 bytes a call in all).

What a load does not keep is not exported: seconds (the time dimensions hold
minutes), ``report_*`` (derived from the direction), the dimension rows' own keys.

:func:`purge_calls` deletes a corp's fact rows (its dimension rows stay: other corps
may share them, and an unused one costs nothing).  :func:`replace_period` swaps a corp's
calls of a period for re-priced ones (``RRAT``) in one transaction, guarded by
:func:`period_tally` (count and checksum of the period when it was exported).

**IPC stream files** are the on-wire form of ``LOAD`` and ``XPRT`` (PROTOCOL.md
section 3 carries the file): :func:`write_ipc` writes batches to one as they come
(uncompressed, so the reader can memory-map it), :func:`read_ipc` maps one back as a
table without copying, and :func:`load_ipc` loads one into a partition in chunks of
at most *chunk_rows* calls inside ONE transaction -- memory stays at a chunk whatever
the file's size, and the load is still all or nothing.  :func:`load_ipc_group` loads
several such files (the DSS's ``LOAD`` s that waited for the one before) in one
transaction -- one commit instead of one per batch -- and, should one of them fail,
each alone, so a bad file fails only itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc
from starwrs.storage.datamart.load import CALL_COLUMNS, LoadError, LoadResult, load_calls

__all__ = [
    "EXPORT_BATCH_ROWS",
    "LOAD_CHUNK_ROWS",
    "export_batches",
    "export_calls",
    "load_ipc",
    "load_ipc_group",
    "period_tally",
    "purge_calls",
    "read_ipc",
    "replace_period",
    "write_ipc",
]

#: fact rows per exported batch
EXPORT_BATCH_ROWS = 500_000
#: calls per load_calls inside one :func:`load_ipc`
LOAD_CHUNK_ROWS = 500_000

#: fact columns that are already in their natural form (codes, numbers, money)
_DIRECT = (
    "range",
    "orig_number",
    "term_number",
    "dialed_number",
    "pay_phone_cd",
    "line_speed",
    "evs_product_cd",
    "pricing_method",
    "product_time",
    "directory_assist",
    "ncr_ind",
    "cell_phone_cd",
    "conf_call_id",
    "cross_corp_ind",
    "non_cross_corp_id",
    "enhance_call_rto",
    "realtime_ani",
    "nct_id",
    "nct_call_log",
    "currency_cd",
    "axs_term_cd",
    "axs_term_ind",
    "bill_period",
    "duration",
    "amount",
    "nosurcharge_amt",
    "tax",
    "ncr_surcharge",
    "intl_surcharge",
    "realtime_ani_surcharge",
    "payphone_surcharge",
    "product_duration",
    "product_usage",
)

#: a geography's call columns (after ``orig_``/``term_``) and its dimension's columns
_GEO_ATTRS = (
    ("country_cd", "country_cd"),
    ("npa", "npa"),
    ("nxx", "nxx"),
    ("routing_cd", "routing_cd"),
    ("city", "city_name"),
    ("state", "state_cd"),
    ("country_name", "country_name"),
)
#: fact key column -> (dimension SQL, {call column: dimension column}); the SQL's first
#: column is the key; ``{used}`` limits a dimension to the keys the corp's calls use
_LOOKUPS: dict[str, tuple[str, dict[str, str]]] = {
    "billing_corp_key": (
        "SELECT billing_corp_key, enterprise_id, corporate_id, billing_id, service_loc_id,"
        " enterprise_name, corporate_name, billing_name, serv_loc_name FROM billing_corp"
        " WHERE billing_corp_key IN (SELECT unnest({used}))",
        {
            "enterprise_id": "enterprise_id",
            "corp_id": "corporate_id",
            "billing_id": "billing_id",
            "service_loc_id": "service_loc_id",
            "enterprise_name": "enterprise_name",
            "corporate_name": "corporate_name",
            "billing_name": "billing_name",
            "serv_loc_name": "serv_loc_name",
        },
    ),
    "product_key": ("SELECT product_key, product_abv FROM product", {"product": "product_abv"}),
    "access_type_key": (
        "SELECT access_type_key, access_code, in_out FROM access_type",
        {"access_code": "access_code", "in_out": "in_out"},
    ),
    "usage_key": (
        "SELECT usage_key, use_cd, subusage FROM usage",
        {"use_cd": "use_cd", "subusage": "subusage"},
    ),
    "vos_key": (
        "SELECT vos_key, vos_cd, vos_detail FROM vos",
        {"vos_cd": "vos_cd", "vos_detail": "vos_detail"},
    ),
    "tollfree_key": (
        "SELECT tollfree_key, tollfree FROM tollfree WHERE tollfree_key IN (SELECT unnest({used}))",
        {"tollfree": "tollfree"},
    ),
    "card_key": (
        "SELECT card_key, card_number FROM card WHERE card_key IN (SELECT unnest({used}))",
        {"card_number": "card_number"},
    ),
    "idacc_key": (
        "SELECT idacc_key, idacc FROM idacc WHERE idacc_key IN (SELECT unnest({used}))",
        {"idacc": "idacc"},
    ),
    "orig_geo_key": (
        "SELECT geo_key, " + ", ".join(c for _a, c in _GEO_ATTRS) + " FROM orig_geo",
        {f"orig_{a}": c for a, c in _GEO_ATTRS},
    ),
    "term_geo_key": (
        "SELECT geo_key, " + ", ".join(c for _a, c in _GEO_ATTRS) + " FROM term_geo",
        {f"term_{a}": c for a, c in _GEO_ATTRS},
    ),
}
#: key columns whose dimension rows are per corp (read only for the keys it uses)
_PER_CORP = tuple(k for k, (sql, _m) in _LOOKUPS.items() if "{used}" in sql)


@dataclass(frozen=True, slots=True)
class _Dimension:
    """A dimension's keys and its attribute columns, each dictionary-encoded."""

    keys: pa.Array
    attrs: dict[str, tuple[pa.Array, pa.Array]]  # call column -> (indices, dictionary)

    @classmethod
    def of(cls, table: pa.Table, columns: dict[str, str]) -> _Dimension:
        attrs: dict[str, tuple[pa.Array, pa.Array]] = {}
        for call_column, dim_column in columns.items():
            encoded = pc.dictionary_encode(table.column(dim_column).combine_chunks())
            width = pa.int8() if len(encoded.dictionary) < 2**7 else pa.int16()
            if len(encoded.dictionary) >= 2**15:
                width = pa.int32()
            attrs[call_column] = (encoded.indices.cast(width), encoded.dictionary)
        return cls(table.column(0).combine_chunks().cast(pa.int64()), attrs)

    def columns(self, key: str, keys: pa.Array) -> dict[str, pa.Array]:
        """The attribute columns (dictionary arrays) for the calls' *keys*."""
        at = pc.index_in(keys.cast(pa.int64()), value_set=self.keys)
        if at.null_count:
            missing = pc.filter(keys, pc.is_null(at))[0].as_py()
            raise LoadError(f"the datamart has no dimension row for {key} {missing}")
        return {
            name: pa.DictionaryArray.from_arrays(indices.take(at), dictionary)
            for name, (indices, dictionary) in self.attrs.items()
        }


def _dimensions(cur: duckdb.DuckDBPyConnection, corp_id: str) -> dict[str, _Dimension]:
    used_sql = ", ".join(f"list(DISTINCT {k}) AS {k}" for k in _PER_CORP)
    (row,) = cur.sql(
        f"SELECT {used_sql} FROM perspective_base WHERE corp_id = ?", params=[corp_id]
    ).fetchall()
    used = dict(zip(_PER_CORP, row, strict=True))
    out: dict[str, _Dimension] = {}
    for key, (sql, columns) in _LOOKUPS.items():
        params: list[object] = []
        if "{used}" in sql:
            sql = sql.format(used="?::INTEGER[]")
            params = [list(used.get(key) or [])]
        table = cur.sql(sql, params=params or None).to_arrow_table()
        out[key] = _Dimension.of(table, columns)
    return out


def _fact_sql() -> str:
    keys = ", ".join(_LOOKUPS)
    return (
        f"SELECT {keys}, make_timestamp(gmt_key::BIGINT * 60000000) AS gmt,"
        " make_timestamp(lst_key::BIGINT * 60000000) AS lst, "
        + ", ".join(_DIRECT)
        + " FROM perspective_base WHERE corp_id = ?"
    )


def _natural(batch: pa.RecordBatch, dims: dict[str, _Dimension]) -> pa.RecordBatch:
    columns: dict[str, pa.Array] = {}
    for key, dim in dims.items():
        columns |= dim.columns(key, batch.column(key))
    for name in ("gmt", "lst", *_DIRECT):
        column = batch.column(name)
        if pa.types.is_decimal(column.type):  # exact, in the generator's 4 bytes a value
            column = column.cast(pa.decimal32(column.type.precision, column.type.scale))
        columns[name] = column
    return pa.RecordBatch.from_arrays(
        [columns[name] for name in CALL_COLUMNS], names=list(CALL_COLUMNS)
    )


def export_batches(
    con: duckdb.DuckDBPyConnection,
    corp_id: str,
    *,
    batch_rows: int = EXPORT_BATCH_ROWS,
    since: int | None = None,
    until: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield *corp_id*'s calls in :data:`CALL_COLUMNS` form, *batch_rows* at a time.

    In stored order (the loads' (corp, GMT) order).  At least one batch is yielded --
    an empty one when the corp has no calls -- so the schema is always known.  The
    queries run on a cursor of *con*'s own, closed when the generator ends.
    """
    cur = con.cursor()  # a cursor of its own: the stream must not meet other results
    try:
        dims = _dimensions(cur, corp_id)
        sql = _fact_sql()
        params: list[object] = [corp_id]
        if since is not None or until is not None:  # a period: GMT minutes, until excluded
            sql += " AND gmt_key >= ? AND gmt_key < ?"
            params += [since or 0, until if until is not None else 2**31 - 1]
        reader = cur.sql(sql, params=params).to_arrow_reader(max(1, batch_rows))
        yielded = False
        for batch in reader:
            if batch.num_rows or not yielded:
                yielded = True
                yield _natural(batch, dims)
        if not yielded:
            yield _natural(pa.RecordBatch.from_pylist([], schema=reader.schema), dims)
    finally:
        cur.close()


def export_calls(con: duckdb.DuckDBPyConnection, corp_id: str) -> pa.Table:
    """*corp_id*'s calls as one table (:func:`export_batches` gathered)."""
    return pa.Table.from_batches(list(export_batches(con, corp_id)))


def purge_calls(con: duckdb.DuckDBPyConnection, corp_id: str) -> int:
    """Delete *corp_id*'s calls (not its dimension rows); the number of calls deleted."""
    rows = con.execute("DELETE FROM perspective_base WHERE corp_id = ?", [corp_id]).fetchall()
    return int(rows[0][0]) if rows else 0


def period_tally(
    con: duckdb.DuckDBPyConnection, corp_id: str, since: int, until: int, modulus: int
) -> tuple[int, int]:
    """(calls, sum of their ``gmt_key`` modulo *modulus*) of *corp_id* in [since, until)."""
    row = con.execute(
        "SELECT count(*), coalesce(sum(gmt_key::BIGINT), 0) % ? FROM perspective_base"
        " WHERE corp_id = ? AND gmt_key >= ? AND gmt_key < ?",
        [modulus, corp_id, since, until],
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def replace_period(
    con: duckdb.DuckDBPyConnection,
    path: Path | str,
    corp_id: str,
    since: int,
    until: int,
    *,
    expect: tuple[int, int],
    modulus: int,
    chunk_rows: int = LOAD_CHUNK_ROWS,
) -> int:
    """Replace *corp_id*'s calls of [since, until) with the IPC stream file *path*, in one
    transaction, if the period still holds what *expect* says (:func:`period_tally`).

    Running it again with the same file changes nothing more (the period holds the
    file's calls): a re-rate whose answer was lost can be sent again.

    Returns:
        The calls loaded.

    Raises:
        LoadError: the period changed since *expect* was taken, or the file holds a call
            of another corp or outside the period, or a load error; nothing changed.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        _unchanged(period_tally(con, corp_id, since, until, modulus), expect, corp_id)
        con.execute(
            "DELETE FROM perspective_base WHERE corp_id = ? AND gmt_key >= ? AND gmt_key < ?",
            [corp_id, since, until],
        )
        rows = 0
        for chunk in _chunks(path, max(1, chunk_rows)):
            _inside(chunk, corp_id, since, until)
            rows += load_calls(con, chunk, transaction=False).rows
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return rows


def _unchanged(now: tuple[int, int], expect: tuple[int, int], corp_id: str) -> None:
    if now != expect:
        raise LoadError(
            f"corp {corp_id}'s calls of the period changed since they were exported"
            f" ({now[0]} calls now, {expect[0]} then)"
        )


def _inside(chunk: pa.Table, corp_id: str, since: int, until: int) -> None:
    if not chunk.num_rows:
        return
    corps = pc.unique(chunk.column("corp_id").cast(pa.string())).to_pylist()
    if corps != [corp_id]:
        raise LoadError(f"the re-rated calls are not all corp {corp_id}'s: {corps[:3]}")
    gmt = pc.cast(chunk.column("gmt").cast(pa.timestamp("s")), pa.int64())
    low, high = pc.min(gmt).as_py() // 60, pc.max(gmt).as_py() // 60
    if low < since or high >= until:
        raise LoadError("the re-rated calls are not all inside the period")


# -- Arrow IPC stream files -------------------------------------------------------------------


def write_ipc(path: Path | str, batches: Iterable[pa.RecordBatch | pa.Table]) -> int:
    """Write *batches* (record batches or tables, one schema) as an IPC stream file.

    Returns:
        The number of rows written.

    Raises:
        ValueError: *batches* is empty (a stream needs a schema) or the schemas differ.
    """
    rows = 0
    writer: pyarrow.ipc.RecordBatchStreamWriter | None = None
    with pa.OSFile(str(path), "wb") as sink:
        try:
            for batch in batches:
                if writer is None:
                    writer = pyarrow.ipc.new_stream(sink, batch.schema)
                if isinstance(batch, pa.Table):
                    writer.write_table(batch)
                else:
                    writer.write_batch(batch)
                rows += batch.num_rows
            if writer is None:
                raise ValueError("no batches to write (an IPC stream needs a schema)")
        finally:
            if writer is not None:
                writer.close()
    return rows


def read_ipc(path: Path | str) -> pa.Table:
    """The IPC stream file *path* as a table, memory-mapped (no copy of the data).

    Raises:
        pyarrow.ArrowInvalid: not an IPC stream.
        OSError: the file cannot be read.
    """
    with pa.memory_map(str(path)) as source:
        return pyarrow.ipc.open_stream(source).read_all()


def _chunks(path: Path | str, rows: int) -> Iterator[pa.Table]:
    with pa.memory_map(str(path)) as source:
        reader = pyarrow.ipc.open_stream(source)
        pending: list[pa.RecordBatch] = []
        size = 0
        yielded = False
        for batch in reader:
            while batch.num_rows:
                take = batch.slice(0, rows - size)
                batch = batch.slice(take.num_rows)
                pending.append(take)
                size += take.num_rows
                if size >= rows:
                    yield pa.Table.from_batches(pending, schema=reader.schema)
                    yielded = True
                    pending, size = [], 0
        if pending or not yielded:
            yield pa.Table.from_batches(pending, schema=reader.schema)


def load_ipc(
    con: duckdb.DuckDBPyConnection,
    path: Path | str,
    *,
    chunk_rows: int = LOAD_CHUNK_ROWS,
    batch: str | None = None,
) -> LoadResult:
    """Load the IPC stream file *path* with :func:`load_calls`, at most *chunk_rows*
    calls at a time, all in one transaction (all or nothing).

    With a *batch* id (the harvest's) the load is recorded in ``loaded_batch`` in the
    same transaction, and a batch id recorded before is not loaded again: its
    recorded row count is returned (``dimension_rows`` 0).  So a sender that cannot
    tell whether its load committed (it died, or the answer was lost) sends it again.

    Raises:
        LoadError: as :func:`load_calls`; the partition is unchanged.
        pyarrow.ArrowInvalid: not an IPC stream; the partition is unchanged.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        result = _load_staged(con, path, batch, chunk_rows)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return result


def load_ipc_group(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[tuple[Path | str, str | None]],
    *,
    chunk_rows: int = LOAD_CHUNK_ROWS,
) -> list[LoadResult | Exception]:
    """Load several staged files (path, batch id) as :func:`load_ipc` each would, in ONE
    transaction when all of them load (group commit: one commit, one checkpoint's
    worth of work, instead of one per file).

    Each file's outcome is its :class:`LoadResult` (a batch id recorded before, or
    twice in *files*, loads once and answers the recorded rows) or the exception that
    :func:`load_ipc` would raise for it alone.  When any file fails, the group is
    rolled back and every file is loaded alone (:func:`load_ipc`), so a bad file fails
    only itself.  Nothing is committed for a file before its outcome is returned.
    """
    if len(files) > 1:
        con.execute("BEGIN TRANSACTION")
        try:
            results: list[LoadResult | Exception] = [
                _load_staged(con, path, batch, chunk_rows) for path, batch in files
            ]
            con.execute("COMMIT")
            return results
        except Exception:  # one of them is bad (or the commit failed): each alone
            con.execute("ROLLBACK")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    outcomes: list[LoadResult | Exception] = []
    for path, batch in files:
        try:
            outcomes.append(load_ipc(con, path, chunk_rows=chunk_rows, batch=batch))
        except Exception as err:  # each file's own outcome
            outcomes.append(err)
    return outcomes


def _load_staged(
    con: duckdb.DuckDBPyConnection, path: Path | str, batch: str | None, chunk_rows: int
) -> LoadResult:
    """:func:`load_ipc`'s work inside the caller's transaction."""
    rows = added = 0
    if batch is not None:
        con.execute(
            "CREATE TABLE IF NOT EXISTS loaded_batch (batch_id VARCHAR PRIMARY KEY,"
            " rows BIGINT NOT NULL, loaded TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        seen = con.execute("SELECT rows FROM loaded_batch WHERE batch_id = ?", [batch]).fetchone()
        if seen is not None:
            return LoadResult(int(seen[0]), 0)
    for chunk in _chunks(path, max(1, chunk_rows)):
        result = load_calls(con, chunk, transaction=False)
        rows += result.rows
        added += result.dimension_rows
    if batch is not None:
        con.execute("INSERT INTO loaded_batch (batch_id, rows) VALUES (?, ?)", [batch, rows])
    return LoadResult(rows, added)
