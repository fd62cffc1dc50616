"""``starwrs report`` through a real ``starwrs serve --demo``: arbitrator, both DSS partitions.

Every report the running system writes is held, once the system has stopped (a
DSS keeps its DuckDB file to itself while it runs), to the independent oracle of
tests/proxies/test_dss_sql.py over the very partition files it read.  A killed
DSS finishes every request it had acknowledged, exactly once.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import msgpack
import pytest
import trio
from starwrs.grammar import parse
from starwrs.protocol import Request as FrameRequest
from starwrs.proxies.rm.templates import TEMPLATES
from starwrs.runtime.config import Deployment
from starwrs.runtime.pki import load_pki
from starwrs.runtime.pool import ProxyPool
from starwrs.storage.datamart.partitions import partition_path, read_partition_map

from ..proxies.test_dss_sql import _RAW, Mart, Request, oracle
from .system import System, start

T = dt.datetime
JUNE_JULY = ((T(1998, 6, 2), T(1998, 7, 15, 12, 0)),)


@dataclass
class Run:
    request: Request
    request_id: int
    corp: str
    returncode: int = -1
    stdout: str = ""
    stderr: str = ""
    rows: list[list[str]] | None = None


def report(system: System, text: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starwrs.cli", "report", "--state", str(system.state),
         "--out", str(out), text],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def ard_text(request: Request, request_id: int) -> str:
    return request.text().replace("REQUESTID=1,", f"REQUESTID={request_id},")


def cases() -> list[Run]:
    """Every standard City Summary / Longest Calls / Hourly request, both corps."""
    runs: list[Run] = []
    rid = 5000
    for corp in ("90000003", "90000004"):
        for template_id in (90, 58):  # City Summary outbound and inbound
            template = TEMPLATES[template_id]
            rid += 1
            runs.append(
                Run(
                    Request(
                        template,
                        template.columns,
                        billing=((corp,),),
                        sort=((54, "D"),),
                        reccount=20,
                        total_mode=2,
                        periods=JUNE_JULY,
                        entitled=(corp,),
                    ),
                    rid,
                    corp,
                )
            )
        for template in TEMPLATES.values():
            if (
                template.title in ("Longest Calls", "Hourly Distribution")
                and template.direction == "O"
            ):
                rid += 1
                runs.append(
                    Run(
                        Request(
                            template,
                            template.columns,
                            billing=((corp,),),
                            periods=JUNE_JULY,
                            reccount=50,
                            total_mode=2,
                            entitled=(corp,),
                        ),
                        rid,
                        corp,
                    )
                )
    return runs


async def _publish(state: Path, envelopes: list[dict[str, Any]]) -> None:
    deployment = Deployment.load(state)
    pki = load_pki(state)
    pool = ProxyPool(deployment.proxies, pki.internal_client_context("admin"), deployment.limits)
    try:
        for envelope in envelopes:
            answer = await pool.request("ARB", FrameRequest("ARB", msgpack.packb(envelope)))
            assert answer.status == 0, answer
    finally:
        await pool.aclose()


async def _statuses(state: Path, target: str, ids: list[int]) -> dict[int, Any]:
    deployment = Deployment.load(state)
    pki = load_pki(state)
    pool = ProxyPool(deployment.proxies, pki.internal_client_context("admin"), deployment.limits)
    found: dict[int, Any] = {}
    try:
        with trio.fail_after(240):
            while len(found) < len(ids):
                for rid in ids:
                    if rid in found:
                        continue
                    try:
                        answer = await pool.request(
                            target, FrameRequest(target, f"RQS<REQUESTID={rid}>".encode())
                        )
                    except Exception:  # the DSS is restarting: ask again
                        await trio.sleep(0.2)
                        continue
                    reply = parse(answer.payload.decode())
                    if reply.get("STATUS") in ("format_success", "IAIO_failed", "format_failed"):
                        found[rid] = reply
                await trio.sleep(0.2)
    finally:
        await pool.aclose()
    return found


@dataclass
class Outcome:
    runs: list[Run]
    bad: subprocess.CompletedProcess[str]
    no_corp: subprocess.CompletedProcess[str]
    killed: dict[int, Any]
    killed_files: list[str]
    state: Path


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    state = tmp_path_factory.mktemp("report") / "s"
    out = tmp_path_factory.mktemp("out")
    system = start(state, "--demo-calls", "30000")
    runs = cases()
    try:
        for run in runs:
            done = report(
                system, ard_text(run.request, run.request_id), out / f"{run.request_id}.csv"
            )
            run.returncode, run.stdout, run.stderr = done.returncode, done.stdout, done.stderr
            if done.returncode == 0:
                text = (out / f"{run.request_id}.csv").read_text(encoding="utf-8")
                run.rows = list(csv.reader(io.StringIO(text)))
        bad = report(system, runs[0].request.text().replace("ENTPID=00022924", "ENTPID=1")
                     .replace("REQUESTID=1,", "REQUESTID=6001,"), out / "bad.csv")  # fmt: skip
        no_corp = report(system, "ARD<REQUESTID=6002>", out / "none.csv")
        # kill -9 the DSS of 90000003's partition while requests are queued
        partition = read_partition_map(state).partition_of("90000003")
        ids = list(range(7000, 7012))
        template = TEMPLATES[90]
        envelopes = [
            {
                "subject": "Arbitrator",
                "request_id": rid,
                "corp_id": "90000003",
                "priority": 1,
                "message": ard_text(
                    Request(template, template.columns, billing=(("90000003",),),
                            periods=JUNE_JULY, total_mode=2, entitled=("90000003",)),
                    rid,
                ),
            }
            for rid in ids
        ]  # fmt: skip
        trio.run(_publish, state, envelopes)
        os.kill(system.pids()[f"dss{partition}"], signal.SIGKILL)
        killed = trio.run(_statuses, state, f"DSS{partition}", ids)
        reports = state / "dss" / f"ods{partition}" / "reports"
        killed_files = sorted(p.name for p in reports.glob("r70*"))
    finally:
        system.stop()
    return Outcome(runs, bad, no_corp, killed, killed_files, state)


def test_every_report_ran(outcome: Outcome) -> None:
    for run in outcome.runs:
        assert run.returncode == 0, (run.request.template.title, run.stderr)
        nrl = parse(run.stdout.strip())
        assert nrl.acronym == "NRL"
        assert nrl.get("REQUESTID") == str(run.request_id)
        assert run.rows is not None
        assert run.rows[0][0] == "0"


def test_both_partitions_served(outcome: Outcome) -> None:
    table = read_partition_map(outcome.state)
    assert {table.partition_of(run.corp) for run in outcome.runs} == {1, 2}


def test_reports_equal_an_independent_query(outcome: Outcome) -> None:
    """The file's every row equals the oracle's over the partition the DSS read."""
    table = read_partition_map(outcome.state)
    marts: dict[int, Mart] = {}
    for partition in (1, 2):
        con = duckdb.connect(str(partition_path(outcome.state, partition)), read_only=True)
        cursor = con.execute(_RAW)
        names = [d[0] for d in cursor.description]
        marts[partition] = Mart(con, [dict(zip(names, r, strict=True)) for r in cursor.fetchall()])
    checked = 0
    for run in outcome.runs:
        mart = marts[table.partition_of(run.corp)]
        expected, _totals = oracle(mart, run.request)
        assert run.rows == expected, run.request.text()
        checked += 1
    assert checked == len(outcome.runs)
    city = next(
        r for r in outcome.runs if r.corp == "90000003" and r.request.template.template_id == 90
    )
    assert city.rows is not None
    assert len(city.rows) > 3  # the seed's example period has calls to report


def test_a_bad_request_ends_with_the_parsers_code(outcome: Outcome) -> None:
    assert outcome.bad.returncode == 1
    error = json.loads(outcome.bad.stderr.strip().splitlines()[-1])
    assert error["error"] == 6706
    assert error["message"].startswith("parser_failed")
    assert outcome.no_corp.returncode == 2
    assert "corp" in outcome.no_corp.stderr


def test_a_killed_dss_finishes_each_request_exactly_once(outcome: Outcome) -> None:
    assert sorted(outcome.killed) == list(range(7000, 7012))
    for rid, reply in outcome.killed.items():
        assert reply.get("STATUS") == "format_success", (rid, reply)
        history = [h.split("@")[0] for h in reply.get("HISTORY").items]
        assert history.count("format_success") == 1, history
        assert history.count("new_message") == 1, history
    # one file per request, none left half-written or twice
    assert len(outcome.killed_files) == 12
    assert len({name.split("_")[0] for name in outcome.killed_files}) == 12
