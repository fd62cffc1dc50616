"""The bulk rating (``rate_calls``, :mod:`starwrs.proxies.harvest.rating_bulk`) against
the one rating statement it replaced (``rate_calls_reference``): for random tariffs
(plans, prefixes, wildcards, increments, profiles by day, sites by trunk, zones, outside
digits, main numbers) and random calls (numbers as PBXs write them and as they should
not, every direction, unanswered, no start, DST changes, long calls), both give the same
priced rows in the same order, and the same rejections and skips with the same reasons.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from starwrs.proxies.harvest.rating import Rated, rate_calls, rate_calls_reference
from starwrs.proxies.harvest.tariffs import TariffError, TariffStore, parse_tariffs

from .test_rating import _TYPES, CORP, ENTP, examples

ZONES = ("America/New_York", "America/Chicago", "Europe/London", "Australia/Lord_Howe", "UTC")
PREFIXES = (
    "+",
    "+1",
    "+1212",
    "+1212555",
    "+1800",
    "+1416",
    "+44",
    "+4420",
    "+52",
    "+33",
    "+8",
    "+1907",
    "+1808",
    "+1787",
)

_digits = st.text("0123456789", min_size=0, max_size=16)
_valid = st.sampled_from(
    [
        "912125559999",
        "2125559999",
        "+12125559999",
        "+442079460000",
        "9011442079460000",
        "+18005551234",
        "+525512345678",
        "+13125550000",
        "4165550100",
        "19075551234",
        "5559999",
        "9011525512345678",
        "+33142686000",
        "+81312345678",
        "+17875550000",
    ]
)
numbers = st.one_of(
    _valid,
    _valid,
    _valid,
    st.sampled_from(["2001", "2002", "12"]),
    st.sampled_from(
        [
            "2001",
            "12",
            "",
            " ",
            "9",
            "911",
            "*72",
            "912125559999",
            "2125559999",
            "12125559999",
            "5559999",
            "95559999",
            "+12125559999",
            "+442079460000",
            "9011442079460000",
            "011442079460000",
            "+18005551234",
            "8005551234",
            "18885550000",
            "+525512345678",
            "+4915112345678",
            "+19075551234",
            "+14165551234",
            "+1 (212) 555-9999",
            "1-212-555-9999",
            "\t2125559999 ",
            "+1212555999",
            "+0123456789",
            "01144",
            "9+44",
            "2125559999x",
            "٢١٢٥٥٥٩٩٩٩",
            "+1 416 555 0100",
            "(800) 555.1234",
            "90115255123456",
        ]
    ),
    _digits,
    _digits.map("+{}".format),
    _digits.map("9{}".format),
    st.text(max_size=12),
)


@st.composite
def tariffs(draw: st.DrawFn) -> str:
    lines = []
    plans = draw(st.lists(st.sampled_from(["P", "Q"]), min_size=1, max_size=2, unique=True))
    for plan in plans:
        inc = draw(st.sampled_from(["60/60", "30/6", "6/6", "1/1"]))
        lines.append(
            f"plan,{plan},Plan {plan},USA,{inc},{draw(st.sampled_from(['0.00', '0.25']))},"
            f"{draw(st.sampled_from(['0', '3.0', '8.25']))},"
            f"{draw(st.sampled_from(['0', '0.10']))}"
        )
        seen = set()
        if draw(st.integers(0, 3)):  # mostly a line for everything: calls get priced
            seen.add(("*", "*", "*", "+"))
            lines.append(f"rate,{plan},*,*,*,+,{draw(st.sampled_from(['0.0900', '0.25']))},0")
        for _ in range(draw(st.integers(0, 12))):
            key = (
                draw(st.sampled_from(["in", "out", "*"])),
                draw(st.sampled_from(["*", "1", "2", "3", "4", "6", "7"])),
                draw(st.sampled_from(["*", "1", "2", "3", "4", "7"])),
                draw(st.sampled_from(PREFIXES)),
            )
            if key in seen:
                continue
            seen.add(key)
            rate = draw(st.sampled_from(["0.0500", "0.1234", "1.5", "0.0001", "0"]))
            extra = draw(st.sampled_from(["", ",30/6", ",60/60,0.50"]))
            lines.append(
                f"rate,{plan},{','.join(key)},{rate},{draw(st.sampled_from(['0', '0.05']))}{extra}"
            )
    days = draw(
        st.lists(
            st.dates(dt.date(2019, 1, 1), dt.date(2030, 1, 1)), min_size=0, max_size=3, unique=True
        )
    )
    if draw(st.integers(0, 3)) and dt.date(2019, 1, 1) not in days:
        days.append(dt.date(2019, 1, 1))  # mostly a profile from the start
    for day in days:
        plan = draw(st.sampled_from(plans))
        corp = draw(st.sampled_from([CORP, "*"]))
        lines.append(
            f"profile,{ENTP},{corp},{plan},{day.isoformat()},"
            f"{draw(st.sampled_from(['V', 'S']))},{draw(st.sampled_from(['0', '10', '12.5']))}"
        )
    trunks = draw(
        st.lists(
            st.sampled_from(["*", "SIP/a", "SIP/ab", "PJSIP/"]), min_size=0, max_size=3, unique=True
        )
    )
    if draw(st.integers(0, 3)) and "*" not in trunks:
        trunks.append("*")
    for k, trunk in enumerate(trunks):
        main = draw(
            st.sampled_from(
                [
                    "+12125551000",
                    "+13125551000",
                    "+442079460000",
                    "+14165550100",
                    "+18005550000",
                    "+999123456",
                ]
            )
        )
        lines.append(
            f"site,{ENTP},{CORP},{trunk},Y000100{k},N000100{k},{main},"
            f"{draw(st.sampled_from(['4', '1', '5']))},{draw(st.sampled_from(ZONES))},"
            f"{draw(st.sampled_from(['9', '', '0', '99']))}"
        )
    return "\n".join(lines) + "\n"


_starts = st.one_of(
    st.datetimes(dt.datetime(2019, 6, 1), dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC)),
    st.sampled_from(
        [
            dt.datetime(2026, 3, 8, 6, 59, 59, tzinfo=dt.UTC),
            dt.datetime(2026, 3, 8, 7, 0, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC),
            dt.datetime(2026, 12, 25, 12, 0, tzinfo=dt.UTC),
            dt.datetime(2026, 7, 4, 3, 59, tzinfo=dt.UTC),
            dt.datetime(1969, 12, 31, 23, 50, tzinfo=dt.UTC),
        ]
    ),
)
_starts = st.one_of(_starts, _starts, _starts, _starts, _starts, st.none())


@st.composite
def calls(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Mostly calls that price, the rest anything."""
    out = []
    for _ in range(draw(st.integers(0, 25))):
        if draw(st.integers(0, 3)):  # a plain call, so that most are priced
            billable = draw(st.integers(0, 4000))
            start = draw(_starts.filter(lambda t: t is not None))
            answered, direction = True, draw(st.sampled_from(["inbound", "outbound"]))
            calling, called = draw(_valid), draw(_valid)
            dialled = draw(st.one_of(_valid, st.just("")))
            trunk = "SIP/abc-1"
        else:
            billable = draw(
                st.one_of(
                    st.integers(0, 4000),
                    st.sampled_from([59_999_994, 59_999_995, 10**9]),
                    st.none(),
                )
            )
            start = draw(_starts)
            answered = draw(st.sampled_from([True, False, None]))
            direction = draw(st.sampled_from(["inbound", "outbound", "internal", None, "sideways"]))
            calling, called, dialled = (draw(st.one_of(numbers, st.none())) for _ in range(3))
            trunk = draw(
                st.one_of(
                    st.sampled_from(["SIP/abc-1", "SIP/a-2", "PJSIP/x", "DAHDI/1", ""]), st.none()
                )
            )
        out.append(
            {
                "start": start,
                "duration": (billable or 0) + 5,
                "billable": billable,
                "answered": answered,
                "calling": calling,
                "called": called,
                "dialled": dialled,
                "direction": direction,
                "account": draw(
                    st.one_of(st.sampled_from(["", "1234", "x" * 20, "ünï"]), st.none())
                ),
                "trunk": trunk,
                "call_id": "",
                "status": "",
                "source": "asterisk",
                "file": "f",
                "line": 1,
            }
        )
    return out


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    names = [
        "start",
        "duration",
        "billable",
        "answered",
        "calling",
        "called",
        "dialled",
        "direction",
        "account",
        "trunk",
        "call_id",
        "status",
        "source",
        "file",
        "line",
    ]
    return pa.table({n: pa.array([r[n] for r in rows], _TYPES.get(n, pa.string())) for n in names})


def _same(got: Rated, want: Rated) -> None:
    assert got.rows.to_pylist() == want.rows.to_pylist()
    assert got.rejected == want.rejected
    assert got.skipped == want.skipped
    assert got.priced.column_names == want.priced.column_names
    assert got.priced.to_pylist() == want.priced.to_pylist()
    for column in got.priced.columns:  # dictionaries Arrow can unify (with another batch's)
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                assert chunk.dictionary.null_count == 0
    pa.concat_tables([got.priced, got.priced]).combine_chunks()


@settings(max_examples=examples(100), deadline=None)
@given(text=tariffs(), rows=calls())
def test_the_bulk_rating_is_the_statement(text: str, rows: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory(prefix="starwrs-rating-bulk-") as tmp:
        state = Path(tmp)
        try:
            tariff = parse_tariffs(text, name="t.csv")
        except TariffError:
            return  # a drawn file the loader refuses
        TariffStore.of(state).load(tariff, source="t.csv", data=b"")
        batch = _table(rows)
        want = rate_calls_reference(batch, entp_id=ENTP, corp_id=CORP, state_dir=state)
        got = rate_calls(batch, entp_id=ENTP, corp_id=CORP, state_dir=state)
        _same(got, want)
        again = rate_calls(batch, entp_id=ENTP, corp_id=CORP, state_dir=state)  # warm caches
        _same(again, want)
