"""Report SQL: its output, its errors, and every report held to an independent oracle.

The oracle reads every call of a small generated datamart with one plain SQL query of
its own (inner joins, ``gmt.datetime`` rather than the key arithmetic the generator
uses) and computes each report in Python -- filters, groups, sort, threshold, break
subtotals, totals, derived columns with exact fractions, translations, formatting.
The formatter's records for the generated SQL must equal the oracle's, line for line:
for every standard template of the Report Manager, for filters on each level of both
hierarchies, and for report requests Hypothesis draws.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starwrs.fixtures.datamart import corp_specs, generate_calls
from starwrs.grammar import parse
from starwrs.grammar.catalogue import validate
from starwrs.grammar.catalogue_fulfil import FulfilAddReportDefinition
from starwrs.grammar.errors import ErrorCode
from starwrs.proxies.dss.formatter import ReportFormatter, iter_rows
from starwrs.proxies.dss.sql import LISTINGS, QueryError, build_query, hierarchy_entries
from starwrs.proxies.rm.templates import TEMPLATES, Template
from starwrs.storage.datamart import reference as ref
from starwrs.storage.datamart.schema import migrate
from starwrs.storage.datamart.store import load_calls

from ..conftest import scaled

CORPS = ("90000003", "90000004")


def stamp(moment: dt.datetime) -> str:
    """``YYYYMMDDhhmm``."""
    return moment.strftime("%Y%m%d%H%M")


T = dt.datetime
#: GMT START/END pairs: a weekday, the US DST change (Sunday 1998-04-05 07:00 GMT) and
#: the seed's example days in June
PERIODS: tuple[tuple[dt.datetime, dt.datetime], ...] = (
    (T(1998, 4, 1, 6, 0), T(1998, 4, 2, 5, 59)),
    (T(1998, 4, 4, 12, 0), T(1998, 4, 6, 11, 59)),
    (T(1998, 6, 2, 0, 0), T(1998, 6, 4, 23, 59)),
)


# -- the datamarts -----------------------------------------------------------------------------


def _mart(seed: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    migrate(con)
    specs = corp_specs(CORPS)
    for start, days, calls in ((dt.date(1998, 3, 31), 7, 2600), (dt.date(1998, 6, 2), 3, 1200)):
        for batch in generate_calls(specs, calls, start=start, days=days, seed=seed):
            load_calls(con, batch)
    return con


@dataclass(frozen=True)
class Mart:
    con: duckdb.DuckDBPyConnection
    calls: list[dict[str, Any]]

    def current(self, in_out: str) -> list[dict[str, Any]]:
        """The calls of direction *in_out* in :data:`PERIODS`."""
        return [
            c
            for c in self.calls
            if c["in_out"] == in_out and any(a <= c["gmt"] <= b for a, b in PERIODS)
        ]

    def values(self, key: str, in_out: str = "0", **where: object) -> list[Any]:
        """The distinct values of *key* in the current calls matching *where*, sorted."""
        found = {
            c[key]
            for c in self.current(in_out)
            if all(c[k] == v for k, v in where.items()) and c[key] not in (None, "")
        }
        return sorted(found)


_RAW = """
SELECT pb.corp_id, bc.billing_id, bc.service_loc_id, g.datetime AS gmt, l.rate,
       a.in_out, a.access_code, u.use_cd, pb.range, pb.duration, pb.amount, pb.tax,
       pb.pay_phone_cd, pb.card_key, c.card_number, pb.tollfree_key, t.tollfree,
       pb.idacc_key, i.idacc, r.country_cd, r.country_name, r.state_cd, r.city_name,
       r.npa, r.nxx, pb.orig_number, pb.dialed_number
  FROM perspective_base pb
  JOIN billing_corp bc ON bc.billing_corp_key = pb.billing_corp_key
  JOIN gmt g ON g.time_key = pb.gmt_key
  JOIN lst l ON l.time_key = pb.lst_key
  JOIN access_type a ON a.access_type_key = pb.access_type_key
  JOIN usage u ON u.usage_key = pb.usage_key
  JOIN card c ON c.card_key = pb.card_key
  JOIN tollfree t ON t.tollfree_key = pb.tollfree_key
  JOIN idacc i ON i.idacc_key = pb.idacc_key
  JOIN report_geo r ON r.geo_key = pb.report_geo_key
"""


@functools.cache
def mart(seed: int) -> Mart:
    con = _mart(seed)
    cursor = con.execute(_RAW)
    names = [d[0] for d in cursor.description]
    calls = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    assert len(calls) == 3800
    return Mart(con, calls)


@pytest.fixture(scope="module", params=[1, 2], ids=["seed1", "seed2"])
def data(request: pytest.FixtureRequest) -> Mart:
    return mart(request.param)


# -- report requests ---------------------------------------------------------------------------


def esc(text: str) -> str:
    return re.sub(r"([\\,<>=~\x01])", r"\\\1", text)


@dataclass(frozen=True)
class Request:
    """A report request as data: renders to an Appendix D ARD, and the oracle reads it."""

    template: Template
    columns: tuple[int, ...]
    billing: tuple[tuple[str, ...], ...] = tuple((c,) for c in CORPS)
    flat_billing: bool = False
    geo: tuple[tuple[str, ...], ...] = ()
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sort: tuple[tuple[int, str], ...] | None = None
    reccount: int | None = None
    total_mode: int = 0
    subtotals: tuple[int, ...] = ()
    periods: tuple[tuple[dt.datetime, dt.datetime], ...] = PERIODS
    offset: int = -5
    entitled: tuple[str, ...] = CORPS

    def text(self) -> str:
        if self.flat_billing:
            (entry,) = self.billing
            billing = "<" + ",".join(esc(c) for c in (*entry, "", "")[:3]) + ">"
        else:
            billing = "".join(
                "INBOUND<" + "".join(f"<{esc(c)},{esc(c)}>" for c in (*e, "NA", "NA")[:3]) + ">"
                for e in self.billing
            )
        parts = [f"BILLING={billing}"]
        if self.geo:
            geo = "".join(
                "GEO<" + "".join(f"<{esc(c)},{esc(c)}>" for c in (*e, *["NA"] * (5 - len(e)))) + ">"
                for e in self.geo
            )
            parts.append(f"GEO={geo}")
        parts += [f"{k}=<{'~'.join(esc(v) for v in vs)}>" for k, vs in self.filters.items()]
        pairs = ",".join(f"START={stamp(a)},END={stamp(b)}" for a, b in self.periods)
        members = [
            "ENTPID=00022924",
            "USERID=jeanvnet2",
            f"STDRPTID={self.template.template_id}",
            "USERRPTID=1",
            "REQUESTID=1",
            "PRODUCT=S",
            f"THRESHOLD=<RECCOUNT={self.reccount}>" if self.reccount else "THRESHOLD=<ANI=20>",
            f"COLUMNS=<{'~'.join(map(str, self.columns))}>",
            f"FILTERS=<{','.join(parts)}>",
            f"SORTBY=<{'~'.join(f'{c}{o}' for c, o in self.sort)}>" if self.sort else "",
            f"SCHEDULE=A<{pairs}>",
            f"TIMEZONE=<LABEL=XXX,OFFSET={self.offset}>",
            f"TOTALMODE={self.total_mode}",
            f"SUBTOTCOL=<{'~'.join(map(str, self.subtotals))}>" if self.subtotals else "",
        ]
        return "ARD<" + ",".join(m for m in members if m) + ">"

    def ard(self) -> FulfilAddReportDefinition:
        message = validate(parse(self.text()), "DSS")
        assert isinstance(message, FulfilAddReportDefinition)
        return message


def run(data: Mart, request: Request) -> tuple[list[list[str]], tuple[tuple[int, str], ...]]:
    query = build_query(request.ard(), request.entitled)
    formatter = ReportFormatter(query.plan)
    records = list(formatter.records(iter_rows(data.con.execute(query.sql, query.params), 97)))
    return records, formatter.totals


# -- the oracle --------------------------------------------------------------------------------

DIMS = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 44, 54, 55, 105, 114}
FACTS = {36: 1, 37: 2, 58: 2, 67: 0}  # colid -> decimals
DERIVED: dict[int, tuple[int, int, bool, int]] = {  # colid -> (num, den, den is total, dec)
    61: (36, 36, True, 1),
    62: (67, 67, True, 1),
    63: (58, 58, True, 1),
    64: (36, 67, False, 2),
    65: (58, 36, False, 2),
    66: (58, 67, False, 2),
}
ACCESS_ORDER = {code: n for n, (code, _v, _i) in enumerate(ref.ACCESS_TYPES, start=1)}
DURATIONS = [(code, Decimal(str(lo)), Decimal(str(hi))) for code, lo, hi in ref.DURATION_RANGES]
RESTRICT = {
    "Off Peak Calls": lambda c: c["rate"] != "1",
    "Payphone Report": lambda c: c["pay_phone_cd"] == "P",
    "Calling Card Summary": lambda c: c["card_key"] != 0,
    "Most Active Calling Cards": lambda c: c["card_key"] != 0,
    "Most Active Toll Free Numbers": lambda c: c["tollfree_key"] != 0,
    "IDACC/Supp Code Summary": lambda c: c["idacc_key"] != 0,
}


def literal(colid: int, code: object) -> str:
    text = str(code)
    if colid == 10:
        return {c: v for c, v, _ in ref.ACCESS_TYPES if v}.get(text, text)
    if colid == 12:
        return calendar.day_name[(int(text) + 5) % 7]  # 1 = Sunday
    if colid == 13:
        return next(f"{lo:.1f} to {hi:.1f}" for c, lo, hi in ref.DURATION_RANGES if c == text)
    if colid == 14:
        return "Yes" if text == "1" else "No"
    if colid == 15:
        return dict(ref.RATE_PERIODS)[text].split()[0].title()
    if colid == 105:
        return dict(ref.USAGE)[text]
    if colid == 114:
        band = int(text) if text.isdigit() else "ABCDEFGHI".index(text) + 1
        low, high = ref.DISTANCE_BANDS[band - 1]
        return f"{low} TO {high} MILES" if high < 99999 else f"{low}+ MILES"
    return text


def dim_value(colid: int, call: dict[str, Any], offset: int) -> Any:
    local = call["gmt"] + dt.timedelta(hours=offset)
    return {
        1: lambda: local.date(),
        2: lambda: local.strftime("%H:%M"),
        3: lambda: call["orig_number"],
        4: lambda: call["dialed_number"],
        5: lambda: call["tollfree"],
        6: lambda: call["country_cd"],
        7: lambda: call["country_name"],
        8: lambda: call["card_number"],
        9: lambda: call["idacc"],
        10: lambda: call["access_code"],
        11: lambda: local.hour,
        12: lambda: local.isoweekday() % 7 + 1,
        13: lambda: next(c for c, lo, hi in DURATIONS if lo <= call["duration"] < hi),
        14: lambda: 1 if call["pay_phone_cd"] == "P" else 0,
        15: lambda: call["rate"],
        16: lambda: call["corp_id"],
        17: lambda: call["billing_id"],
        44: lambda: call["npa"],
        54: lambda: call["city_name"],
        55: lambda: call["state_cd"],
        105: lambda: call["use_cd"],
        114: lambda: call["range"],
    }[colid]()


def dim_sort(colid: int, value: Any) -> Any:
    return ACCESS_ORDER[value] if colid == 10 and value is not None else value


def fact_value(colid: int, call: dict[str, Any]) -> Any:
    return {36: call["duration"], 37: call["amount"] + call["tax"], 58: call["amount"], 67: 1}[
        colid
    ]


def like(value: str | None, pattern: str) -> bool:
    if value is None:
        return False
    regex = ".*".join(re.escape(p) for p in pattern.split("*"))
    return re.fullmatch(regex, value, re.DOTALL) is not None


def matches(value: str | None, wanted: Sequence[str], *, ranges: bool = False) -> bool:
    for w in wanted:
        if ranges and re.fullmatch(r"[0-9]+-[0-9]+", w):
            low, high = sorted(w.split("-"))
            if value is not None and low <= value <= high:
                return True
        elif "*" in w:
            if like(value, w):
                return True
        elif value == w:
            return True
    return False


def selected(request: Request, call: dict[str, Any]) -> bool:
    inbound = request.template.direction == "I"
    if call["in_out"] != ("1" if inbound else "0"):
        return False
    billing = [e for e in request.billing if e[0] in request.entitled]
    levels = ("corp_id", "billing_id", "service_loc_id")
    if not any(all(call[k] == v for k, v in zip(levels, e, strict=False)) for e in billing):
        return False
    if not any(a <= call["gmt"] <= b for a, b in request.periods):
        return False
    geo_levels = ("country_cd", "state_cd", "city_name", "npa", "nxx")
    if request.geo and not any(
        all(call[k] == v for k, v in zip(geo_levels, e, strict=False)) for e in request.geo
    ):
        return False
    f = request.filters
    own = {
        "ACCESS": "IACCESS" if inbound else "OACCESS",
        "USAGE": "IUSAGE" if inbound else "OUSAGE",
        "DISTRANGE": "IDISTRANGE" if inbound else "ODISTRANGE",
    }
    if own["ACCESS"] in f and call["access_code"] not in f[own["ACCESS"]]:
        return False
    if own["USAGE"] in f and call["use_cd"] not in f[own["USAGE"]]:
        return False
    if own["DISTRANGE"] in f and call["range"] not in f[own["DISTRANGE"]]:
        return False
    if "DURRANGE" in f and dim_value(13, call, 0) not in f["DURRANGE"]:
        return False
    if "CARDNO" in f and not matches(call["card_number"], f["CARDNO"]):
        return False
    if "IDAC" in f and not matches(call["idacc"], f["IDAC"]):
        return False
    number = call["tollfree"] if inbound else call["dialed_number"]
    if "NDIALED" in f and not matches(number, f["NDIALED"], ranges=True):
        return False
    restriction = RESTRICT.get(request.template.title)
    return restriction is None or restriction(call)


def half_up(value: Fraction | Decimal, decimals: int) -> str:
    """*value* rounded half away from zero to *decimals* places, as plain text."""
    exact = Fraction(value) * 10**decimals
    rounded = math.floor(abs(exact) + Fraction(1, 2))
    return format(Decimal(-rounded if exact < 0 else rounded).scaleb(-decimals), "f")


def compare(a: Any, b: Any, descending: bool) -> int:
    if a is None or b is None:  # empty values last, either way
        return (a is None) - (b is None)
    if a == b:
        return 0
    return (1 if a > b else -1) * (-1 if descending else 1)


def oracle(data: Mart, request: Request) -> tuple[list[list[str]], tuple[tuple[int, str], ...]]:
    template = request.template
    columns = tuple(dict.fromkeys(request.columns))
    dims = [c for c in columns if c in DIMS]
    listing = template.title in LISTINGS
    needed = [c for c in columns if c in FACTS]
    for c in columns:
        if c in DERIVED:
            needed += [DERIVED[c][0], DERIVED[c][1]]
    facts = list(dict.fromkeys(needed))
    calls = [c for c in data.calls if selected(request, c)]

    # the report's rows: (dim values, fact sums)
    rows: list[tuple[tuple[Any, ...], dict[int, Any]]] = []
    if listing:
        for c in calls:
            dv = tuple(dim_value(d, c, request.offset) for d in dims)
            rows.append((dv, {f: fact_value(f, c) for f in facts}))
    else:
        groups: dict[tuple[Any, ...], dict[int, Any]] = {}
        for c in calls:
            dv = tuple(dim_value(d, c, request.offset) for d in dims)
            sums = groups.setdefault(dv, dict.fromkeys(facts, 0))
            for f in facts:
                sums[f] += fact_value(f, c)
        rows = list(groups.items())

    # sort: SORTBY (or the template's), then every dimension and fact ascending
    if request.sort:
        first: dict[int, str] = {}
        for c, o in request.sort:
            first.setdefault(c, o)
        keys = list(first.items())
    else:
        keys = [(k.column, k.order) for k in template.sort if k.column in columns]
    all_totals = {f: sum(r[1][f] for r in rows) for f in facts}

    def sort_value(row: tuple[tuple[Any, ...], dict[int, Any]], colid: int) -> Any:
        if colid in DERIVED:
            num, den, total, _ = DERIVED[colid]
            d = all_totals[den] if total else row[1][den]
            if d == 0:
                return None
            exact = Fraction(row[1][num]) / Fraction(d) * (100 if total else 1)
            return math.floor(exact * 10**18)
        if colid in FACTS:
            return row[1][colid]
        return dim_sort(colid, row[0][dims.index(colid)])

    order = [(c, o == "D") for c, o in keys]
    order += [(d, False) for d in dims if d not in dict(keys)]
    order += [(f, False) for f in facts if f not in dict(keys)]

    def cmp(a: Any, b: Any) -> int:
        for colid, desc in order:
            result = compare(sort_value(a, colid), sort_value(b, colid), desc)
            if result:
                return result
        return 0

    rows.sort(key=functools.cmp_to_key(cmp))
    limit = request.reccount or template.threshold
    rows = rows[:limit]
    totals = {f: sum((r[1][f] for r in rows), 0) for f in facts}

    def cells(kind: str, dv: Sequence[Any], sums: dict[int, Any]) -> list[str]:
        out = [kind]
        for c in columns:
            if c in DIMS:
                v = dv[dims.index(c)]
                if v is None:
                    out.append("")
                elif c in (10, 12, 13, 14, 15, 105, 114):
                    out.append(literal(c, v))
                else:
                    out.append(v.isoformat() if isinstance(v, dt.date) else str(v))
            elif c in FACTS:
                out.append(half_up(Decimal(sums[c]), FACTS[c]))
            else:
                num, den, total, decimals = DERIVED[c]
                d = totals[den] if total else sums[den]
                if d == 0:
                    out.append("")
                else:
                    value = Fraction(sums[num]) / Fraction(d) * (100 if total else 1)
                    out.append(half_up(value, decimals))
        return out

    # break subtotals: rows grouped by the break columns (ordered by them first)
    breaks: list[int] = []
    if request.total_mode in (1, 3):
        breaks = [c for c in dict.fromkeys(request.subtotals) if c in DIMS]
    direction = dict(keys)
    if breaks:
        pos = {id(r): n for n, r in enumerate(rows)}

        def by_breaks(a: Any, b: Any) -> int:
            for c in breaks:
                i = dims.index(c)
                result = compare(
                    dim_sort(c, a[0][i]), dim_sort(c, b[0][i]), direction.get(c) == "D"
                )
                if result:
                    return result
            return pos[id(a)] - pos[id(b)]

        rows.sort(key=functools.cmp_to_key(by_breaks))
    skip_full = set(breaks) == set(dims) and not listing
    out = [["0", *map(str, columns)]]

    def subtotal(level: int, group: list[Any]) -> list[str]:
        dv = [group[0][0][dims.index(d)] if d in breaks[:level] else None for d in dims]
        sums = {f: sum(r[1][f] for r in group) for f in facts}
        return cells("S", dv, sums)

    open_groups: list[list[Any]] = [[] for _ in breaks]

    def close(from_level: int) -> None:
        for level in range(len(breaks), from_level, -1):
            group = open_groups[level - 1]
            if group and not (skip_full and level == len(breaks)):
                out.append(subtotal(level, group))
            open_groups[level - 1] = []

    previous: tuple[Any, ...] | None = None
    for row in rows:
        here = tuple(row[0][dims.index(c)] for c in breaks)
        if previous is not None and here != previous:
            first = next(i for i in range(len(breaks)) if here[i] != previous[i])
            close(first)
        out.append(cells("D", row[0], row[1]))
        for group in open_groups:
            group.append(row)
        previous = here
    close(0)
    if request.total_mode in (2, 3):
        out.append(cells("T", [None] * len(dims), totals))
    nrl = tuple((c, half_up(Decimal(totals.get(c, 0)), FACTS[c])) for c in columns if c in FACTS)
    return out, nrl


def check(data: Mart, request: Request) -> list[list[str]]:
    got = run(data, request)
    expected = oracle(data, request)
    assert got[0] == expected[0], request.text()
    assert got[1] == expected[1], request.text()
    return got[0]


# -- every standard template ------------------------------------------------------------------


@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
def test_every_standard_template(data: Mart, template_id: int) -> None:
    template = TEMPLATES[template_id]
    dims = [c for c in template.columns if c in DIMS]
    subtotals = (dims[0],) if len(dims) > 1 else ()
    request = Request(
        template,
        template.columns,
        total_mode=3 if subtotals else 2,
        subtotals=subtotals,
    )
    records = check(data, request)
    if (template.title, template.direction) not in NO_SUCH_CALLS:
        assert any(r[0] == "D" for r in records), template.title  # the report has rows


#: reports the generator gives no calls for: no cards on toll-free calls, no toll-free
#: numbers on outbound calls
NO_SUCH_CALLS = {
    ("Calling Card Summary", "I"),
    ("Most Active Calling Cards", "I"),
    ("Most Active Toll Free Numbers", "O"),
    ("IDACC/Supp Code Summary", "I"),
}


@pytest.mark.parametrize("order", ["D", "A"])
@pytest.mark.parametrize(("column", "key"), [(36, "duration"), (58, "amount")])
def test_a_listing_cut_inside_a_tie(data: Mart, column: int, key: str, order: str) -> None:
    """A list report sorted by a fact is cut first by that fact's N-th value (a scalar
    top-N); with the threshold's last call tied with the next one, the rows and their
    order are still the oracle's."""
    template = TEMPLATES[42]  # Longest Calls, outbound
    values = sorted((c[key] for c in data.current("0")), reverse=order == "D")
    reccount = next(n for n in range(1, len(values)) if values[n - 1] == values[n])
    request = Request(template, template.columns, sort=((column, order),), reccount=reccount)
    assert build_query(request.ard(), CORPS).sql.count(" LIMIT ") == 2  # the cut is there
    records = check(data, request)
    assert sum(r[0] == "D" for r in records) == reccount


def test_the_seeds_city_summary(data: Mart) -> None:
    """The seed's ARD (Figure 13(a)), in Appendix D form: City Summary, June 1998, corp 90000003."""
    text = (
        "ARD<ENTPID=00022924,USERID=jeanvnet2,STDRPTID=90,USERRPTID=3415,REQUESTID=20341,"
        "PRODUCT=S,THRESHOLD=<RECCOUNT=20>,COLUMNS=<54~55~67~62~36~61~58~63~64~66~65>,"
        "FILTERS=<BILLING=INBOUND<<90000003,90000003><NA,NA><NA,NA>>,"
        "GEO=GEO<<001,001 USA/WORLDZONE1><NA,NA><NA,NA><NA,NA><NA,NA>>,OACCESS=<4~1>>,"
        "SORTBY=<54D>,SCHEDULE=A<START=199806020000,END=199807151200>,"
        "TIMEZONE=<LABEL=EST,OFFSET=-5>,TOTALMODE=2>"
    )
    ard = validate(parse(text), "DSS")
    assert isinstance(ard, FulfilAddReportDefinition)
    query = build_query(ard, ["90000003"])
    rows = data.con.execute(query.sql, query.params).fetchall()
    assert rows[0][0] == "T"
    assert len(rows) == 21
    cities = [r[1] for r in rows[1:]]
    assert cities == sorted(cities, reverse=True)
    request = Request(
        TEMPLATES[90],
        (54, 55, 67, 62, 36, 61, 58, 63, 64, 66, 65),
        billing=(("90000003",),),
        geo=(("001",),),
        filters={"OACCESS": ("4", "1")},
        sort=((54, "D"),),
        reccount=20,
        total_mode=2,
        periods=((T(1998, 6, 2), T(1998, 7, 15, 12, 0)),),
    )
    check(data, request)


# -- filters on every hierarchy level, and the others ------------------------------------------


def test_billing_levels(data: Mart) -> None:
    city = TEMPLATES[90]
    corp = CORPS[0]
    bill = data.values("billing_id", corp_id=corp)[0]
    loc = data.values("service_loc_id", corp_id=corp, billing_id=bill)[-1]
    other_bill = data.values("billing_id", corp_id=CORPS[1])[-1]
    for billing, flat in (
        (((corp,),), True),
        (((corp, bill),), True),
        (((corp, bill, loc),), True),
        (((corp, bill, loc), (CORPS[1], other_bill)), False),
    ):
        request = Request(city, city.columns, billing=billing, flat_billing=flat, total_mode=2)
        records = check(data, request)
        assert len(records) > 2


def test_geo_levels(data: Mart) -> None:
    template = TEMPLATES[24]  # Frequent Cities, outbound
    call = next(c for c in data.current("0") if c["npa"] and c["city_name"])
    levels = (call["country_cd"], call["state_cd"], call["city_name"], call["npa"], call["nxx"])
    for n in range(1, 6):
        request = Request(template, template.columns, geo=(levels[:n],), total_mode=2)
        assert len(check(data, request)) > 2
    abroad = data.values("country_cd")
    request = Request(
        template, template.columns, geo=((abroad[-1],), levels[:2]), total_mode=3, subtotals=(55,)
    )
    check(data, request)


def test_the_other_filters(data: Mart) -> None:
    out, inb = TEMPLATES[9], TEMPLATES[10]  # Usage Summary outbound / inbound
    card = data.values("card_number")[0]
    idacc = data.values("idacc")
    tollfree = data.values("tollfree", "1")
    dialed = [d for d in data.values("dialed_number") if len(d) == 10]
    cases = [
        (out, {"OACCESS": ("1", "2")}),
        (out, {"OUSAGE": ("1", "3"), "ODISTRANGE": ("A", "C", "F")}),
        (inb, {"IACCESS": ("10", "B"), "IUSAGE": ("1",), "IDISTRANGE": ("2", "5")}),
        (out, {"IACCESS": ("10",)}),  # the other direction's filter does not apply
        (out, {"DURRANGE": ("2", "3")}),
        (out, {"CARDNO": (card[:6] + "*",)}),
        (out, {"CARDNO": (card, "0000*")}),
        (out, {"IDAC": (idacc[0], idacc[-1][:2] + "*")}),
        (inb, {"NDIALED": (tollfree[0], tollfree[-1][:6] + "*")}),
        (out, {"NDIALED": (f"{dialed[0]}-{dialed[len(dialed) // 3]}",)}),
    ]
    for template, filters in cases:
        request = Request(template, template.columns, filters=filters, total_mode=2)
        assert len(check(data, request)) > 2, filters


def test_time_ranges_and_time_zone(data: Mart) -> None:
    hourly = TEMPLATES[34]
    for periods in ((PERIODS[1],), PERIODS[:2], PERIODS):
        for offset in (-12, -5, 0, 13):
            request = Request(hourly, hourly.columns, periods=periods, offset=offset, total_mode=2)
            check(data, request)
    review = TEMPLATES[75]  # one row per call, dates and times in the user's zone
    request = Request(review, (1, 2, 3, 4, 36), periods=(PERIODS[1],), reccount=5000)
    records = check(data, request)
    assert len(records) - 1 == sum(
        1 for c in data.calls if c["in_out"] == "0" and PERIODS[1][0] <= c["gmt"] <= PERIODS[1][1]
    )


def test_entitlement_drops_corps(data: Mart) -> None:
    city = TEMPLATES[90]
    request = Request(city, city.columns, entitled=(CORPS[1],), total_mode=2)
    check(data, request)
    query = build_query(request.ard(), [CORPS[1]])
    assert query.plan.dropped_corps == (CORPS[0],)
    with pytest.raises(QueryError) as caught:
        build_query(request.ard(), [])
    assert caught.value.code is ErrorCode.NOT_ENTITLED


# -- Hypothesis: report requests against the oracle ---------------------------------------------


@st.composite
def requests(draw: st.DrawFn, data: Mart) -> Request:
    template = draw(st.sampled_from(sorted(TEMPLATES.values(), key=lambda t: t.template_id)))
    fields = list(template.fields("P"))
    columns = tuple(draw(st.lists(st.sampled_from(fields), min_size=1, max_size=8, unique=True)))
    [c for c in columns if c in DIMS]
    inbound = template.direction == "I"
    io = "1" if inbound else "0"
    corp = draw(st.sampled_from(CORPS))
    level = draw(st.integers(1, 3))
    mine = data.current(io)
    call = draw(st.sampled_from([c for c in mine if c["corp_id"] == corp]))
    entry = (corp, call["billing_id"], call["service_loc_id"])[:level]
    billing = [entry]
    if draw(st.booleans()):
        billing.append((CORPS[1] if corp == CORPS[0] else CORPS[0],))
    filters: dict[str, tuple[str, ...]] = {}
    for name, key in (("ACCESS", "access_code"), ("USAGE", "use_cd"), ("DISTRANGE", "range")):
        if draw(st.integers(0, 3)) == 0:
            values = sorted({c[key] for c in mine})
            chosen = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True))
            filters[("I" if inbound else "O") + name] = tuple(chosen)
    if draw(st.integers(0, 4)) == 0:
        filters["DURRANGE"] = tuple(
            draw(st.lists(st.sampled_from("12345678"), min_size=1, max_size=3, unique=True))
        )
    cards, codes = data.values("card_number", io), data.values("idacc", io)
    if cards and draw(st.integers(0, 4)) == 0:
        card = draw(st.sampled_from(cards))
        filters["CARDNO"] = (card[: draw(st.integers(1, len(card)))] + "*",)
    if codes and draw(st.integers(0, 4)) == 0:
        filters["IDAC"] = (draw(st.sampled_from(codes)),)
    geo: tuple[tuple[str, ...], ...] = ()
    if draw(st.integers(0, 3)) == 0:
        place = draw(st.sampled_from([c for c in mine if c["country_cd"]]))
        levels = [place[k] for k in ("country_cd", "state_cd", "city_name", "npa", "nxx")]
        depth = draw(st.integers(1, 5))
        cut = next((i for i, v in enumerate(levels) if not v), 5)
        geo = (tuple(levels[: min(depth, cut)]),)
    sort = None
    if draw(st.booleans()):
        sort = (
            tuple(
                (c, draw(st.sampled_from("AD")))
                for c in draw(st.lists(st.sampled_from(columns), max_size=3, unique=True))
            )
            or None
        )
    mode = draw(st.integers(0, 3))
    subtotals: tuple[int, ...] = ()
    if mode in (1, 3):
        # break columns; facts in SUBTOTCOL ("the facts to subtotal") are ignored
        chosen = draw(st.lists(st.sampled_from(columns), min_size=1, max_size=3, unique=True))
        subtotals = tuple(c for c in chosen if c in DIMS or c in FACTS)
        if not subtotals:
            mode, subtotals = 2, ()
    periods = tuple(
        sorted(draw(st.lists(st.sampled_from(PERIODS), min_size=1, max_size=3, unique=True)))
    )
    entitled = tuple(draw(st.lists(st.sampled_from(CORPS), min_size=1, max_size=2, unique=True)))
    if not any(e[0] in entitled for e in billing):
        entitled = (corp,)
    return Request(
        template,
        columns,
        billing=tuple(billing),
        geo=geo,
        filters=filters,
        sort=sort,
        reccount=draw(st.none() | st.integers(1, 60)),
        total_mode=mode,
        subtotals=subtotals,
        periods=periods,
        offset=draw(st.integers(-12, 13)),
        entitled=entitled,
    )


@settings(max_examples=scaled(400), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_generated_requests_match_the_oracle(data: Mart, case: st.DataObject) -> None:
    check(data, case.draw(requests(data)))


# -- the SQL itself: parameters, never concatenated --------------------------------------------

HOSTILE = "x'); DROP TABLE perspective_base; --"


def test_customer_values_are_parameters(data: Mart) -> None:
    city = TEMPLATES[90]
    request = Request(
        city,
        city.columns,
        billing=((CORPS[0], HOSTILE + "1", HOSTILE + "2"),),
        flat_billing=True,
        geo=((HOSTILE + "3", "O'Brien"),),
        filters={
            "CARDNO": (HOSTILE + "*", "100%_*"),
            "IDAC": (HOSTILE + "4",),
            "OACCESS": (HOSTILE + "5",),
            "NDIALED": (HOSTILE + "6", "1-2"),
        },
        reccount=7,
    )
    sql, params = build_query(request.ard(), CORPS)
    assert isinstance(sql, str)
    assert isinstance(params, dict)
    for n in range(1, 7):
        assert HOSTILE + str(n) in params.values()
    assert HOSTILE.replace("_", "\\_") + "%" in params.values()
    assert "100\\%\\_%" in params.values()  # LIKE metacharacters escaped, * -> %
    assert 7 in params.values()
    assert CORPS[0] in params.values()
    assert "DROP" not in sql
    assert "O'Brien" not in sql
    assert "'x'" not in sql
    assert set(re.findall(r"\$(\w+)", sql)) == set(params)
    assert data.con.execute(sql, params).fetchall()[1:] == []
    assert data.con.execute("SELECT count(*) FROM perspective_base").fetchone() == (3800,)


def test_the_request_table_example_runs(data: Mart) -> None:
    """Appendix I's ARD (template 101, Area Code Summary) parses, builds and runs."""
    from starwrs.grammar.seed import seed_text

    ard = validate(parse(seed_text("12_ard_request_table.txt").strip()), "DSS")
    assert isinstance(ard, FulfilAddReportDefinition)
    query = build_query(ard, ["99920046"])
    assert query.plan.columns == (44, 36, 58, 67, 61, 63, 62, 64, 65, 66)
    assert query.plan.threshold == 300
    assert data.con.execute(query.sql, query.params).fetchall() == [
        ("T", None, Decimal("0.0"), Decimal("0.00"), 0)
    ]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"template": replace(TEMPLATES[90], template_id=999)}, ErrorCode.IDS_NOT_CORRECT),
        ({"columns": (54, 999)}, ErrorCode.IDS_NOT_CORRECT),
        ({"sort": ((36, "D"),), "columns": (54, 67)}, ErrorCode.RM_PARAMETER_ERROR),
        ({"total_mode": 1, "subtotals": (55,), "columns": (54, 67)}, ErrorCode.RM_PARAMETER_ERROR),
        ({"billing": (("NA",),)}, ErrorCode.RM_PARAMETER_ERROR),
        ({"geo": (("001", "NA", "DENVER"),)}, ErrorCode.RM_PARAMETER_ERROR),
        ({"geo": (("001", "CO", "X", "303", "555", "1"),)}, ErrorCode.RM_PARAMETER_ERROR),
        ({"filters": {"NDIALED": ("1-22",)}}, ErrorCode.RM_PARAMETER_ERROR),
        ({"entitled": ("12345678",)}, ErrorCode.NOT_ENTITLED),
    ],
)
def test_requests_that_cannot_become_sql(change: dict[str, Any], code: ErrorCode) -> None:
    base = Request(TEMPLATES[90], TEMPLATES[90].columns)
    request = replace(base, **change)
    ard = validate(parse(request.text()), "DSS")
    assert isinstance(ard, FulfilAddReportDefinition)
    with pytest.raises(QueryError) as caught:
        build_query(ard, request.entitled)
    assert caught.value.code is code


@pytest.mark.parametrize(
    ("text", "entries"),
    [
        ("INBOUND<<90000003,90000003><NA,NA><NA,NA>>INBOUND<<90000004,x><B,y><NA,NA>>",
         [("90000003",), ("90000004", "B")]),
        ("<99920046,,>", [("99920046",)]),
        ("<99920046,B1,L1>", [("99920046", "B1", "L1")]),
        ("90000003", [("90000003",)]),
        ("<90000003~90000004>", [("90000003",), ("90000004",)]),
        ("<<9,9><na,na>>", [("9",)]),
        ("TAG<<9,name>>", [("9",)]),
        ("<<9,9>,<B,B>>", [("9", "B")]),
        ("<<a,a><NA,NA>><<b,b><C,C>>", [("a",), ("b", "C")]),
        ("<,,>", [()]),
    ],
)  # fmt: skip
def test_hierarchy_forms(text: str, entries: list[tuple[str, ...]]) -> None:
    value = parse(f"X<B={text}>").members[0].value
    assert hierarchy_entries(value, "BILLING", 3) == entries


@pytest.mark.parametrize("text", ["<<9,9><NA,NA><B,B>>", "<9,,B>", "<9,B,L,X>", "<K=9>", "<<<9>>>"])
def test_bad_hierarchies(text: str) -> None:
    value = parse(f"X<B={text}>").members[0].value
    with pytest.raises(QueryError) as caught:
        hierarchy_entries(value, "BILLING", 3)
    assert caught.value.code is ErrorCode.RM_PARAMETER_ERROR


def test_the_column_table_is_the_report_managers() -> None:
    """Same ids, labels, types, decimals and equations as the viewer's metadata; every
    column a standard template offers can be read."""
    from starwrs.proxies.dss.columns import COLUMNS
    from starwrs.proxies.rm.templates import COLUMNS as RM_COLUMNS

    assert set(COLUMNS) == set(RM_COLUMNS)
    for colid, rm in RM_COLUMNS.items():
        mine = COLUMNS[colid]
        assert (mine.label, mine.datatype, mine.decimals) == (rm.name, rm.datatype, rm.decimals)
        assert (mine.kind, mine.equation) == (rm.fact_dim, rm.equation)
        assert mine.additive == rm.subtotal
        assert mine.derived or mine.sql
    for template in TEMPLATES.values():
        assert set(template.fields("P")) <= set(COLUMNS)
        assert template.title in {t.title for t in TEMPLATES.values()}
    assert set(LISTINGS) <= {t.title for t in TEMPLATES.values()}
