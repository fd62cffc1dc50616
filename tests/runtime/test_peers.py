"""runtime/peers.py: the peer table, and every listener built on the proxy framework
enforcing it -- real TLS on loopback with the deployment's own certificates.

The dispatcher's rows are tested against real dispatchers in
tests/dispatcher/test_peers.py; order entry's and the Report Manager's message
rows against the real proxies in tests/proxies/.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import trio
from starwrs.protocol import ConnectionClosed, Echo, EchoReply, Request, Response
from starwrs.proxies.framework import Proxy, serve_proxy
from starwrs.runtime import peers
from starwrs.runtime.channel import FrameChannel, PeerGone, open_tls_channel
from starwrs.runtime.config import Address, Limits
from starwrs.runtime.pki import SERVICE_NAMES, Pki, ensure_pki

#: what issue 10 asks for, written out once more by hand: (caller, service)
EXPECTED = {
    ("web", "dispatcher"),
    ("oe", "dispatcher"),
    ("admin", "dispatcher"),
    *(("dispatcher", proxy) for proxy in ("oe", "rm", "rs", "inbox", "dss", "harvest")),
    *(("admin", s) for s in ("oe", "arbitrator", "dss", "inbox", "harvest")),
    ("rm", "rs"),
    ("rm", "arbitrator"),
    ("rs", "arbitrator"),
    ("arbitrator", "dss"),
    ("rm", "inbox"),
    ("dss", "oe"),
    ("dss", "rm"),
    ("rs", "rm"),  # failure NRLs of parked requests (issue 12)
    ("arbitrator", "rm"),
    ("dss", "inbox"),
    ("inbox", "oe"),  # notification defaults (issue 12)
    ("harvest", "dss"),  # LOAD of priced calls (issue 15)
    ("harvest", "oe"),  # GEU: who gets the news of rejected records
    ("harvest", "inbox"),  # A: that news
}
#: every certificate name: today's, and the two services still to come
NAMES = sorted({*SERVICE_NAMES, "arbitrator", "harvest"})
#: the listeners built on the proxy framework (all but the dispatcher)
PROXY_SERVICES = sorted(peers.services() - {"dispatcher", "web", "admin"})


def test_the_table_is_the_issues_table() -> None:
    assert {(g.caller, g.service) for g in peers.GRANTS} == EXPECTED
    assert peers.services() <= set(NAMES)


def test_the_web_servers_certificate_reaches_the_dispatcher_only() -> None:
    assert {g.service for g in peers.GRANTS if g.caller == "web"} == {"dispatcher"}
    # a collector's batch reaches the harvest through the dispatcher, as CDRB puts only
    assert peers.allows("dispatcher", "harvest", "CDRB")
    assert not peers.allows("dispatcher", "harvest", "LOAD")
    assert peers.callers_of("rm") == {"dispatcher", "dss", "rs", "arbitrator"}
    assert peers.callers_of("oe") == {"dispatcher", "admin", "dss", "inbox", "harvest"}
    assert peers.grant_for(None, "dispatcher") is None
    assert peers.grant_for("nobody", "dispatcher") is None


@pytest.mark.parametrize(
    ("caller", "service", "acronym", "allowed"),
    [
        ("admin", "oe", "UAPP", True),
        ("admin", "oe", "UENB", True),
        ("admin", "oe", "GUA", True),  # apps --add/--remove read the current list
        ("admin", "oe", "VU", False),
        ("dispatcher", "oe", "VU", True),
        ("dispatcher", "oe", "GUA", True),
        ("dispatcher", "oe", "UAPP", False),  # admin messages from admin only
        ("dispatcher", "oe", "UENB", False),
        ("dss", "oe", "GUA", True),
        ("dss", "oe", "VU", False),  # password checks are the logon flow's
        ("web", "dispatcher", "LON", True),
        ("web", "dispatcher", "LOFF", True),
        ("web", "dispatcher", "ENTC", False),
        ("oe", "dispatcher", "ENTC", True),
        ("oe", "dispatcher", "LON", False),
        ("admin", "dispatcher", "ENTC", True),
        ("admin", "dispatcher", "LOFF", False),
        ("web", "rm", "GRTL", False),  # no row at all
        (None, "oe", "GUA", False),
    ],
)
def test_messages(caller: str | None, service: str, acronym: str, allowed: bool) -> None:
    assert peers.allows(caller, service, acronym) is allowed


def test_targets() -> None:
    oe = peers.grant_for("oe", "dispatcher")
    web = peers.grant_for("web", "dispatcher")
    assert oe is not None
    assert web is not None
    assert oe.allows_target("DSP")
    assert not oe.allows_target("RM")
    assert web.allows_target("RM")
    assert web.allows_target("DSP")
    assert peers.senders_of("dispatcher", "ENTC") == {"oe", "admin"}
    assert peers.senders_of("oe", "UAPP") == {"admin"}


# -- every framework listener, every certificate, real TLS on loopback --------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("state"), services=NAMES)


@pytest.fixture
async def listener(pki: Pki, request: pytest.FixtureRequest) -> AsyncIterator[Address]:
    service: str = request.param
    proxy = Proxy(service.upper()[:4], name=service)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            serve_proxy,
            proxy,
            Address("127.0.0.1", 0),
            pki.internal_server_context(service),
            Limits(connect_timeout=5.0),
        )
        yield Address("127.0.0.1", listeners[0].socket.getsockname()[1])
        nursery.cancel_scope.cancel()


async def connect(pki: Pki, address: Address, caller: str, service: str) -> FrameChannel:
    return await open_tls_channel(
        address.host, address.port, pki.internal_client_context(caller), server_hostname=service
    )


async def echo_or_refusal(channel: FrameChannel, target: str) -> EchoReply | Response:
    await channel.send(Echo(target))
    with trio.fail_after(10):
        answer = await channel.receive()
    assert isinstance(answer, EchoReply | Response), answer
    return answer


@pytest.mark.parametrize("listener", PROXY_SERVICES, indirect=True)
async def test_every_certificate_against_a_framework_listener(
    pki: Pki, listener: Address, request: pytest.FixtureRequest
) -> None:
    service = request.node.callspec.params["listener"]
    for caller in NAMES:
        async with await connect(pki, listener, caller, service) as channel:
            answer = await echo_or_refusal(channel, service.upper()[:4])
            if (caller, service) in EXPECTED:
                assert isinstance(answer, EchoReply), (caller, service, answer)
                await channel.send(Echo("X"))  # and the connection goes on
                assert isinstance(await channel.receive(), EchoReply)
            else:
                assert isinstance(answer, Response), (caller, service)
                assert answer.status == 7003
                assert answer.payload == peers.REFUSAL
                with trio.fail_after(10):  # then closed
                    try:
                        closed = await channel.receive()
                    except PeerGone:
                        closed = ConnectionClosed()
                assert isinstance(closed, ConnectionClosed)


@pytest.mark.parametrize("listener", ["rm"], indirect=True)
async def test_a_refused_request_is_answered_in_its_exchange_and_logged(
    pki: Pki, listener: Address, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="starwrs.peers")
    async with await connect(pki, listener, "web", "rm") as channel:
        await channel.send(Request("RM", b"GURD<REPORTID=1>", "jeanvnet2@00022924", serial=77))
        with trio.fail_after(10):
            answer = await channel.receive()
    assert answer == Response(7003, peers.REFUSAL, 77)
    [line] = [r.getMessage() for r in caplog.records if r.name == "starwrs.peers"]
    assert line.startswith("refused peer=web service=rm")


def test_rows_name_known_certificates_only() -> None:
    for grant in peers.GRANTS:
        assert grant.caller in NAMES
        assert grant.service in NAMES
        assert grant.caller != grant.service
