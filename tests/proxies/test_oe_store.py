"""proxies/oe: logon checks, throttling, entitlements, billing hierarchy, pick lists, demo data."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import argon2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starwrs.fixtures.demo import CREDENTIALS_FILE, DEMO_USERS, load_demo
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.proxies.oe.model import PRODUCTS, Entitlements, LogonOutcome, ReportEntitlement
from starwrs.proxies.oe.passwords import default_hasher
from starwrs.proxies.oe.store import OrderEntryStore, open_order_entry


class FakeClock:
    def __init__(self, start: float = 2_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingHasher(argon2.PasswordHasher):
    """Cheap argon2id that counts verifications (the work an attempt costs)."""

    def __init__(self, time_cost: int = 1) -> None:
        super().__init__(time_cost=time_cost, memory_cost=8, parallelism=1, hash_len=16)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verifications += 1
        return super().verify(hash, password)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
async def oe(
    tmp_path: Path, clock: FakeClock, hasher: CountingHasher
) -> AsyncIterator[OrderEntryStore]:
    async with open_order_entry(tmp_path / "oe.db", hasher=hasher, clock=clock) as store:
        await store.add_enterprise("00022924", "Demo one")
        await store.add_enterprise("10324488", "Demo two")
        await store.add_corp("00022924", "90000001", "East")
        await store.add_corp("00022924", "90000003", "Vision HQ")
        await store.add_billing_id("90000003", "Y3000001", "HQ invoices")
        await store.add_billing_id("90000003", "Y3000002", "Branch invoices")
        await store.add_service_location("90000003", "Y3000001", "N3100001", "HQ floor 1")
        await store.add_service_location("90000003", "Y3000001", "N3100002", "HQ floor 2")
        await store.add_corp("10324488", "91000001", "Call centers")
        await store.add_user("jeanvnet2", "00022924", "right horse battery")
        await store.add_user("jeanvnet1", "00022924", "old password", enabled=False)
        await store.add_user("tfnadmin", "10324488", "other enterprise")
        yield store


def code(info: pytest.ExceptionInfo[StarwrsError]) -> ErrorCode:
    return info.value.code


# -- logon ------------------------------------------------------------------------------


async def test_verify_user_outcomes(oe: OrderEntryStore) -> None:
    ok = await oe.verify_user("jeanvnet2", "right horse battery")
    assert ok.outcome is LogonOutcome.OK
    assert ok.user is not None
    assert (ok.user.entp_id, ok.user.timezone, ok.user.lang, ok.user.curr) == (
        "00022924",
        "45",
        "1234",
        "2345",
    )
    wrong = await oe.verify_user("jeanvnet2", "wrong")
    unknown = await oe.verify_user("nosuchuser", "right horse battery")
    assert wrong == unknown
    assert wrong.outcome is LogonOutcome.INVALID
    assert wrong.user is None
    assert (
        await oe.verify_user("JEANVNET2", "right horse battery")
    ).outcome is LogonOutcome.INVALID
    assert (await oe.verify_user("jeanvnet1", "old password")).outcome is LogonOutcome.DISABLED
    assert (await oe.verify_user("jeanvnet1", "guess")).outcome is LogonOutcome.INVALID
    await oe.set_enabled("jeanvnet1", True)
    assert (await oe.verify_user("jeanvnet1", "old password")).outcome is LogonOutcome.OK


async def test_unknown_user_costs_the_same_work(
    oe: OrderEntryStore, hasher: CountingHasher
) -> None:
    await oe.verify_user("nosuchuser", "x")  # makes the dummy hash once
    for user in ("jeanvnet2", "nosuchuser", "a" * 40, ""):
        before = hasher.verifications
        await oe.verify_user(user, "wrong")
        assert hasher.verifications - before == 1, user


async def test_password_hashes_are_argon2id_and_salted(oe: OrderEntryStore) -> None:
    await oe.add_user("twin1", "00022924", "same password")
    await oe.add_user("twin2", "00022924", "same password")
    rows = await oe.db.fetchall(
        "SELECT password_hash FROM users WHERE user_id IN ('twin1', 'twin2')"
    )
    hashes = [r[0] for r in rows]
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert hashes[0] != hashes[1]
    assert "same password" not in "".join(hashes)


def test_default_parameters_are_owasp() -> None:
    h = default_hasher()
    assert (h.type, h.memory_cost, h.time_cost, h.parallelism) == (
        argon2.Type.ID,
        19 * 1024,
        2,
        1,
    )


async def test_rehash_when_parameters_change(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "oe.db"
    async with open_order_entry(path, hasher=CountingHasher(time_cost=1), clock=clock) as oe:
        await oe.add_enterprise("00022924")
        await oe.add_user("dorod", "00022924", "pw")
    async with open_order_entry(path, hasher=CountingHasher(time_cost=2), clock=clock) as oe:
        assert (await oe.verify_user("dorod", "pw")).outcome is LogonOutcome.OK
        row = await oe.db.fetchone("SELECT password_hash FROM users WHERE user_id = 'dorod'")
        assert row is not None
        assert ",t=2," in row[0]
        assert (await oe.verify_user("dorod", "pw")).outcome is LogonOutcome.OK


# throttling: tests/proxies/test_oe_throttle.py


# -- entitlements ------------------------------------------------------------------------


async def test_entitlements_round_trip(oe: OrderEntryStore) -> None:
    ent = await oe.set_entitlements(
        "jeanvnet2",
        applications=["rm", "INBX ", "OE"],
        products=["S", "T"],
        corp_ids=["90000003"],
        reports=[ReportEntitlement("S", "P"), ReportEntitlement("T", "U", "D")],
    )
    assert ent == await oe.entitlements("jeanvnet2")
    assert ent.applications == {"RM", "INBX", "OE"}
    assert ent.may_use("INBX")
    assert ent.may_use("RM  ")
    assert not ent.may_use("DSS ")
    assert ent.allows_report("S", "P")
    assert ent.allows_report("S", "B")
    assert not ent.allows_report("S", "U")
    assert ent.allows_report("T", "U", "D")
    assert not ent.allows_report("T", "U")
    assert ent.data_cats == {"P", "U"}
    assert Entitlements.from_json(json.loads(json.dumps(ent.to_json()))) == ent
    assert await oe.user_applications("jeanvnet2") == [
        ("INBX", "Inbox"),
        ("OE", "Order Entry (StarOE)"),
        ("RM", "Report Manager / Report Requestor"),
    ]
    # replace, not add
    again = await oe.set_entitlements("jeanvnet2", applications=["RM"])
    assert again.applications == {"RM"}
    assert not again.products
    assert not again.corp_ids
    assert await oe.entitlements("nosuchuser") is None


async def test_disabled_user_is_entitled_to_nothing(oe: OrderEntryStore) -> None:
    await oe.set_entitlements(
        "jeanvnet2", applications=["RM"], reports=[ReportEntitlement("V", "P")]
    )
    await oe.set_enabled("jeanvnet2", False)
    ent = await oe.entitlements("jeanvnet2")
    assert ent is not None
    assert not ent.enabled
    assert not ent.may_use("RM")
    assert not ent.allows_report("V", "P")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"corp_ids": ["91000001"]},  # another enterprise's corp id
        {"corp_ids": ["99999999"]},  # no such corp id
        {"applications": ["XYZ"]},
        {"products": ["Q"]},
        {"reports": [ReportEntitlement("V", "X")]},
    ],
)
async def test_bad_entitlements_are_refused(oe: OrderEntryStore, kwargs: dict[str, Any]) -> None:
    await oe.set_entitlements("jeanvnet2", applications=["RM"])
    with pytest.raises(StarwrsError) as info:
        await oe.set_entitlements("jeanvnet2", **kwargs)
    assert code(info) == ErrorCode.IDS_NOT_CORRECT
    ent = await oe.entitlements("jeanvnet2")  # the old ones are still there
    assert ent is not None
    assert ent.applications == {"RM"}


async def test_id_checks(oe: OrderEntryStore) -> None:
    with pytest.raises(StarwrsError) as info:
        await oe.add_enterprise("1234567")
    assert code(info) == ErrorCode.ENTPID_LENGTH
    with pytest.raises(StarwrsError) as info:
        await oe.add_user("u" * 21, "00022924", "pw")
    assert code(info) == ErrorCode.IDS_NOT_CORRECT
    with pytest.raises(StarwrsError) as info:
        await oe.add_user("someone", "99999999", "pw")
    assert code(info) == ErrorCode.IDS_NOT_CORRECT
    with pytest.raises(StarwrsError) as info:
        await oe.add_corp("10324488", "90000001")  # belongs to 00022924
    assert code(info) == ErrorCode.IDS_NOT_CORRECT
    with pytest.raises(StarwrsError) as info:
        await oe.add_billing_id("99999999", "Y0000001")
    assert code(info) == ErrorCode.IDS_NOT_CORRECT
    with pytest.raises(StarwrsError) as info:
        await oe.set_password("nosuchuser", "pw")
    assert code(info) == ErrorCode.IDS_NOT_CORRECT


_ids = st.text(alphabet="ABCDEFGHIJ0123456789", min_size=1, max_size=8)


@given(
    st.builds(
        Entitlements,
        user_id=_ids,
        entp_id=_ids,
        enabled=st.booleans(),
        applications=st.frozensets(st.sampled_from(["OE", "RM", "RS", "INBX", "DSS"])),
        products=st.frozensets(st.sampled_from(PRODUCTS)),
        corp_ids=st.frozensets(_ids),
        reports=st.frozensets(
            st.builds(
                ReportEntitlement,
                st.sampled_from(PRODUCTS),
                st.sampled_from("PU"),
                st.sampled_from("RD"),
            )
        ),
    )
)
def test_entitlements_json_round_trip(ent: Entitlements) -> None:
    assert Entitlements.from_json(json.loads(json.dumps(ent.to_json()))) == ent


# -- billing hierarchy ---------------------------------------------------------------------


async def test_billing_corp_rows_follow_appendix_h(oe: OrderEntryStore) -> None:
    rows = await oe.billing_corp_rows("00022924")
    assert [(r.level, r.entp_corp_bill_serv_combo) for r in rows] == [
        (2, "00022924_90000001__"),
        (2, "00022924_90000003__"),
        (3, "00022924_90000003_Y3000001_"),
        (4, "00022924_90000003_Y3000001_N3100001"),
        (4, "00022924_90000003_Y3000001_N3100002"),
        (3, "00022924_90000003_Y3000002_"),
    ]
    leaf = rows[3]
    assert (leaf.enterprise_name, leaf.corporate_name, leaf.billing_name, leaf.serv_loc_name) == (
        "Demo one",
        "Vision HQ",
        "HQ invoices",
        "HQ floor 1",
    )
    assert all(len(r.entp_corp_bill_serv_combo) <= 35 for r in rows)
    only = await oe.billing_corp_rows("00022924", corp_ids=["90000001"])
    assert [r.corporate_id for r in only] == ["90000001"]
    assert await oe.billing_corp_rows("10324488", corp_ids=["90000003"]) == []


async def test_billing_hierarchy_tree(oe: OrderEntryStore) -> None:
    tree = await oe.billing_hierarchy("00022924")
    assert [c.corp_id for c in tree] == ["90000001", "90000003"]
    assert tree[0].billing == ()
    hq = tree[1]
    assert [b.billing_id for b in hq.billing] == ["Y3000001", "Y3000002"]
    assert [loc.service_loc_id for loc in hq.billing[0].locations] == ["N3100001", "N3100002"]
    assert hq.billing[1].locations == ()
    await oe.add_corp("00022924", "90000001", "East renamed")
    assert (await oe.billing_hierarchy("00022924", ["90000001"]))[0].name == "East renamed"
    assert await oe.corp_ids("00022924") == ["90000001", "90000003"]
    assert await oe.enterprise_name("10324488") == "Demo two"
    assert await oe.enterprise_name("00000000") is None


# -- pick lists ----------------------------------------------------------------------------


async def test_access_types_from_appendix_h(oe: OrderEntryStore) -> None:
    items = await oe.pick_list("PL_ACCESS")
    by_code = {i.code: i.description for i in items}
    assert by_code["1"] == "SHARED"
    assert by_code["2"] == "DIAL-1"
    assert by_code["3"] == "CARD"
    assert by_code["C"] == "800 INTERSWITCH NETWORK CALL REDIRECT/DTO"
    assert len(items) == 13
    outbound = {i.code for i in await oe.pick_list("ACCESS", io="O")}
    inbound = {i.code for i in await oe.pick_list("ACCESS", io="I")}
    assert "10" not in outbound
    assert {"4", "1"} <= outbound  # OACCESS=<4~1> in the seed's ARD
    assert {"7", "10", "A"} <= inbound


async def test_other_pick_lists(oe: OrderEntryStore) -> None:
    tz = {i.code: i for i in await oe.pick_list("TIMEZONE")}
    assert tz["45"].value == "EST"
    assert tz["45"].low == -300
    usage = [i.description for i in await oe.pick_list("USAGE")]
    assert usage[:3] == ["INTERSTATE", "INTRASTATE", "INTERNATIONAL"]
    assert len(usage) == 7
    durations = await oe.pick_list("DURATION")
    assert durations[0].description == "0.0 to 0.1"
    assert all(d.low is not None and d.high is not None and d.low < d.high for d in durations)
    assert {i.code for i in await oe.pick_list("RANGE", io="O")} >= {"A", "F"}
    assert {i.code for i in await oe.pick_list("RANGE", io="I")} >= {"2"}
    assert (await oe.pick_list("LANG"))[0].code == "1234"
    assert (await oe.pick_list("CURR"))[0].code == "2345"
    assert await oe.pick_list("NOSUCHLIST") == []


async def test_geo_hierarchy(oe: OrderEntryStore) -> None:
    geo = {c.code: c for c in await oe.geo_hierarchy()}
    usa = geo["001"]
    assert usa.name == "USA/WORLDZONE1"
    states = {s.code: s for s in usa.children}
    assert states["CO"].level == "state"
    assert "COLO SPGS" in {c.code for c in states["CO"].children}


async def test_reference_data_is_installed_once(tmp_path: Path, hasher: CountingHasher) -> None:
    path = tmp_path / "oe.db"
    counts = []
    for _ in range(2):
        async with open_order_entry(path, hasher=hasher) as oe:
            row = await oe.db.fetchone(
                "SELECT (SELECT count(*) FROM pick_lists), (SELECT count(*) FROM geo),"
                " (SELECT count(*) FROM applications)"
            )
            assert row is not None
            counts.append(tuple(row))
    assert counts[0] == counts[1]
    assert counts[0][2] == 6  # OE RM RS INBX DSS HARV


# -- demo data -----------------------------------------------------------------------------


async def test_demo_load_is_idempotent(tmp_path: Path, hasher: CountingHasher) -> None:
    state = tmp_path / "state"
    async with open_order_entry(tmp_path / "oe.db", hasher=hasher) as oe:
        first = await load_demo(oe, state)
        creds = state / CREDENTIALS_FILE
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        written = json.loads(creds.read_text())
        assert {u: e["password"] for u, e in written["users"].items()} == first
        assert set(first) == {u.user_id for u in DEMO_USERS}
        assert {"jeanvnet2", "dorod", "LynneLevy2"} <= set(first)
        assert len(set(first.values())) == len(first)

        second = await load_demo(oe, state)
        assert second == first
        for user in DEMO_USERS:
            result = await oe.verify_user(user.user_id, first[user.user_id])
            expected = LogonOutcome.OK if user.enabled else LogonOutcome.DISABLED
            assert result.outcome is expected, user.user_id
        assert [u.user_id for u in await oe.users("00022924")] == [
            "LynneLevy2",
            "dorod",
            "jeanvnet1",
            "jeanvnet2",
            "pbxcollector",
        ]
        assert [u.user_id for u in await oe.users("10324488")] == ["tfnadmin", "tfnviewer"]

        # isolation: nobody is entitled to another enterprise's corp ids
        for user in DEMO_USERS:
            ent = await oe.entitlements(user.user_id)
            assert ent is not None
            assert ent.corp_ids <= set(await oe.corp_ids(user.entp_id))
        jean = await oe.entitlements("jeanvnet2")
        assert jean is not None
        assert {"90000003", "90000004"} <= jean.corp_ids
        assert jean.may_use("RM")
        rows = await oe.billing_corp_rows("00022924")
        assert "00022924_90000003_Y3000001_N3100001" in {r.entp_corp_bill_serv_combo for r in rows}

        # a lost credentials file: new passwords, the old ones stop working
        creds.unlink()
        third = await load_demo(oe, state)
        assert third["dorod"] != first["dorod"]
        assert (await oe.verify_user("dorod", first["dorod"])).outcome is LogonOutcome.INVALID
        assert (await oe.verify_user("dorod", third["dorod"])).outcome is LogonOutcome.OK


def test_demo_passwords_never_look_like_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    # `starwrs client --password -Xy…` is an argparse error; token_urlsafe gives a
    # leading "-" one time in 64 (a browser test failed on one)
    from starwrs.fixtures import demo

    drawn = iter(["-starts-with-dash", "--two", "fine-one"])
    monkeypatch.setattr(demo.secrets, "token_urlsafe", lambda n: next(drawn))
    assert demo._new_password() == "fine-one"
