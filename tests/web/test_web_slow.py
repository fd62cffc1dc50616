"""Slow and hoarding clients: body deadlines and the per-source share of connection slots.

The attacks come from 127.0.0.2 and up (Linux routes all of 127/8 to loopback and
lets a client socket bind to any of it), the normal client from 127.0.0.1, so the
web server sees distinct sources.  Each attack is bounded in count and in time: it
holds its connections only until the normal client is done (or a deadline), and
the normal client's own deadline is far below the attack's hold time on the old
code (where it waited in the backlog until the attack ended).  Real time is used --
autojump would race the kernel's loopback delivery -- in steps of a fraction of a
second, with margins of seconds.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio
from starwrs.protocol import decode_frame
from starwrs.runtime.config import Limits
from starwrs.runtime.https import HttpsClient

from .test_web import frame_bytes, logon, parse_response, read_response
from .test_web_fake import Stack, start_stack, state_dir

__all__ = ["state_dir"]  # the fixture, imported for pytest

#: the attack: 600 connections from three addresses (200 each)
ATTACK = 600
ATTACK_SOURCES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
SHARE = 40
#: the web server's timeouts are long (the attack is not simply timed out meanwhile)
HOARD_LIMITS = Limits(
    head_timeout=30.0,
    read_timeout=30.0,
    proxy_timeout=2.0,
    body_timeout=30.0,
    max_connections_per_source=SHARE,
)
#: the normal client must be served within this, while the attack holds on
SERVED_WITHIN = 4.0
#: no attack connection is held longer than this, whatever happens
ATTACK_BOUND = 20.0


@dataclass
class Attack:
    """How the attack's connections fared."""

    #: connections still open when the attack ended (the server held them throughout)
    held: int = 0
    #: connections the server closed or reset
    refused: int = 0
    #: attackers done setting up (connected and sending, or refused)
    ready: int = 0
    all_ready: trio.Event = field(default_factory=trio.Event)

    def set_up(self) -> None:
        self.ready += 1
        if self.ready == ATTACK:
            self.all_ready.set()


async def _connect(stack: Stack, local: str) -> trio.SocketStream:
    return await trio.open_tcp_stream(stack.web.host, stack.web.port, local_address=local)


async def _still_open(stream: trio.abc.ReceiveStream) -> bool:
    """True if the server neither closed nor answered the connection (it holds it)."""
    with trio.move_on_after(0.3):
        with contextlib.suppress(OSError, trio.BrokenResourceError):
            await stream.receive_some(1)
        return False  # closed, reset or answered
    return True


async def _slow_body(stack: Stack, local: str, attack: Attack, stop: trio.Event) -> None:
    """Handshake, send a logon head announcing 1000 bytes, then a byte every 0.5 s."""
    stream: trio.SSLStream[trio.SocketStream] | None = None
    try:
        tcp = await _connect(stack, local)
        stream = trio.SSLStream(tcp, stack.client_context(), server_hostname="127.0.0.1")
        await stream.do_handshake()
        await stream.send_all(
            b"POST /logon HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
    except (OSError, trio.BrokenResourceError):
        attack.refused += 1
        attack.set_up()
        if stream is not None:
            await trio.aclose_forcefully(stream)
        return
    attack.set_up()
    try:
        while not stop.is_set():
            await stream.send_all(b" ")
            with trio.move_on_after(0.5):
                await stop.wait()
        if await _still_open(stream):
            attack.held += 1
        else:
            attack.refused += 1
    except (OSError, trio.BrokenResourceError):
        attack.refused += 1
    finally:
        await trio.aclose_forcefully(stream)


async def _no_hello(stack: Stack, local: str, attack: Attack, stop: trio.Event) -> None:
    """Open a TCP connection and never send a TLS hello."""
    try:
        tcp = await _connect(stack, local)
    except OSError:
        attack.refused += 1
        attack.set_up()
        return
    attack.set_up()
    try:
        await stop.wait()
        if await _still_open(tcp):
            attack.held += 1
        else:
            attack.refused += 1
    finally:
        await trio.aclose_forcefully(tcp)


Attacker = Callable[[Stack, str, Attack, trio.Event], Awaitable[None]]


async def _served_during(stack: Stack, attacker: Attacker) -> tuple[Attack, float]:
    """Run the attack; once it is set up, a normal client logs on and sends a GRTL.

    Returns:
        How the attack fared, and the seconds the normal client took (inf: it was
        not served within :data:`SERVED_WITHIN`).
    """
    attack = Attack()
    stop = trio.Event()
    elapsed = float("inf")
    async with trio.open_nursery() as nursery:
        nursery.cancel_scope.deadline = trio.current_time() + ATTACK_BOUND
        for n in range(ATTACK):
            local = ATTACK_SOURCES[n % len(ATTACK_SOURCES)]
            nursery.start_soon(attacker, stack, local, attack, stop)
        with trio.move_on_after(ATTACK_BOUND / 2):
            await attack.all_ready.wait()
        await trio.sleep(0.2)  # the server has taken in what it will take
        started = trio.current_time()
        with trio.move_on_after(SERVED_WITHIN):
            async with HttpsClient(stack.url, stack.client_context(), timeout=10) as client:
                assert (await logon(client)).status == 200
                answer = await client.request(
                    "POST",
                    "/dispatch",
                    body=frame_bytes(0, "RM", b"GRTL<PRODUCT=V>"),
                    headers=[("content-type", "application/x-starwrs-frame")],
                )
                assert answer.status == 200
                assert decode_frame(answer.body).header.status == 0
                elapsed = trio.current_time() - started
        stop.set()  # every attacker now looks whether its connection is still open
    return attack, elapsed


async def test_slow_bodies_from_some_sources_do_not_lock_out_a_normal_client(
    nursery: trio.Nursery, state_dir: Path
) -> None:
    stack = await start_stack(nursery, state_dir, limits=HOARD_LIMITS)
    attack, elapsed = await _served_during(stack, _slow_body)
    assert elapsed < SERVED_WITHIN, "the normal client was locked out"
    # the attack held what its share allowed all along (no more), the rest was refused
    assert (attack.held, attack.refused) == (SHARE * len(ATTACK_SOURCES), ATTACK - attack.held)


async def test_connections_that_never_say_hello_do_not_lock_out_a_normal_client(
    nursery: trio.Nursery, state_dir: Path
) -> None:
    stack = await start_stack(nursery, state_dir, limits=HOARD_LIMITS)
    attack, elapsed = await _served_during(stack, _no_hello)
    assert elapsed < SERVED_WITHIN, "the normal client was locked out"
    assert (attack.held, attack.refused) == (SHARE * len(ATTACK_SOURCES), ATTACK - attack.held)


async def test_a_source_over_its_share_is_reset_at_once_others_are_served(
    nursery: trio.Nursery, state_dir: Path
) -> None:
    limits = Limits(head_timeout=5.0, read_timeout=5.0, max_connections_per_source=2)
    stack = await start_stack(nursery, state_dir, limits=limits)
    held = [await _connect(stack, "127.0.0.9") for _ in range(2)]
    try:
        with trio.fail_after(2):  # reset at once, not after head_timeout
            try:
                extra = await _connect(stack, "127.0.0.9")
            except OSError:
                pass  # the reset came before connect() returned
            else:
                held.append(extra)  # closed in the end
                with contextlib.suppress(trio.BrokenResourceError):  # reset
                    assert await extra.receive_some(1) == b""
        for stream in held[:2]:
            with trio.move_on_after(0.3) as scope:
                await stream.receive_some(1)
            assert scope.cancelled_caught  # still open
        async with HttpsClient(stack.url, stack.client_context(), timeout=5) as client:
            assert (await client.request("GET", "/")).status == 200
        other = await _connect(stack, "127.0.0.10")  # another source has its own share
        with trio.move_on_after(0.3) as scope:
            await other.receive_some(1)
        assert scope.cancelled_caught
        await trio.aclose_forcefully(other)
    finally:
        for stream in held:
            await trio.aclose_forcefully(stream)


async def _trickled_logon(stack: Stack, *, declared: int, every: float) -> tuple[int, float]:
    """Send a logon head, then its body a byte every *every* s; the status and when."""
    tcp = await trio.open_tcp_stream(stack.web.host, stack.web.port)
    stream = trio.SSLStream(tcp, stack.client_context(), server_hostname="127.0.0.1")
    await stream.do_handshake()
    started = trio.current_time()
    answer: list[bytes] = []

    async def trickle() -> None:
        try:
            await stream.send_all(
                b"POST /logon HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % declared
            )
            for _ in range(declared):
                await stream.send_all(b" ")
                await trio.sleep(every)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trickle)
            answer.append(await read_response(stream, limit=6))
            nursery.cancel_scope.cancel()
    finally:
        await trio.aclose_forcefully(stream)
    status, _, body = parse_response(answer[0])
    if status == 408:
        assert json.loads(body)["error"] == 408
    return status, trio.current_time() - started


async def test_a_body_a_byte_at_a_time_is_cut_at_its_deadline(
    nursery: trio.Nursery, state_dir: Path
) -> None:
    # every byte comes well within read_timeout (the old per-read limit never fired)
    limits = Limits(head_timeout=2.0, read_timeout=2.0, body_timeout=1.0, body_min_rate=1024)
    stack = await start_stack(nursery, state_dir, limits=limits)
    status, after = await _trickled_logon(stack, declared=100, every=0.4)
    assert status == 408
    budget = 1.0 + 100 / 1024  # the floor plus the declared size at the minimum rate
    assert budget - 0.2 <= after < budget + 1.0


async def test_a_large_body_at_the_minimum_rate_gets_more_time(
    nursery: trio.Nursery, state_dir: Path
) -> None:
    # 40 bytes at 20 bytes/s is 2 s: past the 1 s floor, within floor + size / rate
    limits = Limits(head_timeout=2.0, read_timeout=2.0, body_timeout=1.0, body_min_rate=16)
    stack = await start_stack(nursery, state_dir, limits=limits)
    status, after = await _trickled_logon(stack, declared=40, every=0.05)
    assert status == 400  # the body arrived whole (and is not JSON): not cut
    assert 1.5 < after < 3.5


async def test_a_chunked_body_has_more_time_the_more_of_it_arrives(
    nursery: trio.Nursery, state_dir: Path
) -> None:
    # ~1 KiB in pieces of 100 bytes every 0.1 s: 1 s, twice the floor, well within
    # the floor plus what arrived at the minimum rate
    limits = Limits(head_timeout=2.0, read_timeout=2.0, body_timeout=0.5, body_min_rate=1024)
    stack = await start_stack(nursery, state_dir, limits=limits)
    body = json.dumps({"user": "x", "password": "y" * 1000}).encode()
    tcp = await trio.open_tcp_stream(stack.web.host, stack.web.port)
    stream = trio.SSLStream(tcp, stack.client_context(), server_hostname="127.0.0.1")
    await stream.do_handshake()
    try:
        await stream.send_all(
            b"POST /logon HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for i in range(0, len(body), 100):
            piece = body[i : i + 100]
            await stream.send_all(b"%x\r\n%s\r\n" % (len(piece), piece))
            await trio.sleep(0.1)
        await stream.send_all(b"0\r\n\r\n")
        status, _, _ = parse_response(await read_response(stream))
    finally:
        await trio.aclose_forcefully(stream)
    assert status == 401  # a whole logon, refused by the (fake) dispatcher: not 408
