"""The DMZ secure web server: HTTPS, logon/logoff, the session cookie, frame relay.

Theory of operation
-------------------
The seed's DMZ web server decrypts the customer's HTTPS request, maps its cookie
to a session and forwards the request, re-encrypted, to a dispatcher
(docs/runtime.md "Hops").  Here it holds no database and no session table: the
session *is* the cookie value, which it puts into the frame's ``key`` field; the
dispatcher decides whether it is alive (7004 otherwise, which becomes HTTP 401).

Endpoints (one trio task per connection, h11 for HTTP/1.1, keep-alive):

``POST /logon``
    JSON ``{"user", "password"}`` -> ``LON<USERID=...,PASSWORD=...,SOURCE=...>`` to
    target ``DSP``, ``SOURCE`` being the client's IP address as this server sees
    it (order entry throttles failed logons per account and address; nothing the
    client sends can set it).  ``LONA`` with ``ERROR=0``: a new cookie
    ``__Host-starwrs_session=<SESSION>; Secure; HttpOnly; SameSite=Strict; Path=/``
    and the user's applications and entitlements as JSON.  A session cookie the
    request still carried goes in the LON frame's key: the dispatcher ends that
    session as it starts the new one, so every logon rotates the key.  Any refusal
    other than throttling (7012 -> 429 with ``Retry-After``) is the one answer
    ``401 {"error": 6115, "message": "invalid user or password"}``.
``POST /logoff``
    ``LOFF<>`` with the cookie's key; the cookie is cleared; 204.
``POST /dispatch``
    The body is one frame with ``klen`` 0 (400 otherwise); the key is filled in
    from the cookie (no cookie: 401 without contacting a dispatcher) and the
    frame relayed.  Target ``DSP`` is refused (403, 7003) unless the frame is an
    echo: logon and logoff go through ``/logon`` and ``/logoff`` only, so a
    session key never appears in a body a page script can read.  An echo too
    needs a live session (the dispatcher checks the key of every echo it relays
    for the web server).  The answer frame comes back as ``application/x-starwrs-frame``
    with its key field emptied (the key stays in the HttpOnly cookie); an answer
    with status 7004 is a 401 JSON answer instead.  Mechanisms:

    * 0 and echo -- pooled dispatcher links, one frame each way;
    * 1 (submit) and 2 (poll) -- a fresh link each, one frame each way;
    * 3 get -- the data frames are streamed as they come (chunked transfer
      encoding), one frame in memory at a time; when the HTTP client goes away the
      dispatcher link is closed, which cancels the transfer (PROTOCOL.md
      section 3); when the dispatcher link breaks the HTTP response is cut short
      (no final chunk), so the client knows to resume;
    * 3 put -- the body is the put frame followed by its data frames, relayed
      frame by frame as they arrive; such a body may exceed ``max_body``, but a
      ``Content-Length`` above it needs the request header ``X-Starwrs-Mech: bulk``
      (otherwise 413 before a byte of body is read).
``GET /``, ``GET /<file>``
    The browser client (:mod:`.static`): its own files and the allow-listed vendor
    files (``/vendor/…``) only, each with a strong ``ETag`` (``If-None-Match`` ->
    304) and ``Cache-Control: no-cache``.
``GET /brand/logo``
    The logo of the brand the session's enterprise presents: ``GBL<>`` to target
    ``OE`` with the cookie's key; the answer is checked again (:func:`.static.read_logo`:
    a raster image of its declared type, at most 64 KiB, its SHA-256 the ETag)
    before it is served; 404 when the brand has none, 401 without a session.

The pieces: :mod:`.http_server` (h11 and every HTTP limit), :mod:`.frames`
(frames in bodies, the key, the put relay), :mod:`.upstream` (dispatcher
links, pool, round robin), :mod:`.static`; this module routes and answers.

While the web server waits for a dispatcher, a watcher task reads the client's
side of the connection: a disconnect cancels the wait and closes the dispatcher
link; bytes of a pipelined next request are kept for h11.  For a synchronous
exchange the watcher starts only once the answer is ``upstream.WATCH_AFTER``
(50 ms) late, so the quick answers cost no task.

Cross-site requests: besides ``SameSite=Strict``, POSTs carrying an ``Origin``
other than this server's, or ``Sec-Fetch-Site: cross-site``, are refused (403);
``/logon`` takes ``application/json`` only (415), which a cross-site form cannot send.

Concurrency limit: at most ``limits.max_connections`` connections are served at
once; further connections are not accepted until one ends -- they wait in the
listen backlog (no 503).  One client address holds at most
``max_connections_per_source`` of them; its further connections are reset at once
(:mod:`.admission`), so accepting and handshaking go on for everyone else.  Slow
clients cannot hold a slot for long: the request head must be complete within
``head_timeout`` (TLS handshake included for the first request), the body within
``body_timeout`` plus its size at ``body_min_rate`` (:mod:`.http_server`), and
every write is under ``read_timeout``.

The only session cookie read is ``__Host-starwrs_session`` (PROTOCOL.md section 1).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import ssl
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import h11
import trio
from starwrs.grammar import Member, Message, MessageError, parse, serialize
from starwrs.grammar.catalogue_session import LogonAck
from starwrs.grammar.errors import ErrorCode
from starwrs.protocol import BulkGet, BulkPut, Frame, Mechanism, ProtocolError
from starwrs.protocol.control import decode_bulk_request
from starwrs.runtime.config import Address, Deployment
from starwrs.runtime.metrics import acronym_of, count_handshake, count_refused, count_request
from starwrs.runtime.pki import load_pki
from starwrs.runtime.tls import AnyTls, wrap_tls
from starwrs.web.admission import Admission, client_address, source_of
from starwrs.web.frames import (
    BodyFrames,
    check_request_frame,
    get_done,
    relay_put,
    with_key,
    without_key,
)
from starwrs.web.http_server import (
    ClientGone,
    HttpConnection,
    HttpError,
    header_pairs,
    header_value,
)
from starwrs.web.static import BRAND_LOGO_PATH, STATIC_ROOT, serve_client_file, serve_logo
from starwrs.web.upstream import Abandoned, DispatcherPool, Link, UpstreamError

__all__ = [
    "FRAME_CONTENT_TYPE",
    "MECH_HEADER",
    "SESSION_COOKIE",
    "WebServer",
    "serve_web",
    "session_key",
]

log = logging.getLogger("starwrs.web")

#: the session cookie (PROTOCOL.md section 1); ``__Host-`` pins it to this origin
SESSION_COOKIE = "__Host-starwrs_session"
#: the dispatcher's own target: reached through /logon and /logoff, never /dispatch
_DSP = "DSP"
#: content type of frames in both directions
FRAME_CONTENT_TYPE = b"application/x-starwrs-frame"
#: request header announcing a bulk upload larger than ``max_body``
MECH_HEADER = b"x-starwrs-mech"
_COOKIE_ATTRIBUTES = "; Secure; HttpOnly; SameSite=Strict; Path=/"
_CLEAR_COOKIE = (b"set-cookie", f"{SESSION_COOKIE}={_COOKIE_ATTRIBUTES}; Max-Age=0".encode())
#: what a session key may look like (a cookie-safe subset of the header's key characters)
_KEY = re.compile(r"[A-Za-z0-9._~+/=-]{1,255}")
#: largest logon body, and longest user id and password accepted
_LOGON_BODY = 16 * 1024
_MAX_USER = 128
_MAX_PASSWORD = 1024
_ACCEPT_RETRY = 0.1
_RECEIVE_SIZE = 64 * 1024
_NO_STORE = (b"cache-control", b"no-store")
#: the headers of a frame answer (a tuple: h11 checks them once)
_FRAME_ANSWER = ((b"content-type", FRAME_CONTENT_TYPE), _NO_STORE)
#: the client's states in which nothing more is coming on this request
_SETTLED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED)

_INVALID_LOGON = HttpError(401, ErrorCode.IDS_NOT_CORRECT, "invalid user or password")
_NO_SESSION = "no valid session: log on first"

T = TypeVar("T")


class _Abort(Exception):
    """A response already started cannot be finished: drop the connection."""


def session_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The session key from the request's ``__Host-starwrs_session`` cookie, or None.

    No other cookie name is read.  A value that is not a plausible key (empty, too
    long, odd characters) counts as no cookie.
    """
    for name, value in header_pairs(headers):
        if name != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            cookie_name, sep, cookie_value = part.strip().partition("=")
            if sep and cookie_name == SESSION_COOKIE:
                key = cookie_value.strip().strip('"')
                return key if _KEY.fullmatch(key) else None
    return None


def _upstream_http(err: UpstreamError) -> HttpError:
    status = 504 if err.code == ErrorCode.PROXY_TIMEOUT else 502
    return HttpError(status, err.code, err.message)


class WebServer:
    """The web server's connection handling (one instance per ``serve_web``).

    Args:
        deployment: limits and addresses.
        tls: the public server context (None: plain HTTP, for tests only).
        pool: the links to the dispatchers.
        static_root: where the static files are.
    """

    def __init__(
        self,
        deployment: Deployment,
        tls: ssl.SSLContext | None,
        pool: DispatcherPool,
        *,
        static_root: Path = STATIC_ROOT,
    ) -> None:
        self.limits = deployment.limits
        self.tls = tls
        self.pool = pool
        self.static_root = static_root
        self.slots = trio.Semaphore(max(1, self.limits.max_connections))
        self.admission = Admission(self.limits.max_connections_per_source)
        self._routes: dict[str, Callable[[HttpConnection, h11.Request], Awaitable[None]]] = {
            "/logon": self._logon,
            "/logoff": self._logoff,
            "/dispatch": self._dispatch,
        }

    # -- accepting -------------------------------------------------------------------

    async def accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        """Accept connections while fewer than ``max_connections`` are being served.

        A connection whose source already holds its share of the slots is reset at
        once (:mod:`.admission`): accepting goes on for everyone else.
        """
        while True:
            try:
                self.slots.acquire_nowait()
            except trio.WouldBlock:
                count_refused("web", "slots")  # the next connections wait in the backlog
                await self.slots.acquire()
            try:
                stream = await listener.accept()
            except OSError as err:
                self.slots.release()
                log.warning("accept failed: %s", err)
                await trio.sleep(_ACCEPT_RETRY)
                continue
            except BaseException:
                self.slots.release()
                raise
            address = client_address(stream)
            source = source_of(address)
            if not self.admission.admit(source):
                self.slots.release()
                Admission.reset(stream)
                count_refused("web", "per_source")
                continue
            nursery.start_soon(self._connection_task, stream, address, source)

    async def _connection_task(self, stream: trio.SocketStream, address: str, source: str) -> None:
        try:
            await self.handle_stream(stream, address)
        finally:
            self.admission.release(source)
            self.slots.release()

    async def handle_stream(self, transport: trio.abc.Stream, address: str = "") -> None:
        """Serve one client connection until it closes (TLS, then HTTP requests).

        Args:
            transport: the accepted connection.
            address: the client's IP address (the ``SOURCE`` of its logons).
        """
        # OpenSSL on the socket itself (runtime.tls), trio.SSLStream over other streams;
        # the TLS stream owns the socket from here on
        tls_stream: AnyTls | None = None
        if self.tls is not None:
            try:
                tls_stream = wrap_tls(transport, self.tls, server_side=True)
            except (OSError, ssl.SSLError, ValueError):  # reset before anything was said
                count_handshake("web", False)
                await trio.aclose_forcefully(transport)
                return
        try:
            await self._serve_stream(transport, tls_stream, address)
        finally:
            # also when cancelled mid-handshake (a stream closed already: nothing to do)
            await trio.aclose_forcefully(transport if tls_stream is None else tls_stream)

    async def _serve_stream(
        self, transport: trio.abc.Stream, tls_stream: AnyTls | None, address: str
    ) -> None:
        deadline = trio.current_time() + self.limits.head_timeout
        stream: trio.abc.Stream = transport
        if tls_stream is not None:
            with trio.move_on_at(deadline):
                try:
                    await tls_stream.do_handshake()
                except (trio.BrokenResourceError, ssl.SSLError, OSError):
                    if isinstance(tls_stream, trio.SSLStream):
                        await _send_pending_alert(tls_stream, transport)
                else:
                    stream = tls_stream
            count_handshake("web", stream is not transport)
            if stream is transport:
                return
        http = HttpConnection(stream, self.limits, address=address)
        linger = False
        abort = False
        try:
            while True:
                close = False
                request: h11.Request | None = None
                started = trio.current_time()
                try:
                    request = await http.start_cycle(deadline)
                    if request is None:
                        linger = http.body_pending
                        break
                    started = trio.current_time()  # the head is in: the request's clock
                    await self._handle(http, request)
                except HttpError as err:
                    close = await http.send_error(err)
                    if close:
                        # drain what the client is still sending, so that the kernel
                        # does not reset the connection before the answer is read
                        linger = http.conn.their_state not in _SETTLED
                finally:
                    self._log(http, request, started)
                if close:
                    break
                deadline = trio.current_time() + self.limits.head_timeout
        except ClientGone:
            abort = True
        except _Abort:
            abort = True  # no close_notify: the client must see the response was cut
        except Exception as err:  # a bug: log it, answer 500 when possible, never a traceback
            log.exception("internal error: %s", err.__class__.__name__)
            await http.send_error(HttpError(500, 500, "internal error", close=True))
        finally:
            if abort:
                await trio.aclose_forcefully(stream)
            elif linger:
                await http.linger_and_close()
            else:
                await http.aclose()

    @staticmethod
    def _log(http: HttpConnection, request: h11.Request | None, started: float) -> None:
        """One line per request: method, path (no query), status, milliseconds; and
        its count (``starwrs_requests_total``) once it was answered."""
        if request is None and not http.status:
            return  # the connection ended between requests
        seconds = trio.current_time() - started
        if http.status:
            count_request("web", http.target, http.acronym, http.status, seconds)
        if not log.isEnabledFor(logging.INFO):
            return
        method = request.method.decode("latin-1") if request is not None else "-"
        path = request.target.decode("latin-1").partition("?")[0][:200] if request else "-"
        log.info("%s %s %s %.1fms", method, path, http.status or "-", seconds * 1000)

    # -- routing ---------------------------------------------------------------------

    async def _handle(self, http: HttpConnection, request: h11.Request) -> None:
        target = request.target.decode("latin-1")
        path = target.partition("?")[0]
        method = request.method
        route = self._routes.get(path)
        if route is not None:
            if method != b"POST":
                raise HttpError(405, 405, "use POST", headers=[(b"allow", b"POST")])
            self._check_same_origin(request)
            await route(http, request)
        elif method in (b"GET", b"HEAD"):
            await self._static(http, path)
        else:
            raise HttpError(405, 405, "method not allowed", headers=[(b"allow", b"GET, HEAD")])

    @staticmethod
    def _check_same_origin(request: h11.Request) -> None:
        headers = request.headers
        site = header_value(headers, b"sec-fetch-site")
        if site == b"cross-site":
            raise HttpError(403, 403, "cross-site request refused")
        origin = header_value(headers, b"origin")
        if origin is None:
            return
        host = header_value(headers, b"host")
        if host is None or origin.lower() != b"https://" + host.lower():
            raise HttpError(403, 403, "cross-origin request refused")

    # -- dispatcher calls --------------------------------------------------------------

    async def _watching(self, http: HttpConnection, fn: Callable[[], Awaitable[T]]) -> T:
        """Run *fn* while watching for the client to go away (which cancels *fn*).

        Raises:
            ClientGone: the client disconnected meanwhile.
            Exception: whatever *fn* raised.
        """
        results: list[T] = []
        errors: list[Exception] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_client, http, nursery.cancel_scope)
            try:
                results.append(await fn())
            except Exception as err:
                errors.append(err)
            nursery.cancel_scope.cancel()
        if errors:
            raise errors[0]
        if not results:
            raise ClientGone("the client went away while the dispatcher worked")
        return results[0]

    @staticmethod
    async def _watch_client(http: HttpConnection, scope: trio.CancelScope) -> None:
        try:
            data = await http.stream.receive_some(_RECEIVE_SIZE)
        except (trio.BrokenResourceError, ssl.SSLError, OSError):
            data = b""
        http.feed(bytes(data))
        if not data:
            scope.cancel()

    async def _call(self, http: HttpConnection, frame: Frame, key: str, *, reuse: bool) -> Frame:
        data = with_key(frame, key)

        async def watch(scope: trio.CancelScope) -> None:
            await self._watch_client(http, scope)

        try:
            # the client is watched only once the answer is late (upstream.WATCH_AFTER)
            return await self.pool.request(data, reuse=reuse, watch=watch)
        except UpstreamError as err:
            raise _upstream_http(err) from None
        except Abandoned:
            raise ClientGone("the client went away while the dispatcher worked") from None

    async def _answer_frame(
        self, http: HttpConnection, frame: Frame, *, close: bool = False
    ) -> None:
        if frame.header.status == ErrorCode.NO_SESSION:
            raise HttpError(401, ErrorCode.NO_SESSION, _NO_SESSION, [_CLEAR_COOKIE], close=close)
        await http.respond(200, _FRAME_ANSWER, without_key(frame), close=close)

    # -- POST /logon, /logoff -------------------------------------------------------------

    async def _logon(self, http: HttpConnection, request: h11.Request) -> None:
        http.target, http.acronym = _DSP, "LON"
        content_type = header_value(request.headers, b"content-type") or b""
        if content_type.split(b";")[0].strip().lower() != b"application/json":
            raise HttpError(415, 415, "send the logon as application/json")
        body = await http.read_body(min(self.limits.max_body, _LOGON_BODY))
        try:
            obj = json.loads(body)
        except (ValueError, RecursionError):
            raise HttpError(400, 400, 'expected JSON {"user": ..., "password": ...}') from None
        user = obj.get("user") if isinstance(obj, dict) else None
        password = obj.get("password") if isinstance(obj, dict) else None
        if not isinstance(user, str) or not isinstance(password, str) or not user or not password:
            raise HttpError(400, 400, 'expected JSON {"user": ..., "password": ...}')
        if len(user) > _MAX_USER or len(password) > _MAX_PASSWORD:
            raise _INVALID_LOGON
        members = [Member("USERID", user), Member("PASSWORD", password)]
        if http.address:  # the one place SOURCE is set: the client cannot send it
            members.append(Member("SOURCE", http.address))
        payload = serialize(Message("LON", tuple(members))).encode()
        frame = Frame.build(Mechanism.SYNC, _DSP, payload)
        # the session this browser still holds travels in the LON frame's key: the
        # dispatcher ends it when it starts the new one (the key rotates at every logon)
        old = session_key(request.headers)
        answer = await self._call(http, frame, old or "", reuse=True)
        ack = self._logon_ack(answer)
        session = ack.session or ""
        if not _KEY.fullmatch(session):
            raise HttpError(
                502, ErrorCode.MALFORMED_FRAME, "the dispatcher gave an unusable session"
            )
        headers = [(b"set-cookie", f"{SESSION_COOKIE}={session}{_COOKIE_ATTRIBUTES}".encode())]
        await http.respond_json(
            200,
            {
                "user": ack.user_id,
                "enterprise": ack.entp_id,
                "applications": list(ack.apps),
                "entitlements": {"products": list(ack.products), "corp_ids": list(ack.corp_ids)},
                "timezone": ack.timezone,
                "lang": ack.lang,
                "curr": ack.curr,
                # the browser's backplane says why a session ended (idle, absolute)
                "session": {
                    "idle": self.limits.session_idle,
                    "absolute": self.limits.session_absolute,
                },
            },
            headers,
        )

    @staticmethod
    def _logon_ack(answer: Frame) -> LogonAck:
        status = answer.header.status
        ack: LogonAck | None = None
        try:
            ack = LogonAck.from_message(parse(answer.payload.decode("utf-8")))
        except (UnicodeDecodeError, MessageError):
            if status == 0:
                raise HttpError(
                    502, ErrorCode.MALFORMED_FRAME, "the dispatcher's logon answer is malformed"
                ) from None
        code = status or (ack.error if ack is not None else 0)
        if code == ErrorCode.LOGON_THROTTLED:
            raise HttpError(
                429,
                ErrorCode.LOGON_THROTTLED,
                "too many failed logons: try again later",
                [(b"retry-after", b"60")],
            )
        if code in (ErrorCode.PROXY_UNAVAILABLE, ErrorCode.PROXY_TIMEOUT):
            raise HttpError(
                502 if code == ErrorCode.PROXY_UNAVAILABLE else 504,
                code,
                "order entry is not available",
            )
        if code or ack is None:
            raise _INVALID_LOGON
        return ack

    async def _logoff(self, http: HttpConnection, request: h11.Request) -> None:
        http.target, http.acronym = _DSP, "LOFF"
        await http.read_body(_LOGON_BODY)
        key = session_key(request.headers)
        headers = [_CLEAR_COOKIE, _NO_STORE]
        if key is not None:
            frame = Frame.build(Mechanism.SYNC, _DSP, b"LOFF<>")
            try:
                await self._call(http, frame, key, reuse=True)
            except HttpError as err:
                raise HttpError(err.status, err.code, err.message, headers) from None
        await http.respond(204, headers)

    # -- POST /dispatch -------------------------------------------------------------------

    async def _dispatch(self, http: HttpConnection, request: h11.Request) -> None:
        key = session_key(request.headers)
        if key is None:
            raise HttpError(401, ErrorCode.NO_SESSION, _NO_SESSION)
        max_body = self.limits.max_body
        bulk_hint = (header_value(request.headers, MECH_HEADER) or b"").strip().lower()
        declared = http.content_length()
        if declared is not None and declared > max_body and bulk_hint not in (b"bulk", b"3"):
            raise HttpError(
                413,
                ErrorCode.FRAME_TOO_LARGE,
                f"body larger than {max_body} bytes (a bulk put says {MECH_HEADER.decode()}: bulk)",
                close=True,
            )
        body = BodyFrames(http, max_body, max_body)
        frame = await body.next()
        if frame is None:
            raise HttpError(400, ErrorCode.MALFORMED_FRAME, "the body must be one frame")
        check_request_frame(frame)
        header = frame.header
        http.target = header.target
        if not header.echo and header.mech != Mechanism.BULK:
            http.acronym = acronym_of(frame.payload)
        if header.target.strip().upper() == _DSP and not header.echo:  # as the dispatcher reads it
            raise HttpError(
                403,
                ErrorCode.NOT_ENTITLED,
                "target DSP is not relayed: log on and off through /logon and /logoff",
            )
        if header.mech == Mechanism.BULK and not header.echo:
            try:
                opening = decode_bulk_request(frame.payload, header)
            except ProtocolError as err:
                raise HttpError(400, err.code, err.message, close=True) from None
            if isinstance(opening, BulkPut):
                await self._bulk_put(http, body, frame, key)
                return
            if not isinstance(opening, BulkGet):
                raise HttpError(
                    400,
                    ErrorCode.MALFORMED_FRAME,
                    "a bulk transfer starts with a get or a put; close the connection to cancel",
                    close=True,
                )
        if await body.next() is not None:
            raise HttpError(
                400, ErrorCode.MALFORMED_FRAME, "the body must be exactly one frame", close=True
            )
        if header.mech == Mechanism.BULK and not header.echo:
            await self._bulk_get(http, frame, key)
            return
        reuse = header.mech == Mechanism.SYNC
        answer = await self._call(http, frame, key, reuse=reuse)
        await self._answer_frame(http, answer)

    async def _bulk_get(self, http: HttpConnection, frame: Frame, key: str) -> None:
        # a pooled link: a get that ends with its done frame leaves it clean
        link, answer = await self._open_get(http, frame, key)
        whole = False
        try:
            whole = await self._watching(http, lambda: self._stream_get(http, link, answer))
        finally:
            if whole:
                self.pool.release(link)
            else:
                await link.aclose()

    async def _open_get(self, http: HttpConnection, frame: Frame, key: str) -> tuple[Link, Frame]:
        async def watch(scope: trio.CancelScope) -> None:
            await self._watch_client(http, scope)

        try:
            return await self.pool.begin(with_key(frame, key), watch=watch)
        except UpstreamError as err:
            raise _upstream_http(err) from None
        except Abandoned:
            raise ClientGone("the client went away while the dispatcher worked") from None

    async def _stream_get(self, http: HttpConnection, link: Link, answer: Frame) -> bool:
        """Pass the get's frames on; True when it ended with its ``done`` frame."""
        done = get_done(answer)
        if done is not False:  # an error answer, or the whole resource in one frame
            await self._answer_frame(http, answer)
            return done is True
        timeout = self.pool.answer_timeout
        await http.start_response(200, [(b"content-type", FRAME_CONTENT_TYPE), _NO_STORE])
        while True:
            await http.send_data(without_key(answer))
            if done is not False:
                break
            try:
                answer = await link.receive(timeout)
            except UpstreamError as err:
                log.warning("bulk get cut short: %s", err.message)
                raise _Abort from None
            done = get_done(answer)
        await http.end_response()
        return done is True

    async def _bulk_put(
        self, http: HttpConnection, body: BodyFrames, frame: Frame, key: str
    ) -> None:
        try:
            link = await self.pool.open_link()
        except UpstreamError as err:
            raise _upstream_http(err) from None
        try:
            answer = await relay_put(link, body, frame, key, self.pool.answer_timeout)
        except UpstreamError as err:
            raise _upstream_http(err) from None
        finally:
            await link.aclose()
        await self._answer_frame(http, answer, close=http.body_pending)

    # -- GET static files and the brand's logo ---------------------------------------------

    async def _static(self, http: HttpConnection, path: str) -> None:
        if path != BRAND_LOGO_PATH:
            await serve_client_file(http, path, self.static_root)
            return
        assert http.request is not None
        key = session_key(http.request.headers)
        if key is None:
            raise HttpError(401, ErrorCode.NO_SESSION, _NO_SESSION)
        frame = Frame.build(Mechanism.SYNC, "OE", b"GBL<>")
        answer = await self._call(http, frame, key, reuse=True)
        if answer.header.status == ErrorCode.NO_SESSION:
            raise HttpError(401, ErrorCode.NO_SESSION, _NO_SESSION, [_CLEAR_COOKIE])
        await serve_logo(http, answer.payload)


async def serve_web(
    deployment: Deployment,
    *,
    index: int = 0,
    task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the web server of *deployment* until cancelled.

    Args:
        deployment: addresses, limits and the state directory (certificates).
        index: unused (one web server per deployment); kept for the common signature.
        task_status: started with the bound address (the port, when 0 was asked for).

    Raises:
        FileNotFoundError: the certificates were not made (``ensure_pki``).
        OSError: the address cannot be bound.
    """
    del index
    pki = load_pki(
        deployment.state_dir,
        services=("web",),
        server_cert=deployment.web_cert,
        server_key=deployment.web_key,
    )
    pool = DispatcherPool(
        deployment.dispatchers, pki.internal_client_context("web"), deployment.limits
    )
    server = WebServer(deployment, pki.web_server_context(), pool)
    listeners = await trio.open_tcp_listeners(deployment.web.port, host=deployment.web.host)
    try:
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(server.accept_loop, listener, nursery)
            port = listeners[0].socket.getsockname()[1]
            log.info("web server on https://%s:%d", deployment.web.host, port)
            task_status.started(Address(deployment.web.host, port))
    finally:
        pool.close_idle()
        for listener in listeners:
            listener.socket.close()


async def _send_pending_alert(tls_stream: trio.SSLStream[Any], transport: trio.abc.Stream) -> None:
    """Send the TLS alert OpenSSL wrote for a failed handshake (best effort).

    trio marks the stream broken without sending what OpenSSL queued, so a client
    offering only TLS 1.1 would see the connection drop instead of the
    ``protocol_version`` alert that tells it why.  The queued bytes sit in the
    stream's outgoing memory BIO (a private attribute: without it, nothing is sent).
    """
    outgoing = getattr(tls_stream, "_outgoing", None)
    if not isinstance(outgoing, ssl.MemoryBIO):
        return
    data = outgoing.read()
    if not data:
        return
    with (
        trio.move_on_after(1),
        contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError),
    ):
        await transport.send_all(data)
