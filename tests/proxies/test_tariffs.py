"""The tariff file format and store (proxies/harvest/tariffs.py): every bad line is one
error with its line number, all of them at once; loads replace what the module says."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starwrs.proxies.harvest.tariffs import TariffError, TariffStore, parse_tariffs, store_path

GOOD = """\
# a comment, then a blank line

plan,BIZ,Business 2026,USA,30/6,0.25,3.25,0.10
rate,BIZ,out,*,*,+1,0.0900,0
rate,BIZ,out,3,1,+44,0.28,0.05,60/60,0.50
rate,BIZ,in,*,*,+,0.04,0
profile,00022924,*,BIZ,2026-01-01,V,10
profile,00022924,90000003,BIZ,2026-03-01,S,12.5
site,00022924,90000003,*,Y0001001,N0001001,+12125551000,4,America/New_York,9
site,00022924,90000003,"SIP/trunk, east",Y0001001,N0001002,+13125551000,1,America/Chicago,
"""


def test_a_good_file() -> None:
    parsed = parse_tariffs(GOOD, name="t.csv")
    (plan,) = parsed.plans
    assert (plan.first_s, plan.next_s, plan.minimum_cents, plan.tax_ppm, plan.intl_cents) == (
        30, 6, 25, 32_500, 10,
    )  # fmt: skip
    by_prefix = {r.prefix: r for r in parsed.rates}
    assert by_prefix["1"].rate_micro == 90_000
    assert (by_prefix["1"].first_s, by_prefix["1"].next_s, by_prefix["1"].minimum_cents) == (
        30,
        6,
        25,
    )
    uk = by_prefix["44"]
    assert (uk.first_s, uk.minimum_cents, uk.connect_micro) == (60, 50, 50_000)
    assert by_prefix[""].direction == "in"
    assert [p.discount_bp for p in parsed.profiles] == [1000, 1250]
    assert parsed.profiles[0].active_from == dt.date(2026, 1, 1)
    assert [s.trunk for s in parsed.sites] == ["", "SIP/trunk, east"]
    assert parsed.sites[1].outside == ""


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("nonsense", "unknown record 'nonsense' (plan, rate, profile or site)"),
        ("plan,BIZ,Name,USA,60/60,0", "a plan line has 7 fields after 'plan'"),
        ("plan,B Z,Name,USA,60/60,0,0,0", "PLAN must be 1-16 letters, digits, _ or -, not 'B Z'"),
        ("plan,BIZ,,USA,60/60,0,0,0", "NAME must be 1-60 printable characters"),
        ("plan,BIZ,Name,XYZ,60/60,0,0,0", "CURRENCY must be one of USA, CAN, GBR"),
        ("plan,BIZ,Name,USA,60,0,0,0", "INCREMENT must be F/N seconds, each 1-3600"),
        ("plan,BIZ,Name,USA,0/6,0,0,0", "INCREMENT must be F/N seconds, each 1-3600"),
        ("plan,BIZ,Name,USA,60/3601,0,0,0", "INCREMENT must be F/N seconds, each 1-3600"),
        ("plan,BIZ,Name,USA,60/60,0.001,0,0", "MINIMUM has more than 2 decimals: 0.001"),
        ("plan,BIZ,Name,USA,60/60,-1,0,0", "MINIMUM must be a non-negative amount such as 0.25"),
        ("plan,BIZ,Name,USA,60/60,0,101,0", "TAX_PERCENT must be a percentage 0-100, not '101'"),
        ("plan,BIZ,Name,USA,60/60,0,3.00001,0", "TAX_PERCENT has more than 4 decimals"),
        ("plan,BIZ,Name,USA,60/60,0,abc,0", "TAX_PERCENT must be a percentage 0-100, not 'abc'"),
        ("plan,BIZ,Name,USA,60/60,0,0,1e3", "INTL_SURCHARGE must be a non-negative amount"),
        ("rate,NOPE,out,*,*,+1,0.1,0", "rate of plan 'NOPE', which no earlier plan line"),
        ("rate,BIZ,up,*,*,+1,0.1,0", "DIRECTION must be one of out, in, *, not 'up'"),
        ("rate,BIZ,out,8,*,+1,0.1,0", "USAGE must be one of 1, 2, 3, 4, 5, 6, 7, *, not '8'"),
        ("rate,BIZ,out,*,8,+1,0.1,0", "PERIOD must be one of 1, 2, 3, 4, 7, *, not '8'"),
        ("rate,BIZ,out,*,*,44,0.1,0", "PREFIX must be + and 0-15 digits (+44, +1212, +), not '44'"),
        ("rate,BIZ,out,*,*,+1234567890123456,0.1,0", "PREFIX must be + and 0-15 digits"),
        ("rate,BIZ,out,*,*,+1,0.12345678,0", "RATE_PER_MINUTE has more than 6 decimals"),
        ("rate,BIZ,out,*,*,+1,10000,0", "RATE_PER_MINUTE must be below 10000, not 10000"),
        ("rate,BIZ,out,*,*,+1,0.1,x", "CONNECT_FEE must be a non-negative amount such as 0.25"),
        ("rate,BIZ,out,*,*,+1,0.1,0,6", "INCREMENT must be F/N seconds"),
        ("rate,BIZ,out,*,*,+1,0.1,0,6/6,0.123", "MINIMUM has more than 2 decimals"),
        ("rate,BIZ,out,*,*,+1,0.1,0,6/6,0,9", "a rate line has 7-9 fields after 'rate'"),
        ("rate,BIZ,out,*,*,+1,0.1,0\nrate,BIZ,out,*,*,+1,0.2,0",
         "a second rate for plan BIZ out usage * period * prefix +1"),
        ("profile,0002292,*,BIZ,2026-01-01,V,0", "ENTPID must be 8 letters or digits"),
        ("profile,00022924,9000-3,BIZ,2026-01-01,V,0", "CORP must be 1-12 letters or digits or *"),
        ("profile,00022924,*,BIZ,2026-02-30,V,0", "ACTIVE_FROM must be a day YYYY-MM-DD"),
        ("profile,00022924,*,BIZ,1/1/2026,V,0", "ACTIVE_FROM must be a day YYYY-MM-DD"),
        ("profile,00022924,*,BIZ,2026-01-01,T,0", "PRODUCT must be one of V, S, C, H, not 'T'"),
        ("profile,00022924,*,BIZ,2026-01-01,V,100.001", "DISCOUNT_PERCENT must be a percentage"),
        ("profile,00022924,*,BIZ,2026-01-01,V,0\nprofile,00022924,*,BIZ,2026-01-01,S,0",
         "a second profile for 00022924/* from 2026-01-01"),
        ("site,00022924,*,*,Y1,N1,+12125551000,4,UTC,9", "CORP must be 1-12 letters or digits,"),
        ("site,00022924,C1,*,Y 1,N1,+12125551000,4,UTC,9", "BILLING_ID must be 1-20 letters"),
        ("site,00022924,C1,*,Y1,N1,2125551000,4,UTC,9", "MAIN_NUMBER must be an E.164 number"),
        ("site,00022924,C1,*,Y1,N1,+11125551000,4,UTC,9", "+11125551000 is not a North American"),
        ("site,00022924,C1,*,Y1,N1,+12125551000,10,UTC,9", "ACCESS must be one of 1, 2, 3,"),
        ("site,00022924,C1,*,Y1,N1,+12125551000,4,Mars/Base,9", "TIME_ZONE must be an IANA"),
        ("site,00022924,C1,*,Y1,N1,+12125551000,4,UTC,99999", "OUTSIDE_DIGITS must be 0-4 digits"),
        ("site,00022924,C1,*,Y1,N1,+12125551000,4,UTC,9\nsite,00022924,C1,*,Y1,N2,+12125551000,4,UTC,9",
         "a second site for 00022924/C1 trunk '*'"),
        ('plan,"BIZ,Name', "not a CSV record"),
    ],
)  # fmt: skip
def test_each_bad_line_says_what_is_wrong_and_where(line: str, says: str) -> None:
    text = "# tariffs\nplan,BIZ,Name,USA,60/60,0,0,0\n" + line + "\n"
    bad = 3 + line.count("\n")
    if line.startswith("plan,") and "\n" not in line:
        text = "# tariffs\n\n" + line + "\n"  # alone, on line 3
    with pytest.raises(TariffError) as caught:
        parse_tariffs(text, name="t.csv")
    (problem,) = caught.value.problems
    assert problem.startswith(f"t.csv:{bad}: "), problem
    assert says in problem, problem


def test_every_bad_line_is_reported_in_one_run() -> None:
    text = (
        "plan,BIZ,Name,USA,60/60,0,0,0\nrate,BIZ,x,*,*,+1,1,0\n# ok\n"
        "rate,BIZ,out,*,*,+1,1,0\nsite,1\n"
    )
    with pytest.raises(TariffError) as caught:
        parse_tariffs(text, name="f")
    assert [p.split(":")[1] for p in caught.value.problems] == ["2", "5"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=20))
def test_any_text_parses_or_fails_with_line_numbered_problems(lines: list[str]) -> None:
    text = "\n".join(lines)
    try:
        parse_tariffs(text, name="f")
    except TariffError as err:
        numbers = [int(p.split(":")[1]) for p in err.problems]
        assert numbers == sorted(numbers)
        assert all(1 <= n <= text.count("\n") + 1 for n in numbers)


def _store(tmp_path: Path) -> TariffStore:
    return TariffStore.of(tmp_path)


def _load(store: TariffStore, text: str) -> None:
    store.load(parse_tariffs(text, name="t.csv"), source="t.csv", data=text.encode())


def test_loads_replace_plans_profiles_and_sites(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _load(store, GOOD)
    assert store_path(tmp_path).exists()
    first = store.snapshot("00022924", "90000003")
    assert first.rates.num_rows == 3
    # the corp's own profile from 1 March; before it the enterprise's: one timeline
    assert first.profiles.column("active_from").to_pylist() == [
        dt.date(2026, 1, 1), dt.date(2026, 3, 1),
    ]  # fmt: skip
    # a file with only the plan: its rates are replaced, profiles and sites stay
    _load(store, "plan,BIZ,Business,USA,60/60,0,0,0\nrate,BIZ,*,*,*,+,0.01,0\n")
    second = store.snapshot("00022924", "90000003")
    assert second.generation == first.generation + 1
    assert second.rates.column("prefix").to_pylist() == [""]
    assert second.profiles.num_rows == 2
    assert second.sites.num_rows == 2
    # profile lines for the enterprise replace all its profiles
    _load(store, "profile,00022924,*,BIZ,2027-01-01,C,0\n")
    third = store.snapshot("00022924", "90000003")
    assert third.profiles.column("product").to_pylist() == ["C"]
    assert store.snapshot("00022924", "other").sites.num_rows == 0


def test_a_profile_naming_an_unknown_plan_loads_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _load(store, GOOD)
    before = store.generation()
    with pytest.raises(TariffError) as caught:
        _load(store, "# x\nprofile,00022924,*,NOPE,2026-01-01,V,0\n")
    assert caught.value.problems == (
        "t.csv:2: profile of 00022924/* names plan 'NOPE', which neither this file nor the"
        " store has",
    )
    assert store.generation() == before
    assert store.snapshot("00022924", "90000003").profiles.num_rows == 2


def test_the_readme_example_is_a_good_file() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("**The tariff file**") :]
    block = block[block.index("```\n") + 4 :]
    parsed = parse_tariffs(block[: block.index("```")], name="README.md")
    assert (len(parsed.plans), len(parsed.profiles), len(parsed.sites)) == (1, 1, 1)
