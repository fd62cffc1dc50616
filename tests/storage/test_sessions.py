"""storage/sessions.py: session lifetime (idle, absolute, logoff) and async tickets."""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.storage.sessions import (
    SessionConfig,
    SessionStore,
    TicketState,
    hash_key,
    open_session_store,
)

MIN = 60.0
HOUR = 3600.0


class FakeClock:
    """Wall-clock seconds that move only when told to."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sessions(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SessionStore]:
    async with open_session_store(tmp_path / "sessions.db", clock=clock) as store:
        yield store


def code_of(info: pytest.ExceptionInfo[StarwrsError]) -> ErrorCode:
    return info.value.code


async def test_key_is_random_and_stored_only_hashed(sessions: SessionStore) -> None:
    key, session = await sessions.start("jeanvnet2")
    other, _ = await sessions.start("jeanvnet2")
    assert key != other
    assert len(key) >= 22  # 128 bits of URL-safe base64 at the least
    assert session.session_id == hashlib.sha256(key.encode()).hexdigest()
    assert session.user_id == "jeanvnet2"
    raw = sqlite3.connect(sessions.db.path)
    try:
        dump = "\n".join(raw.iterdump())
        stored = [bytes(r[0]) for r in raw.execute("SELECT key_hash FROM sessions")]
    finally:
        raw.close()
    assert key not in dump
    assert other not in dump
    assert hash_key(key) in stored


async def test_touch_keeps_an_idle_session_alive(sessions: SessionStore, clock: FakeClock) -> None:
    key, _ = await sessions.start("dorod")
    for _ in range(5):
        clock.advance(14 * MIN)
        session = await sessions.touch(key)
        assert session.last_seen == clock.now
        assert session.expires == clock.now + 15 * MIN
    clock.advance(15 * MIN)  # idle for exactly the timeout: over
    with pytest.raises(StarwrsError) as info:
        await sessions.touch(key)
    assert code_of(info) == ErrorCode.NO_SESSION


async def test_absolute_timeout_ends_a_busy_session(
    sessions: SessionStore, clock: FakeClock
) -> None:
    key, started = await sessions.start("LynneLevy2")
    while clock.now + 10 * MIN < started.created + 12 * HOUR:
        clock.advance(10 * MIN)
        await sessions.touch(key)
    clock.advance(10 * MIN)
    with pytest.raises(StarwrsError) as info:
        await sessions.touch(key)
    assert code_of(info) == ErrorCode.NO_SESSION
    with pytest.raises(StarwrsError):
        await sessions.peek(key)


async def test_peek_does_not_touch(sessions: SessionStore, clock: FakeClock) -> None:
    key, _ = await sessions.start("dorod")
    clock.advance(10 * MIN)
    assert (await sessions.peek(key)).last_seen == clock.now - 10 * MIN
    clock.advance(6 * MIN)
    with pytest.raises(StarwrsError):
        await sessions.peek(key)


async def test_touch_interval_limits_writes(tmp_path: Path, clock: FakeClock) -> None:
    config = SessionConfig(touch_interval=30.0)
    async with open_session_store(tmp_path / "s.db", config=config, clock=clock) as store:
        key, _ = await store.start("dorod")
        clock.advance(10)
        assert (await store.touch(key)).last_seen == clock.now - 10  # not written
        clock.advance(25)
        assert (await store.touch(key)).last_seen == clock.now


async def test_logoff_and_unknown_and_bad_keys(sessions: SessionStore) -> None:
    key, _ = await sessions.start("jeanvnet2")
    assert await sessions.end(key) is True
    assert await sessions.end(key) is False
    for bad in (key, "", "x" * 300, "forged-session-key", "\u00e9t\u00e9"):
        with pytest.raises(StarwrsError) as info:
            await sessions.touch(bad)
        assert code_of(info) == ErrorCode.NO_SESSION


async def test_rotation_at_logon_ends_the_replaced_session(sessions: SessionStore) -> None:
    old, _ = await sessions.start("jeanvnet2")
    new, _ = await sessions.start("jeanvnet2", replacing=old)
    with pytest.raises(StarwrsError):
        await sessions.touch(old)
    assert (await sessions.touch(new)).user_id == "jeanvnet2"


async def test_end_user_and_count_live(sessions: SessionStore, clock: FakeClock) -> None:
    a1, _ = await sessions.start("dorod")
    await sessions.start("dorod")
    b, _ = await sessions.start("jeanvnet2")
    assert await sessions.count_live() == 3
    assert await sessions.count_live("dorod") == 2
    assert await sessions.end_user("dorod") == 2
    with pytest.raises(StarwrsError):
        await sessions.touch(a1)
    assert (await sessions.touch(b)).user_id == "jeanvnet2"
    clock.advance(16 * MIN)
    assert await sessions.count_live() == 0


async def test_session_data(sessions: SessionStore) -> None:
    key, session = await sessions.start("dorod", data=b"\x81\xa1a\x01")
    assert session.data == b"\x81\xa1a\x01"
    await sessions.set_data(key, b"new")
    assert (await sessions.peek(key)).data == b"new"
    await sessions.end(key)
    with pytest.raises(StarwrsError):
        await sessions.set_data(key, b"gone")


async def test_purge_expired(sessions: SessionStore, clock: FakeClock) -> None:
    stale, _ = await sessions.start("dorod")
    ticket = await sessions.issue_ticket(stale, "RM")
    clock.advance(10 * MIN)
    live, _ = await sessions.start("jeanvnet2")
    done = await sessions.issue_ticket(live, "INBX")
    await sessions.complete_ticket(done.ticket_id, 0, b"ok")
    await sessions.poll_ticket(live, done.ticket_id)  # fetched: TTL starts
    clock.advance(6 * MIN)  # stale is idle 16 min, live 6 min
    assert await sessions.purge_expired() == (1, 0)
    with pytest.raises(StarwrsError) as info:
        await sessions.poll_ticket(stale, ticket.ticket_id)
    assert code_of(info) == ErrorCode.UNKNOWN_TICKET  # gone with its session
    await sessions.touch(live)
    for _ in range(6):
        clock.advance(10 * MIN)
        await sessions.touch(live)
    assert await sessions.purge_expired() == (0, 1)


async def test_ticket_lifecycle(sessions: SessionStore, clock: FakeClock) -> None:
    key, _ = await sessions.start("jeanvnet2")
    ticket = await sessions.issue_ticket(key, "RM")
    assert ticket.state is TicketState.PENDING
    assert ticket.target == "RM"
    assert len(ticket.ticket_id) >= 22
    polled = await sessions.poll_ticket(key, ticket.ticket_id)
    assert polled.state is TicketState.PENDING
    assert polled.payload is None
    clock.advance(5)
    await sessions.complete_ticket(ticket.ticket_id, 6109, b"SURL<ERROR=6109>")
    with pytest.raises(StarwrsError) as info:  # only once
        await sessions.complete_ticket(ticket.ticket_id, 0, b"")
    assert code_of(info) == ErrorCode.UNKNOWN_TICKET
    # a done result waits for its first fetch however long it takes
    for _ in range(30):  # five hours, the session itself kept alive
        clock.advance(10 * MIN)
        await sessions.touch(key)
    result = await sessions.poll_ticket(key, ticket.ticket_id)
    assert result.state is TicketState.DONE
    assert (result.status, result.payload) == (6109, b"SURL<ERROR=6109>")
    assert result.fetched == clock.now
    assert result.expires == clock.now + HOUR
    clock.advance(HOUR - 1)  # fetched again within the TTL: the same answer
    assert (await sessions.poll_ticket(key, ticket.ticket_id)).payload == b"SURL<ERROR=6109>"
    clock.advance(1)
    with pytest.raises(StarwrsError) as info:
        await sessions.poll_ticket(key, ticket.ticket_id)
    assert code_of(info) == ErrorCode.UNKNOWN_TICKET


async def test_unknown_versus_foreign_ticket(sessions: SessionStore) -> None:
    mine, _ = await sessions.start("jeanvnet2")
    theirs, _ = await sessions.start("tfnadmin")
    ticket = await sessions.issue_ticket(theirs, "INBX")
    with pytest.raises(StarwrsError) as info:
        await sessions.poll_ticket(mine, ticket.ticket_id)
    assert code_of(info) == ErrorCode.NOT_ENTITLED
    with pytest.raises(StarwrsError) as info:
        await sessions.poll_ticket(mine, "no-such-ticket")
    assert code_of(info) == ErrorCode.UNKNOWN_TICKET
    await sessions.end(theirs)  # logoff takes its tickets along
    with pytest.raises(StarwrsError) as info:
        await sessions.poll_ticket(mine, ticket.ticket_id)
    assert code_of(info) == ErrorCode.UNKNOWN_TICKET
    with pytest.raises(StarwrsError) as info:
        await sessions.complete_ticket(ticket.ticket_id, 0, b"late")
    assert code_of(info) == ErrorCode.UNKNOWN_TICKET


async def test_abandoning_settles_only_that_dispatchers_pending_tickets(
    sessions: SessionStore,
) -> None:
    key, _ = await sessions.start("jeanvnet2")
    lost = await sessions.issue_ticket(key, "RM", dispatcher=0)
    finished = await sessions.issue_ticket(key, "RM", dispatcher=0)
    await sessions.complete_ticket(finished.ticket_id, 0, b"GRTLA<ERROR=0>")
    elsewhere = await sessions.issue_ticket(key, "RM", dispatcher=1)
    assert await sessions.abandon_tickets(0, 7006, b"<ERROR=7006>") == 1
    settled = await sessions.poll_ticket(key, lost.ticket_id)
    assert (settled.state, settled.status, settled.payload) == (
        TicketState.DONE,
        7006,
        b"<ERROR=7006>",
    )
    assert (await sessions.poll_ticket(key, finished.ticket_id)).status == 0
    assert (await sessions.poll_ticket(key, elsewhere.ticket_id)).state is TicketState.PENDING
    assert await sessions.abandon_tickets(0, 7006, b"") == 0  # nothing left to settle
    with pytest.raises(StarwrsError) as info:  # and a late answer finds it settled
        await sessions.complete_ticket(lost.ticket_id, 0, b"late")
    assert code_of(info) == ErrorCode.UNKNOWN_TICKET


async def test_ticket_needs_a_session(sessions: SessionStore) -> None:
    with pytest.raises(StarwrsError) as info:
        await sessions.issue_ticket("not-a-session", "RM")
    assert code_of(info) == ErrorCode.NO_SESSION


_users = itertools.count()


@settings(max_examples=40, deadline=None)
@given(gaps=st.lists(st.floats(min_value=0, max_value=20 * MIN), min_size=1, max_size=8))
async def test_alive_iff_no_gap_reaches_idle_and_age_below_absolute(
    tmp_path_factory: pytest.TempPathFactory, gaps: list[float]
) -> None:
    """Model: a touch succeeds iff every gap since the last success is < idle
    and the age is < absolute; after the first failure every touch fails."""
    config = SessionConfig(idle_timeout=15 * MIN, absolute_timeout=HOUR, touch_interval=0)
    clock = FakeClock()
    path = tmp_path_factory.getbasetemp() / "property-sessions.db"
    async with open_session_store(path, config=config, clock=clock) as store:
        key, started = await store.start(f"user{next(_users)}")
        last, alive = started.created, True
        codes: set[ErrorCode] = set()
        for gap in gaps:
            clock.advance(gap)
            expected = (
                alive
                and clock.now - last < config.idle_timeout
                and clock.now - started.created < config.absolute_timeout
            )
            try:
                await store.touch(key)
                got = True
            except StarwrsError as err:
                codes.add(err.code)
                got = False
            assert got == expected
            if got:
                last = clock.now
            alive = got
        assert codes <= {ErrorCode.NO_SESSION}


async def test_boot_ids_are_unique_across_openers(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "boots.db"
    async with (
        open_session_store(path, clock=clock) as a,
        open_session_store(path, clock=clock) as b,
    ):
        ids = [await a.new_boot(0), await b.new_boot(1), await a.new_boot(0)]
    async with open_session_store(path, clock=clock) as c:
        ids.append(await c.new_boot(0))
    assert ids == sorted(set(ids))
