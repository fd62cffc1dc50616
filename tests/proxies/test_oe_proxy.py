"""The order entry proxy through the proxy framework, over real mutual TLS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from starwrs.fixtures.demo import CREDENTIALS_FILE, load_demo
from starwrs.grammar import parse
from starwrs.protocol import Echo, EchoReply, Request, Response
from starwrs.proxies.oe.server import serve_oe
from starwrs.proxies.oe.store import open_order_entry
from starwrs.runtime import peers
from starwrs.runtime.channel import PeerGone, open_tls_channel
from starwrs.runtime.config import Address, Deployment, free_port
from starwrs.runtime.pki import SERVICE_NAMES, ensure_pki


@pytest.fixture
async def oe(tmp_path: Path):
    pki = ensure_pki(tmp_path)
    deployment = Deployment(
        state_dir=tmp_path,
        web=Address("127.0.0.1", free_port()),
        dispatchers=(),
        proxies={"OE": Address("127.0.0.1", free_port())},
    )
    deployment.save()
    async with open_order_entry(tmp_path / "oe.db") as store:
        await load_demo(store, tmp_path)
    users = json.loads((tmp_path / CREDENTIALS_FILE).read_text())["users"]
    passwords = {user: entry["password"] for user, entry in users.items()}
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve_oe(deployment, task_status=task_status))
        yield deployment, pki, passwords
        nursery.cancel_scope.cancel()


async def ask(oe, text: str, *, cert: str = "dispatcher", key: str = "") -> tuple[int, str]:
    deployment, pki, _ = oe
    address = deployment.proxies["OE"]
    channel = await open_tls_channel(
        address.host, address.port, pki.internal_client_context(cert), server_hostname="oe"
    )
    async with channel:
        await channel.send(Request("OE", text.encode(), key=key))
        answer = await channel.receive()
    assert isinstance(answer, Response)
    return answer.status, answer.payload.decode()


async def test_validate_user(oe) -> None:
    password = oe[2]["jeanvnet2"]
    status, text = await ask(oe, f"VU<USERID=jeanvnet2,PASSWORD={password}>")
    assert status == 0
    answer = parse(text)
    assert (answer.acronym, answer.get("ENTPID")) == ("VUA", "00022924")


async def test_wrong_password_and_unknown_user_get_the_same_answer(oe) -> None:
    wrong = await ask(oe, "VU<USERID=jeanvnet2,PASSWORD=nope>")
    unknown = await ask(oe, "VU<USERID=nobody,PASSWORD=nope>")
    assert wrong == unknown == (6115, "VUA<ERROR=6115>")


async def test_validate_user_is_the_dispatchers_only(oe) -> None:
    status, _ = await ask(oe, "VU<USERID=jeanvnet2,PASSWORD=x>", key="dorod@00022924")
    assert status == 7003


async def test_get_user_applications(oe) -> None:
    status, text = await ask(oe, "GUA<USERID=jeanvnet2>")
    assert status == 0
    apps = parse(text).get("APPS")
    assert apps is not None
    assert "RM" in str(apps)


async def test_a_user_may_only_ask_about_themselves(oe) -> None:
    status, text = await ask(oe, "GUA<USERID=jeanvnet2>", key="dorod@00022924")
    assert (status, text) == (6107, "GUAA<ERROR=6107>")


async def test_admin_requests_need_the_admin_certificate(oe) -> None:
    status, _ = await ask(oe, "UENB<USERID=dorod,ENABLED=0>")
    assert status == 7003
    status, text = await ask(oe, "UAPP<USERID=dorod,APPS=<INBX>>", cert="admin")
    assert (status, text) == (0, "UAPA<ERROR=0,USERID=dorod>")
    _, text = await ask(oe, "GUA<USERID=dorod>")
    assert "APPS=<INBX>" in text
    status, _ = await ask(oe, "UENB<USERID=dorod,ENABLED=0>", cert="admin")
    assert status == 0
    assert await ask(oe, "GUA<USERID=dorod>") == (7003, "GUAA<ERROR=7003>")


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("ZZZ<A=1>", "ZZZ<ERROR=6104>"),
        ("GRTL<PRODUCT=V,DATATYPE=R,DATA CAT=P,IO=O>", "GRTL<ERROR=6104>"),
        ("VU<USERID=x", "VUA<ERROR=6612>"),
        ("VU<USERID=x,PASSWORD=y,COLOR=red>", "VUA<ERROR=6610>"),
        ("", "<ERROR=6611>"),
    ],
)
async def test_bad_requests_echo_the_acronym_with_a_code(oe, text: str, answer: str) -> None:
    status, got = await ask(oe, text)
    assert got == answer
    assert status == int(answer.split("ERROR=")[1].rstrip(">"))


async def test_echo_is_answered_without_handlers(oe) -> None:
    deployment, pki, _ = oe
    address = deployment.proxies["OE"]
    channel = await open_tls_channel(
        address.host, address.port, pki.internal_client_context("dispatcher"), server_hostname="oe"
    )
    async with channel:
        await channel.send(Echo("OE"))
        assert isinstance(await channel.receive(), EchoReply)


async def test_only_the_dispatcher_admin_and_dss_certificates_are_served(oe) -> None:
    """The web server's certificate lives in the DMZ: with an empty key it once passed
    for the dispatcher's own logon flow.  The operator's tools read entitlements
    (``starwrs admin apps --add`` reads before it writes)."""
    for cert in SERVICE_NAMES:
        status, text = await ask(oe, "GUA<USERID=jeanvnet2>", cert=cert)
        if cert in ("dispatcher", "dss", "admin"):
            assert status == 0, cert
        elif cert in ("inbox", "harvest"):  # served, but only their own messages
            assert (status, text) == (7003, "GUAA<ERROR=7003>")
        else:
            assert (status, text.encode()) == (7003, peers.REFUSAL), cert


async def test_notification_defaults_are_for_the_inbox_and_the_admin(oe) -> None:
    status, text = await ask(oe, "GUN<USERID=jeanvnet2>", cert="inbox")
    assert status == 0
    answer = parse(text)
    assert (answer.get("ENTPID"), answer.get("EMAIL"), answer.get("PGPIN")) == (
        "00022924",
        "jeanvnet2@demo.invalid",
        None,
    )
    assert (await ask(oe, "GUN<USERID=nobody>", cert="inbox"))[0] == 6115
    status, text = await ask(oe, "GEU<ENTPID=10324488>", cert="admin")
    assert (status, text) == (0, "GEUA<ERROR=0,ENTPID=10324488,USERS=<tfnadmin~tfnviewer>>")
    assert (await ask(oe, "GEU<ENTPID=99999999>", cert="admin"))[0] == 6115
    # news is for users with an inbox: not the collector's account, not a disabled user
    status, text = await ask(oe, "GEU<ENTPID=00022924>", cert="admin")
    assert (status, text) == (0, "GEUA<ERROR=0,ENTPID=00022924,USERS=<LynneLevy2~dorod~jeanvnet2>>")
    for cert, key in (("dispatcher", "jeanvnet2@00022924"), ("dss", "")):
        status, _ = await ask(oe, "GUN<USERID=jeanvnet2>", cert=cert, key=key)
        assert status == 7003, cert
    assert (await ask(oe, "GEU<ENTPID=10324488>", cert="inbox"))[0] == 7003  # the admin's
    # the harvest tells an enterprise's users of rejected call records: GEU, not GUN
    assert (await ask(oe, "GEU<ENTPID=10324488>", cert="harvest"))[0] == 0
    assert (await ask(oe, "GUN<USERID=jeanvnet2>", cert="harvest"))[0] == 7003


async def test_password_checks_are_the_dispatchers_alone(oe) -> None:
    for cert in ("dss", "admin"):
        status, text = await ask(oe, "VU<USERID=jeanvnet2,PASSWORD=x>", cert=cert)
        assert (status, text) == (7003, "VUA<ERROR=7003>")
    status, _ = await ask(oe, "VU<USERID=jeanvnet2,PASSWORD=x>", cert="web")
    assert status == 7003


async def test_admin_messages_come_from_the_admin_certificate_only(oe) -> None:
    for cert in ("dispatcher", "dss"):
        for text in ("UAPP<USERID=dorod,APPS=<INBX>>", "UENB<USERID=dorod,ENABLED=0>"):
            status, answer = await ask(oe, text, cert=cert)
            assert status == 7003
            assert answer.endswith("<ERROR=7003>")
    _, text = await ask(oe, "GUA<USERID=dorod>")
    assert "ERROR=0" in text  # nothing changed


async def test_clients_without_a_deployment_certificate_are_refused(oe, tmp_path: Path) -> None:
    deployment, _, _ = oe
    other = ensure_pki(tmp_path / "other")
    address = deployment.proxies["OE"]

    async def attempt() -> None:
        channel = await open_tls_channel(
            address.host,
            address.port,
            other.internal_client_context("dispatcher"),
            server_hostname="oe",
        )
        async with channel:
            await channel.send(Echo("OE"))
            await channel.receive()

    with pytest.raises(PeerGone):
        await attempt()
