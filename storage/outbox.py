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
   is one destination's stream, e.g. ``ODS1``): a subject's messages are sent one
   after another, each once the one before it was acknowledged, so a receiver sees
   them in the order they were put.  It works in **rounds**: one transaction claims
   the oldest due messages of every subject not being sent (``UPDATE ... RETURNING``,
   up to :data:`BATCH` per subject, none past one that is backing off), and each
   claimed subject's batch then goes in a task of its own -- a slow receiver holds
   up only its subject.  Each claim is a **lease** (``lease_until``): a message
   whose receiver did not acknowledge within the lease -- or whose sender process
   died mid-attempt -- is attempted again once the lease has run out (a batch stops
   at the lease's end).
3. **acknowledge.**  The ``send`` callable returns :class:`Delivered` only after the
   receiver answered status 0, and a receiver answers 0 only after its *own*
   commit (PROTOCOL.md section 7); the outbox row is then deleted -- by the next
   round, together with every other subject's acknowledgements and in the same
   transaction as the next claim.  A transient failure (receiver down, timeout,
   7006/7007) is :class:`Retry`: the next attempt waits an exponential back-off with
   jitter (``base * 2**attempts``, capped, +-25 %), and the rest of the subject's
   batch is released unsent.  A permanent refusal is :class:`Refused`, and so is a
   message still undelivered after ``max_attempts``: the row is **parked** as
   ``failed`` -- kept, never dropped, listed by :meth:`failed` (``starwrs status``)
   -- and the ``on_failed`` callback lets the sender report it (to the Report
   Manager, as the report's error).  ``retry_failed`` puts parked messages back in
   the queue.
4. **exactly once.**  Delivery is at least once; receivers make it exactly once by
   remembering what they applied: :func:`accept_once` records ``(subject, key)``
   in the receiver's ``received`` table inside the transaction that applies the
   message, and tells a duplicate apart (acknowledged again, applied once; the
   NRL's 6050 is this case).

Only the put must survive a power failure; a round -- leases, back-offs,
acknowledgements -- commits without an fsync (``durable=False``:
``synchronous=NORMAL`` for that transaction; a round that parks is durable) --
losing one only means a message is delivered again, which receivers already
deduplicate -- so a message costs one fsync.  A put alone is one statement in one
crossing to the store's thread (:meth:`~starwrs.storage.sqlite.Store.execute`), a
round one crossing whatever it records (:meth:`~starwrs.storage.sqlite.Store.batch`).
Rounds follow one another at once while little happens (a message alone goes
straight away) and pause up to :data:`LINGER` under load -- four times the last
round's length -- so that the puts and acknowledgements of that time share one
transaction instead of each taking the store's writer for its own.

The interface (:class:`Outbox`: ``put``, ``run``, ``stats``, ``failed``) is what a
NATS JetStream implementation would fill in when one machine is outgrown
(``Nats-Msg-Id`` = the key; DESIGN.md).  Stores add :data:`OUTBOX_MIGRATION` and
:data:`RECEIVED_MIGRATION` to their own migration lists.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio
from starwrs.storage.sqlite import Params, Row, Store, Transaction

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

#: at most this many messages of one subject are claimed at a time
BATCH = 64
#: the longest pause between two rounds of :meth:`Outbox.run`, seconds; the pause
#: is four times the last round's length, so under load the puts and
#: acknowledgements of that time share one round's transaction
LINGER = 0.025

# The claim, one statement: for each subject with pending messages (found by a skip
# scan of the index) that no attempt of this process is sending, its oldest pending
# messages -- at most BATCH, and only those before the first that may not go now
# (backing off, or leased by an attempt in flight): FIFO per subject -- are leased
# and returned.
_CLAIM = (
    "WITH RECURSIVE subjects(subject) AS (SELECT MIN(subject) FROM outbox"
    " WHERE state = 'pending' UNION ALL SELECT (SELECT MIN(subject) FROM outbox"
    " WHERE state = 'pending' AND subject > s.subject) FROM subjects s"
    " WHERE s.subject IS NOT NULL),"
    " head AS (SELECT o.id, o.subject, o.next_attempt, o.lease_until FROM subjects s"
    " JOIN outbox o ON o.id IN (SELECT i.id FROM outbox i WHERE i.state = 'pending'"
    " AND i.subject = s.subject ORDER BY i.id LIMIT :per)"
    " WHERE s.subject NOT IN (SELECT value FROM json_each(:busy))),"
    " stop AS (SELECT subject, MIN(id) AS id FROM head"
    " WHERE next_attempt > :now OR lease_until > :now GROUP BY subject)"
    " UPDATE outbox SET lease_until = :lease, attempts = attempts + 1"
    " WHERE id IN (SELECT h.id FROM head h LEFT JOIN stop t ON t.subject = h.subject"
    " WHERE t.id IS NULL OR h.id < t.id) RETURNING *"
)
#: when the next message of a subject not being sent falls due
_NEXT_DUE = (
    "SELECT MIN(MAX(next_attempt, lease_until)) FROM outbox WHERE state = 'pending'"
    " AND subject NOT IN (SELECT value FROM json_each(:busy))"
)


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
        linger: the longest pause between two delivery rounds, seconds.
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
        linger: float = LINGER,
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
        self.linger = linger
        #: subjects a task of :meth:`run` is sending (the next round claims their next)
        self._active: set[str] = set()
        #: (claimed batch, outcomes so far) of each task that finished, for the next round
        self._reported: list[tuple[list[OutboxMessage], list[tuple[OutboxMessage, Outcome]]]] = []

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
        if subject not in self._active:  # a subject being sent: its report wakes the loop
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
        """Deliver until cancelled.

        Rounds: each round is *one* transaction (one crossing to the store's thread)
        that records the outcomes reported since the last round -- acknowledgements
        of every subject together -- and claims the next messages of every subject
        not being sent; each claimed subject's messages then go, in order, in a task
        of their own, which reports its outcomes for the next round.  A slow
        receiver holds up only its own subject.
        """
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                self._wake = trio.Event()
                began = trio.current_time()
                claimed, lease, wait = await self._round(on_failed)
                ended = trio.current_time()
                for subject, batch in _by_subject(claimed).items():
                    self._active.add(subject)
                    nursery.start_soon(self._deliver_subject, subject, batch, lease, send)
                with trio.move_on_after(wait):
                    await self._wake.wait()
                # rounds take at most a fifth of the time (and never wait more than
                # the linger): a message alone goes at once, a stream of them shares
                # rounds and their transactions
                await trio.sleep_until(ended + min(self.linger, 4 * (ended - began)))

    async def _round(
        self, on_failed: FailedHook | None
    ) -> tuple[list[OutboxMessage], float, float]:
        """Record the reported outcomes and claim what is due, in one transaction.

        Returns the claimed messages, their lease's end and the seconds until more
        falls due.  Claims, leases, back-offs and acknowledgements commit without an
        fsync (losing one only means a message goes again, which receivers
        deduplicate); a round that parks a message is durable.
        """
        reported, self._reported = self._reported, []
        steps, parked = self._outcome_steps(reported)
        now = self.clock()
        busy = json.dumps(sorted(self._active))
        claim = {"now": now, "lease": now + self.lease, "per": BATCH, "busy": busy}
        steps += [(_CLAIM, claim), (_NEXT_DUE, {"busy": busy})]
        try:
            results = await self.store.batch(steps, durable=bool(parked))
        except BaseException:
            self._reported = reported + self._reported  # recorded by the next round
            raise
        finally:
            if reported:
                self._settled.set()
                self._settled = trio.Event()
        for message, reason in parked:
            log.warning(
                "outbox parked subject=%s key=%s reason=%s", message.subject, message.key, reason
            )
            if on_failed is not None:
                try:
                    await on_failed(message, reason)
                except Exception:  # reporting must not stop the queue
                    log.exception("outbox on_failed key=%s", message.key)
        claimed = sorted((_message(r, claimed=True) for r in results[-2]), key=lambda m: m.id)
        due = results[-1][0][0]
        wait = 3600.0 if due is None else max(0.0, min(3600.0, float(due) - self.clock()))
        return claimed, now + self.lease, wait

    async def _deliver_subject(
        self, subject: str, batch: list[OutboxMessage], leased_until: float, send: Sender
    ) -> None:
        """Send *subject*'s claimed messages in order; report the outcomes."""
        outcomes: list[tuple[OutboxMessage, Outcome]] = []
        try:
            for message in batch:
                if self.clock() >= leased_until:
                    break  # the lease ran out: another deliverer may have these now
                try:
                    outcome = await send(message)
                except Exception as err:  # a sender bug must not stop the queue
                    log.exception(
                        "outbox send failed subject=%s key=%s", message.subject, message.key
                    )
                    outcome = Retry(f"{err.__class__.__name__}: {err}")
                outcomes.append((message, outcome))
                if isinstance(outcome, Retry) and message.attempts + 1 < self.max_attempts:
                    break  # a transient failure holds the subject back
        finally:
            self._reported.append((batch, outcomes))
            self._active.discard(subject)
            self.wake()

    async def settled(self) -> None:
        """Wait until the next round has recorded some attempts' outcomes."""
        await self._settled.wait()

    def _outcome_steps(
        self, reported: list[tuple[list[OutboxMessage], list[tuple[OutboxMessage, Outcome]]]]
    ) -> tuple[list[tuple[str, Params]], list[tuple[OutboxMessage, str]]]:
        """The statements recording *reported* outcomes; the messages they park."""
        steps: list[tuple[str, Params]] = []
        delivered: list[int] = []
        unsent: list[int] = []
        parked: list[tuple[OutboxMessage, str]] = []
        for batch, outcomes in reported:
            unsent += [m.id for m in batch[len(outcomes) :]]
            for message, outcome in outcomes:
                attempts = message.attempts + 1
                if isinstance(outcome, Delivered):
                    delivered.append(message.id)
                elif isinstance(outcome, Retry) and attempts < self.max_attempts:
                    steps.append(self._retry_step(message, outcome, attempts))
                else:
                    reason = (
                        f"{outcome.code} {outcome.reason}"
                        if isinstance(outcome, Refused)
                        else f"gave up after {attempts} attempts: {outcome.reason}"
                    )
                    steps.append(
                        (
                            "UPDATE outbox SET state = 'failed', lease_until = 0, last_error = ?"
                            " WHERE id = ?",
                            (reason[:500], message.id),
                        )
                    )
                    parked.append((message, reason))  # no longer holds its subject back
        if delivered:  # the receiver committed each: acknowledged together
            steps.append(
                (
                    "DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))",
                    (json.dumps(delivered),),
                )
            )
        if unsent:  # claimed but not attempted: released, the attempt not counted
            steps.append(
                (
                    "UPDATE outbox SET lease_until = 0, attempts = attempts - 1"
                    " WHERE id IN (SELECT value FROM json_each(?)) AND state = 'pending'",
                    (json.dumps(unsent),),
                )
            )
        return steps, parked

    def _retry_step(
        self, message: OutboxMessage, outcome: Retry, attempts: int
    ) -> tuple[str, Params]:
        delay = min(self.max_delay, self.base_delay * 2 ** min(attempts - 1, 30))
        delay *= 0.75 + self._random.random() / 2
        log.info(
            "outbox retry subject=%s key=%s attempt=%d in=%.2fs reason=%s",
            message.subject,
            message.key,
            attempts,
            delay,
            outcome.reason,
        )
        return (
            "UPDATE outbox SET next_attempt = ?, lease_until = 0, last_error = ? WHERE id = ?",
            (self.clock() + delay, outcome.reason[:500], message.id),
        )

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


def _by_subject(messages: list[OutboxMessage]) -> dict[str, list[OutboxMessage]]:
    batches: dict[str, list[OutboxMessage]] = {}
    for message in messages:
        batches.setdefault(message.subject, []).append(message)
    return batches


def _message(row: Row, *, claimed: bool = False) -> OutboxMessage:
    """A row as a message; *claimed*: a claim's row, whose attempts count this one."""
    return OutboxMessage(
        id=row["id"],
        subject=row["subject"],
        key=row["key"],
        destination=row["destination"],
        payload=bytes(row["payload"]),
        created=row["created"],
        attempts=row["attempts"] - 1 if claimed else row["attempts"],
        last_error=row["last_error"],
    )
