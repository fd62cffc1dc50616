"""The server side of HTTP/1.1 without h11's per-event cost: h11's behaviour, leaner.

Theory of operation
-------------------
:class:`ServerConnection` is a sans-IO stand-in for ``h11.Connection(h11.SERVER)``
(h11 0.16): the same methods and properties (``receive_data``, ``next_event``,
``send``, ``start_next_cycle``, ``trailing_data``, ``our_state``/``their_state``,
``client_is_waiting_for_100_continue``, ...), the same event objects (real
``h11.Request``, ``h11.Data``, ... with the same field values and types), the same
state machine (h11's sentinels ``h11.IDLE`` ... ``h11.ERROR``, its state-triggered
transitions, keep-alive, ``Expect: 100-continue``, protocol-switch proposals) and
the same exceptions (``h11.RemoteProtocolError`` with its ``error_status_hint`` and
message, ``h11.LocalProtocolError``).  It exists because h11 spends most of a
request's HTTP time in generic machinery (a dict copy and a fixed-point loop per
state change, a reader/writer object looked up per event, a regular expression and
a Python call per header line and five ``get_comma_header`` scans per request);
the web server's profile had h11 at a third of its CPU.

Where the time goes instead:

* **request head, fast path** -- a head that ends in CRLF CRLF is checked by *one*
  regular expression over the whole head (h11's own RFC 7230 grammar from
  ``h11._abnf``: request line, then ``field-name ":" OWS field-value OWS`` lines,
  CRLF between them), and the (name, value) pairs are taken by one ``findall``.
  Only a plain head takes it: at most one ``Content-Length`` of decimal digits
  (20 at most), no ``Transfer-Encoding``, exactly one ``Host`` (or none for a
  version other than 1.1), not ``CONNECT``, no ``Upgrade``, the server idle.  The
  ``Connection`` and ``Expect`` values are read as h11 reads them.
* **request head, anything else** (obs-fold, bare LF or CR, invalid characters,
  duplicate or odd framing headers, a missing Host, chunked, ...) -- h11's own
  algorithm step by step, on the same bytes: its line splitting and folding, its
  per-line validation and messages, and ``h11.Request`` itself (so the
  ``Content-Length``/``Transfer-Encoding``/``Host`` rules and their errors are
  h11's code).  The fast path never decides an error: when in doubt it hands the
  head to this path.
* **bodies** -- ``Content-Length`` and chunked readers that are h11's, flattened
  into this object (no reader objects); the chunked reader checks each chunk's
  CRLF as h11 0.16 does.
* **responses** -- :meth:`ServerConnection.send` takes h11's events and applies
  h11's rules (``_clean_up_response_headers_for_sending``: chunked or close-delimited
  framing, ``Connection: close`` when keep-alive is off, ``Host`` first);
  :meth:`ServerConnection.send_response` is ``send(Response)``, ``send(Data)``,
  ``send(EndOfMessage())`` in one call, which writes the head itself when no
  header needs rewriting (keep-alive on, a ``Content-Length`` that matches the
  body, or a 204/304/``HEAD`` answer) and otherwise makes exactly those three
  calls.

``tests/web/test_http11.py`` holds all of it to h11 with Hypothesis: random valid
and mutated request streams split at random points (same events, same fields, same
errors and status hints, same states and trailing data) and random responses (same
bytes, same states, same errors).
"""

from __future__ import annotations

import re
from typing import Final, cast

import h11
from h11 import _abnf
from h11._headers import Headers, get_comma_header, set_comma_header
from h11._state import MIGHT_SWITCH_PROTOCOL
from h11._util import Sentinel

__all__ = ["ServerConnection"]

State = type[Sentinel]
Event = h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]

_CLIENT: Final = h11.CLIENT
_SERVER: Final = h11.SERVER
_IDLE: Final = h11.IDLE
_SEND_RESPONSE: Final = h11.SEND_RESPONSE
_SEND_BODY: Final = h11.SEND_BODY
_DONE: Final = h11.DONE
_MUST_CLOSE: Final = h11.MUST_CLOSE
_CLOSED: Final = h11.CLOSED
_ERROR: Final = h11.ERROR
_MIGHT_SWITCH: Final = MIGHT_SWITCH_PROTOCOL
_SWITCHED: Final = h11.SWITCHED_PROTOCOL
_NEED_DATA: Final = h11.NEED_DATA
_PAUSED: Final = h11.PAUSED

_Request = h11.Request
_Data = h11.Data
_EndOfMessage = h11.EndOfMessage
_Response = h11.Response
_InformationalResponse = h11.InformationalResponse
_ConnectionClosed = h11.ConnectionClosed
_LocalProtocolError = h11.LocalProtocolError
_RemoteProtocolError = h11.RemoteProtocolError

_new = object.__new__
_set = object.__setattr__

#: h11's default ``max_incomplete_event_size``
DEFAULT_MAX_INCOMPLETE_EVENT_SIZE = 16 * 1024

# -- the grammar: h11's own (RFC 7230 as h11 reads it) ------------------------------------

_FIELD_LINE = rf"{_abnf.field_name}:{_abnf.OWS}(?:{_abnf.field_content})?{_abnf.OWS}"
#: a whole head without its final CRLF CRLF: the request line, then header lines
_HEAD_RE: Final = re.compile(rf"{_abnf.request_line}(?:\r\n{_FIELD_LINE})*".encode("ascii"))
#: one header line (after the CRLF before it): (name, value) as h11's groups take them
_PAIR_RE: Final = re.compile(
    rf"\r\n({_abnf.field_name}):{_abnf.OWS}((?:{_abnf.field_content})?){_abnf.OWS}".encode("ascii")
)
_REQUEST_LINE_RE: Final = re.compile(_abnf.request_line.encode("ascii"))
_HEADER_FIELD_RE: Final = re.compile(_abnf.header_field.encode("ascii"))
_CHUNK_HEADER_RE: Final = re.compile(_abnf.chunk_header.encode("ascii"))
_OBS_FOLD_RE: Final = re.compile(rb"[ \t]+")
_BLANK_LINE_RE: Final = re.compile(b"\n\r?\n", re.MULTILINE)

#: the header names the fast path looks at (the others it only copies)
_WATCHED: Final = frozenset(
    {
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"expect",
        b"upgrade",
    }
)

#: h11's event-triggered transitions of the server role (state, event key) -> state
_SERVER_MOVES: Final[dict[tuple[State, object], State]] = {
    (_IDLE, _ConnectionClosed): _CLOSED,
    (_IDLE, _Response): _SEND_BODY,
    (_SEND_RESPONSE, _InformationalResponse): _SEND_RESPONSE,
    (_SEND_RESPONSE, _Response): _SEND_BODY,
    (_SEND_RESPONSE, (_InformationalResponse, "upgrade")): _SWITCHED,
    (_SEND_RESPONSE, (_Response, "connect")): _SWITCHED,
    (_SEND_BODY, h11.Data): _SEND_BODY,
    (_SEND_BODY, h11.EndOfMessage): _DONE,
    (_DONE, _ConnectionClosed): _CLOSED,
    (_MUST_CLOSE, _ConnectionClosed): _CLOSED,
    (_CLOSED, _ConnectionClosed): _CLOSED,
}

#: body framings (h11's reader and writer kinds)
_NONE, _LENGTH, _CHUNKED, _HTTP10 = 0, 1, 2, 3


def _validate(regex: re.Pattern[bytes], data: bytearray, msg: str) -> dict[str, bytes]:
    """h11's ``validate``: the groups of a full match, or LocalProtocolError(*msg*
    formatted with *data*)."""
    match = regex.fullmatch(data)
    if not match:
        raise _LocalProtocolError(msg.format(data))
    return match.groupdict()


def _decode_header_lines(lines: list[bytearray]) -> list[tuple[bytes, bytes]]:
    """h11's ``_decode_header_lines`` (obs-fold joined with one space), as a list."""
    folded: list[bytearray] = []
    last: bytearray | None = None
    for line in lines:
        match = _OBS_FOLD_RE.match(line)
        if match:
            if last is None:
                raise _LocalProtocolError("continuation line at start of headers")
            last += b" "  # h11's lines are bytearrays already: it extends them in place
            last += line[match.end() :]
        else:
            if last is not None:
                folded.append(last)
            last = line
    if last is not None:
        folded.append(last)
    out = []
    for line in folded:
        matches = _validate(_HEADER_FIELD_RE, line, "illegal header line: {!r}")
        out.append((matches["field_name"], matches["field_value"]))
    return out


def _has_token(value: bytes, token: bytes) -> bool:
    """Whether *token* is one of the comma-separated items of *value* (h11's
    ``get_comma_header`` applied to one value)."""
    return token in [item.strip() for item in value.lower().split(b",")]


def _framing(method: bytes | None, status: int | None, headers: Headers) -> tuple[int, int]:
    """h11's ``_body_framing``: (kind, length) of a request (*status* None) or response."""
    if status is not None and (
        status in (204, 304) or method == b"HEAD" or (method == b"CONNECT" and 200 <= status < 300)
    ):
        return _LENGTH, 0
    if get_comma_header(headers, b"transfer-encoding"):
        assert get_comma_header(headers, b"transfer-encoding") == [b"chunked"]
        return _CHUNKED, 0
    lengths = get_comma_header(headers, b"content-length")
    if lengths:
        return _LENGTH, int(lengths[0])
    if status is None:
        return _LENGTH, 0
    return _HTTP10, 0


def _write_headers(items: list[tuple[bytes, bytes, bytes]], parts: list[bytes]) -> None:
    """h11's ``write_headers``: ``Host`` first, then the others, then the blank line."""
    for raw_name, name, value in items:
        if name == b"host":
            parts.append(b"%s: %s\r\n" % (raw_name, value))
    for raw_name, name, value in items:
        if name != b"host":
            parts.append(b"%s: %s\r\n" % (raw_name, value))
    parts.append(b"\r\n")


def _write_response(response: h11.Response | h11.InformationalResponse, parts: list[bytes]) -> None:
    """h11's ``write_any_response``."""
    if response.http_version != b"1.1":
        raise _LocalProtocolError("I only send HTTP/1.1")
    status = str(response.status_code).encode("ascii")
    parts.append(b"HTTP/1.1 %s %s\r\n" % (status, response.reason))
    _write_headers(response.headers._full_items, parts)


def _cannot(event_name: str, role: State, state: State) -> h11.LocalProtocolError:
    return _LocalProtocolError(
        f"can't handle event type {event_name} when role={role} and state={state}"
    )


class ServerConnection:
    """The server side of one HTTP/1.1 connection, as ``h11.Connection(h11.SERVER)``.

    Args:
        max_incomplete_event_size: bytes buffered of an unfinished event (in
            practice, a request head) before ``next_event`` fails with 431.
    """

    __slots__ = (
        "_body",
        "_buffer",
        "_chunk_left",
        "_client",
        "_closed",
        "_discard",
        "_keep_alive",
        "_length",
        "_line_search",
        "_lines_search",
        "_max_incomplete",
        "_out",
        "_out_left",
        "_remaining",
        "_request_method",
        "_server",
        "_switch_connect",
        "_switch_upgrade",
        "_trailer",
        "client_is_waiting_for_100_continue",
        "their_http_version",
    )

    our_role: Final = _SERVER
    their_role: Final = _CLIENT

    def __init__(self, max_incomplete_event_size: int = DEFAULT_MAX_INCOMPLETE_EVENT_SIZE) -> None:
        self._max_incomplete = max_incomplete_event_size
        self._client: State = _IDLE
        self._server: State = _IDLE
        self._keep_alive = True
        self._switch_upgrade = False
        self._switch_connect = False
        self._request_method: bytes | None = None
        #: the HTTP version of the client's last request (h11's attribute)
        self.their_http_version: bytes | None = None
        #: the request said ``Expect: 100-continue`` and no response or body came yet
        self.client_is_waiting_for_100_continue = False
        self._buffer = bytearray()
        self._closed = False
        self._line_search = 0
        self._lines_search = 0
        # the reader of the request body (client SEND_BODY)
        self._body = _NONE
        self._length = 0
        self._remaining = 0
        self._chunk_left = 0
        self._discard = b""
        self._trailer = False
        # the writer of the response body (server SEND_BODY)
        self._out = _NONE
        self._out_left = 0

    # -- state ---------------------------------------------------------------------------

    @property
    def states(self) -> dict[State, State]:
        """``{h11.CLIENT: <client state>, h11.SERVER: <server state>}``."""
        return {_CLIENT: self._client, _SERVER: self._server}

    @property
    def our_state(self) -> State:
        """The server's state (h11's sentinels)."""
        return self._server

    @property
    def their_state(self) -> State:
        """The client's state (h11's sentinels)."""
        return self._client

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        return self.client_is_waiting_for_100_continue

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not yet processed, and whether the client closed."""
        return bytes(self._buffer), self._closed

    def _settle(self) -> None:
        """h11's state-triggered transitions, applied until nothing changes."""
        pending = self._switch_upgrade or self._switch_connect
        while True:
            client = start_client = self._client
            server = start_server = self._server
            if pending and client is _DONE:
                client = _MIGHT_SWITCH
            if not pending and client is _MIGHT_SWITCH:
                client = _DONE
            if not self._keep_alive:
                if client is _DONE:
                    client = _MUST_CLOSE
                if server is _DONE:
                    server = _MUST_CLOSE
            # the table: (MIGHT_SWITCH, SWITCHED); (CLOSED, DONE|IDLE), (ERROR, DONE);
            # (DONE|IDLE, CLOSED), (DONE, ERROR)
            if client is _MIGHT_SWITCH and server is _SWITCHED:
                client = _SWITCHED
            elif (client is _CLOSED and (server is _DONE or server is _IDLE)) or (
                client is _ERROR and server is _DONE
            ):
                server = _MUST_CLOSE
            elif (server is _CLOSED and (client is _DONE or client is _IDLE)) or (
                client is _DONE and server is _ERROR
            ):
                client = _MUST_CLOSE
            if client is start_client and server is start_server:
                return
            self._client, self._server = client, server

    def _client_error(self) -> None:
        self._client = _ERROR
        self._settle()

    def start_next_cycle(self) -> None:
        """Reset both sides from DONE to IDLE for the next request on this connection.

        Raises:
            h11.LocalProtocolError: not both in DONE.
        """
        if self._client is not _DONE or self._server is not _DONE:
            raise _LocalProtocolError(f"not in a reusable state. self.states={self.states}")
        self._client = self._server = _IDLE
        self._request_method = None
        assert not self.client_is_waiting_for_100_continue

    # -- receiving -------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Add *data* to the receive buffer; ``b""`` means the client closed."""
        if data:
            if self._closed:
                raise RuntimeError("received close, then received more data?")
            self._buffer += data
        else:
            self._closed = True

    def next_event(self) -> Event:
        """The next event of the client's side, ``h11.NEED_DATA`` or ``h11.PAUSED``.

        Raises:
            h11.RemoteProtocolError: the client broke the protocol (its state is
                then ERROR); ``error_status_hint`` 431 for an oversized head.
        """
        if self._client is _ERROR:
            raise _RemoteProtocolError("Can't receive data when peer state is ERROR")
        try:
            event = self._extract()
            if event is _NEED_DATA:
                self._check_incomplete()
            return event
        except BaseException as exc:
            self._client_error()
            if isinstance(exc, _LocalProtocolError):
                exc._reraise_as_remote_protocol_error()
            raise

    def _check_incomplete(self) -> None:
        """h11's checks on NEED_DATA: too much buffered (431), or the client closed."""
        if len(self._buffer) > self._max_incomplete:
            raise _RemoteProtocolError("Receive buffer too long", error_status_hint=431)
        if self._closed:
            raise _RemoteProtocolError("peer unexpectedly closed connection")

    def _extract(self) -> Event:
        """One event out of the buffer, with its state changes (h11's
        ``_extract_next_receive_event`` and ``_process_event``)."""
        state = self._client
        buffer = self._buffer
        if state is _SEND_BODY:
            if self._body == _LENGTH:  # h11's ContentLengthReader, inline
                if self._remaining == 0:
                    self._client = _DONE
                    self.client_is_waiting_for_100_continue = False
                    self._settle()
                    return _EndOfMessage()
                if buffer:
                    count = self._remaining
                    data = buffer[:count]
                    del buffer[:count]
                    self._line_search = self._lines_search = 0
                    self._remaining -= len(data)
                    self.client_is_waiting_for_100_continue = False
                    return _Data(data=data)  # type: ignore[arg-type]  # as h11: a bytearray
            else:
                event = self._read_chunked()
                if event is not None:
                    if type(event) is _EndOfMessage:
                        self._client = _DONE
                        self._settle()
                    self.client_is_waiting_for_100_continue = False
                    return event
            if not buffer and self._closed:
                raise self._eof_in_body()
            return _NEED_DATA
        if state is _IDLE:
            request = self._read_head()
            if request is not None:
                return request
        elif (state is _DONE and buffer) or state is _MIGHT_SWITCH or state is _SWITCHED:
            return _PAUSED
        elif buffer:  # DONE, MUST_CLOSE, CLOSED: h11's expect_nothing
            raise _LocalProtocolError("Got data when expecting EOF")
        if not buffer and self._closed:
            if state is _IDLE or state is _DONE or state is _MUST_CLOSE or state is _CLOSED:
                self._client = _CLOSED
            else:  # pragma: no cover - h11 has no ConnectionClosed transition from here
                raise _cannot("ConnectionClosed", _CLIENT, state)
            self._settle()
            return _ConnectionClosed()
        return _NEED_DATA

    def _eof_in_body(self) -> h11.RemoteProtocolError:
        if self._body == _LENGTH:
            return _RemoteProtocolError(
                "peer closed connection without sending complete message body "
                f"(received {self._length - self._remaining} bytes, expected {self._length})"
            )
        return _RemoteProtocolError(
            "peer closed connection without sending complete message body (incomplete chunked read)"
        )

    # the buffer, as h11's ReceiveBuffer (same search offsets, same copies)

    def _take(self, count: int) -> bytearray:
        buffer = self._buffer
        out = buffer[:count]
        del buffer[:count]
        self._line_search = self._lines_search = 0
        return out

    def _take_at_most(self, count: int) -> bytearray | None:
        if count <= 0 or not self._buffer:
            return None
        return self._take(count)

    def _take_line(self) -> bytearray | None:
        buffer = self._buffer
        at = buffer.find(b"\r\n", max(0, self._line_search - 1))
        if at == -1:
            self._line_search = len(buffer)
            return None
        return self._take(at + 2)

    def _take_lines(self) -> list[bytearray] | None:
        buffer = self._buffer
        if buffer[:1] == b"\n":
            self._take(1)
            return []
        if buffer[:2] == b"\r\n":
            self._take(2)
            return []
        match = _BLANK_LINE_RE.search(buffer, self._lines_search)
        if match is None:
            self._lines_search = max(0, len(buffer) - 2)
            return None
        lines = self._take(match.end()).split(b"\n")
        for line in lines:
            if line.endswith(b"\r"):
                del line[-1]
        assert lines[-2] == lines[-1] == b""
        del lines[-2:]
        return lines

    # the request head

    def _read_head(self) -> h11.Request | None:
        buffer = self._buffer
        if buffer[:1] != b"\n" and buffer[:2] != b"\r\n":
            match = _BLANK_LINE_RE.search(buffer, self._lines_search)
            if match is None:
                self._lines_search = max(0, len(buffer) - 2)
                if buffer and buffer[0] < 0x21:
                    raise _LocalProtocolError("illegal request line")
                return None
            end = match.end()
            if end >= 4 and buffer.startswith(b"\r\n\r\n", end - 4):
                request = self._plain_request(end)
                if request is not None:
                    return request
        lines = self._take_lines()
        if lines is None:  # pragma: no cover - the search above found the end
            return None
        if not lines:
            raise _LocalProtocolError("no request line received")
        first = lines[0]
        matches = _validate(_REQUEST_LINE_RE, first, "illegal request line: {!r}")
        request = _Request(
            headers=_decode_header_lines(lines[1:]),
            _parsed=True,
            method=matches["method"],
            target=matches["target"],
            http_version=matches["http_version"],
        )
        self._received_request(request)
        return request

    def _plain_request(self, end: int) -> h11.Request | None:
        """The request whose head is ``buffer[:end]``, if it is plain (see the module
        docstring); None leaves everything to h11's algorithm."""
        if self._server is not _IDLE:
            return None
        buffer = self._buffer
        head_end = end - 4
        match = _HEAD_RE.fullmatch(buffer, 0, head_end)
        if match is None:
            return None
        method, target, version = match.group("method", "target", "http_version")
        if method == b"CONNECT":
            return None
        items: list[tuple[bytes, bytes, bytes]] = []
        hosts = 0
        length = -1
        close = False
        expect = False
        for name, value in _PAIR_RE.findall(buffer, match.end("http_version"), head_end):
            lower = name.lower()
            if lower in _WATCHED:
                if lower == b"host":
                    hosts += 1
                elif lower == b"content-length":
                    if length >= 0 or not value.isdigit() or len(value) > 20:
                        return None
                    length = int(value)
                elif lower == b"connection":
                    close = close or _has_token(value, b"close")
                elif lower == b"expect":
                    expect = expect or _has_token(value, b"100-continue")
                else:  # transfer-encoding, upgrade
                    return None
            items.append((name, lower, value))
        if hosts > 1 or (hosts == 0 and version == b"1.1"):
            return None
        del buffer[:end]
        self._line_search = self._lines_search = 0
        request = _new(_Request)
        _set(request, "method", method)
        _set(request, "headers", Headers(items))
        _set(request, "target", target)
        _set(request, "http_version", version)
        # h11's _process_event for a Request: SEND_BODY / SEND_RESPONSE (settled)
        self._client = _SEND_BODY
        self._server = _SEND_RESPONSE
        self._request_method = method
        self.their_http_version = version
        old = version < b"1.1"
        if close or old:
            self._keep_alive = False  # nothing to settle in SEND_BODY / SEND_RESPONSE
        self.client_is_waiting_for_100_continue = expect and not old
        self._body = _LENGTH
        self._length = self._remaining = max(length, 0)
        return request

    def _received_request(self, request: h11.Request) -> None:
        """h11's ``_process_event(CLIENT, request)``."""
        if request.method == b"CONNECT":
            self._switch_connect = True
            self._settle()
        if get_comma_header(request.headers, b"upgrade"):
            self._switch_upgrade = True
            self._settle()
        self._client = _SEND_BODY
        if self._server is not _IDLE:
            # h11 0.16 formats (Request, CLIENT).__name__ here; do as it does
            raise AttributeError("'tuple' object has no attribute '__name__'")
        self._server = _SEND_RESPONSE
        self._settle()
        self._request_method = request.method
        self.their_http_version = request.http_version
        connection = get_comma_header(request.headers, b"connection")
        if b"close" in connection or request.http_version < b"1.1":
            self._keep_alive = False
            self._settle()
        if request.http_version >= b"1.1" and b"100-continue" in get_comma_header(
            request.headers, b"expect"
        ):
            self.client_is_waiting_for_100_continue = True
        if self._client is _SEND_BODY:
            self._body, length = _framing(request.method, None, request.headers)
            self._length = self._remaining = length
            self._chunk_left = 0
            self._discard = b""
            self._trailer = False

    # the chunked body (h11's ChunkedReader)

    def _read_chunked(self) -> h11.Data | h11.EndOfMessage | None:
        if self._trailer:
            lines = self._take_lines()
            if lines is None:
                return None
            return _EndOfMessage(headers=_decode_header_lines(lines))
        if self._discard:
            data = self._take_at_most(len(self._discard))
            if data is None:
                return None
            if data != self._discard[: len(data)]:
                raise _LocalProtocolError(
                    f"malformed chunk footer: {data!r} (expected {self._discard!r})"
                )
            self._discard = self._discard[len(data) :]
            if self._discard:
                return None
        if self._chunk_left == 0:
            line = self._take_line()
            if line is None:
                return None
            matches = _validate(_CHUNK_HEADER_RE, line, "illegal chunk header: {!r}")
            self._chunk_left = int(matches["chunk_size"], base=16)
            if self._chunk_left == 0:
                self._trailer = True
                return self._read_chunked()
            chunk_start = True
        else:
            chunk_start = False
        data = self._take_at_most(self._chunk_left)
        if data is None:
            return None
        self._chunk_left -= len(data)
        chunk_end = self._chunk_left == 0
        if chunk_end:
            self._discard = b"\r\n"
        return _Data(data=data, chunk_start=chunk_start, chunk_end=chunk_end)  # type: ignore[arg-type]

    # -- sending ---------------------------------------------------------------------------

    def send(self, event: h11.Event) -> bytes | None:
        """The bytes for *event* (None for ``ConnectionClosed``), as h11's ``send``.

        Raises:
            h11.LocalProtocolError: the event is not allowed now (the server's state
                is then ERROR).
        """
        parts = self.send_with_data_passthrough(event)
        return None if parts is None else b"".join(parts)

    def send_with_data_passthrough(self, event: h11.Event) -> list[bytes] | None:
        """As :meth:`send`, the pieces unjoined (a ``Data`` event's data as given)."""
        if self._server is _ERROR:
            raise _LocalProtocolError("Can't send data when our state is ERROR")
        try:
            if type(event) is _Response:
                event = self._clean_up_response(event)
            old_state, old_out = self._server, self._out
            self._server_event(event)
            if type(event) is _ConnectionClosed:
                return None
            parts: list[bytes] = []
            if old_state is _SEND_BODY:
                self._write_body(old_out, event, parts)
            else:  # IDLE, SEND_RESPONSE
                _write_response(cast(h11.Response, event), parts)
            return parts
        except BaseException:
            self._server = _ERROR
            self._settle()
            raise

    def send_failed(self) -> None:
        """The bytes of the last send did not go out: the server's state is ERROR."""
        self._server = _ERROR
        self._settle()

    def _clean_up_response(self, response: h11.Response) -> h11.Response:
        """h11's ``_clean_up_response_headers_for_sending``."""
        headers = response.headers
        need_close = False
        method = self._request_method
        kind, _ = _framing(b"GET" if method == b"HEAD" else method, response.status_code, headers)
        if kind in (_CHUNKED, _HTTP10):
            headers = set_comma_header(headers, b"content-length", [])
            version = self.their_http_version
            if version is None or version < b"1.1":
                headers = set_comma_header(headers, b"transfer-encoding", [])
                if method != b"HEAD":
                    need_close = True
            else:
                headers = set_comma_header(headers, b"transfer-encoding", [b"chunked"])
        if not self._keep_alive or need_close:
            connection = set(get_comma_header(headers, b"connection"))
            connection.discard(b"keep-alive")
            connection.add(b"close")
            headers = set_comma_header(headers, b"connection", sorted(connection))
        return _Response(
            headers=headers,
            status_code=response.status_code,
            http_version=response.http_version,
            reason=response.reason,
        )

    def _server_event(self, event: h11.Event) -> None:
        """h11's ``_process_event(SERVER, event)``."""
        kind = type(event)
        switch: str | None = None
        status = getattr(event, "status_code", 0)
        if kind is _InformationalResponse and status == 101:
            switch = "upgrade"
        elif kind is _Response and self._switch_connect and 200 <= status < 300:
            switch = "connect"
        key: object = kind
        if switch is not None:
            if not (self._switch_upgrade if switch == "upgrade" else self._switch_connect):
                raise _LocalProtocolError(
                    "Received server _SWITCH_UPGRADE event without a pending proposal"
                )
            key = (kind, switch)
        elif kind is _Response:
            self._switch_upgrade = self._switch_connect = False
        state = self._server
        new = _SERVER_MOVES.get((state, key))
        if new is None:
            if switch is not None:  # h11 0.16 formats a tuple's __name__ here
                raise AttributeError("'tuple' object has no attribute '__name__'")
            raise _cannot(kind.__name__, _SERVER, state)
        self._server = new
        self._settle()
        if kind is _Response or kind is _InformationalResponse:
            response = cast(h11.Response, event)
            if kind is _Response and (
                b"close" in get_comma_header(response.headers, b"connection")
                or response.http_version < b"1.1"
            ):
                self._keep_alive = False
                self._settle()
            self.client_is_waiting_for_100_continue = False
            if self._server is not state and self._server is _SEND_BODY:
                self._out, self._out_left = _framing(
                    self._request_method, response.status_code, response.headers
                )

    def _write_body(self, out: int, event: h11.Event, parts: list[bytes]) -> None:
        """h11's body writers (Content-Length, chunked, HTTP/1.0)."""
        if type(event) is _Data:
            data = event.data
            if out == _LENGTH:
                self._out_left -= len(data)
                if self._out_left < 0:
                    raise _LocalProtocolError("Too much data for declared Content-Length")
                parts.append(data)
            elif out == _CHUNKED:
                if data:
                    parts += (b"%x\r\n" % len(data), data, b"\r\n")
            else:
                parts.append(data)
            return
        headers = cast(h11.EndOfMessage, event).headers
        if out == _LENGTH:
            if self._out_left != 0:
                raise _LocalProtocolError("Too little data for declared Content-Length")
            if headers:
                raise _LocalProtocolError("Content-Length and trailers don't mix")
        elif out == _CHUNKED:
            parts.append(b"0\r\n")
            _write_headers(headers._full_items, parts)
        elif headers:
            raise _LocalProtocolError("can't send trailers to HTTP/1.0 client")

    def send_response(self, status: int, reason: bytes, headers: Headers, body: bytes) -> bytes:
        """A whole response: exactly ``send(Response(status_code=status, headers=headers,
        reason=reason))``, then ``send(Data(data=body))`` if *body*, then
        ``send(EndOfMessage())``, joined.

        The head is written here when h11 would send *headers* as they are (keep-alive
        on, no protocol switch pending, a ``Content-Length`` that matches *body* or a
        response without a body); anything else makes those three calls.

        Raises:
            h11.LocalProtocolError: as the three calls would.
        """
        server = self._server
        if (
            (server is _SEND_RESPONSE or server is _IDLE)
            and self._keep_alive
            and self._request_method != b"CONNECT"
            and not self._switch_connect
            and not self._switch_upgrade
            and type(status) is int
            and 200 <= status < 1000
            and type(reason) is bytes
        ):
            items = headers._full_items
            declared: bytes | None = None
            close = host = chunked = False
            for _raw, name, value in items:
                if name == b"content-length":
                    if declared is None:
                        declared = value
                elif name == b"connection":
                    close = close or _has_token(value, b"close")
                elif name == b"transfer-encoding":
                    chunked = True
                elif name == b"host":
                    host = True
            empty = status == 204 or status == 304
            if (
                not chunked
                and (empty or declared is not None)
                and (declared is None or declared.isdigit())
            ):
                if empty or self._request_method == b"HEAD":
                    length = 0
                else:
                    length = int(cast(bytes, declared))
                if len(body) == length:
                    self._server = _SEND_BODY
                    if close:
                        self._keep_alive = False
                    self.client_is_waiting_for_100_continue = False
                    self._out, self._out_left = _LENGTH, 0
                    self._server = _DONE
                    self._settle()
                    if host:
                        parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
                        _write_headers(items, parts)
                        parts.append(body)
                        return b"".join(parts)
                    return b"".join(
                        [
                            b"HTTP/1.1 %d %s\r\n" % (status, reason),
                            *[b"%s: %s\r\n" % (raw, value) for raw, _name, value in items],
                            b"\r\n",
                            body,
                        ]
                    )
        data = self.send(_Response(status_code=status, headers=headers, reason=reason))
        assert data is not None
        if body:
            more = self.send(_Data(data=body))
            assert more is not None
            data += more
        end = self.send(_EndOfMessage())
        assert end is not None
        return data + end
