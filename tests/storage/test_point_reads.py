"""storage/sqlite.py point reads: stdlib sqlite3 on the trio thread, never stale, never waiting.

Issue 10 item 10: indexed point reads (session, entitlement, user lookups) go straight
to ``sqlite3``; writes stay on aiosqlite.  What must not change: a write committed by
any connection -- another process's dispatcher ending a session -- is seen by the next
point read; a busy file sends the read to the aiosqlite pool instead of blocking.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.storage.sessions import open_session_store
from starwrs.storage.sqlite import open_store

SCHEMA = ["CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;"]


async def test_point_reads_see_every_commit_at_once(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    async with open_store(path, SCHEMA) as a, open_store(path, SCHEMA) as b:
        assert await a.point_fetchone("SELECT v FROM t WHERE k = ?", ("x",)) is None
        await b.execute("INSERT INTO t (k, v) VALUES (?, ?)", ("x", 1))
        row = await a.point_fetchone("SELECT v FROM t WHERE k = ?", ("x",))
        assert row is not None
        assert row["v"] == 1
        await b.execute("UPDATE t SET v = 2 WHERE k = 'x'")
        assert [r["v"] for r in await a.point_fetchall("SELECT v FROM t")] == [2]
        await b.execute("DELETE FROM t")
        assert await a.point_fetchall("SELECT v FROM t") == []


async def test_point_reads_refuse_writes(tmp_path: Path) -> None:
    async with open_store(tmp_path / "t.db", SCHEMA) as db:
        with pytest.raises(sqlite3.OperationalError):
            await db.point_fetchall("INSERT INTO t (k, v) VALUES ('y', 1)")
        assert await db.fetchall("SELECT * FROM t") == []


async def test_a_busy_file_sends_the_read_to_the_pool(tmp_path: Path) -> None:
    async with open_store(tmp_path / "t.db", SCHEMA) as db:
        await db.execute("INSERT INTO t (k, v) VALUES ('x', 7)")

        class Busy:
            def execute(self, sql: str, params: object) -> None:
                raise sqlite3.OperationalError("database is locked")

            def close(self) -> None:
                pass

        real = db._direct
        db._direct = Busy()  # type: ignore[assignment]
        try:
            row = await db.point_fetchone("SELECT v FROM t WHERE k = 'x'")
            assert row is not None
            assert row["v"] == 7
        finally:
            db._direct = real


async def test_point_reads_after_close_raise(tmp_path: Path) -> None:
    async with open_store(tmp_path / "t.db", SCHEMA) as db:
        pass
    with pytest.raises(trio.ClosedResourceError):
        await db.point_fetchone("SELECT 1")
    assert db.fetch_now("SELECT 1") is None


async def test_a_logoff_at_one_dispatcher_ends_the_session_at_every_other(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions.db"
    async with open_session_store(path) as one, open_session_store(path) as two:
        key, _ = await one.start("jeanvnet2", data=b"x")
        assert (await two.touch(key)).user_id == "jeanvnet2"
        assert two.count_live_now() == 1
        await one.end(key)
        with pytest.raises(StarwrsError) as err:
            await two.touch(key)
        assert err.value.code == ErrorCode.NO_SESSION
        assert two.count_live_now() == 0


async def test_concurrent_touches_of_one_session_write_once(tmp_path: Path) -> None:
    now = [1_000_000.0]
    async with open_session_store(tmp_path / "s.db", clock=lambda: now[0]) as store:
        key, _ = await store.start("u1")
        now[0] += 5
        writes = 0
        execute = store.db.transaction

        def counting():  # type: ignore[no-untyped-def]
            nonlocal writes
            writes += 1
            return execute()

        store.db.transaction = counting  # type: ignore[method-assign]
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(store.touch, key)
        assert writes == 1
        session = await store.peek(key)
        assert session.last_seen == now[0]
