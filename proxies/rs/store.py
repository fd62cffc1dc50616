"""The Report Scheduler's store (``STATE/rs.db``): schedules, runs, request ids, outbox.

Theory of operation
-------------------
The seed's scheduler "maintains a list of requested reports for a given user" and
sends each at its time.  Here that list is ``schedules``, one row per user report
the Report Manager told us about, and ``runs``, one row per period a report has
been requested for:

* **schedules** -- written only by :meth:`ScheduleStore.apply`, which takes one
  schedule change from the Report Manager's outbox (``put`` a scheduled report,
  ``remove`` it).  Each change carries the report's *revision*: a change older
  than the row's revision is stale and ignored, and the change's ``(report,
  revision)`` is recorded with :func:`~starwrs.storage.outbox.accept_once` in the
  same transaction, so a change delivered twice is acknowledged twice and applied
  once.  A removed report keeps its row (``active = 0``) so that its revision
  survives; putting it again starts it afresh.
* **runs** -- :meth:`ScheduleStore.start_run` writes the run row, allocates the
  run's REQUESTID, moves the schedule's ``since`` (the end of the last recurring
  period run) and puts the Appendix D request into the outbox, all in *one*
  transaction.  ``(report, period start, period end)`` is the primary key: a run
  that was committed is never started again, whatever happens to the process, and
  a run that was not committed has sent nothing.
* **request ids** come from a one-row allocator starting at
  :data:`FIRST_REQUEST_ID` (ids below it are left to operators' ``starwrs report``)
  and never reused, up to the seed's limit 2147483647.

Every SQL statement of the scheduler is in this module.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.proxies.delivery import MAX_ATTEMPTS, MAX_DELAY
from starwrs.storage.outbox import OUTBOX_MIGRATION, RECEIVED_MIGRATION, Outbox, accept_once
from starwrs.storage.sqlite import Row, Store, open_store

__all__ = [
    "FIRST_REQUEST_ID",
    "MIGRATIONS",
    "Change",
    "ScheduleRow",
    "ScheduleStore",
    "open_schedule_store",
]

#: the first REQUESTID the scheduler hands out
FIRST_REQUEST_ID = 1_000_001
#: the seed's limit on request ids ("Limit on request ID is 2147483647")
MAX_REQUEST_ID = 2147483647

MIGRATIONS: list[str] = [
    # 1: schedules, runs and the request id allocator (starting at FIRST_REQUEST_ID)
    """
    CREATE TABLE schedules (
        report_id   INTEGER PRIMARY KEY,
        user_id     TEXT NOT NULL,
        entp_id     TEXT NOT NULL,
        data_cat    TEXT NOT NULL,
        revision    INTEGER NOT NULL,
        active      INTEGER NOT NULL CHECK (active IN (0, 1)),
        kind        TEXT NOT NULL,
        definition  TEXT NOT NULL,
        since       REAL,
        changed     REAL NOT NULL
    );
    CREATE TABLE runs (
        report_id    INTEGER NOT NULL,
        period_start INTEGER NOT NULL,
        period_end   INTEGER NOT NULL,
        request_id   INTEGER NOT NULL UNIQUE,
        priority     INTEGER NOT NULL,
        at           REAL NOT NULL,
        PRIMARY KEY (report_id, period_start, period_end)
    ) WITHOUT ROWID;
    CREATE TABLE request_ids (
        one     INTEGER PRIMARY KEY CHECK (one = 1),
        next_id INTEGER NOT NULL
    );
    INSERT INTO request_ids (one, next_id) VALUES (1, 1000001);
    """,
    OUTBOX_MIGRATION,
    RECEIVED_MIGRATION,
]

#: the subject under which schedule changes are remembered (:func:`accept_once`)
CHANGES = "RS"


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """One scheduled report.

    Attributes:
        report_id: USERRPTID.
        user_id: its owner.
        entp_id: the owner's enterprise.
        data_cat: P priced or U unpriced.
        revision: the Report Manager's revision of the report this row reflects.
        kind: the SCHEDULE type, A H D W or M.
        definition: the Report Manager's canonical ARD text (Appendix A).
        since: end of the last recurring period run (epoch seconds), None if none.
    """

    report_id: int
    user_id: str
    entp_id: str
    data_cat: str
    revision: int
    kind: str
    definition: str
    since: float | None


@dataclass(frozen=True, slots=True)
class Change:
    """A schedule change as the Report Manager sends it (see docs/runtime.md)."""

    op: str
    report_id: int
    revision: int
    user_id: str
    entp_id: str
    data_cat: str = "P"
    kind: str = ""
    definition: str = ""


def _schedule(row: Row) -> ScheduleRow:
    return ScheduleRow(
        report_id=row["report_id"],
        user_id=row["user_id"],
        entp_id=row["entp_id"],
        data_cat=row["data_cat"],
        revision=row["revision"],
        kind=row["kind"],
        definition=row["definition"],
        since=row["since"],
    )


class ScheduleStore:
    """Schedules, runs and the outbox of one scheduler, on a store with :data:`MIGRATIONS`."""

    def __init__(self, db: Store, outbox: Outbox, *, clock: Callable[[], float] = time.time):
        self.db = db
        self.outbox = outbox
        self.clock = clock

    async def apply(self, change: Change) -> bool:
        """Apply one schedule change; False if it was a duplicate or stale.

        A ``put`` with no schedule kind (a report saved without SCHEDULE) is a
        ``remove``: the Report Manager only stores such a report.
        """
        key = f"{change.report_id}:{change.revision}"
        async with self.db.transaction() as tx:
            if not await accept_once(tx, CHANGES, key, now=self.clock()):
                return False
            row = await tx.fetchone(
                "SELECT revision, active, kind, since FROM schedules WHERE report_id = ?",
                (change.report_id,),
            )
            if row is not None and row["revision"] >= change.revision:
                return False
            active = change.op == "put" and bool(change.kind)
            since = None
            if row is not None and row["active"] and active and row["kind"] == change.kind:
                since = row["since"]  # the same schedule again: its runs go on
            await tx.execute(
                "INSERT INTO schedules (report_id, user_id, entp_id, data_cat, revision, active,"
                " kind, definition, since, changed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (report_id) DO UPDATE SET user_id = excluded.user_id,"
                " entp_id = excluded.entp_id, data_cat = excluded.data_cat,"
                " revision = excluded.revision, active = excluded.active, kind = excluded.kind,"
                " definition = excluded.definition, since = excluded.since,"
                " changed = excluded.changed",
                (
                    change.report_id,
                    change.user_id,
                    change.entp_id,
                    change.data_cat,
                    change.revision,
                    int(active),
                    change.kind if active else "",
                    change.definition if active else "",
                    since,
                    self.clock(),
                ),
            )
        return True

    async def active(self) -> list[ScheduleRow]:
        """Every scheduled (active) report, by report id."""
        rows = await self.db.fetchall(
            "SELECT * FROM schedules WHERE active = 1 ORDER BY report_id"
        )
        return [_schedule(r) for r in rows]

    async def get(self, report_id: int) -> ScheduleRow | None:
        """One report's schedule row (active or removed)."""
        row = await self.db.fetchone("SELECT * FROM schedules WHERE report_id = ?", (report_id,))
        return None if row is None else _schedule(row)

    async def ran(self, report_id: int) -> set[tuple[int, int]]:
        """The (start, end) epoch minutes of every period run for *report_id*."""
        rows = await self.db.fetchall(
            "SELECT period_start, period_end FROM runs WHERE report_id = ?", (report_id,)
        )
        return {(r[0], r[1]) for r in rows}

    async def runs(self) -> list[Row]:
        """Every run, oldest first (tests and ``starwrs status``)."""
        return await self.db.fetchall("SELECT * FROM runs ORDER BY at, request_id")

    async def start_run(
        self,
        schedule: ScheduleRow,
        period: tuple[int, int],
        priority: int,
        envelope: Callable[[int], tuple[str, bytes]],
        *,
        since: float | None,
    ) -> int | None:
        """Commit one run and its request in one transaction; its REQUESTID, or None.

        Args:
            schedule: the report, as read before (its revision must still hold).
            period: (start, end) in epoch minutes, the run's key with the report.
            priority: the request's Priority (1 ad hoc ... 5 monthly).
            envelope: builds (outbox subject, payload) from the new REQUESTID.
            since: the schedule's new ``since`` (recurring runs), else None.

        Returns:
            The REQUESTID, or None when the period was run before or the schedule
            changed meanwhile (nothing is then written).

        Raises:
            StarwrsError: 6106 when the request id space is used up.
        """
        async with self.db.transaction() as tx:
            current = await tx.fetchone(
                "SELECT revision, active FROM schedules WHERE report_id = ?",
                (schedule.report_id,),
            )
            if current is None or not current["active"] or current["revision"] != schedule.revision:
                return None
            done = await tx.fetchone(
                "SELECT 1 FROM runs WHERE report_id = ? AND period_start = ? AND period_end = ?",
                (schedule.report_id, *period),
            )
            if done is None:
                row = await tx.fetchone("SELECT next_id FROM request_ids WHERE one = 1")
                request_id = int(row[0]) if row is not None else FIRST_REQUEST_ID
                if request_id > MAX_REQUEST_ID:
                    raise StarwrsError(ErrorCode.RM_DB_COMMAND, "request ids are used up")
                await tx.execute(
                    "UPDATE request_ids SET next_id = ? WHERE one = 1", (request_id + 1,)
                )
                await tx.execute(
                    "INSERT INTO runs (report_id, period_start, period_end, request_id,"
                    " priority, at) VALUES (?, ?, ?, ?, ?, ?)",
                    (schedule.report_id, *period, request_id, priority, self.clock()),
                )
                subject, payload = envelope(request_id)
                await self.outbox.put(subject, str(request_id), "ARB", payload, tx=tx)
            if since is not None:
                await tx.execute(
                    "UPDATE schedules SET since = ? WHERE report_id = ?",
                    (since, schedule.report_id),
                )
        if done is not None:
            return None
        self.outbox.wake()  # committed: the outbox may see it now
        return request_id


@asynccontextmanager
async def open_schedule_store(
    path: Path | str, *, clock: Callable[[], float] = time.time, lease: float = 60.0
) -> AsyncIterator[ScheduleStore]:
    """Open (creating and migrating) ``rs.db`` with its outbox (*lease*: its lease, s)."""
    async with open_store(path, MIGRATIONS) as db:
        outbox = Outbox(
            db, clock=clock, lease=lease, max_delay=MAX_DELAY, max_attempts=MAX_ATTEMPTS
        )
        yield ScheduleStore(db, outbox, clock=clock)
