"""``starwrs bench stack``'s lean load generator: it reads what h11 writes, however split.

The measured loop sends a request built once by h11 (:func:`request_bytes`) and reads
the answer by status line and ``Content-Length`` (:meth:`_Client.exchange`); these
tests hold it to the answers an h11 server writes, split at any points, and to
refusing the answers it does not handle (chunked, ``Connection: close``).
"""

from __future__ import annotations

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starwrs.cli.bench_stack import _Client, request_bytes

HEADERS = [("Content-Type", "application/x-starwrs-frame"), ("Cookie", "s=abc")]


class _Wire:
    """A stream whose reads return *data* in pieces of the given sizes."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data = data
        self.sizes = sizes
        self.sent = b""

    async def send_all(self, data: bytes) -> None:
        self.sent += data

    async def receive_some(self, max_bytes: int) -> bytes:
        size = self.sizes.pop(0) if self.sizes else len(self.data)
        piece, self.data = self.data[: min(size, max_bytes)], self.data[min(size, max_bytes) :]
        return piece


def _answers(request: bytes, answers: list[tuple[int, bytes, list[tuple[str, str]]]]) -> bytes:
    """What an h11 server writes for *answers* to as many copies of *request*."""
    server = h11.Connection(h11.SERVER)
    out = b""
    for status, body, extra in answers:
        server.receive_data(request)
        while server.next_event() is not h11.NEED_DATA and server.their_state is not h11.DONE:
            pass
        headers = [("Content-Length", str(len(body))), ("Date", "x"), *extra]
        out += server.send(h11.Response(status_code=status, headers=headers))
        out += server.send(h11.Data(data=body)) + server.send(h11.EndOfMessage())
        server.start_next_cycle()
    return out


def test_the_request_is_what_h11_sends() -> None:
    body = b"\x00frame"
    client = h11.Connection(h11.CLIENT)
    expected = client.send(
        h11.Request(
            method="POST",
            target="/dispatch",
            headers=[("Host", "localhost"), ("Content-Length", "6"), *HEADERS],
        )
    )
    expected += client.send(h11.Data(data=body)) + client.send(h11.EndOfMessage())
    assert request_bytes("/dispatch", body, HEADERS) == expected


@given(
    answers=st.lists(
        st.tuples(
            st.sampled_from([200, 401, 404, 502]),
            st.binary(max_size=300),
            st.lists(
                st.tuples(st.sampled_from(["X-A", "Server", "Cache-Control"]), st.just("v")),
                max_size=3,
            ),
        ),
        min_size=1,
        max_size=4,
    ),
    sizes=st.lists(st.integers(1, 200), max_size=40),
)
async def test_exchange_reads_every_answer_however_split(
    answers: list[tuple[int, bytes, list[tuple[str, str]]]], sizes: list[int]
) -> None:
    request = request_bytes("/dispatch", b"frame", HEADERS)
    wire = _Wire(_answers(request, answers), sizes)
    client = _Client(wire)  # type: ignore[arg-type]
    for status, body, _extra in answers:
        assert await client.exchange(request) == (status, body)
    assert wire.sent == request * len(answers)
    assert wire.data == b""
    assert client._buffer == b""


@pytest.mark.parametrize(
    "extra",
    [[("Transfer-Encoding", "chunked")], [("Connection", "close")]],
)
async def test_exchange_refuses_what_it_does_not_read(extra: list[tuple[str, str]]) -> None:
    server = h11.Connection(h11.SERVER)
    request = request_bytes("/dispatch", b"frame", HEADERS)
    server.receive_data(request)
    while server.next_event() is not h11.NEED_DATA and server.their_state is not h11.DONE:
        pass
    head = server.send(h11.Response(status_code=200, headers=extra))
    client = _Client(_Wire(head + b"0\r\n\r\n", []))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="unexpected answer head"):
        await client.exchange(request)


async def test_exchange_says_when_the_server_closed() -> None:
    client = _Client(_Wire(b"HTTP/1.1 200 OK\r\n", []))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="closed"):
        await client.exchange(b"x")
