# ruff: noqa: S608 -- the direct queries are this module's own constants
"""``starwrs bench report``: ARD received to report file written, against one direct query.

Rows (three outbound standard reports of the Report Manager -- City Summary, Longest
Calls, Hourly Distribution -- over one corp's calls of June-July 1998, in a partition
that also holds another corp's; 1 M calls, and 10 M unless ``--quick``; or the sizes
of ``STARWRS_BENCH_REPORT_CALLS``, comma-separated):

* ``report: <title> <size>`` -- milliseconds from the ARD's text to the file on disk,
  in-process, exactly the DSS's path: ``validate(parse(text), "DSS")``,
  :func:`~starwrs.proxies.dss.sql.build_query`, execute on a DuckDB cursor, stream the
  rows through :func:`~starwrs.proxies.dss.formatter.write_report` (derived columns,
  translations, totals, an fsynced ``.csv``).
* baseline: the same aggregation as ONE direct DuckDB query written by hand (group,
  sort, threshold and the report totals; the rows fetched, nothing written), on the
  same cursor, in the same rounds.

**Lower is better**: the value is milliseconds and the ratio is ours / direct (target
at 10 M calls: at most 1.5).  Each round runs the direct query and the report once,
after one warm-up of each (so both read a warm buffer cache); each side keeps its
best of five rounds.

* ``report: dss peak RSS <size>`` -- the peak resident set (``VmHWM``) of a child
  process that opens the partition as the DSS does and runs the three reports once
  each over the largest size; the baseline is issue 11's 1 GB.  The child also says
  how much of it DuckDB holds (``duckdb_memory()``), printed with the context line.

Where the time goes is printed above the table: per report, preparing (parse, validate,
SQL) vs the query vs formatting and writing the file (the rows fetched first, in a run
of its own).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from starwrs.cli.benchkit import Result, compare
from starwrs.fixtures.datamart import corp_specs, generate_into
from starwrs.grammar import parse
from starwrs.grammar.catalogue import validate
from starwrs.grammar.catalogue_fulfil import FulfilAddReportDefinition
from starwrs.proxies.dss.formatter import iter_rows, write_report
from starwrs.proxies.dss.sql import build_query
from starwrs.proxies.rm.templates import TEMPLATES, Template
from starwrs.storage.datamart.partitions import partition_path
from starwrs.storage.datamart.store import open_datamart

__all__ = ["context", "run"]

START = dt.date(1998, 6, 1)
DAYS = 61
#: the corp of the largest size, and the one of every other size
BIG_CORP, SMALL_CORP = "90000003", "90000004"
#: the ARD's time zone (hours) and its START/END (GMT), covering every generated call
OFFSET = -5
PERIOD = ("199805310000", "199808012359")
ROUNDS = 5
_ran: dict[str, str] = {}


def context() -> str:
    """What the benchmark ran on and where the time went (printed above the table)."""
    head = (
        f"bench report: sizes {_ran.get('sizes', '?')} calls, best of {ROUNDS}, "
        f"duckdb {duckdb.__version__} ({_ran.get('threads', '?')} threads), "
        f"{os.cpu_count()} cores"
    )
    lines = [head, *(_ran.get("where", "").splitlines())]
    if "memory" in _ran:
        lines.append(_ran["memory"])
    return "\n".join(lines)


def _sizes(quick: bool) -> list[int]:
    text = os.environ.get("STARWRS_BENCH_REPORT_CALLS")
    if text:
        return sorted({max(1000, int(part)) for part in text.split(",") if part.strip()})
    return [1_000_000] if quick else [1_000_000, 10_000_000]


def _label(calls: int) -> str:
    if calls % 1_000_000 == 0:
        return f"{calls // 1_000_000}M"
    return f"{calls // 1000}k" if calls % 1000 == 0 else str(calls)


def _template(title: str) -> Template:
    return min(
        (t for t in TEMPLATES.values() if t.title == title and t.direction == "O"),
        key=lambda t: t.template_id,
    )


def ard_text(template: Template, corp: str, request_id: int = 1) -> str:
    """The Appendix D ARD of *template*'s default report for *corp* over the period."""
    return (
        f"ARD<ENTPID=00022924,USERID=jeanvnet2,STDRPTID={template.template_id},USERRPTID=1,"
        f"REQUESTID={request_id},PRODUCT=S,THRESHOLD=<RECCOUNT={template.threshold}>,"
        f"COLUMNS=<{'~'.join(map(str, template.columns))}>,"
        f"FILTERS=<BILLING=INBOUND<<{corp},{corp}><NA,NA><NA,NA>>>,"
        f"SCHEDULE=A<START={PERIOD[0]},END={PERIOD[1]}>,"
        f"TIMEZONE=<LABEL=EST,OFFSET={OFFSET}>,TOTALMODE=2>"
    )


def _minute(stamp: str) -> int:
    moment = dt.datetime.strptime(stamp, "%Y%m%d%H%M")
    return int((moment - dt.datetime(1970, 1, 1)).total_seconds()) // 60


#: the hand-written queries: $corp, $a, $b (GMT minutes), $tz (minutes); outbound calls
_WHERE = (
    "FROM perspective_base pb JOIN access_type acc ON acc.access_type_key = pb.access_type_key"
    " {joins} WHERE pb.corp_id = $corp AND acc.in_out = '0'"
    " AND pb.gmt_key BETWEEN $a AND $b"
)
_GEO = "JOIN report_geo rg ON rg.geo_key = pb.report_geo_key"
DIRECT: dict[str, str] = {
    "City Summary": (
        "WITH g AS (SELECT rg.city_name, rg.state_cd, count(*) AS calls,"
        " sum(pb.duration) AS minutes, sum(pb.amount) AS amount "
        + _WHERE.format(joins=_GEO)
        + " GROUP BY ALL ORDER BY rg.city_name DESC NULLS LAST, rg.state_cd LIMIT 500)"
        " SELECT *, sum(calls) OVER (), sum(minutes) OVER (), sum(amount) OVER () FROM g"
    ),
    "Longest Calls": (
        "WITH top AS (SELECT pb.gmt_key, pb.orig_number, pb.dialed_number, rg.city_name,"
        " rg.state_cd, pb.duration, pb.amount "
        + _WHERE.format(joins=_GEO)
        + " ORDER BY pb.duration DESC LIMIT 100)"
        " SELECT CAST(make_timestamp((gmt_key::BIGINT + $tz) * 60000000) AS DATE),"
        " strftime(make_timestamp((gmt_key::BIGINT + $tz) * 60000000), '%H:%M'),"
        " orig_number, dialed_number, city_name, state_cd, duration, amount,"
        " sum(duration) OVER (), sum(amount) OVER () FROM top"
    ),
    "Hourly Distribution": (
        "WITH h AS (SELECT ((pb.gmt_key + $tz) // 60) % 24 AS hour, count(*) AS calls,"
        " sum(pb.duration) AS minutes, sum(pb.amount) AS amount "
        + _WHERE.format(joins="")
        + " GROUP BY 1 ORDER BY 1 LIMIT 24)"
        " SELECT *, sum(calls) OVER (), sum(minutes) OVER (), sum(amount) OVER () FROM h"
    ),
}
REPORTS = tuple(DIRECT)
#: the column ids of the direct queries' last columns (the report totals)
TOTALS: dict[str, tuple[int, ...]] = {
    "City Summary": (67, 36, 58),
    "Longest Calls": (36, 58),
    "Hourly Distribution": (67, 36, 58),
}


def _direct_params(sql: str, corp: str) -> dict[str, object]:
    params: dict[str, object] = {"corp": corp, "a": _minute(PERIOD[0]), "b": _minute(PERIOD[1])}
    if "$tz" in sql:
        params["tz"] = OFFSET * 60
    return params


def run_report(
    cursor: duckdb.DuckDBPyConnection, text: str, corp: str, out: Path
) -> tuple[int, dict[int, Decimal]]:
    """The DSS's path from ARD text to report file: (detail lines, NRL totals)."""
    ard = validate(parse(text), "DSS")
    assert isinstance(ard, FulfilAddReportDefinition)
    query = build_query(ard, [corp])
    result = cursor.execute(query.sql, query.params)
    report = write_report(iter_rows(result), query.plan, out, stem="bench")
    report.path.unlink()
    return report.rows, {c: Decimal(v) for c, v in report.totals}


def run_direct(
    cursor: duckdb.DuckDBPyConnection, title: str, corp: str
) -> tuple[int, dict[int, Decimal]]:
    """The hand-written query, every row fetched: (rows, its totals of 67, 36, 58)."""
    sql = DIRECT[title]
    rows = cursor.execute(sql, _direct_params(sql, corp)).fetchall()
    if not rows:
        return 0, {}
    totals = rows[0][-len(TOTALS[title]) :]
    return len(rows), {c: Decimal(str(v)) for c, v in zip(TOTALS[title], totals, strict=True)}


def _timed(fn: Callable[..., object], *args: Any) -> float:
    began = time.perf_counter()
    fn(*args)
    return time.perf_counter() - began


@dataclass
class _Where:
    prepare: float = 0.0
    query: float = 0.0
    write: float = 0.0


def _phases(cursor: duckdb.DuckDBPyConnection, text: str, corp: str, out: Path) -> _Where:
    where = _Where()
    began = time.perf_counter()
    ard = validate(parse(text), "DSS")
    assert isinstance(ard, FulfilAddReportDefinition)
    query = build_query(ard, [corp])
    where.prepare = time.perf_counter() - began
    began = time.perf_counter()
    rows = list(iter_rows(cursor.execute(query.sql, query.params)))
    where.query = time.perf_counter() - began
    began = time.perf_counter()
    write_report(rows, query.plan, out, stem="bench").path.unlink()
    where.write = time.perf_counter() - began
    return where


def _measure(
    path: Path, sizes: dict[int, str], out: Path
) -> tuple[list[Result], list[str]]:
    con = open_datamart(path, read_only=True)
    results: list[Result] = []
    notes: list[str] = []
    try:
        (threads,) = con.execute("SELECT current_setting('threads')").fetchone() or ("?",)
        _ran["threads"] = str(threads)
        for calls, corp in sizes.items():
            for title in REPORTS:
                text = ard_text(_template(title), corp)
                cursor = con.cursor()
                try:
                    # warm-up of both sides, and proof that they compute the same thing
                    ours_rows, ours_totals = run_report(cursor, text, corp, out)
                    direct_rows, direct_totals = run_direct(cursor, title, corp)
                    if (ours_rows, ours_totals) != (direct_rows, direct_totals):
                        raise RuntimeError(
                            f"{title}: the report has {ours_rows} rows and totals"
                            f" {ours_totals}, the direct query {direct_rows} and {direct_totals}"
                        )
                    ours, direct = [], []
                    for _ in range(ROUNDS):
                        direct.append(_timed(run_direct, cursor, title, corp))
                        ours.append(_timed(run_report, cursor, text, corp, out))
                    where = _phases(cursor, text, corp, out)
                finally:
                    cursor.close()
                name = f"report: {title} {_label(calls)}"
                results.append(
                    compare(name, min(ours) * 1000, "ms", "one direct duckdb query",
                            min(direct) * 1000)
                )  # fmt: skip
                notes.append(
                    f"  {title} {_label(calls)}: {ours_rows} rows; prepare"
                    f" {where.prepare * 1000:.1f} ms, query {where.query * 1000:.0f} ms,"
                    f" format + write {where.write * 1000:.1f} ms"
                )
    finally:
        con.close()
    return results, notes


def _child(path: str, corp: str, out: str) -> None:
    """In a child process: the three reports over *corp*, as the DSS runs them."""
    con = open_datamart(path)  # read-write, as the DSS holds its partition
    cursor = con.cursor()
    opened = _hwm_mb()
    for title in REPORTS:
        run_report(cursor, ard_text(_template(title), corp), corp, Path(out))
    duck = cursor.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()
    cursor.close()
    con.close()
    print(json.dumps({"opened": opened, "peak": _hwm_mb(), "duckdb": (duck or (0,))[0] / 2**20}))


def _hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _memory(path: Path, corp: str, calls: int, out: Path) -> Result:
    done = subprocess.run(
        [sys.executable, "-m", "starwrs.cli.bench_report", str(path), corp, str(out)],
        capture_output=True, text=True, check=False, timeout=1800,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the memory child failed: {done.stderr.strip()[-500:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    _ran["memory"] = (
        f"  dss child over {_label(calls)}: {found['opened']:.0f} MB after opening the"
        f" partition, peak {found['peak']:.0f} MB over the three reports; DuckDB holds"
        f" {found['duckdb']:.0f} MB at the end (buffer cache, hash tables)"
    )
    return compare(
        f"report: dss peak RSS {_label(calls)}", found["peak"], "MB", "issue 11 limit 1 GB", 1024
    )


def run(quick: bool = False) -> list[Result]:
    """Measure and return the rows of ``starwrs bench report``."""
    sizes = _sizes(quick)
    _ran["sizes"] = " / ".join(_label(n) for n in sizes)
    corps: Sequence[str] = [SMALL_CORP] * (len(sizes) - 1) + [BIG_CORP]
    if len(sizes) > 2:
        corps = [f"9100{n:04d}" for n in range(len(sizes) - 1)] + [BIG_CORP]
    plan = dict(zip(sizes, corps, strict=True))
    with tempfile.TemporaryDirectory(prefix="starwrs-bench-report-") as tmp:
        state, out = Path(tmp) / "state", Path(tmp) / "out"
        out.mkdir()
        for calls, corp in plan.items():
            generate_into(
                state, corp_specs([corp]), calls, start=START, days=DAYS, seed=1, partition=1
            )
        path = partition_path(state, 1)
        results, notes = _measure(path, plan, out)
        _ran["where"] = "where the time goes (ours):\n" + "\n".join(notes)
        results.append(_memory(path, plan[sizes[-1]], sizes[-1], out))
    return results


if __name__ == "__main__":  # the memory child (see _memory)
    _child(*sys.argv[1:4])
