"""Guaranteed message delivery: a transactional outbox in SQLite (seed: Talarian GMD).

Theory of operation
-------------------
Every message one starwrs server must get to another -- RM -> scheduler, scheduler
or RM -> arbitrator -> DSS, DSS -> RM (ARDA, NRL), RM -> inbox, inbox ->
notifications -- goes through this one mechanism:

1. **put.**  The sender writes the message into its own store's ``outbox`` table,
   in the *same* transaction as the state change that caused it
   (:meth:`Outbox.put` with ``tx=``), so the change and the promise to tell
   someone commit together or not at all.  A message counts as sent once that
   commit returns (WAL, ``synchronous=FULL``: it survives kill -9 and power loss).
   ``(subject, key)`` is unique: putting the same message twice is a no-op, so a
   retried request never queues a second copy.
2. **deliver.**  :meth:`Outbox.run` delivers in FIFO order *per subject* (a subject
   is one destination's stream, e.g. ``ODS1``): only the oldest pending message of
   a subject is in flight, so a receiver sees a subject's messages in the order
   they were put.  Each attempt takes a **lease** (``lease_until``): a message whose
   receiver did not acknowledge within the lease -- or whose sender process died
   mid-attempt -- is attempted again once the lease has run out.
3. **acknowledge.**  The ``send`` callable returns :class:`Delivered` only after the
   receiver answered status 0, and a receiver answers 0 only after its *own*
   commit (PROTOCOL.md section 7); the outbox row is then deleted.  A transient
   failure (receiver down, timeout, 7006/7007) is :class:`Retry`: the next attempt
   waits an exponential back-off with jitter (``base * 2**attempts``, capped,
   +-25 %).  A permanent refusal is :class:`Refused`, and so is a message still
   undelivered after ``max_attempts``: the row is **parked** as ``failed`` -- kept,
   never dropped, listed by :meth:`failed` (``starwrs status``) -- and the
   ``on_failed`` callback lets the sender report it (the Report Manager marks the
   report as failed).  ``retry_failed`` puts parked messages back in the queue.
4. **exactly once.**  Delivery is at least once; receivers make it exactly once by
   remembering what they applied: :func:`accept_once` records ``(subject, key)``
   in the receiver's ``received`` table inside the transaction that applies the
   message, and tells a duplicate apart (acknowledged again, applied once; the
   NRL's 6050 is this case).

Only the put must survive a power failure; a lease, a retry's back-off and an
acknowledgement commit without an fsync (``durable=False``: ``synchronous=NORMAL``
for that transaction) -- losing one only means the message is delivered again,
which receivers already deduplicate -- so a message costs one fsync, not three.

The interface (:class:`Outbox`: ``put``, ``run``, ``stats``, ``failed``) is what a
NATS JetStream implementation would fill in when one machine is outgrown
(``Nats-Msg-Id`` = the key; DESIGN.md).  Stores add :data:`OUTBOX_MIGRATION` and
:data:`RECEIVED_MIGRATION` to their own migration lists.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio
from starwrs.storage.sqlite import Row, Store, Transaction

__all__ = [
    "OUTBOX_MIGRATION",
    "RECEIVED_MIGRATION",
    "Delivered",
    "Outbox",
    "OutboxMessage",
    "OutboxStats",
    "Outcome",
    "Refused",
    "Retry",
    "accept_once",
]

log = logging.getLogger("starwrs.outbox")

#: the outbox table; append to a sending store's migrations
OUTBOX_MIGRATION = """
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject TEXT NOT NULL,
    key TEXT NOT NULL,
    destination TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'failed')),
    last_error TEXT,
    UNIQUE (subject, key)
);
CREATE INDEX outbox_pending ON outbox (state, subject, id);
"""

#: what a receiver has applied; append to a receiving store's migrations
RECEIVED_MIGRATION = """
CREATE TABLE received (
    subject TEXT NOT NULL,
    key TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (subject, key)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One queued message."""

    id: int
    subject: str
    key: str
    destination: str
    payload: bytes
    created: float
    attempts: int
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Delivered:
    """The receiver committed the message and answered 0."""


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient failure: try again after a back-off."""

    reason: str


@dataclass(frozen=True, slots=True)
class Refused:
    """A permanent refusal: park the message as failed."""

    code: int
    reason: str


Outcome = Delivered | Retry | Refused
Sender = Callable[[OutboxMessage], Awaitable[Outcome]]
FailedHook = Callable[[OutboxMessage, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Queue depth and age per subject (the ``starwrs_outbox_*`` metrics)."""

    pending: dict[str, int]
    oldest_age: dict[str, float]
    failed: dict[str, int]


class Outbox:
    """The outbox of one store.

    Args:
        store: the sender's store, whose migrations include :data:`OUTBOX_MIGRATION`.
        lease: seconds an attempt may take before the message is attempted again.
        base_delay: the first retry's back-off, seconds.
        max_delay: the longest back-off, seconds.
        max_attempts: attempts before a message is parked as failed.
        clock: the time source (``time.time``; tests pass trio's clock).
    """

    def __init__(
        self,
        store: Store,
        *,
        lease: float = 60.0,
        base_delay: float = 0.25,
        max_delay: float = 60.0,
        max_attempts: int = 200,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.lease = lease
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_attempts = max_attempts
        self.clock = clock
        self._wake = trio.Event()
        self._settled = trio.Event()
        self._random = random.Random()  # noqa: S311 - jitter, not secrets

    # -- putting ----------------------------------------------------------------------

    async def put(
        self,
        subject: str,
        key: str,
        destination: str,
        payload: bytes,
        *,
        tx: Transaction | None = None,
    ) -> bool:
        """Queue a message; False if ``(subject, key)`` was queued before.

        Args:
            subject: the stream it belongs to (FIFO within it).
            key: what makes it unique in its subject (REQUESTID, INBOXID...).
            destination: the target that receives it (``DSS1``, ``RM``...).
            payload: the bytes the sender will hand to ``send``.
            tx: the caller's open transaction; without one the put commits alone.
        """
        sql = (
            "INSERT INTO outbox (subject, key, destination, payload, created, next_attempt)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (subject, key) DO NOTHING"
        )
        now = self.clock()
        params = (subject, key, destination, payload, now, now)
        result = await (
            tx.execute(sql, params) if tx is not None else self.store.execute(sql, params)
        )
        self.wake()
        return result.rowcount == 1

    def wake(self) -> None:
        """Have :meth:`run` look at the queue now (after a commit made elsewhere)."""
        self._wake.set()

    # -- delivering -------------------------------------------------------------------

    async def run(
        self,
        send: Sender,
        *,
        on_failed: FailedHook | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Deliver until cancelled: one task per subject with a message due."""
        active: set[str] = set()
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                self._wake = trio.Event()
                heads = await self._due_heads()
                for message in heads:
                    if message.subject not in active:
                        active.add(message.subject)
                        nursery.start_soon(self._deliver_subject, message, send, on_failed, active)
                wait = await self._next_due_in()
                with trio.move_on_after(wait):
                    await self._wake.wait()

    async def _due_heads(self) -> list[OutboxMessage]:
        """The oldest pending message of each subject, if it is due."""
        rows = await self.store.fetchall(
            "SELECT o.* FROM outbox o JOIN (SELECT subject, MIN(id) AS id FROM outbox"
            " WHERE state = 'pending' GROUP BY subject) h ON o.id = h.id"
            " WHERE o.next_attempt <= ? AND o.lease_until <= ?",
            (self.clock(), self.clock()),
        )
        return [_message(row) for row in rows]

    async def _next_due_in(self) -> float:
        row = await self.store.fetchone(
            "SELECT MIN(MAX(next_attempt, lease_until)) FROM outbox WHERE state = 'pending'"
        )
        if row is None or row[0] is None:
            return 3600.0
        due: float = row[0]
        return max(0.0, min(3600.0, due - self.clock()))

    async def _deliver_subject(
        self,
        first: OutboxMessage,
        send: Sender,
        on_failed: FailedHook | None,
        active: set[str],
    ) -> None:
        """Deliver *first*'s subject head by head while messages are due."""
        try:
            message: OutboxMessage | None = first
            while message is not None:
                if not await self._claim(message):
                    return
                try:
                    outcome = await send(message)
                except Exception as err:  # a sender bug must not stop the queue
                    log.exception(
                        "outbox send failed subject=%s key=%s", message.subject, message.key
                    )
                    outcome = Retry(f"{err.__class__.__name__}: {err}")
                if not await self._settle(message, outcome, on_failed):
                    return
                message = await self._head(message.subject)
        finally:
            active.discard(first.subject)
            self.wake()

    async def _claim(self, message: OutboxMessage) -> bool:
        now = self.clock()
        result = await self.store.execute(
            "UPDATE outbox SET lease_until = ?, attempts = attempts + 1"
            " WHERE id = ? AND state = 'pending' AND lease_until <= ?",
            (now + self.lease, message.id, now),
            durable=False,  # a lease lost to a power failure: the message goes again
        )
        return result.rowcount == 1

    async def settled(self) -> None:
        """Wait until the next attempt's outcome has been recorded."""
        await self._settled.wait()

    async def _settle(
        self, message: OutboxMessage, outcome: Outcome, on_failed: FailedHook | None
    ) -> bool:
        """Record *outcome*; True when the subject's next message may go now."""
        try:
            return await self._record(message, outcome, on_failed)
        finally:
            self._settled.set()
            self._settled = trio.Event()

    async def _record(
        self, message: OutboxMessage, outcome: Outcome, on_failed: FailedHook | None
    ) -> bool:
        if isinstance(outcome, Delivered):
            # an acknowledgement lost to a power failure: delivered again, deduplicated
            await self.store.execute(
                "DELETE FROM outbox WHERE id = ?", (message.id,), durable=False
            )
            return True
        attempts = message.attempts + 1
        if isinstance(outcome, Retry) and attempts < self.max_attempts:
            delay = min(self.max_delay, self.base_delay * 2 ** min(attempts - 1, 30))
            delay *= 0.75 + self._random.random() / 2
            await self.store.execute(
                "UPDATE outbox SET next_attempt = ?, lease_until = 0, last_error = ? WHERE id = ?",
                (self.clock() + delay, outcome.reason[:500], message.id),
                durable=False,
            )
            log.info(
                "outbox retry subject=%s key=%s attempt=%d in=%.2fs reason=%s",
                message.subject,
                message.key,
                attempts,
                delay,
                outcome.reason,
            )
            return False
        reason = (
            f"{outcome.code} {outcome.reason}"
            if isinstance(outcome, Refused)
            else f"gave up after {attempts} attempts: {outcome.reason}"
        )
        await self.store.execute(
            "UPDATE outbox SET state = 'failed', lease_until = 0, last_error = ? WHERE id = ?",
            (reason[:500], message.id),
        )
        log.warning(
            "outbox parked subject=%s key=%s reason=%s", message.subject, message.key, reason
        )
        if on_failed is not None:
            await on_failed(message, reason)
        return True  # a parked message no longer holds its subject back

    async def _head(self, subject: str) -> OutboxMessage | None:
        row = await self.store.fetchone(
            "SELECT * FROM outbox WHERE subject = ? AND state = 'pending'"
            " AND next_attempt <= ? ORDER BY id LIMIT 1",
            (subject, self.clock()),
        )
        return _message(row) if row is not None else None

    # -- looking ----------------------------------------------------------------------

    async def stats(self) -> OutboxStats:
        """Pending and failed counts and the oldest pending age, per subject."""
        rows = await self.store.fetchall(
            "SELECT subject, state, COUNT(*), MIN(created) FROM outbox GROUP BY subject, state"
        )
        now = self.clock()
        pending: dict[str, int] = {}
        oldest: dict[str, float] = {}
        failed: dict[str, int] = {}
        for subject, state, count, created in rows:
            if state == "pending":
                pending[subject] = count
                oldest[subject] = max(0.0, now - created)
            else:
                failed[subject] = count
        return OutboxStats(pending, oldest, failed)

    async def failed(self) -> list[OutboxMessage]:
        """Every parked message, oldest first."""
        rows = await self.store.fetchall("SELECT * FROM outbox WHERE state = 'failed' ORDER BY id")
        return [_message(row) for row in rows]

    async def retry_failed(self) -> int:
        """Queue every parked message again; returns how many."""
        result = await self.store.execute(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt = ?, lease_until = 0"
            " WHERE state = 'failed'",
            (self.clock(),),
        )
        self.wake()
        return result.rowcount


async def accept_once(tx: Transaction, subject: str, key: str, *, now: float | None = None) -> bool:
    """Record that *(subject, key)* is being applied in *tx*; False for a duplicate.

    Call it first in the transaction that applies a delivered message: a duplicate
    (the sender did not see our acknowledgement and sent it again) is then
    acknowledged without being applied a second time.
    """
    result = await tx.execute(
        "INSERT INTO received (subject, key, at) VALUES (?, ?, ?)"
        " ON CONFLICT (subject, key) DO NOTHING",
        (subject, key, time.time() if now is None else now),
    )
    return result.rowcount == 1


def _message(row: Row) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"],
        subject=row["subject"],
        key=row["key"],
        destination=row["destination"],
        payload=bytes(row["payload"]),
        created=row["created"],
        attempts=row["attempts"],
        last_error=row["last_error"],
    )
