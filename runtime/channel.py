"""trio glue: one sans-IO :class:`~starwrs.protocol.Connection` over one trio stream.

Theory of operation
-------------------
A :class:`FrameChannel` pairs a trio stream (TLS, plain TCP or in-memory) with a
protocol ``Connection`` and is the only place where bytes meet sockets.

Time limits are deadlines, not per-read timeouts, so a peer that trickles one
byte at a time cannot hold a task for longer than the limit:

* :meth:`FrameChannel.receive` waits at most ``timeout`` seconds (default
  ``read_timeout``) for the next whole event.  With ``idle_timeout`` the wait for
  the *first byte* of the next frame is bounded by ``idle_timeout`` instead (a
  pooled connection may sit idle between transactions), and once a frame has
  started the rest of it must arrive within ``timeout`` of its first byte -- or
  sooner with ``frame_timeout``: then a frame has ``frame_timeout`` seconds from
  its first byte plus one second per ``min_frame_rate`` bytes its header
  declares (never more than ``timeout``).  Senders on internal hops write whole
  frames at once, so a small frame that stops short is answered 7009 within
  seconds, not after ``read_timeout``.  :class:`ReadTimeout` says which ran out
  (``idle``): mid-frame is a 7009 for the peer, idle is a quiet close.  An
  infinite limit costs no cancel scope (a caller may enforce a long idle limit
  with one scope per connection instead, as the proxy framework does).
* :meth:`FrameChannel.send` gives up after ``write_timeout`` (default
  ``read_timeout``): a peer that stops reading is gone (:class:`PeerGone`).
* :meth:`FrameChannel.request` is a send and the receive of its answer under
  one cancel scope (the same two limits, one after the other): a cancel scope
  with a deadline costs more than the rest of a small frame's handling, so the
  hot path sets one per exchange, not one per read and per write.
* :meth:`FrameChannel.watch_get` is what a watcher task reads beside a bulk get
  being sent: the peer's cancel, or its going away, stops the get; anything else
  is the next exchange, opened once the ``done`` frame reached the peer (a whole
  get leaves the connection reusable), and is held (:meth:`FrameChannel.hold`):
  the next :meth:`receive` returns it first, so nothing read is ever dropped.
* :meth:`FrameChannel.refuse` is the best-effort error answer before a close:
  it never raises, even when the state machine has no answer to give (a frame
  that stopped short) -- then a bare error frame goes out.

I/O failures are translated here, once:

* the peer closed or broke the connection (``trio.BrokenResourceError``, an
  ``ssl`` error, a reset, or a clean close while we wait for its answer) ->
  :class:`PeerGone` (code 7006 for a proxy, nothing to answer for a client); a
  clean close where the exchange allows it is the event ``ConnectionClosed``;
* the time ran out -> :class:`ReadTimeout` (7009 mid-frame, 7007 when waiting
  for an answer: the caller chooses);
* we closed it ourselves -> ``trio.ClosedResourceError`` propagates (a bug).

Protocol violations are :class:`~starwrs.protocol.ProtocolError` with their code,
raised by the ``Connection`` itself.
"""

from __future__ import annotations

import contextlib
import math
import ssl
from types import TracebackType

import trio
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.protocol import (
    NEED_DATA,
    BulkCancel,
    Connection,
    ConnectionClosed,
    Mechanism,
    ProtocolError,
    Response,
    Role,
    State,
    encode_frame,
    make_header,
)
from starwrs.protocol.events import Event
from starwrs.runtime.tls import TlsStream

__all__ = ["FrameChannel", "PeerGone", "ReadTimeout", "open_tls_channel"]

_RECEIVE_SIZE = 256 * 1024
_IO_ERRORS = (trio.BrokenResourceError, ssl.SSLError, OSError)
_REUSABLE = (State.IDLE, State.GET_DONE)


class PeerGone(StarwrsError):
    """The other end closed or broke the connection (or the TLS handshake failed)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.PROXY_UNAVAILABLE, message)


class ReadTimeout(StarwrsError):
    """Nothing (or not enough) arrived in time.

    Attributes:
        idle: True when not one byte of the next frame had arrived (an idle
            connection), False when a frame started and stopped short.
    """

    def __init__(
        self, message: str, code: ErrorCode = ErrorCode.MALFORMED_FRAME, *, idle: bool = False
    ) -> None:
        super().__init__(code, message)
        self.idle = idle


class FrameChannel:
    """Frames over a trio stream, through a sans-IO connection.

    Args:
        stream: any ``trio.abc.Stream`` (usually a :class:`~starwrs.runtime.tls.TlsStream`).
        role: ``Role.CLIENT`` or ``Role.SERVER``.
        read_timeout: seconds the next whole event may take (see :meth:`receive`).
        max_frame_size: the largest frame accepted (7005 above).
        write_timeout: seconds one frame may take to send (default ``read_timeout``).
        frame_timeout: with ``idle_timeout`` receives, seconds a started frame
            may take before its size counts (None: the whole ``timeout``).
        min_frame_rate: bytes per second a started frame must arrive at, beyond
            ``frame_timeout``.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        role: Role,
        *,
        read_timeout: float = 30.0,
        max_frame_size: int = 16 * 1024 * 1024,
        write_timeout: float | None = None,
        frame_timeout: float | None = None,
        min_frame_rate: float = 1024 * 1024,
    ) -> None:
        self.stream = stream
        self.conn = Connection(role, max_frame_size=max_frame_size)
        self.read_timeout = read_timeout
        self.write_timeout = read_timeout if write_timeout is None else write_timeout
        self.frame_timeout = frame_timeout
        self.min_frame_rate = min_frame_rate
        self._held: Event | None = None

    @property
    def mid_frame(self) -> bool:
        """True when bytes of a frame not yet complete are buffered."""
        # the connection's own reader; only its byte count is looked at
        return self.conn._reader.buffered > 0

    async def watch_get(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - passed to receive()
        *,
        idle_timeout: float | None = None,
    ) -> BulkCancel | ConnectionClosed | None:
        """Beside a bulk get being sent: wait for what the peer does next.

        Returns:
            Its ``BulkCancel``; ``ConnectionClosed`` when it closed, broke the
            connection or the protocol, or stayed silent past the limits (as for
            :meth:`receive`); None when it opened its next exchange after the
            ``done`` frame -- held for :meth:`receive`, the get needs no stopping.
        """
        try:
            event = await self.receive(timeout, idle_timeout=idle_timeout)
        except (PeerGone, ReadTimeout, ProtocolError):
            return ConnectionClosed()
        if isinstance(event, BulkCancel | ConnectionClosed):
            return event
        self.hold(event)
        return None

    def hold(self, event: Event) -> None:
        """Give back *event*, read ahead by a watcher: :meth:`receive` returns it next."""
        assert self._held is None, "one event held at a time"
        self._held = event

    @property
    def reusable(self) -> bool:
        """True when the exchange ended and the connection may carry another:
        its state is ``IDLE`` or ``GET_DONE``, or the next one was already read."""
        return self._held is not None or self.conn.state in _REUSABLE

    def _frame_allowance(self, limit: float) -> float:
        """Seconds the frame that has started may take from its first byte."""
        if self.frame_timeout is None:
            return limit
        reader = self.conn._reader  # its size, once the header has been read
        declared = reader._length if reader._head else 0
        return min(limit, self.frame_timeout + declared / self.min_frame_rate)

    async def receive(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline per frame
        *,
        idle_timeout: float | None = None,
    ) -> Event:
        """Return the next event; ``ConnectionClosed`` at a clean end of stream.

        Args:
            timeout: seconds the next whole event may take (default
                ``read_timeout``); ``math.inf`` waits for ever.
            idle_timeout: if given, the wait for the first byte of the next frame
                is bounded by this instead, and ``timeout`` (shortened by
                ``frame_timeout``, if set) runs from that byte.

        Raises:
            ProtocolError: the peer broke the protocol (its code says how).
            ReadTimeout: the time ran out (``idle`` says whether a frame had started).
            PeerGone: the connection broke, or closed while we waited for an answer.
        """
        held = self._held
        if held is not None:
            self._held = None
            return held
        limit = self.read_timeout if timeout is None else timeout
        start = trio.current_time()
        waiting_idle = idle_timeout is not None and not self.mid_frame
        deadline = start + (idle_timeout if idle_timeout is not None and waiting_idle else limit)
        # when the frame being read started (idle mode only)
        first_byte = start if idle_timeout is not None and not waiting_idle else None
        while True:
            event = self.conn.next_event()
            if event is not NEED_DATA:
                return event
            if waiting_idle and self.mid_frame:  # the next frame has started
                waiting_idle = False
                first_byte = trio.current_time()
            if first_byte is not None:  # its size may be known by now
                deadline = first_byte + self._frame_allowance(limit)
            data = None
            try:
                if deadline == math.inf:  # no limit: no cancel scope (it could never fire)
                    data = await self.stream.receive_some(_RECEIVE_SIZE)
                else:
                    with trio.CancelScope(deadline=deadline):  # no contextlib: per frame
                        data = await self.stream.receive_some(_RECEIVE_SIZE)
            except _IO_ERRORS as err:
                raise PeerGone(f"connection broken: {err.__class__.__name__}") from err
            if data is None:
                idle = not self.mid_frame
                what = "no frame" if idle else "a frame stopped short"
                waited = trio.current_time() - start
                raise ReadTimeout(f"{what} within {waited:.3g} s", idle=idle)
            at_boundary = not self.mid_frame
            self.conn.receive_data(data)
            if not data:
                try:
                    event = self.conn.next_event()
                except ProtocolError as err:
                    if at_boundary:  # closed while we waited for an answer: gone, not garbled
                        raise PeerGone("peer closed the connection") from err
                    raise
                if event is NEED_DATA:  # pragma: no cover - the connection reports EOF
                    return ConnectionClosed()
                return event

    async def send(self, event: Event) -> None:
        """Encode *event* and send it.

        Raises:
            LocalProtocolError: the event does not fit the exchange.
            PeerGone: the connection broke, or the peer read nothing for
                ``write_timeout`` seconds.
        """
        data = self.conn.send(event)
        if data:
            await self._send_bytes(data)

    async def _send_bytes(self, data: bytes) -> None:
        deadline = trio.current_time() + self.write_timeout
        stream = self.stream
        try:
            if isinstance(stream, TlsStream):  # a cancel scope only if it must wait
                await stream.send_all_by(data, deadline)
                return
            scope = trio.CancelScope(deadline=deadline)
            with scope:
                await stream.send_all(data)
        except trio.TooSlowError:
            raise PeerGone(f"peer read nothing for {self.write_timeout:g} s") from None
        except _IO_ERRORS as err:
            raise PeerGone(f"connection broken: {err.__class__.__name__}") from err
        if scope.cancelled_caught:
            raise PeerGone(f"peer read nothing for {self.write_timeout:g} s")

    async def request(self, event: Event, timeout: float) -> Event:  # noqa: ASYNC109
        """Send *event* (a request) and return the next event: the answer.

        One cancel scope for the whole exchange instead of one per send and per
        read: its deadline is ``write_timeout`` for the send and then *timeout*
        from the end of the send for the answer, as :meth:`send` followed by
        :meth:`receive` would have it.  Over a :class:`~starwrs.runtime.tls.TlsStream`
        the send needs no scope (it waits under its deadline only when the socket
        is full), so the one scope is the answer's.

        Raises:
            LocalProtocolError: the event does not fit the exchange.
            PeerGone: as for :meth:`send` and :meth:`receive`.
            ReadTimeout: no whole answer within *timeout* (``idle`` when not one
                byte of it had come).
            ProtocolError: the peer broke the protocol.
        """
        data = self.conn.send(event)
        stream, conn = self.stream, self.conn
        lean = isinstance(stream, TlsStream)
        if lean and data:
            await self._send_bytes(data)  # PeerGone when the peer reads nothing in time
        sent = lean
        deadline = trio.current_time() + (timeout if lean else self.write_timeout)
        with trio.CancelScope(deadline=deadline) as scope:
            try:
                if not lean:
                    if data:
                        await stream.send_all(data)
                    sent = True
                    scope.deadline = trio.current_time() + timeout
                while True:
                    answer = conn.next_event()
                    if answer is not NEED_DATA:
                        return answer
                    at_boundary = not self.mid_frame
                    chunk = await stream.receive_some(_RECEIVE_SIZE)
                    conn.receive_data(chunk)
                    if not chunk:
                        try:
                            answer = conn.next_event()
                        except ProtocolError as err:
                            if at_boundary:
                                raise PeerGone("peer closed the connection") from err
                            raise
                        if answer is NEED_DATA:  # pragma: no cover - the connection reports EOF
                            return ConnectionClosed()
                        return answer
            except _IO_ERRORS as err:
                raise PeerGone(f"connection broken: {err.__class__.__name__}") from err
        if not sent:
            raise PeerGone(f"peer read nothing for {self.write_timeout:g} s")
        idle = not self.mid_frame
        what = "no answer" if idle else "an answer stopped short"
        raise ReadTimeout(f"{what} within {timeout:.3g} s", idle=idle)

    async def refuse(self, status: int, payload: bytes = b"", *, serial: int = 0) -> bool:
        """Answer with an error status if anything can still be sent; never raises.

        The caller closes the channel afterwards.  When the state machine has no
        answer to give (a frame stopped short, or the exchange is answered
        already), a bare error frame (mechanism 0, no target) is written instead.

        Args:
            status: the error code (>= 2).
            payload: the answer's payload (a metadata message).
            serial: the serial to carry (0: the request's, if there was one).

        Returns:
            True if the answer was sent.
        """
        try:
            data = self.conn.send(Response(status, payload, serial))
        except ProtocolError:
            header = make_header(
                Mechanism.SYNC, "", payload_length=len(payload), serial=serial, status=status
            )
            data = encode_frame(header, payload, self.conn.max_frame_size)
        try:
            await self._send_bytes(data)
        except (PeerGone, trio.ClosedResourceError, trio.BusyResourceError):
            return False
        return True

    async def aclose(self) -> None:
        """Close the stream (never raises for an already broken peer)."""
        with trio.move_on_after(2) as scope:
            scope.shield = True
            with contextlib.suppress(*_IO_ERRORS):
                await self.stream.aclose()

    async def __aenter__(self) -> FrameChannel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def open_tls_channel(
    host: str,
    port: int,
    context: ssl.SSLContext,
    *,
    server_hostname: str | None = None,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
    max_frame_size: int = 16 * 1024 * 1024,
) -> FrameChannel:
    """Connect over TLS and return a client :class:`FrameChannel`, handshake done.

    Raises:
        PeerGone: nothing listens there, or the TLS handshake failed, in time.
    """
    try:
        with trio.fail_after(connect_timeout):
            tcp = await trio.open_tcp_stream(host, port)
            stream = TlsStream.wrap(tcp, context, server_hostname=server_hostname or host)
            try:
                await stream.do_handshake()
            except BaseException:
                await trio.aclose_forcefully(stream)
                raise
    except trio.TooSlowError:
        raise PeerGone(f"{host}:{port} did not answer within {connect_timeout:g} s") from None
    except (OSError, trio.BrokenResourceError, ssl.SSLError) as err:
        raise PeerGone(f"cannot reach {host}:{port}: {err.__class__.__name__}") from err
    return FrameChannel(
        stream, Role.CLIENT, read_timeout=read_timeout, max_frame_size=max_frame_size
    )
