"""dispatcher/serials.py and the boot ids behind it (storage/sessions.py, migration 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from starwrs.dispatcher.serials import COUNTER_BITS, MAX_BOOT_ID, SerialSource
from starwrs.storage.sessions import open_session_store


async def test_boot_ids_are_unique_across_processes_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    ids: list[int] = []

    async def dispatcher(index: int) -> None:
        async with open_session_store(path) as store:
            for _ in range(5):
                ids.append(await store.new_boot(index))

    async with trio.open_nursery() as nursery:  # two "processes" on one file at once
        nursery.start_soon(dispatcher, 0)
        nursery.start_soon(dispatcher, 1)
    async with open_session_store(path) as store:  # a restart
        ids.append(await store.new_boot(0))
        rows = await store.db.fetchall("SELECT dispatcher FROM dispatcher_boots")
    assert len(set(ids)) == len(ids) == 11
    assert ids[-1] == max(ids)
    assert sorted(r[0] for r in rows) == [0] * 6 + [1] * 5


async def test_serials_carry_the_boot_id_and_never_repeat() -> None:
    boots = iter([8, 9])

    async def renew() -> int:
        return next(boots)

    source = SerialSource(7, renew, counter=(1 << COUNTER_BITS) - 3)
    serials = [await source.next() for _ in range(4)]
    assert serials == [
        7 << COUNTER_BITS | (1 << COUNTER_BITS) - 2,
        7 << COUNTER_BITS | (1 << COUNTER_BITS) - 1,
        8 << COUNTER_BITS | 1,  # the counter ran out: a new boot id
        8 << COUNTER_BITS | 2,
    ]
    assert all(0 < s < 1 << 64 for s in serials)


@pytest.mark.parametrize("boot", [0, MAX_BOOT_ID + 1])
def test_a_boot_id_out_of_range_is_refused(boot: int) -> None:
    async def renew() -> int:
        return 1

    with pytest.raises(ValueError, match="boot id"):
        SerialSource(boot, renew)
