"""The dispatcher with the real order entry proxy (demo data): logon, ENTC after admin changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import trio
from starwrs.dispatcher.server import serve_dispatcher
from starwrs.fixtures.demo import load_demo
from starwrs.grammar import parse
from starwrs.protocol import Request, Response
from starwrs.proxies.oe.server import serve_oe
from starwrs.proxies.oe.store import open_order_entry
from starwrs.runtime.channel import open_tls_channel
from starwrs.runtime.config import Address, Deployment, Limits, free_port
from starwrs.runtime.pki import Pki, ensure_pki

from .helpers import AppBehaviour, ProxyDouble


@dataclass
class System:
    deployment: Deployment
    pki: Pki
    passwords: dict[str, str]
    rm: ProxyDouble

    async def call(
        self, target: str, text: str, key: str = "", *, to: str = "dispatcher"
    ) -> Response:
        if to == "dispatcher":
            address, cert = self.deployment.dispatchers[0], "web"
        else:
            address, cert = self.deployment.proxies["OE"], "admin"
        channel = await open_tls_channel(
            address.host, address.port, self.pki.internal_client_context(cert), server_hostname=to
        )
        async with channel:
            await channel.send(Request(target, text.encode(), key))
            answer = await channel.receive()
        assert isinstance(answer, Response)
        return answer

    async def logon(self, user: str) -> str:
        answer = await self.call("DSP", f"LON<USERID={user},PASSWORD={self.passwords[user]}>")
        assert answer.status == 0, answer
        key = parse(answer.payload.decode()).get("SESSION")
        assert isinstance(key, str)
        return key


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[System]:
    pki = ensure_pki(tmp_path)
    async with open_order_entry(tmp_path / "oe.db") as store:
        passwords = await load_demo(store, tmp_path)
    rm = ProxyDouble("rm", AppBehaviour())
    async with trio.open_nursery() as nursery:
        rm_port = await nursery.start(rm.serve, pki.internal_server_context("rm"))
        deployment = Deployment(
            state_dir=tmp_path,
            web=Address("127.0.0.1", free_port()),
            dispatchers=(Address("127.0.0.1", free_port()),),
            proxies={"OE": Address("127.0.0.1", free_port()), "RM": Address("127.0.0.1", rm_port)},
            limits=Limits(proxy_timeout=10.0, read_timeout=10.0),
        )
        deployment.save()
        await nursery.start(partial(serve_oe, deployment))
        await nursery.start(partial(serve_dispatcher, deployment))
        yield System(deployment, pki, passwords, rm)
        nursery.cancel_scope.cancel()


async def test_demo_user_logs_on_and_reaches_rm(system: System) -> None:
    answer = await system.call(
        "DSP", f"LON<USERID=jeanvnet2,PASSWORD={system.passwords['jeanvnet2']}>"
    )
    lona = parse(answer.payload.decode())
    assert (answer.status, lona.acronym, lona.get("ENTPID")) == (0, "LONA", "00022924")
    assert "RM" in answer.payload.decode()
    key = lona.get("SESSION")
    assert isinstance(key, str)
    assert (await system.call("RM", "GRTL<PRODUCT=V>", key)).status == 0
    assert system.rm.requests[0].key == "jeanvnet2@00022924"


async def test_wrong_password_and_disabled_user_get_6115(system: System) -> None:
    wrong = await system.call("DSP", "LON<USERID=jeanvnet2,PASSWORD=wrong>")
    disabled = await system.call(
        "DSP", f"LON<USERID=jeanvnet1,PASSWORD={system.passwords['jeanvnet1']}>"
    )
    assert (
        (wrong.status, wrong.payload)
        == (disabled.status, disabled.payload)
        == (
            6115,
            b"LONA<ERROR=6115>",
        )
    )


async def test_an_admin_change_in_order_entry_applies_from_the_next_request(
    system: System,
) -> None:
    dorod, jean = await system.logon("dorod"), await system.logon("jeanvnet2")
    assert (await system.call("RM", "GRTL<>", dorod)).status == 0

    taken = await system.call("OE", "UAPP<USERID=dorod,APPS=<INBX~OE>>", to="oe")
    assert taken.status == 0, taken
    assert (await system.call("RM", "GRTL<>", dorod)).status == 7003

    disabled = await system.call("OE", "UENB<USERID=jeanvnet2,ENABLED=0>", to="oe")
    assert disabled.status == 0, disabled
    assert (await system.call("RM", "GRTL<>", jean)).status == 7004
