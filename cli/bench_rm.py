"""``starwrs bench rm``: Report Manager answers per second, alone and through the stack.

Rows (20 concurrent clients for the stack rows):

* ``rm GURL (proxy alone)`` / ``rm GURD (proxy alone)`` -- the proxy's request path
  in-process (parse, validate, entitlements, SQLite, answer), no sockets;
* ``rm GURL (stack)`` / ``rm GURD (stack)`` -- client -> web -> dispatcher -> RM over
  HTTPS and mutual TLS, the way ``starwrs client`` does it.

The baseline of every row is the stack's echo rate (client -> web -> dispatcher and
back) measured in the same run: how much of the stack's own cost the Report Manager
adds.
"""

from __future__ import annotations

import json
import ssl
import tempfile
import time
from pathlib import Path

import trio
from starwrs.cli.bench_stack import COOKIE, _Client, _drive, _logon, _Server
from starwrs.cli.benchkit import Result, compare
from starwrs.grammar import parse
from starwrs.grammar.seed import seed_text
from starwrs.protocol import FrameWriter
from starwrs.protocol.events import Frame
from starwrs.protocol.header import Mechanism
from starwrs.proxies.framework import Caller
from starwrs.proxies.oe.store import open_order_entry
from starwrs.proxies.rm.server import make_rm_proxy
from starwrs.proxies.rm.store import open_report_store

__all__ = ["run"]

USER = "jeanvnet2"


async def _alone(state: Path, seconds: float, gurl: bytes, gurd: bytes) -> dict[str, float]:
    rates: dict[str, float] = {}
    async with open_order_entry(state / "oe.db") as oe, open_report_store(state / "rm.db") as rm:
        proxy = make_rm_proxy(rm, oe)
        caller = Caller(USER, "00022924")
        for name, payload in (("GURL", gurl), ("GURD", gurd)):
            count = 0
            start = time.perf_counter()
            while time.perf_counter() - start < seconds:
                status, _ = await proxy.handle(caller, payload)
                if status != 0:
                    raise RuntimeError(f"{name}: status {status}")
                count += 1
            rates[name] = count / (time.perf_counter() - start)
    return rates


async def _measure(quick: bool) -> list[Result]:
    seconds = 1.5 if quick else 5.0
    with tempfile.TemporaryDirectory(prefix="starwrs-bench-") as tmp:
        state = Path(tmp) / "state"
        server = _Server(state)
        try:
            context = ssl.create_default_context(cafile=str(state / "ca.pem"))
            users = json.loads((state / "demo-credentials.json").read_text())["users"]
            cookie = await _logon(server, context, USER, users[USER]["password"])
            headers = [
                ("Content-Type", "application/x-starwrs-frame"),
                ("Cookie", f"{COOKIE}={cookie}"),
            ]

            def frame(payload: bytes, echo: int = 0) -> bytes:
                return FrameWriter().send(Frame.build(Mechanism.SYNC, "RM", payload, echo=echo))

            # one saved report to read back: the seed's own ARD
            client = await _Client.connect(server.host, server.port, context)
            _, _, body = await client.post(
                "/dispatch", frame(seed_text("07_ard.txt").encode()), headers
            )
            await client.aclose()
            answer = parse(body[24:].decode())
            report_id = answer.get("USERRPTID")
            if not isinstance(report_id, str):
                raise RuntimeError(f"ARD failed: {body[24:]!r}")  # noqa: TRY004
            gurl = f"GURL<USERID={USER},RPTTMPID=90,ENTPID=00022924,PRODUCT=S,DATA CAT=P>".encode()
            gurd = f"GURD<REPORTID={report_id}>".encode()
            alone = await _alone(state, seconds, gurl, gurd)
            rates: dict[str, float] = {}
            for name, body in (
                ("echo", frame(b"", echo=1)),
                ("GURL", frame(gurl)),
                ("GURD", frame(gurd)),
            ):

                async def transact(client: _Client, body: bytes = body) -> None:
                    status, _, answer = await client.post("/dispatch", body, headers)
                    if status != 200 or answer[16:20] != b"\0\0\0\0":
                        raise RuntimeError(f"HTTP {status}, answer {answer[:64]!r}")

                rates[name], _ = await _drive(
                    server.host, server.port, context, 20, seconds, transact
                )
        finally:
            server.stop()
    echo = rates["echo"]
    return [
        compare("rm GURL (proxy alone)", alone["GURL"], "req/s", "stack echo x20", echo),
        compare("rm GURD (proxy alone)", alone["GURD"], "req/s", "stack echo x20", echo),
        compare("rm GURL (stack x20)", rates["GURL"], "req/s", "stack echo x20", echo),
        compare("rm GURD (stack x20)", rates["GURD"], "req/s", "stack echo x20", echo),
    ]


def run(quick: bool = False) -> list[Result]:
    """Run the Report Manager benchmark (starts and stops its own system)."""
    return trio.run(_measure, quick)
