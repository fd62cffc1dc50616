"""The DSS's ``LOAD``: loads that wait for a running one are loaded together (group
commit), each answered after the commit that holds it, a bad file failing alone, a
batch id loaded once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing
from starwrs.fixtures.datamart import corp_specs, generate_calls
from starwrs.grammar import Member, Message
from starwrs.grammar.errors import StarwrsError
from starwrs.proxies.dss import server
from starwrs.proxies.dss.server import DssPartition
from starwrs.storage.datamart.export import write_ipc

CORPS = ("90000003", "90000004")


@pytest.fixture
def partition(tmp_path: Path) -> Iterator[DssPartition]:
    part = DssPartition(tmp_path / "state", 1, None)
    yield part
    part.con.close()


def staged(tmp_path: Path, seed: int) -> tuple[Path, int]:
    tables = list(
        generate_calls(corp_specs(CORPS), 300, start=dt.date(1998, 6, 1), days=2, seed=seed)
    )
    path = tmp_path / f"calls-{seed}.arrows"
    write_ipc(path, tables)
    return path, sum(t.num_rows for t in tables)


def loaded(partition: DssPartition) -> dict[str, int]:
    rows = partition.con.execute("SELECT batch_id, rows FROM loaded_batch").fetchall()
    return dict(rows)


def loda(rows: int) -> Message:
    return Message("LODA", (Member("ERROR", "0"), Member("ROWS", str(rows))))


async def test_loads_that_wait_are_loaded_in_one_round(
    partition: DssPartition, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups: list[list[str | None]] = []
    real = server.load_ipc_group

    def spy(con: object, files: list[tuple[Path, str | None]]) -> object:
        groups.append([batch for _path, batch in files])
        return real(con, files)  # type: ignore[arg-type]

    monkeypatch.setattr(server, "load_ipc_group", spy)
    files = {f"b{i}": staged(tmp_path, i) for i in range(4)}
    bad = tmp_path / "bad.arrows"
    bad.write_bytes(b"not arrow" * 20)
    answers: dict[str, object] = {}

    async def put(batch: str, path: Path) -> None:
        try:
            answers[batch] = await partition.load_file(path, batch=batch)
        except StarwrsError as err:
            answers[batch] = err

    async with trio.open_nursery() as nursery:
        for batch, (path, _rows) in files.items():
            nursery.start_soon(put, batch, path)
        nursery.start_soon(put, "bad", bad)
        nursery.start_soon(put, "b1", files["b1"][0])  # the same batch again, at once
    # the first LOAD loads alone; the five that came while it ran, in one round
    assert [len(g) for g in groups] == [1, 5]
    assert sorted(map(str, groups[0] + groups[1])) == ["b0", "b1", "b1", "b2", "b3", "bad"]
    assert loaded(partition) == {batch: rows for batch, (_path, rows) in files.items()}
    for batch, (_path, rows) in files.items():
        answer = answers[batch]
        assert not isinstance(answer, StarwrsError)
        assert answer == loda(rows)
    assert isinstance(answers["bad"], StarwrsError)
    assert "not an Arrow IPC stream" in str(answers["bad"])
    total = partition.con.execute("SELECT count(*) FROM perspective_base").fetchone()
    assert total == (sum(rows for _path, rows in files.values()),)
    # a replay later is answered with the recorded rows, nothing loaded again
    assert await partition.load_file(files["b2"][0], batch="b2") == loda(files["b2"][1])
    assert partition.con.execute("SELECT count(*) FROM perspective_base").fetchone() == total


async def test_a_waiting_load_cancelled_is_not_loaded(
    partition: DssPartition, tmp_path: Path
) -> None:
    first, _ = staged(tmp_path, 1)
    second, _ = staged(tmp_path, 2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partition.load_file, first, "first")
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            with pytest.raises(trio.Cancelled):
                await partition.load_file(second, batch="second")
    assert set(loaded(partition)) == {"first"}
    assert partition._loads == []
