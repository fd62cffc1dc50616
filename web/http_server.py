"""HTTP/1.1 server side of one client connection: h11 over a trio stream, with limits.

Theory of operation
-------------------
:class:`HttpConnection` wraps one (TLS) stream and one ``h11.Connection`` and is
the only place in the web server where HTTP bytes meet the socket.  It owns every
limit of the HTTP layer (``Limits`` of the deployment):

* **request head** -- the whole head must arrive within ``head_timeout`` of the
  moment the server starts waiting for it (for the first request the clock starts
  before the TLS handshake).  A client that sent part of a head by then gets
  ``408`` and is disconnected; an idle keep-alive connection is simply closed.
  h11 buffers at most ``max_header`` bytes of an unfinished head
  (``max_incomplete_event_size``) and then fails with ``431``.
* **body** -- read chunk by chunk (:meth:`HttpConnection.receive_body_chunk`).  The
  whole body has a deadline that grows with its size: ``body_timeout`` plus its
  ``Content-Length`` (or, chunked, the bytes received so far) at ``body_min_rate``
  bytes per second, counted over the time the server waits for the client (not
  while it relays what it has, e.g. to a slow dispatcher); besides, no read waits
  longer than ``read_timeout``.  A body that misses either gets ``408`` and the
  connection is closed, so a client sending a byte now and then cannot hold a
  connection slot.  :meth:`HttpConnection.read_body` collects a body up to a limit
  (``413`` above it).  ``Expect: 100-continue`` is answered only when the body is
  actually read.
* **responses** -- every response carries the security headers
  (:data:`SECURITY_HEADERS`), ``Date`` and ``Server``; every send is under
  ``read_timeout`` so a client that stops reading cannot hold a task forever
  (on a :class:`~starwrs.runtime.tls.TlsStream` the deadline costs a cancel
  scope only when the socket is full).  A
  whole response (:meth:`HttpConnection.respond`) is one write -- head and body in
  one TLS record.

Errors the handlers raise as :class:`HttpError` become a JSON body
``{"error": code, "message": ...}`` (:meth:`HttpConnection.send_error`) -- never a
stack trace.  When the request body was not read, the error is sent with
``Connection: close`` and the connection is closed after a short *linger* (the
client's unread bytes are drained for a moment so that the kernel does not reset
the connection before the client has read the answer).

I/O failures are translated once, here: the client went away (``trio.BrokenResourceError``,
an ``ssl`` error, a reset) is :class:`ClientGone`.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus

import h11
import trio
from h11 import _headers as h11_headers
from starwrs.runtime.config import Limits
from starwrs.runtime.tls import TlsStream

__all__ = [
    "SECURITY_HEADERS",
    "ClientGone",
    "Headers",
    "HttpConnection",
    "HttpError",
    "header_pairs",
    "header_value",
]

Headers = list[tuple[bytes, bytes]]

#: bytes asked of the stream per read
_RECEIVE_SIZE = 64 * 1024
#: how long, and how many bytes, a connection being closed on an error is drained
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 16 * 1024 * 1024

#: sent with every response (the browser client is served from this origin only)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (
        b"content-security-policy",
        b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)

_SERVER = b"starwrs"


class ClientGone(Exception):
    """The HTTP client closed or broke the connection."""


@dataclass(eq=False)
class HttpError(Exception):
    """An error answer: HTTP *status*, JSON ``{"error": code, "message": message}``.

    Attributes:
        status: the HTTP status code.
        code: the ``error`` of the JSON body: a PROTOCOL.md/Appendix E code where
            one applies (7004, 7005, 7009, 6115, ...), else the HTTP status.
        message: a short human text (never secrets, never a traceback).
        headers: extra response headers (``Retry-After``, ``Allow``, ``Set-Cookie``).
        close: close the connection after the answer.
    """

    status: int
    code: int
    message: str
    headers: Sequence[tuple[bytes, bytes]] = ()
    close: bool = False

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def header_pairs(headers: Iterable[tuple[bytes, bytes]]) -> Iterable[tuple[bytes, bytes]]:
    """(lower-case name, value) of each header; for h11's ``Headers``, straight from its
    list (iterating it as a ``Sequence`` costs a Python call per header)."""
    items: list[tuple[bytes, bytes, bytes]] | None = getattr(headers, "_full_items", None)
    if items is None:
        return headers
    return [(name, value) for _raw, name, value in items]


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of header *name* (lower case) in h11's header list, or None."""
    items: list[tuple[bytes, bytes, bytes]] | None = getattr(headers, "_full_items", None)
    if items is not None:  # h11's Headers: its own list, not the Sequence protocol
        for _raw, key, value in items:
            if key == name:
                return value
        return None
    for key, value in headers:
        if key == name:
            return value
    return None


def _head_size(request: h11.Request) -> int:
    """Bytes the request head took on the wire (h11 only bounds *incomplete* heads)."""
    size = len(request.method) + len(request.target) + 12
    items = getattr(request.headers, "_full_items", None)  # raw_items() builds a list
    if items is None:
        items = [(name, b"", value) for name, value in request.headers.raw_items()]
    for name, _lower, value in items:
        size += len(name) + len(value) + 4
    return size + 2


def _error_body(code: int, message: str) -> bytes:
    return json.dumps({"error": code, "message": message}, separators=(",", ":")).encode()


@lru_cache(maxsize=64)
def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


@lru_cache(maxsize=4)
def _constant_headers(
    security: tuple[tuple[bytes, bytes], ...],
) -> tuple[tuple[bytes, bytes, bytes], ...]:
    """``Server`` and the security headers, checked by h11 once (h11's own form)."""
    return tuple(h11_headers.normalize_and_validate([(b"server", _SERVER), *security])._full_items)


@lru_cache(maxsize=32)
def _checked_once(
    headers: tuple[tuple[bytes, bytes], ...],
) -> tuple[tuple[bytes, bytes, bytes], ...]:
    """A caller's constant headers (a tuple), checked by h11 once (h11's own form)."""
    return tuple(h11_headers.normalize_and_validate(list(headers))._full_items)


#: ``Connection: close`` in h11's form
_CLOSE = (b"connection", b"connection", b"close")


_date_cache: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    """The ``Date`` header's value, formatted once per second."""
    global _date_cache
    now = int(time.time())
    second, text = _date_cache
    if second != now:
        text = email.utils.formatdate(now, usegmt=True).encode()
        _date_cache = (now, text)
    return text


class HttpConnection:
    """The server side of one HTTP/1.1 connection.

    Args:
        stream: the client's stream (a ``trio.SSLStream`` in production).
        limits: the deployment's limits (head size and time, body size, timeouts).
        address: the client's IP address ("" when unknown).
    """

    def __init__(self, stream: trio.abc.Stream, limits: Limits, *, address: str = "") -> None:
        self.stream = stream
        self.limits = limits
        self.address = address
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header)
        #: set when the client went away (a watcher noticed, or a send failed)
        self.gone = False
        #: status of the response of the current cycle (0 before one was sent)
        self.status = 0
        #: what the current request is, for its metric: target and acronym
        #: (set by the handler when it knows them cheaply)
        self.target = ""
        self.acronym: str | None = None
        self._request: h11.Request | None = None
        #: the current body: bytes received, seconds spent waiting for them
        self._body_bytes = 0
        self._body_waited = 0.0

    # -- receiving -----------------------------------------------------------------

    async def _receive(self) -> None:
        try:
            data = await self.stream.receive_some(_RECEIVE_SIZE)
        except (trio.BrokenResourceError, ssl.SSLError, OSError) as err:
            self.gone = True
            raise ClientGone(err.__class__.__name__) from err
        if not data:
            # h11 turns the EOF into ConnectionClosed (or a 400 mid-message)
            self.gone = True
        self.conn.receive_data(bytes(data))

    def feed(self, data: bytes) -> None:
        """Hand bytes read by someone else (a disconnect watcher) to h11."""
        if not data:
            self.gone = True
        self.conn.receive_data(data)

    def _next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        try:
            return self.conn.next_event()
        except h11.RemoteProtocolError as err:
            status = err.error_status_hint
            if status == 431:
                message = f"request head larger than {self.limits.max_header} bytes"
            else:
                message = f"malformed HTTP request: {err}"
            raise HttpError(status, status, message, close=True) from None

    async def next_request(self, deadline: float) -> h11.Request | None:
        """Wait for the next request head, which must be complete by *deadline*.

        Args:
            deadline: ``trio.current_time()`` value by which the head must be in.

        Returns:
            The request, or None when the client closed (or stayed idle) between
            requests.

        Raises:
            HttpError: 408 part of a head arrived but not all of it in time; 431 the
                head is too large; 400 it is not HTTP.
            ClientGone: the connection broke.
        """
        while True:
            event = self._next_event()
            # h11's events are final classes, and isinstance of its (ABC) events costs more
            if type(event) is h11.Request:
                if _head_size(event) > self.limits.max_header:
                    raise HttpError(
                        431,
                        431,
                        f"request head larger than {self.limits.max_header} bytes",
                        close=True,
                    )
                return event
            if type(event) is h11.ConnectionClosed:
                return None
            if event is not h11.NEED_DATA:  # pragma: no cover - PAUSED only after a request
                raise HttpError(400, 400, "unexpected HTTP event", close=True)
            with trio.CancelScope(deadline=deadline) as scope:  # no contextlib: per request
                await self._receive()
            if scope.cancelled_caught:
                if self.conn.trailing_data[0]:
                    raise HttpError(
                        408,
                        408,
                        f"request head not received within {self.limits.head_timeout:g} s",
                        close=True,
                    )
                return None

    def body_budget(self) -> float:
        """Seconds of waiting the current body may take: the floor plus size / rate."""
        limits = self.limits
        size = max(self.content_length() or 0, self._body_bytes)
        return limits.body_timeout + size / max(1, limits.body_min_rate)

    async def receive_body_chunk(self) -> bytes | None:
        """The next piece of the request body, or None at its end.

        Raises:
            HttpError: 408 the body is slower than its deadline (:meth:`body_budget`)
                or nothing arrived for ``read_timeout``; 400 the body is malformed
                or the client closed inside it.
            ClientGone: the connection broke.
        """
        if self.conn.client_is_waiting_for_100_continue:
            await self._send(
                h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
            )
        while True:
            event = self._next_event()
            if type(event) is h11.Data:  # final classes: cheaper than an ABC's isinstance
                data = event.data
                if data:
                    self._body_bytes += len(data)
                    return bytes(data)
                continue
            if type(event) is h11.EndOfMessage:
                return None
            if type(event) is h11.ConnectionClosed:
                raise ClientGone("closed inside the request body")
            left = self.body_budget() - self._body_waited
            if left <= 0:
                raise self._too_slow()
            started = trio.current_time()
            with trio.move_on_after(min(left, self.limits.read_timeout)) as scope:
                await self._receive()
            self._body_waited += trio.current_time() - started
            if scope.cancelled_caught:
                if self._body_waited >= self.body_budget():
                    raise self._too_slow()
                raise HttpError(
                    408,
                    408,
                    f"request body stalled for {self.limits.read_timeout:g} s",
                    close=True,
                )

    def _too_slow(self) -> HttpError:
        limits = self.limits
        return HttpError(
            408,
            408,
            f"request body too slow (it has {limits.body_timeout:g} s"
            f" plus its size at {limits.body_min_rate} bytes/s)",
            close=True,
        )

    async def read_body(self, limit: int, *, code: int = 413) -> bytes:
        """The whole request body, at most *limit* bytes.

        Args:
            limit: largest body accepted.
            code: the JSON ``error`` of the 413 answer (7005 for frames).

        Raises:
            HttpError: 413 the body is larger (checked on ``Content-Length``
                before anything is read); see :meth:`receive_body_chunk`.
        """
        declared = self.content_length()
        if declared is not None and declared > limit:
            raise HttpError(413, code, f"request body larger than {limit} bytes", close=True)
        parts: list[bytes] = []
        size = 0
        while (chunk := await self.receive_body_chunk()) is not None:
            size += len(chunk)
            if size > limit:
                raise HttpError(413, code, f"request body larger than {limit} bytes", close=True)
            parts.append(chunk)
        return b"".join(parts)

    def content_length(self) -> int | None:
        """The declared ``Content-Length`` of the current request (None: chunked)."""
        request = self.request
        if request is None:
            return None
        value = header_value(request.headers, b"content-length")
        return int(value) if value is not None else None

    @property
    def request(self) -> h11.Request | None:
        """The request of the current cycle, once its head was received."""
        return self._request

    @property
    def body_pending(self) -> bool:
        """True while the current request's body has not been read to its end."""
        return self.conn.their_state is h11.SEND_BODY

    # -- sending ---------------------------------------------------------------------

    async def _send(self, event: h11.Event) -> None:
        data = self.conn.send(event)
        if data:
            await self._send_bytes(data)

    async def _send_bytes(self, data: bytes) -> None:
        """Write *data* within ``read_timeout`` (a TLS stream needs a cancel scope only
        when the socket is full; any other stream gets one, no context manager)."""
        deadline = trio.current_time() + self.limits.read_timeout
        stream = self.stream
        try:
            if isinstance(stream, TlsStream):
                await stream.send_all_by(data, deadline)
                return
            scope = trio.CancelScope(deadline=deadline)
            with scope:
                await stream.send_all(data)
        except trio.TooSlowError:
            self.gone = True
            raise ClientGone("the client stopped reading") from None
        except (trio.BrokenResourceError, ssl.SSLError, OSError) as err:
            self.gone = True
            raise ClientGone(err.__class__.__name__) from err
        if scope.cancelled_caught:
            self.gone = True
            raise ClientGone("the client stopped reading")

    @property
    def can_respond(self) -> bool:
        """True if a response may still start on this connection."""
        return self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE) and not self.gone

    def _headers(
        self, extra: Iterable[tuple[bytes, bytes]], close: bool, length: int | None = None
    ) -> h11_headers.Headers:
        """``Date``, ``Server``, the security headers, *extra*, ``Content-Length: length``
        (unless None) and ``Connection: close`` (if *close*).

        h11 checks every header of every response with a regular expression; the
        constant ones (``Server`` and :data:`SECURITY_HEADERS`, and *extra* when it
        is a tuple -- the callers' constants) are checked once
        (:func:`_constant_headers`), the others per response by the same h11
        function; ``Date`` and ``Content-Length``, whose values this module makes
        (an RFC 7231 date, decimal digits), go in h11's own form directly.  What
        goes out is exactly what h11 would have sent.
        """
        items = [(b"date", b"date", _http_date()), *_constant_headers(SECURITY_HEADERS)]
        if isinstance(extra, tuple):
            items += _checked_once(extra)
        elif extra:
            items += h11_headers.normalize_and_validate(list(extra))._full_items
        if length is not None:
            items.append((b"content-length", b"content-length", b"%d" % length))
        if close:
            items.append(_CLOSE)
        return h11_headers.Headers(items)

    async def start_response(
        self, status: int, headers: Iterable[tuple[bytes, bytes]] = (), *, close: bool = False
    ) -> None:
        """Send a response head; the body follows with :meth:`send_data`.

        Without a ``content-length`` header h11 uses chunked transfer encoding.
        """
        await self._send(
            h11.Response(
                status_code=status, headers=self._headers(headers, close), reason=_reason(status)
            )
        )
        self.status = status

    async def send_data(self, data: bytes) -> None:
        """Send a piece of the response body."""
        if data:
            await self._send(h11.Data(data=data))

    async def end_response(self) -> None:
        """Finish the response body."""
        await self._send(h11.EndOfMessage())

    async def respond(
        self,
        status: int,
        headers: Iterable[tuple[bytes, bytes]] = (),
        body: bytes = b"",
        *,
        close: bool = False,
    ) -> None:
        """Send a whole response with a ``Content-Length``: head and body in one write,
        so one TLS record (h11 still frames it and keeps the connection's state).

        A *headers* tuple is taken for a constant (checked once, see :meth:`_headers`)."""
        if not isinstance(headers, tuple | list):
            headers = list(headers)
        length: int | None = None
        if status not in (204, 304) and header_value(headers, b"content-length") is None:
            length = len(body)
        if self.request is not None and self.request.method == b"HEAD":
            body = b""
        conn = self.conn
        data = conn.send(
            h11.Response(
                status_code=status,
                headers=self._headers(headers, close, length),
                reason=_reason(status),
            )
        )
        self.status = status
        if body:
            data += conn.send(h11.Data(data=body))
        data += conn.send(h11.EndOfMessage())
        await self._send_bytes(data)

    async def respond_json(
        self,
        status: int,
        obj: object,
        headers: Iterable[tuple[bytes, bytes]] = (),
        *,
        close: bool = False,
    ) -> None:
        """Send *obj* as a JSON body (``Cache-Control: no-store``)."""
        body = json.dumps(obj, separators=(",", ":")).encode()
        head = [
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
            *headers,
        ]
        await self.respond(status, head, body, close=close)

    async def send_error(self, error: HttpError) -> bool:
        """Answer *error* as JSON, if a response can still start.

        A request body that is still unread is drained first when it is small
        (at most ``max_body`` bytes, within ``read_timeout``) so the connection
        can stay open; otherwise the answer says ``Connection: close``.

        Returns:
            True if the connection must be closed afterwards.
        """
        close = error.close
        if not self.can_respond:
            return True
        if self.body_pending and not close:
            close = not await self._drain_body(self.limits.max_body)
        try:
            await self.respond(
                error.status,
                [
                    (b"content-type", b"application/json"),
                    (b"cache-control", b"no-store"),
                    *error.headers,
                ],
                _error_body(error.code, error.message),
                close=close,
            )
        except (h11.LocalProtocolError, ClientGone):
            return True
        return close or self.conn.our_state is not h11.DONE

    async def _drain_body(self, limit: int) -> bool:
        declared = self.content_length()
        if self.conn.client_is_waiting_for_100_continue:
            return False  # never ask for a body only to throw it away
        if declared is not None and declared > limit:
            return False
        size = 0
        try:
            while (chunk := await self.receive_body_chunk()) is not None:
                size += len(chunk)
                if size > limit:
                    return False
        except (HttpError, ClientGone):
            return False
        return True

    # -- cycle ---------------------------------------------------------------------------

    async def start_cycle(self, deadline: float) -> h11.Request | None:
        """Finish the previous request/response cycle and wait for the next head.

        Returns:
            The next request, or None when the connection is to be closed.
        """
        if (
            self.conn.our_state is h11.DONE
            and self.body_pending
            and not await self._drain_body(self.limits.max_body)
        ):
            return None  # a body the handler did not need (a GET's empty one, usually)
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        elif self.conn.our_state is not h11.IDLE:
            return None
        self.status = 0
        self.target, self.acronym = "", None
        self._body_bytes = 0
        self._body_waited = 0.0
        self._request = await self.next_request(deadline)
        return self._request

    async def linger_and_close(self) -> None:
        """Drain the client's unread bytes briefly, then close the stream."""
        if not self.gone:
            drained = 0
            with trio.move_on_after(_LINGER_SECONDS):
                try:
                    while drained < _LINGER_BYTES:
                        data = await self.stream.receive_some(_RECEIVE_SIZE)
                        if not data:
                            break
                        drained += len(data)
                except (trio.BrokenResourceError, ssl.SSLError, OSError):
                    pass
        await self.aclose()

    async def aclose(self) -> None:
        """Close the stream (TLS close_notify if it goes out within a second)."""
        with trio.move_on_after(1.0) as scope:
            scope.shield = True
            with contextlib.suppress(trio.BrokenResourceError, ssl.SSLError, OSError):
                await self.stream.aclose()
