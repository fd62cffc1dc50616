"""A corp's calls out of one partition and into another: export, IPC files, purge.

The oracle is the datamart itself: every call with every dimension joined back to its
codes and values (:data:`NATURAL`), which must be the same in the partition a corp
left and the one it went to -- whatever keys each partition gave its dimension rows.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starwrs.fixtures.datamart import corp_specs, generate_calls
from starwrs.storage.datamart.export import (
    export_batches,
    export_calls,
    load_ipc,
    load_ipc_group,
    purge_calls,
    read_ipc,
    write_ipc,
)
from starwrs.storage.datamart.load import CALL_COLUMNS, LoadError, load_calls
from starwrs.storage.datamart.schema import migrate

CORPS = ("90000003", "90000004")

#: every call of a corp, its dimensions joined back, without the keys a partition
#: assigns itself (billing, toll-free, card, ID code)
NATURAL = """
SELECT pb.* EXCLUDE (billing_corp_key, tollfree_key, card_key, idacc_key),
       bc.* EXCLUDE (billing_corp_key), tf.tollfree, c.card_number, i.idacc,
       i.corporate_id, g.*, l.*, p.*, a.*, u.*, v.*, og.*, tg.*, rg.*
  FROM perspective_base pb
  JOIN billing_corp bc USING (billing_corp_key)
  JOIN tollfree tf USING (tollfree_key)
  JOIN card c USING (card_key)
  JOIN idacc i USING (idacc_key)
  JOIN gmt g ON g.time_key = pb.gmt_key
  JOIN lst l ON l.time_key = pb.lst_key
  JOIN product p USING (product_key)
  JOIN access_type a USING (access_type_key)
  JOIN usage u USING (usage_key)
  JOIN vos v USING (vos_key)
  JOIN orig_geo og ON og.geo_key = pb.orig_geo_key
  JOIN term_geo tg ON tg.geo_key = pb.term_geo_key
  JOIN report_geo rg ON rg.geo_key = pb.report_geo_key
 WHERE pb.corp_id = ?
"""


def natural(con: duckdb.DuckDBPyConnection, corp: str) -> list[str]:
    return sorted(repr(row) for row in con.sql(NATURAL, params=[corp]).fetchall())


def mart() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()  # in memory: the same schema, no file per example
    migrate(con)
    return con


def fill(con: duckdb.DuckDBPyConnection, corps: tuple[str, ...], calls: int, **kw: Any) -> None:
    for batch in generate_calls(corp_specs(corps), calls, **kw):
        load_calls(con, batch)


def count(con: duckdb.DuckDBPyConnection, corp: str) -> int:
    ((n,),) = con.sql(
        "SELECT count(*) FROM perspective_base WHERE corp_id = ?", params=[corp]
    ).fetchall()
    return int(n)


#: each example loads a few batches (a load has a fixed cost of ~0.2 s): keep them few
EXAMPLES = 25 if settings.default.derandomize else 12


@settings(max_examples=EXAMPLES)
@given(
    seed=st.integers(0, 2**16),
    calls=st.integers(1, 300),
    days=st.integers(1, 4),
    start=st.sampled_from([dt.date(1998, 6, 1), dt.date(1998, 3, 30), dt.date(2024, 10, 31)]),
    which=st.sampled_from(CORPS),
    batch_rows=st.integers(5, 200),
    chunks=st.integers(1, 3),
    crowded=st.booleans(),
)
def test_a_corp_exported_and_loaded_elsewhere_is_the_same_calls(
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    calls: int,
    days: int,
    start: dt.date,
    which: str,
    batch_rows: int,
    chunks: int,
    crowded: bool,
) -> None:
    a, b = mart(), mart()
    fill(a, CORPS, calls, start=start, days=days, seed=seed)
    if crowded:  # B already holds another corp: its dimension keys differ from A's
        fill(b, ("91000002",), 50, start=start, days=days, seed=seed + 1)
    other = next(c for c in CORPS if c != which)
    before = natural(a, which)
    kept = natural(a, other)
    path = tmp_path_factory.mktemp("ipc") / "calls.arrows"
    written = write_ipc(path, export_batches(a, which, batch_rows=batch_rows))
    assert written == len(before)
    table = read_ipc(path)
    assert table.column_names == list(CALL_COLUMNS)
    chunk_rows = max(1, -(-len(before) // chunks))
    assert load_ipc(b, path, chunk_rows=chunk_rows).rows == len(before)
    assert natural(b, which) == before
    keys = b.sql(
        "SELECT gmt_key FROM perspective_base WHERE corp_id = ? ORDER BY rowid", params=[which]
    ).fetchall()
    assert keys == sorted(keys)  # still stored in time order
    assert purge_calls(a, which) == len(before)
    assert count(a, which) == 0
    assert natural(a, other) == kept
    assert purge_calls(a, which) == 0
    a.close()
    b.close()


def test_export_calls_is_the_batches_gathered_and_loads_directly() -> None:
    a, b = mart(), mart()
    fill(a, CORPS, 3000, start=dt.date(1998, 6, 1), days=5, seed=7)
    table = export_calls(a, "90000003")
    assert table.num_rows == count(a, "90000003")
    assert table.column_names == list(CALL_COLUMNS)
    assert set(table.column("corp_id").to_pylist()) == {"90000003"}
    assert load_calls(b, table).rows == table.num_rows
    assert natural(b, "90000003") == natural(a, "90000003")
    a.close()
    b.close()


def test_a_corp_without_calls_exports_one_empty_batch_that_loads(tmp_path: Path) -> None:
    a = mart()
    (batch,) = export_batches(a, "nobody")
    assert batch.num_rows == 0
    assert batch.schema.names == list(CALL_COLUMNS)
    path = tmp_path / "empty.arrows"
    assert write_ipc(path, [batch]) == 0
    assert load_ipc(a, path).rows == 0
    assert purge_calls(a, "nobody") == 0


def test_write_ipc_needs_a_batch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="schema"):
        write_ipc(tmp_path / "x.arrows", [])


def test_a_file_that_is_not_an_ipc_stream_loads_nothing(tmp_path: Path) -> None:
    con = mart()
    path = tmp_path / "junk.arrows"
    path.write_bytes(b"not arrow at all" * 10)
    with pytest.raises(pa.ArrowInvalid):
        load_ipc(con, path)
    assert con.sql("SELECT count(*) FROM perspective_base").fetchall() == [(0,)]


def test_load_ipc_is_all_or_nothing_across_its_chunks(tmp_path: Path) -> None:
    a, b = mart(), mart()
    fill(a, ("90000003",), 500, start=dt.date(1998, 6, 1), days=2, seed=3)
    good = export_calls(a, "90000003")
    bad = good.slice(0, 10).set_column(
        good.column_names.index("currency_cd"), "currency_cd", pa.array(["XXX"] * 10)
    )
    path = tmp_path / "calls.arrows"
    write_ipc(path, [good.cast(bad.schema), bad])
    with pytest.raises(LoadError, match="currency_cd"):
        load_ipc(b, path, chunk_rows=100)  # five good chunks, then the bad one
    assert b.sql("SELECT count(*) FROM perspective_base").fetchall() == [(0,)]
    assert b.sql("SELECT count(*) FROM billing_corp").fetchall() == [(0,)]
    a.close()
    b.close()


def _staged(tmp_path: Path, name: str, table: pa.Table) -> Path:
    path = tmp_path / f"{name}.arrows"
    write_ipc(path, [table])
    return path


def _batches(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return dict(con.sql("SELECT batch_id, rows FROM loaded_batch").fetchall())


def test_a_group_loads_each_file_once_in_one_transaction(tmp_path: Path) -> None:
    a, b = mart(), mart()
    fill(a, CORPS, 600, start=dt.date(1998, 6, 1), days=3, seed=5)
    calls = {corp: export_calls(a, corp) for corp in CORPS}
    one = _staged(tmp_path, "one", calls[CORPS[0]])
    two = _staged(tmp_path, "two", calls[CORPS[1]])
    assert load_ipc(b, one, batch="batch-one").rows == len(calls[CORPS[0]])
    # batch-one was loaded before, batch-two is in the group twice: each loads once
    outcomes = load_ipc_group(
        b, [(one, "batch-one"), (two, "batch-two"), (two, "batch-two"), (one, None)]
    )
    n0, n1 = len(calls[CORPS[0]]), len(calls[CORPS[1]])
    assert [o.rows for o in outcomes if not isinstance(o, Exception)] == [n0, n1, n1, n0]
    assert [o.dimension_rows for o in outcomes if not isinstance(o, Exception)][:3:2] == [0, 0]
    assert _batches(b) == {"batch-one": n0, "batch-two": n1}
    assert count(b, CORPS[0]) == 2 * n0  # once as batch-one, once without an id
    assert natural(b, CORPS[1]) == natural(a, CORPS[1])
    a.close()
    b.close()


def test_a_bad_file_in_a_group_fails_alone(tmp_path: Path) -> None:
    a, b = mart(), mart()
    fill(a, CORPS, 400, start=dt.date(1998, 6, 1), days=2, seed=6)
    good = export_calls(a, CORPS[0])
    bad = good.slice(0, 10).set_column(
        good.column_names.index("currency_cd"), "currency_cd", pa.array(["XXX"] * 10)
    )
    junk = tmp_path / "junk.arrows"
    junk.write_bytes(b"not arrow at all" * 10)
    files: list[tuple[Path | str, str | None]] = [
        (_staged(tmp_path, "good", good), "good"),
        (_staged(tmp_path, "bad", bad), "bad"),
        (junk, "junk"),
        (tmp_path / "missing.arrows", "missing"),
        (_staged(tmp_path, "other", export_calls(a, CORPS[1])), "other"),
    ]
    outcomes = load_ipc_group(b, files)
    assert isinstance(outcomes[1], LoadError)
    assert isinstance(outcomes[2], pa.ArrowInvalid)
    assert isinstance(outcomes[3], OSError)
    assert _batches(b) == {"good": len(good), "other": count(a, CORPS[1])}
    assert natural(b, CORPS[0]) == natural(a, CORPS[0])
    assert natural(b, CORPS[1]) == natural(a, CORPS[1])
    a.close()
    b.close()
