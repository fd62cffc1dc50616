"""proxies/framework.py: frames that stop short, refused peers, the transaction line.

Real TLS (OpenSSL through trio.SSLStream, the deployment's certificates) over
in-memory streams, so trio's autojump clock can stand in for the waiting.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import trio
import trio.testing
from starwrs.grammar import Member, Message
from starwrs.protocol import HEADER, Frame, FrameReader, Request, Response, Role
from starwrs.proxies.framework import IDLE_TIMEOUT, Caller, Proxy, serve_connection
from starwrs.runtime import peers
from starwrs.runtime.channel import FrameChannel
from starwrs.runtime.config import Limits
from starwrs.runtime.pki import Pki, ensure_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("state"))


def echo_proxy() -> Proxy:
    proxy = Proxy("RM")

    @proxy.handles("GRTL", "SRTL")
    async def answer(caller: Caller, req: object) -> Message:
        return Message("SRTL", (Member("ERROR", "0"),))

    return proxy


@dataclass
class Client:
    stream: trio.SSLStream[trio.abc.Stream]
    reader: FrameReader

    async def frame(self) -> Frame | None:
        """The next frame from the proxy, or None when it closed the connection."""
        while True:
            event = self.reader.next_event()
            if isinstance(event, Frame):
                return event
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                data = b""
            if not data:
                return None
            self.reader.receive_data(data)


@pytest.fixture
async def connect(pki: Pki) -> AsyncIterator[object]:
    async with trio.open_nursery() as nursery:

        async def open_one(cert: str = "dispatcher", limits: Limits | None = None) -> Client:
            client_raw, server_raw = trio.testing.memory_stream_pair()
            server = trio.SSLStream(server_raw, pki.internal_server_context("rm"), server_side=True)
            nursery.start_soon(serve_connection, echo_proxy(), server, limits or Limits())
            client = trio.SSLStream(
                client_raw, pki.internal_client_context(cert), server_hostname="rm"
            )
            await client.do_handshake()
            return Client(client, FrameReader())

        yield open_one
        nursery.cancel_scope.cancel()


def header(length: int) -> bytes:
    return HEADER.pack(1, 0, 0, 0, length, 0, 0, b"RM  ")


@pytest.mark.parametrize(
    ("limits", "declared", "seconds"),
    [
        (Limits(), 100, 5.0),  # frame_timeout: not the 30 s read_timeout
        (Limits(), 8 * 1024 * 1024, 5.0 + 8.0),  # + 1 s a MiB declared
        (Limits(read_timeout=3.0), 8 * 1024 * 1024, 3.0),  # never more than read_timeout
    ],
)
async def test_a_frame_that_stops_short_is_answered_7009_promptly(
    connect, autojump_clock: trio.abc.Clock, limits: Limits, declared: int, seconds: float
) -> None:
    client = await connect(limits=limits)
    await trio.sleep(3600)  # idle between transactions: allowed
    start = trio.current_time()
    await client.stream.send_all(header(declared) + b"GRTL<")  # and then nothing
    answer = await client.frame()
    assert trio.current_time() - start == pytest.approx(seconds, abs=0.01)
    assert answer is not None
    assert (answer.header.status, answer.payload) == (7009, b"<ERROR=7009>")
    assert await client.frame() is None  # then closed


async def test_a_connection_idle_for_a_day_is_closed_quietly(
    connect, autojump_clock: trio.abc.Clock
) -> None:
    client = await connect()
    payload = b"GRTL<PRODUCT=V,DATATYPE=R,DATACAT=P,IO=O>"
    start = trio.current_time()
    for _ in range(3):  # transactions keep it open: the day counts from the last one
        await trio.sleep(IDLE_TIMEOUT / 2)
        await client.stream.send_all(header(24 + len(payload)) + payload)
        answer = await client.frame()
        assert answer is not None
        assert answer.header.status == 0
    last = trio.current_time()
    assert await client.frame() is None  # no answer: closed
    assert last - start == pytest.approx(1.5 * IDLE_TIMEOUT)
    # the idle deadline moves at most once a minute (it is a day long)
    assert IDLE_TIMEOUT - 60 <= trio.current_time() - last <= IDLE_TIMEOUT + 0.01


async def test_a_header_that_stops_short_is_answered_7009_too(
    connect, autojump_clock: trio.abc.Clock
) -> None:
    client = await connect()
    start = trio.current_time()
    await client.stream.send_all(header(100)[:10])
    answer = await client.frame()
    assert trio.current_time() - start == pytest.approx(5.0)
    assert answer is not None
    assert answer.header.status == 7009


async def test_a_frame_that_arrives_slowly_but_in_time_is_served(
    connect, autojump_clock: trio.abc.Clock
) -> None:
    client = await connect()
    payload = b"GRTL<PRODUCT=V,DATATYPE=R,DATACAT=P,IO=O>"
    data = header(24 + len(payload)) + payload
    for i in range(0, len(data), 10):
        await client.stream.send_all(data[i : i + 10])
        await trio.sleep(0.5)  # 4.5 s in all: within frame_timeout
    answer = await client.frame()
    assert answer is not None
    assert (answer.header.status, answer.payload) == (0, b"SRTL<ERROR=0>")


async def test_a_refused_peer_that_sends_nothing_gets_a_bare_refusal(
    connect, autojump_clock: trio.abc.Clock
) -> None:
    client = await connect("web", Limits(connect_timeout=5.0))
    start = trio.current_time()
    answer = await client.frame()
    assert trio.current_time() - start == pytest.approx(5.0)
    assert answer is not None
    assert (answer.header.status, answer.payload) == (7003, peers.REFUSAL)
    assert await client.frame() is None


async def test_one_structured_line_per_transaction(
    connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="starwrs.proxy")
    client = await connect()
    channel = FrameChannel(client.stream, Role.CLIENT)
    await channel.send(Request("RM", b"GRTL<PRODUCT=V,DATATYPE=R,DATACAT=P,IO=O>", "a@b", 9))
    assert await channel.receive() == Response(0, b"SRTL<ERROR=0>", 9)
    [line] = [r.getMessage() for r in caplog.records if r.name == "starwrs.proxy"]
    assert line.startswith("service=rm serial=9 user=a status=0 ms=")
    assert line.endswith(" peer=dispatcher")


def test_a_proxy_is_named_after_its_target() -> None:
    assert Proxy("OE").name == "oe"
    assert Proxy("INBX").name == "inbox"
    assert Proxy("ARB", name="arbitrator").name == "arbitrator"
