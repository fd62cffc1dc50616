"""The dispatcher's rows of the peer table (runtime/peers.py), every certificate of the
deployment against a real dispatcher on loopback (mutual TLS, SQLite, proxy doubles)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from starwrs.grammar import parse
from starwrs.protocol import ConnectionClosed, Echo, EchoReply, Request, Response, Submit, Ticket
from starwrs.runtime import peers
from starwrs.runtime.channel import FrameChannel, PeerGone, open_tls_channel
from starwrs.runtime.pki import SERVICE_NAMES, Pki, ensure_pki

from .helpers import Stack, running_stack, text

NAMES = sorted({*SERVICE_NAMES, "arbitrator", "harvest"})
REFUSED = sorted(set(NAMES) - {"web", "oe", "admin"})


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[Stack, Pki]]:
    every = ensure_pki(tmp_path, services=NAMES)  # the same CA running_stack then uses
    async with running_stack(tmp_path) as running:
        yield running, every


async def connect(stack: Stack, pki: Pki, cert: str) -> FrameChannel:
    address = stack.deployment.dispatchers[0]
    return await open_tls_channel(
        address.host,
        address.port,
        pki.internal_client_context(cert),
        server_hostname="dispatcher",
        read_timeout=10,
    )


async def exchange(stack: Stack, pki: Pki, cert: str, event: Request | Submit | Echo) -> object:
    async with await connect(stack, pki, cert) as channel:
        await channel.send(event)
        return await channel.receive()


def test_the_dispatchers_callers() -> None:
    assert peers.callers_of("dispatcher") == {"web", "oe", "admin"}


async def test_the_web_server_reaches_every_target(stack: tuple[Stack, Pki]) -> None:
    running, pki = stack
    key = await running.logon()
    answer = await exchange(running, pki, "web", Request("RM", b"GRTL<>", key))
    assert isinstance(answer, Response)
    assert answer.status == 0
    answer = await exchange(running, pki, "web", Request("DSP", b"LOFF<>", key))
    assert isinstance(answer, Response)
    assert (answer.status, text(answer)) == (0, "LOFA<ERROR=0>")


@pytest.mark.parametrize("cert", ["oe", "admin"])
async def test_order_entry_and_admin_reach_dsp_with_entc_only(
    stack: tuple[Stack, Pki], cert: str
) -> None:
    running, pki = stack
    key = await running.logon()
    answer = await exchange(running, pki, cert, Request("DSP", b"ENTC<USERID=jean>"))
    assert isinstance(answer, Response)
    assert (answer.status, text(answer)) == (0, "ENTA<ERROR=0>")
    # a session key is no way past the table: not RM, not asynchronously, not LON
    for event in (Request("RM", b"GRTL<>", key), Submit("RM", b"GRTL<>", key)):
        answer = await exchange(running, pki, cert, event)
        assert isinstance(answer, Response), answer
        assert answer.status == 7003
        assert "may not address RM" in str(parse(text(answer)).get("REASON"))
    answer = await exchange(running, pki, cert, Request("DSP", b"LON<USERID=jean,PASSWORD=secret>"))
    assert isinstance(answer, Response)
    assert (answer.status, text(answer)) == (7003, "LONA<ERROR=7003>")
    assert running.doubles["RM"].requests == []
    assert [a for a, _, _ in running.oe.asked].count("VU") == 1  # the test's own logon
    # the connection itself goes on after a refused synchronous request
    async with await connect(running, pki, cert) as channel:
        await channel.send(Request("RM", b"GRTL<>", key))
        assert isinstance(refused := await channel.receive(), Response)
        assert refused.status == 7003
        await channel.send(Echo("RM"))
        assert isinstance(await channel.receive(), EchoReply)


@pytest.mark.parametrize("cert", REFUSED)
async def test_every_other_certificate_is_refused_at_once(
    stack: tuple[Stack, Pki], cert: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="starwrs.peers")
    running, pki = stack
    key = await running.logon()
    async with await connect(running, pki, cert) as channel:
        await channel.send(Request("RM", b"GRTL<>", key, serial=5))
        answer = await channel.receive()
        assert answer == Response(7003, peers.REFUSAL, 5)
        try:
            closed = await channel.receive()
        except PeerGone:
            closed = ConnectionClosed()
        assert isinstance(closed, ConnectionClosed)
    assert running.doubles["RM"].requests == []
    lines = [r.getMessage() for r in caplog.records if r.name == "starwrs.peers"]
    assert lines == [f"refused peer={cert} service=dispatcher: no row in the peer table"]


async def test_a_refused_submit_gets_no_ticket(stack: tuple[Stack, Pki]) -> None:
    running, pki = stack
    key = await running.logon()
    answer = await exchange(running, pki, "rm", Submit("RM", b"GRTL<>", key))
    assert not isinstance(answer, Ticket)
    assert isinstance(answer, Response)
    assert answer.status == 7003


async def test_refusals_do_not_disturb_the_allowed(stack: tuple[Stack, Pki]) -> None:
    running, pki = stack
    key = await running.logon()
    results: list[int] = []

    async def refused(cert: str) -> None:
        answer = await exchange(running, pki, cert, Request("RM", b"GRTL<>", key))
        assert isinstance(answer, Response)
        results.append(answer.status)

    async with trio.open_nursery() as nursery:
        for cert in REFUSED:
            nursery.start_soon(refused, cert)
        answer = await exchange(running, pki, "web", Request("RM", b"GRTL<>", key))
    assert isinstance(answer, Response)
    assert answer.status == 0
    assert results == [7003] * len(REFUSED)
