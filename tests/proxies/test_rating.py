"""Rating (proxies/harvest/rating.py) against plain-Python oracles, with a real tariff store.

Billing increments, minimum charges, discounts, surcharges and tax for random durations;
the longest prefix and the most specific line; rate periods around their boundaries and
across DST changes; number normalization against the collector's own rule; every
rejection and skip with its reason; the priced rows load unchanged; re-rating.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from collections.abc import Iterator, Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starwrs.collector.readers.model import normalize_number
from starwrs.proxies.harvest.rating import Rated, rate_calls, rerate_priced
from starwrs.proxies.harvest.tariffs import TariffStore, parse_tariffs
from starwrs.storage.datamart import reference as ref
from starwrs.storage.datamart.export import export_calls
from starwrs.storage.datamart.store import load_calls, open_datamart


def examples(full: int) -> int:
    """*full* examples under the ci profile, a twentieth (at least 10) otherwise: every
    example rates real batches through DuckDB (a fixed ~0.1-0.3 s each)."""
    return full if settings.default.derandomize else max(10, full // 20)


ENTP = "00022924"
CORP = "90000003"
NY = "America/New_York"
UTC = dt.UTC
#: Monday 2 March 2026, 14:00 UTC = 09:00 in New York: period 1 (day)
WHEN = dt.datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def _site(tz: str = NY, trunk: str = "*", outside: str = "9") -> str:
    return f"site,{ENTP},{CORP},{trunk},Y0001001,N0001001,+12125551000,4,{tz},{outside}\n"


def _profile(plan: str = "P", day: str = "2020-01-01", discount: str = "0") -> str:
    return f"profile,{ENTP},{CORP},{plan},{day},V,{discount}\n"


def _load(state: Path, text: str) -> None:
    TariffStore.of(state).load(parse_tariffs(text, name="t.csv"), source="t.csv", data=b"")


@pytest.fixture
def state() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="starwrs-rating-") as tmp:
        yield Path(tmp)


def call(
    called: str = "912125559999",
    *,
    start: dt.datetime = WHEN,
    billable: int = 60,
    direction: str = "outbound",
    calling: str = "2001",
    dialled: str = "",
    answered: bool = True,
    trunk: str = "SIP/carrier-01",
    account: str = "",
) -> dict[str, Any]:
    return {
        "start": start,
        "duration": billable + 7,
        "billable": billable,
        "answered": answered,
        "calling": calling,
        "called": called,
        "dialled": dialled,
        "direction": direction,
        "account": account,
        "trunk": trunk,
        "call_id": "",
        "status": "",
        "source": "asterisk",
        "file": "Master.csv",
        "line": 1,
    }


_TYPES = {
    "start": pa.timestamp("us", "UTC"),
    "duration": pa.int64(),
    "billable": pa.int64(),
    "answered": pa.bool_(),
    "line": pa.int64(),
}


def table(calls: Sequence[dict[str, Any]]) -> pa.Table:
    names = list(call())
    return pa.table({n: pa.array([c[n] for c in calls], _TYPES.get(n, pa.string())) for n in names})


def rate(state: Path, calls: Sequence[dict[str, Any]]) -> Rated:
    rated = rate_calls(table(calls), entp_id=ENTP, corp_id=CORP, state_dir=state)
    seen = sorted(
        [*rated.rows.to_pylist(), *(r for r, _ in rated.rejected), *(r for r, _ in rated.skipped)]
    )
    assert seen == list(range(len(calls)))  # every call ends exactly once
    return rated


def cents(rated: Rated, column: str) -> list[int]:
    """A money column in cents, in the priced rows' (GMT) order."""
    return [int(v * 100) for v in rated.priced.column(column).to_pylist()]


def by_row(rated: Rated, column: str) -> dict[int, Any]:
    """Input row -> the priced value (money in cents)."""
    values = rated.priced.column(column).to_pylist()
    if isinstance(values[0], Decimal) and rated.priced.schema.field(column).type.scale == 2:
        values = [int(v * 100) for v in values]
    return dict(zip(rated.rows.to_pylist(), values, strict=True))


# -- the oracle ------------------------------------------------------------------------------


def half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def billed_seconds(seconds: int, first: int, step: int) -> int:
    if seconds <= 0:
        return 0
    if seconds <= first:
        return first
    return first + math.ceil((seconds - first) / step) * step


def oracle(
    seconds: int,
    *,
    rate: str,
    connect: str,
    first: int,
    step: int,
    minimum: str,
    discount: str,
    tax: str,
    intl: str,
    abroad: bool,
) -> tuple[int, int, int, int, int]:
    """(amount, nosurcharge_amt, tax, intl_surcharge) in cents and duration in tenths."""
    billed = billed_seconds(seconds, first, step)
    gross = half_up((Fraction(Decimal(rate)) * billed / 60 + Fraction(Decimal(connect))) * 100)
    gross = max(gross, int(Decimal(minimum) * 100))
    net = gross - half_up(gross * Fraction(Decimal(discount)) / 100)
    surcharge = int(Decimal(intl) * 100) if abroad else 0
    amount = net + surcharge
    tax_cents = half_up(amount * Fraction(Decimal(tax)) / 100)
    return amount, net, tax_cents, surcharge, max(1, math.ceil(seconds / 6))


def _decimal(places: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(0, high * 10**places).map(
        lambda v: str(Decimal(v).scaleb(-places)) if places else str(v)
    )


# -- charges ---------------------------------------------------------------------------------


@settings(max_examples=examples(300), deadline=None)
@given(
    first=st.integers(1, 120),
    step=st.integers(1, 120),
    rate_=_decimal(6, 5),
    connect=_decimal(6, 1),
    minimum=_decimal(2, 3),
    discount=_decimal(2, 100),
    tax=_decimal(4, 30),
    intl=_decimal(2, 2),
    seconds=st.lists(st.integers(0, 20_000), min_size=1, max_size=30),
    abroad=st.lists(st.booleans(), min_size=30, max_size=30),
)
@example(60, 60, "0.1", "0", "0", "0", "0", "0", [0, 1, 59, 60, 61, 120, 121], [False] * 30)
@example(
    30, 6, "0.085", "0.01", "0.25", "12.5", "3.25", "0.1", [0, 1, 29, 30, 31, 36, 37], [True] * 30
)
def test_charges_match_the_oracle(
    first: int,
    step: int,
    rate_: str,
    connect: str,
    minimum: str,
    discount: str,
    tax: str,
    intl: str,
    seconds: list[int],
    abroad: list[bool],
) -> None:
    tariff = (
        f"plan,P,Plan,USA,{first}/{step},{minimum},{tax},{intl}\n"
        f"rate,P,*,*,*,+,{rate_},{connect}\n" + _profile(discount=discount) + _site()
    )
    with tempfile.TemporaryDirectory(prefix="starwrs-rating-") as tmp:
        state = Path(tmp)
        _load(state, tariff)
        calls = [
            call("9011442079460000" if far else "912125559999", billable=s,
                 start=WHEN + dt.timedelta(seconds=n))
            for n, (s, far) in enumerate(zip(seconds, abroad, strict=False))
        ]  # fmt: skip
        rated = rate(state, calls)
    assert not rated.rejected
    expected = [
        oracle(s, rate=rate_, connect=connect, first=first, step=step, minimum=minimum,
               discount=discount, tax=tax, intl=intl, abroad=far)
        for s, far in zip(seconds, abroad, strict=False)
    ]  # fmt: skip
    got = list(
        zip(
            cents(rated, "amount"),
            cents(rated, "nosurcharge_amt"),
            cents(rated, "tax"),
            cents(rated, "intl_surcharge"),
            [int(v * 10) for v in rated.priced.column("duration").to_pylist()],
            strict=True,
        )
    )
    assert got == expected


# -- which line ------------------------------------------------------------------------------

_DIGITS = st.text("0123456789", min_size=0, max_size=5)


@settings(max_examples=examples(300), deadline=None)
@given(
    extensions=st.lists(_DIGITS, min_size=1, max_size=8, unique=True),
    picks=st.lists(st.tuples(st.integers(0, 7), st.text("0123456789", min_size=6, max_size=8)),
                   min_size=1, max_size=20),
)  # fmt: skip
def test_the_longest_prefix_wins(extensions: list[str], picks: list[tuple[int, str]]) -> None:
    prefixes = ["44" + e for e in extensions]
    # rate n+1 cents a minute for prefix n; 60/60 and 60 s: the amount names the line
    lines = "".join(f"rate,P,out,*,*,+{p},0.{n + 1:02d},0\n" for n, p in enumerate(prefixes))
    tariff = "plan,P,Plan,USA,60/60,0,0,0\n" + lines + _profile() + _site()
    numbers = [prefixes[i % len(prefixes)] + tail for i, tail in picks]
    numbers += ["44" + tail for _i, tail in picks]
    with tempfile.TemporaryDirectory(prefix="starwrs-rating-") as tmp:
        state = Path(tmp)
        _load(state, tariff)
        rated = rate(state, [call("9011" + n) for n in numbers])
    amounts = dict(zip(rated.rows.to_pylist(), cents(rated, "amount"), strict=True))
    reasons = dict(rated.rejected)
    for row, number in enumerate(numbers):
        matching = [n for n, p in enumerate(prefixes) if number.startswith(p)]
        if not matching:
            assert reasons[row].startswith(f"no tariff of plan P covers +{number} (outbound")
            continue
        best = max(matching, key=lambda n: len(prefixes[n]))
        assert amounts[row] == best + 1, (number, prefixes)


def test_a_specific_usage_period_and_direction_beat_a_wildcard(state: Path) -> None:
    _load(
        state,
        "plan,P,Plan,USA,60/60,0,0,0\n"
        "rate,P,*,*,*,+44,0.01,0\n"
        "rate,P,out,*,*,+44,0.02,0\n"
        "rate,P,*,*,1,+44,0.03,0\n"
        "rate,P,*,3,*,+44,0.04,0\n"
        "rate,P,*,3,1,+44,0.05,0\n"
        "rate,P,*,*,*,+4420,0.06,0\n"  # a longer prefix beats every specificity
        "rate,P,*,*,*,+1,0.07,0\n" + _profile() + _site(),
    )
    night = WHEN.replace(hour=5)  # 00:00 in New York: period 3
    rated = rate(
        state,
        [call("9011442179460000"), call("9011442079460000"), call("9011442179460000", start=night)],
    )
    assert by_row(rated, "amount") == {0: 5, 1: 6, 2: 4}


# -- periods ---------------------------------------------------------------------------------


def period_of(local: dt.datetime) -> str:
    if (local.month, local.day) in ref.HOLIDAYS:
        return "7"
    if local.isoweekday() >= 6:
        return "4"
    if 8 <= local.hour <= 16:
        return "1"
    return "2" if 17 <= local.hour <= 22 else "3"


_PERIOD_RATE = {"1": "0.01", "2": "0.02", "3": "0.03", "4": "0.04", "7": "0.07"}
_BOUNDARIES = [
    dt.datetime(2026, 3, 2, 12, 59, 59, tzinfo=UTC),  # 07:59:59 New York
    dt.datetime(2026, 3, 2, 13, 0, 0, tzinfo=UTC),  # 08:00
    dt.datetime(2026, 3, 2, 21, 59, 59, tzinfo=UTC),  # 16:59:59
    dt.datetime(2026, 3, 2, 22, 0, 0, tzinfo=UTC),  # 17:00
    dt.datetime(2026, 3, 3, 3, 59, 59, tzinfo=UTC),  # 22:59:59
    dt.datetime(2026, 3, 3, 4, 0, 0, tzinfo=UTC),  # 23:00
    dt.datetime(2026, 3, 8, 6, 59, 59, tzinfo=UTC),  # 01:59:59 EST, DST starts
    dt.datetime(2026, 3, 8, 7, 0, 0, tzinfo=UTC),  # 03:00 EDT
    dt.datetime(2026, 11, 1, 5, 59, 59, tzinfo=UTC),  # 01:59:59 EDT
    dt.datetime(2026, 11, 1, 6, 0, 0, tzinfo=UTC),  # 01:00 EST again
    dt.datetime(2026, 7, 4, 3, 59, 59, tzinfo=UTC),  # 23:59:59 on 3 July
    dt.datetime(2026, 7, 4, 4, 0, 0, tzinfo=UTC),  # Independence Day
    dt.datetime(2026, 3, 6, 4, 59, 59, tzinfo=UTC),  # Thursday 23:59:59
    dt.datetime(2026, 3, 7, 5, 0, 0, tzinfo=UTC),  # Saturday 00:00
]


@settings(max_examples=examples(200), deadline=None)
@given(
    zone=st.sampled_from([NY, "Asia/Kolkata", "Australia/Lord_Howe", "Europe/London", "UTC"]),
    starts=st.lists(
        st.one_of(
            st.sampled_from(_BOUNDARIES),
            st.datetimes(
                dt.datetime(2025, 1, 1), dt.datetime(2027, 12, 31), timezones=st.just(UTC)
            ),
        ),
        min_size=1,
        max_size=25,
    ),
)
def test_the_rate_period_is_the_sites_wall_clock(zone: str, starts: list[dt.datetime]) -> None:
    lines = "".join(f"rate,P,*,*,{p},+,{r},0\n" for p, r in _PERIOD_RATE.items())
    with tempfile.TemporaryDirectory(prefix="starwrs-rating-") as tmp:
        state = Path(tmp)
        _load(state, "plan,P,Plan,USA,60/60,0,0,0\n" + lines + _profile() + _site(zone))
        rated = rate(state, [call(start=s) for s in starts])
    by_row = dict(zip(rated.rows.to_pylist(), rated.priced.to_pylist(), strict=True))
    for row, start in enumerate(starts):
        local = start.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
        priced = by_row[row]
        assert priced["lst"] == local.replace(microsecond=0)
        assert priced["gmt"] == start.replace(tzinfo=None, microsecond=0)
        assert int(priced["amount"] * 100) == int(Decimal(_PERIOD_RATE[period_of(local)]) * 100)


# -- numbers ---------------------------------------------------------------------------------


@settings(max_examples=examples(500), deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text("0123456789+-(). /\tx", max_size=20),
            st.from_regex(
                r"\A(9?(1?[2-9]\d\d[2-9]\d{6}|011[2-9]\d{7,12})|\+\d{7,16}|[2-9]\d{6})\Z"
            ),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_numbers_are_normalized_as_the_collector_says(numbers: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="starwrs-rating-") as tmp:
        state = Path(tmp)
        _load(state, "plan,P,Plan,USA,60/60,0,0,0\nrate,P,*,*,*,+,0.01,0\n" + _profile() + _site())
        rated = rate(state, [call(n) for n in numbers])
    by_row = dict(zip(rated.rows.to_pylist(), rated.priced.column("term_number").to_pylist(),
                      strict=True))  # fmt: skip
    reasons = dict(rated.rejected)
    for row, number in enumerate(numbers):
        e164 = normalize_number(number, home_npa="212", access_code="9")
        if e164 is None:
            assert reasons[row] == f"called number '{number}' is not E.164/NANP"
        elif row in reasons:
            assert reasons[row] == f"{e164} has no known country calling code"
        else:
            assert by_row[row] == (e164[2:] if e164.startswith("+1") else e164[1:])


# -- refusals --------------------------------------------------------------------------------


def test_every_refusal_has_its_reason(state: Path) -> None:
    _load(
        state,
        "plan,P,Plan,USA,60/60,0,0,0\nrate,P,out,*,*,+1,0.05,0\n"
        + _profile(day="2026-01-01")
        + _site(trunk="SIP/carrier"),
    )
    rated = rate(
        state,
        [
            call("912125559999"),  # 0 priced
            call("9011442079460000"),  # 1 no tariff covers +44
            call("912125559999", start=dt.datetime(2025, 12, 31, 12, tzinfo=UTC)),  # 2
            call("912125559999", trunk="DAHDI/1"),  # 3 no site for the trunk
            call("2001", direction="inbound", calling=""),  # 4 withheld
            call("2001", direction="inbound", calling="12"),  # 5 not E.164
            call("12"),  # 6 not E.164
            call("2002", direction="internal"),  # 7 skipped
            call("912125559999", answered=False, billable=0),  # 8 skipped
            call("912125559999", direction="sideways"),  # 9
            call("9+999123456789"),  # 10 no country
            call("912125559999", billable=60_000_000),  # 11 too long
            call("2001", direction="inbound", calling="7195355100"),  # 12 no inbound tariff
        ],
    )
    assert rated.rows.to_pylist() == [0]
    assert dict(rated.rejected) == {
        1: "no tariff of plan P covers +442079460000 (outbound, usage 3, period 1) on 2026-03-02",
        2: f"no rating profile of {ENTP}/{CORP} is active on 2025-12-31",
        3: f"no site of {ENTP}/{CORP} takes trunk 'DAHDI/1' (and none is for any trunk)",
        4: "the calling number is withheld",
        5: "calling number '12' is not E.164/NANP",
        6: "called number '12' is not E.164/NANP",
        9: "direction 'sideways' is not inbound, outbound or internal",
        10: "+999123456789 has no known country calling code",
        11: "billable time 60000000 s is more than the datamart's 999999.9 minutes",
        12: "no tariff of plan P covers +17195355100 (inbound, usage 1, period 1) on 2026-03-02",
    }
    assert dict(rated.skipped) == {7: "internal call (no carrier service)", 8: "not answered"}


def test_a_corp_without_tariffs_prices_nothing(state: Path) -> None:
    rated = rate(state, [call()])
    assert rated.priced.num_rows == 0
    assert rated.rejected == [(0, f"no site of {ENTP}/{CORP} takes trunk 'SIP/carrier-01'"
                                   " (and none is for any trunk)")]  # fmt: skip


def test_profiles_by_activation_day_and_the_corps_own(state: Path) -> None:
    _load(
        state,
        "plan,A,A,USA,60/60,0,0,0\nrate,A,*,*,*,+,0.01,0\n"
        "plan,B,B,USA,60/60,0,0,0\nrate,B,*,*,*,+,0.02,0\n"
        "plan,C,C,USA,60/60,0,0,0\nrate,C,*,*,*,+,0.03,0\n"
        f"profile,{ENTP},*,A,2026-01-01,V,0\n"
        f"profile,{ENTP},*,B,2026-03-01,V,0\n"  # before the corp's own: the enterprise's
        f"profile,{ENTP},{CORP},C,2026-03-10,S,0\n" + _site(),
    )
    days = [
        dt.datetime(2026, 2, 1, 14, tzinfo=UTC),
        dt.datetime(2026, 3, 2, 14, tzinfo=UTC),
        dt.datetime(2026, 3, 10, 3, 59, tzinfo=UTC),
        dt.datetime(2026, 3, 10, 4, tzinfo=UTC),
    ]
    rated = rate(state, [call(start=d) for d in days])
    # 2026-03-10 03:59 UTC is still 9 March in New York (EDT since the 8th), 04:00 is the 10th
    assert by_row(rated, "amount") == {0: 1, 1: 2, 2: 2, 3: 3}
    assert by_row(rated, "product") == {0: "V", 1: "V", 2: "V", 3: "S"}


def test_inbound_toll_free_and_geography(state: Path) -> None:
    _load(state, "plan,P,Plan,USA,60/60,0,0,0\nrate,P,*,*,*,+,0.01,0\n" + _profile() + _site())
    rated = rate(
        state,
        [
            call("8005551234", direction="inbound", calling="7195355100", dialled="8005551234"),
            call("914165550000"),  # Toronto: Canadian
            call("9011525555123456"),  # Mexico City
            call("912125559999", account="SALES"),  # same city
        ],
    )
    rows = rated.priced.to_pylist()
    inbound = rows[0]
    assert (inbound["product"], inbound["access_code"], inbound["in_out"]) == ("T", "B", "1")
    assert (inbound["tollfree"], inbound["orig_number"], inbound["term_number"]) == (
        "8005551234", "7195355100", "2125551000",
    )  # fmt: skip
    assert (inbound["orig_city"], inbound["orig_state"], inbound["range"]) == (
        "COLORADO SPRINGS", "CO", "6",
    )  # fmt: skip
    assert (rows[1]["use_cd"], rows[1]["subusage"], rows[1]["term_state"]) == ("3", "1", "ON")
    assert (rows[2]["use_cd"], rows[2]["subusage"], rows[2]["term_country_cd"]) == ("3", "3", "052")
    assert rows[2]["term_country_name"] == "MEXICO"
    assert (rows[3]["use_cd"], rows[3]["range"], rows[3]["idacc"]) == ("6", "A", "SALES")


# -- the datamart ----------------------------------------------------------------------------


def test_priced_rows_load_unchanged_and_rerate(state: Path) -> None:
    tariff = (
        "plan,P,Plan,USA,{inc},0.25,3,0.10\nrate,P,*,*,*,+,{rate},0.01\n" + _profile() + _site()
    )
    _load(state, tariff.format(inc="30/6", rate="0.08"))
    calls = [call("912125559999", billable=s, start=WHEN + dt.timedelta(minutes=s))
             for s in (0, 1, 29, 61, 95, 600)]  # fmt: skip
    calls.append(call("9011442079460000", billable=61))
    rated = rate(state, calls)
    con = open_datamart(state / "scratch.duckdb")
    try:
        assert load_calls(con, rated.priced).rows == len(calls)
        stored = export_calls(con, CORP)
        assert sorted(v for v in stored.column("amount").to_pylist()) == sorted(
            rated.priced.column("amount").to_pylist()
        )
        # a tariff change: re-rating the stored rows gives what rating the calls gives now
        _load(state, tariff.format(inc="60/6", rate="0.11"))
        again = rerate_priced(stored, entp_id=ENTP, corp_id=CORP, state_dir=state)
        fresh = rate(state, calls)
    finally:
        con.close()
    assert not again.rejected
    key = ("gmt", "term_number")
    old = {tuple(r[k] for k in key): r for r in again.priced.to_pylist()}
    for row in fresh.priced.to_pylist():
        for column in ("amount", "nosurcharge_amt", "tax", "intl_surcharge"):
            assert old[tuple(row[k] for k in key)][column] == row[column], column
