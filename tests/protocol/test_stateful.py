"""A client and a server coupled in memory, driven through random sessions.

Hypothesis picks a sequence of sync transactions and echoes on a long-lived
connection, asynchronous submits, completions and polls (with a clock that moves,
so results expire), bulk gets that are interrupted and resumed at random offsets,
bulk gets cancelled with frames in flight, and bulk puts, some with a wrong
checksum.  Every byte goes through the real codecs in random chunkings; the model
checks every answer, that every download's sha256 matches, and that a failed put
leaves nothing behind.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import event as note_event
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)
from starwrs.protocol.bulk import Download, PutReceiver, data_frames, put_request
from starwrs.protocol.connection import State
from starwrs.protocol.errors import LocalProtocolError, ProtocolError
from starwrs.protocol.events import (
    BulkCancel,
    BulkData,
    BulkGet,
    BulkPut,
    Echo,
    EchoReply,
    Pending,
    Poll,
    Request,
    Response,
    Submit,
    Ticket,
)
from starwrs.protocol.tickets import TicketStore

from .helpers import ConnectionPair

SESSIONS = ("sessA", "sessB")
NAMES = ("F<INBOXID=1>", "F<INBOXID=2>", "F<INBOXID=3>")
TTL = 60.0


def random_chunker(seed: int) -> ConnectionPair:
    rng = random.Random(seed)

    def chunker(data: bytes) -> list[bytes]:
        out, i = [], 0
        while i < len(data):
            step = rng.choice((1, 7, 24, 100, 4096, 70000))
            out.append(data[i : i + step])
            i += step
        return out

    return ConnectionPair(chunker)


def blob(size: int, seed: int) -> bytes:
    """*size* bytes, reproducible (Hypothesis draws small binaries; these are not)."""
    return random.Random(seed).randbytes(size)


class _Work:
    def __init__(self, session: str, payload: bytes) -> None:
        self.session = session
        self.payload = payload
        self.result: Response | None = None
        self.fetched: float | None = None


class ProtocolSessions(RuleBasedStateMachine):
    tickets = Bundle("tickets")

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.counter = 0
        self.store = TicketStore(TTL, new_ticket=self._next_ticket)
        self.work: dict[str, _Work] = {}
        self.resources: dict[str, bytes] = {}
        self.held: dict[str, bytes] = {}  # partial downloads, for resuming
        self.sync: ConnectionPair | None = None
        self.transfer = 0

    def _next_ticket(self) -> str:
        self.counter += 1
        return f"tk-{self.counter}"

    def _pair(self, seed: int) -> ConnectionPair:
        return random_chunker(seed)

    @initialize(sizes=st.lists(st.integers(0, 30000), min_size=len(NAMES), max_size=len(NAMES)))
    def make_resources(self, sizes: list[int]) -> None:
        self.resources = {
            name: blob(size, i) for i, (name, size) in enumerate(zip(NAMES, sizes, strict=True))
        }

    # -- synchronous ------------------------------------------------------------------

    @rule(payload=st.binary(max_size=300), seed=st.integers(0, 2**32))
    def sync_transaction(self, payload: bytes, seed: int) -> None:
        if self.sync is None:
            self.sync = self._pair(seed)
        request = Request("RM", payload, "sessA", 0)
        assert self.sync.client_send(request) == [request]
        answer = Response(0, payload[::-1], serial=seed)
        assert self.sync.server_send(answer) == [answer]

    @precondition(lambda self: self.sync is not None)
    @rule()
    def echo(self) -> None:
        assert self.sync is not None
        assert self.sync.client_send(Echo("RM", "sessA")) == [Echo("RM", "sessA")]
        assert self.sync.server_send(EchoReply()) == [EchoReply()]

    @precondition(lambda self: self.sync is not None)
    @rule()
    def close_sync(self) -> None:
        assert self.sync is not None
        self.sync.close()
        self.sync = None

    @invariant()
    def sync_connection_is_idle(self) -> None:
        if self.sync is not None:
            assert self.sync.client.state is self.sync.server.state is State.IDLE

    # -- asynchronous: submit, complete, poll -----------------------------------------

    @rule(
        target=tickets,
        payload=st.binary(max_size=100),
        session=st.sampled_from(SESSIONS),
        seed=st.integers(0, 2**32),
    )
    def submit(self, payload: bytes, session: str, seed: int) -> str:
        pair = self._pair(seed)
        assert pair.client_send(Submit("RS", payload, session)) == [Submit("RS", payload, session)]
        ticket = self.store.issue(session, self.now)
        assert pair.server_send(Ticket(ticket)) == [Ticket(ticket)]
        assert pair.client.state is State.MUST_CLOSE
        pair.close()
        self.work[ticket] = _Work(session, payload)
        return ticket

    def _expired(self, work: _Work) -> bool:
        return work.fetched is not None and self.now - work.fetched >= TTL

    @rule(ticket=tickets, status=st.sampled_from([0, 6101, 5100]))
    def complete(self, ticket: str, status: int) -> None:
        work = self.work[ticket]
        result = Response(status, work.payload[::-1])
        if self._expired(work):
            with pytest.raises(LocalProtocolError) as info:
                self.store.complete(ticket, result, self.now)
            assert info.value.code == 7010
            return
        self.store.complete(ticket, result, self.now)
        work.result = result

    @rule(ticket=tickets, session=st.sampled_from(SESSIONS), seed=st.integers(0, 2**32))
    def poll(self, ticket: str, session: str, seed: int) -> None:
        work = self.work[ticket]
        note_event(f"poll answer: {'expired' if self._expired(work) else 'live'}")
        if self._expired(work):
            expected: Pending | Response = Response(7010)
        elif session != work.session:
            expected = Response(7003)
        elif work.result is None:
            expected = Pending()
        else:
            expected = work.result
            if work.fetched is None:
                work.fetched = self.now
        pair = self._pair(seed)
        assert pair.client_send(Poll(ticket, "RS", session)) == [Poll(ticket, "RS", session)]
        try:
            answer = self.store.poll(ticket, session, self.now)
        except ProtocolError as err:
            answer = Response(err.code)
        assert answer == expected
        assert pair.server_send(answer) == [answer]
        pair.close()

    @rule(ticket=tickets, seed=st.integers(0, 2**32))
    def poll_twice_across_the_ttl(self, ticket: str, seed: int) -> None:
        """Poll as the owner, then again once the TTL has passed."""
        session = self.work[ticket].session
        self.poll(ticket, session, seed)
        self.now += TTL
        self.poll(ticket, session, seed + 1)

    @rule(ticket=consumes(tickets))
    def forget(self, ticket: str) -> None:
        """Drop a ticket from the bundle so the set of live tickets changes."""

    @rule(seconds=st.sampled_from([0.5, 30.0, TTL]))
    def tick(self, seconds: float) -> None:
        self.now += seconds

    # -- bulk -------------------------------------------------------------------------

    def _get(
        self, name: str, seed: int, chunk: int
    ) -> tuple[ConnectionPair, Download, list[BulkData]]:
        held = self.held.get(name, b"")
        download = Download(name, held, target="INBX", key="sessA")
        pair = self._pair(seed)
        (request,) = pair.client_send(download.request())
        assert isinstance(request, BulkGet)
        assert request.offset == len(held)
        note_event("bulk get resumed" if held else "bulk get from 0")
        self.transfer += 1
        frames = list(
            data_frames(
                self.transfer, self.resources[name], offset=request.offset, chunk_size=chunk
            )
        )
        return pair, download, frames

    @rule(
        name=st.sampled_from(NAMES),
        stop=st.none() | st.integers(0, 6),
        chunk=st.integers(64, 5000),
        seed=st.integers(0, 2**32),
    )
    def bulk_get(self, name: str, stop: int | None, chunk: int, seed: int) -> None:
        pair, download, frames = self._get(name, seed, chunk)
        held = bytearray(self.held.get(name, b""))
        for i, frame in enumerate(frames):
            if i == stop and not frame.done:  # the connection drops: keep what we have
                pair.close()
                self.held[name] = bytes(held)
                return
            for event in pair.server_send(frame):
                assert isinstance(event, BulkData)
                held += download.feed(event)  # raises 7011 if the sha256 does not match
        assert download.done
        assert bytes(held) == self.resources[name]
        # a whole get leaves the connection reusable: it becomes the sync connection
        assert (pair.client.state, pair.server.state) == (State.IDLE, State.GET_DONE)
        self.held.pop(name, None)
        if self.sync is None:
            note_event("connection reused after a bulk get")
            self.sync = pair
            request = Request("RM", b"GRTL<A=1>", "sessA", 0)
            assert pair.client_send(request) == [request]
            assert pair.server_send(Response(0, b"ok")) == [Response(0, b"ok")]
        else:
            pair.close()

    @rule(
        name=st.sampled_from(NAMES),
        after=st.integers(1, 4),
        in_flight=st.integers(0, 3),
        seed=st.integers(0, 2**32),
    )
    def bulk_cancel(self, name: str, after: int, in_flight: int, seed: int) -> None:
        pair, download, frames = self._get(name, seed, 256)
        if len(frames) <= after:
            pair.close()
            return
        held = bytearray(self.held.get(name, b""))
        for frame in frames[:after]:
            for event in pair.server_send(frame):
                assert isinstance(event, BulkData)
                held += download.feed(event)
        crossing = frames[after : after + in_flight]
        flying = [pair.server.send(f) for f in crossing]
        note_event(f"cancel with {len(flying)} frame(s) in flight")
        assert pair.client_send(BulkCancel(self.transfer)) == [BulkCancel(self.transfer)]
        finished = bool(crossing) and crossing[-1].done
        assert pair.server.state is (State.DRAINING if finished else State.MUST_CLOSE)
        # (finished: the cancel crossed the last frame; GET_DONE takes it to DRAINING)
        for data in flying:  # frames that crossed the cancel: delivered, dropped
            pair.client.receive_data(data)
        assert pair.client.state is State.CANCELLED
        pair.close()
        self.held[name] = bytes(held)  # a valid prefix: the next get resumes from it

    @rule(
        name=st.sampled_from(NAMES),
        size=st.integers(0, 30000),
        flip=st.none() | st.integers(0, 30000),
        seed=st.integers(0, 2**32),
    )
    def bulk_put(self, name: str, size: int, flip: int | None, seed: int) -> None:
        """Upload new content; with *flip*, one byte changes on the way (same size)."""
        content = blob(size, seed)
        before = self.resources[name]
        corrupt = flip is not None and len(content) > 0
        sent = bytearray(content)
        if corrupt:
            assert flip is not None
            sent[flip % len(content)] ^= 0x55
        pair = self._pair(seed)
        request = put_request(name, content, target="INBX", key="sessA")
        (opened,) = pair.client_send(request)
        assert isinstance(opened, BulkPut)
        receiver = PutReceiver(opened)
        staged = bytearray()
        self.transfer += 1
        answer = Response(0)
        try:
            for frame in data_frames(
                self.transfer, bytes(sent), chunk_size=4096, sha256=request.sha256
            ):
                for event in pair.client_send(frame):
                    assert isinstance(event, BulkData)
                    staged += receiver.feed(event)
        except ProtocolError as err:
            answer = Response(err.code)
        assert pair.server_send(answer) == [answer]
        if answer.status == 0:
            assert receiver.complete
            self.resources[name] = bytes(staged)  # commit only now
            self.held.pop(name, None)
        pair.close()
        note_event(f"put answered {answer.status}")
        if corrupt:
            assert answer.status == 7011
            assert self.resources[name] == before  # nothing kept
        else:
            assert answer.status == 0
            assert self.resources[name] == content


ProtocolSessions.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_protocol_sessions = ProtocolSessions.TestCase
