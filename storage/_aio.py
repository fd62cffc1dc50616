"""The asyncio side of :mod:`starwrs.storage.sqlite`: each coroutine here is one
crossing from trio (through trio-asyncio) to an aiosqlite connection's worker thread.

Theory of operation
-------------------
Each await on an aiosqlite object is one round trip to its worker thread and back
through the trio-asyncio loop -- the dominant cost of a query -- so every helper makes
exactly one.  :func:`aio_write_alone` and :func:`aio_batch` hand the connection's
thread a whole unit of work (one statement in autocommit mode; a short transaction)
as one function, through aiosqlite's private ``Connection._execute``
(:func:`_on_thread`): should a new aiosqlite release drop it, the storage tests fail
at once.  This module and :mod:`.sqlite` are the only ones of starwrs that touch
asyncio.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import aiosqlite

__all__ = [
    "Params",
    "Row",
    "WriteResult",
    "aio_batch",
    "aio_commit",
    "aio_connect",
    "aio_fetchall",
    "aio_fetchone",
    "aio_plain",
    "aio_rollback",
    "aio_script",
    "aio_write",
    "aio_write_alone",
    "aio_write_many",
]

#: Rows come back as :class:`sqlite3.Row`: index by position or by column name.
Row = sqlite3.Row
#: Statement parameters: positional (``?``) or named (``:name``).
Params = Sequence[Any] | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one write statement did.

    Attributes:
        rowcount: rows inserted, updated or deleted (-1 when SQLite cannot say).
        lastrowid: rowid of the last inserted row, if any.
    """

    rowcount: int
    lastrowid: int | None


async def _set_wal(conn: aiosqlite.Connection, busy_timeout_ms: int) -> None:
    """``PRAGMA journal_mode = WAL``, retried while another process holds the file.

    Switching a fresh file to WAL needs an exclusive lock and SQLite answers
    "database is locked" at once instead of waiting out the busy timeout, so two
    processes opening a new file together could fail (seen in CI).
    """
    for _ in range(max(1, busy_timeout_ms // 20)):
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err):
                raise
            await asyncio.sleep(0.02)
    await conn.execute("PRAGMA journal_mode = WAL")


async def aio_connect(
    path: str, busy_timeout_ms: int, synchronous: str, *, writer: bool
) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await conn.execute("PRAGMA foreign_keys = ON")
        if writer:
            await _set_wal(conn, busy_timeout_ms)
            await conn.execute(f"PRAGMA synchronous = {synchronous}")
        else:
            await conn.execute("PRAGMA query_only = ON")
    except BaseException:
        await conn.close()
        raise
    return conn


# Each await on an aiosqlite object is one round trip to its worker thread and back
# through the trio-asyncio loop -- the dominant cost of a query.  So every helper
# makes exactly one: cursors are not closed explicitly (sqlite3 finalizes them when
# they are dropped, and nothing in them outlives the call), and single-row reads use
# execute_fetchall.


async def aio_write(conn: aiosqlite.Connection, sql: str, params: Params) -> WriteResult:
    cursor = await conn.execute(sql, params)
    return WriteResult(cursor.rowcount, cursor.lastrowid)


async def aio_write_many(
    conn: aiosqlite.Connection, sql: str, seq: Iterable[Params]
) -> WriteResult:
    cursor = await conn.executemany(sql, seq)
    return WriteResult(cursor.rowcount, cursor.lastrowid)


async def aio_fetchone(conn: aiosqlite.Connection, sql: str, params: Params) -> Row | None:
    rows = await conn.execute_fetchall(sql, params)
    for row in rows:
        return row
    return None


async def aio_fetchall(conn: aiosqlite.Connection, sql: str, params: Params) -> list[Row]:
    return cast("list[Row]", list(await conn.execute_fetchall(sql, params)))


async def aio_plain(conn: aiosqlite.Connection, sql: str) -> None:
    await conn.execute(sql)


async def aio_script(conn: aiosqlite.Connection, sql: str) -> None:
    await conn.executescript(sql)  # parameterless statements only, one crossing


async def aio_commit(conn: aiosqlite.Connection) -> None:
    await conn.commit()


async def aio_rollback(conn: aiosqlite.Connection) -> None:
    await conn.rollback()  # sqlite3: does nothing outside a transaction


def _alone(raw: sqlite3.Connection, sql: str, params: Params, relaxed: bool) -> WriteResult:
    """On the connection's thread: one statement in autocommit mode."""
    if relaxed:
        raw.execute("PRAGMA synchronous = NORMAL")
    try:
        cursor = raw.execute(sql, params)
        return WriteResult(cursor.rowcount, cursor.lastrowid)
    finally:
        if relaxed:
            raw.execute("PRAGMA synchronous = FULL")


def _batch(
    raw: sqlite3.Connection, steps: Sequence[tuple[str, Params]], relaxed: bool
) -> list[list[Row]]:
    """On the connection's thread: ``BEGIN IMMEDIATE``, *steps*, ``COMMIT``."""
    if relaxed:
        raw.execute("PRAGMA synchronous = NORMAL")
    try:
        raw.execute("BEGIN IMMEDIATE")
        try:
            results = [raw.execute(sql, params).fetchall() for sql, params in steps]
        except BaseException:
            raw.rollback()
            raise
        raw.execute("COMMIT")
        return results
    finally:
        if relaxed:
            raw.execute("PRAGMA synchronous = FULL")


# aiosqlite runs each call as one function on the connection's thread
# (``Connection._execute``); its public methods are one such call per statement, so a
# transaction built of them pays a thread hop per statement.  These two hand it the
# whole unit of work as one function: one hop (about 0.2 ms of CPU on a shared VM).


async def aio_write_alone(
    conn: aiosqlite.Connection, sql: str, params: Params, relaxed: bool
) -> WriteResult:
    """One write statement as its own (autocommit) transaction, in one hop."""
    return cast(WriteResult, await _on_thread(conn)(_alone, conn._conn, sql, params, relaxed))


async def aio_batch(
    conn: aiosqlite.Connection, steps: Sequence[tuple[str, Params]], relaxed: bool
) -> list[list[Row]]:
    """A whole short transaction (``ROLLBACK`` on error), in one hop."""
    return cast("list[list[Row]]", await _on_thread(conn)(_batch, conn._conn, steps, relaxed))


def _on_thread(conn: aiosqlite.Connection) -> Callable[..., Awaitable[Any]]:
    """aiosqlite's own "run this function on the connection's thread" (untyped)."""
    return cast("Callable[..., Awaitable[Any]]", conn._execute)
