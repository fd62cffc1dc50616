"""The Report Manager's user report inventory (``STATE/rm.db``).

Theory of operation
-------------------
Every user-created report definition (ARD) is one row of ``user_reports``, owned
by one user of one enterprise.  The columns the Report Manager filters or lists
on are columns of their own (owner, template, name, product, data category,
user report category, ACTIVE, status, last update); the whole customization is
kept as the canonical text of the ARD (``definition``), from which GURD's detail
tree and the scheduler's request are rebuilt -- so every field of Appendix A is
stored without a column per field.

* **ids** come from a one-row allocator (``report_ids``), never reused, and stop
  at the seed's limit 2147483647 ("Limit on unique user report ids"): the next
  add is then refused with 6106 (database command error).
* **ownership** is part of every statement: a report is read, copied, updated or
  deleted ``WHERE report_id = ? AND user_id = ?``, so another user's report id
  behaves exactly like an id that does not exist.
* **schedule changes** -- every change that touches what the Report Scheduler
  runs (a report added or copied, ACTIVE changed, a report deleted) bumps the
  report's ``revision`` and puts ``put`` / ``remove`` into the store's outbox
  (:mod:`starwrs.storage.outbox`, subject ``RS``) in the *same* transaction, so the
  scheduler hears of every change once it is committed, in order, and never of one
  that was rolled back (docs/runtime.md "Scheduling and delivery").
* **runs** -- one row per REQUESTID the DSS told us of (ARDA, NRL): its report, its
  state (``SUBMITTED``, ``C`` complete, ``FAILED``), the error and the INBOXID.
  :meth:`ReportStore.complete_run` applies an NRL exactly once
  (:func:`~starwrs.storage.outbox.accept_once` by REQUESTID), sets the user report's
  status and queues the inbox delivery in one transaction.
* every SQL statement of the inventory is in this module; time comes from an
  injectable clock (status dates in tests are deterministic).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import msgpack
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.proxies.delivery import MAX_ATTEMPTS, MAX_DELAY
from starwrs.storage.outbox import OUTBOX_MIGRATION, RECEIVED_MIGRATION, Outbox, accept_once
from starwrs.storage.sqlite import Row, Store, Transaction, open_store

__all__ = [
    "MAX_REPORT_ID",
    "MIGRATIONS",
    "ReportStore",
    "RunRow",
    "UserReport",
    "open_report_store",
]

#: the seed's limit on unique user report ids
MAX_REPORT_ID = 2147483647

MIGRATIONS: list[str] = [
    # 1: the user report inventory and its id allocator
    """
    CREATE TABLE report_ids (
        one     INTEGER PRIMARY KEY CHECK (one = 1),
        next_id INTEGER NOT NULL
    );
    INSERT INTO report_ids (one, next_id) VALUES (1, 1);

    CREATE TABLE user_reports (
        report_id   INTEGER PRIMARY KEY CHECK (report_id BETWEEN 1 AND 2147483647),
        user_id     TEXT NOT NULL,
        entp_id     TEXT NOT NULL CHECK (length(entp_id) = 8),
        template_id INTEGER NOT NULL,
        name        TEXT NOT NULL CHECK (name <> ''),
        product     TEXT NOT NULL,
        data_cat    TEXT NOT NULL CHECK (data_cat IN ('P', 'U')),
        category    TEXT NOT NULL,
        active      INTEGER NOT NULL CHECK (active IN (0, 1)),
        status      TEXT NOT NULL,
        updated     TEXT NOT NULL,
        definition  TEXT NOT NULL
    );
    CREATE INDEX user_reports_owner ON user_reports (user_id, template_id);
    """,
    # 2: schedule revisions, the reason of a failed run, and the runs the DSS reported
    """
    ALTER TABLE user_reports ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE user_reports ADD COLUMN status_reason TEXT NOT NULL DEFAULT '';
    CREATE TABLE runs (
        request_id  INTEGER PRIMARY KEY,
        report_id   INTEGER NOT NULL,
        user_id     TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('SUBMITTED', 'C', 'FAILED')),
        error_code  INTEGER,
        reason      TEXT NOT NULL DEFAULT '',
        loc         TEXT,
        inbox_id    INTEGER,
        updated     REAL NOT NULL
    );
    CREATE INDEX runs_report ON runs (user_id, report_id);
    """,
    # 3, 4: the outbox (to the scheduler and the inbox) and what was received (ARDA, NRL)
    OUTBOX_MIGRATION,
    RECEIVED_MIGRATION,
]

#: outbox subject of schedule changes, and the target they go to
SCHEDULER = "RS"

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class UserReport:
    """One row of the inventory.

    Attributes:
        report_id: USERRPTID.
        user_id: the owner.
        entp_id: the owner's enterprise.
        template_id: STDRPTID.
        name: the user's title.
        product: V, C, S, T or H.
        data_cat: P or U.
        category: the user report category (ARD ``CATEGORY``).
        active: scheduled (1) or only saved (0).
        status: ``SCHEDULED`` or ``SAVED``.
        updated: last update, ``YYYYMMDDhhmm`` (UTC).
        definition: the canonical ARD text.
        revision: bumped by every change the scheduler hears of.
        status_reason: why the last run failed (status ``FAILED``), else "".
    """

    report_id: int
    user_id: str
    entp_id: str
    template_id: int
    name: str
    product: str
    data_cat: str
    category: str
    active: bool
    status: str
    updated: str
    definition: str
    revision: int = 0
    status_reason: str = ""


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run of a report the DSS told us of (ARDA / NRL)."""

    request_id: int
    report_id: int
    user_id: str
    state: str
    error_code: int | None
    reason: str
    loc: str | None
    inbox_id: int | None


def status_of(active: bool) -> str:
    """The status text of a report: scheduled or only saved."""
    return "SCHEDULED" if active else "SAVED"


def _report(row: Row) -> UserReport:
    return UserReport(
        report_id=row["report_id"],
        user_id=row["user_id"],
        entp_id=row["entp_id"],
        template_id=row["template_id"],
        name=row["name"],
        product=row["product"],
        data_cat=row["data_cat"],
        category=row["category"],
        active=bool(row["active"]),
        status=row["status"],
        updated=row["updated"],
        definition=row["definition"],
        revision=row["revision"],
        status_reason=row["status_reason"],
    )


def _run(row: Row) -> RunRow:
    return RunRow(
        request_id=row["request_id"],
        report_id=row["report_id"],
        user_id=row["user_id"],
        state=row["state"],
        error_code=row["error_code"],
        reason=row["reason"],
        loc=row["loc"],
        inbox_id=row["inbox_id"],
    )


class ReportStore:
    """The user report inventory on a store opened with :data:`MIGRATIONS`.

    Args:
        db: the open store.
        clock: epoch seconds (status dates).
        outbox: the store's outbox (schedule changes, inbox deliveries); one over
            *db* is made when none is given.
    """

    def __init__(self, db: Store, *, clock: Clock = time.time, outbox: Outbox | None = None):
        self.db = db
        self.clock = clock
        self.outbox = outbox if outbox is not None else Outbox(db)

    async def _schedule(self, tx: Transaction, report: UserReport, op: str) -> None:
        """Tell the scheduler of *report* (its new revision) in the caller's transaction.

        The caller wakes the outbox once the transaction has committed.
        """
        change = {
            "subject": SCHEDULER,
            "op": op,
            "report_id": report.report_id,
            "revision": report.revision,
            "user_id": report.user_id,
            "entp_id": report.entp_id,
            "data_cat": report.data_cat,
            "definition": report.definition if op == "put" else "",
        }
        key = f"{report.report_id}:{report.revision}"
        await self.outbox.put(SCHEDULER, key, SCHEDULER, msgpack.packb(change), tx=tx)

    def _stamp(self) -> str:
        return time.strftime("%Y%m%d%H%M", time.gmtime(self.clock()))

    async def add(
        self,
        *,
        user_id: str,
        entp_id: str,
        template_id: int,
        name: str,
        product: str,
        data_cat: str,
        category: str,
        active: bool,
        definition: Callable[[int], str],
    ) -> UserReport:
        """Add a report; *definition* builds the stored ARD text from the new id.

        Returns:
            The stored report.

        Raises:
            StarwrsError: 6106 when the id space (1..2147483647) is used up.
        """
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT next_id FROM report_ids WHERE one = 1")
            report_id = int(row["next_id"]) if row is not None else 1
            if report_id > MAX_REPORT_ID:
                raise StarwrsError(ErrorCode.RM_DB_COMMAND, "user report ids are used up")
            await tx.execute("UPDATE report_ids SET next_id = ? WHERE one = 1", (report_id + 1,))
            report = UserReport(
                report_id,
                user_id,
                entp_id,
                template_id,
                name,
                product,
                data_cat,
                category,
                active,
                status_of(active),
                self._stamp(),
                definition(report_id),
                revision=1,
            )
            await tx.execute(
                "INSERT INTO user_reports (report_id, user_id, entp_id, template_id, name,"
                " product, data_cat, category, active, status, updated, definition, revision)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    report.report_id,
                    report.user_id,
                    report.entp_id,
                    report.template_id,
                    report.name,
                    report.product,
                    report.data_cat,
                    report.category,
                    int(report.active),
                    report.status,
                    report.updated,
                    report.definition,
                    report.revision,
                ),
            )
            if report.active:
                await self._schedule(tx, report, "put")
        self.outbox.wake()  # after the commit: the outbox sees the change
        return report

    async def get(self, user_id: str, report_id: int) -> UserReport | None:
        """The user's report *report_id* (None when missing or someone else's)."""
        row = await self.db.fetchone(
            "SELECT * FROM user_reports WHERE report_id = ? AND user_id = ?",
            (report_id, user_id),
        )
        return None if row is None else _report(row)

    async def reports(
        self,
        user_id: str,
        *,
        template_id: int | None = None,
        product: str | None = None,
        data_cat: str | None = None,
    ) -> list[UserReport]:
        """The user's reports (optionally for one template, product, data category).

        Returns:
            Reports ordered by category, then name, then id.
        """
        rows = await self.db.fetchall(
            "SELECT * FROM user_reports WHERE user_id = :u"
            " AND (:t IS NULL OR template_id = :t) AND (:p IS NULL OR product = :p)"
            " AND (:c IS NULL OR data_cat = :c) ORDER BY category, name, report_id",
            {"u": user_id, "t": template_id, "p": product, "c": data_cat},
        )
        return [_report(r) for r in rows]

    async def copy(
        self, user_id: str, report_id: int, name: str, definition: Callable[[str, int], str]
    ) -> UserReport | None:
        """Copy the user's report under *name* with a new id.

        Args:
            definition: builds the copy's ARD text from the original's and the new id.

        Returns:
            The copy, or None when the original is missing or someone else's.
        """
        original = await self.get(user_id, report_id)
        if original is None:
            return None
        return await self.add(
            user_id=original.user_id,
            entp_id=original.entp_id,
            template_id=original.template_id,
            name=name,
            product=original.product,
            data_cat=original.data_cat,
            category=original.category,
            active=original.active,
            definition=lambda new_id: definition(original.definition, new_id),
        )

    async def set_active(self, user_id: str, report_id: int, active: bool) -> bool:
        """Schedule (True) or only save (False); False when there is no such report."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "UPDATE user_reports SET active = ?, status = ?, status_reason = '',"
                " updated = ?, revision = revision + 1"
                " WHERE report_id = ? AND user_id = ? RETURNING *",
                (int(active), status_of(active), self._stamp(), report_id, user_id),
            )
            if row is None:
                return False
            await self._schedule(tx, _report(row), "put" if active else "remove")
        self.outbox.wake()
        return True

    async def delete(self, user_id: str, report_id: int) -> bool:
        """Delete the user's report; False when there is no such report."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "DELETE FROM user_reports WHERE report_id = ? AND user_id = ? RETURNING *",
                (report_id, user_id),
            )
            if row is None:
                return False
            report = _report(row)
            if report.active:
                gone = dataclasses.replace(report, revision=report.revision + 1)
                await self._schedule(tx, gone, "remove")
        self.outbox.wake()
        return True

    async def delete_user(self, user_id: str) -> int:
        """Delete every report of a user (a user removed from order entry)."""
        async with self.db.transaction() as tx:
            rows = await tx.fetchall(
                "DELETE FROM user_reports WHERE user_id = ? RETURNING *", (user_id,)
            )
            for row in rows:
                report = _report(row)
                if report.active:
                    gone = dataclasses.replace(report, revision=report.revision + 1)
                    await self._schedule(tx, gone, "remove")
        self.outbox.wake()
        return len(rows)

    async def set_next_id(self, next_id: int) -> None:
        """Move the id allocator (administration; ids are never reused)."""
        await self.db.execute("UPDATE report_ids SET next_id = ? WHERE one = 1", (next_id,))

    async def all_rows(self) -> list[UserReport]:
        """Every report of every user (administration and audits)."""
        rows = await self.db.fetchall("SELECT * FROM user_reports ORDER BY report_id")
        return [_report(r) for r in rows]

    # -- runs: what the DSS told us (ARDA, NRL) -------------------------------------------

    async def owned(self, user_id: str, entp_id: str, report_id: int) -> UserReport | None:
        """The report *report_id* if it is *user_id*'s of *entp_id* (a run's owner check)."""
        report = await self.get(user_id, report_id)
        return report if report is not None and report.entp_id == entp_id else None

    async def acknowledged(
        self, request_id: int, report: UserReport, error_code: int, reason: str
    ) -> bool:
        """Record an ARDA once; False for a duplicate.  A parse failure marks the run."""
        async with self.db.transaction() as tx:
            if not await accept_once(tx, "ARDA", str(request_id), now=self.clock()):
                return False
            state = "FAILED" if error_code else "SUBMITTED"
            await tx.execute(
                "INSERT INTO runs (request_id, report_id, user_id, state, error_code, reason,"
                " updated) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING",
                (
                    request_id,
                    report.report_id,
                    report.user_id,
                    state,
                    error_code or None,
                    reason,
                    self.clock(),
                ),
            )
            if not error_code:
                await tx.execute(
                    "UPDATE user_reports SET status = 'SUBMITTED', status_reason = '',"
                    " updated = ? WHERE report_id = ? AND user_id = ?",
                    (self._stamp(), report.report_id, report.user_id),
                )
        return True

    async def completed(self, request_id: int) -> bool:
        """Whether the NRL of *request_id* was applied already (NRLA 6050)."""
        row = await self.db.fetchone(
            "SELECT 1 FROM received WHERE subject = 'NRL' AND key = ?", (str(request_id),)
        )
        return row is not None

    async def complete_run(
        self,
        request_id: int,
        report: UserReport,
        *,
        loc: str,
        error_code: int,
        reason: str,
        delivery: tuple[str, bytes],
    ) -> bool:
        """Apply an NRL exactly once; False for a duplicate (answered 6050).

        In one transaction: the NRL is recorded as received, the run becomes ``C``
        (or ``FAILED`` with *error_code* and *reason*), the user report takes that
        status, and the inbox delivery (outbox subject, payload) is queued.
        """
        state = "FAILED" if error_code else "C"
        async with self.db.transaction() as tx:
            if not await accept_once(tx, "NRL", str(request_id), now=self.clock()):
                return False
            await tx.execute(
                "INSERT INTO runs (request_id, report_id, user_id, state, error_code, reason,"
                " loc, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id)"
                " DO UPDATE SET state = excluded.state, error_code = excluded.error_code,"
                " reason = excluded.reason, loc = excluded.loc, updated = excluded.updated",
                (
                    request_id,
                    report.report_id,
                    report.user_id,
                    state,
                    error_code or None,
                    reason,
                    loc,
                    self.clock(),
                ),
            )
            await tx.execute(
                "UPDATE user_reports SET status = ?, status_reason = ?, updated = ?"
                " WHERE report_id = ? AND user_id = ?",
                (state, reason[:500], self._stamp(), report.report_id, report.user_id),
            )
            subject, payload = delivery
            await self.outbox.put(subject, str(request_id), "INBX", payload, tx=tx)
        self.outbox.wake()
        return True

    async def delivered(self, request_id: int, inbox_id: int | None) -> None:
        """The inbox added the run's item (its INBOXID)."""
        await self.db.execute(
            "UPDATE runs SET inbox_id = ?, updated = ? WHERE request_id = ?",
            (inbox_id, self.clock(), request_id),
        )

    async def run(self, request_id: int) -> RunRow | None:
        """One run by REQUESTID."""
        row = await self.db.fetchone("SELECT * FROM runs WHERE request_id = ?", (request_id,))
        return None if row is None else _run(row)

    async def runs(self, user_id: str, report_id: int) -> list[RunRow]:
        """Every run of the user's report, by REQUESTID."""
        rows = await self.db.fetchall(
            "SELECT * FROM runs WHERE user_id = ? AND report_id = ? ORDER BY request_id",
            (user_id, report_id),
        )
        return [_run(r) for r in rows]

    async def failed(self, report_id: int, reason: str, request_id: int | None = None) -> None:
        """Mark a report (and its run) as failed: a delivery was parked (``on_failed``)."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE user_reports SET status = 'FAILED', status_reason = ?, updated = ?"
                " WHERE report_id = ?",
                (reason[:500], self._stamp(), report_id),
            )
            if request_id is not None:
                await tx.execute(
                    "UPDATE runs SET state = 'FAILED', reason = ?, updated = ?"
                    " WHERE request_id = ?",
                    (reason[:500], self.clock(), request_id),
                )


@asynccontextmanager
async def open_report_store(
    path: Path | str, *, clock: Clock = time.time, lease: float = 60.0
) -> AsyncIterator[ReportStore]:
    """Open (creating and migrating) the inventory, e.g. ``STATE/rm.db``.

    *lease* is its outbox's lease (seconds an attempt may take).
    """
    async with open_store(path, MIGRATIONS) as db:
        outbox = Outbox(
            db, clock=clock, lease=lease, max_delay=MAX_DELAY, max_attempts=MAX_ATTEMPTS
        )
        yield ReportStore(db, clock=clock, outbox=outbox)
