"""Test doubles for the dispatcher's tests: proxies on FrameChannel, a running stack.

* :class:`ProxyDouble` -- a mutual-TLS proxy built on :class:`FrameChannel` that
  records every request and answers through a behaviour of the test's choice;
  :meth:`ProxyDouble.kill` stops it (listener and open connections) at once.
* :class:`OeBehaviour` -- order entry: ``VU`` and ``GUA`` from an editable table of
  users, answering the way ``proxies/oe/server.py`` does.
* :class:`AppBehaviour` -- an application proxy (RM, INBX, DSS): answers
  ``<acronym>A<ERROR=0>``, holds ``HOLD`` requests until :attr:`release` is set,
  serves bulk gets and puts of in-memory resources.
* :func:`running_stack` -- ensure_pki, the doubles, and N real dispatchers on
  loopback (real TLS, real SQLite in the test's directory, an injected clock).
"""

from __future__ import annotations

import math
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from starwrs.dispatcher.server import serve_dispatcher
from starwrs.grammar import parse
from starwrs.protocol import (
    BulkData,
    BulkGet,
    BulkPut,
    ConnectionClosed,
    Echo,
    EchoReply,
    Event,
    ProtocolError,
    PutReceiver,
    Request,
    Response,
    Role,
    Submit,
    data_frames,
)
from starwrs.runtime.channel import FrameChannel, PeerGone, ReadTimeout, open_tls_channel
from starwrs.runtime.config import Address, Deployment, Limits, free_port
from starwrs.runtime.pki import Pki, ensure_pki

Behaviour = Callable[[FrameChannel, Event], Awaitable[None]]


class FakeClock:
    """Wall-clock seconds that move only when told to."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ProxyDouble:
    """A proxy on loopback: mutual TLS, a frame loop, a behaviour per request."""

    def __init__(self, name: str, behaviour: Behaviour) -> None:
        self.name = name
        self.behaviour = behaviour
        self.requests: list[Request] = []
        self.port = 0
        #: connections accepted
        self.connections = 0
        #: keep a connection after a whole bulk get (as the proxy framework does)
        self.keep_after_get = True
        self._scope = trio.CancelScope()

    async def serve(
        self,
        context: ssl.SSLContext,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with self._scope:
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            self.port = listeners[0].socket.getsockname()[1]
            tls = [trio.SSLListener(lst, context, https_compatible=False) for lst in listeners]
            async with trio.open_nursery() as nursery:
                task_status.started(self.port)
                await trio.serve_listeners(self._connection, tls, handler_nursery=nursery)  # type: ignore[arg-type]

    def kill(self) -> None:
        """Stop listening and drop every connection, now."""
        self._scope.cancel()

    async def _connection(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        channel = FrameChannel(stream, Role.SERVER, read_timeout=30)
        self.connections += 1
        async with channel:
            try:
                await stream.do_handshake()
                while True:
                    event = await channel.receive(math.inf)
                    if isinstance(event, ConnectionClosed):
                        return
                    if isinstance(event, Echo):
                        await channel.send(EchoReply())
                        continue
                    if isinstance(event, Request):
                        self.requests.append(event)
                    await self.behaviour(channel, event)
                    if isinstance(event, Request):
                        continue
                    if not (self.keep_after_get and channel.reusable):
                        return
            except (PeerGone, ReadTimeout, ProtocolError, trio.BrokenResourceError):
                return


def answer_to(payload: bytes) -> bytes:
    """``GRTL<...>`` -> ``GRTLA<ERROR=0>``."""
    acronym = parse(payload.decode()).acronym or ""
    return f"{acronym}A<ERROR=0>".encode()


@dataclass
class OeUser:
    """A user as the order entry double knows them."""

    password: str
    entp_id: str = "00022924"
    apps: tuple[str, ...] = ("RM", "INBX")
    enabled: bool = True
    throttled: bool = False


@dataclass
class OeBehaviour:
    """Order entry: VU and GUA, like proxies/oe/server.py."""

    users: dict[str, OeUser] = field(default_factory=dict)
    #: (acronym, user, key) of every VU/GUA asked
    asked: list[tuple[str, str, str]] = field(default_factory=list)

    def gua_count(self, user: str) -> int:
        return sum(1 for acronym, u, _ in self.asked if acronym == "GUA" and u == user)

    async def __call__(self, channel: FrameChannel, event: Event) -> None:
        assert isinstance(event, Request)
        message = parse(event.payload.decode())
        user_id = str(message.get("USERID"))
        self.asked.append((message.acronym or "", user_id, event.key))
        user = self.users.get(user_id)
        if message.acronym == "VU":
            if user is not None and user.throttled:
                text = "VUA<ERROR=7012>"
            elif user is None or not user.enabled or message.get("PASSWORD") != user.password:
                text = "VUA<ERROR=6115>"
            else:
                text = (
                    f"VUA<ERROR=0,USERID={user_id},ENTPID={user.entp_id},"
                    "TIMEZONE=EST,LANG=1234,CURR=2345>"
                )
        elif message.acronym == "GUA":
            if user is None:
                text = "GUAA<ERROR=6115>"
            elif not user.enabled:
                text = "GUAA<ERROR=7003>"
            else:
                apps = "~".join(user.apps)
                text = (
                    f"GUAA<ERROR=0,USERID={user_id},APPS=<{apps}>,"
                    "PRODUCTS=<V~S>,CORPIDS=<90000001>>"
                )
        else:
            text = f"{message.acronym}<ERROR=6104>"
        status = int(str(parse(text).get("ERROR")))
        await channel.send(Response(status, text.encode(), event.serial))


@dataclass
class AppBehaviour:
    """An application proxy with holds, bulk resources and an upload store."""

    resources: dict[str, bytes] = field(default_factory=dict)
    chunk: int = 64 * 1024
    #: HOLD requests wait for this
    release: trio.Event = field(default_factory=trio.Event)
    #: set when a HOLD request arrived
    holding: trio.Event = field(default_factory=trio.Event)
    #: resources whose get stops after the first frame and waits for the client's move
    pause_after_first: set[str] = field(default_factory=set)
    #: what a paused get then received from the dispatcher
    after_pause: list[str] = field(default_factory=list)
    paused_done: trio.Event = field(default_factory=trio.Event)
    uploads: dict[str, bytes] = field(default_factory=dict)
    #: (resource, offset) of every get
    gets: list[tuple[str, int, str, int]] = field(default_factory=list)

    async def __call__(self, channel: FrameChannel, event: Event) -> None:
        if isinstance(event, Request | Submit):
            if event.payload.startswith(b"HOLD"):
                self.holding.set()
                await self.release.wait()
            await channel.send(Response(0, answer_to(event.payload), event.serial))
        elif isinstance(event, BulkGet):
            await self._get(channel, event)
        elif isinstance(event, BulkPut):
            await self._put(channel, event)

    async def _get(self, channel: FrameChannel, get: BulkGet) -> None:
        self.gets.append((get.resource, get.offset, get.key, get.serial))
        data = self.resources.get(get.resource)
        if data is None:
            await channel.send(Response(5100, b"F<ERROR=5100>", get.serial))
            return
        for n, frame in enumerate(data_frames(7, data, offset=get.offset, chunk_size=self.chunk)):
            await channel.send(frame)
            if n == 0 and get.resource in self.pause_after_first and not frame.done:
                try:
                    after = await channel.receive(math.inf)
                    self.after_pause.append(type(after).__name__)
                except (PeerGone, ProtocolError) as err:
                    self.after_pause.append(type(err).__name__)
                self.paused_done.set()
                return

    async def _put(self, channel: FrameChannel, put: BulkPut) -> None:
        receiver = PutReceiver(put)
        parts: list[bytes] = []
        while not receiver.complete:
            event = await channel.receive()
            if not isinstance(event, BulkData):
                return
            try:
                parts.append(bytes(receiver.feed(event)))
            except ProtocolError as err:
                await channel.send(Response(int(err.code), b"Z<ERROR=7011>"))
                return
        self.uploads[put.resource] = b"".join(parts)
        await channel.send(Response(0, b"Z<ERROR=0>"))


@dataclass
class Stack:
    """Dispatchers and doubles running in one test."""

    deployment: Deployment
    pki: Pki
    clock: FakeClock
    oe: OeBehaviour
    app: AppBehaviour
    doubles: dict[str, ProxyDouble]
    #: where the dispatchers run, and each one's stop switch and "it has stopped"
    nursery: trio.Nursery | None = None
    running: dict[int, tuple[trio.CancelScope, trio.Event]] = field(default_factory=dict)

    async def start_dispatcher(self, index: int) -> None:
        """Start dispatcher *index* (again) and wait until it listens."""
        assert self.nursery is not None
        await self.nursery.start(self._run_dispatcher, index)

    async def stop_dispatcher(self, index: int) -> None:
        """Stop dispatcher *index* the way SIGTERM does, and wait until it has."""
        scope, stopped = self.running.pop(index)
        scope.cancel()
        await stopped.wait()

    async def _run_dispatcher(
        self, index: int, task_status: trio.TaskStatus[object] = trio.TASK_STATUS_IGNORED
    ) -> None:
        stopped = trio.Event()
        try:
            with trio.CancelScope() as scope:
                self.running[index] = (scope, stopped)
                await serve_dispatcher(
                    self.deployment, index=index, clock=self.clock, task_status=task_status
                )
        finally:
            stopped.set()

    async def connect(self, index: int = 0, cert: str = "web") -> FrameChannel:
        """A client channel to dispatcher *index* with the *cert* certificate."""
        address = self.deployment.dispatchers[index]
        return await open_tls_channel(
            address.host,
            address.port,
            self.pki.internal_client_context(cert),
            server_hostname="dispatcher",
            read_timeout=10,
        )

    async def call(
        self, target: str, payload: bytes | str, key: str = "", *, index: int = 0, cert: str = "web"
    ) -> Response:
        """One synchronous request on a connection of its own."""
        data = payload.encode() if isinstance(payload, str) else payload
        async with await self.connect(index, cert) as channel:
            await channel.send(Request(target, data, key))
            answer = await channel.receive()
        assert isinstance(answer, Response), answer
        return answer

    async def logon(self, user: str = "jean", password: str = "secret", *, index: int = 0) -> str:
        """Log on through DSP and return the session key."""
        answer = await self.call("DSP", f"LON<USERID={user},PASSWORD={password}>", index=index)
        assert answer.status == 0, answer
        session = parse(answer.payload.decode()).get("SESSION")
        assert isinstance(session, str)
        return session


def text(answer: Response) -> str:
    return answer.payload.decode()


def error_of(answer: Response) -> int:
    """The ERROR= of an answer's message."""
    return int(str(parse(text(answer)).get("ERROR")))


@asynccontextmanager
async def running_stack(
    state_dir: Path,
    *,
    dispatchers: int = 1,
    absent: tuple[str, ...] = ("DSS",),
    **limits: Any,
) -> AsyncIterator[Stack]:
    """Doubles for OE, RM and INBX, *absent* targets routed to closed ports, and
    *dispatchers* real dispatchers sharing *state_dir*.

    Args:
        state_dir: the state directory (PKI, sessions.db).
        dispatchers: how many dispatchers to run.
        absent: targets in the routing table where nothing listens.
        limits: :class:`Limits` fields to override.
    """
    pki = ensure_pki(state_dir)
    clock = FakeClock()
    oe = OeBehaviour({"jean": OeUser("secret", apps=("RM", "INBX", "DSS"))})
    app = AppBehaviour()
    doubles = {
        "OE": ProxyDouble("oe", oe),
        "RM": ProxyDouble("rm", app),
        "INBX": ProxyDouble("inbox", app),
    }
    settings: dict[str, Any] = {"proxy_timeout": 10.0, "read_timeout": 10.0, "connect_timeout": 5.0}
    settings.update(limits)
    async with trio.open_nursery() as nursery:
        routes: dict[str, Address] = {}
        for target, double in doubles.items():
            port = await nursery.start(double.serve, pki.internal_server_context(double.name))
            routes[target] = Address("127.0.0.1", port)
        for target in absent:
            routes[target] = Address("127.0.0.1", free_port())
        deployment = Deployment(
            state_dir=state_dir,
            web=Address("127.0.0.1", free_port()),
            dispatchers=tuple(Address("127.0.0.1", free_port()) for _ in range(dispatchers)),
            proxies=routes,
            limits=Limits(**settings),
        )
        stack = Stack(deployment, pki, clock, oe, app, doubles, nursery)
        for index in range(dispatchers):
            await stack.start_dispatcher(index)
        yield stack
        nursery.cancel_scope.cancel()
