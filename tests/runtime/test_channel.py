"""runtime/channel.py: deadlines (idle vs mid-frame), refusals, peers that vanish.

In-memory streams and trio's autojump clock: no sockets, no waiting.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from starwrs.protocol import (
    HEADER,
    Echo,
    EchoReply,
    Frame,
    FrameReader,
    Request,
    Response,
    Role,
)
from starwrs.runtime.channel import FrameChannel, PeerGone, ReadTimeout


def channels(read_timeout: float = 1.0) -> tuple[FrameChannel, FrameChannel]:
    """(client, server) over an in-memory stream pair."""
    a, b = trio.testing.memory_stream_pair()
    return (
        FrameChannel(a, Role.CLIENT, read_timeout=read_timeout),
        FrameChannel(b, Role.SERVER, read_timeout=read_timeout),
    )


def header(length: int) -> bytes:
    return HEADER.pack(1, 0, 0, 0, length, 0, 0, b"RM  ")


async def test_an_idle_connection_times_out_quietly(autojump_clock: trio.abc.Clock) -> None:
    client, server = channels()
    start = trio.current_time()
    with pytest.raises(ReadTimeout) as info:
        await server.receive(idle_timeout=100)
    assert info.value.idle
    assert trio.current_time() - start == pytest.approx(100)
    await client.aclose()


async def test_a_frame_that_stops_short_times_out_from_its_first_byte(
    autojump_clock: trio.abc.Clock,
) -> None:
    client, server = channels()

    async def trickle() -> None:
        await trio.sleep(50)  # idle for a while: allowed
        for byte in header(100)[:10]:  # then one byte every 0.3 s: not allowed
            await client.stream.send_all(bytes([byte]))
            await trio.sleep(0.3)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trickle)
        start = trio.current_time()
        with pytest.raises(ReadTimeout) as info:
            await server.receive(idle_timeout=100)
        nursery.cancel_scope.cancel()
    assert not info.value.idle
    assert info.value.code == 7009
    assert trio.current_time() - start == pytest.approx(51)  # 50 idle + 1 from the first byte


async def test_without_idle_timeout_the_whole_event_has_the_deadline(
    autojump_clock: trio.abc.Clock,
) -> None:
    _, server = channels()
    start = trio.current_time()
    with pytest.raises(ReadTimeout) as info:
        await server.receive(3)
    assert info.value.idle
    assert trio.current_time() - start == pytest.approx(3)


async def test_refuse_after_a_stall_sends_a_bare_error_frame(
    autojump_clock: trio.abc.Clock,
) -> None:
    client, server = channels()
    await client.stream.send_all(header(100))
    with pytest.raises(ReadTimeout):
        await server.receive()
    assert await server.refuse(7009, b"<ERROR=7009>", serial=5)
    reader = FrameReader()
    reader.receive_data(await client.stream.receive_some(1000))
    frame = reader.next_event()
    assert isinstance(frame, Frame)
    assert (frame.header.status, frame.header.serial, frame.payload) == (7009, 5, b"<ERROR=7009>")


async def test_refuse_answers_within_the_exchange_when_it_can() -> None:
    client, server = channels()
    await client.send(Request("RM", b"GRTL<>", serial=9))
    assert isinstance(await server.receive(), Request)
    assert await server.refuse(7006, b"<ERROR=7006>")
    answer = await client.receive()
    assert answer == Response(7006, b"<ERROR=7006>", 9)


async def test_refuse_to_a_vanished_peer_does_not_raise() -> None:
    client, server = channels()
    await client.stream.aclose()
    assert not await server.refuse(7009)


async def test_a_close_while_waiting_for_an_answer_is_peer_gone() -> None:
    client, server = channels()
    await client.send(Request("RM", b"GRTL<>"))
    assert isinstance(await server.receive(), Request)
    await server.aclose()
    with pytest.raises(PeerGone):
        await client.receive()


async def test_a_peer_that_stops_reading_is_gone_after_the_write_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    a, b = trio.testing.lockstep_stream_pair()
    client = FrameChannel(a, Role.CLIENT, read_timeout=1.0, write_timeout=2.0)
    start = trio.current_time()
    with pytest.raises(PeerGone):
        await client.send(Echo("RM"))
    assert trio.current_time() - start == pytest.approx(2)
    del b


async def test_echo_round_trip() -> None:
    client, server = channels()
    await client.send(Echo("RM"))
    assert isinstance(await server.receive(), Echo)
    await server.send(EchoReply())
    assert isinstance(await client.receive(), EchoReply)


@pytest.mark.parametrize(
    ("declared", "read_timeout", "seconds"),
    [
        (100, 30.0, 2.0),  # a small frame: frame_timeout
        (4 * 1024 * 1024, 30.0, 2.0 + 4.0),  # one more second per MiB declared
        (64 * 1024 * 1024, 30.0, 30.0),  # never more than read_timeout
    ],
)
async def test_frame_timeout_shortens_the_mid_frame_deadline_by_size(
    autojump_clock: trio.abc.Clock, declared: int, read_timeout: float, seconds: float
) -> None:
    a, b = trio.testing.memory_stream_pair()
    server = FrameChannel(
        b,
        Role.SERVER,
        read_timeout=read_timeout,
        max_frame_size=128 * 1024 * 1024,
        frame_timeout=2.0,
        min_frame_rate=1024 * 1024,
    )
    await trio.sleep(500)
    await a.send_all(header(declared) + b"x" * 10)
    start = trio.current_time()
    with pytest.raises(ReadTimeout) as info:
        await server.receive(idle_timeout=1000)
    assert not info.value.idle
    assert info.value.code == 7009
    assert trio.current_time() - start == pytest.approx(seconds, abs=0.01)


async def test_frame_timeout_leaves_the_whole_event_deadline_of_a_client_alone(
    autojump_clock: trio.abc.Clock,
) -> None:
    a, b = trio.testing.memory_stream_pair()
    client = FrameChannel(b, Role.CLIENT, read_timeout=20.0, frame_timeout=2.0)
    await a.send_all(header(100))
    start = trio.current_time()
    with pytest.raises(ReadTimeout):
        await client.receive()  # an answer may take its time: no idle_timeout
    assert trio.current_time() - start == pytest.approx(20.0)
