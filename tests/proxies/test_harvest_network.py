"""The harvest's network path: a ``CDRB`` bulk put on its real proxy listener (mutual TLS,
the peer table), as the dispatcher relays it for a collector's logged-on user.  The put
carries the same sealed e-mail the SMTP path sends; the answer is a ``CDRA``.  A batch
signed for another enterprise than the user's, a tampered one, one too large, one put by
an internal caller or by a certificate with no row are refused and load nothing; the same
batch twice is applied once, whichever path it came by.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
from starwrs.collector import batch as batches
from starwrs.grammar import Message, parse
from starwrs.protocol import BulkPut, Response
from starwrs.proxies.harvest.server import make_harvest_proxy
from starwrs.runtime.config import Address, Limits
from starwrs.runtime.pki import ensure_pki
from starwrs.runtime.pool import ProxyPool
from starwrs.runtime.transfer import upload

from .harvest_rig import (
    ENTP,
    OTHER_ENTP,
    Keys,
    Rig,
    entity,
    make_keys,
    master_csv,
    running_harvest,
    seal,
)

COLLECTOR_USER = f"pbxcollector@{ENTP}"


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


@dataclass
class Net:
    rig: Rig
    address: Address
    tmp: Path

    async def put(
        self, message: bytes, *, key: str = COLLECTOR_USER, cert: str = "dispatcher",
        batch: str = "x" * 32,
    ) -> tuple[int, Message]:  # fmt: skip
        pki = ensure_pki(self.rig.state)
        pool = ProxyPool({"HARV": self.address}, pki.internal_client_context(cert), Limits())
        path = self.tmp / "batch.eml"
        path.write_bytes(message)
        try:
            channel = await pool.connect("HARV")
            async with channel:
                answer = await upload(channel, f"CDRB<BATCH={batch}>", path, target="HARV", key=key)
        finally:
            await pool.aclose()
        assert isinstance(answer, Response)
        return answer.status, parse(answer.payload.decode("utf-8"))

    async def announce(
        self, size: int, *, key: str = COLLECTOR_USER, cert: str = "dispatcher"
    ) -> int:
        """Only the put frame: the status of an answer that comes before any data."""
        pki = ensure_pki(self.rig.state)
        pool = ProxyPool({"HARV": self.address}, pki.internal_client_context(cert), Limits())
        try:
            channel = await pool.connect("HARV")
            async with channel:
                await channel.send(BulkPut("CDRB<>", size, "0" * 64, target="HARV", key=key))
                with trio.fail_after(30):
                    answer = await channel.receive()
        finally:
            await pool.aclose()
        assert isinstance(answer, Response)
        return answer.status


@pytest.fixture
async def net(tmp_path: Path, keys: Keys) -> AsyncIterator[Net]:
    from starwrs.proxies.framework import serve_proxy

    async with running_harvest(tmp_path, keys) as rig, trio.open_nursery() as nursery:
        pki = ensure_pki(rig.state)
        proxy = make_harvest_proxy(rig.harvest, max_message=1024 * 1024)
        listeners = await nursery.start(
            serve_proxy,
            proxy,
            Address("127.0.0.1", 0),
            pki.internal_server_context("harvest"),
            Limits(),
        )
        host, port = listeners[0].socket.getsockname()[:2]
        yield Net(rig, Address(host, port), tmp_path)
        nursery.cancel_scope.cancel()


def sealed(rig: Rig, n: int = 5, **kw: object) -> tuple[bytes, str]:
    content = entity(master_csv(n), **kw)  # type: ignore[arg-type]
    return seal(content, rig.keys.collector, rig.keys.harvest.cert), batches.parse(content).batch_id


async def test_a_batch_put_by_the_collectors_user_is_taken_and_loaded(net: Net) -> None:
    message, batch_id = sealed(net.rig)
    status, answer = await net.put(message, batch=batch_id)
    assert status == 0, answer
    assert answer.acronym == "CDRA"
    assert (answer.get("ERROR"), answer.get("RESULT"), answer.get("BATCH")) == (
        "0", "accepted", batch_id,
    )  # fmt: skip
    assert net.rig.loader.rows() == 5
    row = await net.rig.last()
    assert (row["channel"], row["peer"], row["result"]) == ("network", COLLECTOR_USER, "applied")


async def test_the_same_batch_again_is_acknowledged_and_applied_once(net: Net) -> None:
    message, batch_id = sealed(net.rig)
    assert (await net.put(message, batch=batch_id))[0] == 0
    status, answer = await net.put(message, batch=batch_id)
    assert (status, answer.get("RESULT")) == (0, "replayed")
    reply = await net.rig.send(message)  # and by e-mail: a replay too
    assert reply.code == 250
    assert "replay" in reply.text
    assert net.rig.loader.rows() == 5


async def test_a_user_of_another_enterprise_is_refused(net: Net) -> None:
    message, _ = sealed(net.rig)
    status, answer = await net.put(message, key=f"tfnadmin@{OTHER_ENTP}")
    assert (status, answer.get("RESULT")) == (6103, "refused")
    assert "wrongly addressed" in str(answer.get("TEXT"))
    row = await net.rig.last()
    assert (row["result"], row["kind"]) == ("refused", "wrong-enterprise")
    assert net.rig.loader.rows() == 0


async def test_a_tampered_batch_is_refused_and_nothing_loaded(net: Net) -> None:
    message, _ = sealed(net.rig)
    cut = len(message) // 2
    tampered = (
        message[:cut] + (b"A" if message[cut : cut + 1] != b"A" else b"B") + message[cut + 1 :]
    )
    status, answer = await net.put(tampered)
    assert (status, answer.get("RESULT")) == (6103, "refused")
    assert (await net.rig.last())["result"] == "refused"
    assert net.rig.loader.rows() == 0


async def test_too_large_internal_and_unknown_callers_are_refused_before_any_intake(
    net: Net,
) -> None:
    assert await net.announce(1024 * 1024 + 1) == 6103  # over max_message
    assert await net.announce(100, key="") == 7003  # no user behind it
    assert await net.announce(100, cert="web") == 7003  # the DMZ: no row in the peer table
    assert await net.announce(100, cert="rm") == 7003
    assert await net.rig.audit() == []
    assert net.rig.loader.rows() == 0
