"""Reseller brands in order entry: the store (migration 3), GUC, GBL and the admin's SBR."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import argon2
import pytest
import trio
from starwrs.fixtures.demo import DEMO_BRANDS, demo_logo, load_demo
from starwrs.grammar import Member, Message, parse, serialize
from starwrs.grammar.catalogue_oe import MAX_LOGO_BYTES, brand_problem, logo_type
from starwrs.grammar.errors import StarwrsError
from starwrs.protocol import Request, Response
from starwrs.proxies.oe.brands import HOUSE_BRAND
from starwrs.proxies.oe.server import serve_oe
from starwrs.proxies.oe.store import MIGRATIONS, open_order_entry
from starwrs.runtime.channel import open_tls_channel
from starwrs.runtime.config import Address, Deployment, free_port
from starwrs.runtime.pki import ensure_pki
from starwrs.storage.sqlite import open_store

CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 100
GIF = b"GIF89a" + b"\0" * 20
WEBP = b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 20
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


# -- the rules every tier applies -------------------------------------------------------


def test_logo_types_come_from_the_signature() -> None:
    assert logo_type(demo_logo()) == "image/png"
    assert logo_type(JPEG) == "image/jpeg"
    assert logo_type(GIF) == "image/gif"
    assert logo_type(WEBP) == "image/webp"
    assert logo_type(SVG) is None
    assert logo_type(b"<html><script>") is None
    assert logo_type(b"\x89PNG\r\n\x1a\n") is None  # a signature alone is not an image


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"name": ""}, "brand name must be 1-60 printable characters"),
        ({"name": "x" * 61}, "brand name must be 1-60 printable characters"),
        ({"name": "Blue\nLine"}, "brand name must be 1-60 printable characters"),
        ({"color": "red"}, "colour must be #rrggbb (got 'red')"),
        ({"color": "#12345g"}, "colour must be #rrggbb (got '#12345g')"),
        ({"accent": "#fff;x:y"}, "accent colour must be #rrggbb (got '#fff;x:y')"),
        ({"legal": "x" * 201}, "legal line must be at most 200 printable characters"),
        ({"legal": "a\x00b"}, "legal line must be at most 200 printable characters"),
        ({"brand_id": "../x"}, "brand id must be 1-20 letters, digits, '_', '.' or '-'"),
        ({"logo": SVG}, "logo must be a PNG, JPEG, GIF or WebP image (SVG is not accepted)"),
        (
            {"logo": demo_logo() + b"\0" * MAX_LOGO_BYTES},
            f"logo is {len(demo_logo()) + MAX_LOGO_BYTES} bytes; at most 65536 are accepted",
        ),
    ],
)
def test_brand_problems(values: dict[str, object], problem: str) -> None:
    assert brand_problem(**values) == problem  # type: ignore[arg-type]


def test_markup_in_a_name_is_only_text() -> None:
    assert brand_problem(name="<b>Blue</b>", legal="<script>x</script>", color="#0b5f5a") is None


# -- the store ---------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path):
    async with open_order_entry(tmp_path / "oe.db", hasher=CHEAP) as opened:
        await load_demo(opened, tmp_path)
        yield opened


async def test_the_demo_reseller_presents_its_own_brand(store) -> None:
    blueline = DEMO_BRANDS[0]
    brand = await store.brands.presented_by("10324488")
    assert (brand.brand_id, brand.name, brand.color) == ("blueline", blueline.name, blueline.color)
    assert brand.logo_type == "image/png"
    assert brand.logo_sha256 == hashlib.sha256(demo_logo()).hexdigest()
    logo = await store.brands.logo("10324488")
    assert logo is not None
    assert logo.data == demo_logo()
    assert await store.brands.presented_by("00022924") == HOUSE_BRAND
    assert await store.brands.logo("00022924") is None
    assert await store.brands.presented_by("99999999") == HOUSE_BRAND


async def test_set_brand_keeps_what_is_not_given_and_brands_are_shared(store) -> None:
    changed = await store.brands.set_brand("10324488", name="BlueLine West")
    assert (changed.name, changed.color, changed.brand_id) == (
        "BlueLine West",
        "#0b5f5a",
        "blueline",
    )
    assert changed.logo_sha256 == hashlib.sha256(demo_logo()).hexdigest()
    # a second enterprise presents the reseller's brand: one brand, two enterprises
    shared = await store.brands.set_brand("00022924", brand_id="blueline")
    assert shared.name == "BlueLine West"
    assert await store.brands.enterprises_of("blueline") == ["00022924", "10324488"]
    await store.brands.clear("00022924")
    assert await store.brands.presented_by("00022924") == HOUSE_BRAND
    assert (await store.brands.presented_by("10324488")).name == "BlueLine West"
    # a new brand starts from the house brand's colours
    fresh = await store.brands.set_brand("00022924", name="Acme")
    assert (fresh.brand_id, fresh.color, fresh.accent) == (
        "00022924",
        HOUSE_BRAND.color,
        HOUSE_BRAND.accent,
    )


async def test_set_brand_refuses_bad_values_and_unknown_enterprises(store) -> None:
    for values in ({"color": "blue"}, {"logo": SVG}, {"name": "\x1b[31m"}):
        with pytest.raises(StarwrsError) as info:
            await store.brands.set_brand("10324488", **values)  # type: ignore[arg-type]
        assert info.value.code == 6103
    with pytest.raises(StarwrsError) as info:
        await store.brands.set_brand("99999999", name="Nobody")
    assert info.value.code == 6115
    assert (await store.brands.presented_by("10324488")).color == "#0b5f5a"  # unchanged


async def test_migration_3_adds_brands_to_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "oe.db"
    async with open_store(path, MIGRATIONS[:2]) as db:
        await db.execute("INSERT INTO enterprises (entp_id, name) VALUES ('00000001', 'Old')")
    async with open_order_entry(path, hasher=CHEAP) as opened:
        assert await opened.brands.presented_by("00000001") == HOUSE_BRAND
        brand = await opened.brands.set_brand("00000001", name="Old Co", logo=JPEG)
        assert brand.logo_type == "image/jpeg"


# -- the proxy ------------------------------------------------------------------------


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
    async with open_order_entry(tmp_path / "oe.db", hasher=CHEAP) as opened:
        await load_demo(opened, tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve_oe(deployment, task_status=task_status))
        yield deployment, pki
        nursery.cancel_scope.cancel()


async def ask(oe, text: str, *, key: str = "", cert: str = "dispatcher") -> tuple[int, str]:
    deployment, pki = oe
    address = deployment.proxies["OE"]
    channel = await open_tls_channel(
        address.host, address.port, pki.internal_client_context(cert), server_hostname="oe"
    )
    async with channel:
        await channel.send(Request("OE", text.encode(), key=key))
        answer = await channel.receive()
    assert isinstance(answer, Response)
    return answer.status, answer.payload.decode()


async def test_user_context_is_the_callers_own(oe) -> None:
    status, text = await ask(oe, "GUC<>", key="tfnviewer@10324488")
    assert status == 0
    context = parse(text)
    assert context.acronym == "GUCA"
    assert context.get("USERID") == "tfnviewer"
    assert context.get("ENTPID") == "10324488"
    assert context.get("BRANDNAME") == "BlueLine Telecom"
    assert context.get("COLOR") == "#0b5f5a"
    assert context.get("LOGO") == hashlib.sha256(demo_logo()).hexdigest()
    assert context.get("TIMEZONE") == "48"
    assert "TPR" in text
    status, text = await ask(oe, "GUC<>", key="jeanvnet2@00022924")
    assert status == 0
    assert parse(text).get("BRANDID") == "starwrs"
    assert parse(text).get("LOGO") is None
    # another enterprise's key, no user, a disabled user
    assert await ask(oe, "GUC<>", key="jeanvnet2@10324488") == (6107, "GUCA<ERROR=6107>")
    assert await ask(oe, "GUC<>") == (6107, "GUCA<ERROR=6107>")
    assert await ask(oe, "GUC<>", key="jeanvnet1@00022924") == (7003, "GUCA<ERROR=7003>")


async def test_the_logo_is_the_brands(oe) -> None:
    status, text = await ask(oe, "GBL<>", key="tfnadmin@10324488")
    assert status == 0
    answer = parse(text)
    data = base64.b64decode(str(answer.get("LOGO")))
    assert data == demo_logo()
    assert answer.get("TYPE") == "image/png"
    assert answer.get("SHA256") == hashlib.sha256(data).hexdigest()
    assert await ask(oe, "GBL<>", key="dorod@00022924") == (6109, "GBLA<ERROR=6109>")


async def test_set_brand_is_the_admins_only(oe) -> None:
    logo = base64.b64encode(GIF).decode()  # '=' padding: the serializer escapes it
    text = serialize(
        Message(
            "SBR",
            (
                Member("ENTPID", "00022924"),
                Member("BRANDID", "acme"),
                Member("BRANDNAME", "Acme Telecom"),
                Member("COLOR", "#223344"),
                Member("LOGO", logo),
            ),
        )
    )
    assert (await ask(oe, text))[0] == 7003  # the dispatcher's certificate
    assert (await ask(oe, text, key="jeanvnet2@00022924"))[0] == 7003
    assert await ask(oe, text, cert="admin") == (0, "SBRA<ERROR=0,ENTPID=00022924,BRANDID=acme>")
    status, context = await ask(oe, "GUC<>", key="dorod@00022924")
    assert status == 0
    assert parse(context).get("BRANDNAME") == "Acme Telecom"
    assert parse(context).get("LOGO") == hashlib.sha256(GIF).hexdigest()
    status, logo_answer = await ask(oe, "GBL<>", key="dorod@00022924")
    assert (status, parse(logo_answer).get("TYPE")) == (0, "image/gif")
    bad = [
        "SBR<ENTPID=00022924,COLOR=red>",
        serialize(
            Message(
                "SBR",
                (Member("ENTPID", "00022924"), Member("LOGO", base64.b64encode(SVG).decode())),
            )
        ),
        "SBR<ENTPID=00022924,LOGO=not base64!>",
    ]
    for text in bad:
        assert await ask(oe, text, cert="admin") == (6103, "SBRA<ERROR=6103>"), text
    assert (await ask(oe, "SBR<ENTPID=99999999,BRANDNAME=x>", cert="admin"))[0] == 6115
    assert (await ask(oe, "SBR<ENTPID=0002292,BRANDNAME=x>", cert="admin"))[0] == 6706
    assert await ask(oe, "SBR<ENTPID=00022924,RESET=1>", cert="admin") == (
        0,
        "SBRA<ERROR=0,ENTPID=00022924>",
    )
    assert parse((await ask(oe, "GUC<>", key="dorod@00022924"))[1]).get("BRANDID") == "starwrs"
