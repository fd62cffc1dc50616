"""``starwrs bench stack``: transactions per second through the whole running system.

Theory of operation
-------------------
The benchmark starts a real ``starwrs serve --demo`` (separate processes, real TLS,
real SQLite on disk) in a temporary state directory, logs on, and drives synchronous
transactions with 1 and with 20 concurrent clients, each over its own keep-alive
HTTPS connection (trio + h11, the same code a client would use):

* ``stack GUA``  -- ``POST /dispatch`` of a ``GUA`` frame: client -> web ->
  dispatcher (session, entitlement check, serial) -> order entry proxy (parse,
  validate, one SQLite read) and back;
* ``stack echo`` -- an echo frame, answered by the dispatcher (client -> web ->
  dispatcher and back).

The baseline, measured in the same run with the same client loop and the same
request and response sizes, is a bare trio TLS echo server in its own process that
reads a request of that size and writes a response of that size: what the machine
can do with TLS and sockets alone.  Rows give transactions/s and the ratio; the
``p50``/``p99`` rows give latency in milliseconds (baseline: the bare server's).
The load generator shares the 2 cores with the servers, so it is lean, for the
stack and the bare echo alike: its TLS is :class:`~starwrs.runtime.tls.TlsStream`
(OpenSSL on the socket), a measured request is the bytes h11 makes for it, built
once (:func:`request_bytes`), and its answer is read by status line and
``Content-Length`` (:meth:`_Client.exchange`; anything else is an error).
Every measurement starts after a short unmeasured warm-up with the same clients,
so that the servers' pooled links are open (a p99 of a few seconds' run is
otherwise made of their TLS handshakes, not of the steady state).  The web server,
the dispatcher and order entry run with ``log_levels`` WARNING (:data:`LOG_LEVELS`),
as a production deployment would: the per-transaction INFO lines are for
debugging, the per-transaction figures are in the metrics.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h11
import trio
from starwrs.cli.benchkit import Result, compare
from starwrs.cli.launch import launch
from starwrs.protocol import FrameWriter
from starwrs.protocol.events import Frame
from starwrs.protocol.header import Mechanism
from starwrs.runtime.tls import AnyTls, wrap_tls

__all__ = ["run"]

COOKIE = "__Host-starwrs_session"
#: seconds every client loop runs unmeasured before the clock starts
WARMUP = 1.0
#: the hot path's services log at WARNING, as a production deployment that reads its
#: per-transaction figures from the metrics endpoints would (INFO adds one line per
#: transaction and hop; README "The stack: where the time goes")
LOG_LEVELS = tuple(
    arg
    for service in ("web", "dispatcher", "oe")
    for arg in ("--log-level", f"{service}=WARNING")
)


class _Server:
    """A ``starwrs serve`` subprocess (see :mod:`starwrs.cli.launch`)."""

    def __init__(self, state: Path, *extra: str) -> None:
        self.launched = launch(state, *extra)
        self.state = state
        self.url = self.launched.url
        self.host, self.port = self.launched.host, self.launched.port

    def stop(self) -> None:
        self.launched.stop()


def request_bytes(path: str, body: bytes, headers: list[tuple[str, str]]) -> bytes:
    """A whole ``POST`` with a ``Content-Length``, as h11 writes it (:meth:`_Client.exchange`)."""
    conn = h11.Connection(h11.CLIENT)
    data = conn.send(
        h11.Request(
            method="POST",
            target=path,
            headers=[("Host", "localhost"), ("Content-Length", str(len(body))), *headers],
        )
    )
    return data + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())


class _Client:
    """One keep-alive HTTPS connection: h11 (:meth:`post`) or prebuilt bytes (:meth:`exchange`)."""

    def __init__(self, stream: AnyTls) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)
        self._buffer = b""

    @classmethod
    async def connect(cls, host: str, port: int, context: ssl.SSLContext) -> _Client:
        tcp = await trio.open_tcp_stream(host, port)
        stream = wrap_tls(tcp, context, server_hostname="localhost")
        await stream.do_handshake()
        return cls(stream)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send *request* (from :func:`request_bytes`); return the answer's status and body.

        The load generator's lean path: the answer must be a keep-alive response
        with a ``Content-Length`` (as ``/dispatch`` answers); anything else raises.
        Not to be mixed with :meth:`post` on one connection.
        """
        stream = self.stream
        await stream.send_all(request)
        data = self._buffer
        while (end := data.find(b"\r\n\r\n")) < 0:
            data += await self._receive()
        head = data[:end].lower()
        status = int(head[9:12])
        at = head.find(b"\r\ncontent-length:")
        if at < 0 or b"\r\ntransfer-encoding:" in head or b"\r\nconnection: close" in head:
            raise RuntimeError(f"unexpected answer head: {head[:200]!r}")
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
        stop = end + 4 + length
        while len(data) < stop:
            data += await self._receive()
        self._buffer = data[stop:]
        return status, data[end + 4 : stop]

    async def _receive(self) -> bytes:
        data = await self.stream.receive_some(65536)
        if not data:
            raise RuntimeError("server closed the connection")
        return bytes(data)  # already bytes from a TlsStream (no copy)

    async def post(
        self, path: str, body: bytes, headers: list[tuple[str, str]]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        conn = self.conn
        data = conn.send(
            h11.Request(
                method="POST",
                target=path,
                headers=[("Host", "localhost"), ("Content-Length", str(len(body))), *headers],
            )
        )
        data += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
        await self.stream.send_all(data)
        status = 0
        response_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(bytes(await self.stream.receive_some(65536)))
            elif isinstance(event, h11.Response):
                status = event.status_code
                response_headers = list(event.headers)
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                conn.start_next_cycle()
                return status, response_headers, b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed):
                raise RuntimeError("server closed the connection")

    async def aclose(self) -> None:
        await self.stream.aclose()


async def _logon(server: _Server, context: ssl.SSLContext, user: str, password: str) -> str:
    client = await _Client.connect(server.host, server.port, context)
    try:
        body = json.dumps({"user": user, "password": password}).encode()
        status, headers, _ = await client.post(
            "/logon", body, [("Content-Type", "application/json")]
        )
        if status != 200:
            raise RuntimeError(f"logon failed: HTTP {status}")
        for name, value in headers:
            if name.lower() == b"set-cookie" and value.startswith(COOKIE.encode()):
                return value.split(b";", 1)[0].split(b"=", 1)[1].decode()
        raise RuntimeError("no session cookie")
    finally:
        await client.aclose()


async def _drive(
    host: str,
    port: int,
    context: ssl.SSLContext,
    clients: int,
    seconds: float,
    transact: object,
) -> tuple[float, list[float]]:
    """Run *clients* concurrent loops for *seconds*; return (tx/s, latencies in s).

    The loops first run for :data:`WARMUP` seconds unmeasured, so the connections
    behind the server (its pooled links, each a TLS handshake) are made before the
    clock starts -- for the stack and for the bare echo alike.
    """
    conns = [await _Client.connect(host, port, context) for _ in range(clients)]
    warm_until = trio.current_time() + min(WARMUP, seconds / 4)

    async def warm(client: _Client) -> None:
        while trio.current_time() < warm_until:
            await transact(client)  # type: ignore[operator]

    async with trio.open_nursery() as nursery:
        for client in conns:
            nursery.start_soon(warm, client)
    latencies: list[float] = []
    count = 0
    deadline = trio.current_time() + seconds

    async def loop(client: _Client) -> None:
        nonlocal count
        while trio.current_time() < deadline:
            start = time.perf_counter()
            await transact(client)  # type: ignore[operator]
            latencies.append(time.perf_counter() - start)
            count += 1

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for client in conns:
            nursery.start_soon(loop, client)
    elapsed = time.perf_counter() - started
    for client in conns:
        await client.aclose()
    return count / elapsed, latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def _echo_server(port: int, cert: str, key: str, request_size: int, reply: bytes) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def handle(stream: trio.SSLStream[trio.SocketStream]) -> None:
        pending = 0
        try:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return
                pending += len(data)
                while pending >= request_size:
                    pending -= request_size
                    await stream.send_all(reply)
        except (trio.BrokenResourceError, ssl.SSLError):
            return

    listeners = await trio.open_ssl_over_tcp_listeners(port, context, host="127.0.0.1")
    await trio.serve_listeners(handle, listeners)


async def _measure(quick: bool) -> list[Result]:
    seconds = 1.5 if quick else 6.0
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="starwrs-bench-") as tmp:
        state = Path(tmp) / "state"
        server = _Server(state, *LOG_LEVELS)
        try:
            context = ssl.create_default_context(cafile=str(state / "ca.pem"))
            users = json.loads((state / "demo-credentials.json").read_text())["users"]
            cookie = await _logon(server, context, "jeanvnet2", users["jeanvnet2"]["password"])
            headers = [
                ("Content-Type", "application/x-starwrs-frame"),
                ("Cookie", f"{COOKIE}={cookie}"),
            ]
            bodies = {
                "GUA": FrameWriter().send(
                    Frame.build(Mechanism.SYNC, "OE", b"GUA<USERID=jeanvnet2>")
                ),
                "echo": FrameWriter().send(Frame.build(Mechanism.SYNC, "OE", echo=1)),
            }
            for name, body in bodies.items():
                probe = await _Client.connect(server.host, server.port, context)
                status, _, answer = await probe.post("/dispatch", body, headers)
                await probe.aclose()
                if status != 200:
                    raise RuntimeError(f"{name}: HTTP {status}")
                # the same sizes over bare TLS: the request as the client sends it
                request = request_bytes("/dispatch", body, headers)
                request_size = len(request)
                reply = b"x" * (len(answer) + 160)  # the answer plus a typical response head
                echo_port = _free_port()
                echo = subprocess.Popen(  # noqa: ASYNC220 - a helper process, started once
                    [
                        sys.executable,
                        "-m",
                        "starwrs.cli.bench_stack",
                        "--echo-server",
                        str(echo_port),
                        str(state / "server.pem"),
                        str(state / "server-key.pem"),
                        str(request_size),
                        str(len(reply)),
                    ],
                )
                try:
                    await _wait_port(echo_port)
                    raw = b"\0" * request_size

                    for clients in (1, 20):

                        async def ours(client: _Client, request: bytes = request) -> None:
                            status, _ = await client.exchange(request)
                            if status != 200:
                                raise RuntimeError(f"HTTP {status}")

                        async def bare(
                            client: _Client, raw: bytes = raw, reply: bytes = reply
                        ) -> None:
                            await client.stream.send_all(raw)
                            got = 0
                            while got < len(reply):
                                got += len(await client.stream.receive_some(65536))

                        rate, lat = await _drive(
                            server.host, server.port, context, clients, seconds, ours
                        )
                        base, base_lat = await _drive(
                            "127.0.0.1", echo_port, context, clients, seconds, bare
                        )
                        label = f"stack {name} x{clients}"
                        results.append(compare(label, rate, "tx/s", "bare TLS echo", base))
                        results.append(
                            compare(
                                f"{label} p50",
                                _pct(lat, 0.5),
                                "ms",
                                "bare TLS echo p50",
                                _pct(base_lat, 0.5),
                            )
                        )
                        results.append(
                            compare(
                                f"{label} p99",
                                _pct(lat, 0.99),
                                "ms",
                                "bare TLS echo p99",
                                _pct(base_lat, 0.99),
                            )
                        )
                finally:
                    echo.terminate()
                    echo.wait(10)
        finally:
            server.stop()
    return results


def _free_port() -> int:
    from starwrs.runtime.config import free_port

    return free_port()


async def _wait_port(port: int) -> None:
    with trio.fail_after(30):
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.05)
                continue
            await stream.aclose()
            return


def run(quick: bool = False) -> list[Result]:
    """Run the stack benchmark (starts and stops its own system)."""
    return trio.run(_measure, quick)


if __name__ == "__main__":  # the bare TLS echo server of the baseline
    if len(sys.argv) == 7 and sys.argv[1] == "--echo-server":
        _, _, port, cert, key, size, reply_size = sys.argv
        trio.run(_echo_server, int(port), cert, key, int(size), b"y" * int(reply_size))
