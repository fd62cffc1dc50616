"""Seed 003 end to end, through real processes: an Asterisk ``Master.csv`` -> ``starwrs
collector send`` -> e-mail (SMTP, STARTTLS, S/MIME) to the harvest of a real ``starwrs
serve`` -> rated -> loaded by the corp's DSS -> ``starwrs report`` shows those calls,
priced by the tariff, for that corp and no other; the customer's inbox has the news of
the rejected record.  Then kill -9: of the harvest right after its DSS load (before it
records the batch), and of the collector right after the harvest's 250 (before it records
it); after the restarts every record is in the datamart exactly once.  Last, the network
path: a second PBX's collector sends its batches as bulk puts through the web tier,
logged on as the demo's ``pbxcollector`` (the ``HARV`` application), and they land in
the same reports.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from starwrs.proxies.rm.templates import TEMPLATES

from ..proxies.test_dss_sql import Request
from .system import System, start

pytestmark = pytest.mark.slow

ENTP, CORP, OTHER_CORP = "00022924", "90000003", "90000004"
T = dt.datetime
#: local days of the three parts (no demo data near them)
DAYS = {"plain": 5, "harvest-kill": 6, "collector-kill": 7, "network": 8}
WINDOW = (T(2024, 3, 4), T(2024, 3, 9))

TARIFFS = f"""plan,E2E,End to end,USA,60/60,0.00,0,0.00
rate,E2E,*,*,*,+1,0.05,0
profile,{ENTP},{CORP},E2E,2020-01-01,V,0
site,{ENTP},{CORP},*,Y3000001,N3100001,+12125551000,4,America/New_York,9
"""


def line(day: int, i: int) -> bytes:
    """An answered outbound call to a number of its own: 2 minutes, 0.05 a minute."""
    dst = f"9718555{day:01d}{i:03d}"
    stamp = f"2024-03-{day:02d} 10:{i % 60:02d}"
    return (
        f'"","2001","{dst}","from-internal","""Alice"" <2001>","PJSIP/2001-{i:08d}",'
        f'"PJSIP/trunk-{i:08d}","Dial","PJSIP/{dst}@trunk,60","{stamp}:00","{stamp}:07",'
        f'"{stamp}:59",127,120,"ANSWERED","DOCUMENTATION"\n'
    ).encode()


def internal(day: int) -> bytes:
    """A call from extension 2001 to 2002: no carrier, not charged."""
    stamp = f"2024-03-{day:02d} 11:00"
    return (
        f'"","2001","2002","from-internal","""Alice"" <2001>","PJSIP/2001-00000999",'
        f'"PJSIP/2002-00000998","Dial","PJSIP/2002,60","{stamp}:00","{stamp}:03",'
        f'"{stamp}:30",30,27,"ANSWERED","DOCUMENTATION"\n'
    ).encode()


def number(day: int, i: int) -> str:
    return f"718555{day:01d}{i:03d}"


def cli(
    *args: str, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("STARWRS_COLLECTOR")}
    return subprocess.run(
        [sys.executable, "-m", "starwrs.cli", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
        env={**environment, **(env or {})},
    )  # fmt: skip


def audit(state: Path) -> list[dict[str, object]]:
    con = sqlite3.connect(f"file:{state / 'harvest' / 'harvest.db'}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM audit ORDER BY id")]
    finally:
        con.close()


def wait_applied(state: Path, batches: int, timeout: float = 90) -> None:
    """Until *batches* batches are applied (a deferred load finishes in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        done = [r for r in audit(state) if r["result"] == "applied"]
        if len(done) >= batches:
            return
        assert time.monotonic() < deadline, audit(state)
        time.sleep(0.2)


def report(system: System, corp: str, request_id: int, out: Path) -> list[list[str]]:
    template = TEMPLATES[3]  # Most Expensive Calls: one row per call
    request = Request(
        template, template.columns, billing=((corp,),), reccount=500, periods=(WINDOW,),
        entitled=(CORP, OTHER_CORP),
    )  # fmt: skip
    text = request.text().replace("REQUESTID=1,", f"REQUESTID={request_id},")
    done = cli("report", "--state", str(system.state), "--corp", corp, "--out", str(out), text)
    assert done.returncode == 0, done.stderr
    return list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))


@dataclass
class Outcome:
    system: System
    state: Path
    collector: Path
    sends: dict[str, subprocess.CompletedProcess[str]]
    rows: list[list[str]]
    other_rows: list[list[str]]
    news: list[dict[str, object]]
    harvest_pids: tuple[int, int]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    root = tmp_path_factory.mktemp("collector-e2e")
    state, collector = root / "provider", root / "pbx"
    system = start(state)
    try:
        deployment = json.loads((state / "deployment.json").read_text())
        smtp = f"{deployment['harvest_smtp']['host']}:{deployment['harvest_smtp']['port']}"
        (root / "tariffs.csv").write_text(TARIFFS)
        done = cli("admin", "--state", str(state), "tariff", "load", str(root / "tariffs.csv"))
        assert done.returncode == 0, done.stderr
        done = cli("admin", "--state", str(state), "collector", "provider-cert")
        assert done.returncode == 0, done.stderr
        (root / "provider.pem").write_text(done.stdout)

        def enrolled(folder: Path, name: str, *path: str) -> None:
            """``collector init`` (by *path*: e-mail or network), then enroll it."""
            done = cli(
                "collector", "init", "--state", str(folder), "--enterprise", ENTP,
                "--provider-cert", str(root / "provider.pem"), "--to",
                deployment["harvest_mailbox"], *path, "--name", name,
                "--tz", "America/New_York", "--batch-records", "10",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            done = cli("admin", "--state", str(state), "collector", "enroll", ENTP,
                       str(folder / "collector.pem"), "--corp", CORP)  # fmt: skip
            assert done.returncode == 0, done.stderr

        enrolled(collector, "pbx1", "--smtp", smtp, "--smtp-ca", str(state / "ca.pem"),
                 "--from", "pbx1@pbx.example")  # fmt: skip
        sends: dict[str, subprocess.CompletedProcess[str]] = {}
        # 1. plain: 25 calls, a broken record, an internal call
        plain = root / "cdr" / "Master.csv"
        plain.parent.mkdir()
        day = DAYS["plain"]
        plain.write_bytes(
            b"".join(line(day, i) for i in range(12)) + b'"broken"\n' + internal(day)
            + b"".join(line(day, i) for i in range(12, 25))
        )  # fmt: skip
        sends["plain"] = cli("collector", "send", "--state", str(collector), str(plain))
        wait_applied(state, 3)
        # 2. the harvest dies right after its DSS load, before it records the batch
        pids_before = json.loads((state / "pids.json").read_text())
        (state / "harvest" / "faults").mkdir(parents=True, exist_ok=True)
        (state / "harvest" / "faults" / "after-load").touch()
        with plain.open("ab") as f:
            f.write(b"".join(line(DAYS["harvest-kill"], i) for i in range(8)))
        sends["harvest-kill"] = cli(
            "collector", "send", "--state", str(collector), "--patience", "90", str(plain)
        )
        wait_applied(state, 4)
        pids_after = json.loads((state / "pids.json").read_text())
        # 3. the collector dies right after the harvest's 250, before it records it
        (collector / "faults").mkdir()
        (collector / "faults" / "after-send").touch()
        with plain.open("ab") as f:
            f.write(b"".join(line(DAYS["collector-kill"], i) for i in range(15)))
        sends["collector-kill-1"] = cli("collector", "send", "--state", str(collector), str(plain))
        sends["collector-kill-2"] = cli("collector", "send", "--state", str(collector), str(plain))
        wait_applied(state, 6)
        # 4. the network path: another PBX of the enterprise, through the web tier
        pbx2 = root / "pbx2"
        enrolled(pbx2, "pbx2", "--url", system.url, "--user", "pbxcollector",
                 "--web-ca", str(state / "ca.pem"))  # fmt: skip
        network = root / "cdr2" / "Master.csv"
        network.parent.mkdir()
        network.write_bytes(b"".join(line(DAYS["network"], i) for i in range(14)))
        sends["network-no-password"] = cli(
            "collector", "send", "--state", str(pbx2), "--patience", "0", str(network)
        )
        password = {"STARWRS_COLLECTOR_PASSWORD": system.passwords()["pbxcollector"]}
        sends["network"] = cli(
            "collector", "send", "--state", str(pbx2), "--patience", "60", str(network),
            env=password,
        )  # fmt: skip
        wait_applied(state, 8)
        rows = report(system, CORP, 9301, root / "corp.csv")
        other_rows = report(system, OTHER_CORP, 9302, root / "other.csv")
        news = []
        deadline = time.monotonic() + 60
        while not news and time.monotonic() < deadline:
            con = sqlite3.connect(f"file:{state / 'inbox' / 'inbox.db'}?mode=ro", uri=True)
            con.row_factory = sqlite3.Row
            try:
                news = [dict(r) for r in con.execute(
                    "SELECT user_id, entp_id, category, title FROM items WHERE category = 'F'"
                    " AND title LIKE 'Call records:%'"
                )]  # fmt: skip
            finally:
                con.close()
            if not news:
                time.sleep(0.2)
    except BaseException:
        print(system.launched.logs())
        system.stop()
        raise
    return Outcome(
        system,
        state,
        collector,
        sends,
        rows,
        other_rows,
        news,
        (pids_before.get("harvest", 0), pids_after.get("harvest", 0)),
    )


@pytest.fixture(scope="module", autouse=True)
def _stop(outcome: Outcome) -> object:
    yield None
    outcome.system.stop()


def call_rows(rows: list[list[str]]) -> list[list[str]]:
    """The report rows that are calls (one of our numbers in them)."""
    return [r for r in rows if any(cell.startswith("718555") for cell in r)]


def test_the_collector_sent_every_batch_and_the_harvest_acknowledged_them(
    outcome: Outcome,
) -> None:
    plain = outcome.sends["plain"]
    assert plain.returncode == 0, plain.stderr
    assert "3 batch(es) of 27 record(s) built; 3 acknowledged" in plain.stdout


def test_the_report_shows_those_calls_priced_for_that_corp(outcome: Outcome) -> None:
    calls = call_rows(outcome.rows)
    expected = {number(DAYS["plain"], i) for i in range(25)}
    expected |= {number(DAYS["harvest-kill"], i) for i in range(8)}
    expected |= {number(DAYS["collector-kill"], i) for i in range(15)}
    expected |= {number(DAYS["network"], i) for i in range(14)}
    found = [next(c for c in r if c.startswith("718555")) for r in calls]
    assert sorted(found) == sorted(expected)  # each exactly once, through both kills
    for row in calls:
        assert "0.10" in row  # 2 minutes at 0.05


def test_no_other_corp_sees_them(outcome: Outcome) -> None:
    assert call_rows(outcome.other_rows) == []


def test_the_rejected_record_is_quarantined_and_the_customer_told(outcome: Outcome) -> None:
    rows = audit(outcome.state)
    applied = [r for r in rows if r["result"] == "applied"]
    assert sum(int(r["rejected"] or 0) for r in applied) == 1
    assert sum(int(r["skipped"] or 0) for r in applied) == 1  # the internal call
    assert outcome.news, "no news item in the inbox"
    assert {n["entp_id"] for n in outcome.news} == {ENTP}


def test_kill_9_of_the_harvest_while_loading_loads_once(outcome: Outcome) -> None:
    send = outcome.sends["harvest-kill"]
    assert send.returncode == 0, send.stderr
    before, after = outcome.harvest_pids
    assert before != after  # the supervisor started a new harvest
    results = [r["result"] for r in audit(outcome.state)]
    assert "replayed" in results  # the collector sent again what the dead harvest had


def test_kill_9_of_the_collector_while_sending_loads_once(outcome: Outcome) -> None:
    first, second = outcome.sends["collector-kill-1"], outcome.sends["collector-kill-2"]
    assert first.returncode == -9
    assert second.returncode == 0, second.stderr
    assert "2 acknowledged" in second.stdout


def test_the_audit_trail_lists_every_batch(outcome: Outcome) -> None:
    done = cli("admin", "--state", str(outcome.state), "collector", "audit", "--last", "50")
    assert done.returncode == 0, done.stderr
    results = [line.split()[3] for line in done.stdout.splitlines()]
    assert results.count("applied") == 8
    assert results.count("replayed") == 2  # one after each kill
    assert "sha256:" in done.stdout


def test_the_network_path_waits_for_its_password(outcome: Outcome) -> None:
    first = outcome.sends["network-no-password"]
    assert first.returncode == 1
    assert "STARWRS_COLLECTOR_PASSWORD" in first.stdout + first.stderr


def test_batches_sent_over_the_network_are_taken_from_the_collectors_user(
    outcome: Outcome,
) -> None:
    send = outcome.sends["network"]
    assert send.returncode == 0, send.stderr
    assert "2 acknowledged" in send.stdout
    rows = [r for r in audit(outcome.state) if r["channel"] == "network"]
    assert [r["result"] for r in rows] == ["applied", "applied"]
    assert {r["peer"] for r in rows} == {f"pbxcollector@{ENTP}"}
    done = cli("collector", "status", "--state", str(outcome.collector.parent / "pbx2"))
    assert done.returncode == 0, done.stderr
    assert "network" in done.stdout
    assert "acknowledged 2" in done.stdout
