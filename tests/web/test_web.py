"""web/server.py: the HTTPS web server over real TLS on loopback.

The dispatcher behind it is the scripted double of ``test_web_fake``; the real
dispatcher is exercised in ``test_web_stack``.
"""

from __future__ import annotations

import functools
import json
import shutil
import ssl
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import msgpack
import pytest
import trio
import trio.testing
import trustme
from starwrs.grammar import parse
from starwrs.protocol import (
    Frame,
    FrameReader,
    Mechanism,
    decode_frame,
    encode_frame,
    make_header,
    sha256_hex,
)
from starwrs.protocol.bulk import data_frames
from starwrs.protocol.control import decode_data, encode_data, encode_get, encode_put, encode_ticket
from starwrs.runtime.config import Address, Deployment, Limits
from starwrs.runtime.https import ClientError, HttpResponse, HttpsClient
from starwrs.runtime.pki import client_context_for_ca
from starwrs.web.server import SESSION_COOKIE, serve_web, session_key
from starwrs.web.static import STATIC_ROOT, resolve_static

from .test_web_fake import (
    BIG,
    CHUNK,
    PASSWORD,
    THROTTLED_USER,
    USER,
    Stack,
    dead_address,
    start_stack,
    state_dir,
)

__all__ = ["state_dir"]  # the fixture, imported for pytest

FRAME = [("content-type", "application/x-starwrs-frame")]


# -- helpers --------------------------------------------------------------------------


def frame_bytes(
    mech: int, target: str, payload: bytes = b"", *, key: str = "", echo: int = 0
) -> bytes:
    header = make_header(mech, target, key=key, payload_length=len(payload), echo=echo)
    return encode_frame(header, payload)


@pytest.fixture
async def stack(nursery: trio.Nursery, state_dir: Path) -> Stack:
    return await start_stack(nursery, state_dir)


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[HttpsClient]:
    async with HttpsClient(stack.url, stack.client_context(), timeout=10) as client:
        yield client


async def logon(client: HttpsClient, user: str = USER, password: str = PASSWORD) -> HttpResponse:
    body = json.dumps({"user": user, "password": password}).encode()
    return await client.request(
        "POST", "/logon", body=body, headers=[("content-type", "application/json")]
    )


async def dispatch(client: HttpsClient, data: bytes, **kw: object) -> HttpResponse:
    return await client.request("POST", "/dispatch", body=data, headers=FRAME)


async def open_tls(stack: Stack) -> trio.SSLStream[trio.SocketStream]:
    tcp = await trio.open_tcp_stream(stack.web.host, stack.web.port)
    stream = trio.SSLStream(tcp, stack.client_context(), server_hostname="127.0.0.1")
    await stream.do_handshake()
    return stream


async def read_all(stream: trio.abc.ReceiveStream, limit: float = 5.0) -> bytes:
    parts = []
    with trio.fail_after(limit):
        while True:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not data:
                break
            parts.append(data)
    return b"".join(parts)


async def read_response(stream: trio.abc.ReceiveStream, limit: float = 5.0) -> bytes:
    """Read one response with a Content-Length (no need to wait for the close)."""
    raw = b""
    with trio.fail_after(limit):
        while True:
            _, sep, body = raw.partition(b"\r\n\r\n")
            if sep:
                _, headers, _ = parse_response(raw)
                if len(body) >= int(headers.get("content-length", "0")):
                    return raw
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                return raw
            if not data:
                return raw
            raw += data


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    length = int(headers.get("content-length", len(body)))
    return status, headers, body[:length]


async def raw_exchange(stack: Stack, data: bytes) -> tuple[int, dict[str, str], bytes]:
    stream = await open_tls(stack)
    try:
        await stream.send_all(data)
        return parse_response(await read_response(stream))
    finally:
        await trio.aclose_forcefully(stream)


def error_of(response: HttpResponse) -> int:
    obj = response.json()
    assert isinstance(obj, dict), response.body
    assert set(obj) == {"error", "message"}
    return int(obj["error"])


# -- logon / logoff -------------------------------------------------------------------------


async def test_logon_sets_host_cookie_with_all_attributes(
    stack: Stack, client: HttpsClient
) -> None:
    response = await logon(client)
    assert response.status == 200
    cookie = response.header("set-cookie")
    assert cookie is not None
    value = client.cookies[SESSION_COOKIE]
    assert value in stack.fake.sessions
    assert cookie == f"{SESSION_COOKIE}={value}; Secure; HttpOnly; SameSite=Strict; Path=/"
    assert response.json() == {
        "user": USER,
        "enterprise": "00022924",
        "applications": ["INBX", "RM"],
        "entitlements": {"products": ["S", "T"], "corp_ids": ["90000001", "90000002"]},
        "timezone": "EST",
        "lang": "1234",
        "curr": "2345",
        "session": {"idle": 900.0, "absolute": 43200.0},  # the browser says why one ended
    }
    assert response.header("cache-control") == "no-store"
    assert response.header("strict-transport-security")
    # the password reached the dispatcher intact, escaped in the LON message
    lon = stack.fake.seen[-1]
    assert (lon.target, lon.key) == ("DSP", "")
    assert b"PASSWORD=" in lon.payload


async def test_logon_rotates_the_session_key(stack: Stack, client: HttpsClient) -> None:
    await logon(client)
    first = client.cookies[SESSION_COOKIE]
    await logon(client)
    second = client.cookies[SESSION_COOKIE]
    assert first != second
    assert stack.fake.seen[-1].key == first  # the old session travelled in LON's key
    assert stack.fake.sessions == {second}


async def test_wrong_password_and_unknown_user_answer_identically(client: HttpsClient) -> None:
    wrong = await logon(client, password="nope")
    unknown = await logon(client, user="nobody")
    assert wrong.status == unknown.status == 401
    assert wrong.body == unknown.body
    assert json.loads(wrong.body) == {"error": 6115, "message": "invalid user or password"}
    names = lambda r: sorted(k for k, _ in r.headers if k != b"date")  # noqa: E731
    assert names(wrong) == names(unknown)
    assert "set-cookie" not in dict((k.decode(), v) for k, v in wrong.headers)


async def test_throttled_logon_is_429_with_retry_after(client: HttpsClient) -> None:
    response = await logon(client, user=THROTTLED_USER)
    assert response.status == 429
    assert response.header("retry-after") == "60"
    assert error_of(response) == 7012


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"not json", "application/json", 400),
        (b'{"user": "u"}', "application/json", 400),
        (b'{"user": 1, "password": "p"}', "application/json", 400),
        (b"[]", "application/json", 400),
        (b'{"user": "u", "password": "p"}', "text/plain", 415),
    ],
)
async def test_bad_logon_requests(
    client: HttpsClient, body: bytes, content_type: str, status: int
) -> None:
    response = await client.request(
        "POST", "/logon", body=body, headers=[("content-type", content_type)]
    )
    assert response.status == status
    assert error_of(response) == status


async def test_logoff_ends_the_session_and_clears_the_cookie(
    stack: Stack, client: HttpsClient
) -> None:
    await logon(client)
    key = client.cookies[SESSION_COOKIE]
    response = await client.request("POST", "/logoff")
    assert response.status == 204
    assert response.header("set-cookie") == (
        f"{SESSION_COOKIE}=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
    )
    assert key not in stack.fake.sessions
    assert SESSION_COOKIE not in client.cookies
    # the old cookie, replayed, is refused by the dispatcher -> 401
    client.cookies[SESSION_COOKIE] = key
    replay = await dispatch(client, frame_bytes(0, "RM", b"GRTL<PRODUCT=V>"))
    assert replay.status == 401
    assert error_of(replay) == 7004
    assert SESSION_COOKIE not in client.cookies  # cleared again


# -- dispatch ---------------------------------------------------------------------------------


async def test_dispatch_relays_with_the_cookie_as_key(stack: Stack, client: HttpsClient) -> None:
    await logon(client)
    key = client.cookies[SESSION_COOKIE]
    response = await dispatch(client, frame_bytes(0, "RM", b"GRTL<PRODUCT=V>"))
    assert response.status == 200
    assert response.header("content-type") == "application/x-starwrs-frame"
    answer = decode_frame(response.body)
    assert answer.header.status == 0
    assert answer.header.key == ""
    assert answer.payload == b"GRTLA<ERROR=0,TEMPLATES=2>"
    seen = stack.fake.seen[-1]
    assert (seen.kind, seen.target, seen.key, seen.payload) == (
        "request",
        "RM",
        key,
        b"GRTL<PRODUCT=V>",
    )


async def test_error_answers_are_relayed_as_frames(client: HttpsClient) -> None:
    await logon(client)
    response = await dispatch(client, frame_bytes(0, "RM", b"BAD<>"))
    assert response.status == 200
    assert decode_frame(response.body).header.status == 6104


async def test_only_the_host_cookie_is_read(stack: Stack, client: HttpsClient) -> None:
    await logon(client)
    key = client.cookies.pop(SESSION_COOKIE)
    client.cookies["starwrs_session"] = key  # the name PROTOCOL.md no longer has
    before = len(stack.fake.seen)
    response = await dispatch(client, frame_bytes(0, "RM", b"GRTL<>"))
    assert (response.status, error_of(response)) == (401, 7004)
    assert len(stack.fake.seen) == before  # refused without asking a dispatcher


@pytest.mark.parametrize(
    ("mech", "target", "payload"),
    [
        (0, "DSP", b"LON<USERID=jeanvnet2,PASSWORD=s3cret>"),
        (0, "DSP", b"LOFF<>"),
        (0, "dsp", b"LON<USERID=jeanvnet2,PASSWORD=s3cret>"),  # the dispatcher upper-cases
        (0, "DSP", b"ENTC<USERID=jeanvnet2>"),
        (1, "DSP", b"LON<USERID=jeanvnet2,PASSWORD=s3cret>"),
        (3, "DSP", msgpack.packb({"op": "get", "resource": "LON<>", "offset": 0})),
    ],
)
async def test_dispatch_refuses_target_dsp(
    stack: Stack, client: HttpsClient, mech: int, target: str, payload: bytes
) -> None:
    """Logon only through /logon: a LONA's SESSION=<key> never lands in a readable body."""
    await logon(client)
    before = len(stack.fake.seen)
    response = await dispatch(client, frame_bytes(mech, target, payload))
    assert (response.status, error_of(response)) == (403, 7003)
    assert b"SESSION" not in response.body
    assert len(stack.fake.seen) == before
    # the connection and the session go on
    assert (await dispatch(client, frame_bytes(0, "RM", b"GRTL<>"))).status == 200


async def test_logon_tells_the_client_address_as_source(
    stack: Stack, client: HttpsClient
) -> None:
    await logon(client)
    lon = parse(stack.fake.seen[-1].payload.decode())
    assert (lon.acronym, lon.get("SOURCE")) == ("LON", "127.0.0.1")
    # what the client sends cannot add a SOURCE of its own: it stays inside its values
    user, password = "x,SOURCE=10.9.8.7", "p>,SOURCE=<10.9.8.7"
    assert (await logon(client, user=user, password=password)).status == 401
    lon = parse(stack.fake.seen[-1].payload.decode())
    assert [m.key for m in lon.members] == ["USERID", "PASSWORD", "SOURCE"]
    assert (lon.get("USERID"), lon.get("PASSWORD"), lon.get("SOURCE")) == (
        user,
        password,
        "127.0.0.1",
    )


async def test_echo_answer_does_not_reveal_the_key(stack: Stack, client: HttpsClient) -> None:
    await logon(client)
    response = await dispatch(client, frame_bytes(0, "DSP", echo=1))
    answer = decode_frame(response.body)
    assert answer.header.echo == 1
    assert answer.header.key == ""  # the fake echoed the key; the web server removed it
    assert stack.fake.seen[-1].key == client.cookies[SESSION_COOKIE]


async def test_no_cookie_is_401_without_contacting_the_dispatcher(
    stack: Stack, client: HttpsClient
) -> None:
    response = await dispatch(client, frame_bytes(0, "RM", b"GRTL<>"))
    assert response.status == 401
    assert error_of(response) == 7004
    assert stack.fake.seen == []
    assert stack.fake.connections == 0
    # the connection stays usable
    assert (await logon(client)).status == 200


async def test_forged_cookie_is_401(client: HttpsClient) -> None:
    client.cookies[SESSION_COOKIE] = "forged-key"
    response = await dispatch(client, frame_bytes(0, "RM", b"GRTL<>"))
    assert response.status == 401
    assert error_of(response) == 7004


@pytest.mark.parametrize(
    "body",
    [
        frame_bytes(0, "RM", b"GRTL<>", key="k"),  # klen != 0
        b"garbage that is not a frame at all",
        b"",
        frame_bytes(0, "RM", b"GRTL<>")[:-2],  # short
        frame_bytes(0, "RM", b"GRTL<>") * 2,  # two frames
        frame_bytes(0, "RM", b"GRTL<>") + b"x",  # trailing byte
        b"\x02" + frame_bytes(0, "RM", b"GRTL<>")[1:],  # version 2
        frame_bytes(3, "INBX", b"not msgpack"),
        frame_bytes(3, "INBX", msgpack.packb({"op": "cancel", "transfer": 1})),
    ],
)
async def test_a_body_that_is_not_one_klen0_frame_is_400(
    stack: Stack, client: HttpsClient, body: bytes
) -> None:
    await logon(client)
    before = len(stack.fake.seen)
    response = await dispatch(client, body)
    assert response.status == 400
    assert error_of(response) in (7001, 7009)
    assert len(stack.fake.seen) == before


async def test_async_submit_then_poll(stack: Stack, client: HttpsClient) -> None:
    await logon(client)
    stack.fake.pending_polls = 1
    ticket_frame = decode_frame((await dispatch(client, frame_bytes(1, "RM", b"GRTL<>"))).body)
    assert ticket_frame.header.mech == Mechanism.ASYNC
    ticket = msgpack.unpackb(ticket_frame.payload)["ticket"]
    poll = frame_bytes(2, "RM", encode_ticket(ticket))
    first = decode_frame((await dispatch(client, poll)).body)
    assert first.header.status == 1
    final = decode_frame((await dispatch(client, poll)).body)
    assert (final.header.status, final.payload) == (0, f"DONE<ERROR=0,TICKET={ticket}>".encode())


# -- bulk ------------------------------------------------------------------------------------


async def test_bulk_get_streams_frames_with_chunked_encoding(client: HttpsClient) -> None:
    await logon(client)
    request = frame_bytes(3, "INBX", encode_get("F<INBOXID=42>", 0))
    reader = FrameReader()
    got = bytearray()
    async with client.stream("POST", "/dispatch", body=request, headers=FRAME) as response:
        assert response.status == 200
        assert ("transfer-encoding", "chunked") in [
            (k.decode(), v.decode()) for k, v in response.headers
        ]
        while (chunk := await response.receive_some()) is not None:
            reader.receive_data(chunk)
            while isinstance(frame := reader.next_event(), Frame):
                assert frame.header.key == ""
                data = decode_data(frame.payload)
                got += data.data
                last = data
    assert bytes(got) == BIG
    assert last.done
    assert last.sha256 == sha256_hex(BIG)


async def test_bulk_get_does_not_read_ahead_of_a_stalled_client(
    stack: Stack, client: HttpsClient
) -> None:
    await logon(client)
    request = frame_bytes(3, "INBX", encode_get("F<INBOXID=64>", 0))
    async with client.stream("POST", "/dispatch", body=request, headers=FRAME) as response:
        assert await response.receive_some()
        # the client stops reading; once every task is blocked, the web server and
        # the dispatcher are stuck on full socket buffers, not reading ahead
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        stalled = stack.fake.sent_bytes
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        assert stack.fake.sent_bytes == stalled  # backpressure reached the dispatcher
        # what is in flight is socket buffers on two hops, not the 64 MiB resource
        assert stalled < 24 * 1024 * 1024, stalled
        await client.aclose()


async def test_bulk_get_client_disconnect_cancels_the_transfer(
    stack: Stack, client: HttpsClient
) -> None:
    await logon(client)
    stack.fake.frame_delay = 0.05
    request = frame_bytes(3, "INBX", encode_get("F<INBOXID=42>", 0))
    async with client.stream("POST", "/dispatch", body=request, headers=FRAME) as response:
        assert response.status == 200
        assert await response.receive_some()
        await client.aclose()  # walk away mid-transfer
    with trio.fail_after(3):
        await stack.fake.cancelled.wait()


async def test_bulk_get_error_answer_is_a_single_frame(client: HttpsClient) -> None:
    await logon(client)
    response = await dispatch(client, frame_bytes(3, "INBX", encode_get("F<INBOXID=1>", 0)))
    assert response.status == 200
    assert decode_frame(response.body).header.status == 5105


def put_body(data: bytes) -> bytes:
    put = frame_bytes(3, "INBX", encode_put("U<INBOXID=9>", len(data), sha256_hex(data)))
    frames = [
        frame_bytes(3, "INBX", b"".join(bytes(p) for p in encode_data(event)))
        for event in data_frames(5, data)
    ]
    return put + b"".join(frames)


async def test_bulk_put_larger_than_max_body_is_streamed(stack: Stack, client: HttpsClient) -> None:
    await logon(client)
    data = bytes(range(256)) * 12 * 1024  # 3 MiB, more than max_body
    response = await client.request(
        "POST", "/dispatch", body=put_body(data), headers=[*FRAME, ("x-starwrs-mech", "bulk")]
    )
    assert response.status == 200
    answer = decode_frame(response.body)
    assert (answer.header.status, answer.payload) == (0, f"PUTA<ERROR=0,SIZE={len(data)}>".encode())
    assert stack.fake.put_data == data
    assert stack.fake.seen[-1].key == client.cookies[SESSION_COOKIE]


async def test_small_bulk_put_needs_no_announcement(stack: Stack, client: HttpsClient) -> None:
    await logon(client)
    response = await dispatch(client, put_body(b"small upload"))
    assert decode_frame(response.body).header.status == 0
    assert stack.fake.put_data == b"small upload"


async def test_bulk_put_refused_early_stops_the_upload(stack: Stack, client: HttpsClient) -> None:
    client.cookies[SESSION_COOKIE] = "forged"  # the fake refuses the put with 7004 at once
    data = b"z" * (3 * 1024 * 1024)
    with trio.fail_after(5):
        response = await client.request(
            "POST", "/dispatch", body=put_body(data), headers=[*FRAME, ("x-starwrs-mech", "bulk")]
        )
    assert (response.status, error_of(response)) == (401, 7004)
    assert response.header("connection") == "close"
    assert stack.fake.put_data is None


async def test_bulk_get_cut_by_the_dispatcher_cuts_the_http_response(
    stack: Stack, client: HttpsClient
) -> None:
    await logon(client)
    stack.fake.break_after, stack.fake.breaks_left = 2, 1
    request = frame_bytes(3, "INBX", encode_get("F<INBOXID=42>", 0))
    received = [0]

    async def read_it_all() -> None:
        async with client.stream("POST", "/dispatch", body=request, headers=FRAME) as response:
            assert response.status == 200
            while (chunk := await response.receive_some()) is not None:
                received[0] += len(chunk)

    with pytest.raises(ClientError, match=r"broken|inside the response body"):
        await read_it_all()
    assert 2 * CHUNK <= received[0] < len(BIG)
    # a resume from what arrived is a new get with an offset
    await logon(client)
    again = frame_bytes(3, "INBX", encode_get("F<INBOXID=42>", 2 * CHUNK))
    async with client.stream("POST", "/dispatch", body=again, headers=FRAME) as response:
        while await response.receive_some() is not None:
            pass
    assert stack.fake.offsets == [0, 2 * CHUNK]


async def test_bulk_get_without_session_is_401(client: HttpsClient) -> None:
    client.cookies[SESSION_COOKIE] = "forged"
    response = await dispatch(client, frame_bytes(3, "INBX", encode_get("F<INBOXID=42>", 0)))
    assert (response.status, error_of(response)) == (401, 7004)


# -- limits ------------------------------------------------------------------------------------


async def session_cookie(stack: Stack) -> str:
    async with HttpsClient(stack.url, stack.client_context(), timeout=10) as client:
        await logon(client)
        return client.cookies[SESSION_COOKIE]


async def test_content_length_over_max_body_is_413_before_reading(stack: Stack) -> None:
    key = await session_cookie(stack)
    head = (
        "POST /dispatch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Cookie: {SESSION_COOKIE}={key}\r\nContent-Length: {2 * 1024 * 1024}\r\n\r\n"
    )
    with trio.fail_after(1):  # answered at once: no body was sent, none is waited for
        status, headers, body = await raw_exchange(stack, head.encode())
    assert status == 413
    assert json.loads(body)["error"] == 7005
    assert headers["connection"] == "close"


async def test_chunked_body_over_max_body_is_413(stack: Stack, client: HttpsClient) -> None:
    await logon(client)
    big = frame_bytes(0, "RM", b"x" * (1024 * 1024 + 10))
    response = await dispatch(client, big)  # Content-Length path
    assert response.status == 413
    key = await session_cookie(stack)
    stream = await open_tls(stack)
    try:
        await stream.send_all(
            (
                "POST /dispatch HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                f"Cookie: {SESSION_COOKIE}={key}\r\n\r\n"
            ).encode()
        )
        chunk = big[: 64 * 1024]
        answer: list[bytes] = []

        async def send_body() -> None:  # like a real client: send while reading
            try:
                for _ in range(40):
                    await stream.send_all(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except trio.BrokenResourceError:
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_body)
            answer.append(await read_response(stream))
            nursery.cancel_scope.cancel()
        status, _, body = parse_response(answer[0])
    finally:
        await trio.aclose_forcefully(stream)
    assert status == 413
    assert json.loads(body)["error"] == 7005


async def test_request_head_over_16k_is_431(stack: Stack) -> None:
    head = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: " + "a" * 17000 + "\r\n\r\n"
    status, _, body = await raw_exchange(stack, head.encode())
    assert status == 431
    assert json.loads(body)["error"] == 431


async def test_slow_sender_is_cut_off_while_a_normal_client_is_served(
    stack: Stack, client: HttpsClient
) -> None:
    slow = await open_tls(stack)
    started = trio.current_time()
    outcome: dict[str, object] = {}

    async def trickle() -> None:
        try:
            for byte in b"POST /dispatch HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000:
                await slow.send_all(bytes([byte]))
                await trio.sleep(0.05)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def read_answer() -> None:
        outcome["raw"] = await read_response(slow)
        outcome["after"] = trio.current_time() - started
        nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trickle)
        nursery.start_soon(read_answer)
        for _ in range(5):  # meanwhile, a normal client is served
            assert (await logon(client)).status == 200
            assert (await dispatch(client, frame_bytes(0, "RM", b"GRTL<>"))).status == 200
    await trio.aclose_forcefully(slow)
    assert isinstance(outcome["raw"], bytes)
    status, _, body = parse_response(outcome["raw"])
    assert status == 408
    assert json.loads(body)["error"] == 408
    head_timeout = stack.deployment.limits.head_timeout
    assert head_timeout - 0.2 <= float(str(outcome["after"])) < head_timeout + 0.5


async def test_idle_connection_is_closed_quietly(stack: Stack) -> None:
    stream = await open_tls(stack)
    try:
        assert await read_all(stream) == b""  # closed after head_timeout, no 408
    finally:
        await trio.aclose_forcefully(stream)


async def test_keep_alive_serves_requests_one_after_another(stack: Stack) -> None:
    stream = await open_tls(stack)
    try:
        request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        await stream.send_all(
            request + request + b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        raw = await read_all(stream)
    finally:
        await trio.aclose_forcefully(stream)
    assert raw.count(b"HTTP/1.1 200 ") == 2
    assert raw.count(b"HTTP/1.1 404 ") == 1


async def test_connections_beyond_the_cap_wait_in_the_backlog(
    nursery: trio.Nursery, state_dir: Path
) -> None:
    stack = await start_stack(
        nursery, state_dir, limits=Limits(head_timeout=0.5, read_timeout=2.0, max_connections=1)
    )
    hog = await trio.open_tcp_stream(stack.web.host, stack.web.port)  # takes the only slot
    try:
        async with HttpsClient(stack.url, stack.client_context(), timeout=5) as client:
            started = trio.current_time()
            response = await client.request("GET", "/")
        assert response.status == 200
        assert trio.current_time() - started >= 0.4  # served once the hog was cut off
    finally:
        await trio.aclose_forcefully(hog)


async def test_tls_1_1_is_refused(stack: Stack) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(stack.ca))
    with warnings.catch_warnings():  # asking for TLS 1.1 on purpose
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    tcp = await trio.open_tcp_stream(stack.web.host, stack.web.port)
    stream = trio.SSLStream(tcp, context, server_hostname="127.0.0.1")
    with pytest.raises(trio.BrokenResourceError):
        await stream.do_handshake()
    await trio.aclose_forcefully(stream)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl tool")
async def test_openssl_s_client_tls1_1_is_refused(stack: Stack) -> None:
    done = await trio.run_process(
        ["openssl", "s_client", "-tls1_1", "-connect", f"127.0.0.1:{stack.web.port}"],
        stdin=b"",
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert done.returncode != 0
    assert b"Cipher is (NONE)" in done.stdout or b"alert" in done.stderr


async def test_tls_1_2_is_accepted(stack: Stack) -> None:
    context = stack.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    tcp = await trio.open_tcp_stream(stack.web.host, stack.web.port)
    stream = trio.SSLStream(tcp, context, server_hostname="127.0.0.1")
    await stream.do_handshake()
    assert stream.version() == "TLSv1.2"
    await trio.aclose_forcefully(stream)


# -- dispatchers ----------------------------------------------------------------------------


async def test_no_reachable_dispatcher_is_502_7006(nursery: trio.Nursery, state_dir: Path) -> None:
    stack = await start_stack(nursery, state_dir)
    # a second web server whose dispatchers are all dead
    dead = Deployment(
        state_dir=state_dir,
        web=Address("127.0.0.1", 0),
        dispatchers=(dead_address(), dead_address()),
        limits=stack.deployment.limits,
    )
    web = await nursery.start(functools.partial(serve_web, dead))
    url = f"https://127.0.0.1:{web.port}"
    async with HttpsClient(url, stack.client_context(), timeout=5) as client:
        response = await logon(client)
        assert response.status == 502
        assert error_of(response) == 7006
        client.cookies[SESSION_COOKIE] = "some-key"
        response = await dispatch(client, frame_bytes(0, "RM", b"GRTL<>"))
    assert (response.status, error_of(response)) == (502, 7006)


async def test_a_dead_dispatcher_is_skipped(nursery: trio.Nursery, state_dir: Path) -> None:
    stack = await start_stack(nursery, state_dir, extra_dispatchers=(dead_address(),))
    async with HttpsClient(stack.url, stack.client_context(), timeout=5) as client:
        for _ in range(4):  # round robin meets the dead one every other time
            assert (await logon(client)).status == 200
            assert (await dispatch(client, frame_bytes(0, "RM", b"GRTL<>"))).status == 200


async def test_a_stale_pooled_link_is_replaced(stack: Stack, client: HttpsClient) -> None:
    await logon(client)
    stack.fake.one_shot = True  # the dispatcher closes each link after one answer
    for _ in range(3):
        response = await dispatch(client, frame_bytes(0, "RM", b"GRTL<>"))
        assert decode_frame(response.body).header.status == 0
    # logon + 1st dispatch on link 1; each later dispatch finds its pooled link
    # closed, without a byte of answer, and is sent again on a fresh one
    assert stack.fake.connections == 3


async def test_client_gone_during_a_slow_call_closes_the_dispatcher_link(
    stack: Stack, client: HttpsClient
) -> None:
    await logon(client)
    with trio.move_on_after(0.3):
        await dispatch(client, frame_bytes(0, "RM", b"SLOW<>"))
    await client.aclose()
    with trio.fail_after(2):
        await stack.fake.slow_abandoned.wait()


async def test_operator_certificate(nursery: trio.Nursery, state_dir: Path, tmp_path: Path) -> None:
    operator = trustme.CA()
    leaf = operator.issue_cert("127.0.0.1", "web.example")
    cert, key = tmp_path / "web.pem", tmp_path / "web-key.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(key))
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    stack = await start_stack(nursery, state_dir)
    deployment = Deployment(
        state_dir=state_dir,
        web=Address("127.0.0.1", 0),
        dispatchers=stack.deployment.dispatchers,
        limits=stack.deployment.limits,
        web_cert=str(cert),
        web_key=str(key),
    )
    web = await nursery.start(functools.partial(serve_web, deployment))
    context = client_context_for_ca(None)
    operator.configure_trust(context)
    async with HttpsClient(f"https://127.0.0.1:{web.port}", context, timeout=5) as client:
        assert (await logon(client)).status == 200
    with pytest.raises(ClientError, match="not trusted"):  # the deployment CA does not apply
        async with HttpsClient(f"https://127.0.0.1:{web.port}", stack.client_context()) as other:
            await other.request("GET", "/")


async def test_sync_links_are_pooled(stack: Stack, client: HttpsClient) -> None:
    await logon(client)
    for _ in range(5):
        assert (await dispatch(client, frame_bytes(0, "RM", b"GRTL<>"))).status == 200
    assert stack.fake.connections == 1


async def test_bulk_gets_share_pooled_links_with_requests(
    stack: Stack, client: HttpsClient
) -> None:
    """A whole get leaves its dispatcher link clean: the viewer's .mtd, its data and
    the next request cost no new TLS connection; a get cut short costs its link."""
    await logon(client)
    get = frame_bytes(3, "INBX", encode_get("F<INBOXID=42>", 0))
    for _ in range(3):
        response = await dispatch(client, get)
        assert response.status == 200
        reader = FrameReader()
        reader.receive_data(response.body)
        got = b""
        while isinstance(frame := reader.next_event(), Frame):
            got += decode_data(frame.payload).data
        assert got == BIG
        assert (await dispatch(client, frame_bytes(0, "RM", b"GRTL<>"))).status == 200
    assert stack.fake.connections == 1
    missing = await dispatch(client, frame_bytes(3, "INBX", encode_get("F<INBOXID=9>", 0)))
    assert decode_frame(missing.body).header.status == 5105
    assert (await dispatch(client, frame_bytes(0, "RM", b"GRTL<>"))).status == 200
    assert stack.fake.connections == 2  # an error ends the get's link


# -- static files and HTTP odds and ends ----------------------------------------------------


async def test_index_is_served_with_security_headers(client: HttpsClient) -> None:
    response = await client.request("GET", "/")
    assert response.status == 200
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert b"<title>starwrs</title>" in response.body
    assert response.header(
        "content-security-policy",
    ).startswith("default-src 'self'")  # type: ignore[union-attr]
    assert response.header("x-content-type-options") == "nosniff"
    assert response.header("referrer-policy") == "no-referrer"
    assert response.header("strict-transport-security") == "max-age=63072000; includeSubDomains"
    same = await client.request("GET", "/index.html")
    assert same.body == response.body
    head = await client.request("HEAD", "/")
    assert (head.status, head.body) == (200, b"")
    assert head.header("content-length") == str(len(response.body))


@pytest.mark.parametrize(
    "path",
    [
        "/../web.py",
        "/%2e%2e/web.py",
        "/..%2fweb.py",
        "/%2e%2e%2fweb.py",
        "/static/../web.py",
        "//etc/passwd",
        "/.%2e/pki.py",
        "/.hidden",
        "/index.html%00",
        "/..\\web.py",
        "/nothing-here.js",
    ],
)
async def test_traversal_and_missing_files_are_404(stack: Stack, path: str) -> None:
    status, headers, body = await raw_exchange(
        stack, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    )
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == 404


def test_static_resolution_and_content_types(tmp_path: Path) -> None:
    (tmp_path / "app.js").write_text("1")
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "a.css").write_text("b{}")
    (tmp_path / "blob.xyz").write_bytes(b"\0")
    (tmp_path / "link.txt").symlink_to(STATIC_ROOT.parent / "web.py")
    assert resolve_static("/app.js", tmp_path).content_type == "text/javascript; charset=utf-8"  # type: ignore[union-attr]
    assert resolve_static("/css/a.css", tmp_path).content_type == "text/css; charset=utf-8"  # type: ignore[union-attr]
    assert resolve_static("/blob.xyz", tmp_path).content_type == "application/octet-stream"  # type: ignore[union-attr]
    assert resolve_static("/link.txt", tmp_path) is None  # a symlink out of the root
    assert resolve_static("/css", tmp_path) is None  # a directory
    assert resolve_static("/", tmp_path) is None  # no index.html there


async def test_wrong_methods_are_405(client: HttpsClient) -> None:
    response = await client.request("GET", "/dispatch")
    assert (response.status, response.header("allow")) == (405, "POST")
    response = await client.request("DELETE", "/")
    assert (response.status, response.header("allow")) == (405, "GET, HEAD")
    assert error_of(response) == 405


async def test_cross_origin_posts_are_refused(client: HttpsClient) -> None:
    body = json.dumps({"user": USER, "password": PASSWORD}).encode()
    for header in [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")]:
        response = await client.request(
            "POST", "/logon", body=body, headers=[("content-type", "application/json"), header]
        )
        assert (response.status, error_of(response)) == (403, 403)
    same = await client.request(
        "POST",
        "/logon",
        body=body,
        headers=[("content-type", "application/json"), ("origin", client_origin(client))],
    )
    assert same.status == 200


def client_origin(client: HttpsClient) -> str:
    return f"https://{client.authority}"


async def test_malformed_http_is_400(stack: Stack) -> None:
    status, _, body = await raw_exchange(stack, b"THIS IS NOT HTTP\r\n\r\n")
    assert status == 400
    assert json.loads(body)["error"] == 400


def test_session_key_parsing() -> None:
    assert session_key([(b"cookie", b"a=1; __Host-starwrs_session=abc_-9; b=2")]) == "abc_-9"
    assert session_key([(b"cookie", b"starwrs_session=old")]) is None  # not read any more
    both = [(b"cookie", b"starwrs_session=old"), (b"cookie", b"__Host-starwrs_session=new")]
    assert session_key(both) == "new"
    assert session_key([(b"cookie", b"__Host-starwrs_session=bad key")]) is None
    assert session_key([(b"cookie", b"__Host-starwrs_session=" + b"k" * 256)]) is None
    assert session_key([]) is None


async def test_client_errors_are_plain(stack: Stack) -> None:
    untrusted = ssl.create_default_context()
    async with HttpsClient(stack.url, untrusted, timeout=5) as client:
        with pytest.raises(ClientError, match="not trusted"):
            await client.request("GET", "/")
    url = f"https://127.0.0.1:{dead_address().port}"
    async with HttpsClient(url, stack.client_context()) as nothing:
        with pytest.raises(ClientError, match="cannot connect"):
            await nothing.request("GET", "/")
