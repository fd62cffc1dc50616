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
* every SQL statement of the inventory is in this module; time comes from an
  injectable clock (status dates in tests are deterministic).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.storage.sqlite import Row, Store, open_store

__all__ = ["MAX_REPORT_ID", "MIGRATIONS", "ReportStore", "UserReport", "open_report_store"]

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
]

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
    )


class ReportStore:
    """The user report inventory on a store opened with :data:`MIGRATIONS`."""

    def __init__(self, db: Store, *, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock

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
            )
            await tx.execute(
                "INSERT INTO user_reports (report_id, user_id, entp_id, template_id, name,"
                " product, data_cat, category, active, status, updated, definition)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ),
            )
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
        result = await self.db.execute(
            "UPDATE user_reports SET active = ?, status = ?, updated = ?"
            " WHERE report_id = ? AND user_id = ?",
            (int(active), status_of(active), self._stamp(), report_id, user_id),
        )
        return result.rowcount == 1

    async def delete(self, user_id: str, report_id: int) -> bool:
        """Delete the user's report; False when there is no such report."""
        result = await self.db.execute(
            "DELETE FROM user_reports WHERE report_id = ? AND user_id = ?", (report_id, user_id)
        )
        return result.rowcount == 1

    async def delete_user(self, user_id: str) -> int:
        """Delete every report of a user (a user removed from order entry)."""
        result = await self.db.execute("DELETE FROM user_reports WHERE user_id = ?", (user_id,))
        return result.rowcount

    async def set_next_id(self, next_id: int) -> None:
        """Move the id allocator (administration; ids are never reused)."""
        await self.db.execute("UPDATE report_ids SET next_id = ? WHERE one = 1", (next_id,))

    async def all_rows(self) -> list[UserReport]:
        """Every report of every user (administration and audits)."""
        rows = await self.db.fetchall("SELECT * FROM user_reports ORDER BY report_id")
        return [_report(r) for r in rows]


@asynccontextmanager
async def open_report_store(
    path: Path | str, *, clock: Clock = time.time
) -> AsyncIterator[ReportStore]:
    """Open (creating and migrating) the inventory, e.g. ``STATE/rm.db``."""
    async with open_store(path, MIGRATIONS) as db:
        yield ReportStore(db, clock=clock)
