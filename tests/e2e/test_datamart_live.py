"""``starwrs datamart generate`` while ``starwrs serve`` runs: bulk LOADs to each DSS.

A running system owns its partition files, so the generator sends each partition's
calls to its DSS (Arrow IPC files over mutual TLS).  The running DSS answers reports
on them at once; once the system has stopped, the partition files hold exactly the
calls the command reported, a report written from them equals the independent oracle
of tests/proxies/test_dss_sql.py, and the calls are the very ones the offline path
(:func:`generate_into`, straight into the files) stores for the same arguments.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from starwrs.cli.cmd_datamart import order_entry_corps
from starwrs.fixtures.datamart import corp_specs, generate_into
from starwrs.fixtures.datamart_live import generate_live, running_deployment
from starwrs.proxies.rm.templates import TEMPLATES
from starwrs.storage.datamart.partitions import partition_path, read_partition_map

from ..proxies.test_dss_sql import _RAW, Mart, Request, oracle
from ..storage.test_datamart_export import NATURAL
from .system import start

pytestmark = pytest.mark.slow

T = dt.datetime
CORPS = ("90000003", "90000004")
#: the CLI's calls: local days 2001-02-05 .. 07 (no demo data near them)
CLI_CALLS, CLI_START, CLI_DAYS = 30_000, "2001-02-05", 3
CLI_WINDOW = (T(2001, 2, 4), T(2001, 2, 9, 23, 59))
#: the in-process calls: many small puts (chunk 700 calls, at most 1000 a put)
LIB_CALLS, LIB_START, LIB_DAYS = 5_000, dt.date(2001, 3, 1), 2
LIB_WINDOW = (T(2001, 2, 28), T(2001, 3, 4, 23, 59))


def minute(moment: dt.datetime) -> int:
    return int((moment - T(1970, 1, 1)).total_seconds()) // 60


def datamart(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starwrs.cli", "datamart", *args, "--state", str(state)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def city_summary(corp: str, request_id: int) -> tuple[Request, str]:
    template = TEMPLATES[90]
    request = Request(
        template,
        template.columns,
        billing=((corp,),),
        sort=((54, "D"),),
        reccount=50,
        total_mode=2,
        periods=(CLI_WINDOW,),
        entitled=(corp,),
    )
    return request, request.text().replace("REQUESTID=1,", f"REQUESTID={request_id},")


@dataclass
class Outcome:
    state: Path
    cli: subprocess.CompletedProcess[str]
    no_partition: subprocess.CompletedProcess[str]
    reports: dict[str, tuple[Request, subprocess.CompletedProcess[str], list[list[str]]]]
    lib_calls: dict[int, int]
    staging_left: list[str]
    offline: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    state = tmp_path_factory.mktemp("live") / "s"
    out = tmp_path_factory.mktemp("out")
    system = start(state, "--demo-calls", "20000")
    try:
        assert running_deployment(state) is not None
        cli = datamart(
            state, "generate", "--calls", str(CLI_CALLS), "--corps", *CORPS,
            "--start", CLI_START, "--days", str(CLI_DAYS), "--seed", "5",
        )  # fmt: skip
        no_partition = datamart(
            state, "generate", "--calls", "100", "--corps", "1234", "--partition", "3"
        )
        reports = {}
        for n, corp in enumerate(CORPS):
            request, text = city_summary(corp, 8100 + n)
            target = out / f"{corp}.csv"
            done = subprocess.run(
                [sys.executable, "-m", "starwrs.cli", "report", "--state", str(state),
                 "--out", str(target), text],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            rows = []
            if done.returncode == 0:
                rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
            reports[corp] = (request, done, rows)
        deployment = running_deployment(state)
        assert deployment is not None
        specs = corp_specs(CORPS, order_entry_corps(state))
        lib = generate_live(
            state, deployment, specs, LIB_CALLS, start=LIB_START, days=LIB_DAYS, seed=9,
            chunk_rows=700, max_rows=1000,
        )  # fmt: skip
        staging_left = [p.name for p in (state / "datamart").glob(".generate-*")]
        staging_left += [p.name for p in (state / "dss").glob("ods*/staging/*")]
    finally:
        system.stop()
    assert running_deployment(state) is None
    offline = datamart(
        state, "generate", "--calls", "500", "--corps", "90000004",
        "--start", "2002-03-01", "--days", "1",
    )  # fmt: skip
    return Outcome(state, cli, no_partition, reports, lib.calls, staging_left, offline)


def calls_in(state: Path, partition: int, window: tuple[dt.datetime, dt.datetime]) -> int:
    con = duckdb.connect(str(partition_path(state, partition)), read_only=True)
    try:
        ((n,),) = con.execute(
            "SELECT count(*) FROM perspective_base WHERE gmt_key BETWEEN ? AND ?",
            [minute(window[0]), minute(window[1])],
        ).fetchall()
    finally:
        con.close()
    return int(n)


def test_generate_goes_through_the_running_system(outcome: Outcome) -> None:
    assert outcome.cli.returncode == 0, outcome.cli.stderr
    line = outcome.cli.stdout.strip()
    assert "through the running system" in line
    found = {int(k): int(n) for k, n in re.findall(r"ODS(\d+) (\d+)", line)}
    table = read_partition_map(outcome.state)
    assert set(found) == {table.partition_of(c) for c in CORPS} == {1, 2}
    assert sum(found.values()) == CLI_CALLS
    for partition, n in found.items():
        assert calls_in(outcome.state, partition, CLI_WINDOW) == n
    assert outcome.staging_left == []


def test_the_running_dss_reports_on_the_loaded_calls(outcome: Outcome) -> None:
    table = read_partition_map(outcome.state)
    for corp, (request, done, rows) in outcome.reports.items():
        assert done.returncode == 0, done.stderr
        con = duckdb.connect(
            str(partition_path(outcome.state, table.partition_of(corp))), read_only=True
        )
        try:
            cursor = con.execute(_RAW)
            names = [d[0] for d in cursor.description]
            mart = Mart(con, [dict(zip(names, r, strict=True)) for r in cursor.fetchall()])
            expected, _totals = oracle(mart, request)
        finally:
            con.close()
        assert rows == expected
        assert len(rows) > 3  # the loaded days have calls to report


def test_the_live_path_stores_what_the_offline_path_stores(
    outcome: Outcome, tmp_path: Path
) -> None:
    assert sum(outcome.lib_calls.values()) == LIB_CALLS
    specs = corp_specs(CORPS, order_entry_corps(outcome.state))
    fresh = tmp_path / "offline"
    generate_into(
        fresh, specs, LIB_CALLS, start=LIB_START, days=LIB_DAYS, seed=9, chunk_rows=700
    )
    table = read_partition_map(outcome.state)
    window = [minute(LIB_WINDOW[0]), minute(LIB_WINDOW[1])]
    query = NATURAL + " AND pb.gmt_key BETWEEN ? AND ?"
    stored: dict[int, int] = {}
    for corp in CORPS:
        k = table.partition_of(corp)
        rows = []
        for path in (partition_path(outcome.state, k), partition_path(fresh, k)):
            con = duckdb.connect(str(path), read_only=True)
            try:
                rows.append(sorted(map(repr, con.execute(query, [corp, *window]).fetchall())))
            finally:
                con.close()
        live, offline = rows
        assert live
        assert live == offline
        stored[k] = stored.get(k, 0) + len(live)
    assert stored == outcome.lib_calls


def test_a_partition_the_system_lacks_is_one_line(outcome: Outcome) -> None:
    assert outcome.no_partition.returncode == 1
    assert outcome.no_partition.stderr.strip().splitlines() == [
        "starwrs datamart: the running system has no DSS3 (it runs DSS1, DSS2)"
    ]
    assert "1234" not in read_partition_map(outcome.state).corps


def test_without_a_running_system_generate_writes_the_files(outcome: Outcome) -> None:
    assert outcome.offline.returncode == 0, outcome.offline.stderr
    assert "through the running system" not in outcome.offline.stdout
    k = read_partition_map(outcome.state).partition_of("90000004")
    assert calls_in(outcome.state, k, (T(2002, 2, 28), T(2002, 3, 3))) == 500
