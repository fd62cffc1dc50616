"""The web server in front of the real dispatcher and order entry, in one trio run.

Everything talks over real TLS on loopback, as in ``starwrs serve`` but without
the processes (the process-level end-to-end tests live elsewhere).  The demo
users come from ``fixtures/demo.py``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
from starwrs.protocol import decode_frame, encode_frame, make_header
from starwrs.runtime.config import Address, Deployment, Limits, free_port
from starwrs.runtime.https import HttpsClient
from starwrs.runtime.pki import client_context_for_ca, ensure_pki
from starwrs.web.server import SESSION_COOKIE, serve_web

from .test_web import parse_response, read_response

serve_dispatcher = pytest.importorskip("starwrs.dispatcher.server").serve_dispatcher
serve_oe = pytest.importorskip("starwrs.proxies.oe.server").serve_oe
demo = pytest.importorskip("starwrs.fixtures.demo")
oe_store = pytest.importorskip("starwrs.proxies.oe.store")


@dataclass
class RealStack:
    url: str
    ca: Path
    passwords: dict[str, str]


@pytest.fixture
async def real(nursery: trio.Nursery, tmp_path: Path) -> RealStack:
    pki = ensure_pki(tmp_path)
    deployment = Deployment(
        state_dir=tmp_path,
        web=Address("127.0.0.1", 0),
        dispatchers=(Address("127.0.0.1", free_port()),),
        proxies={"OE": Address("127.0.0.1", free_port())},
        limits=Limits(head_timeout=2.0, read_timeout=5.0, proxy_timeout=5.0),
    )
    async with oe_store.open_order_entry(tmp_path / "oe.db") as store:
        passwords = await demo.load_demo(store, tmp_path)
    await nursery.start(functools.partial(serve_oe, deployment))
    await nursery.start(functools.partial(serve_dispatcher, deployment))
    web = await nursery.start(functools.partial(serve_web, deployment))
    return RealStack(f"https://127.0.0.1:{web.port}", pki.ca_cert, passwords)


@pytest.fixture
async def client(real: RealStack) -> AsyncIterator[HttpsClient]:
    async with HttpsClient(real.url, client_context_for_ca(real.ca), timeout=10) as client:
        yield client


async def logon(client: HttpsClient, user: str, password: str) -> tuple[int, object]:
    response = await client.request(
        "POST",
        "/logon",
        body=json.dumps({"user": user, "password": password}).encode(),
        headers=[("content-type", "application/json")],
    )
    return response.status, response.json()


def frame(mech: int, target: str, payload: bytes = b"", *, echo: int = 0) -> bytes:
    return encode_frame(make_header(mech, target, payload_length=len(payload), echo=echo), payload)


async def test_logon_echo_logoff_through_the_real_dispatcher(
    real: RealStack, client: HttpsClient
) -> None:
    status, body = await logon(client, "jeanvnet2", real.passwords["jeanvnet2"])
    assert status == 200
    assert isinstance(body, dict)
    assert body["user"] == "jeanvnet2"
    assert body["enterprise"] == "00022924"
    assert set(body) == {
        "user",
        "enterprise",
        "applications",
        "entitlements",
        "timezone",
        "lang",
        "curr",
        "session",
    }
    key = client.cookies[SESSION_COOKIE]

    echo = await client.request("POST", "/dispatch", body=frame(0, "DSP", echo=1))
    assert echo.status == 200
    answer = decode_frame(echo.body)
    assert (answer.header.echo, answer.header.status, answer.header.key) == (1, 0, "")

    assert (await client.request("POST", "/logoff")).status == 204
    client.cookies[SESSION_COOKIE] = key  # replay the logged-off cookie
    replay = await client.request("POST", "/dispatch", body=frame(0, "RM", b"GRTL<PRODUCT=V>"))
    assert replay.status == 401
    assert replay.json() == {"error": 7004, "message": "no valid session: log on first"}


async def test_real_refusals_are_identical(real: RealStack, client: HttpsClient) -> None:
    wrong = await logon(client, "jeanvnet2", "not-the-password")
    unknown = await logon(client, "nosuchuser", "not-the-password")
    assert wrong == unknown == (401, {"error": 6115, "message": "invalid user or password"})


async def test_real_relogon_rotates_and_ends_the_old_session(
    real: RealStack, client: HttpsClient
) -> None:
    password = real.passwords["jeanvnet2"]
    await logon(client, "jeanvnet2", password)
    first = client.cookies[SESSION_COOKIE]
    await logon(client, "jeanvnet2", password)
    second = client.cookies[SESSION_COOKIE]
    assert first != second
    client.cookies[SESSION_COOKIE] = first
    stale = await client.request("POST", "/dispatch", body=frame(0, "RM", b"GRTL<PRODUCT=V>"))
    assert stale.status == 401


async def logon_from(real: RealStack, local: str, user: str, password: str) -> tuple[int, bytes]:
    """A logon on a connection of its own from the loopback address *local*."""
    port = int(real.url.rpartition(":")[2])
    tcp = await trio.open_tcp_stream("127.0.0.1", port, local_address=local)
    stream = trio.SSLStream(tcp, client_context_for_ca(real.ca), server_hostname="127.0.0.1")
    try:
        await stream.do_handshake()
        body = json.dumps({"user": user, "password": password}).encode()
        await stream.send_all(
            b"POST /logon HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        status, _, answer = parse_response(await read_response(stream, limit=10))
    finally:
        await trio.aclose_forcefully(stream)
    return status, answer


async def test_dispatch_never_answers_a_session_key(real: RealStack, client: HttpsClient) -> None:
    await logon(client, "jeanvnet2", real.passwords["jeanvnet2"])
    lon = f"LON<USERID=jeanvnet2,PASSWORD={real.passwords['jeanvnet2']}>".encode()
    response = await client.request("POST", "/dispatch", body=frame(0, "DSP", lon))
    assert b"SESSION" not in response.body
    assert response.status == 403
    assert response.json()["error"] == 7003


async def test_echo_needs_a_live_session(real: RealStack, client: HttpsClient) -> None:
    client.cookies[SESSION_COOKIE] = "forged-but-plausible-key"
    echo = await client.request("POST", "/dispatch", body=frame(0, "DSP", echo=1))
    assert echo.status == 401  # not the echo reply a forged key got before
    assert echo.json()["error"] == 7004
    await logon(client, "jeanvnet2", real.passwords["jeanvnet2"])
    echo = await client.request("POST", "/dispatch", body=frame(0, "RM", echo=1))
    assert echo.status == 200
    assert decode_frame(echo.body).header.echo == 1


async def test_guessing_from_one_address_does_not_lock_out_the_user_elsewhere(
    real: RealStack, client: HttpsClient
) -> None:
    attempts = 0
    while True:  # the attacker at 127.0.0.2 guesses until throttled
        status, body = await logon_from(real, "127.0.0.2", "jeanvnet2", f"guess{attempts}")
        attempts += 1
        if status == 429:
            break
        assert status == 401, body
        assert attempts < 8
    assert json.loads(body)["error"] == 7012
    # the user, at 127.0.0.1, logs on at once
    status, answer = await logon(client, "jeanvnet2", real.passwords["jeanvnet2"])
    assert status == 200, answer
