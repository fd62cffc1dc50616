"""Random kills over a real ``starwrs serve``: every acknowledged request, one inbox item.

Issue 12 item 7's state machine.  One ``starwrs serve --demo`` runs for the module;
each Hypothesis example is a short random sequence of two rules:

* **submit** -- the demo user saves a random ad hoc report (its period, record count,
  total mode and title vary) with ACTIVE=1 over the session's HTTPS, as
  tests/e2e/test_delivery.py's ``quick_save`` does; an answer ``ERROR=0`` makes the
  request *acknowledged*;
* **kill** -- ``kill -9`` of one of ``rs``, ``arbitrator``, the DSS of the report's
  partition, ``rm`` or ``inbox``, while the requests submitted before it are still on
  their way; the supervisor restarts it, and the rule returns at once (the next
  steps run meanwhile, and may kill another) or once it is back (the requests have
  moved on for the next kill).  A service drawn while still down, or killed within
  the last minute (the supervisor would back off), gives way to the next victim.
  A request submitted while ``rm`` is down is answered 7006: not acknowledged.

Each example starts with two requests and a kill, so that every kill has work in
flight; it submits at most :data:`MAX_REQUESTS`, so most of its steps are kills.

At the end of each example every killed service is waited for and the system is
left to settle (polling, bounded by
:data:`SETTLE`, never a fixed sleep): every outbox of the delivery path drains, and
then every acknowledged request has produced exactly one inbox item, no request two,
and no outbox parked anything.  Few steps (three examples of six) keep it well under
two minutes after the system's start; the ``ci`` profile derandomizes it.

Then, on the same system, a request its partition refuses for good (priority 0) is
parked by the arbitrator, listed by ``starwrs status`` and reported to the Report
Manager: the report's status is ``FAILED`` with the reason, and the user has an
``ERRFLAG=1`` item.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
from starwrs.grammar import parse
from starwrs.protocol.events import Frame
from starwrs.protocol.header import Mechanism
from starwrs.storage.datamart.partitions import read_partition_map

from .system import System, start
from .test_delivery import BROAD_ARD, _publish, client, failing_request, items

pytestmark = pytest.mark.slow

#: the longest an example waits for the system to settle, seconds
SETTLE = 150.0
#: the longest a killed service takes to be restarted, seconds
RESTART = 90.0
#: what may be killed ("dss": the partition that holds the report's corp)
VICTIMS = ("rs", "arbitrator", "dss", "rm", "inbox")
#: the outboxes of the delivery path, under the state directory
OUTBOXES = ("rs.db", "rm.db", "arbitrator.db", "inbox/inbox.db")

#: requests of one example: after these, every step is a kill
MAX_REQUESTS = 4
#: seconds after which the supervisor restarts a killed service without back-off
CALM = 60.0

_titles = itertools.count(1)
#: when each service was last killed (time.monotonic), over every example
_last_kill: dict[str, float] = {}


def until(what: str, check: Callable[[], bool], timeout: float) -> None:
    """Look again every 0.2 s until *check()* holds, at most *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def outbox_counts(state: Path) -> Counter[str]:
    """Messages in every outbox of the delivery path by state (read-only)."""
    files = [state / name for name in OUTBOXES]
    files += sorted((state / "dss").glob("ods*/outbox.db"))
    counts: Counter[str] = Counter()
    for path in files:
        if not path.exists():
            continue
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            counts.update(dict(con.execute("SELECT state, count(*) FROM outbox GROUP BY state")))
        finally:
            con.close()
    return counts


def ard(title: str, start_day: int, end_day: int, reccount: int, total_mode: int) -> str:
    """The demo user's broad report over June/July 1998 (New York time), ad hoc."""
    text = BROAD_ARD.format(name=title)
    text = text.replace("SCHEDULE=A<START=199806020000,END=199807151200>",
                        f"SCHEDULE=A<START=199806{start_day:02d}0000,END=199807{end_day:02d}1200>")
    text = text.replace("THRESHOLD=<RECCOUNT=20>", f"THRESHOLD=<RECCOUNT={reccount}>")
    return text.replace("TOTALMODE=3,", f"TOTALMODE={total_mode},")  # fmt: skip


#: one random ad hoc request: (START day in June, END day in July, RECCOUNT, TOTALMODE)
REQUESTS = st.tuples(
    st.integers(1, 20),
    st.integers(1, 15),
    st.sampled_from([5, 20, 100]),
    st.sampled_from([0, 1, 3]),
)


class DeliveryChaos(RuleBasedStateMachine):
    """Submits and kills against the module's system; checks at the end (teardown)."""

    system: System

    def __init__(self) -> None:
        super().__init__()
        self.cookie = self.system.logon("jeanvnet2")
        #: title -> report id of every request answered ERROR=0
        self.acknowledged: dict[str, int] = {}
        #: titles submitted, answered or not
        self.submitted: list[str] = []
        #: service -> (its pid when killed, restart lines printed before the kill)
        self.killed: dict[str, tuple[int, int]] = {}
        self.parked_before = outbox_counts(self.system.state)["failed"]

    def _restarts(self, victim: str) -> int:
        line = f"starwrs: {victim} restarted"
        return sum(1 for out in self.system.output if out.startswith(line))

    def _back(self, victim: str) -> None:
        """Wait until the supervisor has restarted *victim* since its last kill."""
        if victim not in self.killed:
            return
        old, before = self.killed[victim]
        until(
            f"{victim} restarted",
            lambda: self._restarts(victim) > before
            and self.system.pids().get(victim) not in (None, old),
            RESTART,
        )
        del self.killed[victim]

    @initialize(first=REQUESTS, second=REQUESTS, drawn=st.sampled_from(VICTIMS))
    def requests_then_a_kill(
        self, first: tuple[int, int, int, int], second: tuple[int, int, int, int], drawn: str
    ) -> None:
        self.submit(first)
        self.submit(second)
        self.kill(drawn, wait=False)

    @precondition(lambda self: len(self.submitted) < MAX_REQUESTS)
    @rule(request=REQUESTS)
    def submit(self, request: tuple[int, int, int, int]) -> None:
        title = f"Chaos {os.getpid()}-{next(_titles)}"
        self.submitted.append(title)
        text = ard(title, *request)
        try:
            _, frames = self.system.dispatch(
                self.cookie, Frame.build(Mechanism.SYNC, "RM", text.encode())
            )
        except OSError:
            return  # not acknowledged: it may or may not arrive, but never twice
        if not frames:
            return
        answer = parse(frames[0].payload.decode())
        if answer.get("ERROR") == "0":  # RM down (7006): not acknowledged
            self.acknowledged[title] = int(str(answer.get("USERRPTID")))

    def _choose(self, drawn: str) -> str:
        """*drawn*, or the next victim after it that is up and was not killed lately.

        The supervisor doubles a service's restart delay while it keeps dying within
        a minute of its start; taking another victim keeps the kills coming.
        """
        at = VICTIMS.index(drawn)
        order = [self._label(v) for v in VICTIMS[at:] + VICTIMS[:at]]
        now = time.monotonic()
        for victim in order:
            if victim not in self.killed and now - _last_kill.get(victim, -1e9) > CALM:
                return victim
        return next((v for v in order if v not in self.killed), order[0])

    def _label(self, victim: str) -> str:
        if victim != "dss":
            return victim
        return f"dss{read_partition_map(self.system.state).partition_of('90000003')}"

    @rule(drawn=st.sampled_from(VICTIMS), wait=st.booleans())
    def kill(self, drawn: str, wait: bool) -> None:
        """kill -9; the supervisor restarts it, while the next steps run or (*wait*) before."""
        victim = self._choose(drawn)
        self._back(victim)  # killed before and not back yet: it is, first
        pid = self.system.pids()[victim]
        self.killed[victim] = (pid, self._restarts(victim))
        _last_kill[victim] = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        if wait:  # the requests move on meanwhile: the next kill finds them elsewhere
            self._back(victim)

    def teardown(self) -> None:
        for victim in list(self.killed):
            self._back(victim)
        state = self.system.state
        wanted = set(self.acknowledged)

        def settled() -> bool:
            titles = {row[3] for row in items(self.system, self.cookie)}
            return wanted <= titles and outbox_counts(state)["pending"] == 0

        until("every acknowledged request in the inbox, every outbox empty", settled, SETTLE)
        titles = Counter(row[3] for row in items(self.system, self.cookie))
        for title in wanted:
            assert titles[title] == 1, (title, titles[title])
        for title in self.submitted:
            assert titles[title] <= 1, (title, titles[title])  # answered or not: never twice
        assert outbox_counts(state)["failed"] == self.parked_before  # none parked by a kill


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = start(tmp_path_factory.mktemp("chaos") / "s")
    yield running
    running.stop()


def test_random_kills_lose_no_request_and_duplicate_none(system: System) -> None:
    DeliveryChaos.system = system
    run_state_machine_as_test(
        DeliveryChaos,
        settings=settings(settings.default, max_examples=3, stateful_step_count=6),
    )


def test_a_request_its_partition_refuses_is_parked_shown_and_reported(system: System) -> None:
    """The arbitrator parks what its DSS refuses; ``starwrs status`` and the user see it."""
    cookie = system.logon("jeanvnet2")
    title = f"Refused {os.getpid()}"
    text = ard(title, 2, 15, 20, 0).replace("ACTIVE=1", "ACTIVE=0")  # saved, not run
    _, frames = system.dispatch(cookie, Frame.build(Mechanism.SYNC, "RM", text.encode()))
    report = int(str(parse(frames[0].payload.decode()).get("USERRPTID")))
    (envelope,) = failing_request(report)
    envelope.update(request_id=999101, priority=0)  # the DSS refuses a priority of 0
    envelope["message"] = envelope["message"].replace("REQUESTID=999001", "REQUESTID=999101")
    trio.run(_publish, system.state, [envelope])
    until("the failure's item", lambda: title in [r[3] for r in items(system, cookie)], SETTLE)
    done = client(system, "send", f"GURD<REPORTID={report}>")
    assert "<TXT_STATUS,FAILED,STATUS>" in done.stdout, done.stdout
    assert "the arbitrator could not hand the request to DSS" in done.stdout
    shown = subprocess.run(
        [sys.executable, "-m", "starwrs.cli", "status", "--state", str(system.state), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    rows = {row["service"]: row for row in map(json.loads, shown.stdout.splitlines())}
    (parked,) = [m for m in rows["arbitrator"]["parked"] if m.get("key") == "999101"]
    assert parked["subject"].startswith("ODS")
    assert parked["last_error"].startswith("6")  # the DSS's refusal, kept
