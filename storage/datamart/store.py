"""Open an ODS partition file; bulk-load priced calls into it; keep it compact.

Theory of operation
-------------------
:func:`open_partition` opens ``STATE/datamart/ods<k>.duckdb`` (creating the folder),
migrates it (:mod:`.schema`) and returns the DuckDB connection.  DuckDB lets one
process hold a file read-write; a second one gets :class:`PartitionBusy`.

:func:`load_calls` (from :mod:`.load`) is the one write path for facts, used by the
generator now and by the harvest later: a batch of priced calls in natural form
(:data:`CALL_COLUMNS`) as a :class:`pyarrow.Table` or a dict of numpy arrays; it adds
the dimension rows the batch needs and inserts the facts with one statement, in one
transaction.

Reading only a customer's blocks: DuckDB keeps the min/max of every column per row
group (122 880 rows) and skips a row group whose range excludes a filter.  Each load
inserts its rows sorted by (``corp_id``, ``gmt_key``), so a corp's calls of one load are
contiguous and a query with ``perspective_base.corp_id = ?`` (or ``IN (...)``) reads
only the row groups that hold that corp; the time order inside a corp lets a
``gmt_key`` range skip further.  Loads that each carry all corps (daily harvests)
interleave corps across loads; a corp then has one run per load, still skipped group
by group, and :func:`compact` rewrites the table in (corp, time) order when the runs
get short.  The generator loads one corp and a run of days per batch.

Everything here is synchronous (DuckDB releases the GIL); the DSS calls it on a worker
thread.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from starwrs.storage.datamart.load import CALL_COLUMNS, LoadError, LoadResult, load_calls
from starwrs.storage.datamart.partitions import partition_path
from starwrs.storage.datamart.schema import FACT_COLUMNS, migrate

__all__ = [
    "CALL_COLUMNS",
    "LoadError",
    "LoadResult",
    "PartitionBusy",
    "compact",
    "load_calls",
    "open_datamart",
    "open_partition",
]


#: WAL size at which DuckDB checkpoints a writable partition (its default is 16 MiB).
#: A load of 50,000 calls writes about 10 MB of WAL, so with the default nearly every
#: commit was a checkpoint -- recompressing the table's last row group and the
#: dimensions it touched (about 2 us of CPU a call, of the 12 a load cost); at 128 MiB a
#: checkpoint comes every ten or so such loads.  Commits stay durable (the WAL is synced
#: at each; a killed process replays it at the next open); memory holds at most this
#: much data not yet checkpointed.
CHECKPOINT_THRESHOLD = "128MiB"


class PartitionBusy(Exception):
    """Another process holds the partition file (DuckDB: one writer per file)."""


def open_partition(
    state_dir: Path | str, partition: int, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open (create, migrate) ``STATE/datamart/ods<partition>.duckdb``.

    Raises:
        PartitionBusy: another process has the file open.
        FileNotFoundError: *read_only* and the file does not exist.
    """
    path = partition_path(state_dir, partition)
    return open_datamart(path, read_only=read_only)


def open_datamart(
    path: Path | str, *, read_only: bool = False, row_group_size: int | None = None
) -> duckdb.DuckDBPyConnection:
    """Open a datamart file by path (see :func:`open_partition`).

    *row_group_size* (rows per row group, default DuckDB's 122 880) is for tests that
    need many row groups from few rows.
    """
    path = Path(path)
    if read_only and not path.exists():
        raise FileNotFoundError(f"no datamart at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if row_group_size is None:
            con = duckdb.connect(str(path), read_only=read_only)
        else:
            con = duckdb.connect()
            mode = ", READ_ONLY" if read_only else ""
            con.execute(
                f"ATTACH ? AS ods (ROW_GROUP_SIZE {int(row_group_size)}{mode})", [str(path)]
            )
            con.execute("USE ods")
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise PartitionBusy(f"{path} is in use by another process") from exc
        raise
    if not read_only:
        con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        migrate(con)
    return con


def compact(con: duckdb.DuckDBPyConnection) -> int:
    """Rewrite ``perspective_base`` in (corp_id, gmt_key) order; returns its row count."""
    columns = ", ".join(f"{name} {kind}" for name, kind in FACT_COLUMNS)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE TABLE perspective_base_sorted ({columns})")
        con.execute(
            "INSERT INTO perspective_base_sorted SELECT * FROM perspective_base"
            " ORDER BY corp_id, gmt_key"
        )
        con.execute("DROP TABLE perspective_base")
        con.execute("ALTER TABLE perspective_base_sorted RENAME TO perspective_base")
        row = con.execute("SELECT count(*) FROM perspective_base").fetchone()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("CHECKPOINT")
    return int(row[0]) if row else 0
