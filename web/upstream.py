"""The web server's hop to the dispatchers: mutual TLS links, a small pool, round robin.

Theory of operation
-------------------
The web server relays frames; it never interprets the metadata inside them.  A
:class:`Link` is one mutual-TLS connection to one dispatcher (the web server's
``web`` certificate; the dispatcher must prove the name ``dispatcher``) with a
sans-IO :class:`~starwrs.protocol.FrameReader` on its receiving side: raw frame
bytes out, :class:`~starwrs.protocol.Frame` events in.

:class:`DispatcherPool` hands out links:

* **round robin** over ``deployment.dispatchers``; a dispatcher that refused a
  connection is skipped for :data:`DOWN_FOR` seconds (tried last, not never), so
  one dead dispatcher costs nothing while another is up.  When none can be
  reached the caller gets :class:`UpstreamError` 7006 (HTTP 502).
* **pooling** applies to synchronous exchanges (mech 0 and echo): one frame
  out, one frame in, and the link is clean again.  Up to ``max_idle`` idle links
  per dispatcher are kept, each for at most ``idle_ttl`` seconds (below the
  dispatcher's own read timeout, so we rarely meet a link it closed).  Should a
  reused link turn out dead before a single byte of answer came back, the request
  is sent again on a fresh link -- the dispatcher cannot have acted on it.
* A bulk get takes a pooled link too (:meth:`DispatcherPool.begin`): one that
  ended with its ``done`` frame is clean again and goes back to the pool, so a
  viewer's ``.mtd`` and data cost no handshake.  Mechanisms 1, 2 and bulk puts
  are one exchange per connection (PROTOCOL.md section 3): they take a fresh
  link (:meth:`DispatcherPool.open_link`) that the caller closes.

A synchronous exchange (:meth:`Link.exchange`) has one deadline, the answer
timeout, for the send and the wait together; over a
:class:`~starwrs.runtime.tls.TlsStream` the send costs no cancel scope (it waits
under the deadline only when the socket is full), so the exchange's one scope is
the answer's.  While the
dispatcher works, the HTTP client may go away; the caller passes a *watch*
coroutine that returns when it did.  Watching costs a nursery and a task, ~14 %
of the web server's CPU when done for every request, so it starts only once the
answer is :data:`WATCH_AFTER` late: a quick answer (nearly all of them) costs no
task, and a slow one is abandoned -- its link closed, :class:`Abandoned` raised --
within that much of the client's leaving.

Errors are translated here, once: the link broke or the peer closed it
(7006), no answer in time (7007), bytes that are not frames (7009) -- all
:class:`UpstreamError`, which the web layer turns into 502/504 JSON answers.
"""

from __future__ import annotations

import logging
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import trio
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.protocol import NEED_DATA, ConnectionClosed, Frame, FrameReader, ProtocolError
from starwrs.runtime.config import Address, Limits
from starwrs.runtime.tls import TlsStream, close_now

__all__ = ["DOWN_FOR", "WATCH_AFTER", "Abandoned", "DispatcherPool", "Link", "UpstreamError"]

log = logging.getLogger("starwrs.web")

#: seconds a dispatcher that refused a connection is tried only after the others
DOWN_FOR = 2.0
#: name the dispatcher's certificate must carry (docs/runtime.md: identity = service)
DISPATCHER_NAME = "dispatcher"
_RECEIVE_SIZE = 256 * 1024
_IO_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError)
#: seconds an answer may take before the caller's *watch* starts (see the module doc)
WATCH_AFTER = 0.05

#: returns when the HTTP client has gone away (it may also just return early)
Watch = Callable[[trio.CancelScope], Awaitable[None]]


class UpstreamError(StarwrsError):
    """The dispatcher hop failed: 7006 unreachable or broken, 7007 timeout, 7009 garbage."""


class Abandoned(Exception):
    """The caller's watch gave up waiting for the answer (its client went away)."""


class Link:
    """One mutual-TLS connection to a dispatcher, carrying raw frames.

    Args:
        upstream: the dispatcher it leads to.
        stream: the connected, handshaken TLS stream.
        max_frame_size: largest frame accepted from the dispatcher.
    """

    def __init__(
        self, upstream: Upstream, stream: trio.abc.Stream, max_frame_size: int
    ) -> None:
        self.upstream = upstream
        self.stream = stream
        self.reader = FrameReader(max_frame_size)
        #: bytes received since the link was last handed out
        self.received = 0
        self.idle_since = 0.0
        self.closed = False

    async def send(self, data: bytes, seconds: float) -> None:
        """Send frame bytes.

        Raises:
            UpstreamError: 7006 the link broke; 7007 the dispatcher stopped reading.
        """
        try:
            with trio.fail_after(seconds):
                await self.stream.send_all(data)
        except trio.TooSlowError:
            raise UpstreamError(ErrorCode.PROXY_TIMEOUT, "dispatcher stopped reading") from None
        except _IO_ERRORS as err:
            raise UpstreamError(
                ErrorCode.PROXY_UNAVAILABLE, f"dispatcher link broken: {err.__class__.__name__}"
            ) from err

    async def receive(self, seconds: float) -> Frame:
        """The next frame from the dispatcher, within *seconds*.

        Raises:
            UpstreamError: 7007 nothing complete in time; 7006 the dispatcher
                closed or broke the link; 7009 it sent something that is not a frame.
        """
        with trio.move_on_after(seconds) as scope:
            while True:
                try:
                    event = self.reader.next_event()
                except ProtocolError as err:
                    raise UpstreamError(
                        ErrorCode.MALFORMED_FRAME, f"bad frame from the dispatcher: {err.message}"
                    ) from err
                if isinstance(event, Frame):
                    return event
                if isinstance(event, ConnectionClosed):
                    raise UpstreamError(ErrorCode.PROXY_UNAVAILABLE, "dispatcher closed the link")
                assert event is NEED_DATA
                try:
                    data = await self.stream.receive_some(_RECEIVE_SIZE)
                except _IO_ERRORS as err:
                    raise UpstreamError(
                        ErrorCode.PROXY_UNAVAILABLE,
                        f"dispatcher link broken: {err.__class__.__name__}",
                    ) from err
                self.received += len(data)
                self.reader.receive_data(data)
        assert scope.cancelled_caught
        raise UpstreamError(
            ErrorCode.PROXY_TIMEOUT, f"no answer from the dispatcher in {seconds:g} s"
        )

    async def _next_frame(self) -> Frame:
        """The next frame, with no time limit of its own (the caller's scope bounds it)."""
        reader = self.reader
        while True:
            try:
                event = reader.next_event()
            except ProtocolError as err:
                raise UpstreamError(
                    ErrorCode.MALFORMED_FRAME, f"bad frame from the dispatcher: {err.message}"
                ) from err
            if isinstance(event, Frame):
                return event
            if isinstance(event, ConnectionClosed):
                raise UpstreamError(ErrorCode.PROXY_UNAVAILABLE, "dispatcher closed the link")
            try:
                data = await self.stream.receive_some(_RECEIVE_SIZE)
            except _IO_ERRORS as err:
                raise UpstreamError(
                    ErrorCode.PROXY_UNAVAILABLE,
                    f"dispatcher link broken: {err.__class__.__name__}",
                ) from err
            self.received += len(data)
            reader.receive_data(data)

    async def exchange(self, data: bytes, seconds: float, watch: Watch | None = None) -> Frame:
        """Send one request frame and return the answer, all within *seconds*.

        Args:
            data: the frame's bytes.
            seconds: the deadline of the send and the answer together.
            watch: started once the answer is :data:`WATCH_AFTER` late; it cancels
                the scope it is given when the wait should be abandoned.

        Raises:
            UpstreamError: 7006 the link broke or closed; 7007 the dispatcher
                stopped reading, or no answer in time; 7009 not a frame.
            Abandoned: *watch* cancelled the wait.
        """
        deadline = trio.current_time() + seconds
        stream = self.stream
        sent = False
        if isinstance(stream, TlsStream):  # the send waits under the deadline only if it must
            try:
                await stream.send_all_by(data, deadline)
            except trio.TooSlowError:
                raise UpstreamError(ErrorCode.PROXY_TIMEOUT, "dispatcher stopped reading") from None
            except _IO_ERRORS as err:
                raise UpstreamError(
                    ErrorCode.PROXY_UNAVAILABLE, f"dispatcher link broken: {err.__class__.__name__}"
                ) from err
            sent = True
        first = deadline if watch is None or not sent else trio.current_time() + WATCH_AFTER
        with trio.CancelScope(deadline=min(deadline, first)) as scope:
            if not sent:
                try:
                    await stream.send_all(data)
                except _IO_ERRORS as err:
                    raise UpstreamError(
                        ErrorCode.PROXY_UNAVAILABLE,
                        f"dispatcher link broken: {err.__class__.__name__}",
                    ) from err
                sent = True
                if watch is not None:
                    scope.deadline = min(deadline, trio.current_time() + WATCH_AFTER)
            return await self._next_frame()
        if not sent:
            raise UpstreamError(ErrorCode.PROXY_TIMEOUT, "dispatcher stopped reading")
        if watch is None or trio.current_time() >= deadline:
            raise UpstreamError(
                ErrorCode.PROXY_TIMEOUT, f"no answer from the dispatcher in {seconds:g} s"
            )
        return await self._watched(deadline, seconds, watch)

    async def _watched(self, deadline: float, seconds: float, watch: Watch) -> Frame:
        """Go on waiting for the answer while *watch* runs beside."""
        frames: list[Frame] = []
        errors: list[UpstreamError] = []
        timed_out = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch, nursery.cancel_scope)
            with trio.CancelScope(deadline=deadline) as scope:
                try:
                    frames.append(await self._next_frame())
                except UpstreamError as err:
                    errors.append(err)
            timed_out = scope.cancelled_caught
            nursery.cancel_scope.cancel()
        if frames:
            return frames[0]
        if errors:
            raise errors[0]
        if timed_out:
            raise UpstreamError(
                ErrorCode.PROXY_TIMEOUT, f"no answer from the dispatcher in {seconds:g} s"
            )
        raise Abandoned("the caller stopped waiting for the dispatcher")

    async def aclose(self) -> None:
        """Close the link at once (safe to call twice, and while being cancelled)."""
        if not self.closed:
            self.closed = True
            await trio.aclose_forcefully(self.stream)


@dataclass(eq=False)
class Upstream:
    """One dispatcher: its address, its idle links and when it last refused us."""

    address: Address
    idle: deque[Link] = field(default_factory=deque)
    down_until: float = float("-inf")


class DispatcherPool:
    """Links to the dispatchers, round robin, with idle synchronous links kept.

    Args:
        addresses: the dispatchers (``deployment.dispatchers``).
        context: the web server's internal client context (``web`` certificate).
        limits: the deployment's limits (connect and answer timeouts, frame size).
        max_idle: idle links kept per dispatcher.
        idle_ttl: seconds an idle link is kept.
        clock: the time source (``trio.current_time``).
    """

    def __init__(
        self,
        addresses: Sequence[Address],
        context: ssl.SSLContext,
        limits: Limits,
        *,
        max_idle: int = 64,
        idle_ttl: float = 10.0,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        if not addresses:
            raise ValueError("the deployment names no dispatcher")
        self.upstreams = [Upstream(a) for a in addresses]
        self.context = context
        self.limits = limits
        self.max_idle = max_idle
        self.idle_ttl = idle_ttl
        self.clock = clock
        #: how long to wait for an answer frame: the dispatcher's own proxy wait and more
        self.answer_timeout = limits.proxy_timeout + limits.connect_timeout + 5.0
        self._next = 0

    # -- links -----------------------------------------------------------------------

    async def _connect(self, upstream: Upstream) -> Link:
        address = upstream.address
        try:
            with trio.fail_after(self.limits.connect_timeout):
                tcp = await trio.open_tcp_stream(address.host, address.port)
                stream = TlsStream.wrap(tcp, self.context, server_hostname=DISPATCHER_NAME)
                try:
                    await stream.do_handshake()
                except BaseException:
                    await trio.aclose_forcefully(stream)
                    raise
        except trio.TooSlowError:
            raise UpstreamError(
                ErrorCode.PROXY_UNAVAILABLE, f"dispatcher {address} did not answer in time"
            ) from None
        except _IO_ERRORS as err:
            raise UpstreamError(
                ErrorCode.PROXY_UNAVAILABLE,
                f"cannot reach dispatcher {address}: {err.__class__.__name__}",
            ) from err
        return Link(upstream, stream, self.limits.max_frame_size)

    def _order(self) -> list[Upstream]:
        n = len(self.upstreams)
        start = self._next
        self._next = (start + 1) % n
        rotation = [self.upstreams[(start + i) % n] for i in range(n)]
        now = self.clock()
        return [u for u in rotation if u.down_until <= now] + [
            u for u in rotation if u.down_until > now
        ]

    def _take_idle(self, upstream: Upstream) -> Link | None:
        now = self.clock()
        while upstream.idle:
            link = upstream.idle.pop()  # most recently used first
            if now - link.idle_since <= self.idle_ttl:
                return link
            self._discard(link)
        return None

    def _discard(self, link: Link) -> None:
        link.closed = True
        # an idle link has no task on it: closing the socket needs no await
        close_now(link.stream)

    async def acquire(self, *, reuse: bool) -> tuple[Link, bool]:
        """A link to some dispatcher, and whether it is a reused idle one.

        Args:
            reuse: an idle link may be taken (synchronous exchanges only).

        Raises:
            UpstreamError: 7006 no dispatcher can be reached.
        """
        last: UpstreamError | None = None
        for upstream in self._order():
            if reuse:
                link = self._take_idle(upstream)
                if link is not None:
                    link.received = 0
                    return link, True
            try:
                link = await self._connect(upstream)
            except UpstreamError as err:
                upstream.down_until = self.clock() + DOWN_FOR
                log.warning("%s", err.message)
                last = err
                continue
            upstream.down_until = float("-inf")
            return link, False
        assert last is not None
        raise UpstreamError(ErrorCode.PROXY_UNAVAILABLE, "no dispatcher is reachable") from last

    async def open_link(self) -> Link:
        """A fresh link for one exchange of mechanism 1-3; the caller closes it."""
        link, _ = await self.acquire(reuse=False)
        return link

    def release(self, link: Link) -> None:
        """Give back a link whose synchronous exchange ended cleanly."""
        upstream = link.upstream
        if link.closed or link.reader.buffered or len(upstream.idle) >= self.max_idle:
            self._discard(link)
            return
        link.idle_since = self.clock()
        upstream.idle.append(link)

    async def request(
        self, data: bytes, *, reuse: bool = True, watch: Watch | None = None
    ) -> Frame:
        """Send one request frame and return the one answer frame.

        Args:
            data: the frame's bytes (session key already filled in).
            reuse: a synchronous exchange: pooled links may carry it, and the link
                goes back to the pool afterwards.  False: a fresh link, closed after.
            watch: see :meth:`Link.exchange` (the link is closed when it abandons).

        Raises:
            UpstreamError: 7006, 7007 or 7009 (see :class:`Link`).
            Abandoned: *watch* gave up the wait.
        """
        link, frame = await self._exchange(data, reuse, watch)
        if reuse:
            self.release(link)
        else:
            await link.aclose()
        return frame

    async def begin(self, data: bytes, *, watch: Watch | None = None) -> tuple[Link, Frame]:
        """Send a bulk get's opening frame on a pooled link; return the link and the
        first answer.  The caller holds the link: :meth:`release` it once the get
        ended with its ``done`` frame (it is clean again), close it otherwise.

        Raises:
            UpstreamError, Abandoned: as :meth:`request`.
        """
        return await self._exchange(data, True, watch)

    async def _exchange(
        self, data: bytes, reuse: bool, watch: Watch | None
    ) -> tuple[Link, Frame]:
        retries = 2
        while True:
            link, reused = await self.acquire(reuse=reuse)
            try:
                frame = await link.exchange(data, self.answer_timeout, watch)
            except UpstreamError as err:
                await link.aclose()
                stale = reused and not link.received and err.code == ErrorCode.PROXY_UNAVAILABLE
                if stale and retries:
                    retries -= 1
                    continue
                raise
            except BaseException:
                await link.aclose()
                raise
            return link, frame

    def close_idle(self) -> None:
        """Close every idle link (at shutdown; no await needed)."""
        for upstream in self.upstreams:
            while upstream.idle:
                self._discard(upstream.idle.pop())
