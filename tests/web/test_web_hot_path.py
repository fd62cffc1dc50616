"""The web server's hot path: one write per response, no watcher task for a quick answer.

Issue 10 item 10.  A whole response goes out in one ``send_all`` (one TLS record in
production); a synchronous exchange with the dispatcher runs in the request's own
task until the answer is ``WATCH_AFTER`` late (the slow case -- the client leaving
while the dispatcher works -- is tests/web/test_web.py's
``test_client_gone_during_a_slow_call_closes_the_dispatcher_link``).
"""

from __future__ import annotations

import h11
import trio
import trio.testing
from starwrs.runtime.config import Limits
from starwrs.web.http_server import HttpConnection


class CountingStream(trio.abc.Stream):
    """A stream over one end of an in-memory pair that counts ``send_all`` calls."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.sends = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.sends += 1
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_whole_response_is_one_write() -> None:
    client, server = trio.testing.memory_stream_pair()
    stream = CountingStream(server)
    http = HttpConnection(stream, Limits())
    await client.send_all(b"POST /dispatch HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    request = await http.start_cycle(trio.current_time() + 5)
    assert request is not None
    await http.read_body(10)
    await http.respond(200, [(b"content-type", b"application/x-starwrs-frame")], b"x" * 100)
    assert stream.sends == 1
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="POST", target="/dispatch", headers=[("Host", "x")]))
    conn.receive_data(await client.receive_some(65536))
    response = conn.next_event()
    assert isinstance(response, h11.Response)
    assert response.status_code == 200
    data = conn.next_event()
    assert isinstance(data, h11.Data)
    assert bytes(data.data) == b"x" * 100
    assert isinstance(conn.next_event(), h11.EndOfMessage)
    assert http.status == 200


async def test_a_head_response_is_one_write_without_body() -> None:
    client, server = trio.testing.memory_stream_pair()
    stream = CountingStream(server)
    http = HttpConnection(stream, Limits())
    await client.send_all(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await http.start_cycle(trio.current_time() + 5) is not None
    await http.respond(200, [(b"content-type", b"text/plain")], b"hello")
    assert stream.sends == 1
    raw = bytes(await client.receive_some(65536))
    assert b"content-length: 5\r\n" in raw.lower()
    assert raw.endswith(b"\r\n\r\n")
