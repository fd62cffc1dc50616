"""proxies/oe: failed logons throttled per (account, source) and per source, in bounded memory.

The attacks: guessing one user's password from one address (which must not lock the
user out from another), spraying one guess across many user ids from one address,
concurrent guesses racing the count, and a flood of logons for unknown ids (which
once held 40 argon2 computations of 19 MiB at a time: 676 MB-1 GB of order entry).
Delays run on trio's clock, so these tests use ``autojump_clock``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import pytest
import trio
from starwrs.proxies.oe.model import LogonOutcome, ThrottlePolicy
from starwrs.proxies.oe.passwords import MAX_CONCURRENT
from starwrs.proxies.oe.store import OrderEntryStore, open_order_entry
from starwrs.proxies.oe.throttle import LogonThrottle, source_key

from .test_oe_store import CountingHasher

RIGHT = "right horse battery"
ATTACKER, OWNER = "198.51.100.7", "203.0.113.9"
OK, INVALID, THROTTLED = LogonOutcome.OK, LogonOutcome.INVALID, LogonOutcome.THROTTLED


class SlowHasher(CountingHasher):
    """Counts verifications and how many ran at once (each takes 20 ms of a thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.02)
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.running -= 1


@asynccontextmanager
async def _open(
    path: Path, hasher: CountingHasher, policy: ThrottlePolicy | None = None
) -> AsyncIterator[OrderEntryStore]:
    async with open_order_entry(path, hasher=hasher, throttle=policy) as store:
        await store.add_enterprise("00022924", "Demo one")
        await store.add_user("jeanvnet2", "00022924", RIGHT)
        await store.add_user("tfnadmin", "00022924", "other")
        yield store


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
async def oe(tmp_path: Path, hasher: CountingHasher) -> AsyncIterator[OrderEntryStore]:
    async with _open(tmp_path / "oe.db", hasher) as store:
        yield store


async def test_guessing_from_one_source_never_locks_the_owner_out_elsewhere(
    oe: OrderEntryStore, hasher: CountingHasher, autojump_clock: trio.testing.MockClock
) -> None:
    guesses = throttled = 0
    for n in range(200):  # ten minutes of guessing, as fast as it is let
        outcome = (await oe.verify_user("jeanvnet2", f"guess{n}", ATTACKER)).outcome
        if outcome is THROTTLED:
            throttled += 1
        else:
            assert outcome is INVALID
            guesses += 1
        if n % 20 == 0:  # the owner logs on from their own address all along
            assert (await oe.verify_user("jeanvnet2", RIGHT, OWNER)).outcome is OK
        await trio.sleep(3)
    # 3 free guesses, then delays 1, 2, 4, ... s: about a dozen guesses in 10 minutes
    assert 8 <= guesses <= 14, guesses
    assert throttled == 200 - guesses
    assert hasher.verifications < 200 // 20 + guesses + 2  # throttled tries check nothing


async def test_delays_grow_and_a_success_clears_them(
    oe: OrderEntryStore, autojump_clock: trio.testing.MockClock
) -> None:
    for _ in range(3):  # free
        assert (await oe.verify_user("jeanvnet2", "guess", ATTACKER)).outcome is INVALID
        assert oe.retry_after("jeanvnet2", ATTACKER) == 0
    waits = []
    for _ in range(6):
        assert (await oe.verify_user("jeanvnet2", "guess", ATTACKER)).outcome is INVALID
        wait = oe.retry_after("jeanvnet2", ATTACKER)
        waits.append(round(wait))
        assert (await oe.verify_user("jeanvnet2", RIGHT, ATTACKER)).outcome is THROTTLED
        await trio.sleep(wait)
    assert waits == [1, 2, 4, 8, 16, 32]
    assert (await oe.verify_user("jeanvnet2", RIGHT, ATTACKER)).outcome is OK
    for _ in range(3):  # the success cleared the pair: three free failures again
        assert (await oe.verify_user("jeanvnet2", "guess", ATTACKER)).outcome is INVALID
    assert oe.retry_after("jeanvnet2", ATTACKER) == 0


async def test_the_longest_delay_is_capped(autojump_clock: trio.testing.MockClock) -> None:
    throttle = LogonThrottle(ThrottlePolicy(max_delay=60.0, source_burst=1000))
    for _ in range(100):
        throttle.charge("jeanvnet2", ATTACKER)
    assert throttle.retry_after("jeanvnet2", ATTACKER) == 60.0


async def test_spraying_one_guess_across_accounts_is_limited_per_source(
    oe: OrderEntryStore, hasher: CountingHasher, autojump_clock: trio.testing.MockClock
) -> None:
    burst = oe.throttle.policy.source_burst
    ids = [f"user{n}" for n in range(burst - 1)] + ["tfnadmin"]
    for user in ids:  # one try each: no pair is ever throttled, the source is
        assert (await oe.verify_user(user, "Summer2024!", ATTACKER)).outcome is INVALID
    before = hasher.verifications
    for user in ("user999", "jeanvnet2"):  # any id, even with the right password
        assert (await oe.verify_user(user, RIGHT, ATTACKER)).outcome is THROTTLED
    assert hasher.verifications == before
    # another address is not affected; the attacker's bucket refills slowly
    assert (await oe.verify_user("jeanvnet2", RIGHT, OWNER)).outcome is OK
    await trio.sleep(1 / oe.throttle.policy.source_rate)
    assert (await oe.verify_user("user1000", "x", ATTACKER)).outcome is INVALID
    assert (await oe.verify_user("user1001", "x", ATTACKER)).outcome is THROTTLED


async def test_known_and_unknown_ids_cost_the_same_and_answer_the_same(
    oe: OrderEntryStore, hasher: CountingHasher, autojump_clock: trio.testing.MockClock
) -> None:
    runs = {}
    for user, source in (("jeanvnet2", "192.0.2.1"), ("nosuchuser", "192.0.2.2")):
        trace = []
        for n in range(8):
            before = hasher.verifications
            result = await oe.verify_user(user, f"guess{n}", source)
            trace.append((result, hasher.verifications - before, oe.retry_after(user, source)))
            await trio.sleep(0.5)
        runs[user] = trace
    assert runs["jeanvnet2"] == runs["nosuchuser"]
    assert {r.outcome for r, _, _ in runs["nosuchuser"]} == {INVALID, THROTTLED}


async def test_concurrent_guesses_are_counted_before_they_are_checked(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    hasher = SlowHasher()
    async with _open(tmp_path / "oe.db", hasher) as oe:
        before = hasher.verifications
        outcomes: list[LogonOutcome] = []

        async def guess(n: int) -> None:
            outcomes.append((await oe.verify_user("jeanvnet2", f"guess{n}", ATTACKER)).outcome)

        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(guess, n)
        free = oe.throttle.policy.free_failures
        assert hasher.verifications - before == free + 1  # the last one set the first delay
        assert outcomes.count(THROTTLED) == 20 - (free + 1)


async def test_argon2_runs_only_a_few_at_a_time(tmp_path: Path) -> None:
    """The memory of a flood of logons: each argon2 check holds 19 MiB while it runs."""
    hasher = SlowHasher()
    async with _open(tmp_path / "oe.db", hasher) as oe:
        async with trio.open_nursery() as nursery:
            for n in range(40):  # unknown ids, each from its own address
                nursery.start_soon(oe.verify_user, f"nobody{n}", "x", f"10.0.{n}.1")
        assert hasher.verifications >= 40
        assert hasher.most <= MAX_CONCURRENT


async def test_a_flood_of_unknown_ids_keeps_the_tables_bounded(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    policy = ThrottlePolicy(max_pairs=50, max_sources=20)
    async with _open(tmp_path / "oe.db", CountingHasher(), policy) as oe:
        throttle = oe.throttle
        # from one address: once its bucket is empty nothing more is remembered
        for n in range(500):
            await oe.verify_user(f"ghost{n}", "x", ATTACKER)
        assert throttle.pairs == min(policy.source_burst, policy.max_pairs)
        assert throttle.sources == 1
        # from ever new addresses: the oldest entries go
        for n in range(200):
            await oe.verify_user(f"ghost{n}", "x", f"10.1.0.{n}")
        assert throttle.pairs <= policy.max_pairs
        assert throttle.sources <= policy.max_sources
        # and once nothing restricts anything any more, the tables empty
        await trio.sleep(policy.forget_after + 1)
        assert oe.retry_after("ghost0", ATTACKER) == 0
        assert (throttle.pairs, throttle.sources) == (0, 0)


def test_source_keys() -> None:
    assert source_key("192.0.2.7") == "192.0.2.7"
    assert source_key("::ffff:192.0.2.7") == "192.0.2.7"
    # one IPv6 subscriber owns a /64: its addresses are one source
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("2001:db8:1:2:bbbb::2")
    assert source_key("2001:db8:1:2::1") != source_key("2001:db8:1:3::1")
    assert source_key(None) == source_key("") == ""
    assert source_key("fe80::1%eth0") == source_key("fe80::2")
