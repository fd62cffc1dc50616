"""Sessions (the seed's cookie jar) and asynchronous tickets.

Theory of operation
-------------------
A **session** starts at logon and is named by a random key -- 256 bits from
:mod:`secrets`, URL-safe text -- that the web server sets as the session cookie
and the dispatcher receives in every frame's ``key`` field.  The table stores
only ``sha256(key)``: a copy of the database does not yield live cookies, and
log lines use the hash (``Session.session_id``) rather than the key.  A session
is alive while both clocks hold:

* idle: ``now - last_seen < idle_timeout`` (default 15 min; every use *touches*
  it, moving ``last_seen`` forward),
* absolute: ``now - created < absolute_timeout`` (default 12 h, never extended).

Logoff deletes the row (so the key is dead at once, everywhere); a new logon
always makes a new key, optionally ending the one it replaces in the same
transaction.  Expired rows are deleted lazily by :meth:`SessionStore.purge_expired`;
until then they are refused like unknown keys (status 7004).

To keep the hot path cheap, :meth:`SessionStore.touch` reads with a point read
(stdlib ``sqlite3`` on the trio thread, :meth:`~starwrs.storage.sqlite.Store.point_fetchone`:
nothing is cached, so a logoff by any process is seen by the next read) and writes
only when ``last_seen`` is at least ``touch_interval`` old; that write re-checks
both timeouts inside the UPDATE, so a session that expired or was logged off in
between is refused, never revived.

An **asynchronous ticket** (PROTOCOL.md section 3, mechanisms 1 and 2) is an
opaque random id (128 bits) bound to the session that asked for the work and to
the target proxy.  It is ``pending`` until the dispatcher stores the proxy's
final answer (status + payload bytes), then ``done``.  A done result is kept
until it is first fetched and then for ``ticket_ttl`` (default 1 h); every
ticket also dies with its session (``ON DELETE CASCADE``).  A poll for an id
that does not exist or has expired is :data:`ErrorCode.UNKNOWN_TICKET` (7010);
for a live ticket of another session it is :data:`ErrorCode.NOT_ENTITLED` (7003).
The caller (the dispatcher) has already resolved the polling session itself.
A ticket records which dispatcher (its index) does the work: when that dispatcher
stops, or its successor starts after a crash, :meth:`SessionStore.abandon_tickets`
settles every ticket it left pending with a final error, so a poll never waits
for work that no process is doing any more.

Each dispatcher takes a **boot id** at start (:meth:`SessionStore.new_boot`, table
``dispatcher_boots``): the high bits of every serial it assigns, so serials never
collide across the dispatchers sharing this file, nor across their restarts.

Time comes from an injectable ``clock`` (wall-clock seconds, shared by every
process that opens the file), so tests drive expiry deterministically.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.storage.sqlite import Row, Store, open_store

__all__ = [
    "MIGRATIONS",
    "Clock",
    "PurgeCounts",
    "Session",
    "SessionConfig",
    "SessionStore",
    "Ticket",
    "TicketState",
    "hash_key",
    "open_session_store",
]

#: Seconds since the epoch; ``time.time`` in production, a fake in tests.
Clock = Callable[[], float]

#: Longest session key accepted (the frame header's ``klen`` is one byte).
MAX_KEY_LENGTH = 255

MIGRATIONS: list[str] = [
    # 1: sessions and tickets
    """
    CREATE TABLE sessions (
        key_hash  BLOB PRIMARY KEY,          -- sha256(session key)
        user_id   TEXT NOT NULL,
        created   REAL NOT NULL,
        last_seen REAL NOT NULL,
        data      BLOB NOT NULL DEFAULT x''  -- opaque, for the web/dispatcher
    ) WITHOUT ROWID;
    CREATE INDEX sessions_user ON sessions (user_id);
    CREATE INDEX sessions_last_seen ON sessions (last_seen);
    CREATE INDEX sessions_created ON sessions (created);

    CREATE TABLE tickets (
        ticket_id TEXT PRIMARY KEY,
        key_hash  BLOB NOT NULL REFERENCES sessions (key_hash) ON DELETE CASCADE,
        target    TEXT NOT NULL,
        created   REAL NOT NULL,
        state     TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
        status    INTEGER,
        payload   BLOB,
        completed REAL,
        fetched   REAL,
        expires   REAL                      -- NULL until first fetched
    );
    CREATE INDEX tickets_session ON tickets (key_hash);
    CREATE INDEX tickets_expires ON tickets (expires) WHERE expires IS NOT NULL;
    """,
    # 2: dispatcher boots -- one row per dispatcher start; the id numbers its frames
    """
    CREATE TABLE dispatcher_boots (
        boot_id    INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after deletes
        started    REAL NOT NULL,
        dispatcher INTEGER NOT NULL,                   -- index in the deployment
        pid        INTEGER NOT NULL
    );
    """,
    # 3: which dispatcher runs each ticket, so its successor can settle what it left
    """
    ALTER TABLE tickets ADD COLUMN dispatcher INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX tickets_pending ON tickets (dispatcher) WHERE state = 'pending';
    """,
]


def hash_key(key: str) -> bytes:
    """The stored form of a session key: its SHA-256 digest.

    Args:
        key: the session key (cookie value).

    Returns:
        32 bytes.
    """
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Timeouts, in seconds.

    Attributes:
        idle_timeout: a session unused this long is over (default 15 min).
        absolute_timeout: a session this old is over, used or not (default 12 h).
        ticket_ttl: how long a done ticket's result stays after its first fetch.
        touch_interval: ``last_seen`` is written at most this often per session.
    """

    idle_timeout: float = 15 * 60.0
    absolute_timeout: float = 12 * 3600.0
    ticket_ttl: float = 3600.0
    touch_interval: float = 1.0


@dataclass(frozen=True, slots=True)
class Session:
    """A live session.

    Attributes:
        session_id: hex of ``sha256(key)`` -- safe to log, useless as a cookie.
        user_id: who logged on.
        created: logon time.
        last_seen: last use.
        expires: when it ends if not used again (the earlier of the two timeouts).
        data: opaque bytes the web server / dispatcher attached.
    """

    session_id: str
    user_id: str
    created: float
    last_seen: float
    expires: float
    data: bytes


class TicketState(StrEnum):
    """Where an asynchronous request stands."""

    PENDING = "pending"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Ticket:
    """An asynchronous request's ticket.

    Attributes:
        ticket_id: the opaque id handed to the client.
        target: the proxy doing the work (``RM``, ``INBX``, ...).
        state: pending or done.
        status: the final header status once done (0 or an error code).
        payload: the final response payload once done.
        created: when it was issued.
        completed: when the result arrived.
        fetched: when the owner first fetched the result.
        expires: when a fetched result is dropped.
    """

    ticket_id: str
    target: str
    state: TicketState
    status: int | None
    payload: bytes | None
    created: float
    completed: float | None
    fetched: float | None
    expires: float | None


class PurgeCounts(NamedTuple):
    """Rows removed by :meth:`SessionStore.purge_expired`."""

    sessions: int
    tickets: int


def _no_session() -> StarwrsError:
    return StarwrsError(ErrorCode.NO_SESSION, "no session, expired or logged off")


def _unknown_ticket() -> StarwrsError:
    return StarwrsError(ErrorCode.UNKNOWN_TICKET, "unknown or expired ticket")


def _ticket(row: Row) -> Ticket:
    return Ticket(
        ticket_id=row["ticket_id"],
        target=row["target"],
        state=TicketState(row["state"]),
        status=row["status"],
        payload=None if row["payload"] is None else bytes(row["payload"]),
        created=row["created"],
        completed=row["completed"],
        fetched=row["fetched"],
        expires=row["expires"],
    )


class SessionStore:
    """Sessions and tickets on a :class:`~starwrs.storage.sqlite.Store` opened
    with :data:`MIGRATIONS` (see :func:`open_session_store`).

    Args:
        db: the open store.
        config: timeouts.
        clock: wall-clock seconds.
    """

    def __init__(
        self, db: Store, config: SessionConfig | None = None, clock: Clock = time.time
    ) -> None:
        self.db = db
        self.config = config or SessionConfig()
        self.clock = clock
        #: key hashes whose ``last_seen`` write is in progress in this process
        self._touching: set[bytes] = set()

    # -- sessions -----------------------------------------------------------------

    def _session(self, row: Row) -> Session:
        cfg = self.config
        created, last_seen = float(row["created"]), float(row["last_seen"])
        return Session(
            session_id=bytes(row["key_hash"]).hex(),
            user_id=row["user_id"],
            created=created,
            last_seen=last_seen,
            expires=min(last_seen + cfg.idle_timeout, created + cfg.absolute_timeout),
            data=bytes(row["data"]),
        )

    def _alive(self, row: Row, now: float) -> bool:
        cfg = self.config
        return (
            now - float(row["last_seen"]) < cfg.idle_timeout
            and now - float(row["created"]) < cfg.absolute_timeout
        )

    async def start(
        self, user_id: str, *, data: bytes = b"", replacing: str | None = None
    ) -> tuple[str, Session]:
        """Start a session (logon).

        Args:
            user_id: the user who logged on.
            data: opaque bytes to keep with the session.
            replacing: a session key the client still held; that session ends in
                the same transaction (key rotation at logon).

        Returns:
            ``(key, session)``: the new key -- give it to the client, it is not
            stored -- and the session.
        """
        key = secrets.token_urlsafe(32)
        now = self.clock()
        async with self.db.transaction() as tx:
            if replacing is not None:
                await tx.execute("DELETE FROM sessions WHERE key_hash = ?", (hash_key(replacing),))
            await tx.execute(
                "INSERT INTO sessions (key_hash, user_id, created, last_seen, data)"
                " VALUES (?, ?, ?, ?, ?)",
                (hash_key(key), user_id, now, now, data),
            )
            row = await tx.fetchone("SELECT * FROM sessions WHERE key_hash = ?", (hash_key(key),))
        assert row is not None
        return key, self._session(row)

    async def peek(self, key: str) -> Session:
        """The live session for a key, without touching it.

        Args:
            key: the session key.

        Returns:
            The :class:`Session`.

        Raises:
            StarwrsError: :data:`ErrorCode.NO_SESSION` for an unknown, expired or
                ended key.
        """
        if not key or len(key) > MAX_KEY_LENGTH:
            raise _no_session()
        # an indexed point read: straight to sqlite3 on the trio thread (storage.sqlite)
        row = await self.db.point_fetchone(
            "SELECT * FROM sessions WHERE key_hash = ?", (hash_key(key),)
        )
        if row is None or not self._alive(row, self.clock()):
            raise _no_session()
        return self._session(row)

    async def touch(self, key: str) -> Session:
        """Resolve a key to its live session and record the use.

        Args:
            key: the session key.

        Returns:
            The :class:`Session`, with ``last_seen`` = now (to ``touch_interval``).

        Raises:
            StarwrsError: :data:`ErrorCode.NO_SESSION` for an unknown, expired or
                ended key.
        """
        session = await self.peek(key)
        now = self.clock()
        if now - session.last_seen < self.config.touch_interval:
            return session
        key_hash = hash_key(key)
        if key_hash in self._touching:
            # another request of this session is writing the same use right now
            # (concurrent requests of one session need not queue for the writer)
            return session
        cfg = self.config
        self._touching.add(key_hash)
        try:
            async with self.db.transaction() as tx:
                result = await tx.execute(
                    "UPDATE sessions SET last_seen = max(last_seen, :now)"
                    " WHERE key_hash = :h AND :now - last_seen < :idle AND :now - created < :abs",
                    {
                        "now": now,
                        "h": key_hash,
                        "idle": cfg.idle_timeout,
                        "abs": cfg.absolute_timeout,
                    },
                )
                if result.rowcount != 1:
                    raise _no_session()
                row = await tx.fetchone("SELECT * FROM sessions WHERE key_hash = ?", (key_hash,))
        finally:
            self._touching.discard(key_hash)
        assert row is not None
        return self._session(row)

    async def set_data(self, key: str, data: bytes) -> None:
        """Replace the opaque bytes kept with a live session.

        Raises:
            StarwrsError: :data:`ErrorCode.NO_SESSION` if the session is not live.
        """
        await self.peek(key)
        result = await self.db.execute(
            "UPDATE sessions SET data = ? WHERE key_hash = ?", (data, hash_key(key))
        )
        if result.rowcount != 1:
            raise _no_session()

    async def end(self, key: str) -> bool:
        """End a session (logoff); its tickets go with it.

        Args:
            key: the session key.

        Returns:
            True if a session (live or expired) was removed.
        """
        result = await self.db.execute("DELETE FROM sessions WHERE key_hash = ?", (hash_key(key),))
        return result.rowcount > 0

    async def end_user(self, user_id: str) -> int:
        """End every session of a user (disabled user, password change).

        Returns:
            The number of sessions ended.
        """
        result = await self.db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
        return result.rowcount

    async def count_live(self, user_id: str | None = None) -> int:
        """Number of live sessions, of one user or of everyone."""
        cfg, now = self.config, self.clock()
        sql = "SELECT count(*) FROM sessions WHERE last_seen > ? AND created > ?"
        params: tuple[object, ...] = (now - cfg.idle_timeout, now - cfg.absolute_timeout)
        if user_id is not None:
            sql += " AND user_id = ?"
            params += (user_id,)
        row = await self.db.fetchone(sql, params)
        return int(row[0]) if row is not None else 0

    def count_live_now(self) -> float:
        """Number of live sessions, read synchronously (``starwrs_active_sessions``).

        Returns NaN when the file cannot be read right now (busy or closed).
        """
        cfg, now = self.config, self.clock()
        rows = self.db.fetch_now(
            "SELECT count(*) FROM sessions WHERE last_seen > ? AND created > ?",
            (now - cfg.idle_timeout, now - cfg.absolute_timeout),
        )
        return float(rows[0][0]) if rows else float("nan")

    async def purge_expired(self) -> PurgeCounts:
        """Delete expired sessions (with their tickets) and expired ticket results.

        Returns:
            The rows removed (tickets counted only when removed on their own).
        """
        cfg, now = self.config, self.clock()
        async with self.db.transaction() as tx:
            sessions = await tx.execute(
                "DELETE FROM sessions WHERE last_seen <= ? OR created <= ?",
                (now - cfg.idle_timeout, now - cfg.absolute_timeout),
            )
            tickets = await tx.execute(
                "DELETE FROM tickets WHERE expires IS NOT NULL AND expires <= ?", (now,)
            )
        return PurgeCounts(sessions.rowcount, tickets.rowcount)

    # -- tickets -------------------------------------------------------------------

    async def issue_ticket(self, key: str, target: str, dispatcher: int = 0) -> Ticket:
        """Issue a pending ticket for an asynchronous request (mechanism 1).

        Args:
            key: the requesting session's key (already resolved by the caller).
            target: the proxy that will do the work.
            dispatcher: the index of the dispatcher doing it (see
                :meth:`abandon_tickets`).

        Returns:
            The new pending :class:`Ticket`.

        Raises:
            StarwrsError: :data:`ErrorCode.NO_SESSION` if the session does not exist.
        """
        ticket_id = secrets.token_urlsafe(16)
        now = self.clock()
        try:
            async with self.db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO tickets (ticket_id, key_hash, target, created, dispatcher)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (ticket_id, hash_key(key), target, now, int(dispatcher)),
                )
                row = await tx.fetchone("SELECT * FROM tickets WHERE ticket_id = ?", (ticket_id,))
        except sqlite3.IntegrityError as err:  # the foreign key: no such session
            raise _no_session() from err
        assert row is not None
        return _ticket(row)

    async def complete_ticket(self, ticket_id: str, status: int, payload: bytes) -> None:
        """Store the final answer of a pending ticket.

        Args:
            ticket_id: the ticket.
            status: the final header status (0 or an error code).
            payload: the final response payload.

        Raises:
            StarwrsError: :data:`ErrorCode.UNKNOWN_TICKET` if there is no pending
                ticket with that id (unknown, already done, or its session ended).
        """
        result = await self.db.execute(
            "UPDATE tickets SET state = 'done', status = ?, payload = ?, completed = ?"
            " WHERE ticket_id = ? AND state = 'pending'",
            (int(status), payload, self.clock(), ticket_id),
        )
        if result.rowcount != 1:
            raise _unknown_ticket()

    async def abandon_tickets(self, dispatcher: int, status: int, payload: bytes) -> int:
        """Settle every ticket dispatcher *dispatcher* left pending, as *status*.

        For a dispatcher that stops (its unfinished work is cancelled) and for one
        that starts (a predecessor with its index may have died mid-work): nothing
        will complete those tickets, so their owners get this final answer.

        Args:
            dispatcher: the dispatcher's index in the deployment.
            status: the final header status (7006: the work was lost).
            payload: the final response payload.

        Returns:
            How many tickets were settled.
        """
        result = await self.db.execute(
            "UPDATE tickets SET state = 'done', status = ?, payload = ?, completed = ?"
            " WHERE dispatcher = ? AND state = 'pending'",
            (int(status), payload, self.clock(), int(dispatcher)),
        )
        return int(result.rowcount)

    async def poll_ticket(self, key: str, ticket_id: str) -> Ticket:
        """Look a ticket up for its owner (mechanism 2).

        The first poll that finds the result done marks it fetched and starts its
        TTL; later polls within the TTL get the same result again.

        Args:
            key: the polling session's key (already resolved by the caller).
            ticket_id: the ticket id from the client.

        Returns:
            The :class:`Ticket`: ``state`` pending, or done with status and payload.

        Raises:
            StarwrsError: :data:`ErrorCode.UNKNOWN_TICKET` (7010) for an unknown or
                expired ticket; :data:`ErrorCode.NOT_ENTITLED` (7003) for another
                session's ticket.
        """
        now = self.clock()
        row = await self.db.fetchone("SELECT * FROM tickets WHERE ticket_id = ?", (ticket_id,))
        if row is None or (row["expires"] is not None and now >= row["expires"]):
            raise _unknown_ticket()
        if not hmac.compare_digest(bytes(row["key_hash"]), hash_key(key)):
            raise StarwrsError(ErrorCode.NOT_ENTITLED, "ticket belongs to another session")
        if row["state"] == TicketState.DONE.value and row["fetched"] is None:
            async with self.db.transaction() as tx:
                await tx.execute(
                    "UPDATE tickets SET fetched = ?, expires = ?"
                    " WHERE ticket_id = ? AND fetched IS NULL",
                    (now, now + self.config.ticket_ttl, ticket_id),
                )
                row = await tx.fetchone("SELECT * FROM tickets WHERE ticket_id = ?", (ticket_id,))
            if row is None:  # its session ended meanwhile
                raise _unknown_ticket()
        return _ticket(row)

    # -- dispatcher boots ----------------------------------------------------------

    async def new_boot(self, dispatcher: int = 0) -> int:
        """Record a dispatcher start and return its boot id (docs/runtime.md "Serials").

        Ids come from ``AUTOINCREMENT``: unique across every process sharing the
        file and never reused, so ``boot_id << 40 | counter`` never repeats.

        Args:
            dispatcher: the dispatcher's index in the deployment (for the record).

        Returns:
            The new boot id (1, 2, ...).
        """
        result = await self.db.execute(
            "INSERT INTO dispatcher_boots (started, dispatcher, pid) VALUES (?, ?, ?)",
            (self.clock(), int(dispatcher), os.getpid()),
        )
        assert result.lastrowid is not None
        return int(result.lastrowid)


@asynccontextmanager
async def open_session_store(
    path: Path | str,
    *,
    config: SessionConfig | None = None,
    clock: Clock = time.time,
    durable: bool = False,
) -> AsyncIterator[SessionStore]:
    """Open the sessions database (creating and migrating it).

    Args:
        path: the SQLite file, e.g. ``STATE/sessions.db``; shared by the web
            server and the dispatchers.
        config: timeouts.
        clock: wall-clock seconds.
        durable: fsync every commit (a crash otherwise may forget the last
            logons and touches, which only logs those users off).

    Yields:
        The :class:`SessionStore`.
    """
    async with open_store(path, MIGRATIONS, durable=durable) as db:
        yield SessionStore(db, config, clock)
