"""runtime/tls.py: trio streams over a non-blocking ``ssl.SSLSocket`` (issue 10 item 10).

Real sockets on 127.0.0.1 and the deployment's own PKI: the stream keeps
``trio.SSLStream``'s contract where the services rely on it (clean and ragged
ends, no ``close_notify`` on a forceful close, busy detection, peer
certificates), and a send waits under its deadline only when the socket is full.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import trio
import trio.testing
from starwrs.protocol import Request, Response, Role
from starwrs.runtime import peers
from starwrs.runtime.channel import FrameChannel, PeerGone, open_tls_channel
from starwrs.runtime.pki import Pki, ensure_pki
from starwrs.runtime.tls import TlsListener, TlsStream, close_now, is_tls, wrap_tls


@dataclass
class Pair:
    client: TlsStream
    server: TlsStream


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("tls-state"))


async def _listener(pki: Pki, name: str = "oe") -> tuple[TlsListener, int]:
    [tcp] = await trio.open_tcp_listeners(0, host="127.0.0.1")
    return TlsListener(tcp, pki.internal_server_context(name)), tcp.socket.getsockname()[1]


@pytest.fixture
async def pair(pki: Pki) -> AsyncIterator[Pair]:
    listener, port = await _listener(pki)
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    client = TlsStream.wrap(tcp, pki.internal_client_context("dispatcher"), server_hostname="oe")
    server = await listener.accept()
    assert isinstance(server, TlsStream)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        await client.do_handshake()
    await listener.aclose()
    try:
        yield Pair(client, server)
    finally:
        await trio.aclose_forcefully(client)
        await trio.aclose_forcefully(server)


async def _forever(step: Callable[[], Awaitable[None]]) -> None:
    """Run *step* again and again (until it raises)."""
    while True:
        await step()


async def _receive_exactly(stream: TlsStream, size: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < size:
        data = await stream.receive_some()
        assert data, "the stream ended early"
        parts.append(data)
        got += len(data)
    return b"".join(parts)


async def test_data_both_ways_and_a_clean_close(pair: Pair) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB: many records, and the socket fills up
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pair.client.send_all, big)
        assert await _receive_exactly(pair.server, len(big)) == big
    await pair.server.send_all(b"answer")
    assert await pair.client.receive_some(100) == b"answer"
    await pair.client.aclose()  # close_notify
    assert await pair.server.receive_some() == b""


async def test_an_end_without_close_notify_is_broken(pair: Pair) -> None:
    pair.client.close_now()
    with pytest.raises(trio.BrokenResourceError):
        await pair.server.receive_some()


async def test_a_forceful_close_sends_no_close_notify(pair: Pair) -> None:
    # how the web server cuts a response short: the client must not see a clean end
    await trio.aclose_forcefully(pair.server)
    with pytest.raises(trio.BrokenResourceError):
        await pair.client.receive_some()


async def test_a_closed_stream_refuses_use(pair: Pair) -> None:
    await pair.client.aclose()
    await pair.client.aclose()  # twice is fine
    with pytest.raises(trio.ClosedResourceError):
        await pair.client.send_all(b"x")
    with pytest.raises(trio.ClosedResourceError):
        await pair.client.receive_some()


async def test_a_send_waits_under_its_deadline_only_when_the_socket_is_full(
    pair: Pair, autojump_clock: trio.testing.MockClock
) -> None:
    # room in the socket: done at once, with no time passing
    start = trio.current_time()
    await pair.client.send_all_by(b"x" * 1000, start + 5)
    assert trio.current_time() == start
    # the server reads nothing: the socket fills up and the wait ends at the deadline
    chunk = b"y" * 1024 * 1024
    with pytest.raises(trio.TooSlowError):
        await _forever(lambda: pair.client.send_all_by(chunk, start + 5))
    assert trio.current_time() == pytest.approx(start + 5)


async def test_two_senders_at_once_are_refused(pair: Pair) -> None:
    async with trio.open_nursery() as nursery:

        async def fill() -> None:
            while True:  # blocks once the socket is full (nobody reads)
                await pair.client.send_all(b"z" * 1024 * 1024)

        nursery.start_soon(fill)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await pair.client.send_all(b"more")
        nursery.cancel_scope.cancel()


async def test_the_peer_certificate_names_the_service(pair: Pair) -> None:
    assert is_tls(pair.server)
    assert peers.peer_of(pair.server) == "dispatcher"
    assert peers.peer_of(pair.client) == "oe"


async def test_a_wrong_server_name_fails_the_handshake(pki: Pki) -> None:
    listener, port = await _listener(pki, "rm")
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    client = TlsStream.wrap(tcp, pki.internal_client_context("dispatcher"), server_hostname="oe")
    server = await listener.accept()
    async with trio.open_nursery() as nursery:

        async def serve() -> None:
            with pytest.raises(trio.BrokenResourceError):
                await server.do_handshake()

        nursery.start_soon(serve)
        with pytest.raises(trio.BrokenResourceError) as caught:
            await client.do_handshake()
        assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
        await client.aclose()
    await trio.aclose_forcefully(server)
    await listener.aclose()


async def test_other_transports_get_trio_sslstream(pki: Pki) -> None:
    a, _b = trio.testing.memory_stream_pair()
    stream = wrap_tls(a, pki.internal_client_context("web"), server_hostname="dispatcher")
    assert isinstance(stream, trio.SSLStream)
    assert is_tls(stream)


async def test_close_now_closes_an_idle_stream(pair: Pair) -> None:
    close_now(pair.client)
    with pytest.raises(trio.BrokenResourceError):
        await pair.server.receive_some()


async def test_a_frame_channel_over_tls(pki: Pki) -> None:
    listener, port = await _listener(pki)

    async def serve() -> None:
        stream = await listener.accept()
        async with FrameChannel(stream, Role.SERVER) as channel:
            await stream.do_handshake()
            request = await channel.receive()
            assert isinstance(request, Request)
            await channel.send(Response(0, b"GUAA<ERROR=0>", request.serial))
            await trio.sleep_forever()  # reads nothing more

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        channel = await open_tls_channel(
            "127.0.0.1", port, pki.internal_client_context("dispatcher"), server_hostname="oe"
        )
        assert isinstance(channel.stream, TlsStream)
        answer = await channel.request(Request("OE", b"GUA<USERID=u>", "u@e", 7), 5)
        assert answer == Response(0, b"GUAA<ERROR=0>", 7)
        # a peer that reads nothing: the write deadline ends the send (PeerGone)
        channel.write_timeout = 0.5
        chunk = b"\0" * 1024 * 1024
        with pytest.raises(PeerGone, match="read nothing"):
            await _forever(lambda: channel._send_bytes(chunk))
        await channel.aclose()
        nursery.cancel_scope.cancel()
    await listener.aclose()


async def test_a_second_connection_resumes_the_session_and_keeps_both_identities(
    pki: Pki,
) -> None:
    # every one-exchange link (bulk transfers, tickets) pays a handshake: the second
    # one to the same server is a resumed session, yet each side still sees the
    # certificate the first full handshake proved (the peer table relies on it)
    listener, port = await _listener(pki, "inbox")
    context = pki.internal_client_context("dispatcher")
    reused: list[tuple[bool, bool]] = []
    try:
        for _ in range(3):
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
            client = TlsStream.wrap(tcp, context, server_hostname="inbox")
            server = await listener.accept()
            assert isinstance(server, TlsStream)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.do_handshake)
                await client.do_handshake()
            await server.send_all(b"answer")  # the session ticket travels before it
            assert await client.receive_some() == b"answer"
            assert peers.peer_of(server) == "dispatcher"
            assert peers.peer_of(client) == "inbox"
            reused.append((client.socket.session_reused, server.socket.session_reused))
            await client.aclose()
            await trio.aclose_forcefully(server)
    finally:
        await listener.aclose()
    assert reused == [(False, False), (True, True), (True, True)]


async def test_a_session_is_not_offered_to_another_name(pki: Pki) -> None:
    # a session made with "inbox" is not used to reach a server that must prove "oe":
    # the certificate check runs in full and a wrong name still fails
    listener, port = await _listener(pki, "inbox")
    context = pki.internal_client_context("dispatcher")
    try:
        for name, ok in (("inbox", True), ("inbox", True), ("oe", False)):
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
            client = TlsStream.wrap(tcp, context, server_hostname=name)
            server = await listener.accept()
            assert isinstance(server, TlsStream)
            failed = False
            async with trio.open_nursery() as nursery:

                async def serve(server: TlsStream = server) -> None:
                    try:
                        await server.do_handshake()
                        await server.send_all(b"x")
                    except trio.BrokenResourceError:
                        pass

                nursery.start_soon(serve)
                try:
                    await client.do_handshake()
                    await client.receive_some()
                except trio.BrokenResourceError:
                    failed = True
            assert failed is not ok
            await trio.aclose_forcefully(client)
            await trio.aclose_forcefully(server)
    finally:
        await listener.aclose()
