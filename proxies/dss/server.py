"""The Decision Support Server of one ODS partition (seed Figures 11(a)-12(b), Appendix I).

Theory of operation
-------------------
One ``dss`` process per partition owns its DuckDB file ``STATE/datamart/ods<k>.duckdb``
(DuckDB allows one read-write process per file) and does everything with it:

1. **TIO** -- the arbitrator delivers each Appendix D ARD as a msgpack envelope
   ``{"subject": "ODS<k>", "request_id", "corp_id", "priority", "message"}``
   (PROTOCOL.md section 7).  :func:`~starwrs.proxies.dss.requests.enqueue` commits
   the ``request`` and ``req_status`` rows, and only then is status 0 answered; the
   same REQUESTID again is acknowledged again and queued once.
2. **IAIO** -- one worker takes pending requests by priority (1 = ad hoc first),
   then arrival, and moves each through the seed's statuses, one ``req_status``
   row per step: ``new_message`` -> ``parser_success`` / ``parser_failed`` ->
   (order entry is asked again which corp ids the user may see, seed step 632) ->
   ``in_IAIO`` -> ``IAIO_complete`` / ``IAIO_failed`` -> ``in_formatter`` ->
   ``format_success`` / ``format_failed``.  The SQL (:mod:`.sql`) runs on a worker
   thread with its own cursor and is interrupted when the process stops; the
   formatter (:mod:`.formatter`) streams its rows into the report file, written
   atomically.  A request whose process died mid-way is pending again at the next
   start and continues from its last recorded status (a request that was in the
   query or the formatter runs them again; a half-written file never exists).
   Order entry being unreachable defers a request (it is retried), never fails it.
3. **Operations** (:mod:`starwrs.grammar.catalogue_ods`): ``RQS`` a request's
   status, history, error and NRL; bulk get ``RPT`` its file; bulk put ``LOAD``
   priced calls as an Arrow IPC stream (the one load operation: the generator
   when the system runs, the harvest, a corp moving in); bulk get ``XPRT`` one
   corp's calls in the same form (or a period of them); ``PURG`` a corp's calls once
   it moved away; bulk put ``RRAT`` (admin: ``starwrs admin rerate``) a period's calls
   priced again, swapped in one transaction if the period still holds the calls it
   was exported with (count and checksum), answered with the delivered reports of the
   corp's enterprise whose period meets it.

The NRL (Appendix B) of a finished request is what ``RQS`` answers in ``NRL=``.
4. **Delivery** (:mod:`.delivery`) -- a request published with a ``deliver`` member
   (the Report Scheduler's) also has its ARDA sent to the Report Manager at parse
   time, its file put into the inbox (``in_ftp`` -> ``ftp_success`` / ``ftp_failed``)
   and its NRL sent (``in_NRL`` -> ``NRL_sent``), through the partition's outbox
   ``STATE/dss/ods<k>/outbox.db`` (PROTOCOL.md section 7).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import msgpack
import pyarrow as pa
import trio
from starwrs.grammar import Member, Message, MessageError, TList, parse, serialize
from starwrs.grammar.catalogue import validate
from starwrs.grammar.catalogue_fulfil import FulfilAddReportDefinition
from starwrs.grammar.catalogue_ods import (
    CHECK_MODULUS,
    ExportCalls,
    LoadCalls,
    PurgeCalls,
    ReportFile,
    RequestStatus,
    RerateCalls,
)
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.grammar.values import text_items
from starwrs.protocol import BulkPut, Request
from starwrs.proxies.bulk import FileSink, FileSource, Source
from starwrs.proxies.dss import requests as queue
from starwrs.proxies.dss.delivery import DssDelivery, open_delivery
from starwrs.proxies.dss.formatter import iter_rows, write_report
from starwrs.proxies.dss.sql import BILLING_LEVELS, QueryError, build_query, hierarchy_entries
from starwrs.proxies.framework import Caller, Proxy, serve_proxy
from starwrs.runtime.config import Deployment
from starwrs.runtime.pki import load_pki
from starwrs.runtime.pool import ProxyPool
from starwrs.storage.datamart.export import (
    export_batches,
    load_ipc_group,
    purge_calls,
    replace_period,
    write_ipc,
)
from starwrs.storage.datamart.load import LoadError, LoadResult
from starwrs.storage.datamart.store import open_partition

__all__ = ["DssPartition", "make_dss_proxy", "partition_target", "serve_dss"]

log = logging.getLogger("starwrs.dss")

_T = TypeVar("_T")

#: seconds before a request deferred for want of order entry is tried again
DEFER = 5.0


def partition_target(partition: int) -> str:
    """The frame target of partition *partition*'s DSS: ``DSS1``, ``DSS2``, ..."""
    return f"DSS{partition}"


#: LOADs at most in one group commit (:meth:`DssPartition.load_file`)
LOAD_GROUP = 16


@dataclass(eq=False)
class _Load:
    """One LOAD waiting for its group load: the staged file, the batch id, the outcome."""

    path: Path
    batch: str | None
    done: trio.Event = field(default_factory=trio.Event)
    outcome: LoadResult | Exception | None = None


class DssPartition:
    """The state of one partition's DSS: its DuckDB file, directories and queue."""

    def __init__(self, state_dir: Path, partition: int, oe: ProxyPool | None) -> None:
        self.partition = partition
        self.subject = f"ODS{partition}"
        self.con = open_partition(state_dir, partition)
        self.home = state_dir / "dss" / f"ods{partition}"
        self.reports = self.home / "reports"
        self.staging = self.home / "staging"
        for folder in (self.reports, self.staging):
            folder.mkdir(parents=True, exist_ok=True)
        for leftover in [*self.reports.glob(".partial-*"), *self.staging.iterdir()]:
            leftover.unlink(missing_ok=True)  # a write the previous process never finished
        self.oe = oe
        #: the delivery stage (serve_dss sets it; None: files stay here)
        self.delivery: DssDelivery | None = None
        self._wake = trio.Event()
        self._deferred: dict[int, float] = {}
        #: LOADs waiting for the group load running now (:meth:`load_file`)
        self._loads: list[_Load] = []
        self._loading = False
        self._load_round = trio.Event()

    # -- the database, on worker threads --------------------------------------------

    async def db(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run ``fn(cursor, *args, **kwargs)`` on a worker thread with a cursor of its own."""

        def call() -> _T:
            cursor = self.con.cursor()
            try:
                return fn(cursor, *args, **kwargs)
            finally:
                cursor.close()

        return await trio.to_thread.run_sync(call)

    def wake(self) -> None:
        self._wake.set()

    # -- TIO: requests delivered by the arbitrator -----------------------------------

    async def accept(self, envelope: dict[str, Any]) -> tuple[int, bytes]:
        """Queue one delivered ARD; answer only after the commit."""
        request_id = envelope.get("request_id")
        priority = envelope.get("priority", 5)
        message = envelope.get("message")
        subject = envelope.get("subject")
        if subject != self.subject:
            raise StarwrsError(ErrorCode.NOT_ENTITLED, f"{subject!r} is not this partition")
        if not (isinstance(request_id, int) and 0 <= request_id <= 2**31 - 1):
            raise StarwrsError(ErrorCode.REQUIRED_PARAMETERS_MISSING, "request_id")
        if not (isinstance(priority, int) and 1 <= priority <= 9):
            raise StarwrsError(ErrorCode.RM_PARAMETER_ERROR, "priority must be 1-9")
        if not isinstance(message, str) or not message:
            raise StarwrsError(ErrorCode.INCORRECT_INPUT, "message")
        if self.delivery is not None:  # before the queue: the worker may take it at once
            await self.delivery.accepted(request_id, envelope.get("deliver"))
        new = await self.db(queue.enqueue, request_id, priority, message)
        if new:
            self.wake()
        log.info("dss=%d request=%d queued=%s", self.partition, request_id, new)
        return 0, msgpack.packb({"request_id": request_id, "queued": new})

    # -- IAIO + formatter ------------------------------------------------------------

    async def work(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Work the queue until cancelled."""
        task_status.started()
        while True:
            now = trio.current_time()
            self._deferred = {r: t for r, t in self._deferred.items() if t > now}
            pending = await self.db(queue.next_pending, frozenset(self._deferred))
            if pending is None:
                self._wake = trio.Event()
                wait = min(self._deferred.values(), default=now + 3600) - now
                with trio.move_on_after(max(wait, 0.05)):
                    await self._wake.wait()
                continue
            try:
                await self.process(pending)
            except Exception as err:  # one bad request must not stop the partition
                log.exception("dss=%d request=%d failed", self.partition, pending.request_id)
                await self._failed(
                    pending.request_id,
                    "IAIO_failed",
                    ErrorCode.RM_GENERAL_FAILURE,
                    f"{err.__class__.__name__}: {err}",
                )
            if self.delivery is not None:
                self.delivery.wake()

    async def process(self, pending: queue.Pending) -> None:
        """Take one request from its last recorded status to a terminal one."""
        rid = pending.request_id
        try:
            ard = validate(parse(pending.message), "DSS")
        except MessageError as err:
            if self.delivery is not None:
                await self.delivery.parsed(rid, int(err.code))
            await self.db(
                queue.record, rid, "parser_failed", error_code=int(err.code), error_desc=err.message
            )
            log.info("dss=%d request=%d parser_failed code=%d", self.partition, rid, err.code)
            return
        assert isinstance(ard, FulfilAddReportDefinition)
        if pending.status == "new_message":
            if self.delivery is not None:
                await self.delivery.parsed(rid, 0)
            await self.db(queue.record, rid, "parser_success", **_request_columns(ard))
        try:
            corp_ids = await self.entitled_corps(ard)
        except _Deferred as why:
            log.warning("dss=%d request=%d deferred: %s", self.partition, rid, why)
            self._deferred[rid] = trio.current_time() + DEFER
            return
        except StarwrsError as err:
            await self._failed(rid, "IAIO_failed", err.code, err.message)
            return
        try:
            query = build_query(ard, corp_ids)
        except QueryError as err:
            await self._failed(rid, "IAIO_failed", err.code, err.message)
            return
        await self.db(queue.record, rid, "in_IAIO")
        # a file a killed predecessor finished but never recorded is not this run's
        for stale in self.reports.glob(f"r{rid}_*"):
            stale.unlink(missing_ok=True)
        cursor = self.con.cursor()
        compress = False  # the Appendix D ARD carries no COMPRESS; the inbox may zip it

        def run() -> Any:
            result = cursor.execute(query.sql, query.params)
            # statuses go through a cursor of their own: another statement on the
            # query's cursor would discard the result it is still streaming
            steps = self.con.cursor()
            try:
                queue.record(steps, rid, "IAIO_complete")
                queue.record(steps, rid, "in_formatter")
            finally:
                steps.close()
            return write_report(
                iter_rows(result), query.plan, self.reports, compress=compress, stem=f"r{rid}"
            )

        try:
            report = await trio.to_thread.run_sync(run, abandon_on_cancel=True)
        except trio.Cancelled:
            with contextlib.suppress(Exception):
                cursor.interrupt()
            raise
        except duckdb.Error as err:
            status = (
                "format_failed"
                if queue.latest_status(cursor, rid) == "in_formatter"
                else "IAIO_failed"
            )
            await self._failed(rid, status, ErrorCode.RM_DB_COMMAND, str(err)[:500])
            return
        except OSError as err:
            await self._failed(rid, "format_failed", ErrorCode.RM_FILE_OPEN, str(err)[:500])
            return
        finally:
            with contextlib.suppress(Exception):
                cursor.close()
        await self.db(
            queue.record,
            rid,
            "format_success",
            unique_fname=report.name,
            format_dir=str(self.reports),
            inbox_fsize=report.size,
            nrl_totals=_total_text(report.nrl_total),
        )
        log.info(
            "dss=%d request=%d format_success rows=%d bytes=%d",
            self.partition,
            rid,
            report.rows,
            report.size,
        )

    async def _failed(self, rid: int, status: str, code: int, why: str) -> None:
        await self.db(queue.record, rid, status, error_code=int(code), error_desc=why[:500])
        log.info("dss=%d request=%d %s code=%d", self.partition, rid, status, code)

    async def entitled_corps(self, ard: FulfilAddReportDefinition) -> list[str]:
        """The corp ids order entry says the user may see now (seed step 632)."""
        if self.oe is None:
            raise _Deferred("no order entry configured")
        key = f"{ard.user_id}@{ard.entp_id}"
        payload = serialize(Message("GUA", (Member("USERID", ard.user_id),))).encode()
        try:
            answer = await self.oe.request("OE", Request("OE", payload, key=key))
        except StarwrsError as err:
            raise _Deferred(err.message) from None
        try:
            reply = parse(answer.payload.decode("utf-8"))
        except (UnicodeDecodeError, MessageError):
            raise _Deferred("order entry's answer did not parse") from None
        code = reply.get("ERROR")
        if code != "0":
            raise StarwrsError(ErrorCode.NOT_ENTITLED, f"order entry refused the user ({code})")
        return list(text_items(reply.get("CORPIDS")))

    # -- operations ------------------------------------------------------------------

    async def status(self, request_id: int) -> Message:
        """``RQSA`` for one request."""

        def read(cur: duckdb.DuckDBPyConnection) -> tuple[Any, Any]:
            cur.execute("BEGIN TRANSACTION")  # one snapshot: the row and its history agree
            try:
                return queue.request_row(cur, request_id), queue.history(cur, request_id)
            finally:
                cur.execute("COMMIT")

        row, steps = await self.db(read)
        if row is None:
            raise StarwrsError(ErrorCode.IDS_NOT_CORRECT, f"no request {request_id}")
        latest = steps[-1][0] if steps else ""
        members = [
            Member("ERROR", "0"),
            Member("REQUESTID", str(request_id)),
            Member("STATUS", latest),
            Member("ODS", str(self.partition)),
            Member(
                "HISTORY",
                TList(tuple(f"{status}@{when.isoformat()}Z" for status, when in steps)),
            ),
        ]
        if row.get("error_code") is not None:
            members.append(Member("ERRCODE", str(row["error_code"])))
            members.append(Member("ERRDESC", str(row.get("error_desc") or "")))
        if latest == "format_success":
            members.append(Member("FILE", str(row["unique_fname"])))
            members.append(Member("FSIZE", str(row["inbox_fsize"])))
            members.append(Member("NRL", serialize(_nrl(row))))
        return Message("RQSA", tuple(members))

    def report_path(self, row: dict[str, Any]) -> Path:
        return Path(row["format_dir"]) / str(row["unique_fname"])

    async def report_source(self, request_id: int) -> Source:
        row = await self.db(queue.request_row, request_id)
        status = await self.db(queue.latest_status, request_id)
        if row is None:
            raise StarwrsError(ErrorCode.IDS_NOT_CORRECT, f"no request {request_id}")
        if status not in ("format_success", "NRL_sent") or not row.get("unique_fname"):
            raise StarwrsError(ErrorCode.RM_NO_RECORDS, f"request {request_id} has no file yet")
        path = self.report_path(row)
        try:
            return await trio.to_thread.run_sync(FileSource.of, path)
        except OSError:
            raise StarwrsError(ErrorCode.RM_FILE_OPEN, "the report file cannot be opened") from None

    async def export_source(
        self, corp_id: str, since: int | None = None, until: int | None = None
    ) -> Source:
        """One corp's calls as an Arrow IPC stream file (``XPRT``: a corp moving away, or
        a period of them to re-rate)."""
        period = "" if since is None and until is None else f"-{since}-{until}"
        path = self.staging / f"export-{corp_id}{period}.arrows"

        def export(cur: duckdb.DuckDBPyConnection) -> int:
            return write_ipc(path, export_batches(cur, corp_id, since=since, until=until))

        rows = await self.db(export)
        log.info("dss=%d exported corp=%s rows=%d", self.partition, corp_id, rows)
        return await trio.to_thread.run_sync(FileSource.of, path)

    async def purge(self, corp_id: str) -> Message:
        """Delete a corp's calls once every request queued before this call has finished."""
        started = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # req_status's clock
        with trio.fail_after(3600):
            while True:
                waiting = await self.db(queue.pending_since, started)
                if not waiting:
                    break
                self.wake()
                await trio.sleep(0.5)
        rows = await self.db(purge_calls, corp_id)
        log.info("dss=%d purged corp=%s rows=%d", self.partition, corp_id, rows)
        return Message("PRGA", (Member("ERROR", "0"), Member("ROWS", str(rows))))

    async def load_file(self, path: Path, batch: str | None = None) -> Message:
        """Load an Arrow IPC stream of priced calls (``LOAD``); a *batch* id loaded
        before is answered with its rows and not loaded again.

        Group commit: the LOADs that arrive while one is loading wait, and the next
        round loads all of them (up to :data:`LOAD_GROUP`) in one transaction
        (:func:`~starwrs.storage.datamart.export.load_ipc_group`; a bad file fails
        alone); each is answered only after the commit that holds it.
        """
        job = _Load(path, batch)
        self._loads.append(job)
        try:
            while not job.done.is_set():
                if self._loading:  # a round runs: the next one takes this LOAD
                    await self._load_round.wait()
                    continue
                await self._load_group()
        finally:
            if not job.done.is_set() and job in self._loads:
                self._loads.remove(job)  # cancelled while waiting: not loaded
        outcome = job.outcome
        if isinstance(outcome, pa.ArrowInvalid | OSError):
            raise StarwrsError(
                ErrorCode.INCORRECT_INPUT, f"not an Arrow IPC stream: {outcome}"
            ) from None
        if isinstance(outcome, LoadError):
            raise StarwrsError(ErrorCode.RM_PARAMETER_ERROR, str(outcome)[:200]) from None
        if outcome is None:
            raise RuntimeError("the load ended without an outcome")
        if isinstance(outcome, Exception):
            raise outcome
        log.info("dss=%d loaded rows=%d", self.partition, outcome.rows)
        return Message("LODA", (Member("ERROR", "0"), Member("ROWS", str(outcome.rows))))

    async def _load_group(self) -> None:
        """One round: the waiting LOADs (up to :data:`LOAD_GROUP`) in one transaction."""
        self._loading = True
        finished = self._load_round
        try:
            with trio.CancelScope(shield=True):  # the others' answers depend on it
                jobs, self._loads = self._loads[:LOAD_GROUP], self._loads[LOAD_GROUP:]
                files = [(j.path, j.batch) for j in jobs]
                outcomes: list[LoadResult | Exception]
                try:
                    outcomes = await self.db(load_ipc_group, files)
                except Exception as err:  # each waiter gets it
                    outcomes = [err] * len(jobs)
                for j, outcome in zip(jobs, outcomes, strict=True):
                    j.outcome = outcome
                    j.done.set()
        finally:
            self._loading = False
            self._load_round = trio.Event()
            finished.set()

    async def rerate_file(self, path: Path, req: RerateCalls) -> Message:
        """Replace a period of a corp's calls with re-priced ones (``RRAT``); answer the
        rows and the delivered reports of the corp's enterprise that met the period."""
        since, until = req.since, req.until
        if until <= since:
            raise StarwrsError(ErrorCode.RM_PARAMETER_ERROR, "TO must be after FROM")

        def rerate(cur: duckdb.DuckDBPyConnection) -> tuple[int, list[tuple[str, ...]]]:
            rows = replace_period(
                cur, path, req.corp_id, since, until,
                expect=(req.rows, req.checksum), modulus=CHECK_MODULUS,
            )  # fmt: skip
            return rows, _delivered_reports(cur, req.corp_id, since, until)

        try:
            rows, reports = await self.db(rerate)
        except (pa.ArrowInvalid, OSError) as err:
            raise StarwrsError(
                ErrorCode.INCORRECT_INPUT, f"not an Arrow IPC stream: {err}"
            ) from None
        except LoadError as err:
            raise StarwrsError(ErrorCode.RM_PARAMETER_ERROR, str(err)[:200]) from None
        log.info(
            "dss=%d rerated corp=%s from=%d to=%d rows=%d reports=%d",
            self.partition, req.corp_id, since, until, rows, len(reports),
        )  # fmt: skip
        from starwrs.grammar import Group, Seq

        groups = tuple(Group(tuple(Member(None, v) for v in r)) for r in reports)
        return Message(
            "RRTA",
            (
                Member("ERROR", "0"),
                Member("ROWS", str(rows)),
                Member("REPORTS", Group((Member(None, Seq(groups)),))),
            ),
        )


#: the statuses a request has once its file was put into the user's inbox
_DELIVERED = ("ftp_success", "in_NRL", "NRL_sent")


def _delivered_reports(
    cur: duckdb.DuckDBPyConnection, corp_id: str, since: int, until: int
) -> list[tuple[str, ...]]:
    """(USERID, ENTPID, REQUESTID, title, ranges) of the delivered requests of *corp_id*'s
    enterprise whose BILLING names *corp_id* and whose period meets [since, until) (GMT
    minutes); ranges ``a-b;c-d``."""
    from starwrs.proxies.rm.templates import TEMPLATES

    entps = [r[0] for r in cur.execute(
        "SELECT DISTINCT enterprise_id FROM billing_corp WHERE corporate_id = ?", [corp_id]
    ).fetchall()]  # fmt: skip
    if not entps:
        return []
    rows = cur.execute(
        "SELECT r.request_id, r.msg_desc FROM request r"
        " WHERE (r.entpid IS NULL OR r.entpid IN (SELECT unnest(?::VARCHAR[])))"
        " AND EXISTS (SELECT 1 FROM req_status s WHERE s.request_id = r.request_id"
        " AND s.status IN (SELECT unnest(?::VARCHAR[]))) ORDER BY r.request_id",
        [entps, list(_DELIVERED)],
    ).fetchall()
    found: list[tuple[str, ...]] = []
    for request_id, text in rows:
        try:
            ard = validate(parse(str(text)), "DSS")
        except MessageError:
            continue
        if not isinstance(ard, FulfilAddReportDefinition) or ard.entp_id not in entps:
            continue
        if corp_id not in _billing_corps(ard):
            continue  # a report of another corp of the enterprise holds none of its calls
        spans = [(_minutes(r.start), _minutes(r.end)) for r in ard.schedule.ranges]
        if not any(a < until and b >= since for a, b in spans):
            continue
        template = TEMPLATES.get(ard.std_report_id)
        title = template.title if template else f"Report {ard.std_report_id}"
        ranges = ";".join(f"{a}-{b}" for a, b in spans)
        found.append((str(ard.user_id), str(ard.entp_id), str(request_id), title, ranges))
    return found


def _billing_corps(ard: FulfilAddReportDefinition) -> set[str]:
    """The corp ids an ARD's FILTERS.BILLING names (none when it does not parse)."""
    billing = ard.filters.billing if ard.filters is not None else None
    if billing is None:
        return set()
    try:
        return {e[0] for e in hierarchy_entries(billing, "BILLING", len(BILLING_LEVELS)) if e}
    except QueryError:
        return set()


def _minutes(stamp: dt.datetime) -> int:
    epoch = dt.datetime(1970, 1, 1, tzinfo=stamp.tzinfo)
    return int((stamp - epoch).total_seconds()) // 60


class _Deferred(Exception):
    """The request cannot go on now (order entry unreachable); try again later."""


def _request_columns(ard: FulfilAddReportDefinition) -> dict[str, Any]:
    """The ``request`` columns the parsed ARD fills (Appendix I)."""
    sort = "~".join(f"{k.column}{k.order}" for k in ard.sort_by or ())
    return {
        "entpid": ard.entp_id,
        "userid": ard.user_id,
        "stdrptid": ard.std_report_id,
        "userptid": str(ard.user_report_id),
        "compress": "2",
        "threshold": ard.threshold.reccount if ard.threshold else None,
        "totalmode": str(int(ard.total_mode)) if ard.total_mode is not None else None,
        "subtotal": "~".join(str(c) for c in ard.subtotal_columns or ()),
        "sort_columns": sort,
        "rpmgr_columns": "~".join(str(c) for c in ard.columns),
    }


def _total_text(total: tuple[tuple[str, str], ...]) -> str:
    """The NRL's ``TOTAL=<<36,…><58,…>>`` value in canonical text."""
    from starwrs.grammar import Group, Seq

    groups = tuple(Group((Member(None, c), Member(None, v))) for c, v in total)
    return serialize(Message(None, (Member("TOTAL", Group((Member(None, Seq(groups)),))),)))


def _nrl(row: dict[str, Any]) -> Message:
    """The NRL (Appendix B) for a finished request row."""
    from starwrs.proxies.rm.templates import TEMPLATES

    template = TEMPLATES.get(int(row["stdrptid"] or 0))
    title = template.title if template else f"Report {row['stdrptid']}"
    members = [
        Member("TYPE", title[:30]),
        Member("ENTPID", str(row["entpid"])),
        Member("USERID", str(row["userid"])),
        Member("STDRPTID", str(row["stdrptid"])),
        Member("USERRPTID", str(row["userptid"])),
        Member("REQUESTID", str(row["request_id"])),
        Member("COMPRESS", "1" if row.get("compress") == "1" else "0"),
        Member("LOC", str(row["unique_fname"])),
        Member("FSIZE", str(row["inbox_fsize"])),
        Member("PRESORTED", "1"),
    ]
    if row.get("nrl_totals"):
        total = parse(str(row["nrl_totals"])).get("TOTAL")
        if total is not None:
            members.append(Member("TOTAL", total))
    message = Message("NRL", tuple(members))
    validate(message, "RM")  # what we send must be what the Report Manager accepts
    return message


def make_dss_proxy(partition: DssPartition) -> Proxy:
    """The DSS proxy of one partition: envelopes, RQS, RPT, LOAD, XPRT, PURG."""
    proxy = Proxy("DSS", name="dss")

    @proxy.takes_envelopes
    async def delivered(caller: Caller, envelope: dict[str, Any]) -> tuple[int, bytes]:
        if caller.peer not in (None, "arbitrator", "admin"):  # not a customer's to send
            raise StarwrsError(ErrorCode.NOT_ENTITLED, "requests come from the arbitrator")
        return await partition.accept(envelope)

    @proxy.handles("RQS", "RQSA")
    async def request_status(caller: Caller, req: RequestStatus) -> Message:
        del caller
        return await partition.status(req.request_id)

    @proxy.serves_get("RPT", "RPTA")
    async def report_file(caller: Caller, req: ReportFile) -> Source:
        del caller
        return await partition.report_source(req.request_id)

    @proxy.serves_get("XPRT", "XPTA")
    async def export(caller: Caller, req: ExportCalls) -> Source:
        del caller
        return await partition.export_source(req.corp_id, req.since, req.until)

    @proxy.accepts_put("RRAT", "RRTA")
    async def rerate(caller: Caller, req: RerateCalls, put: BulkPut) -> FileSink:
        if caller.peer not in (None, "admin"):
            raise StarwrsError(ErrorCode.NOT_ENTITLED, "RRAT is the operator's")
        staging = partition.staging / f"rerate-{put.sha256[:16]}-{id(put):x}.arrows"
        return FileSink(staging, functools.partial(partition.rerate_file, req=req))

    @proxy.handles("PURG", "PRGA")
    async def purge(caller: Caller, req: PurgeCalls) -> Message:
        if caller.peer not in (None, "arbitrator", "admin"):
            raise StarwrsError(ErrorCode.NOT_ENTITLED, "PURG is the arbitrator's")
        return await partition.purge(req.corp_id)

    @proxy.accepts_put("LOAD", "LODA")
    async def load(caller: Caller, req: LoadCalls, put: BulkPut) -> FileSink:
        del caller
        staging = partition.staging / f"load-{put.sha256[:16]}-{id(put):x}.arrows"
        return FileSink(staging, functools.partial(partition.load_file, batch=req.batch))

    return proxy


async def serve_dss(
    deployment: Deployment,
    *,
    index: int = 0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the DSS of partition ``index + 1`` on ``deployment.proxies["DSS<k>"]``."""
    partition_no = index + 1
    target = partition_target(partition_no)
    pki = load_pki(deployment.state_dir)
    routes = {t: a for t, a in deployment.proxies.items() if t in ("OE", "RM", "INBX")}
    pool = ProxyPool(routes, pki.internal_client_context("dss"), deployment.limits)
    partition = DssPartition(Path(deployment.state_dir), partition_no, pool)
    proxy = make_dss_proxy(partition)
    try:
        async with (
            open_delivery(partition, pool, _nrl) as delivery,
            trio.open_nursery() as nursery,
        ):
            partition.delivery = delivery
            await nursery.start(delivery.run)
            await nursery.start(
                serve_proxy,
                proxy,
                deployment.proxies[target],
                pki.internal_server_context("dss"),
                deployment.limits,
            )
            await nursery.start(partition.work)
            task_status.started()
    finally:
        with trio.CancelScope(shield=True):
            await pool.aclose()
            partition.con.close()
