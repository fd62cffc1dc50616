"""The Report Manager's delivery side over real mutual TLS, with the real inbox.

``serve_rm`` and ``serve_inbox`` run as ``starwrs serve`` runs them; the test plays
the dispatcher (a customer's requests), a DSS (the report file put into the inbox,
then ARDA and NRL envelopes, with the ``dss`` certificate) and the Report Scheduler
(a listener with the ``rs`` certificate that records the schedule changes RM's
outbox delivers).  Waiting is on RM's outbox, never on a clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio
from starwrs.fixtures.demo import load_demo
from starwrs.grammar import Message, parse, serialize
from starwrs.grammar.catalogue import validate
from starwrs.grammar.catalogue_metadata import ReportMetadata
from starwrs.grammar.seed import seed_text
from starwrs.protocol import Request
from starwrs.proxies.framework import Proxy, serve_proxy
from starwrs.proxies.inbox.server import serve_inbox
from starwrs.proxies.oe.store import open_order_entry
from starwrs.proxies.rm.server import serve_rm
from starwrs.proxies.rm.store import ReportStore
from starwrs.runtime.config import Address, Deployment, free_port
from starwrs.runtime.pki import Pki, ensure_pki
from starwrs.runtime.pool import ProxyPool
from starwrs.runtime.transfer import fetch, upload

from .recorders import EnvelopeRecorder

JEAN = "jeanvnet2@00022924"
PATIENCE = 20
SEED_ARD = seed_text("07_ard.txt")


@dataclass
class Scheduler(EnvelopeRecorder):
    """Records the schedule changes RM's outbox delivers; refuses while 'down'."""

    peer: str = "rm"
    reply: Callable[[dict[str, Any]], dict[str, Any]] = lambda envelope: {"applied": True}
    change = EnvelopeRecorder.receive

    def summary(self) -> list[tuple[str, int, int]]:
        return [(e["op"], e["report_id"], e["revision"]) for e in self.seen]


@dataclass
class Rig:
    deployment: Deployment
    pki: Pki
    reports: ReportStore
    scheduler: Scheduler
    pools: dict[str, ProxyPool] = field(default_factory=dict)

    def pool(self, cert: str) -> ProxyPool:
        if cert not in self.pools:
            self.pools[cert] = ProxyPool(
                self.deployment.proxies,
                self.pki.internal_client_context(cert),
                self.deployment.limits,
            )
        return self.pools[cert]

    async def rm(self, text: str) -> tuple[int, Message]:
        """A customer's request, as the dispatcher relays it."""
        answer = await self.pool("dispatcher").request("RM", Request("RM", text.encode(), key=JEAN))
        return answer.status, parse(answer.payload.decode())

    async def inbox(self, text: str) -> Message:
        answer = await self.pool("dispatcher").request(
            "INBX", Request("INBX", text.encode(), key=JEAN)
        )
        return parse(answer.payload.decode())

    async def from_dss(self, envelope: dict[str, Any], cert: str = "dss") -> tuple[int, bytes]:
        answer = await self.pool(cert).request("RM", Request("RM", msgpack.packb(envelope)))
        return answer.status, answer.payload

    async def put_data(self, report_id: int, request_id: int, data: bytes) -> str:
        """Put a report file into the inbox as the DSS does; its LOC."""
        loc = f"r{request_id}_test.csv"
        resource = (
            f"A<CATEGORY=R,TYPE=priced,USERID=jeanvnet2,ENTPID=00022924,RPTID={report_id},"
            f"REQUESTID={request_id},COMPRESS=0,RPTCATEGORY=City Summary,LOC={loc},"
            f"RQSTDT=2026-03-09 08:00,FSIZE={len(data)},RPTTITLE=City Summary,PART=D>"
        )
        path = self.deployment.state_dir / f"{loc}.upload"
        path.write_bytes(data)
        channel = await self.pool("dss").connect("INBX")
        async with channel:
            answer = await upload(channel, resource, path, target="INBX")
        assert answer.status == 0, answer
        return loc

    async def delivered(self) -> None:
        """Wait until RM's outbox holds nothing more to deliver."""
        with trio.fail_after(PATIENCE):
            while (await self.reports.outbox.stats()).pending:
                await self.reports.outbox.settled()

    async def items(self) -> list[list[str]]:
        answer = await self.inbox("L<ENTPID=00022924,USERID=jeanvnet2,CATEGORY=R>")
        assert answer.get("ERROR") == "0", answer
        rows = answer.get("ITEMS")
        out = []
        for member in getattr(rows, "members", ()):
            value = member.value
            parts = getattr(value, "parts", (value,))
            for part in parts:
                out.append([m.value for m in part.members])
        return out


def envelope(kind: str, request_id: int, report_id: int, message: str, **extra: Any) -> dict:
    return {
        "subject": "RM",
        "kind": kind,
        "request_id": request_id,
        "message": message,
        "report": {
            "user_id": "jeanvnet2",
            "entp_id": "00022924",
            "user_report_id": report_id,
            "std_report_id": 90,
        },
        **extra,
    }


def nrl(request_id: int, report_id: int, loc: str, size: int, extra: str = "") -> str:
    return (
        f"NRL<TYPE=City Summary,ENTPID=00022924,USERID=jeanvnet2,STDRPTID=90,"
        f"USERRPTID={report_id},REQUESTID={request_id},COMPRESS=0,LOC={loc},FSIZE={size},"
        f"PRESORTED=1{extra}>"
    )


RUN_ARD = (
    "ARD<ENTPID=00022924,USERID=jeanvnet2,STDRPTID=90,USERRPTID={report},REQUESTID={rid},"
    "PRODUCT=S,THRESHOLD=<RECCOUNT=20>,COLUMNS=<54~55~67~62~36~61~58~63~64~66~65>,"
    "FILTERS=<BILLING=<90000003>>,SORTBY=<54D>,TIMEZONE=<LABEL=EDT,OFFSET=-4>,"
    "SCHEDULE=A<START=199806020400,END=199807151600>,TOTALMODE=0>"
)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    pki = ensure_pki(tmp_path)
    deployment = Deployment(
        state_dir=tmp_path,
        web=Address("127.0.0.1", free_port()),
        dispatchers=(),
        proxies={
            "RM": Address("127.0.0.1", free_port()),
            "RS": Address("127.0.0.1", free_port()),
            "INBX": Address("127.0.0.1", free_port()),
        },
    )
    deployment.save()
    async with open_order_entry(tmp_path / "oe.db") as store:
        await load_demo(store, tmp_path)
    scheduler = Scheduler()
    proxy = Proxy("RM", name="rs")
    proxy.takes_envelopes(scheduler.change)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            serve_proxy,
            proxy,
            deployment.proxies["RS"],
            pki.internal_server_context("rs"),
            deployment.limits,
        )
        await nursery.start(lambda task_status: serve_inbox(deployment, task_status=task_status))
        reports = await nursery.start(
            lambda task_status: serve_rm(deployment, task_status=task_status)
        )
        rig = Rig(deployment, pki, reports, scheduler)
        try:
            yield rig
        finally:
            for pool in rig.pools.values():
                await pool.aclose()
            nursery.cancel_scope.cancel()


async def add_report(rig: Rig, text: str = SEED_ARD) -> int:
    status, answer = await rig.rm(text)
    assert status == 0, answer
    return int(str(answer.get("USERRPTID")))


async def status_of(rig: Rig, report_id: int) -> tuple[str, str]:
    """The report's status and failure reason, as SURD shows them."""
    status, answer = await rig.rm(f"GURD<REPORTID={report_id}>")
    assert status == 0
    text = serialize(answer)
    state = text.split("<TXT_STATUS,", 1)[1].split(",", 1)[0]
    reason = ""
    if "<TXT_REASON," in text:
        reason = text.split("<TXT_REASON,", 1)[1].split(",STATUSREASON>", 1)[0]
    return state, reason


async def test_every_schedule_change_reaches_the_scheduler_in_order(rig: Rig) -> None:
    report = await add_report(rig)  # the seed's ARD has ACTIVE=1
    assert (await rig.rm(f"URS<USERRPTID={report},ACTIVE=0>"))[0] == 0
    assert (await rig.rm(f"URS<USERRPTID={report},ACTIVE=1>"))[0] == 0
    _, answer = await rig.rm(f"CRD<USERRPTID={report},NAME=Copy>")
    copy = int(str(answer.get("USERRPTID")))
    assert (await rig.rm(f"DRD<USERID=jeanvnet2,USERRPTID={report}>"))[0] == 0
    await add_report(rig, SEED_ARD.replace("ACTIVE=1", "ACTIVE=0"))  # only stored
    await rig.scheduler.until(5)
    await rig.delivered()
    assert rig.scheduler.summary() == [
        ("put", report, 1),
        ("remove", report, 2),
        ("put", report, 3),
        ("put", copy, 1),
        ("remove", report, 4),
    ]
    first = rig.scheduler.seen[0]
    assert first["subject"] == "RS"
    assert (first["user_id"], first["entp_id"], first["data_cat"]) == (
        "jeanvnet2",
        "00022924",
        "P",
    )
    stored = validate(parse(first["definition"]), "RM")
    assert stored.schedule is not None  # type: ignore[attr-defined]
    assert stored.columns == (54, 55, 67, 62, 36, 61, 58, 63, 64, 66, 65)  # type: ignore[attr-defined]


async def test_changes_wait_in_the_outbox_while_the_scheduler_is_down(rig: Rig) -> None:
    rig.scheduler.down = True
    report = await add_report(rig)
    assert (await rig.rm(f"URS<USERRPTID={report},ACTIVE=0>"))[0] == 0
    assert (await rig.reports.outbox.stats()).pending == {"RS": 2}
    rig.scheduler.down = False
    rig.reports.outbox.wake()
    await rig.scheduler.until(2)
    assert rig.scheduler.summary() == [("put", report, 1), ("remove", report, 2)]


async def test_layout_rules(rig: Rig) -> None:
    subtotal = SEED_ARD.replace("TOTALMODE=0", "TOTALMODE=1,SUBTOTCOL=<55>")
    assert (await rig.rm(subtotal))[0] == 0  # State: a dimension, a break column
    fact = SEED_ARD.replace("TOTALMODE=0", "TOTALMODE=3,SUBTOTCOL=<36>")
    status, answer = await rig.rm(fact)
    assert (status, answer.get("ERROR")) == (6103, "6103")
    hourly = (
        SEED_ARD.replace("SCHEDULE=A<START=199806020000,END=199807151200>", "SCHEDULE=H")
        .replace("RANGETYPE=1,", "")
        .replace("SCHEDTYPE=A", "SCHEDTYPE=R")
    )
    assert (await rig.rm(hourly))[0] == 6103  # a priced report is never hourly


async def test_an_nrl_puts_the_metadata_beside_the_data_and_adds_the_item(rig: Rig) -> None:
    report = await add_report(rig)
    rid = 1000001
    data = b"0,54,55,67\r\nD,Denver,CO,3\r\nT,,,3\r\n"
    loc = await rig.put_data(report, rid, data)
    arda = envelope("ARDA", rid, report, f"ARDA<ERROR=0,REQUESTID={rid}>")
    status, _ = await rig.from_dss(arda)
    assert status == 0
    assert (await status_of(rig, report))[0] == "SUBMITTED"
    text = nrl(rid, report, loc, len(data), ",TOTAL=<<36,12.5><58,3.20><67,3>>")
    run = RUN_ARD.format(report=report, rid=rid)
    status, payload = await rig.from_dss(envelope("NRL", rid, report, text, ard=run))
    assert status == 0, payload
    ack = parse(payload.decode())
    assert (ack.acronym, ack.get("ERROR"), ack.get("REQUESTID")) == ("NRLA", "0", str(rid))
    await rig.delivered()
    assert (await status_of(rig, report))[0] == "C"
    (item,) = await rig.items()
    inbox_id = int(item[0])
    assert item[3] == "City Summary Outbound"  # RPTTITLE: the user's title, from RM's A
    # both halves over bulk: the data as the DSS put it, the .mtd as RM wrote it
    channel = await rig.pool("dispatcher").connect("INBX")
    async with channel:
        out = rig.deployment.state_dir / "got.csv"
        await fetch(channel, f"F<INBOXID={inbox_id}>", out, target="INBX", key=JEAN)
    assert out.read_bytes() == data
    channel = await rig.pool("dispatcher").connect("INBX")
    async with channel:
        out = rig.deployment.state_dir / "got.mtd"
        await fetch(channel, f"F<INBOXID={inbox_id},PART=M>", out, target="INBX", key=JEAN)
    metadata = validate(parse(out.read_text(encoding="utf-8")), "INBX")
    assert isinstance(metadata, ReportMetadata)
    assert metadata.criteria.name == "City Summary Outbound"
    assert str(metadata.criteria.total_outbound_minutes) != "None"
    assert metadata.column_display_order == (54, 55, 67, 62, 36, 61, 58, 63, 64, 66, 65)
    assert metadata.presorted is True
    assert [c.column_id for c in metadata.columns] == list(metadata.column_display_order)
    assert metadata.criteria.time_zone == "EDT"
    # the same NRL again (the DSS did not see our answer): 6050, applied once
    status, payload = await rig.from_dss(envelope("NRL", rid, report, text, ard=run))
    assert status == 6050
    assert parse(payload.decode()).get("ERROR") == "6050"
    await rig.delivered()
    assert len(await rig.items()) == 1


async def test_a_dss_failure_reaches_the_user_as_an_item_with_the_reason(rig: Rig) -> None:
    report = await add_report(rig)
    rid = 1000002
    text = nrl(rid, report, f"r{rid}_error.txt", 0, ",ERR=1")
    error = {"code": 6106, "reason": "database command error: the partition is gone"}
    status, _ = await rig.from_dss(envelope("NRL", rid, report, text, error=error))
    assert status == 0
    await rig.delivered()
    state, reason = await status_of(rig, report)
    assert state == "FAILED"
    assert "partition is gone" in reason
    (item,) = await rig.items()
    channel = await rig.pool("dispatcher").connect("INBX")
    async with channel:
        out = rig.deployment.state_dir / "why.txt"
        await fetch(channel, f"F<INBOXID={item[0]}>", out, target="INBX", key=JEAN)
    assert "the partition is gone" in out.read_text(encoding="utf-8")
    assert "6106" in out.read_text(encoding="utf-8")


async def test_an_nrl_whose_file_is_not_in_the_inbox_is_refused(rig: Rig) -> None:
    report = await add_report(rig)
    rid = 1000003

    def notice(size: int, loc: str = "r9_x.csv", owner: int = report) -> dict[str, Any]:
        return envelope("NRL", rid, owner, nrl(rid, owner, loc, size))

    assert (await rig.from_dss(notice(5)))[0] == 6707  # nothing in the inbox
    loc = await rig.put_data(report, rid, b"0,54\r\n")
    assert (await rig.from_dss(notice(999, loc)))[0] == 6707  # the inbox holds another size
    # another user's report, and a caller that is not a DSS
    assert (await rig.from_dss(notice(6, loc, report + 1)))[0] == 6115
    assert (await rig.from_dss(notice(6, loc), cert="rs"))[0] == 7003
