"""Report delivery through a real ``starwrs serve --demo``: scheduler to inbox, exactly once.

A new user's report, saved with ACTIVE=1 through ``starwrs client``, goes Report
Manager -> (outbox) -> Report Scheduler -> (outbox) -> arbitrator -> DSS -> file into
the inbox -> NRL -> Report Manager -> ``.mtd`` + ``A`` -> the user's inbox, where
``starwrs client`` lists it and fetches both halves over bulk.  Then the scheduler
is killed with SIGKILL across a run falling due, and the Report Manager while NRLs
are in flight; ``starwrs serve`` restarts each, and every saved report ends up as
exactly one inbox item, from exactly one run, once every outbox is empty.  The
report's rows are held, after the system stopped, to the independent oracle of
tests/proxies/test_dss_sql.py over the partition file the DSS read.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import msgpack
import pytest
import trio
from starwrs.grammar import Group, Seq, parse
from starwrs.grammar.seed import seed_text
from starwrs.protocol import Request as FrameRequest
from starwrs.protocol.events import Frame
from starwrs.protocol.header import Mechanism
from starwrs.proxies.rm.templates import TEMPLATES
from starwrs.runtime.config import Deployment
from starwrs.runtime.pki import load_pki
from starwrs.runtime.pool import ProxyPool
from starwrs.storage.datamart.partitions import partition_path, read_partition_map

from ..proxies.test_dss_sql import _RAW, Mart, Request, oracle
from .system import System, start

pytestmark = pytest.mark.slow

SEED_ARD = seed_text("07_ard.txt").strip()
#: the seed's report without the criteria that match nothing in the demo datamart,
#: with totals and State subtotals (SUBTOTCOL: a break column)
BROAD_ARD = (
    "ARD<USERID=jeanvnet2,ENTPID=00022924,STDRPTID=90,NAME={name},PRODUCT=S,"
    "CATEGORY=Analyze Traffic,THRESHOLD=<RECCOUNT=20>,"
    "SCHEDULE=A<START=199806020000,END=199807151200>,RANGETYPE=1,SCHEDTYPE=A,TIMEZONE=45,"
    "BILLING=INBOUND<<90000003,90000003><NA,NA><NA,NA>>INBOUND<<90000004,90000004><NA,NA>"
    "<NA,NA>>,SORTBY=<54D>,COLUMNS=<54~55~67~62~36~61~58~63~64~66~65>,ACTIVE=1,"
    "TOTALMODE=3,SUBTOTCOL=<55>,EMAIL=0,PAGE=0>"
)
T = dt.datetime
#: the seed's START/END (New York wall clock, EDT) in GMT
PERIOD = ((T(1998, 6, 2, 4, 0), T(1998, 7, 15, 16, 0)),)
SETTLE = 180.0


def cli(system: System, *argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STARWRS_PASSWORD=system.passwords()["jeanvnet2"])
    return subprocess.run(
        [sys.executable, "-m", "starwrs.cli", *argv],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip


def client(system: System, *argv: str) -> subprocess.CompletedProcess[str]:
    return cli(system, "client", "--state", str(system.state), "--user", "jeanvnet2", *argv)


def until(what: str, check: Callable[[], bool], timeout: float = SETTLE) -> None:
    """Look again every 0.2 s until *check()* holds (the system works on its own)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def save(system: System, text: str) -> int:
    """Save a report through ``starwrs client`` (the user's own tool)."""
    done = client(system, "send", text)
    assert done.returncode == 0, done.stderr
    answer = parse(done.stdout.strip())
    assert answer.get("ERROR") == "0", done.stdout
    return int(str(answer.get("USERRPTID")))


def quick_save(system: System, cookie: str, text: str) -> int:
    """Save a report over the session's HTTPS (no process start: several in a second)."""
    _, frames = system.dispatch(cookie, Frame.build(Mechanism.SYNC, "RM", text.encode()))
    answer = parse(frames[0].payload.decode())
    assert answer.get("ERROR") == "0", answer
    return int(str(answer.get("USERRPTID")))


def ran(state: Path) -> int:
    """Runs the scheduler has committed so far (read-only)."""
    con = sqlite3.connect(f"file:{state / 'rs.db'}?mode=ro", uri=True, timeout=5)
    try:
        (count,) = con.execute("SELECT count(*) FROM runs").fetchone()
    finally:
        con.close()
    return int(count)


def completed(state: Path) -> int:
    """Runs the Report Manager has completed so far (read-only)."""
    con = sqlite3.connect(f"file:{state / 'rm.db'}?mode=ro", uri=True, timeout=5)
    try:
        (count,) = con.execute("SELECT count(*) FROM runs WHERE state = 'C'").fetchone()
    finally:
        con.close()
    return int(count)


def items(system: System, cookie: str) -> list[list[str]]:
    """The user's report items: <INBOXID,CATEGORY,TYPE,RPTTITLE,...> rows."""
    text = b"L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=R>"
    _, frames = system.dispatch(cookie, Frame.build(Mechanism.SYNC, "INBX", text))
    value = parse(frames[0].payload.decode()).get("ITEMS")
    assert isinstance(value, Group)
    out: list[list[str]] = []
    for member in value.members:
        groups = member.value.parts if isinstance(member.value, Seq) else (member.value,)
        out += [[str(cell.value) for cell in group.members] for group in groups]  # type: ignore[union-attr]
    return out


def pending(state: Path) -> int:
    """Messages still queued in every outbox of the delivery path (read-only)."""
    files = [state / "rs.db", state / "rm.db", state / "arbitrator.db"]
    files += sorted((state / "dss").glob("ods*/outbox.db"))
    total = 0
    for path in files:
        if not path.exists():
            continue
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            (count,) = con.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()
            total += count
        finally:
            con.close()
    return total


def kill(system: System, name: str) -> int:
    pid = system.pids()[name]
    os.kill(pid, signal.SIGKILL)
    return pid


def restarted(system: System, name: str, old: int) -> None:
    until(f"{name} restarted", lambda: system.pids().get(name) not in (None, old), 60)
    system.wait_for_line(f"starwrs: {name} restarted", 60)


def failing_request(report: int) -> list[dict[str, Any]]:
    """An Appendix D ARD for *report* that the DSS's parser refuses (ENTPID of 1 character)."""
    template = TEMPLATES[90]
    text = Request(template, template.columns, billing=(("90000003",),), periods=PERIOD).text()
    text = text.replace("ENTPID=00022924", "ENTPID=1").replace("REQUESTID=1,", "REQUESTID=999001,")
    text = text.replace("USERRPTID=1,", f"USERRPTID={report},")
    return [
        {
            "subject": "Arbitrator",
            "request_id": 999001,
            "corp_id": "90000003",
            "priority": 1,
            "message": text,
            "deliver": {
                "user_id": "jeanvnet2",
                "entp_id": "00022924",
                "user_report_id": report,
                "std_report_id": 90,
            },
        }
    ]


async def _publish(state: Path, envelopes: list[dict[str, Any]]) -> None:
    """Publish to the arbitrator as an operator (the ``admin`` certificate)."""
    deployment = Deployment.load(state)
    pki = load_pki(state)
    pool = ProxyPool(deployment.proxies, pki.internal_client_context("admin"), deployment.limits)
    try:
        for envelope in envelopes:
            answer = await pool.request("ARB", FrameRequest("ARB", msgpack.packb(envelope)))
            assert answer.status == 0, answer
    finally:
        await pool.aclose()


@dataclass
class Outcome:
    state: Path
    reports: dict[str, int] = field(default_factory=dict)
    listed: list[list[str]] = field(default_factory=list)
    files: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    validated: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    final: list[list[str]] = field(default_factory=list)
    in_flight: int = 0
    failing: int = 0
    failure_text: str = ""
    failure_status: str = ""


def fetch(system: System, out: Path, inbox_id: str) -> tuple[bytes, bytes]:
    halves = []
    for part, suffix in (("D", "csv"), ("M", "mtd")):
        target = out / f"{inbox_id}.{suffix}"
        done = client(
            system, "send", f"F<INBOXID={inbox_id},PART={part}>", "--mech", "bulk",
            "--out", str(target),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        halves.append(target.read_bytes())
    return halves[0], halves[1]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    state = tmp_path_factory.mktemp("delivery") / "s"
    out = tmp_path_factory.mktemp("files")
    system = start(state)
    result = Outcome(state)
    try:
        cookie = system.logon("jeanvnet2")
        # 1. the seed's report and a broader one, saved and run at once
        result.reports["City Summary Outbound"] = save(system, SEED_ARD)
        result.reports["Broad"] = save(system, BROAD_ARD.format(name="Broad"))
        until("two items", lambda: len(items(system, cookie)) == 2)
        result.listed = items(system, cookie)
        for row in result.listed:
            result.files[row[3]] = fetch(system, out, row[0])
            result.validated[row[3]] = cli(
                system, "parse", "--validate", str(out / f"{row[0]}.mtd")
            )
        for name, report in result.reports.items():
            done = client(system, "send", f"GURD<REPORTID={report}>")
            result.statuses[name] = done.stdout.split("<TXT_STATUS,", 1)[1].split(",", 1)[0]
        # 2. the scheduler killed: a report saved while it is down, one as it is killed
        old = kill(system, "rs")
        result.reports["RS down"] = quick_save(system, cookie, BROAD_ARD.format(name="RS down"))
        restarted(system, "rs", old)
        until("the waiting change run", lambda: ran(state) == 3, 60)
        result.reports["RS killed"] = quick_save(
            system, cookie, BROAD_ARD.format(name="RS killed")
        )
        old = kill(system, "rs")  # as the change reaches it and its run falls due
        until("rs restarted again", lambda: system.pids().get("rs") not in (None, old), 60)
        # 3. the Report Manager killed while NRLs are in flight: eight runs, killed once
        # two of them have come back (the DSS works them one after another)
        before = completed(state)
        for n in range(8):
            name = f"RM killed {n}"
            result.reports[name] = quick_save(system, cookie, BROAD_ARD.format(name=name))
        until("two NRLs applied", lambda: completed(state) >= before + 2, 120)
        old = kill(system, "rm")
        result.in_flight = len(result.reports) - completed(state)
        restarted(system, "rm", old)
        wanted = len(result.reports)
        until("every report in the inbox", lambda: len(items(system, cookie)) >= wanted)
        until("every outbox empty", lambda: pending(state) == 0)
        # 4. a run the DSS cannot do (its ARD does not parse) reaches the user as an error
        stored_only = BROAD_ARD.format(name="Fails").replace("ACTIVE=1", "ACTIVE=0")
        fails = quick_save(system, cookie, stored_only)
        result.failing = fails
        trio.run(_publish, state, failing_request(fails))
        until("the failure's item", lambda: "Fails" in [r[3] for r in items(system, cookie)])
        until("every outbox empty again", lambda: pending(state) == 0)
        row = next(r for r in items(system, cookie) if r[3] == "Fails")
        target = out / "fails.txt"
        done = client(
            system, "send", f"F<INBOXID={row[0]}>", "--mech", "bulk", "--out", str(target)
        )
        assert done.returncode == 0, done.stderr
        result.failure_text = target.read_text(encoding="utf-8")
        done = client(system, "send", f"GURD<REPORTID={fails}>")
        result.failure_status = done.stdout
        result.final = [r for r in items(system, cookie) if r[3] != "Fails"]
    finally:
        system.stop()
    return result


def test_the_seeds_report_arrives_as_a_csv_an_mtd_and_an_item(outcome: Outcome) -> None:
    titles = sorted(row[3] for row in outcome.listed)
    assert titles == ["Broad", "City Summary Outbound"]
    for row in outcome.listed:
        assert row[1:3] == ["R", "priced"]
        data, meta = outcome.files[row[3]]
        assert int(row[6]) == len(data)  # FSIZE
        assert int(row[7]) == len(meta)  # MSIZE
        assert data.splitlines()[0].split(b",")[0] == b"0"
        assert meta.startswith(b"<METADATA=<CRITERIA=<Name=" + row[3].encode())
        done = outcome.validated[row[3]]
        assert done.returncode == 0, done.stderr
    assert set(outcome.statuses.values()) == {"C"}


def test_the_mtd_describes_this_run(outcome: Outcome) -> None:
    from starwrs.grammar.catalogue import validate
    from starwrs.grammar.catalogue_metadata import ReportMetadata

    _, meta = outcome.files["Broad"]
    metadata = validate(parse(meta.decode()), "INBX")
    assert isinstance(metadata, ReportMetadata)
    assert metadata.criteria.time_zone == "EDT"
    assert str(metadata.criteria.dates) == str(
        parse("X<D=<06/02/1998 00:00 - 07/15/1998 12:00>>").get("D")
    )
    assert metadata.subtotal_columns == (55,)
    assert metadata.presubtotaled is True
    assert [c.column_id for c in metadata.columns] == list(metadata.column_display_order)


def test_the_report_equals_an_independent_query(outcome: Outcome) -> None:
    table = read_partition_map(outcome.state)
    partition = table.partition_of("90000003")  # the first BILLING corp routes it
    con = duckdb.connect(str(partition_path(outcome.state, partition)), read_only=True)
    cursor = con.execute(_RAW)
    names = [d[0] for d in cursor.description]
    mart = Mart(con, [dict(zip(names, r, strict=True)) for r in cursor.fetchall()])
    template = TEMPLATES[90]
    request = Request(
        template,
        (54, 55, 67, 62, 36, 61, 58, 63, 64, 66, 65),
        billing=(("90000003",), ("90000004",)),
        sort=((54, "D"),),
        reccount=20,
        total_mode=3,
        subtotals=(55,),
        periods=PERIOD,
        offset=-4,
        entitled=("90000003", "90000004"),
    )
    expected, _totals = oracle(mart, request)
    data, _ = outcome.files["Broad"]
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert rows == expected
    assert len(rows) > 3  # the seed's period has calls to report


def test_every_report_is_delivered_exactly_once_across_kills(outcome: Outcome) -> None:
    assert outcome.in_flight >= 3  # the Report Manager was killed with NRLs still to come
    titles = [row[3] for row in outcome.final]
    assert sorted(titles) == sorted(outcome.reports)  # one item each, none twice
    runs = sqlite3.connect(outcome.state / "rs.db")
    per_report = dict(runs.execute("SELECT report_id, count(*) FROM runs GROUP BY report_id"))
    assert per_report == {report: 1 for report in outcome.reports.values()}
    rm = sqlite3.connect(outcome.state / "rm.db")
    states = rm.execute(
        "SELECT report_id, state, inbox_id FROM runs WHERE report_id != ? ORDER BY report_id",
        (outcome.failing,),
    ).fetchall()
    assert [r[0] for r in states] == sorted(outcome.reports.values())
    assert {r[1] for r in states} == {"C"}
    assert len({r[2] for r in states}) == len(states)  # each its own inbox item
    received = rm.execute("SELECT subject, count(*) FROM received GROUP BY subject").fetchall()
    assert dict(received) == {"ARDA": len(states) + 1, "NRL": len(states) + 1}


def test_a_dss_failure_reaches_the_user_with_its_reason(outcome: Outcome) -> None:
    assert "could not be produced" in outcome.failure_text
    assert "6706" in outcome.failure_text  # the parser's code: ENTPID must have 8 characters
    assert "<TXT_STATUS,FAILED,STATUS>" in outcome.failure_status
    assert "<TXT_REASON," in outcome.failure_status
    rm = sqlite3.connect(outcome.state / "rm.db")
    (state, code) = rm.execute(
        "SELECT state, error_code FROM runs WHERE request_id = 999001"
    ).fetchone()
    assert (state, code) == ("FAILED", 6706)
