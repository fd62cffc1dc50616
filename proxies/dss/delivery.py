"""The DSS's side of report delivery: the file into the inbox, ARDA and NRL to RM.

Theory of operation
-------------------
Seed Figure 11(b)'s FTP, NRL and ARDA processes, for the requests that the Report
Scheduler published with a ``deliver`` member in their envelope (the report's owner:
user, enterprise, user report and standard report ids).  Requests without one --
``starwrs report``'s -- keep their file in the DSS as before.

* **accept** -- :meth:`DssDelivery.accepted` records the owner in the partition's
  small SQLite store ``STATE/dss/ods<k>/outbox.db`` (table ``deliveries``) before
  the DSS answers the arbitrator; the same REQUESTID again changes nothing.
* **ARDA** -- at parse time (:meth:`DssDelivery.parsed`) ``ARDA<ERROR=0|code,
  USERRPTID,REQUESTID>`` goes into the store's outbox (subject ``RM``, key
  ``ARDA:<id>``), before the parse's status is recorded.
* **FTP** -- once a request's latest status is ``format_success`` the file is put
  into the inbox (``in_ftp``): one bulk put whose resource is the item's Appendix C
  ``A`` with ``PART=D`` (docs/runtime.md "The inbox"); answer 0 or 5005 (already
  there) is ``ftp_success``; the inbox down, slow or a checksum mismatch is tried
  again after a back-off (1 s doubling to 60 s, the status stays ``in_ftp``); any
  other refusal is ``ftp_failed`` with the inbox's code.
* **NRL** -- after ``ftp_success``, or after any failure (``parser_failed``,
  ``IAIO_failed``, ``format_failed``, ``ftp_failed``), ``in_NRL`` is recorded, the
  NRL goes into the outbox in the transaction that marks the delivery ``nrl``, and
  then ``NRL_sent`` is recorded.  A finished report's NRL is the one ``RQS`` shows
  (LOC, FSIZE, PRESORTED, ``TOTAL=``); a failure's has ``ERR=1``, ``FSIZE=0`` and
  the name its informational file gets, while the envelope carries the code and
  reason for the Report Manager, which puts that file into the inbox.
* **to RM** -- the outbox delivers subject ``RM`` in order (an ARDA before its NRL)
  as envelopes ``{"subject": "RM", "kind", "request_id", "message", "report",
  "ard", "error"}``; the Report Manager answers 0 after its commit, or
  ``NRLA<ERROR=6050>`` for a REQUESTID it has completed: the resending stops.

Every step is idempotent and resumable: a DSS killed at any point finds each
delivery's stage in ``deliveries`` and its status in ``req_status`` when it starts
again and goes on from there; a put repeated is 5005 at the inbox, an NRL repeated
is 6050 at RM.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import msgpack
import trio
from starwrs.grammar import Member, Message, MessageError, parse, serialize
from starwrs.grammar.errors import ErrorCode, StarwrsError, describe
from starwrs.protocol import ProtocolError
from starwrs.proxies.delivery import (
    MAX_ATTEMPTS,
    MAX_DELAY,
    TRANSIENT,
    failure_nrl,
    frame_sender,
    lease_for,
    release_leases,
    report_parked,
    watch_outbox,
)
from starwrs.proxies.dss import requests as queue
from starwrs.runtime.channel import PeerGone, ReadTimeout
from starwrs.runtime.pool import ProxyPool
from starwrs.runtime.transfer import upload
from starwrs.storage.outbox import OUTBOX_MIGRATION, Outbox, OutboxMessage
from starwrs.storage.sqlite import Row, Store, open_store

if TYPE_CHECKING:
    from starwrs.proxies.dss.server import DssPartition

__all__ = ["MIGRATIONS", "DssDelivery", "open_delivery"]

log = logging.getLogger("starwrs.dss")

MIGRATIONS: list[str] = [
    """
    CREATE TABLE deliveries (
        request_id     INTEGER PRIMARY KEY,
        user_id        TEXT NOT NULL,
        entp_id        TEXT NOT NULL,
        user_report_id INTEGER NOT NULL,
        std_report_id  INTEGER NOT NULL,
        stage          TEXT NOT NULL DEFAULT 'queued' CHECK (stage IN ('queued', 'nrl', 'done')),
        attempts       INTEGER NOT NULL DEFAULT 0,
        next_attempt   REAL NOT NULL DEFAULT 0,
        last_error     TEXT,
        created        REAL NOT NULL
    );
    CREATE INDEX deliveries_open ON deliveries (stage, next_attempt);
    """,
    OUTBOX_MIGRATION,
]

#: the Report Manager's target (and the outbox subject of ARDA and NRL)
RM = "RM"
INBOX = "INBX"
#: statuses a request is still being worked on in (no delivery step yet)
_WORKING = frozenset({"new_message", "parser_success", "in_IAIO", "IAIO_complete", "in_formatter"})
#: the longest wait between two tries of a put, seconds
MAX_BACKOFF = 60.0

NrlOf = Callable[[dict[str, Any]], Message]


def _owner(row: Row) -> dict[str, Any]:
    return {
        "user_id": row["user_id"],
        "entp_id": row["entp_id"],
        "user_report_id": row["user_report_id"],
        "std_report_id": row["std_report_id"],
    }


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


class DssDelivery:
    """The delivery stage of one partition's DSS.

    Args:
        partition: the DSS partition (its DuckDB queue and report files).
        store: ``outbox.db`` opened with :data:`MIGRATIONS`.
        pool: the DSS's pool (``RM`` and ``INBX`` in its table).
        nrl_of: the NRL of a finished request row (the DSS's own, as ``RQS`` shows it).
    """

    def __init__(
        self, partition: DssPartition, store: Store, pool: ProxyPool, nrl_of: NrlOf
    ) -> None:
        self.partition = partition
        self.store = store
        self.outbox = Outbox(
            store, lease=lease_for(pool.limits), max_delay=MAX_DELAY, max_attempts=MAX_ATTEMPTS
        )
        self.pool = pool
        self.nrl_of = nrl_of
        self._wake = trio.Event()
        self._random = random.Random()  # noqa: S311 - jitter, not secrets

    def wake(self) -> None:
        """Look at the deliveries now (a request reached a new status)."""
        self._wake.set()

    # -- accept and parse --------------------------------------------------------------

    async def accepted(self, request_id: int, deliver: object) -> None:
        """Remember the owner of a request to deliver (idempotent); ignore anything else."""
        if not isinstance(deliver, dict):
            return
        user, entp = deliver.get("user_id"), deliver.get("entp_id")
        report, template = deliver.get("user_report_id"), deliver.get("std_report_id")
        if not (
            isinstance(user, str)
            and 0 < len(user) <= 20
            and isinstance(entp, str)
            and len(entp) == 8
            and isinstance(report, int)
            and isinstance(template, int)
        ):
            log.warning("dss request=%d: a deliver member without its owner", request_id)
            return
        await self.store.execute(
            "INSERT INTO deliveries (request_id, user_id, entp_id, user_report_id,"
            " std_report_id, created) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (request_id) DO NOTHING",
            (request_id, user, entp, report, template, time.time()),
        )

    async def _delivery(self, request_id: int) -> Row | None:
        return await self.store.fetchone(
            "SELECT * FROM deliveries WHERE request_id = ?", (request_id,)
        )

    async def parsed(self, request_id: int, error: int) -> None:
        """Queue the ARDA of a request just parsed (``error`` 0 or the parser's code)."""
        row = await self._delivery(request_id)
        if row is None:
            return
        members = [Member("ERROR", str(int(error)))]
        if not error:
            members.append(Member("USERRPTID", str(row["user_report_id"])))
        members.append(Member("REQUESTID", str(request_id)))
        await self._to_rm("ARDA", request_id, Message("ARDA", tuple(members)), _owner(row))

    async def _to_rm(
        self,
        kind: str,
        request_id: int,
        message: Message,
        owner: dict[str, Any],
        *,
        ard: str | None = None,
        error: dict[str, Any] | None = None,
        stage: str | None = None,
    ) -> None:
        envelope: dict[str, Any] = {
            "subject": RM,
            "kind": kind,
            "request_id": request_id,
            "message": serialize(message),
            "report": owner,
        }
        if ard is not None:
            envelope["ard"] = ard
        if error is not None:
            envelope["error"] = error
        payload = msgpack.packb(envelope)
        async with self.store.transaction() as tx:
            await self.outbox.put(RM, f"{kind}:{request_id}", RM, payload, tx=tx)
            if stage is not None:
                await tx.execute(
                    "UPDATE deliveries SET stage = ? WHERE request_id = ?", (stage, request_id)
                )
        self.outbox.wake()  # committed: the outbox may see it now

    # -- the FTP and NRL processes ------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver until cancelled: the outbox to RM and the FTP / NRL steps."""
        send = frame_sender(self.pool, done={int(ErrorCode.RM_NRLA_RETRANSMISSION)})
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(self.outbox.run, send, on_failed=self.on_failed))
            await nursery.start(self.work)
            task_status.started()

    async def work(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Move every delivery on until cancelled."""
        task_status.started()
        while True:
            self._wake = trio.Event()
            now = time.time()
            rows = await self.store.fetchall(
                "SELECT * FROM deliveries WHERE stage != 'done' AND next_attempt <= ?"
                " ORDER BY request_id",
                (now,),
            )
            for row in rows:
                try:
                    await self.advance(row)
                except Exception:  # one delivery must not stop the others
                    log.exception("dss delivery request=%d failed", row["request_id"])
                    await self._later(row, "internal error")
            nxt = await self.store.fetchone(
                "SELECT MIN(next_attempt) FROM deliveries WHERE stage != 'done'"
                " AND next_attempt > ?",
                (now,),
            )
            wait = 3600.0 if nxt is None or nxt[0] is None else max(0.0, nxt[0] - time.time())
            with trio.move_on_after(wait):
                await self._wake.wait()

    async def advance(self, row: Row) -> None:
        """Take one delivery as far as it can go now."""
        rid = int(row["request_id"])
        status = await self.partition.db(queue.latest_status, rid)
        if status is None or status in _WORKING:
            return
        if row["stage"] == "nrl":
            await self._sent(rid, status)
            return
        if status in ("format_success", "in_ftp"):
            if status == "format_success":
                await self.partition.db(queue.record, rid, "in_ftp")
            status = await self._ftp(row)
            if status == "in_ftp":
                return  # tried again later
        if status in ("ftp_success", "in_NRL") or status in queue.FAILED:
            await self._nrl(row)
            await self._sent(rid, None)
        elif status == "NRL_sent":
            await self._sent(rid, status)

    async def _sent(self, rid: int, status: str | None) -> None:
        if status != "NRL_sent":
            await self.partition.db(queue.record, rid, "NRL_sent")
        await self.store.execute(
            "UPDATE deliveries SET stage = 'done' WHERE request_id = ?", (rid,)
        )
        log.info("dss=%d request=%d NRL_sent", self.partition.partition, rid)

    async def _later(self, row: Row, why: str) -> None:
        attempts = int(row["attempts"]) + 1
        delay = min(MAX_BACKOFF, 2.0 ** min(attempts - 1, 10))
        delay *= 0.75 + self._random.random() / 2
        await self.store.execute(
            "UPDATE deliveries SET attempts = ?, next_attempt = ?, last_error = ?"
            " WHERE request_id = ?",
            (attempts, time.time() + delay, why[:500], row["request_id"]),
        )

    async def _ftp(self, row: Row) -> str:
        """Put the report file into the inbox; the status it ends in."""
        rid = int(row["request_id"])
        request = await self.partition.db(queue.request_row, rid)
        assert request is not None
        path = self.partition.report_path(request)
        resource = serialize(self._item(row, request))
        if not path.is_file():
            failure = int(ErrorCode.RM_FILE_OPEN)
            why = f"the report file {path.name} is gone"
            await self.partition.db(
                queue.record, rid, "ftp_failed", error_code=failure, error_desc=why
            )
            return "ftp_failed"
        try:
            channel = await self.pool.connect(INBOX)
            async with channel:
                answer = await upload(channel, resource, path, target=INBOX)
        except (PeerGone, ReadTimeout, ProtocolError, trio.BrokenResourceError) as err:
            await self._later(row, f"inbox put: {err}")
            return "in_ftp"
        except StarwrsError as err:  # 7002 / 7006 from connect: the inbox is not there
            await self._later(row, f"inbox: {int(err.code)} {err.message}")
            return "in_ftp"
        code = _error_of(answer.payload)
        if answer.status in TRANSIENT or answer.status == ErrorCode.CHECKSUM_MISMATCH:
            await self._later(row, f"inbox status {answer.status}")
            return "in_ftp"
        if code in (0, int(ErrorCode.INBOX_DUPLICATE)):
            name = request["unique_fname"]
            await self.partition.db(
                queue.record, rid, "ftp_success", inbox_dir=INBOX, inbox_fname=name
            )
            log.info("dss=%d request=%d ftp_success", self.partition.partition, rid)
            return "ftp_success"
        failure = code or answer.status or int(ErrorCode.RM_GENERAL_FAILURE)
        why = f"the inbox refused the report file: {failure} {describe(failure)}"
        await self.partition.db(
            queue.record, rid, "ftp_failed", error_code=failure, error_desc=why
        )
        log.warning("dss=%d request=%d ftp_failed code=%d", self.partition.partition, rid, failure)
        return "ftp_failed"

    def _item(self, row: Row, request: dict[str, Any]) -> Message:
        """The ``A<…,PART=D>`` resource of a report file's put (docs/runtime.md)."""
        from starwrs.proxies.rm.templates import TEMPLATES

        template = TEMPLATES.get(int(row["std_report_id"]))
        title = template.title if template else f"Report {row['std_report_id']}"
        name = str(request["unique_fname"])
        return Message(
            "A",
            (
                Member("CATEGORY", "R"),
                Member("TYPE", "priced"),
                Member("USERID", row["user_id"]),
                Member("ENTPID", row["entp_id"]),
                Member("RPTID", str(row["user_report_id"])),
                Member("REQUESTID", str(row["request_id"])),
                Member("COMPRESS", "1" if name.endswith("_zip") else "0"),
                Member("RPTCATEGORY", title[:50]),
                Member("LOC", name),
                Member("RQSTDT", _stamp(dt.datetime.now(dt.UTC))),
                Member("FSIZE", str(request["inbox_fsize"])),
                Member("RPTTITLE", title),
                Member("PART", "D"),
            ),
        )

    async def _nrl(self, row: Row) -> None:
        """Queue the request's NRL (a finished report's, or a failure's) and mark it."""
        rid = int(row["request_id"])
        status = await self.partition.db(queue.latest_status, rid)
        if status != "in_NRL":
            await self.partition.db(queue.record, rid, "in_NRL")
        request = await self.partition.db(queue.request_row, rid)
        assert request is not None
        owner = _owner(row)
        ard = str(request.get("msg_desc") or "")
        if request.get("error_code") is None and request.get("unique_fname"):
            nrl = self.nrl_of(request)
            await self._to_rm("NRL", rid, nrl, owner, ard=ard, stage="nrl")
            return
        code = int(request.get("error_code") or ErrorCode.RM_GENERAL_FAILURE)
        reason = str(request.get("error_desc") or describe(code))
        nrl = _failure_nrl(row)
        error = {"code": code, "reason": reason[:500]}
        await self._to_rm("NRL", rid, nrl, owner, ard=ard, error=error, stage="nrl")

    async def on_failed(self, message: OutboxMessage, reason: str) -> None:
        """A message RM keeps refusing is parked (kept; ``starwrs status`` lists it).

        A parked NRL is reported to the Report Manager as the request's failure (a
        failure NRL with RM's own refusal as the reason), so that the user learns of
        it; a parked ARDA is not (its NRL follows it).
        """
        log.error("dss=%d parked %s: %s", self.partition.partition, message.key, reason)
        if message.key.startswith("NRL:"):
            what = "the Report Manager refused the report's notification"
            await report_parked(self.outbox, message, reason, what)


def _error_of(payload: bytes) -> int | None:
    try:
        value = parse(payload.decode("utf-8")).get("ERROR")
    except (UnicodeDecodeError, MessageError):
        return None
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _failure_nrl(row: Row) -> Message:
    """The NRL of a request that produced no report (``ERR=1``, no file of its own)."""
    return failure_nrl(int(row["request_id"]), _owner(row))


@asynccontextmanager
async def open_delivery(
    partition: DssPartition, pool: ProxyPool, nrl_of: NrlOf
) -> AsyncIterator[DssDelivery]:
    """Open the partition's ``outbox.db``; :meth:`DssDelivery.run` does the work."""
    async with open_store(partition.home / "outbox.db", MIGRATIONS) as store:
        await release_leases(store)
        watch_outbox(f"dss{partition.partition}", store)
        yield DssDelivery(partition, store, pool, nrl_of)
