"""The Report Scheduler process (``serve_rs``) over real mutual TLS, with a moved clock.

The scheduler runs as ``starwrs serve`` runs it (its listener, its ``rs.db``, its
outbox to the arbitrator); the test speaks to it with the Report Manager's
certificate and receives what it publishes with an arbitrator's.  Time is the
scheduler's injected clock, moved by the test, and each look at the schedules is
:meth:`ReportScheduler.tick` awaited directly (SQLite's worker threads rule out
trio's autojump clock here), so every test is deterministic: DST days in New York,
weekly and monthly periods, catch-up after an outage, ad hoc pairs run once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgpack
import pytest
import trio
from starwrs.grammar import parse, serialize
from starwrs.grammar.catalogue import validate
from starwrs.grammar.catalogue_fulfil import FulfilAddReportDefinition
from starwrs.grammar.seed import seed_text
from starwrs.protocol import Request
from starwrs.proxies.framework import Proxy, serve_proxy
from starwrs.proxies.rs.server import ReportScheduler, serve_rs
from starwrs.proxies.rs.store import FIRST_REQUEST_ID
from starwrs.runtime.config import Address, Deployment, free_port
from starwrs.runtime.pki import Pki, ensure_pki
from starwrs.runtime.pool import ProxyPool

from .recorders import EnvelopeRecorder

NY = ZoneInfo("America/New_York")
UTC = dt.UTC
PATIENCE = 20

#: the seed's ARD (Appendix A), canonical, as the Report Manager stores it
SEED = serialize(validate(parse(seed_text("07_ard.txt")), "RM").to_message())


def recurring(kind: str, timezone: str = "45") -> str:
    """The seed's report with a recurring schedule of *kind* in zone code *timezone*."""
    return (
        SEED.replace("SCHEDULE=A<START=199806020000,END=199807151200>", f"SCHEDULE={kind}")
        .replace("RANGETYPE=1,", "")
        .replace("SCHEDTYPE=A", "SCHEDTYPE=R")
        .replace("TIMEZONE=45", f"TIMEZONE={timezone}")
    )


def at(text: str, zone: ZoneInfo = NY) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


class Clock:
    """The scheduler's clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Arbitrator(EnvelopeRecorder):
    """Records the envelopes the scheduler publishes; can refuse while 'down'."""

    peer: str = "rs"
    reply: Callable[[dict[str, Any]], dict[str, Any]] = lambda e: {"request_id": e["request_id"]}
    published = EnvelopeRecorder.receive

    def requests(self) -> list[FulfilAddReportDefinition]:
        out = []
        for envelope in self.seen:
            ard = validate(parse(envelope["message"]), "DSS")
            assert isinstance(ard, FulfilAddReportDefinition)
            out.append(ard)
        return out

    def periods(self) -> list[tuple[str, str]]:
        return [
            (f"{r.schedule.ranges[0].start:%Y%m%d%H%M}", f"{r.schedule.ranges[0].end:%Y%m%d%H%M}")
            for r in self.requests()
        ]


@dataclass
class Rig:
    deployment: Deployment
    pki: Pki
    clock: Clock
    arbitrator: Arbitrator
    nursery: trio.Nursery
    revision: int = 0

    @asynccontextmanager
    async def scheduler(self) -> AsyncIterator[ReportScheduler]:
        """Run ``serve_rs`` (as its process would) until the block ends."""
        async with trio.open_nursery() as nursery:
            scheduler = await nursery.start(partial(serve_rs, self.deployment, clock=self.clock))
            yield scheduler
            nursery.cancel_scope.cancel()

    async def change(
        self, op: str, definition: str = SEED, *, report: int = 7, **extra: Any
    ) -> Any:
        """Send one schedule change as the Report Manager's outbox does."""
        self.revision += 1
        envelope = {
            "subject": "RS",
            "op": op,
            "report_id": report,
            "revision": extra.pop("revision", self.revision),
            "user_id": "jeanvnet2",
            "entp_id": "00022924",
            "data_cat": extra.pop("data_cat", "P"),
            "definition": definition if op == "put" else "",
        }
        pool = ProxyPool(
            self.deployment.proxies, self.pki.internal_client_context("rm"), self.deployment.limits
        )
        try:
            answer = await pool.request("RS", Request("RS", msgpack.packb(envelope)))
        finally:
            await pool.aclose()
        assert answer.status == 0, answer
        return msgpack.unpackb(answer.payload)


async def drained(scheduler: ReportScheduler) -> None:
    """Wait until the scheduler's outbox has delivered everything it holds."""
    outbox = scheduler.store.outbox
    with trio.fail_after(PATIENCE):
        while (await outbox.stats()).pending:
            await outbox.settled()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    pki = ensure_pki(tmp_path)
    deployment = Deployment(
        state_dir=tmp_path,
        web=Address("127.0.0.1", free_port()),
        dispatchers=(),
        proxies={
            "RS": Address("127.0.0.1", free_port()),
            "ARB": Address("127.0.0.1", free_port()),
        },
    )
    deployment.save()
    arbitrator = Arbitrator()
    proxy = Proxy("ARB", name="arbitrator")
    proxy.takes_envelopes(arbitrator.published)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            serve_proxy,
            proxy,
            deployment.proxies["ARB"],
            pki.internal_server_context("arbitrator"),
            deployment.limits,
        )
        yield Rig(deployment, pki, Clock(at("2026-03-09T03:00")), arbitrator, nursery)
        nursery.cancel_scope.cancel()


async def test_a_daily_report_in_new_york_covers_23_and_25_hours_on_the_change_days(
    rig: Rig,
) -> None:
    async with rig.scheduler() as scheduler:
        assert (await rig.change("put", recurring("D")))["applied"] is True
        await scheduler.tick()
        await rig.arbitrator.until(1)
        # the day clocks went forward: 23 hours, labelled with the zone at its start
        (spring,) = rig.arbitrator.requests()
        assert rig.arbitrator.periods() == [("202603080500", "202603090359")]
        assert (spring.timezone.label, spring.timezone.offset) == ("EST", -5)
        envelope = rig.arbitrator.seen[0]
        assert envelope["subject"] == "Arbitrator"
        assert envelope["corp_id"] == "90000003"  # the first BILLING corp
        assert envelope["priority"] == 3
        assert envelope["request_id"] == spring.request_id == FIRST_REQUEST_ID
        assert envelope["deliver"] == {
            "user_id": "jeanvnet2",
            "entp_id": "00022924",
            "user_report_id": 7,
            "std_report_id": 90,
        }
        assert spring.user_report_id == 7
        assert spring.columns == (54, 55, 67, 62, 36, 61, 58, 63, 64, 66, 65)
        assert spring.filters is not None
        assert spring.filters.billing is not None
        # the next day has 24 hours, in EDT
        rig.clock.now = at("2026-03-10T00:00:30")
        await scheduler.tick()
        await rig.arbitrator.until(2)
        assert rig.arbitrator.periods()[1] == ("202603090400", "202603100359")
        assert rig.arbitrator.requests()[1].timezone.offset == -4
        # looking again in the same day runs nothing
        await scheduler.tick()
        await drained(scheduler)
        assert len(rig.arbitrator.seen) == 2
        # the day clocks go back: 25 hours (04:00Z to 05:00Z the next day)
        assert (await rig.change("remove"))["applied"] is True
        rig.clock.now = at("2026-11-02T09:00")
        assert (await rig.change("put", recurring("D")))["applied"] is True
        await scheduler.tick()
        await rig.arbitrator.until(3)
        assert rig.arbitrator.periods()[2] == ("202611010400", "202611020459")
        assert rig.arbitrator.requests()[2].timezone.label == "EDT"
        ids = [e["request_id"] for e in rig.arbitrator.seen]
        assert len(set(ids)) == 3


async def test_weekly_monthly_and_hourly(rig: Rig) -> None:
    rig.clock.now = at("2026-12-02T12:00")  # a Wednesday
    async with rig.scheduler() as scheduler:
        await rig.change("put", recurring("W"), report=1)
        await rig.change("put", recurring("M"), report=2)
        await rig.change("put", recurring("H"), report=3)  # priced: never hourly
        await rig.change("put", recurring("H"), report=4, data_cat="U")
        await scheduler.tick()
        await rig.arbitrator.until(3)
        await drained(scheduler)
        by_report = {e["deliver"]["user_report_id"]: e for e in rig.arbitrator.seen}
        assert sorted(by_report) == [1, 2, 4]

        def period(report: int) -> tuple[dt.datetime, dt.datetime]:
            ard = validate(parse(by_report[report]["message"]), "DSS")
            assert isinstance(ard, FulfilAddReportDefinition)
            pair = ard.schedule.ranges[0]
            return pair.start.replace(tzinfo=UTC), pair.end.replace(tzinfo=UTC)

        start, end = period(1)  # Monday to Sunday, local
        assert start.astimezone(NY).isoformat() == "2026-11-23T00:00:00-05:00"
        assert end.astimezone(NY).isoformat() == "2026-11-29T23:59:00-05:00"
        start, end = period(2)
        assert start.astimezone(NY).isoformat() == "2026-11-01T00:00:00-04:00"
        assert end.astimezone(NY).isoformat() == "2026-11-30T23:59:00-05:00"
        start, end = period(4)
        assert (start.astimezone(NY).hour, end.astimezone(NY).minute) == (11, 59)
        assert [by_report[r]["priority"] for r in (1, 2, 4)] == [4, 5, 2]


async def test_runs_missed_while_down_run_once_when_it_comes_back(rig: Rig) -> None:
    rig.clock.now = at("2026-06-10T08:00")
    async with rig.scheduler() as scheduler:
        await rig.change("put", recurring("D"))
        await scheduler.tick()
        await rig.arbitrator.until(1)
        await drained(scheduler)
    assert rig.arbitrator.periods() == [("202606090400", "202606100359")]
    # down for three days and a bit: each missed day once, oldest first
    rig.clock.now = at("2026-06-13T15:00")
    async with rig.scheduler() as scheduler:
        await scheduler.tick()
        await rig.arbitrator.until(4)
        await drained(scheduler)
    assert rig.arbitrator.periods()[1:] == [
        ("202606100400", "202606110359"),
        ("202606110400", "202606120359"),
        ("202606120400", "202606130359"),
    ]
    # and started again the same day: nothing twice
    async with rig.scheduler() as scheduler:
        await scheduler.tick()
        await scheduler.tick()
        await drained(scheduler)
    assert len(rig.arbitrator.seen) == 4
    assert len({e["request_id"] for e in rig.arbitrator.seen}) == 4


async def test_ad_hoc_runs_each_pair_once_at_once(rig: Rig) -> None:
    two = SEED.replace(
        "SCHEDULE=A<START=199806020000,END=199807151200>",
        "SCHEDULE=A<START=199806020000,END=199806302359,START=199807010000,END=199807151200>",
    )
    async with rig.scheduler() as scheduler:
        await rig.change("put", two)
        await rig.arbitrator.until(2)  # the change woke the scheduler: no tick needed
        await drained(scheduler)
        # the user's wall clock (EDT, zone code 45) sent in GMT
        assert rig.arbitrator.periods() == [
            ("199806020400", "199807010359"),
            ("199807010400", "199807151600"),
        ]
        assert {e["priority"] for e in rig.arbitrator.seen} == {1}
        assert rig.arbitrator.requests()[0].timezone.label == "EDT"
        # the same change again, a stale one, the report saved again: nothing reruns
        answer = await rig.change("put", two, revision=rig.revision)
        assert answer["applied"] is False
        assert (await rig.change("put", two, revision=1))["applied"] is False
        assert (await rig.change("put", two))["applied"] is True
        await scheduler.tick()
        await drained(scheduler)
        assert len(rig.arbitrator.seen) == 2
        # removed: nothing runs; a copy under another id runs again
        await rig.change("remove")
        await rig.change("put", two, report=8)
        await rig.arbitrator.until(4)
        assert {e["deliver"]["user_report_id"] for e in rig.arbitrator.seen[2:]} == {8}


async def test_a_run_waits_in_the_outbox_while_the_arbitrator_is_down(rig: Rig) -> None:
    rig.arbitrator.down = True
    async with rig.scheduler() as scheduler:
        await rig.change("put")
        await scheduler.tick()
        with trio.fail_after(PATIENCE):
            while not (await scheduler.store.outbox.stats()).pending:
                await scheduler.store.outbox.settled()
        assert rig.arbitrator.seen == []
    rig.arbitrator.down = False
    rig.clock.now += 60  # a restart takes time: an attempt cut short has lost its lease
    async with rig.scheduler() as scheduler:  # restarted: the queued request goes out
        await rig.arbitrator.until(1)
        await drained(scheduler)
        await scheduler.tick()
    assert len(rig.arbitrator.seen) == 1


async def test_bad_changes_are_refused_with_their_code(rig: Rig) -> None:
    pool = ProxyPool(
        rig.deployment.proxies, rig.pki.internal_client_context("rm"), rig.deployment.limits
    )
    async with rig.scheduler():
        try:
            for envelope, code in (
                ({"subject": "X"}, 6104),
                ({"subject": "RS", "op": "move"}, 6103),
                ({"subject": "RS", "op": "put", "report_id": 1, "revision": 1}, 6114),
                (
                    {"subject": "RS", "op": "put", "report_id": 1, "revision": 1,
                     "user_id": "u", "entp_id": "00022924", "definition": "ARD<>"},
                    6839,  # the stored ARD must be the Report Manager's: USERID missing
                ),
            ):  # fmt: skip
                answer = await pool.request("RS", Request("RS", msgpack.packb(envelope)))
                assert answer.status == code, (envelope, answer)
            # only the Report Manager may send changes
            other = ProxyPool(
                rig.deployment.proxies,
                rig.pki.internal_client_context("dispatcher"),
                rig.deployment.limits,
            )
            answer = await other.request("RS", Request("RS", msgpack.packb({"subject": "RS"})))
            assert answer.status == 7003
            await other.aclose()
        finally:
            await pool.aclose()
