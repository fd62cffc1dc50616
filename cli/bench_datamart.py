"""``starwrs bench load``: priced calls generated and loaded per second.

Rows (the demo corps, June-July 1998; 1 M calls, 100 k with ``--quick``, or
``STARWRS_BENCH_LOAD_CALLS``; best of three rounds, one round above 3 M calls):

* ``load: generate + load_calls`` -- ``generate_into`` into two fresh partition files:
  the generator (one thread ahead) and :func:`~starwrs.storage.datamart.store.load_calls`
  (dimension rows, keys, one INSERT per batch), up to the files closed;
* ``load: load_calls alone`` -- the same batches, already generated, loaded the same way;
* ``load: generate alone`` -- drawing the batches, nothing stored.

The baseline of every row, measured in the same rounds: DuckDB loading the same Arrow
table (all the batches) into a fresh file with one ``CREATE TABLE AS SELECT``, up to
the file closed.  Each round runs the baseline and the three rows once, in fresh files,
and each keeps its best round, so a busy neighbour costs both sides alike.  The target
for the first row is a ratio of at least 0.7.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
from starwrs.cli.benchkit import Result, compare
from starwrs.fixtures.datamart import (
    CorpSpec,
    demo_corp_specs,
    generate_calls,
    generate_into,
    group_batches,
)
from starwrs.storage.datamart.store import load_calls, open_datamart

__all__ = ["context", "run"]

START = dt.date(1998, 6, 1)
DAYS = 61
CHUNK_ROWS = 500_000
_ran: dict[str, str] = {}


def context() -> str:
    """What the benchmark ran on (printed above the table)."""
    return (
        f"bench load: {_ran.get('calls', '?')} calls, {_ran.get('corps', '?')} corps, "
        f"{DAYS} days, best of {_ran.get('rounds', '?')}, duckdb {duckdb.__version__}, "
        f"{os.cpu_count()} cores"
    )


def _calls(quick: bool) -> int:
    text = os.environ.get("STARWRS_BENCH_LOAD_CALLS")
    if text:
        return max(1000, int(text))
    return 100_000 if quick else 1_000_000


def _baseline(table: pa.Table, path: Path) -> float:
    began = time.perf_counter()
    con = duckdb.connect(str(path))
    con.register("calls", table)
    con.execute("CREATE TABLE calls_raw AS SELECT * FROM calls")
    con.unregister("calls")
    con.close()
    return time.perf_counter() - began


def _once(root: Path, specs: list[CorpSpec], calls: int) -> tuple[float, float, float, float]:
    """(baseline, generate + load, load alone, generate alone) seconds, in fresh files."""
    began = time.perf_counter()
    batches = list(generate_calls(specs, calls, start=START, days=DAYS, seed=1))
    generate_seconds = time.perf_counter() - began
    table = pa.concat_tables(batches)
    base_seconds = _baseline(table, root / "baseline.duckdb")
    del table
    began = time.perf_counter()
    con = open_datamart(root / "alone.duckdb")
    for batch in group_batches(batches, CHUNK_ROWS):
        load_calls(con, batch)
    con.close()
    load_seconds = time.perf_counter() - began
    del batches
    both_seconds = generate_into(
        root / "state", specs, calls, start=START, days=DAYS, seed=1
    ).seconds
    for path in root.rglob("*.duckdb*"):
        path.unlink()
    (root / "state" / "datamart" / "partitions.json").unlink()
    return base_seconds, both_seconds, load_seconds, generate_seconds


def run(quick: bool = False) -> list[Result]:
    """Measure and return the rows of ``starwrs bench load`` (best of 3 rounds, 1 quick)."""
    calls = _calls(quick)
    rounds = 1 if quick or calls > 3_000_000 else 3
    specs = sorted(demo_corp_specs().values(), key=lambda spec: spec.corp_id)
    _ran.update(calls=str(calls), corps=str(len(specs)), rounds=str(rounds))
    next(generate_calls(specs[:1], 1000, start=START, days=1, seed=0))  # geography tables
    with tempfile.TemporaryDirectory(prefix="starwrs-bench-load-") as tmp:
        # rounds interleave the baseline and the measured runs; each keeps its best
        best = [
            min(col)
            for col in zip(*(_once(Path(tmp), specs, calls) for _ in range(rounds)), strict=True)
        ]
    base_seconds, both_seconds, load_seconds, generate_seconds = best
    base = calls / base_seconds
    label = "duckdb CTAS of the same Arrow"
    return [
        compare("load: generate + load_calls", calls / both_seconds, "calls/s", label, base),
        compare("load: load_calls alone", calls / load_seconds, "calls/s", label, base),
        compare("load: generate alone", calls / generate_seconds, "calls/s", label, base),
    ]
