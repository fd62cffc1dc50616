"""storage/outbox.py: FIFO per subject, dedup, back-off, leases, parking, exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from starwrs.storage.outbox import (
    OUTBOX_MIGRATION,
    RECEIVED_MIGRATION,
    Delivered,
    Outbox,
    OutboxMessage,
    Outcome,
    Refused,
    Retry,
    accept_once,
)
from starwrs.storage.sqlite import open_store

from ..conftest import scaled

#: seconds any one test waits for the queue to do something (a bound, not a sleep)
PATIENCE = 20


@asynccontextmanager
async def outbox_at(path: Path, **options: float) -> AsyncIterator[Outbox]:
    async with open_store(path, [OUTBOX_MIGRATION]) as store:
        defaults: dict[str, float] = {"base_delay": 0.001, "max_delay": 0.01}
        yield Outbox(store, **{**defaults, **options})  # type: ignore[arg-type]


async def until_empty(outbox: Outbox) -> None:
    """Wait (bounded) until nothing is pending any more."""
    with trio.fail_after(PATIENCE):
        while (await outbox.stats()).pending:
            await outbox.settled()


class Receiver:
    """Records what arrived; answers from a script of outcomes (default Delivered)."""

    def __init__(self, script: list[Outcome] | None = None) -> None:
        self.script = list(script or [])
        self.seen: list[tuple[str, str]] = []
        self.changed = trio.Event()

    async def __call__(self, message: OutboxMessage) -> Outcome:
        self.seen.append((message.subject, message.key))
        self.changed.set()
        self.changed = trio.Event()
        return self.script.pop(0) if self.script else Delivered()

    async def until(self, count: int) -> None:
        with trio.fail_after(PATIENCE):
            while len(self.seen) < count:
                await self.changed.wait()


async def test_put_is_idempotent_per_subject_and_key(tmp_path: Path) -> None:
    async with outbox_at(tmp_path / "o.db") as outbox:
        assert await outbox.put("ODS1", "7", "DSS1", b"a")
        assert not await outbox.put("ODS1", "7", "DSS1", b"a again")
        assert await outbox.put("ODS2", "7", "DSS2", b"b")
        stats = await outbox.stats()
        assert stats.pending == {"ODS1": 1, "ODS2": 1}


async def test_delivers_fifo_per_subject(tmp_path: Path) -> None:
    receiver = Receiver()
    async with outbox_at(tmp_path / "o.db") as outbox:
        for n in range(20):
            await outbox.put(f"S{n % 3}", str(n), "X", b"")
        async with trio.open_nursery() as nursery:
            await nursery.start(outbox.run, receiver)
            await until_empty(outbox)
            nursery.cancel_scope.cancel()
        for subject in ("S0", "S1", "S2"):
            keys = [int(k) for s, k in receiver.seen if s == subject]
            assert keys == sorted(keys)
        assert sorted(int(k) for _, k in receiver.seen) == list(range(20))
        assert (await outbox.stats()).pending == {}


async def test_a_transient_failure_is_retried_and_holds_its_subject_back(tmp_path: Path) -> None:
    receiver = Receiver([Retry("down"), Retry("still down"), Delivered(), Delivered()])
    async with outbox_at(tmp_path / "o.db") as outbox:
        await outbox.put("S", "1", "X", b"")
        await outbox.put("S", "2", "X", b"")
        async with trio.open_nursery() as nursery:
            await nursery.start(outbox.run, receiver)
            await until_empty(outbox)
            nursery.cancel_scope.cancel()
    assert receiver.seen == [("S", "1"), ("S", "1"), ("S", "1"), ("S", "2")]


async def test_a_refusal_is_parked_reported_and_kept(tmp_path: Path) -> None:
    receiver = Receiver([Refused(6611, "bad"), Delivered()])
    reported: list[tuple[str, str]] = []
    done = trio.Event()

    async def on_failed(message: OutboxMessage, reason: str) -> None:
        reported.append((message.key, reason))
        done.set()

    async with outbox_at(tmp_path / "o.db") as outbox:
        await outbox.put("S", "1", "X", b"one")
        await outbox.put("S", "2", "X", b"two")
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: outbox.run(
                    receiver, on_failed=on_failed, task_status=task_status
                )
            )
            await until_empty(outbox)
            with trio.fail_after(PATIENCE):
                await done.wait()
            nursery.cancel_scope.cancel()
        assert reported == [("1", "6611 bad")]
        parked = await outbox.failed()
        assert [(m.key, m.payload, m.last_error) for m in parked] == [("1", b"one", "6611 bad")]
        assert (await outbox.stats()).failed == {"S": 1}
        assert await outbox.retry_failed() == 1
        assert (await outbox.stats()).pending == {"S": 1}


async def test_gives_up_after_max_attempts(tmp_path: Path) -> None:
    receiver = Receiver([Retry("down")] * 3)
    async with outbox_at(tmp_path / "o.db", max_attempts=3) as outbox:
        await outbox.put("S", "1", "X", b"")
        async with trio.open_nursery() as nursery:
            await nursery.start(outbox.run, receiver)
            await until_empty(outbox)
            nursery.cancel_scope.cancel()
        (parked,) = await outbox.failed()
        assert parked.last_error == "gave up after 3 attempts: down"


async def test_an_unacknowledged_attempt_is_sent_again_after_its_lease(tmp_path: Path) -> None:
    """A receiver that never answers: the lease runs out and the message goes again."""
    attempts: list[str] = []
    first, second = trio.Event(), trio.Event()

    async def hangs_first(message: OutboxMessage) -> Outcome:
        attempts.append(message.key)
        if len(attempts) == 1:
            first.set()
            await trio.sleep_forever()
        second.set()
        return Delivered()

    async with outbox_at(tmp_path / "o.db", lease=0.05) as outbox:
        await outbox.put("S", "1", "X", b"")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outbox.run, hangs_first)  # the first attempt hangs
            await first.wait()
            # a second deliverer (a restarted process) sees the lease run out
            other = Outbox(outbox.store, lease=0.05, base_delay=0.001)
            nursery.start_soon(other.run, hangs_first)
            with trio.fail_after(PATIENCE):
                await second.wait()
            nursery.cancel_scope.cancel()
    assert attempts == ["1", "1"]


async def test_accept_once_tells_duplicates_apart(tmp_path: Path) -> None:
    async with open_store(tmp_path / "r.db", [RECEIVED_MIGRATION]) as store:
        async with store.transaction() as tx:
            assert await accept_once(tx, "ODS1", "42")
        async with store.transaction() as tx:
            assert not await accept_once(tx, "ODS1", "42")
            assert await accept_once(tx, "ODS2", "42")

        async def fails_after_accepting() -> None:
            async with store.transaction() as tx:
                assert await accept_once(tx, "ODS1", "43")
                raise RuntimeError("the effect failed")

        with pytest.raises(RuntimeError):
            await fails_after_accepting()
        async with store.transaction() as tx:  # rolled back with the effect
            assert await accept_once(tx, "ODS1", "43")


@settings(max_examples=scaled(30), deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("ABC"), st.integers(0, 9)), max_size=25),
    st.lists(st.sampled_from(["ok", "retry", "refuse"]), max_size=40),
)
def test_every_message_is_delivered_or_parked_exactly_once(
    tmp_path_factory: pytest.TempPathFactory, puts: list[tuple[str, int]], script: list[str]
) -> None:
    """Whatever the receiver answers, each distinct (subject, key) ends delivered once or parked."""
    path = tmp_path_factory.mktemp("o") / "o.db"
    outcomes: list[Outcome] = [
        Delivered() if s == "ok" else Retry("r") if s == "retry" else Refused(1, "no")
        for s in script
    ]
    delivered: list[tuple[str, str]] = []

    async def send(message: OutboxMessage) -> Outcome:
        outcome = outcomes.pop(0) if outcomes else Delivered()
        if isinstance(outcome, Delivered):
            delivered.append((message.subject, message.key))
        return outcome

    async def main() -> set[tuple[str, str]]:
        async with outbox_at(path, max_attempts=4) as outbox:
            for subject, key in puts:
                await outbox.put(subject, str(key), "X", b"")
            async with trio.open_nursery() as nursery:
                await nursery.start(outbox.run, send)
                await until_empty(outbox)
                nursery.cancel_scope.cancel()
            return {(m.subject, m.key) for m in await outbox.failed()}

    parked = trio.run(main)
    distinct = {(s, str(k)) for s, k in puts}
    assert len(delivered) == len(set(delivered))
    assert set(delivered) | parked == distinct
    assert not set(delivered) & parked


CHILD = """
import sys, trio
from pathlib import Path
from starwrs.storage.outbox import OUTBOX_MIGRATION, Outbox
from starwrs.storage.sqlite import open_store

async def main(path, count):
    async with open_store(Path(path), [OUTBOX_MIGRATION]) as store:
        outbox = Outbox(store)
        for n in range(count):
            await outbox.put("S", str(n), "X", b"payload %d" % n)
            print(n, flush=True)  # acknowledged to the caller only after the commit
        await trio.sleep_forever()

trio.run(main, sys.argv[1], int(sys.argv[2]))
"""


def test_an_acknowledged_put_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), "10000"], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    acknowledged = -1
    for line in child.stdout:
        acknowledged = int(line)
        if acknowledged >= 30:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()

    async def pending() -> int:
        async with outbox_at(path) as outbox:
            return (await outbox.stats()).pending.get("S", 0)

    assert trio.run(pending) >= acknowledged + 1
