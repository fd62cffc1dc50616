"""dispatcher/relay.py: bulk relay in memory -- flat memory, stalls, cancels, early refusals.

Lockstep streams (``send_all`` returns only once the other side read everything)
show exactly how far ahead of the client the relay reads from the proxy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
import trio.testing
from starwrs.dispatcher.relay import Outcome, relay_get, relay_put
from starwrs.protocol import (
    BulkCancel,
    BulkData,
    BulkGet,
    BulkPut,
    Event,
    Response,
    Role,
    data_frames,
    put_request,
)
from starwrs.runtime.channel import FrameChannel
from starwrs.runtime.config import Limits

LIMITS = Limits(proxy_timeout=5.0, read_timeout=3.0)
SERIAL = 77 << 40 | 1


def link(lockstep: bool) -> tuple[FrameChannel, FrameChannel]:
    """(client side, server side) of one hop."""
    a, b = trio.testing.lockstep_stream_pair() if lockstep else trio.testing.memory_stream_pair()
    return FrameChannel(a, Role.CLIENT, read_timeout=10), FrameChannel(
        b, Role.SERVER, read_timeout=10
    )


@dataclass
class Hops:
    client: FrameChannel  # the web server's end
    inbound: FrameChannel  # the dispatcher's server end
    outbound: FrameChannel  # the dispatcher's end towards the proxy
    proxy: FrameChannel  # the proxy's end
    outcome: list[Outcome] = field(default_factory=list)


@asynccontextmanager
async def relaying(
    opening: BulkGet | BulkPut, *, lockstep: bool = False
) -> AsyncIterator[tuple[Hops, trio.Nursery]]:
    """Open both hops, deliver *opening* to the dispatcher and start the relay."""
    client, inbound = link(lockstep)
    outbound, proxy = link(lockstep)
    hops = Hops(client, inbound, outbound, proxy)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.send, opening)
        got = await inbound.receive()
        forward = dataclasses.replace(got, key="jean@00022924", serial=SERIAL)  # type: ignore[arg-type]
        relay: Callable[..., object] = relay_get if isinstance(got, BulkGet) else relay_put

        async def run() -> None:  # as the server does: both hops close afterwards
            async with inbound, outbound:
                outcome = await relay(  # type: ignore[operator]
                    inbound, outbound, forward, serial=SERIAL, target="INBX", limits=LIMITS
                )
            hops.outcome.append(outcome)

        nursery.start_soon(run)
        yield hops, nursery


async def test_the_relay_reads_no_further_ahead_than_the_client() -> None:
    resource = bytes(range(256)) * 80  # 20 frames of 1 KiB
    sent: list[int] = []
    async with relaying(BulkGet("F<INBOXID=1>", 0, "INBX", "key"), lockstep=True) as (
        hops,
        nursery,
    ):
        get = await hops.proxy.receive()
        assert isinstance(get, BulkGet)
        assert (get.key, get.serial) == ("jean@00022924", SERIAL)

        async def proxy_side() -> None:
            for frame in data_frames(1, resource, chunk_size=1024):
                await hops.proxy.send(frame)
                sent.append(frame.offset)

        nursery.start_soon(proxy_side)
        first = await hops.client.receive()
        assert isinstance(first, BulkData)
        await trio.testing.wait_all_tasks_blocked()
        assert len(sent) == 2  # one the client has, one the relay holds; no more
        received = bytearray(first.data)
        while True:
            event = await hops.client.receive()
            assert isinstance(event, BulkData)
            assert event.serial == SERIAL
            received += event.data
            if event.done:
                break
    assert bytes(received) == resource
    assert hops.outcome[0].status == 0
    assert hops.outcome[0].data == len(resource)


async def test_a_proxy_that_stalls_mid_get_is_7007(autojump_clock: trio.abc.Clock) -> None:
    async with relaying(BulkGet("F<INBOXID=1>", 0, "INBX", "key")) as (hops, _):
        assert isinstance(await hops.proxy.receive(), BulkGet)
        frames = list(data_frames(1, bytes(3000), chunk_size=1000))
        await hops.proxy.send(frames[0])
        assert isinstance(await hops.client.receive(), BulkData)
        start = trio.current_time()
        answer = await hops.client.receive()  # the proxy sends nothing more
    assert isinstance(answer, Response)
    assert answer.status == 7007
    assert answer.serial == SERIAL
    assert trio.current_time() - start == LIMITS.proxy_timeout


async def test_a_cancel_before_the_first_frame_closes_the_proxy_side() -> None:
    async with relaying(BulkGet("F<INBOXID=1>", 0, "INBX", "key")) as (hops, _):
        assert isinstance(await hops.proxy.receive(), BulkGet)
        await hops.client.stream.aclose()  # the client goes away
        after: Event | BaseException
        try:
            after = await hops.proxy.receive()
        except Exception as err:
            after = err
    assert type(after).__name__ in ("ConnectionClosed", "PeerGone")
    assert hops.outcome[0].note == "client gone"


async def test_a_cancel_mid_get_is_passed_on() -> None:
    async with relaying(BulkGet("F<INBOXID=1>", 0, "INBX", "key")) as (hops, _):
        assert isinstance(await hops.proxy.receive(), BulkGet)
        frames = list(data_frames(4, bytes(3000), chunk_size=1000))
        await hops.proxy.send(frames[0])
        first = await hops.client.receive()
        assert isinstance(first, BulkData)
        await hops.client.send(BulkCancel(first.transfer))
        assert await hops.proxy.receive() == BulkCancel(4)
    assert hops.outcome[0].note == "cancelled"


async def test_a_put_is_relayed_and_answered() -> None:
    data = bytes(range(256)) * 20
    async with relaying(put_request("U<INBOXID=1>", data, target="INBX", key="k")) as (hops, _):
        put = await hops.proxy.receive()
        assert isinstance(put, BulkPut)
        assert (put.key, put.serial, put.size) == ("jean@00022924", SERIAL, len(data))
        for frame in data_frames(2, data, chunk_size=1500):
            await hops.client.send(frame)
            relayed = await hops.proxy.receive()
            assert isinstance(relayed, BulkData)
            assert (relayed.offset, bytes(relayed.data)) == (frame.offset, frame.data)
        await hops.proxy.send(Response(0, b"Z<ERROR=0>"))
        answer = await hops.client.receive()
    assert answer == Response(0, b"Z<ERROR=0>", SERIAL)
    assert hops.outcome[0].status == 0


async def test_a_put_refused_early_stops_the_upload() -> None:
    data = bytes(10_000)
    async with relaying(put_request("U<INBOXID=1>", data, target="INBX", key="k")) as (hops, _):
        assert isinstance(await hops.proxy.receive(), BulkPut)
        await hops.proxy.send(Response(5151, b"Z<ERROR=5151>"))
        answer = await hops.client.receive()
    assert answer == Response(5151, b"Z<ERROR=5151>", SERIAL)
    assert hops.outcome[0].note == "refused"


async def test_a_client_that_stalls_mid_put_is_cut_off(autojump_clock: trio.abc.Clock) -> None:
    data = bytes(10_000)
    async with relaying(put_request("U<INBOXID=1>", data, target="INBX", key="k")) as (hops, _):
        assert isinstance(await hops.proxy.receive(), BulkPut)
        start = trio.current_time()
        after: Event | BaseException
        try:
            after = await hops.proxy.receive(60)  # nothing comes; then the relay closes
        except Exception as err:
            after = err
    assert type(after).__name__ in ("ConnectionClosed", "PeerGone")
    assert trio.current_time() - start >= LIMITS.read_timeout
    assert hops.outcome[0].note == "client gone"


async def test_a_proxy_that_never_answers_a_put_is_7007(autojump_clock: trio.abc.Clock) -> None:
    data = bytes(2000)
    async with relaying(put_request("U<INBOXID=1>", data, target="INBX", key="k")) as (hops, _):
        assert isinstance(await hops.proxy.receive(), BulkPut)
        for frame in data_frames(2, data, chunk_size=1500):
            await hops.client.send(frame)
            assert isinstance(await hops.proxy.receive(), BulkData)
        answer = await hops.client.receive()
    assert isinstance(answer, Response)
    assert answer.status == 7007
