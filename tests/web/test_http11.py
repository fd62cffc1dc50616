"""The lean HTTP/1.1 server connection is h11, event for event and byte for byte.

Issue 10: ``starwrs.web.http11.ServerConnection`` replaces ``h11.Connection(h11.SERVER)``
in the web server.  These properties feed both the same byte streams -- requests
built from a grammar-like strategy (methods, targets, versions, header names and
values with their edge characters, ``Content-Length`` and chunked bodies, trailers,
obs-fold, bare LF, pipelining), optionally mutated, split into chunks at random
points, with or without an EOF -- and drive both the same way (100-continue, early
answers, whole and streamed responses, the next cycle).  After every call the two
must agree on the result (the event's type and every field, including the types of
the byte fields and the raw header names; or the exception's type, message and
``error_status_hint``), the states, the trailing data, ``their_http_version`` and
the 100-continue flag; every send must give the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h11
import pytest
from h11._headers import Headers, normalize_and_validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starwrs.web.http11 import ServerConnection

from ..conftest import scaled

Conn = Any  # ServerConnection or h11.Connection: the same interface

# -- comparing the two ---------------------------------------------------------------------


def _field(value: object) -> object:
    """A field as compared: its type too (h11 hands out bytearrays for body data)."""
    if isinstance(value, Headers):
        return [tuple((type(part), part) for part in item) for item in value._full_items]
    if isinstance(value, bytes | bytearray):
        return (type(value), bytes(value))
    return (type(value), value)


def _outcome(result: object) -> object:
    """What a call gave, in a comparable form."""
    if result is h11.NEED_DATA or result is h11.PAUSED or result is None:
        return result
    if isinstance(result, BaseException):
        return (
            "raised",
            type(result),
            str(result),
            getattr(result, "error_status_hint", None),
        )
    if isinstance(result, bytes | bytearray):
        return _field(result)
    fields = getattr(type(result), "__slots__", ())
    return (type(result), [(name, _field(getattr(result, name))) for name in fields])


def _snapshot(conn: Conn) -> object:
    return (
        conn.their_state,
        conn.our_state,
        conn.states,
        conn.trailing_data,
        conn.their_http_version,
        conn.client_is_waiting_for_100_continue,
    )


class Pair:
    """A :class:`ServerConnection` and an ``h11.Connection(h11.SERVER)`` in lock step."""

    def __init__(self, max_incomplete: int) -> None:
        self.ours = ServerConnection(max_incomplete_event_size=max_incomplete)
        self.theirs = h11.Connection(h11.SERVER, max_incomplete_event_size=max_incomplete)

    def both(
        self, call: Callable[[Conn], object], ours: Callable[[Conn], object] | None = None
    ) -> object:
        """Run *call* on both (*ours*, if given, on ours); assert the same outcome."""
        results = []
        for conn, fn in ((self.ours, ours or call), (self.theirs, call)):
            try:
                results.append(fn(conn))
            except Exception as err:
                results.append(err)
        mine, reference = results
        assert _outcome(mine) == _outcome(reference)
        assert _snapshot(self.ours) == _snapshot(self.theirs)
        return mine

    def respond_whole(self, status: int, headers: Headers, body: bytes) -> object:
        """``send_response`` on ours, h11's three sends on the reference."""

        def reference(conn: Conn) -> bytes:
            data = conn.send(h11.Response(status_code=status, headers=headers, reason=b"R"))
            if body:
                data += conn.send(h11.Data(data=body))
            return data + conn.send(h11.EndOfMessage())  # type: ignore[no-any-return]

        return self.both(reference, lambda conn: conn.send_response(status, b"R", headers, body))


# -- requests -------------------------------------------------------------------------------

_TCHAR = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VCHAR = bytes(range(0x21, 0x7F))
#: header value bytes: printable, blanks, obs-text, the controls h11 allows -- and
#: (rarely) the ones it does not
_VALUE_BYTES = _VCHAR + b" \t\x80\xa0\xff\x01\x1f\x7f"
_BAD_BYTES = b"\x00\x0b\x0c\r\n"


def _bytes_of(alphabet: bytes, min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(alphabet), min_size=min_size, max_size=max_size).map(bytes)


def _cases(name: bytes) -> st.SearchStrategy[bytes]:
    return st.sampled_from([name, name.title(), name.upper()])


_values = st.one_of(
    _bytes_of(_VALUE_BYTES, max_size=20),
    st.tuples(_bytes_of(_VALUE_BYTES), _bytes_of(_BAD_BYTES, 1, 1), _bytes_of(_VALUE_BYTES)).map(
        b"".join
    ),
)


@st.composite
def _header(draw: st.DrawFn, body_length: int | None, chunked: bool) -> list[bytes]:
    """One header's name and value (before OWS): plain, or one of the framing headers."""
    kind = draw(
        st.sampled_from(
            [
                "plain",
                "plain",
                "plain",
                "connection",
                "expect",
                "upgrade",
                "content-length",
                "transfer-encoding",
                "host",
            ]
        )
    )
    if kind == "plain":
        name = draw(
            st.one_of(
                st.sampled_from([b"Cookie", b"Content-Type", b"Origin", b"X-Starwrs-Mech"]),
                _bytes_of(_TCHAR, min_size=1),
            )
        )
        return [name, draw(_values)]
    value = {
        "connection": st.sampled_from(
            [b"close", b"keep-alive", b"Close", b"upgrade, close", b"keep-alive ,CLOSE", b""]
        ),
        "expect": st.sampled_from([b"100-continue", b"100-Continue", b"foo, 100-continue", b""]),
        "upgrade": st.sampled_from([b"websocket", b"", b"h2c, x"]),
        "content-length": st.sampled_from(
            [
                b"%d" % (body_length or 0),
                b"%d, %d" % (body_length or 0, body_length or 0),
                b"0%d" % (body_length or 0),
                b"",
                b"-1",
                b"1" * 21,
                b"0x5",
                b"5,",
                b"3, 4",
            ]
        ),
        "transfer-encoding": st.sampled_from(
            [b"chunked", b"Chunked", b"gzip", b"chunked, gzip", b""]
        ),
        "host": st.sampled_from([b"localhost", b"", b"a b", b"example.org:443"]),
    }[kind]
    if kind == "content-length" and body_length is not None:
        chosen = draw(st.one_of(st.just(b"%d" % body_length), value))
    elif kind == "transfer-encoding" and chunked:
        chosen = draw(st.one_of(st.just(b"chunked"), value))
    else:
        chosen = draw(value)
    return [draw(_cases(kind.encode())), chosen]


@st.composite
def _chunked_body(draw: st.DrawFn) -> bytes:
    parts = []
    for data in draw(st.lists(st.binary(min_size=1, max_size=12), max_size=3)):
        size = b"%x" % len(data)
        if draw(st.booleans()):
            size = size.upper()
        ext = draw(st.sampled_from([b"", b";a=b", b" ", b";x\r"]))
        end = draw(st.sampled_from([b"\r\n", b"\r\n", b"\n", b"xx"]))
        parts.append(size + ext + b"\r\n" + data + end)
    trailers = draw(
        st.lists(
            st.sampled_from([b"Foo: bar\r\n", b"Content-Length: x\r\n", b" fold\r\n"]), max_size=2
        )
    )
    parts.append(b"0\r\n" + b"".join(trailers) + b"\r\n")
    return b"".join(parts)


@st.composite
def request_bytes(draw: st.DrawFn) -> bytes:
    """One request, usually valid, with the edges of h11's grammar."""
    method = draw(
        st.one_of(
            st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT", b"CONNECT", b"OPTIONS"]),
            _bytes_of(_TCHAR, min_size=1, max_size=6),
        )
    )
    target = draw(
        st.one_of(
            st.sampled_from([b"/", b"/dispatch", b"/logon?x=1", b"*", b"http://a/b"]),
            _bytes_of(_VCHAR, min_size=1, max_size=10),
        )
    )
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.1", b"1.0", b"0.9", b"2.0", b"1.2"]))
    body_kind = draw(st.sampled_from(["none", "length", "length", "chunked"]))
    body = b""
    if body_kind == "length":
        body = draw(st.binary(max_size=40))
    elif body_kind == "chunked":
        body = draw(_chunked_body())
    headers = [[b"Host", b"localhost"]] if draw(st.integers(0, 9)) else []
    if body_kind == "length":
        headers.append([b"Content-Length", b"%d" % len(body)])
    elif body_kind == "chunked":
        headers.append([b"Transfer-Encoding", b"chunked"])
    headers += draw(
        st.lists(
            _header(len(body) if body_kind == "length" else None, body_kind == "chunked"),
            max_size=5,
        )
    )
    headers = draw(st.permutations(headers))
    eol = draw(st.sampled_from([b"\r\n"] * 8 + [b"\n"]))
    head = [method + b" " + target + b" HTTP/" + version]
    for name, value in headers:
        before = draw(st.sampled_from([b"", b" ", b" ", b"\t", b"  \t"]))
        after = draw(st.sampled_from([b"", b"", b" ", b"\t "]))
        line = name + b":" + before + value + after
        if draw(st.integers(0, 19)) == 0:
            line += eol + draw(st.sampled_from([b" ", b"\t"])) + draw(_bytes_of(_VCHAR))
        head.append(line)
    if draw(st.integers(0, 19)) == 0:
        head.insert(0, b"")  # an empty line before the request line
    return eol.join(head) + eol + eol + body


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """*data* with a few bytes replaced, inserted or deleted."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(out)))
        what = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.sampled_from(_VALUE_BYTES + _BAD_BYTES + b":"))
        if what == "insert" or not out:
            out[at:at] = bytes([byte])
        elif what == "replace":
            out[min(at, len(out) - 1)] = byte
        else:
            del out[at : at + draw(st.integers(1, 4))]
    return bytes(out)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[bytes], bool]:
    """Pipelined requests, maybe mutated, in random chunks; and whether an EOF follows."""
    data = b"".join(draw(st.lists(request_bytes(), min_size=1, max_size=3)))
    if draw(st.integers(0, 2)) == 0:
        data = draw(mutated(data))
    if draw(st.integers(0, 3)) == 0:
        data = data[: draw(st.integers(0, len(data)))]  # cut short
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return [chunk for chunk in chunks if chunk], draw(st.booleans())


# -- responses ------------------------------------------------------------------------------

_SECURITY = [
    (b"server", b"starwrs"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"x-frame-options", b"DENY"),
]


@st.composite
def response_headers(draw: st.DrawFn, body: bytes) -> Headers:
    """Valid response headers as HttpConnection makes them, and their variations."""
    items: list[tuple[bytes, bytes]] = [(b"date", b"Thu, 01 Jan 2026 00:00:00 GMT"), *_SECURITY]
    length = draw(st.sampled_from(["right", "right", "right", "none", "wrong"]))
    if length == "right":
        items.append((b"content-length", b"%d" % len(body)))
    elif length == "wrong":
        wrong = len(body) + draw(st.sampled_from([-1, 1, 5]))
        items.append((b"content-length", b"%d" % abs(wrong)))
    extra = st.sampled_from(
        [
            (b"Connection", b"close"),
            (b"connection", b"keep-alive"),
            (b"Connection", b"keep-alive, Upgrade"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Host", b"h"),
            (b"Set-Cookie", b"a=b; Secure"),
            (b"content-type", b"application/json"),
        ]
    )
    items += draw(st.lists(extra, max_size=3, unique=True))
    return normalize_and_validate(draw(st.permutations(items)))


_STATUSES = st.sampled_from([200, 200, 201, 204, 304, 400, 404, 413, 431, 500, 502])


def _respond(pair: Pair, draw: Callable[..., Any]) -> None:
    """Answer the current request: whole (send_response) or streamed (events)."""
    body = draw(st.binary(max_size=30))
    status = draw(_STATUSES)
    headers = draw(response_headers(body))
    if draw(st.booleans()):
        pair.respond_whole(status, headers, body)
        return
    pair.both(lambda conn: conn.send(h11.Response(status_code=status, headers=headers)))
    for piece in draw(st.lists(st.binary(max_size=10), max_size=3)):
        pair.both(lambda conn, piece=piece: conn.send(h11.Data(data=piece)))
    trailers = [(b"x-trailer", b"1")] if draw(st.integers(0, 9)) == 0 else []
    pair.both(lambda conn: conn.send(h11.EndOfMessage(headers=trailers)))


def _drive(pair: Pair, chunks: list[bytes], eof: bool, draw: Callable[..., Any]) -> None:
    """Feed *chunks* (then the EOF) and play the server as HttpConnection would."""
    for chunk in [*chunks, b""] if eof else chunks:
        pair.both(lambda conn, chunk=chunk: conn.receive_data(chunk))
        while True:
            event = pair.both(lambda conn: conn.next_event())
            if isinstance(event, Exception):
                if pair.ours.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    pair.respond_whole(
                        400,
                        normalize_and_validate(
                            [(b"content-length", b"2"), (b"connection", b"close")]
                        ),
                        b"no",
                    )
                pair.both(lambda conn: conn.next_event())  # ERROR: raises again
                return
            if event is h11.NEED_DATA:
                break
            if type(event) is h11.ConnectionClosed:
                pair.both(lambda conn: conn.next_event())  # closed stays closed
                return
            if type(event) is h11.Request:
                if pair.ours.client_is_waiting_for_100_continue and draw(st.booleans()):
                    pair.both(
                        lambda conn: conn.send(
                            h11.InformationalResponse(status_code=100, headers=[], reason=b"C")
                        )
                    )
                if draw(st.integers(0, 4)) == 0:
                    _respond(pair, draw)  # answered before the body is read
            elif type(event) is h11.EndOfMessage or event is h11.PAUSED:
                if pair.ours.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    _respond(pair, draw)
                if pair.ours.our_state is h11.DONE or draw(st.integers(0, 9)) == 0:
                    pair.both(lambda conn: conn.start_next_cycle())
                elif event is h11.PAUSED:
                    return


@settings(max_examples=scaled(4000), suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=streams(),
    max_incomplete=st.sampled_from([16 * 1024, 16 * 1024, 64, 120]),
    data=st.data(),
)
def test_request_streams_give_h11s_events(
    stream: tuple[list[bytes], bool], max_incomplete: int, data: st.DataObject
) -> None:
    chunks, eof = stream
    _drive(Pair(max_incomplete), chunks, eof, data.draw)


@settings(max_examples=scaled(2000))
@given(
    head=st.sampled_from(
        [
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"HEAD / HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
            b"CONNECT a:1 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
            b"",  # no request: the answer to a bad or late head
        ]
    ),
    sends=st.lists(
        st.sampled_from(
            ["whole", "response", "data", "eom", "100", "101", "closed", "next", "eof", "failed"]
        ),
        min_size=1,
        max_size=6,
    ),
    data=st.data(),
)
def test_responses_are_h11s_bytes(head: bytes, sends: list[str], data: st.DataObject) -> None:
    """Any sequence of sends, right or wrong, after any kind of request."""
    pair = Pair(16 * 1024)
    if head:
        pair.both(lambda conn: conn.receive_data(head))
        pair.both(lambda conn: conn.next_event())
    for what in sends:
        if what == "whole":
            body = data.draw(st.binary(max_size=20))
            pair.respond_whole(data.draw(_STATUSES), data.draw(response_headers(body)), body)
        elif what == "response":
            headers = data.draw(response_headers(b"abc"))
            status = data.draw(_STATUSES)
            pair.both(
                lambda conn, status=status, headers=headers: conn.send(
                    h11.Response(status_code=status, headers=headers)
                )
            )
        elif what == "data":
            piece = data.draw(st.binary(max_size=5))
            pair.both(lambda conn, piece=piece: conn.send(h11.Data(data=piece)))
        elif what == "eom":
            pair.both(lambda conn: conn.send(h11.EndOfMessage()))
        elif what in ("100", "101"):
            status = int(what)
            pair.both(
                lambda conn, status=status: conn.send(
                    h11.InformationalResponse(status_code=status, headers=[])
                )
            )
        elif what == "closed":
            pair.both(lambda conn: conn.send(h11.ConnectionClosed()))
        elif what == "eof":
            pair.both(lambda conn: conn.receive_data(b""))
        elif what == "failed":
            pair.both(lambda conn: conn.send_failed())
        else:
            pair.both(lambda conn: conn.start_next_cycle())
        pair.both(lambda conn: conn.next_event())
    # a request after all that (after an early answer, the server is not idle)
    pair.both(lambda conn: conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    pair.both(lambda conn: conn.next_event())


# -- examples worth keeping -----------------------------------------------------------------


@pytest.mark.parametrize(
    "stream",
    [
        # the bench's GUA request, pipelined twice, whole
        b"POST /dispatch HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n"
        b"Content-Type: application/x-starwrs-frame\r\nCookie: __Host-starwrs_session=k\r\n\r\nabc"
        * 2,
        b"GET / HTTP/1.1\r\nHost: x\r\nFoo: a\r\n  b\r\n\r\n",  # obs-fold
        b"GET / HTTP/1.1\r\nHost: x\r\n Foo: a\r\n\r\n",  # fold at the start
        b"GET / HTTP/1.1\nHost: x\n\n",  # bare LF
        b"GET / HTTP/1.1\r\nHost: x\rY\r\n\r\n",  # bare CR
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\nz",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: \x00\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
        b"\x16\x03\x01\x02\x00",  # TLS spoken to the plain port
        b"GET /" + b"a" * 20000,  # a head over the limit
        b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",  # 1.0 then more
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",  # EOF in the body
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    ],
)
@pytest.mark.parametrize("split", [0, 1, 7])
@settings(max_examples=10)
@given(data=st.data())
def test_edge_streams(stream: bytes, split: int, data: st.DataObject) -> None:
    chunks = [stream[i : i + split] for i in range(0, len(stream), split)] if split else [stream]
    _drive(Pair(16 * 1024), chunks, True, data.draw)
