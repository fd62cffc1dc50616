"""A message that keeps failing is parked and reaches the user as the report's error.

Issue 12: a request the scheduler's (or the arbitrator's) outbox parked, an NRL the
DSS's parked, and a delivery the inbox keeps refusing each end as the user report's
``FAILED`` status with the reason (GURD) and an inbox item with ``ERRFLAG=1`` -- the
path of a DSS failure.  The Report Manager and the inbox are the real servers of
tests/proxies/test_rm_delivery.py's rig, over real mutual TLS; the parking outbox is
a real :class:`~starwrs.storage.outbox.Outbox` whose receiver refuses for good.
"""

from __future__ import annotations

import sqlite3
from functools import partial
from pathlib import Path
from typing import Any

import msgpack
import trio
from starwrs.grammar import parse
from starwrs.proxies.delivery import (
    FAILURE_KEY,
    RM,
    frame_sender,
    parked_code,
    report_parked,
)
from starwrs.proxies.rm.delivery import RunDelivery
from starwrs.runtime.transfer import fetch
from starwrs.storage.outbox import (
    OUTBOX_MIGRATION,
    Outbox,
    OutboxMessage,
    Outcome,
    Refused,
)
from starwrs.storage.sqlite import open_store

from .test_rm_delivery import JEAN, RUN_ARD, Rig, add_report, envelope, rig, status_of

__all__ = ["rig"]  # the fixture, shared with test_rm_delivery

PATIENCE = 20
OWNER = {"user_id": "jeanvnet2", "entp_id": "00022924", "std_report_id": 90}


def published(request_id: int, report_id: int) -> bytes:
    """The scheduler's envelope of one run (what it puts into its outbox for ``ARB``)."""
    return msgpack.packb(
        {
            "subject": "Arbitrator",
            "request_id": request_id,
            "corp_id": "90000003",
            "priority": 1,
            "message": RUN_ARD.format(report=report_id, rid=request_id),
            "deliver": {**OWNER, "user_report_id": report_id},
        }
    )


async def error_item(rig: Rig) -> str:
    """The text of the file of the user's one report item (an ``ERRFLAG=1`` one)."""
    with trio.fail_after(PATIENCE):
        while not (items := await rig.items()):
            await rig.reports.outbox.settled()
    (item,) = items
    inbox_db = rig.deployment.state_dir / "inbox" / "inbox.db"
    db = sqlite3.connect(f"file:{inbox_db}?mode=ro", uri=True)
    try:
        (flag,) = db.execute("SELECT err_flag FROM items WHERE inbox_id = ?", (item[0],)).fetchone()
    finally:
        db.close()
    assert flag == 1  # ERRFLAG=1
    channel = await rig.pool("dispatcher").connect("INBX")
    async with channel:
        out = rig.deployment.state_dir / f"item{item[0]}.txt"
        await fetch(channel, f"F<INBOXID={item[0]}>", out, target="INBX", key=JEAN)
    return out.read_text(encoding="utf-8")


async def test_a_request_the_scheduler_parked_reaches_the_user_as_an_error(
    rig: Rig, tmp_path: Path
) -> None:
    report = await add_report(rig)
    rid = 1000041
    to_rm = frame_sender(rig.pool("rs"), done={6050})
    refusals: list[str] = []

    async def send(message: OutboxMessage) -> Outcome:
        if message.destination == RM:
            return await to_rm(message)  # the failure report, over the rs certificate
        refusals.append(message.key)
        return Refused(6706, "the arbitrator refuses the request for good")

    async with open_store(tmp_path / "rs-outbox.db", [OUTBOX_MIGRATION]) as store:
        outbox = Outbox(store, base_delay=0.001, max_delay=0.01)
        reported = trio.Event()

        async def parked(message: OutboxMessage, reason: str) -> None:
            await report_parked(outbox, message, reason, "the scheduler could not publish it")
            reported.set()

        await outbox.put("Arbitrator", str(rid), "ARB", published(rid, report))
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(outbox.run, send, on_failed=parked))
            with trio.fail_after(PATIENCE):
                await reported.wait()
                while (await outbox.stats()).pending:
                    await outbox.settled()
            nursery.cancel_scope.cancel()
        (kept,) = await outbox.failed()  # parked, kept, the failure report delivered
        assert (kept.key, kept.last_error) == (str(rid), "6706 the arbitrator refuses the "
                                               "request for good")  # fmt: skip
        assert refusals == [str(rid)]
    await rig.delivered()
    state, reason = await status_of(rig, report)
    assert state == "FAILED"
    assert "the scheduler could not publish it" in reason
    assert "6706" in reason
    text = await error_item(rig)
    assert "could not be produced" in text
    assert "refuses the request for good" in text
    assert "6706" in text
    # reported once: the same failure report again is a retransmission
    payload = published(rid, report)
    message = OutboxMessage(1, "Arbitrator", str(rid), "ARB", payload, 0.0, 3)
    async with open_store(tmp_path / "again.db", [OUTBOX_MIGRATION]) as store:
        again = Outbox(store)
        assert await report_parked(again, message, "6706 no", "again")
        (queued,) = await store.fetchall("SELECT payload FROM outbox")
    status, _ = await rig.from_dss(msgpack.unpackb(queued[0]), cert="arbitrator")
    assert status == 6050
    assert len(await rig.items()) == 1


async def test_only_failure_nrls_come_from_the_scheduler_and_the_arbitrator(rig: Rig) -> None:
    report = await add_report(rig)
    arda = envelope("ARDA", 1000042, report, "ARDA<ERROR=0,USERRPTID=1,REQUESTID=1000042>")
    for cert in ("rs", "arbitrator"):
        assert (await rig.from_dss(arda, cert=cert))[0] == 7003
    fine = envelope("ARDA", 1000042, report, f"ARDA<ERROR=0,USERRPTID={report},"
                    "REQUESTID=1000042>")  # fmt: skip
    assert (await rig.from_dss(fine))[0] == 0  # the DSS's own


async def test_a_delivery_the_inbox_keeps_refusing_gives_an_error_item(rig: Rig) -> None:
    report = await add_report(rig)
    rid = 1000043
    runs = RunDelivery(rig.reports, rig.pool("rm"), rig.deployment.state_dir / "staging")
    job = {"request_id": rid, "report_id": report, "name": "r.mtd", "content": b"", "put": "",
           "add": ""}  # fmt: skip
    message = OutboxMessage(7, "INBX:jeanvnet2", str(rid), "INBX", msgpack.packb(job), 0.0, 9)
    await runs.on_failed(message, "5101 the metadata file does not parse")
    await rig.delivered()
    state, reason = await status_of(rig, report)
    assert state == "FAILED"
    assert "5101" in reason
    text = await error_item(rig)
    assert "5101" in text
    assert "the metadata file does not parse" in text
    # a failure item that parks is not followed by another one
    failed = OutboxMessage(8, "INBX:jeanvnet2", f"{FAILURE_KEY}{rid}", "INBX",
                           msgpack.packb(job), 0.0, 9)  # fmt: skip
    await runs.on_failed(failed, "5101 again")
    assert (await rig.reports.outbox.stats()).pending == {}


async def test_what_is_reported_and_with_which_code(tmp_path: Path) -> None:
    assert parked_code("6115 IDs are not correct") == 6115
    assert parked_code("gave up after 2000 attempts: status 7006") == 7006
    assert parked_code("12 nonsense") == 7006  # not a code of the spec
    dss_nrl: dict[str, Any] = {
        "subject": "RM",
        "kind": "NRL",
        "request_id": 1000044,
        "message": "NRL<...>",
        "report": {**OWNER, "user_report_id": 5},
        "ard": "ARD<...>",
    }
    async with open_store(tmp_path / "o.db", [OUTBOX_MIGRATION]) as store:
        outbox = Outbox(store)

        def parked(key: str, payload: bytes) -> OutboxMessage:
            return OutboxMessage(1, "RM", key, RM, payload, 0.0, 5)

        # a failure report that parked, and a message naming no report: not reported
        assert not await report_parked(outbox, parked("FAIL:1", msgpack.packb(dss_nrl)), "x", "y")
        assert not await report_parked(outbox, parked("NRL:1", b"\xc1"), "x", "y")
        # the DSS's NRL that RM refused: a failure NRL for the same report
        reason = "6707 the inbox holds 3 bytes"
        assert await report_parked(outbox, parked("NRL:1000044", msgpack.packb(dss_nrl)),
                                   reason, "RM refused it")  # fmt: skip
        (row,) = await store.fetchall("SELECT subject, key, destination, payload FROM outbox")
    assert tuple(row)[:3] == ("RM", "FAIL:1000044", "RM")
    sent = msgpack.unpackb(row[3])
    assert sent["report"] == dss_nrl["report"]
    assert sent["error"] == {"code": 6707, "reason": f"RM refused it: {reason}"}
    nrl = parse(sent["message"])
    assert (nrl.get("ERR"), nrl.get("REQUESTID"), nrl.get("FSIZE")) == ("1", "1000044", "0")
