"""The Report Scheduler process ``rs`` (seed: RS server 260, Figure 13(a) step 630).

Theory of operation
-------------------
"The report scheduler service maintains a list of requested reports for a given user,
and forwards actual report requests to the appropriate middle-tier servers at the
appropriate time."  Here:

1. **changes in** -- the Report Manager puts every schedule change (a report saved
   or updated with ACTIVE=1: ``put``; ACTIVE=0 or deleted: ``remove``) into its
   outbox in the transaction that saved the report; its outbox delivers the change
   here as a msgpack envelope (target ``RS``, docs/runtime.md "Scheduling and
   delivery").  :meth:`ReportScheduler.apply` commits it
   (:class:`~starwrs.proxies.rs.store.ScheduleStore`: a duplicate or stale change is
   acknowledged and ignored) and only then answers status 0.
2. **due runs** -- :meth:`ReportScheduler.tick` looks at every scheduled report:
   an ad hoc one runs each of its START/END pairs once, at once; a recurring one
   (hourly -- unpriced data only --, daily, weekly, monthly) runs each period that
   has *ended* since its last run, over exactly that period on the user's wall
   clock (:mod:`.schedule`; the zone is the report's TIMEZONE code from order
   entry, mapped by :func:`~.schedule.zone_for`).  A scheduler that was down while
   runs fell due makes each of them up once when it comes back.
3. **one run, one request** -- each run commits its ``runs`` row, a new REQUESTID
   and the Appendix D ARD in an ``Arbitrator`` envelope (Corp_ID = the first
   BILLING corp, Priority 1 ad hoc ... 5 monthly) in *one* transaction keyed by
   report + period (:meth:`~.store.ScheduleStore.start_run`), so a run is requested
   once whatever is killed when.  The ARD's SCHEDULE is the period in GMT
   (``A<START=…,END=…>``, both ends inclusive minutes as the DSS reads them: a
   recurring period's END is its last minute) and its TIMEZONE the zone's label and
   whole-hour offset at the period's start.
4. **publish** -- the outbox delivers each envelope to the arbitrator (target
   ``ARB``), again after a lease or a back-off while it is down; the envelope's
   ``deliver`` names the report so that the DSS puts the file into the inbox and
   tells the Report Manager (ARDA, NRL).  An envelope the arbitrator keeps refusing
   is parked, and its failure NRL goes to the Report Manager (target ``RM``) through
   the same outbox (:func:`~starwrs.proxies.delivery.report_parked`).

The clock is injectable (epoch seconds) so tests can move time; the loop naps at
most :data:`MAX_NAP` seconds, so a wall clock that jumps is noticed within a minute.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgpack
import trio
from starwrs.grammar import Group, MessageError, Seq, Tagged, TList, Value, parse, serialize
from starwrs.grammar.catalogue_fulfil import (
    FulfilAddReportDefinition,
    FulfilFilters,
    FulfilThreshold,
    FulfilTimeZone,
)
from starwrs.grammar.catalogue_rm import AddReportDefinition
from starwrs.grammar.codecs import DateRange, Schedule
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.grammar.vocab import ScheduleKind
from starwrs.proxies.delivery import (
    RM,
    frame_sender,
    lease_for,
    release_leases,
    report_parked,
    watch_outbox,
)
from starwrs.proxies.framework import Caller, Proxy, serve_proxy
from starwrs.proxies.rs.schedule import Run, adhoc_runs, recurring_runs, zone_for
from starwrs.proxies.rs.store import Change, ScheduleRow, ScheduleStore, open_schedule_store
from starwrs.runtime.config import Deployment
from starwrs.runtime.pki import load_pki
from starwrs.runtime.pool import ProxyPool
from starwrs.storage.outbox import OutboxMessage

__all__ = [
    "MAX_NAP",
    "PRIORITY",
    "ReportScheduler",
    "first_corp",
    "fulfil_request",
    "make_rs_proxy",
    "serve_rs",
]

log = logging.getLogger("starwrs.rs")

UTC = dt.UTC

#: longest sleep between two looks at the schedules, seconds
MAX_NAP = 60.0

#: Priority of each schedule kind: ad hoc ("Save and Run") before every recurring one
PRIORITY: dict[ScheduleKind, int] = {
    ScheduleKind.ADHOC: 1,
    ScheduleKind.HOURLY: 2,
    ScheduleKind.DAILY: 3,
    ScheduleKind.WEEKLY: 4,
    ScheduleKind.MONTHLY: 5,
}

#: how far ahead the next period end of each recurring kind is always found
_HORIZON = {
    ScheduleKind.HOURLY: dt.timedelta(hours=2),
    ScheduleKind.DAILY: dt.timedelta(hours=26),
    ScheduleKind.WEEKLY: dt.timedelta(days=8),
    ScheduleKind.MONTHLY: dt.timedelta(days=32),
}

_MINUTE = dt.timedelta(minutes=1)


def first_corp(value: Value | None) -> str | None:
    """The first corp id of a BILLING value (``INBOUND<<corp,name>…>``, ``<corp,…>``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value and value.upper() != "NA" else None
    if isinstance(value, Tagged):
        return first_corp(value.group)
    if isinstance(value, Group):
        for member in value.members:
            found = first_corp(member.value)
            if found:
                return found
        return None
    parts: tuple[Value, ...] = ()
    if isinstance(value, Seq):
        parts = value.parts
    elif isinstance(value, TList):
        parts = value.items
    for part in parts:
        found = first_corp(part)
        if found:
            return found
    return None


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def fulfil_request(
    ard: AddReportDefinition, report_id: int, request_id: int, run: Run, *, adhoc: bool
) -> FulfilAddReportDefinition:
    """The Appendix D ARD for one run of a user report (Appendix A ARD *ard*).

    The period goes out in GMT; a recurring period ``[start, end)`` is sent as the
    inclusive minutes ``START=start, END=end - 1 min``, an ad hoc pair as the user
    gave it.  The TIMEZONE label is cut to Appendix D's three characters and the
    offset rounded to whole hours (the DSS's range is -12..+13).
    """
    end = run.end if adhoc else run.end - _MINUTE
    threshold = ard.threshold
    return FulfilAddReportDefinition(
        entp_id=ard.entp_id,
        user_id=ard.user_id,
        std_report_id=ard.std_report_id,
        user_report_id=report_id,
        request_id=request_id,
        product=ard.product,
        threshold=FulfilThreshold(
            reccount=threshold.reccount if threshold else None,
            ranking=threshold.ranking if threshold else None,
            duration=threshold.duration if threshold else None,
            ani=threshold.ani if threshold else None,
        ),
        columns=ard.columns or (),
        filters=FulfilFilters(
            ndialed=ard.ndialed,
            billing=ard.billing,
            dur_range=ard.dur_range,
            card_no=ard.card_no,
            idistrange=ard.idistrange,
            odistrange=ard.odistrange,
            iusage=ard.iusage,
            ousage=ard.ousage,
            idac=ard.idac,
            geo=ard.geo,
            iaccess=ard.iaccess,
            oaccess=ard.oaccess,
        ),
        sort_by=ard.sort_by,
        timezone=FulfilTimeZone(
            label=(run.label or "GMT")[:3], offset=max(-12, min(13, round(run.offset)))
        ),
        schedule=Schedule(
            ScheduleKind.ADHOC, (DateRange(_naive_utc(run.start), _naive_utc(end)),)
        ),
        total_mode=ard.total_mode,
        subtotal_columns=ard.subtotal_columns if ard.total_mode.needs_subtotals else None,
    )


def _minutes(moment: dt.datetime) -> int:
    return int(moment.timestamp()) // 60


def _next_period_end(kind: ScheduleKind, zone: ZoneInfo, now: dt.datetime) -> dt.datetime:
    """The first period end after *now* (for the loop's nap)."""
    (last,) = recurring_runs(kind, zone, since=None, now=now)
    ahead = recurring_runs(kind, zone, since=last.end, now=now + _HORIZON[kind], limit=1000)
    return ahead[0].end if ahead else now + dt.timedelta(seconds=MAX_NAP)


class ReportScheduler:
    """The scheduler of one ``rs`` process: its store, its clock and its loop.

    Args:
        store: schedules, runs and the outbox (``rs.db``).
        clock: the time, epoch seconds (tests move it).
        week_start: the first day of a weekly period, 0 = Monday (order entry has
            no per-user week start yet; the seed names none).
    """

    def __init__(
        self,
        store: ScheduleStore,
        *,
        clock: Callable[[], float] = time.time,
        week_start: int = 0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.week_start = week_start
        self._wake = trio.Event()
        self._ticked = trio.Event()
        self._warned: set[int] = set()

    def wake(self) -> None:
        """Look at the schedules now (a change arrived, or the clock was moved)."""
        self._wake.set()

    async def ticked(self) -> None:
        """Wait until the next look at the schedules has finished (tests)."""
        await self._ticked.wait()

    # -- changes from the Report Manager ---------------------------------------------

    async def apply(self, envelope: dict[str, Any]) -> tuple[int, bytes]:
        """Commit one schedule change envelope; answer only after the commit."""
        change = _change(envelope)
        if change.op == "put":
            try:
                ard = _definition(change.definition)
            except MessageError as err:
                raise StarwrsError(err.code, f"report {change.report_id}: {err}") from None
            kind = ard.schedule.kind.value if ard.schedule is not None else ""
            change = Change(
                "put",
                change.report_id,
                change.revision,
                change.user_id,
                change.entp_id,
                change.data_cat,
                kind,
                change.definition,
            )
        applied = await self.store.apply(change)
        log.info(
            "rs change op=%s report=%d revision=%d applied=%s",
            change.op,
            change.report_id,
            change.revision,
            applied,
        )
        if applied:
            self.wake()
        return 0, msgpack.packb(
            {"report_id": change.report_id, "revision": change.revision, "applied": applied}
        )

    # -- due runs -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run due reports until cancelled."""
        task_status.started()
        while True:
            self._wake = trio.Event()
            try:
                wait = await self.tick()
            except Exception:  # a bad row or a busy file must not stop the scheduler
                log.exception("rs tick failed")
                wait = 5.0
            finally:
                self._ticked.set()
                self._ticked = trio.Event()
            with trio.move_on_after(min(max(wait, 0.0), MAX_NAP)):
                await self._wake.wait()

    async def tick(self) -> float:
        """Start every run that is due now; seconds until the next one falls due."""
        now = dt.datetime.fromtimestamp(self.clock(), UTC)
        next_due = now + dt.timedelta(seconds=MAX_NAP)
        for schedule in await self.store.active():
            try:
                ard = _definition(schedule.definition)
            except MessageError:
                log.exception("rs report=%d: stored definition does not parse", schedule.report_id)
                continue
            kind = ScheduleKind(schedule.kind)
            zone = zone_for(ard.timezone)
            if kind is ScheduleKind.ADHOC:
                if ard.schedule is not None:
                    done = await self.store.ran(schedule.report_id)
                    for run in adhoc_runs(ard.schedule, zone):
                        period = (_minutes(run.start), _minutes(run.end))
                        if period not in done:
                            await self._start(schedule, ard, kind, run, period, since=None)
                continue
            if kind is ScheduleKind.HOURLY and schedule.data_cat == "P":
                if schedule.report_id not in self._warned:
                    self._warned.add(schedule.report_id)
                    log.warning("rs report=%d: hourly runs are for unpriced data only",
                                schedule.report_id)  # fmt: skip
                continue
            since = (
                None
                if schedule.since is None
                else dt.datetime.fromtimestamp(schedule.since, UTC)
            )
            for run in recurring_runs(
                kind, zone, since=since, now=now, week_start=self.week_start
            ):
                period = (_minutes(run.start), _minutes(run.end))
                await self._start(schedule, ard, kind, run, period, since=run.end.timestamp())
            next_due = min(next_due, _next_period_end(kind, zone, now))
        return max(0.0, (next_due - dt.datetime.fromtimestamp(self.clock(), UTC)).total_seconds())

    async def _start(
        self,
        schedule: ScheduleRow,
        ard: AddReportDefinition,
        kind: ScheduleKind,
        run: Run,
        period: tuple[int, int],
        *,
        since: float | None,
    ) -> None:
        corp = first_corp(ard.billing)
        priority = PRIORITY[kind]

        def envelope(request_id: int) -> tuple[str, bytes]:
            request = fulfil_request(
                ard, schedule.report_id, request_id, run, adhoc=kind is ScheduleKind.ADHOC
            )
            payload = {
                "subject": "Arbitrator",
                "request_id": request_id,
                "corp_id": corp or "",
                "priority": priority,
                "message": serialize(request.to_message()),
                "deliver": {
                    "user_id": schedule.user_id,
                    "entp_id": schedule.entp_id,
                    "user_report_id": schedule.report_id,
                    "std_report_id": ard.std_report_id,
                },
            }
            return "Arbitrator", msgpack.packb(payload)

        if corp is None:
            log.warning("rs report=%d: no corp id in BILLING, nothing to run", schedule.report_id)
            return
        request_id = await self.store.start_run(schedule, period, priority, envelope, since=since)
        if request_id is not None:
            log.info(
                "rs run report=%d request=%d kind=%s start=%s end=%s hours=%.0f",
                schedule.report_id,
                request_id,
                kind.value,
                run.start.isoformat(),
                run.end.isoformat(),
                run.hours,
            )


def _definition(text: str) -> AddReportDefinition:
    ard = AddReportDefinition.from_message(parse(text))
    return ard


def _change(envelope: dict[str, Any]) -> Change:
    """A schedule change envelope, checked (6114 / 6103 / 6104 for what is wrong)."""
    if envelope.get("subject") != "RS":
        raise StarwrsError(ErrorCode.NO_VALID_REQUEST, "subject must be RS")
    op = envelope.get("op")
    if op not in ("put", "remove"):
        raise StarwrsError(ErrorCode.RM_PARAMETER_ERROR, "op must be put or remove")
    ints = {k: envelope.get(k) for k in ("report_id", "revision")}
    texts = {k: envelope.get(k) for k in ("user_id", "entp_id")}
    for name, value in ints.items():
        if not (isinstance(value, int) and 0 <= value <= 2**31 - 1):
            raise StarwrsError(ErrorCode.REQUIRED_PARAMETERS_MISSING, name)
    for name, value in texts.items():
        if not (isinstance(value, str) and value):
            raise StarwrsError(ErrorCode.REQUIRED_PARAMETERS_MISSING, name)
    definition = envelope.get("definition", "")
    data_cat = envelope.get("data_cat", "P")
    if op == "put" and not (isinstance(definition, str) and definition):
        raise StarwrsError(ErrorCode.REQUIRED_PARAMETERS_MISSING, "definition")
    if data_cat not in ("P", "U"):
        raise StarwrsError(ErrorCode.RM_PARAMETER_ERROR, "data_cat must be P or U")
    return Change(
        op,
        int(ints["report_id"]),  # type: ignore[arg-type]
        int(ints["revision"]),  # type: ignore[arg-type]
        str(texts["user_id"]),
        str(texts["entp_id"]),
        str(data_cat),
        "",
        str(definition) if isinstance(definition, str) else "",
    )


def make_rs_proxy(scheduler: ReportScheduler) -> Proxy:
    """The scheduler's proxy: schedule change envelopes from the Report Manager.

    It takes no metadata requests of its own; one that arrives is validated with
    the Report Manager's catalogue and answered 6104, like any acronym a proxy does
    not serve.
    """
    proxy = Proxy("RM", name="rs")

    @proxy.takes_envelopes
    async def change(caller: Caller, envelope: dict[str, Any]) -> tuple[int, bytes]:
        if caller.peer not in (None, "rm"):
            raise StarwrsError(ErrorCode.NOT_ENTITLED, "schedule changes come from the RM")
        return await scheduler.apply(envelope)

    return proxy


async def serve_rs(
    deployment: Deployment,
    *,
    index: int = 0,
    task_status: trio.TaskStatus[ReportScheduler] = trio.TASK_STATUS_IGNORED,
    clock: Callable[[], float] = time.time,
) -> None:
    """Run the Report Scheduler on ``deployment.proxies["RS"]`` until cancelled.

    ``task_status.started`` is given the :class:`ReportScheduler` (tests drive its
    clock and :meth:`~ReportScheduler.tick`); *clock* is the time in epoch seconds.
    """
    del index
    state = Path(deployment.state_dir)
    pki = load_pki(state)
    routes = {t: a for t, a in deployment.proxies.items() if t in ("ARB", RM)}
    pool = ProxyPool(routes, pki.internal_client_context("rs"), deployment.limits)
    try:
        lease = lease_for(deployment.limits)
        async with open_schedule_store(state / "rs.db", clock=clock, lease=lease) as store:
            scheduler = ReportScheduler(store, clock=clock)
            await release_leases(store.db)
            watch_outbox("rs", store.db, clock)
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    serve_proxy,
                    make_rs_proxy(scheduler),
                    deployment.proxies["RS"],
                    pki.internal_server_context("rs"),
                    deployment.limits,
                )
                # 6050: the Report Manager has the failure report of a request already
                send = frame_sender(pool, done={int(ErrorCode.RM_NRLA_RETRANSMISSION)})

                async def parked(message: OutboxMessage, reason: str) -> None:
                    what = "the scheduler could not hand the request to the arbitrator"
                    await report_parked(store.outbox, message, reason, what)

                await nursery.start(partial(store.outbox.run, send, on_failed=parked))
                await nursery.start(scheduler.run)
                task_status.started(scheduler)
    finally:
        with trio.CancelScope(shield=True):
            await pool.aclose()
