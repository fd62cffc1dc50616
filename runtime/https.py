"""A small HTTPS client on trio + h11, for ``starwrs client``, the collector and the tests.

Theory of operation
-------------------
:class:`HttpsClient` keeps one keep-alive HTTP/1.1 connection (TLS, the server
verified against the given context) and a cookie jar of the cookies the server
set, which is all the web server's session needs.  ``request`` sends a whole
request and returns the whole response; ``stream`` returns the response head and
lets the caller read the body piece by piece (bulk downloads), so a body never
has to fit in memory.

A request that fails on a *reused* connection before any byte of answer came
back is sent once more on a new connection (the server may have closed an idle
keep-alive connection).  Anything else that goes wrong below HTTP -- no
connection, a TLS or certificate failure, a connection that breaks in the middle
of a body, a timeout -- is a :class:`ClientError` with a plain message.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import h11
import trio

__all__ = ["ClientError", "HttpResponse", "HttpsClient", "StreamedResponse"]

_RECEIVE_SIZE = 256 * 1024
_IO_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError)


class ClientError(Exception):
    """The HTTPS exchange failed below HTTP (connection, TLS, timeout, cut-off body)."""


@dataclass
class HttpResponse:
    """A whole response."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header *name*, or None."""
        wanted = name.lower().encode()
        for key, value in self.headers:
            if key == wanted:
                return value.decode("latin-1")
        return None

    def json(self) -> Any:
        """The body parsed as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None


@dataclass
class StreamedResponse:
    """A response whose body is read with :meth:`receive_some`."""

    status: int
    headers: list[tuple[bytes, bytes]]
    client: HttpsClient = field(repr=False)

    async def receive_some(self) -> bytes | None:
        """The next piece of the body, or None at its end.

        Raises:
            ClientError: the connection broke or stalled before the body ended.
        """
        while True:
            event = await self.client._next_event()
            if isinstance(event, h11.Data):
                return bytes(event.data)
            if isinstance(event, h11.EndOfMessage):
                return None
            raise ClientError("the connection closed inside the response body")


class HttpsClient:
    """One keep-alive HTTPS connection to a server, with a cookie jar.

    Args:
        url: ``https://host:port`` (a path is ignored).
        context: the TLS client context (verifies the server).
        timeout: seconds any connect, read or write may take.

    Raises:
        ClientError: the URL is not an https URL.
    """

    def __init__(self, url: str, context: ssl.SSLContext, *, timeout: float = 90.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ClientError(f"not an https URL: {url!r}")
        self.host = parts.hostname
        try:
            self.port = parts.port or 443
        except ValueError:
            raise ClientError(f"bad port in {url!r}") from None
        self.context = context
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = host if self.port == 443 else f"{host}:{self.port}"
        self._stream: trio.SSLStream[trio.SocketStream] | None = None
        self._conn = h11.Connection(h11.CLIENT)
        self._received = 0

    # -- connection ------------------------------------------------------------------

    async def _connect(self) -> None:
        await self.aclose()
        try:
            with trio.fail_after(self.timeout):
                tcp = await trio.open_tcp_stream(self.host, self.port)
                stream = trio.SSLStream(tcp, self.context, server_hostname=self.host)
                try:
                    await stream.do_handshake()
                except BaseException:
                    await trio.aclose_forcefully(tcp)
                    raise
        except trio.TooSlowError:
            raise ClientError(f"{self.authority} did not answer in {self.timeout:g} s") from None
        except _IO_ERRORS as err:
            cause = err.__cause__ if isinstance(err, trio.BrokenResourceError) else err
            if isinstance(cause, ssl.SSLCertVerificationError):
                raise ClientError(
                    f"the certificate of {self.authority} is not trusted "
                    f"({cause.verify_message}); give its CA with --ca or --state"
                ) from err
            raise ClientError(f"cannot connect to {self.authority}: {cause}") from err
        self._stream = stream
        self._conn = h11.Connection(h11.CLIENT)

    async def aclose(self) -> None:
        """Close the connection (the cookie jar is kept)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            await trio.aclose_forcefully(stream)

    async def __aenter__(self) -> HttpsClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _send(self, event: h11.Event) -> None:
        assert self._stream is not None
        data = self._conn.send(event)
        if not data:
            return
        try:
            with trio.fail_after(self.timeout):
                await self._stream.send_all(data)
        except trio.TooSlowError:
            raise ClientError("the server stopped reading") from None
        except _IO_ERRORS as err:
            raise ClientError(f"connection to {self.authority} broken") from err

    async def _next_event(self) -> h11.Event:
        assert self._stream is not None
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as err:
                raise ClientError(f"bad HTTP from the server: {err}") from None
            if event is not h11.NEED_DATA:
                assert isinstance(event, h11.Event)
                return event
            try:
                with trio.fail_after(self.timeout):
                    data = await self._stream.receive_some(_RECEIVE_SIZE)
            except trio.TooSlowError:
                raise ClientError(
                    f"no answer from {self.authority} in {self.timeout:g} s"
                ) from None
            except _IO_ERRORS as err:
                raise ClientError(f"connection to {self.authority} broken") from err
            self._received += len(data)
            self._conn.receive_data(bytes(data))

    # -- cookies ---------------------------------------------------------------------

    def _remember_cookies(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        for name, value in headers:
            if name != b"set-cookie":
                continue
            first, *attributes = value.decode("latin-1").split(";")
            cookie, sep, content = first.strip().partition("=")
            if not sep or not cookie:
                continue
            expired = any(a.strip().lower() == "max-age=0" for a in attributes)
            if expired or not content:
                self.cookies.pop(cookie, None)
            else:
                self.cookies[cookie] = content

    # -- requests --------------------------------------------------------------------

    async def _start(
        self, method: str, path: str, body: bytes, headers: Iterable[tuple[str, str]]
    ) -> h11.Response:
        reused = self._stream is not None
        for attempt in range(2):
            if self._stream is None:
                await self._connect()
            head = [("host", self.authority), ("content-length", str(len(body)))]
            head += list(headers)
            if self.cookies:
                head.append(("cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items())))
            self._received = 0
            try:
                await self._send(h11.Request(method=method, target=path, headers=head))
                if body:
                    await self._send(h11.Data(data=body))
                await self._send(h11.EndOfMessage())
                response = await self._response_head()
            except ClientError:
                await self.aclose()
                if reused and attempt == 0 and not self._received:
                    continue
                raise
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _response_head(self) -> h11.Response:
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Response):
                self._remember_cookies(event.headers)
                return event
            if not isinstance(event, h11.InformationalResponse):
                raise ClientError("the server closed the connection without an answer")

    async def _read_body(self) -> bytes:
        parts: list[bytes] = []
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(parts)
            else:
                raise ClientError("the connection closed inside the response body")

    def _finish(self) -> None:
        if self._conn.our_state is h11.DONE and self._conn.their_state is h11.DONE:
            self._conn.start_next_cycle()
        else:
            stream, self._stream = self._stream, None
            if stream is not None:
                stream.transport_stream.socket.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
    ) -> HttpResponse:
        """Send a request and read the whole response.

        Raises:
            ClientError: see the class.
        """
        response = await self._start(method, path, body, headers)
        try:
            content = await self._read_body()
        except ClientError:
            await self.aclose()
            raise
        self._finish()
        return HttpResponse(response.status_code, list(response.headers), content)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
    ) -> AsyncIterator[StreamedResponse]:
        """Send a request; yield the response with its body still to be read.

        A body not read to its end when the block exits closes the connection.

        Raises:
            ClientError: see the class.
        """
        response = await self._start(method, path, body, headers)
        try:
            yield StreamedResponse(response.status_code, list(response.headers), self)
        except BaseException:
            await self.aclose()
            raise
        self._finish()
