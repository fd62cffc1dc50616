"""storage/sqlite.py: migrations, one writer, readers, transactions, cancellation."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio
import trio.lowlevel
from hypothesis import given
from hypothesis import strategies as st
from starwrs.storage.sqlite import (
    MigrationError,
    Store,
    Transaction,
    open_store,
    split_statements,
)

M1 = "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
M2 = """
CREATE TABLE log (n INTEGER);
INSERT INTO log VALUES (2);  -- a migration that is not idempotent by itself
CREATE TRIGGER item_log AFTER INSERT ON item BEGIN
    INSERT INTO log VALUES (new.id);
END;
"""
M3 = "CREATE TABLE child (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES item (id))"


async def test_migrations_apply_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    async with open_store(path, [M1, M2]) as db:
        assert db.schema_version == 2
        assert (await db.fetchone("PRAGMA user_version"))[0] == 2  # type: ignore[index]
        await db.execute("INSERT INTO item (name) VALUES ('a')")
    async with open_store(path, [M1, M2]) as db:  # nothing to do
        rows = await db.fetchall("SELECT n FROM log ORDER BY rowid")
        assert [r["n"] for r in rows] == [2, 1]
    async with open_store(path, [M1, M2, M3]) as db:  # only M3 runs
        assert db.schema_version == 3
        assert len(await db.fetchall("SELECT n FROM log")) == 2
        await db.execute("INSERT INTO child (item_id) VALUES (1)")


async def test_concurrent_openers_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    async with open_store(path, [M1]):
        pass  # the file exists (WAL) before the race

    versions: list[int] = []

    async def opener() -> None:
        async with open_store(path, [M1, M2]) as db:
            versions.append(db.schema_version)

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(opener)
    assert versions == [2, 2, 2, 2]
    async with open_store(path, [M1, M2]) as db:
        assert len(await db.fetchall("SELECT n FROM log")) == 1


async def test_failed_migration_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    bad = "CREATE TABLE half (x); INSERT INTO missing VALUES (1);"
    with pytest.raises(MigrationError) as info:
        async with open_store(path, [M1, bad]):
            pass
    assert info.value.version == 2
    async with open_store(path, [M1]) as db:
        assert db.schema_version == 1
        assert await db.fetchone("SELECT name FROM sqlite_master WHERE name = 'half'") is None


async def test_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    async with open_store(path, [M1, M2]):
        pass
    with pytest.raises(MigrationError, match="newer"):
        async with open_store(path, [M1]):
            pass


async def test_pragmas_wal_foreign_keys_and_read_only_readers(tmp_path: Path) -> None:
    async with open_store(tmp_path / "p.db", [M1, M2, M3]) as db:
        assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"  # type: ignore[index]
        assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1  # type: ignore[index]
        with pytest.raises(sqlite3.IntegrityError):
            await db.execute("INSERT INTO child (item_id) VALUES (99)")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await db.fetchall("INSERT INTO item (name) VALUES ('x')")


async def test_write_results_and_executemany(tmp_path: Path) -> None:
    async with open_store(tmp_path / "w.db", [M1]) as db:
        first = await db.execute("INSERT INTO item (name) VALUES (?)", ("a",))
        assert (first.rowcount, first.lastrowid) == (1, 1)
        n = await db.executemany("INSERT INTO item (name) VALUES (:n)", [{"n": "b"}, {"n": "c"}])
        assert n == 2
        updated = await db.execute("UPDATE item SET name = upper(name)")
        assert updated.rowcount == 3
        row = await db.fetchone("SELECT name FROM item WHERE id = ?", (3,))
        assert row is not None
        assert row["name"] == row[0] == "C"
        assert await db.fetchone("SELECT * FROM item WHERE id = 42") is None


async def test_concurrent_writers_serialize(tmp_path: Path) -> None:
    """Read-modify-write in many tasks, yielding inside: no update is lost."""
    async with open_store(tmp_path / "c.db", ["CREATE TABLE counter (n INTEGER)"]) as db:
        await db.execute("INSERT INTO counter VALUES (0)")
        inside = 0
        most_inside = 0

        async def bump() -> None:
            nonlocal inside, most_inside
            async with db.transaction() as tx:
                inside += 1
                most_inside = max(most_inside, inside)
                row = await tx.fetchone("SELECT n FROM counter")
                assert row is not None
                await trio.lowlevel.checkpoint()
                await tx.execute("UPDATE counter SET n = ?", (row["n"] + 1,))
                inside -= 1

        async with trio.open_nursery() as nursery:
            for _ in range(25):
                nursery.start_soon(bump)
        assert most_inside == 1
        assert (await db.fetchone("SELECT n FROM counter"))[0] == 25  # type: ignore[index]


async def test_two_stores_on_one_file_share_the_write_lock(tmp_path: Path) -> None:
    """Two opens of one file (as two processes would) write without losing rows."""
    path = tmp_path / "shared.db"
    async with open_store(path, [M1]) as a, open_store(path, [M1]) as b:

        async def writer(db: Store, prefix: str) -> None:
            for i in range(20):
                await db.execute("INSERT INTO item (name) VALUES (?)", (f"{prefix}{i}",))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer, a, "a")
            nursery.start_soon(writer, b, "b")
        assert (await b.fetchone("SELECT count(*) FROM item"))[0] == 40  # type: ignore[index]


async def test_transaction_isolation_and_rollback(tmp_path: Path) -> None:
    async with open_store(tmp_path / "t.db", [M1]) as db:
        seen: list[object] = []

        async def failing_block() -> None:
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO item (name) VALUES ('gone')")
                # the transaction sees its own write, a reader does not
                seen.append(await tx.fetchone("SELECT id FROM item WHERE name = 'gone'"))
                seen.append(await db.fetchone("SELECT id FROM item WHERE name = 'gone'"))
                seen.append(tx)
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            await failing_block()
        assert seen[0] is not None
        assert seen[1] is None
        assert await db.fetchall("SELECT * FROM item") == []
        dead = seen[2]
        assert isinstance(dead, Transaction)
        with pytest.raises(trio.ClosedResourceError):
            await dead.execute("SELECT 1")

        # a failed statement rolls back the whole block
        await db.execute("INSERT INTO item (name) VALUES ('a')")

        async def duplicate() -> None:
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO item (name) VALUES ('b')")
                await tx.execute("INSERT INTO item (name) VALUES ('a')")

        with pytest.raises(sqlite3.IntegrityError):
            await duplicate()
        names = [r["name"] for r in await db.fetchall("SELECT name FROM item")]
        assert names == ["a"]


async def test_cancelled_transaction_rolls_back_and_store_still_works(tmp_path: Path) -> None:
    async with open_store(tmp_path / "x.db", [M1]) as db:
        with trio.CancelScope() as scope:
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO item (name) VALUES ('cancelled')")
                scope.cancel()
                await trio.lowlevel.checkpoint()
                pytest.fail("not cancelled")  # pragma: no cover
        assert scope.cancelled_caught
        assert await db.fetchall("SELECT * FROM item") == []
        await db.execute("INSERT INTO item (name) VALUES ('after')")
        assert len(await db.fetchall("SELECT * FROM item")) == 1


async def test_cancelled_while_statements_are_in_flight(tmp_path: Path) -> None:
    """Cancel at BEGIN, at a statement, before COMMIT: nothing half-done remains."""
    async with open_store(tmp_path / "y.db", [M1]) as db:
        for stage in range(3):
            with trio.CancelScope() as scope:
                if stage == 0:
                    scope.cancel()  # lands on BEGIN IMMEDIATE
                async with db.transaction() as tx:
                    if stage == 1:
                        scope.cancel()  # lands on the INSERT
                    await tx.execute("INSERT INTO item (name) VALUES (?)", (f"s{stage}",))
                    if stage == 2:
                        scope.cancel()  # lands on the SELECT
                    await tx.fetchone("SELECT 1")
            assert scope.cancelled_caught
            await db.execute("INSERT INTO item (name) VALUES (?)", (f"after{stage}",))
        names = [r["name"] for r in await db.fetchall("SELECT name FROM item ORDER BY id")]
        assert names == ["after0", "after1", "after2"]


async def test_closed_store_refuses_use(tmp_path: Path) -> None:
    async with open_store(tmp_path / "closed.db", [M1]) as db:
        pass
    with pytest.raises(trio.ClosedResourceError):
        await db.fetchall("SELECT 1")
    with pytest.raises(trio.ClosedResourceError):
        await db.execute("INSERT INTO item (name) VALUES ('x')")
    await db.aclose()  # idempotent


async def test_body_exception_is_not_wrapped_in_a_group(tmp_path: Path) -> None:
    with pytest.raises(KeyError) as info:
        async with open_store(tmp_path / "e.db", [M1]):
            raise KeyError("mine")
    assert info.type is KeyError
    # cancellation from outside passes through too
    with trio.move_on_after(0.01) as scope:
        async with open_store(tmp_path / "e.db", [M1]):
            await trio.sleep_forever()
    assert scope.cancelled_caught


async def test_usable_from_tasks_of_an_earlier_nursery(tmp_path: Path) -> None:
    """The asyncio loop is passed explicitly, not found through a context var."""
    async with trio.open_nursery() as nursery, open_store(tmp_path / "n.db", [M1]) as db:
        done = trio.Event()

        async def use() -> None:
            await db.execute("INSERT INTO item (name) VALUES ('from outside')")
            done.set()

        nursery.start_soon(use)
        await done.wait()
        assert len(await db.fetchall("SELECT * FROM item")) == 1


async def test_rejects_memory_and_zero_readers(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file path"):
        async with open_store(":memory:"):
            pass
    with pytest.raises(ValueError, match="readers"):
        async with open_store(tmp_path / "r.db", readers=0):
            pass


def test_split_statements_handles_triggers_comments_and_quotes() -> None:
    script = M2 + "\nINSERT INTO log VALUES (';'); -- trailing comment"
    stmts = split_statements(script)
    assert len(stmts) == 5
    assert "CREATE TRIGGER" in stmts[2]
    assert stmts[2].endswith("END;")
    assert stmts[3] == "INSERT INTO log VALUES (';');"
    assert split_statements("SELECT 1") == ["SELECT 1;"]
    assert split_statements(" ;; \n") == []
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1;")


@given(st.lists(st.text(alphabet=st.sampled_from("ab;'\" -\n"), max_size=12), max_size=6))
def test_split_statements_counts_statements_whatever_their_literals(values: list[str]) -> None:
    literals = ["'" + v.replace("'", "''") + "'" for v in values]
    script = ";\n".join(f"INSERT INTO t VALUES ({lit})" for lit in literals)
    stmts = split_statements(script)
    assert len(stmts) == len(values)
    for stmt in stmts:
        assert sqlite3.complete_statement(stmt if stmt.endswith(";") else stmt + ";")
