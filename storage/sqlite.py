"""SQLite for trio: one writer, a few readers, numbered migrations.

Theory of operation
-------------------
Every operational store of starwrs (sessions and tickets, order entry, the
report inventory, the inbox, the delivery queue) is one SQLite file reached
through :func:`open_store`.  This module and its :mod:`._aio` are the only ones
of starwrs that touch asyncio: the connections are ``aiosqlite`` connections
(each runs its own worker thread), and trio reaches them through ``trio-asyncio``
-- an asyncio event loop that runs *inside* the trio run, in a background task of the store
(``trio_asyncio.open_loop()``), for as long as the store is open.  Every call
crosses over by ``trio_asyncio.aio_as_trio(..., loop=loop)`` with the loop
passed explicitly, so a store can be used from any trio task, including tasks
of a nursery opened before the store.  The body of ``async with open_store()``
runs in the nursery that holds that background task; an exception it raises is
unwrapped from trio's exception group, so callers see their own exception.

The shape follows datasette's ``database.py``:

* **one writer at a time** -- a single write connection behind a
  :class:`trio.Lock`.  :meth:`Store.transaction` holds the lock, issues
  ``BEGIN IMMEDIATE`` (so another *process* writing the same file waits for
  the busy timeout instead of failing half-way), and ends with ``COMMIT``, or
  ``ROLLBACK`` on any exception including cancellation.  The lock is not
  re-entrant: inside a transaction use the :class:`Transaction` object, not
  the store.  :meth:`Store.execute` (one statement, in autocommit mode) and
  :meth:`Store.batch` (a few statements known beforehand) cost one trip to the
  connection's thread instead of one per statement.
* **separate read connections** (``PRAGMA query_only``) from a small pool; in
  WAL mode a reader never waits for the writer and sees the last committed
  state.  Reads made through a :class:`Transaction` go to the write
  connection and see that transaction's own changes.
* **point reads** (:meth:`Store.point_fetchone`, :meth:`Store.point_fetchall`):
  an indexed lookup that returns a row or a few -- a session by its key hash, a
  user, a user's entitlements -- costs ~7 µs on a stdlib ``sqlite3`` connection
  called right on the trio thread, and ~210 µs (170 µs of CPU) through aiosqlite
  and trio-asyncio, whose thread hop and two event loops are the whole cost
  (DESIGN.md "SQLite").  So the store keeps one more read connection, plain
  ``sqlite3`` and ``query_only``, for them.  It never waits: its busy timeout is 0
  and in WAL mode a reader takes no lock a writer holds, so the trio thread is
  blocked only for the statement itself; should SQLite ever answer "busy" or
  "locked" (a checkpoint resetting the WAL, another process recovering it) the
  read goes to a pooled aiosqlite reader instead.  Only statements that read a
  bounded number of rows through an index belong there; scans stay on the pool.
* every connection has ``foreign_keys=ON`` and a ``busy_timeout``; the file is
  put in WAL mode once, by the writer.
* **migrations** are a list of SQL scripts; script *n* (1-based) brings the
  schema to version *n*, recorded in ``PRAGMA user_version``.  Each pending
  script runs in its own ``BEGIN IMMEDIATE`` transaction together with the
  ``user_version`` bump, after re-reading the version inside that transaction,
  so two processes opening the same file at once apply each script exactly
  once.  Scripts are split into statements with :func:`sqlite3.complete_statement`
  (``executescript`` would commit on its own).  A file whose version is newer
  than the list is refused.  One file = one list = one schema owner.

Cancellation: trio-asyncio delivers a trio cancel as one asyncio
``CancelledError`` and waits for the coroutine to finish; a statement already
handed to an aiosqlite thread still completes, and the ``ROLLBACK`` that the
transaction issues (shielded) is queued behind it on the same connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

import aiosqlite
import trio
import trio_asyncio
from starwrs.storage._aio import (
    Params,
    Row,
    WriteResult,
    aio_batch,
    aio_commit,
    aio_connect,
    aio_fetchall,
    aio_fetchone,
    aio_plain,
    aio_rollback,
    aio_script,
    aio_write,
    aio_write_alone,
    aio_write_many,
)

__all__ = [
    "MigrationError",
    "Params",
    "Row",
    "Store",
    "Transaction",
    "WriteResult",
    "open_store",
    "split_statements",
]

_T = TypeVar("_T")


class MigrationError(Exception):
    """The schema could not be brought to the version the code expects.

    Attributes:
        version: the migration (1-based) that failed, or the file's version when
            the file is newer than the code.
    """

    def __init__(self, version: int, message: str) -> None:
        super().__init__(f"schema version {version}: {message}")
        self.version = version


def split_statements(script: str) -> list[str]:
    """Split an SQL script into complete statements, the way the sqlite3 shell does.

    Args:
        script: one or more statements separated by ``;`` (triggers, quoted
            semicolons and comments are handled by SQLite's own tokenizer).

    Returns:
        The statements in order, blank ones dropped (the last one may lack its ``;``).

    Raises:
        ValueError: the script ends with an incomplete statement.
    """
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                statements.append(pending.strip())
            pending = ""
    rest = pending[:-1].strip()  # drop the ";" added after the last piece
    if rest:
        # a last statement without its ";", or a trailing comment
        if not sqlite3.complete_statement(rest + "\n;"):
            raise ValueError(f"incomplete SQL statement at end of script: {rest[:60]!r}")
        statements.append(rest)
    return statements


# -- trio side ------------------------------------------------------------------


class _Conn:
    """One aiosqlite connection seen from trio through a given trio-asyncio loop."""

    __slots__ = ("_loop", "raw")

    def __init__(self, loop: Any, raw: aiosqlite.Connection) -> None:
        self._loop = loop
        self.raw = raw

    async def call(self, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        return cast(_T, await trio_asyncio.aio_as_trio(fn, loop=self._loop)(self.raw, *args))

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await trio_asyncio.aio_as_trio(self.raw.close, loop=self._loop)()


class Transaction:
    """A write transaction in progress; obtained from :meth:`Store.transaction`.

    All statements, reads included, run on the write connection inside the
    transaction.  The object is dead once its ``async with`` block ends.
    """

    def __init__(self, conn: _Conn) -> None:
        self._conn: _Conn | None = conn

    def _live(self) -> _Conn:
        if self._conn is None:
            raise trio.ClosedResourceError("transaction already ended")
        return self._conn

    async def execute(self, sql: str, params: Params = ()) -> WriteResult:
        """Run one statement.

        Args:
            sql: one SQL statement with ``?`` or ``:name`` placeholders.
            params: its parameters.

        Returns:
            The :class:`WriteResult`.

        Raises:
            sqlite3.Error: as SQLite reports it (constraint, syntax, ...).
            trio.ClosedResourceError: the transaction has ended.
        """
        return await self._live().call(aio_write, sql, params)

    async def executemany(self, sql: str, seq: Iterable[Params]) -> int:
        """Run one statement once per parameter set.

        Args:
            sql: one SQL statement.
            seq: parameter sets.

        Returns:
            The total number of rows changed.

        Raises:
            sqlite3.Error: as SQLite reports it.
            trio.ClosedResourceError: the transaction has ended.
        """
        result = await self._live().call(aio_write_many, sql, list(seq))
        return result.rowcount

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """First row of a query, seeing this transaction's changes (or None)."""
        return await self._live().call(aio_fetchone, sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of a query, seeing this transaction's changes."""
        return await self._live().call(aio_fetchall, sql, params)


class Store:
    """An open SQLite file: one write connection, a pool of read connections.

    Create with :func:`open_store`; do not construct directly.

    Attributes:
        path: the database file.
        schema_version: ``PRAGMA user_version`` after migrations.
    """

    def __init__(
        self,
        path: Path,
        writer: _Conn,
        readers: list[_Conn],
        direct: sqlite3.Connection | None = None,
    ) -> None:
        self.path = path
        self.schema_version = 0
        #: ``PRAGMA synchronous`` of the writer (``FULL`` or ``NORMAL``, see open_store)
        self.synchronous = "FULL"
        self._direct = direct
        self._writer = writer
        self._write_lock = trio.Lock()
        self._idle_readers = list(readers)
        self._all_readers = list(readers)
        self._reader_slots = trio.Semaphore(len(readers))
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError(f"store {self.path} is closed")

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[Transaction]:
        """Hold the write lock and run ``BEGIN IMMEDIATE`` ... ``COMMIT``.

        Args:
            durable: False for a transaction whose loss in a power failure does no
                harm (bookkeeping a later durable commit or a retry repairs, such
                as an outbox lease): it commits with ``synchronous=NORMAL``, so it
                costs no fsync; the next durable commit syncs it along with its own
                (the WAL is written in order).  Ignored on a non-durable store.

        Yields:
            A :class:`Transaction` for the statements.

        Raises:
            sqlite3.OperationalError: another process held the file's write lock
                for longer than the busy timeout.
            RuntimeError: the calling task already holds a transaction (the lock
                is not re-entrant).
            trio.ClosedResourceError: the store is closed.

        Any exception (or cancellation) inside the block rolls back, shielded
        from cancellation, and propagates.  ``COMMIT`` itself is shielded, so a
        block that finished is committed or fails with SQLite's error -- never
        left in doubt by a cancellation.
        """
        self._check_open()
        async with self._write_lock:
            self._check_open()
            conn = self._writer
            tx = Transaction(conn)
            relaxed = not durable and self.synchronous == "FULL"
            try:
                if relaxed:  # one crossing each way, like a durable transaction
                    await conn.call(aio_script, "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE;")
                else:
                    await conn.call(aio_plain, "BEGIN IMMEDIATE")
                yield tx
                tx._conn = None
                with trio.CancelScope(shield=True):
                    if relaxed:  # executescript commits the open transaction first
                        await conn.call(aio_script, "PRAGMA synchronous = FULL;")
                    else:
                        await conn.call(aio_commit)
            except BaseException:
                tx._conn = None
                with trio.CancelScope(shield=True):
                    # queued behind whatever a cancelled call left running on the
                    # connection's thread; a no-op when no transaction is open
                    await conn.call(aio_rollback)
                    if relaxed:
                        await conn.call(aio_plain, "PRAGMA synchronous = FULL")
                raise

    async def execute(self, sql: str, params: Params = (), *, durable: bool = True) -> WriteResult:
        """Run one write statement in its own transaction.

        Args:
            sql: one SQL statement.
            params: its parameters.
            durable: see :meth:`transaction`.

        Returns:
            The :class:`WriteResult`.

        Raises:
            sqlite3.Error: as SQLite reports it.
            trio.ClosedResourceError: the store is closed.

        One statement is atomic on its own, so it runs in SQLite's autocommit mode:
        one crossing instead of three (``BEGIN``, the statement, ``COMMIT``); a write
        statement takes the file's write lock when it starts, as ``BEGIN IMMEDIATE``
        would.  Shielded like a ``COMMIT``: once begun, it is committed or fails.
        """
        self._check_open()
        async with self._write_lock:
            self._check_open()
            relaxed = not durable and self.synchronous == "FULL"
            with trio.CancelScope(shield=True):
                result = await self._writer.call(aio_write_alone, sql, params, relaxed)
        return result

    async def batch(
        self, steps: Sequence[tuple[str, Params]], *, durable: bool = True
    ) -> list[list[Row]]:
        """Run a few statements in one transaction and one crossing; each one's rows.

        For a transaction whose statements are all known beforehand (an outbox's
        claim with ``UPDATE ... RETURNING``, or its acknowledgements and next
        claim): ``BEGIN IMMEDIATE``, the statements, ``COMMIT`` cost one trip to the
        connection's thread and back instead of one each.

        Args:
            steps: (sql, params) pairs, run in order.
            durable: see :meth:`transaction`.

        Returns:
            The rows each statement returned (``[]`` for one that returns none).

        Raises:
            sqlite3.Error: as SQLite reports it (everything is rolled back).
            trio.ClosedResourceError: the store is closed.
        """
        self._check_open()
        async with self._write_lock:
            self._check_open()
            relaxed = not durable and self.synchronous == "FULL"
            with trio.CancelScope(shield=True):
                results = await self._writer.call(aio_batch, list(steps), relaxed)
        return results

    async def executemany(self, sql: str, seq: Iterable[Params]) -> int:
        """Run one statement per parameter set, all in one transaction.

        Returns:
            The total number of rows changed.

        Raises:
            sqlite3.Error: as SQLite reports it.
            trio.ClosedResourceError: the store is closed.
        """
        async with self.transaction() as tx:
            return await tx.executemany(sql, seq)

    async def _read(self, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        self._check_open()
        async with self._reader_slots:
            self._check_open()
            conn = self._idle_readers.pop()
            try:
                return await conn.call(fn, *args)
            finally:
                self._idle_readers.append(conn)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """First row of a read-only query on a read connection.

        Args:
            sql: one SELECT (a read connection refuses writes).
            params: its parameters.

        Returns:
            The first row, or None.

        Raises:
            sqlite3.Error: as SQLite reports it.
            trio.ClosedResourceError: the store is closed.
        """
        return await self._read(aio_fetchone, sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of a read-only query on a read connection.

        Raises:
            sqlite3.Error: as SQLite reports it.
            trio.ClosedResourceError: the store is closed.
        """
        return await self._read(aio_fetchall, sql, params)

    async def point_fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """First row of an indexed point read, on the trio thread (see the module doc).

        For a statement that reads a bounded number of rows through an index; it
        blocks the trio thread for as long as SQLite takes (microseconds), and sees
        the last committed state like any read connection.

        Raises:
            sqlite3.Error: as SQLite reports it.
            trio.ClosedResourceError: the store is closed.
        """
        rows = self._point(sql, params)
        if rows is None:
            return await self.fetchone(sql, params)
        return rows[0] if rows else None

    async def point_fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of an indexed point read, on the trio thread (see the module doc).

        Raises:
            sqlite3.Error: as SQLite reports it.
            trio.ClosedResourceError: the store is closed.
        """
        rows = self._point(sql, params)
        if rows is None:
            return await self.fetchall(sql, params)
        return rows

    def fetch_now(self, sql: str, params: Params = ()) -> list[Row] | None:
        """Rows of a short read, synchronously (a metric read at scrape time).

        Returns:
            The rows, or None when SQLite is busy or the store is closed.
        """
        if self._closed:
            return None
        try:
            return self._point(sql, params)
        except sqlite3.Error:
            return None

    def _point(self, sql: str, params: Params) -> list[Row] | None:
        """The rows from the direct connection; None when SQLite is busy (use the pool)."""
        self._check_open()
        direct = self._direct
        if direct is None:
            return None
        try:
            return direct.execute(sql, params).fetchall()
        except sqlite3.OperationalError as err:
            if _busy(err):
                return None
            raise

    async def aclose(self) -> None:
        """Close every connection; waits for the current writer.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._direct is not None:
            self._direct.close()
        with trio.CancelScope(shield=True):
            async with self._write_lock:
                await self._writer.aclose()
            for conn in self._all_readers:
                await conn.aclose()

    async def _migrate(self, migrations: Sequence[str]) -> None:
        target = len(migrations)
        row = await self._writer.call(aio_fetchone, "PRAGMA user_version", ())
        version = int(row[0]) if row is not None else 0
        if version > target:
            raise MigrationError(
                version, f"{self.path} is newer than this code (knows {target} migrations)"
            )
        for number, script in enumerate(migrations, start=1):
            if number <= version:
                continue
            statements = split_statements(script)
            async with self.transaction() as tx:
                row = await tx.fetchone("PRAGMA user_version")
                version = int(row[0]) if row is not None else 0
                if version >= number:  # another process got here first
                    continue
                for statement in statements:
                    try:
                        await tx.execute(statement)
                    except sqlite3.Error as err:
                        raise MigrationError(number, f"{err} in {statement[:80]!r}") from err
                await tx.execute(f"PRAGMA user_version = {number}")
            version = number
        self.schema_version = target


@asynccontextmanager
async def open_store(
    path: Path | str,
    migrations: Sequence[str] = (),
    *,
    readers: int = 2,
    busy_timeout: float = 5.0,
    durable: bool = True,
) -> AsyncIterator[Store]:
    """Open (creating if needed) an SQLite file and bring its schema up to date.

    Args:
        path: the database file (not ``:memory:``: readers and the writer must
            share one file).  Its folder must exist.
        migrations: SQL scripts; script *n* takes the schema to version *n*.
        readers: number of read connections (at least 1).
        busy_timeout: seconds a connection waits for another process's lock.
        durable: ``synchronous=FULL`` (every commit reaches the disk) when true,
            ``NORMAL`` (WAL-safe, may lose the last commits on power loss) when false.

    Yields:
        The open :class:`Store`; it is closed when the block exits.

    Raises:
        ValueError: ``:memory:`` or ``readers < 1``.
        MigrationError: a migration failed (its transaction was rolled back) or
            the file is newer than ``migrations``.
        sqlite3.Error: the file could not be opened.
    """
    spath = str(path)
    if spath == ":memory:" or spath.startswith("file:"):
        raise ValueError("open_store needs a file path")
    if readers < 1:
        raise ValueError("readers must be at least 1")
    busy_ms = int(busy_timeout * 1000)
    sync = "FULL" if durable else "NORMAL"
    try:
        async with trio.open_nursery() as nursery:
            # Shielded so that the loop outlives a cancellation of the body long
            # enough for the (shielded) closing of the connections; stopped below.
            loop_scope = trio.CancelScope(shield=True)
            loop = await nursery.start(_run_asyncio_loop, loop_scope)
            try:
                store = await _connect_store(loop, spath, readers, busy_ms, sync)
                store.synchronous = sync
                try:
                    await store._migrate(migrations)
                    yield store
                finally:
                    await store.aclose()
            finally:
                loop_scope.cancel()
    except BaseExceptionGroup as group:
        _raise_single(group)


async def _run_asyncio_loop(
    scope: trio.CancelScope, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
) -> None:
    """The store's asyncio loop, alive in a background task until ``scope`` is cancelled."""
    with scope:
        async with trio_asyncio.open_loop() as loop:
            task_status.started(loop)
            await trio.sleep_forever()


async def _connect_store(loop: Any, path: str, readers: int, busy_ms: int, sync: str) -> Store:
    opened: list[_Conn] = []
    connect = trio_asyncio.aio_as_trio(aio_connect, loop=loop)
    try:
        for n in range(readers + 1):
            raw = await connect(path, busy_ms, sync, writer=n == 0)
            opened.append(_Conn(loop, raw))
        direct = _direct_connect(path)  # after the writer: the file is in WAL mode
    except BaseException:
        for conn in opened:
            await conn.aclose()
        raise
    return Store(Path(path), opened[0], opened[1:], direct)


def _direct_connect(path: str) -> sqlite3.Connection:
    """The point-read connection: stdlib ``sqlite3``, read only, never waiting for a lock."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _busy(err: sqlite3.OperationalError) -> bool:
    """SQLite answered SQLITE_BUSY / SQLITE_LOCKED (another connection holds a lock)."""
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(err)
    return "locked" in text or "busy" in text


def _raise_single(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Re-raise the one exception a background-task nursery wrapped, unchanged.

    The body of ``async with open_store(...)`` runs inside the nursery that keeps
    the asyncio loop alive, so trio wraps whatever the body raises in an
    exception group; callers should see their own exception (or Cancelled).
    """
    if len(group.exceptions) != 1:
        raise group
    exc = group.exceptions[0]
    context, cause, suppress = exc.__context__, exc.__cause__, exc.__suppress_context__
    try:
        raise exc
    finally:
        exc.__context__, exc.__cause__ = context, cause
        exc.__suppress_context__ = suppress
        del exc, group
