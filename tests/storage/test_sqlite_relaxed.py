"""storage/sqlite.py: transactions that need no fsync (``durable=False``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starwrs.storage.sqlite import open_store


async def synchronous(store) -> int:  # type: ignore[no-untyped-def]
    async with store.transaction() as tx:
        row = await tx.fetchone("PRAGMA synchronous")
    return int(row[0])


async def _fail_inside(store) -> None:  # type: ignore[no-untyped-def]
    async with store.transaction(durable=False) as tx:
        await tx.execute("INSERT INTO t VALUES (3)")
        raise ValueError("boom")


async def test_a_relaxed_transaction_commits_with_normal_and_restores_full(tmp_path: Path) -> None:
    async with open_store(tmp_path / "x.db", ["CREATE TABLE t (x)"]) as store:
        assert store.synchronous == "FULL"
        async with store.transaction(durable=False) as tx:
            await tx.execute("INSERT INTO t VALUES (1)")
            assert tuple(await tx.fetchone("PRAGMA synchronous")) == (1,)  # NORMAL
        assert await synchronous(store) == 2  # FULL again
        await store.execute("INSERT INTO t VALUES (2)", durable=False)
        with pytest.raises(ValueError, match="boom"):
            await _fail_inside(store)
        assert await synchronous(store) == 2
        assert [row[0] for row in await store.fetchall("SELECT x FROM t ORDER BY x")] == [1, 2]


async def test_a_store_that_is_not_durable_ignores_it(tmp_path: Path) -> None:
    async with open_store(tmp_path / "x.db", ["CREATE TABLE t (x)"], durable=False) as store:
        assert store.synchronous == "NORMAL"
        await store.execute("INSERT INTO t VALUES (1)", durable=False)
        assert await synchronous(store) == 1
