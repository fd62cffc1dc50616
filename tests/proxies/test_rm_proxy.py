"""The Report Manager proxy over real mutual TLS: every request pair, every error."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio
from starwrs.fixtures.demo import load_demo
from starwrs.grammar import parse
from starwrs.grammar.catalogue import validate
from starwrs.grammar.errors import MessageError
from starwrs.grammar.seed import seed_text
from starwrs.protocol import Request, Response
from starwrs.proxies.oe.store import open_order_entry
from starwrs.proxies.rm.server import serve_rm
from starwrs.runtime import peers
from starwrs.runtime.channel import open_tls_channel
from starwrs.runtime.config import Address, Deployment, free_port
from starwrs.runtime.pki import SERVICE_NAMES, ensure_pki

JEAN = "jeanvnet2@00022924"
DORO = "dorod@00022924"
TFN = "tfnadmin@10324488"


@pytest.fixture
async def rm(tmp_path: Path):
    pki = ensure_pki(tmp_path)
    deployment = Deployment(
        state_dir=tmp_path,
        web=Address("127.0.0.1", free_port()),
        dispatchers=(),
        proxies={"RM": Address("127.0.0.1", free_port())},
    )
    deployment.save()
    async with open_order_entry(tmp_path / "oe.db") as store:
        await load_demo(store, tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve_rm(deployment, task_status=task_status))
        yield deployment, pki
        nursery.cancel_scope.cancel()


async def ask(rm, text: str, key: str = JEAN) -> tuple[int, str]:
    deployment, pki = rm
    address = deployment.proxies["RM"]
    channel = await open_tls_channel(
        address.host, address.port, pki.internal_client_context("dispatcher"), server_hostname="rm"
    )
    async with channel:
        await channel.send(Request("RM", text.encode(), key=key))
        answer = await channel.receive()
    assert isinstance(answer, Response)
    return answer.status, answer.payload.decode()


async def add_seed_report(rm) -> int:
    status, text = await ask(rm, seed_text("07_ard.txt"))
    assert status == 0, text
    ack = validate(parse(text), "RM")
    report_id = ack.user_report_id  # type: ignore[attr-defined]
    assert isinstance(report_id, int)
    return report_id


async def test_grtl_seed_example_lists_templates_by_category(rm) -> None:
    status, text = await ask(rm, seed_text("01_grtl.txt"))
    assert status == 0
    srtl = validate(parse(text), "RM")
    categories = [c.description for c in srtl.reports]  # type: ignore[attr-defined]
    assert categories[0] == "Financial"
    assert "Check Calling Frequencies" in categories
    titles = {e.title for c in srtl.reports for e in c.templates}  # type: ignore[attr-defined]
    assert {"Longest Calls", "City Summary", "Most Expensive Calls"} <= titles
    assert "Most Active Toll Free Numbers" not in titles  # T only


async def test_grtl_follows_entitlements(rm) -> None:
    # dorod has no Vision (S) entitlement: nothing is offered
    assert await ask(rm, "GRTL<PRODUCT=S,DATATYPE=R,DATACAT=P,IO=B>", DORO) == (0, "SRTL<ERROR=0>")
    # jean has T unpriced only: no priced-only template for T unpriced
    _, text = await ask(rm, "GRTL<PRODUCT=T,DATATYPE=R,DATACAT=U,IO=I>")
    assert "Most Expensive Calls" not in text
    assert "Longest Calls" in text


async def test_grtd_node_tree(rm) -> None:
    status, text = await ask(rm, "GRTD<REPORTID=90>")
    assert status == 0
    srtd = validate(parse(text), "RM")
    labels = [n.label for n in srtd.nodes]  # type: ignore[attr-defined]
    assert labels[:4] == ["General", "Report Name", "Report Description", "Scheduled Execution"]
    assert {"Layout", "Access", "Hierarchy", "Geographic", "Notification"} <= set(labels)
    assert "<LST_COLUMNS,<54~55~67~62~36~61~58~63~64~66~65>,COLUMNS>" in text
    assert await ask(rm, "GRTD<REPORTID=9999>") == (6115, "SRTD<ERROR=6115>")


async def test_ard_then_gurl_lists_it_and_gurd_details_it(rm) -> None:
    report_id = await add_seed_report(rm)
    status, text = await ask(
        rm, "GURL<USERID=jeanvnet2,RPTTMPID=90,ENTPID=00022924,PRODUCT=S,DATACAT=P>"
    )
    assert status == 0
    assert f"<Analyze Traffic=<City Summary Outbound,{report_id},1,City Summary," in text
    status, text = await ask(rm, f"GURD<REPORTID={report_id}>")
    assert status == 0
    surd = validate(parse(text), "RM")
    assert surd.template_id == 90  # type: ignore[attr-defined]
    assert "<TXT_NAME,City Summary Outbound,NAME>" in text
    assert "<TXT_STATUS,SCHEDULED,STATUS>" in text
    assert "<TXT_THRESHOLD,<RECCOUNT=20>,THRESHOLD>" in text


async def test_gurl_seed_example(rm) -> None:
    assert await ask(rm, seed_text("04_gurl.txt")) == (0, "SURL<ERROR=0>")


async def test_crd_urs_drd(rm) -> None:
    report_id = await add_seed_report(rm)
    status, text = await ask(rm, f"CRD<USERRPTID={report_id},NAME=My copy>")
    assert status == 0
    copy_id = int(parse(text).get("USERRPTID"))  # type: ignore[arg-type]
    assert copy_id != report_id
    assert await ask(rm, f"URS<USERRPTID={copy_id},ACTIVE=0>") == (
        0,
        f"URSA<ERROR=0,USERRPTID={copy_id}>",
    )
    _, text = await ask(
        rm, "GURL<USERID=jeanvnet2,RPTTMPID=90,ENTPID=00022924,PRODUCT=S,DATACAT=P>"
    )
    assert f"<My copy,{copy_id},0," in text
    assert f"<City Summary Outbound,{report_id},1," in text
    assert await ask(rm, f"DRD<USERID=jeanvnet2,USERRPTID={report_id}>") == (
        0,
        f"DRDA<ERROR=0,USERRPTID={report_id}>",
    )
    assert await ask(rm, f"GURD<REPORTID={report_id}>") == (6115, "SURD<ERROR=6115>")


async def test_other_users_reports_look_missing(rm) -> None:
    report_id = await add_seed_report(rm)
    missing = report_id + 1000
    for text, answer in [
        ("GURD<REPORTID={}>", "SURD"),
        ("CRD<USERRPTID={},NAME=x>", "CRDA"),
        ("URS<USERRPTID={},ACTIVE=1>", "URSA"),
        ("GPL<PL_HIER,USERRPTID={}>", "GPLA"),
    ]:
        theirs = await ask(rm, text.format(report_id), DORO)
        absent = await ask(rm, text.format(missing), DORO)
        assert theirs == absent == (6115, f"{answer}<ERROR=6115>")
    assert await ask(rm, f"DRD<USERID=dorod,USERRPTID={report_id}>", DORO) == (
        6115,
        "DRDA<ERROR=6115>",
    )


@pytest.mark.parametrize(
    ("text", "key", "answer"),
    [
        ("GURL<USERID=dorod,RPTTMPID=1,ENTPID=00022924,PRODUCT=T,DATACAT=U>", JEAN, 6107),
        ("GURL<USERID=jeanvnet2,RPTTMPID=1,ENTPID=10324488,PRODUCT=T,DATACAT=U>", JEAN, 6107),
        ("DRD<USERID=dorod,USERRPTID=1>", JEAN, 6107),
        ("GRTL<PRODUCT=V,DATATYPE=R,DATACAT=P,IO=O>", "", 6107),
        ("GRTL<PRODUCT=V,DATATYPE=R,DATACAT=P,IO=O>", "jeanvnet2@10324488", 6107),
        ("GRTL<PRODUCT=V,DATATYPE=R,DATACAT=P,IO=O>", "jeanvnet1@00022924", 7003),
        ("GRTL<PRODUCT=V,DATATYPE=R,IO=O>", JEAN, 6807),
        ("GRTD<REPORTID=>", JEAN, 6830),
        ("GPL<PL_NOPE>", JEAN, 6610),
        ("ZZZ<A=1>", JEAN, 6104),
    ],
)
async def test_error_codes(rm, text: str, key: str, answer: int) -> None:
    status, got = await ask(rm, text, key)
    assert status == answer
    assert f"ERROR={answer}>" in got


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (("STDRPTID=90", "STDRPTID=9999"), 6115),
        (("PRODUCT=S", "PRODUCT=C"), 7003),
        (("90000004,90000004", "90000001,90000001"), 7003),
        (("SORTBY=<54D>", "SORTBY=<44D>"), 6103),
        (("COLUMNS=<54~", "COLUMNS=<1~54~"), 6103),
        (("NAME=City Summary Outbound", "NAME="), 6113),
        (("ENTPID=00022924", "ENTPID=0002292"), 6706),
    ],
)
async def test_ard_rejections(rm, change: tuple[str, str], code: int) -> None:
    text = seed_text("07_ard.txt").replace(*change)
    assert await ask(rm, text) == (code, f"ARDA<ERROR={code}>")


@pytest.mark.parametrize(
    ("request_text", "token", "expect"),
    [
        ("GPL<PL_ACCESS,IO=O,PRODUCT=S,DATACAT=P>", "PL_ACCESS", "<2,DIAL-1>"),
        ("GPL<PL_ACCESS,IO=O,PRODUCT=C,DATACAT=P>", "PL_ACCESS", None),
        ("GPL<PL_FIELDS,RPTTMPID=90>", "PL_FIELDS", "<54,City,0,D>"),
        ("GPL<PL_DURATION>", "PL_DURATION", "<1,0.0 to 0.1>"),
        ("GPL<PL_TIMEZONE>", "PL_TIMEZONE", "<45,EST,"),
        ("GPL<PL_RANGE,IO=O,PRODUCT=S,DATACAT=B>", "PL_RANGE", "<A,0 to 55 MILES>"),
        ("GPL<PL_USAGE,IO=I,PRODUCT=V,DATACAT=P>", "PL_USAGE", "<1,INTERSTATE>"),
        ("GPL<PL_LANG>", "PL_LANG", "<1234,American English>"),
        ("GPL<PL_CURR>", "PL_CURR", "<2345,American Dollar,USD>"),
    ],
)
async def test_pick_lists(rm, request_text: str, token: str, expect: str | None) -> None:
    status, text = await ask(rm, request_text)
    assert status == 0, text
    assert f"{token}=" in text
    if expect is None:
        assert text == f"GPLA<ERROR=0,{token}=<>>"
    else:
        assert expect in text


async def test_report_pick_lists_follow_corp_entitlements(rm) -> None:
    report_id = await add_seed_report(rm)
    status, text = await ask(rm, f"GPL<PL_HIER,USERRPTID={report_id}>")
    assert status == 0
    assert "90000003" in text
    assert "90000004" in text
    assert "90000001" not in text
    status, text = await ask(rm, f"GPL<PL_GEO,USERRPTID={report_id}>")
    assert status == 0
    assert "<country,001,NA,NA,USA/WORLDZONE1>" in text


# -- who may call the Report Manager (runtime/peers.py) --------------------------------


async def ask_as(rm, cert: str, text: str, key: str = JEAN) -> tuple[int, str]:
    deployment, pki = rm
    address = deployment.proxies["RM"]
    channel = await open_tls_channel(
        address.host, address.port, pki.internal_client_context(cert), server_hostname="rm"
    )
    async with channel:
        await channel.send(Request("RM", text.encode(), key=key))
        answer = await channel.receive()
    assert isinstance(answer, Response)
    return answer.status, answer.payload.decode()


async def test_the_web_servers_certificate_cannot_act_for_a_user(rm) -> None:
    """It lives in the DMZ; with the key USERID@ENTPID it once read and changed that
    user's reports directly."""
    report_id = await add_seed_report(rm)
    for text in (
        f"GURD<REPORTID={report_id}>",
        f"URS<USERRPTID={report_id},ACTIVE=0>",
        f"DRD<USERID=jeanvnet2,USERRPTID={report_id}>",
    ):
        assert await ask_as(rm, "web", text) == (7003, peers.REFUSAL.decode())
    status, text = await ask(rm, f"GURD<REPORTID={report_id}>")
    assert status == 0
    assert "<TXT_STATUS,SCHEDULED,STATUS>" in text  # untouched


async def test_only_the_dispatcher_and_dss_certificates_are_served(rm) -> None:
    for cert in SERVICE_NAMES:
        status, text = await ask_as(rm, cert, "GRTD<REPORTID=90>")
        if cert in ("dispatcher", "dss"):
            assert status == 0, cert
        elif cert in ("rs", "arbitrator"):  # connected for failure NRLs, nothing else
            assert (status, text) == (7003, "SRTD<ERROR=7003>"), cert
        else:
            assert (status, text) == (7003, peers.REFUSAL.decode()), cert


# -- what the spec says for pathological input ------------------------------------------


async def test_a_message_of_too_many_groups_is_6611_and_costs_little(rm) -> None:
    """A 1 MiB message of 60-deep groups once cost the Report Manager 0.75 s or more."""
    unit = "<" * 60 + ">" * 60
    body = unit * ((1024 * 1024) // len(unit))
    text = f"GRTL<PRODUCT=V,DATATYPE=R,DATA CAT=P,IO=O,X={body}>"
    before = time.process_time()
    with pytest.raises(MessageError) as info:
        parse(text)
    assert time.process_time() - before < 0.1  # one str.count and 10,000 '<'
    assert info.value.code == 6611
    assert await ask(rm, text) == (6611, "SRTL<ERROR=6611>")
    status, _ = await ask(rm, seed_text("01_grtl.txt"))  # and the next request is served
    assert status == 0
