"""The DSS request queue: Appendix I's ``request`` and ``req_status`` tables.

Theory of operation
-------------------
The seed's TIO "inserts the message received from the arbitrator into the request
table and request status table along with the priority, timestamp and status
fields ... the messages are stored in the queue to provide queuing, log and
tolerance from the failures."  This module is that queue, in the partition's own
DuckDB file (so a request and the data it reads live and die together):

* :func:`enqueue` writes a new request (``request`` row with ``msg_desc``, and a
  ``new_message`` status row) in one transaction and says whether it was new --
  the same REQUESTID delivered twice is acknowledged again and queued once;
* :func:`record` appends a status row (and updates ``request`` columns) -- each
  step of a request is one row with its own timestamp, so a request's history is
  its rows in time order, and its current status the latest;
* :func:`next_pending` picks the request to work on: highest priority first
  (Priority 1 = ad hoc), then arrival; a request is pending until its latest
  status is terminal (:data:`TERMINAL`), so one restarted after a crash is picked up
  again and continues from its last recorded status.

Every function takes a cursor and runs on the caller's thread (the DSS runs them
on worker threads, one cursor each).  Timestamps are made strictly increasing per
request so that two steps in the same microsecond still sort.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb

__all__ = [
    "FAILED",
    "TERMINAL",
    "Pending",
    "RequestRow",
    "enqueue",
    "history",
    "latest_status",
    "next_pending",
    "pending_since",
    "record",
    "request_row",
]

#: statuses after which a request needs no more work in this partition
FAILED = frozenset({"parser_failed", "IAIO_failed", "format_failed", "ftp_failed"})
#: (the delivery stage, :mod:`.delivery`, moves a request on from format_success)
TERMINAL = FAILED | frozenset(
    {"format_success", "in_ftp", "ftp_success", "in_NRL", "NRL_sent", "ARDA_sent"}
)

_REQUEST_COLUMNS = frozenset(
    {
        "msg_desc",
        "unique_fname",
        "report_dir",
        "format_dir",
        "inbox_dir",
        "inbox_fname",
        "inbox_fsize",
        "entpid",
        "userid",
        "stdrptid",
        "userptid",
        "compress",
        "threshold",
        "subtotal",
        "totalmode",
        "nrl_totals",
        "format_columns",
        "sort_columns",
        "error_code",
        "error_desc",
        "rpmgr_columns",
    }
)


@dataclass(frozen=True, slots=True)
class Pending:
    """A request to work on: its id, priority, latest status and ARD text."""

    request_id: int
    priority: int
    status: str
    message: str


RequestRow = dict[str, Any]


def _now(cur: duckdb.DuckDBPyConnection, request_id: int) -> dt.datetime:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    row = cur.execute(
        "SELECT max(starttime) FROM req_status WHERE request_id = ?", [request_id]
    ).fetchone()
    last = row[0] if row else None
    if last is not None and now <= last:
        now = last + dt.timedelta(microseconds=1)
    return now


def enqueue(cur: duckdb.DuckDBPyConnection, request_id: int, priority: int, message: str) -> bool:
    """Queue a request delivered by the arbitrator; False if REQUESTID is known."""
    cur.execute("BEGIN TRANSACTION")
    try:
        known = cur.execute("SELECT 1 FROM request WHERE request_id = ?", [request_id]).fetchone()
        if known is not None:
            cur.execute("COMMIT")
            return False
        cur.execute(
            "INSERT INTO request (request_id, msg_desc) VALUES (?, ?)", [request_id, message]
        )
        cur.execute(
            "INSERT INTO req_status (request_id, status, priority, starttime) VALUES (?, ?, ?, ?)",
            [request_id, "new_message", str(priority), _now(cur, request_id)],
        )
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    return True


def record(cur: duckdb.DuckDBPyConnection, request_id: int, status: str, **columns: Any) -> None:
    """Append status *status* for *request_id* and set ``request`` *columns*, atomically."""
    unknown = set(columns) - _REQUEST_COLUMNS
    if unknown:
        raise ValueError(f"no request column(s) {sorted(unknown)}")
    cur.execute("BEGIN TRANSACTION")
    try:
        row = cur.execute(
            "SELECT priority FROM req_status WHERE request_id = ? ORDER BY starttime LIMIT 1",
            [request_id],
        ).fetchone()
        priority = row[0] if row else None
        if columns:
            names = sorted(columns)
            assignments = ", ".join(f"{name} = ?" for name in names)  # names from the set above
            cur.execute(
                f"UPDATE request SET {assignments} WHERE request_id = ?",  # noqa: S608
                [*(columns[n] for n in names), request_id],
            )
        cur.execute(
            "INSERT INTO req_status (request_id, status, priority, starttime) VALUES (?, ?, ?, ?)",
            [request_id, status, priority, _now(cur, request_id)],
        )
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise


_LATEST = """
SELECT s.request_id, arg_max(s.status, s.starttime) AS status,
       min(s.starttime) AS arrived, arg_min(s.priority, s.starttime) AS priority
FROM req_status s GROUP BY s.request_id
"""


def next_pending(
    cur: duckdb.DuckDBPyConnection, skip: frozenset[int] = frozenset()
) -> Pending | None:
    """The request to work on next (priority, then arrival), or None."""
    rows = cur.execute(
        f"SELECT l.request_id, l.priority, l.status, r.msg_desc FROM ({_LATEST}) l"  # noqa: S608
        " JOIN request r USING (request_id)"
        " WHERE NOT list_contains(?, l.status)"
        " ORDER BY TRY_CAST(l.priority AS INTEGER) NULLS LAST, l.arrived, l.request_id",
        [sorted(TERMINAL)],
    ).fetchall()
    for request_id, priority, status, message in rows:
        if request_id not in skip:
            return Pending(int(request_id), int(priority or 9), str(status), str(message or ""))
    return None


def pending_since(cur: duckdb.DuckDBPyConnection, moment: dt.datetime) -> int:
    """How many requests that arrived before *moment* are still pending."""
    row = cur.execute(
        f"SELECT count(*) FROM ({_LATEST}) l WHERE l.arrived < ?"  # noqa: S608
        " AND NOT list_contains(?, l.status)",
        [moment, sorted(TERMINAL)],
    ).fetchone()
    return int(row[0]) if row else 0


def latest_status(cur: duckdb.DuckDBPyConnection, request_id: int) -> str | None:
    """The request's current status (None: unknown REQUESTID)."""
    row = cur.execute(
        "SELECT arg_max(status, starttime) FROM req_status WHERE request_id = ?", [request_id]
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def history(cur: duckdb.DuckDBPyConnection, request_id: int) -> list[tuple[str, dt.datetime]]:
    """Every status of the request with its time (UTC), oldest first."""
    return [
        (str(status), when)
        for status, when in cur.execute(
            "SELECT status, starttime FROM req_status WHERE request_id = ? ORDER BY starttime",
            [request_id],
        ).fetchall()
    ]


def request_row(cur: duckdb.DuckDBPyConnection, request_id: int) -> RequestRow | None:
    """The ``request`` row as a dict, or None."""
    result = cur.execute("SELECT * FROM request WHERE request_id = ?", [request_id])
    row = result.fetchone()
    if row is None:
        return None
    names = [d[0] for d in result.description or ()]
    return dict(zip(names, row, strict=True))
