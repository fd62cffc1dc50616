"""``starwrs status`` lists every outbox's parked messages (issue 12).

A deployment directory whose servers are not running, with real outbox files: the
scheduler's ``rs.db`` holding a request its real outbox parked after a refusal, and
a DSS partition's ``outbox.db`` holding more parked messages than are listed.  The
command is run as a user runs it; the services are down, so it exits 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from starwrs.cli.cmd_status import PARKED_SHOWN, parked_messages
from starwrs.proxies.rs.store import open_schedule_store
from starwrs.runtime.config import Address, Deployment, free_port
from starwrs.storage.outbox import OUTBOX_MIGRATION, Outbox, OutboxMessage, Outcome, Refused
from starwrs.storage.sqlite import open_store

PATIENCE = 20


async def _park_one(state: Path) -> None:
    """The scheduler's own outbox parks a request the arbitrator refuses."""

    async def refuse(message: OutboxMessage) -> Outcome:
        return Refused(6706, "ENTPID must have 8 characters")

    async with open_schedule_store(state / "rs.db") as store:
        await store.outbox.put("Arbitrator", "1000007", "ARB", b"envelope")
        async with trio.open_nursery() as nursery:
            await nursery.start(store.outbox.run, refuse)
            with trio.fail_after(PATIENCE):
                while not await store.outbox.failed():
                    await store.outbox.settled()
            nursery.cancel_scope.cancel()


async def _park_many(path: Path, count: int) -> None:
    path.parent.mkdir(parents=True)
    async with open_store(path, [OUTBOX_MIGRATION]) as store:
        outbox = Outbox(store)
        for n in range(count):
            await outbox.put("RM", f"NRL:{n}", "RM", b"nrl")
        await store.execute("UPDATE outbox SET state = 'failed', last_error = 'gave up'")


@pytest.fixture
def state(tmp_path: Path) -> Path:
    Deployment(
        state_dir=tmp_path,
        web=Address("127.0.0.1", free_port()),
        dispatchers=(Address("127.0.0.1", free_port()),),
        proxies={t: Address("127.0.0.1", free_port()) for t in ("RM", "RS", "ARB", "DSS1")},
    ).save()
    trio.run(_park_one, tmp_path)
    trio.run(_park_many, tmp_path / "dss" / "ods1" / "outbox.db", PARKED_SHOWN + 5)
    return tmp_path


def status(state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starwrs.cli", "status", "--state", str(state), *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_json_gives_each_service_its_parked_messages(state: Path) -> None:
    done = status(state, "--json")
    assert done.returncode == 1, done.stderr  # nothing is running
    rows = {row["service"]: row for row in map(json.loads, done.stdout.splitlines())}
    (parked,) = rows["rs"]["parked"]
    assert parked["subject"] == "Arbitrator"
    assert parked["key"] == "1000007"
    assert parked["attempts"] == 1
    assert parked["last_error"] == "6706 ENTPID must have 8 characters"
    assert 0 <= parked["age_s"] < 600
    dss = rows["dss1"]["parked"]
    assert len(dss) == PARKED_SHOWN + 1
    assert dss[-1] == {"more": 5}
    assert [m["key"] for m in dss[:3]] == ["NRL:0", "NRL:1", "NRL:2"]  # oldest first
    assert "parked" not in rows["web"]  # no outbox
    assert rows["rm"].get("parked") is None  # no file yet


def test_the_table_lists_them_below_the_services(state: Path) -> None:
    done = status(state)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    start = lines.index("PARKED MESSAGES (failed for good; kept, never dropped)")
    parked = lines[start + 2 :]
    service, subject, key, _age, attempts = parked[0].split()[:5]
    assert (service, subject, key, attempts) == ("rs", "Arbitrator", "1000007", "1")
    assert parked[0].endswith("6706 ENTPID must have 8 characters")
    assert parked[-1].split() == ["dss1", "...", "and", "5", "more"]
    assert len(parked) == 1 + PARKED_SHOWN + 1


def test_a_state_without_outboxes_has_nothing_parked(tmp_path: Path) -> None:
    (tmp_path / "rs.db").write_bytes(b"")  # not an outbox (yet)
    assert parked_messages(tmp_path) == {}
