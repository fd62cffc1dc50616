"""A test-double dispatcher and a small web stack for the web server and client tests.

:class:`FakeDispatcher` speaks the real protocol (``FrameChannel`` over mutual TLS
with the deployment's ``dispatcher`` certificate) but keeps its sessions in a set
and its answers scripted, so tests can make it misbehave on purpose: break a bulk
transfer, answer slowly, refuse a logon with 7012.  :func:`start_stack` runs it
and ``serve_web`` on loopback in the caller's nursery.  No tests live here.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
from starwrs.grammar import MessageError, parse
from starwrs.protocol import (
    BulkData,
    BulkGet,
    BulkPut,
    ConnectionClosed,
    Echo,
    EchoReply,
    Event,
    Pending,
    Poll,
    ProtocolError,
    PutReceiver,
    Request,
    Response,
    Role,
    Submit,
    Ticket,
    data_frames,
)
from starwrs.runtime.channel import FrameChannel, PeerGone, ReadTimeout
from starwrs.runtime.config import Address, Deployment, Limits
from starwrs.runtime.pki import Pki, client_context_for_ca, ensure_pki
from starwrs.web.server import serve_web

USER = "jeanvnet2"
PASSWORD = "s3cret, with <odd> characters=~"
THROTTLED_USER = "lockedout"
#: a resource the fake serves in 256 KiB frames
BIG = bytes(range(256)) * (3 * 4096 + 17)  # ~3 MiB
CHUNK = 256 * 1024
#: a resource whose last frame names the wrong sha256
BAD_SUM = b"x" * 1000


@functools.cache
def huge() -> bytes:
    """64 MiB of zeros: a resource far larger than any buffer on the way."""
    return bytes(64 * 1024 * 1024)


@dataclass
class Seen:
    """One frame the fake received: its kind, target, key and payload."""

    kind: str
    target: str
    key: str
    payload: bytes = b""


@dataclass
class FakeDispatcher:
    """A scripted dispatcher on mutual TLS."""

    pki: Pki
    sessions: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)
    #: bulk get: close the connection after this many data frames, this many times
    break_after: int = 0
    breaks_left: int = 0
    #: bulk get offsets asked for, in order
    offsets: list[int] = field(default_factory=list)
    #: polls answered pending before the final answer
    pending_polls: int = 1
    #: seconds to wait before each bulk data frame
    frame_delay: float = 0.0
    #: set when a bulk get's client went away before the end
    cancelled: trio.Event = field(default_factory=trio.Event)
    #: bytes of the last completed put
    put_data: bytes | None = None
    connections: int = 0
    #: data bytes sent in bulk frames
    sent_bytes: int = 0
    #: close every connection after one synchronous answer (a stale pooled link)
    one_shot: bool = False
    #: set when a ``SLOW<>`` request's caller closed the link while it was "working"
    slow_abandoned: trio.Event = field(default_factory=trio.Event)

    async def serve(
        self, *, task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED
    ) -> None:
        context = self.pki.internal_server_context("dispatcher")
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        try:
            port = listeners[0].socket.getsockname()[1]
            async with trio.open_nursery() as nursery:
                for listener in listeners:
                    nursery.start_soon(self._accept, listener, context, nursery)
                task_status.started(Address("127.0.0.1", port))
        finally:
            for listener in listeners:
                listener.socket.close()

    async def _accept(
        self, listener: trio.SocketListener, context: ssl.SSLContext, nursery: trio.Nursery
    ) -> None:
        while True:
            stream = await listener.accept()
            nursery.start_soon(self._connection, stream, context)

    async def _connection(self, tcp: trio.SocketStream, context: ssl.SSLContext) -> None:
        self.connections += 1
        stream = trio.SSLStream(tcp, context, server_side=True)
        channel = FrameChannel(stream, Role.SERVER, read_timeout=30)
        async with channel:
            try:
                await stream.do_handshake()
                while True:
                    event = await channel.receive()
                    if isinstance(event, ConnectionClosed):
                        return
                    if not await self._answer(channel, event):
                        return
            except (PeerGone, ReadTimeout, ProtocolError, trio.BrokenResourceError, OSError):
                return

    def _record(self, kind: str, target: str, key: str, payload: bytes = b"") -> None:
        self.seen.append(Seen(kind, target, key, payload))

    async def _answer(self, channel: FrameChannel, event: Event) -> bool:
        """Answer one exchange; False when the connection must close afterwards."""
        if isinstance(event, Echo):
            self._record("echo", event.target, event.key)
            await channel.send(EchoReply())
            return True
        if isinstance(event, Request):
            self._record("request", event.target, event.key, event.payload)
            if event.payload.startswith(b"SLOW"):
                with trio.move_on_after(5):
                    with contextlib.suppress(PeerGone):
                        await channel.receive()  # "working" until the caller goes away
                    self.slow_abandoned.set()
                return False
            await channel.send(self._request(event))
            return not self.one_shot
        if isinstance(event, Submit):
            self._record("submit", event.target, event.key, event.payload)
            if event.key not in self.sessions:
                await channel.send(Response(7004, b"ERROR<ERROR=7004>"))
            else:
                await channel.send(Ticket("tkt-" + event.payload.decode()[:4]))
            return False
        if isinstance(event, Poll):
            self._record("poll", event.target, event.key, event.ticket.encode())
            if event.key not in self.sessions:
                await channel.send(Response(7004, b"ERROR<ERROR=7004>"))
            elif self.pending_polls > 0:
                self.pending_polls -= 1
                await channel.send(Pending())
            else:
                await channel.send(Response(0, f"DONE<ERROR=0,TICKET={event.ticket}>".encode()))
            return False
        if isinstance(event, BulkGet):
            self._record("get", event.target, event.key, event.resource.encode())
            await self._get(channel, event)
            return channel.reusable and not self.one_shot  # a whole get: the link goes on
        if isinstance(event, BulkPut):
            self._record("put", event.target, event.key, event.resource.encode())
            await self._put(channel, event)
            return False
        return False

    def _request(self, event: Request) -> Response:
        if event.target == "DSP":
            try:
                message = parse(event.payload.decode())
            except (UnicodeDecodeError, MessageError):
                return Response(6611, b"LONA<ERROR=6611>")
            if message.acronym == "LON":
                user, password = message.get("USERID"), message.get("PASSWORD")
                if user == THROTTLED_USER:
                    return Response(7012, b"LONA<ERROR=7012>")
                if user != USER or password != PASSWORD:
                    return Response(6115, b"LONA<ERROR=6115>")
                self.sessions.discard(event.key)  # the replaced session
                key = secrets.token_urlsafe(32)
                self.sessions.add(key)
                return Response(
                    0,
                    (
                        f"LONA<ERROR=0,SESSION={key},USERID={USER},ENTPID=00022924,"
                        "APPS=<INBX~RM>,PRODUCTS=<S~T>,CORPIDS=<90000001~90000002>,"
                        "TIMEZONE=EST,LANG=1234,CURR=2345>"
                    ).encode(),
                )
            if message.acronym == "LOFF":
                self.sessions.discard(event.key)
                return Response(0, b"LOFA<ERROR=0>")
            return Response(6104, b"ERROR<ERROR=6104>")
        if event.key not in self.sessions:
            return Response(7004, b"ERROR<ERROR=7004,REASON=no session>")
        if event.payload.startswith(b"BAD"):
            return Response(6104, b"BADA<ERROR=6104>")
        return Response(0, b"GRTLA<ERROR=0,TEMPLATES=2>")

    async def _get(self, channel: FrameChannel, event: BulkGet) -> None:
        if event.key not in self.sessions:
            await channel.send(Response(7004, b"ERROR<ERROR=7004>"))
            return
        self.offsets.append(event.offset)
        if event.resource == "F<INBOXID=42>":
            frames = data_frames(7, BIG, offset=event.offset, chunk_size=CHUNK)
        elif event.resource == "F<INBOXID=64>":
            frames = data_frames(9, huge(), offset=event.offset, sha256="0" * 64)
        elif event.resource == "F<INBOXID=666>":
            frames = data_frames(8, BAD_SUM, offset=event.offset, sha256="0" * 64)
        else:
            await channel.send(Response(5105, b"F<ERROR=5105>"))
            return
        sent = 0
        breaking = self.breaks_left > 0
        try:
            for frame in frames:
                if self.frame_delay:
                    await trio.sleep(self.frame_delay)
                await channel.send(frame)
                self.sent_bytes += len(frame.data)
                sent += 1
                if breaking and sent >= self.break_after:
                    self.breaks_left -= 1
                    await trio.aclose_forcefully(channel.stream)
                    return
        except PeerGone:
            self.cancelled.set()

    async def _put(self, channel: FrameChannel, event: BulkPut) -> None:
        if event.key not in self.sessions:
            await channel.send(Response(7004, b"ERROR<ERROR=7004>"))
            return
        receiver = PutReceiver(event)
        parts: list[bytes] = []
        while True:
            data = await channel.receive()
            if not isinstance(data, BulkData):
                return
            try:
                parts.append(bytes(receiver.feed(data)))
            except ProtocolError as err:
                await channel.send(Response(err.code, b"PUTA<ERROR=7011>"))
                return
            if data.done:
                break
        self.put_data = b"".join(parts)
        await channel.send(Response(0, f"PUTA<ERROR=0,SIZE={len(self.put_data)}>".encode()))


@dataclass
class Stack:
    """The web server in front of a fake dispatcher, on loopback."""

    deployment: Deployment
    fake: FakeDispatcher
    web: Address
    ca: Path

    @property
    def url(self) -> str:
        return f"https://{self.web.host}:{self.web.port}"

    def client_context(self) -> ssl.SSLContext:
        return client_context_for_ca(self.ca)


@functools.cache
def pki_for(state_dir: Path) -> Pki:
    return ensure_pki(state_dir)


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One deployment PKI for the whole session (import this fixture to use it)."""
    path = tmp_path_factory.mktemp("web-state")
    pki_for(path)
    return path


async def start_stack(
    nursery: trio.Nursery,
    state_dir: Path,
    *,
    limits: Limits | None = None,
    extra_dispatchers: tuple[Address, ...] = (),
    dispatcher_first: bool = True,
) -> Stack:
    """Start a fake dispatcher and ``serve_web`` in *nursery*."""
    pki = pki_for(state_dir)
    fake = FakeDispatcher(pki)
    address = await nursery.start(fake.serve)
    dispatchers = (
        (address, *extra_dispatchers) if dispatcher_first else (*extra_dispatchers, address)
    )
    deployment = Deployment(
        state_dir=state_dir,
        web=Address("127.0.0.1", 0),
        dispatchers=dispatchers,
        limits=limits or Limits(head_timeout=1.0, read_timeout=2.0, proxy_timeout=2.0),
    )
    web = await nursery.start(functools.partial(serve_web, deployment))
    return Stack(deployment, fake, web, pki.ca_cert)


def dead_address() -> Address:
    """A loopback address where nothing listens (a dead dispatcher)."""
    from starwrs.runtime.config import free_port

    return Address("127.0.0.1", free_port())
