# ruff: noqa: S608 -- SQL text is built here from constants only; values are $pN parameters
"""Report SQL from the Appendix D ARD (seed 001, Figure 13(b) steps 635-645; Figure 12(b)).

Theory of operation
-------------------
:func:`build_query` turns a typed ARD (``validate(parse(text), "DSS")``) into ONE
DuckDB statement over the star schema of PROTOCOL.md section 8 plus its parameters.
SQL text is assembled only from this module's constants and the column-id table
(:mod:`starwrs.proxies.dss.columns`); every value the customer sent -- corp ids,
billing and geographic codes, card numbers, ranges, dates, the threshold -- is a
bound ``$pN`` parameter.  The statement has four stages::

    calls   one row per matching call: dimension values k<id> (sort keys s<id>) and the
            per-call facts f<id>; WHERE = corp ids, BILLING, direction, START/END, filters
            (a list report sorted first by a fact -- Longest Calls, Most Expensive
            Calls -- also: that fact at or beyond its N-th value over the same calls,
            a scalar top-N of one column, so only about N calls are joined and
            formatted; ties at the cut pass, so the rows and their order are unchanged)
    detail  the report's rows: GROUP BY the dimensions, SUM the facts (COUNT(*) the
            calls, column 67) (a list report keeps one row per call)
    ranked  the first THRESHOLD RECCOUNT rows (the template's default when the ARD has
            none) by SORTBY, then every dimension and fact as tie-breakers, so the
            order is total and the cut deterministic (ORDER BY ... LIMIT: a top-N,
            not a sort of every row); row_number() numbers them (_rank)
    final   GROUP BY GROUPING SETS ((every row), (b1..bk), ..., (b1), ()): the detail
            rows, one subtotal level per prefix of the break columns (ROLLUP), and the
            report total; ``_rt`` says D, S or T

The result is ordered for a streaming formatter: the ``T`` row first (the formatter
needs the totals for ``CTn`` before the first row, and writes the T line last), then
the rows grouped by the break columns (ascending, or as SORTBY orders that column),
each group's ``S`` row after its rows, and the SORTBY order inside.  Totals and
percentages are those of the rows in the report (after the threshold), so a report's
percentages add up to 100 and every S and T line is the sum of the lines above it.

Filter semantics (FILTERS of Appendix D):

* ``BILLING`` -- entries of the billing hierarchy corp -> billing id -> service
  location, any of: ``TAG<<corp,name><bill,name><loc,name>>`` (the seed's
  ``INBOUND<<90000003,90000003><NA,NA><NA,NA>>``; the tag is not significant), several
  of them glued together, ``<corp,bill,loc>`` (Appendix I's ``<99920046,,>``), a bare
  corp id or a ``~`` list of corp ids.  ``NA`` or empty = every value at that level and
  below; a value below an ``NA`` is an error.  Entries are OR-ed; entries for a corp the
  caller is not entitled to are dropped (``plan.dropped_corps``), and none left is 7003.
* ``GEO`` -- the same shapes over country code -> state -> city -> NPA -> NXX of
  ``report_geo`` (the far end: the called place of an outbound call, the caller of an
  inbound one; the seed's ``GEO<<001,001 USA/WORLDZONE1><CO,CO><NA,NA>...>>``).
* ``CARDNO``, ``IDAC``, ``NDIALED`` -- values; ``*`` matches any characters
  (``654654*``); ``NDIALED`` also takes ``low-high`` (equal-length digit strings).
  NDIALED is the toll-free number of an inbound report, the dialed number of an
  outbound one.
* ``IACCESS``/``OACCESS`` (access codes), ``IUSAGE``/``OUSAGE`` (usage codes),
  ``IDISTRANGE``/``ODISTRANGE`` (range codes), ``DURRANGE`` (duration-range codes):
  values, exact.  The I/O filters apply to reports of their own direction only.
* The template (``STDRPTID``) gives the direction (``access_type.in_out``) and, for a
  few reports, a fixed restriction (:data:`RESTRICTIONS`: payphone calls only, ...).
* ``START``/``END`` pairs are GMT minutes, both ends included (``END=...2359`` takes
  the whole last minute); several pairs are OR-ed.
* ``PRODUCT`` does not filter: the template's direction does (a Vision corp's inbound
  calls are toll-free, product T, and belong in its inbound reports).

Derived columns sort by their exact value (to :data:`SORT_DIGITS` decimal places,
computed with integer arithmetic, empty last); ``CTn`` is the same constant for every
row, so sorting by a percentage is sorting by its column.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime

from starwrs.grammar.catalogue_fulfil import FulfilAddReportDefinition, FulfilFilters
from starwrs.grammar.codecs import SortKey
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.grammar.model import Group, Seq, Tagged, TList, Value
from starwrs.grammar.vocab import TotalMode
from starwrs.proxies.dss import expr as ex
from starwrs.proxies.dss.columns import COLUMNS, JOINS, ColumnDef
from starwrs.proxies.rm.templates import TEMPLATES, Template

__all__ = [
    "GEO_LEVELS",
    "LISTINGS",
    "RESTRICTIONS",
    "SORT_DIGITS",
    "QueryError",
    "ReportPlan",
    "ReportQuery",
    "build_query",
    "hierarchy_entries",
]

#: decimal places to which a derived column's sort key is exact
SORT_DIGITS = 18

#: report kinds (template titles) with one row per call (``reflag`` L), not per group
LISTINGS = frozenset(
    {"Longest Calls", "Most Expensive Calls", "Off Peak Calls", "Payphone Report", "Review Calls"}
)

#: template title -> (condition on one call, the joins it needs): what the report is about
RESTRICTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Off Peak Calls": ("lst.rate <> '1'", ("lst",)),  # not the weekday DAY rate period
    "Payphone Report": ("pb.pay_phone_cd = 'P'", ()),
    "Calling Card Summary": ("pb.card_key <> 0", ()),
    "Most Active Calling Cards": ("pb.card_key <> 0", ()),
    "Most Active Toll Free Numbers": ("pb.tollfree_key <> 0", ()),
    "IDACC/Supp Code Summary": ("pb.idacc_key <> 0", ()),
}

#: BILLING levels: (SQL expression, join)
BILLING_LEVELS: tuple[tuple[str, str | None], ...] = (
    ("pb.corp_id", None),
    ("bc.billing_id", "bc"),
    ("bc.service_loc_id", "bc"),
)
#: GEO levels over report_geo
GEO_LEVELS: tuple[str, ...] = (
    "rg.country_cd",
    "rg.state_cd",
    "rg.city_name",
    "rg.npa",
    "rg.nxx",
)

_EPOCH = datetime(1970, 1, 1)
_RANGE = re.compile(r"([0-9]+)-([0-9]+)", re.ASCII)


class QueryError(StarwrsError):
    """An ARD from which no report SQL can be generated (the code says why)."""


def _bad(message: str) -> QueryError:
    return QueryError(ErrorCode.RM_PARAMETER_ERROR, message)


@dataclass(frozen=True, slots=True)
class ReportPlan:
    """What the formatter needs to know about the query's result.

    The result rows are ``(_rt, k<dims>..., f<facts>...)``: the row type ``D``/``S``/``T``,
    one value per dimension of :attr:`dims`, one sum per additive fact of
    :attr:`facts`, in that order.

    Attributes:
        columns: the file's column ids after ``0``, in the ARD's order.
        dims: the dimension columns, in file order.
        facts: the additive facts fetched: the selected ones and those the derived
            columns read, in file order then id order.
        derived: the derived columns, in file order.
        breaks: the break (subtotal) columns, outermost first.
        total_mode: the ARD's TOTALMODE.
        listing: one row per call.
        threshold: the RECCOUNT applied (None = no limit).
        sort: the SORTBY keys applied.
        template: the standard template (STDRPTID).
        dropped_corps: BILLING corp ids left out because the caller is not entitled.
    """

    columns: tuple[int, ...]
    dims: tuple[int, ...]
    facts: tuple[int, ...]
    derived: tuple[int, ...]
    breaks: tuple[int, ...]
    total_mode: TotalMode
    listing: bool
    threshold: int | None
    sort: tuple[SortKey, ...]
    template: Template
    dropped_corps: tuple[str, ...] = ()

    @property
    def result_names(self) -> tuple[str, ...]:
        """The names of the result columns, in order."""
        return ("_rt", *(f"k{c}" for c in self.dims), *(f"f{c}" for c in self.facts))


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """The statement, its parameters and the plan; unpacks as ``sql, params``."""

    sql: str
    params: dict[str, object]
    plan: ReportPlan

    def __iter__(self) -> Iterator[object]:
        yield self.sql
        yield self.params


# -- hierarchies (BILLING, GEO) -----------------------------------------------------------


def _cell(value: Value, name: str) -> str:
    if isinstance(value, Group):  # <code,name>: the code
        if not value.members or value.members[0].key is not None:
            raise _bad(f"{name}: a hierarchy level must be <code,name>")
        value = value.members[0].value
    if not isinstance(value, str):
        raise _bad(f"{name}: a hierarchy level must be a code")
    return value


def _levels(group: Group, name: str) -> tuple[str, ...]:
    if any(m.key is not None for m in group.members):
        raise _bad(f"{name}: hierarchy entries have no keys")
    values = [m.value for m in group.members]
    if len(values) == 1 and isinstance(values[0], Seq):  # <<code,name><code,name>...>
        return tuple(_cell(part, name) for part in values[0].parts)
    return tuple(_cell(v, name) for v in values)  # <code,code,...> or <<code,name>,...>


def _entries(value: Value, name: str) -> list[tuple[str, ...]]:
    if isinstance(value, str):
        return [(value,)]
    if isinstance(value, TList):
        return [entry for item in value.items for entry in _entries(item, name)]
    if isinstance(value, Seq):
        return [entry for part in value.parts for entry in _entries(part, name)]
    if isinstance(value, Tagged):
        return [_levels(value.group, name)]
    members = value.members
    if len(members) == 1 and members[0].key is None and isinstance(members[0].value, TList):
        return _entries(members[0].value, name)
    return [_levels(value, name)]


def hierarchy_entries(value: Value, name: str, depth: int) -> list[tuple[str, ...]]:
    """The entries of a BILLING or GEO value, each cut at its first "all" level.

    Args:
        value: the FILTERS member's value (the grammar tree).
        name: ``BILLING`` or ``GEO``, for messages.
        depth: how many levels the hierarchy has.

    Returns:
        One tuple of codes per entry, top level first, without the trailing "all"
        levels (``NA`` or empty); an entry that is "all" from the top is ``()``.

    Raises:
        QueryError: a malformed entry, too many levels, or a code below an ``NA``.
    """
    out: list[tuple[str, ...]] = []
    for entry in _entries(value, name):
        codes = [code.strip() for code in entry]
        if len(codes) > depth:
            raise _bad(f"{name}: at most {depth} levels (got {len(codes)})")
        cut = next((i for i, c in enumerate(codes) if c == "" or c.upper() == "NA"), len(codes))
        if any(c and c.upper() != "NA" for c in codes[cut:]):
            raise _bad(f"{name}: a code below an NA level ({'/'.join(entry)})")
        out.append(tuple(codes[:cut]))
    return out


# -- the builder ----------------------------------------------------------------------------


class _Builder:
    def __init__(self) -> None:
        self.params: dict[str, object] = {}
        self.joins: set[str] = set()

    def bind(self, value: object) -> str:
        name = f"p{len(self.params) + 1}"
        self.params[name] = value
        return f"${name}"

    def inlist(self, expr: str, values: Collection[str]) -> str:
        return f"{expr} IN ({', '.join(self.bind(v) for v in values)})"

    def matching(self, expr: str, values: Collection[str], *, ranges: bool = False) -> str:
        """``expr`` equal to a value, LIKE a ``*`` pattern, or within ``low-high``."""
        exact = [v for v in values if "*" not in v and not (ranges and _RANGE.fullmatch(v))]
        terms = [self.inlist(expr, exact)] if exact else []
        for value in values:
            match = _RANGE.fullmatch(value) if ranges else None
            if match and len(match.group(1)) == len(match.group(2)):
                low, high = sorted(match.groups())
                terms.append(f"{expr} BETWEEN {self.bind(low)} AND {self.bind(high)}")
            elif match:
                raise _bad(f"range {value!r}: both ends need the same number of digits")
            elif "*" in value:
                pattern = re.sub(r"([\\%_])", r"\\\1", value).replace("*", "%")
                terms.append(f"{expr} LIKE {self.bind(pattern)} ESCAPE '\\'")
        return "(" + " OR ".join(terms) + ")"

    def need(self, *aliases: str) -> None:
        self.joins.update(aliases)


def _template(ard: FulfilAddReportDefinition) -> Template:
    template = TEMPLATES.get(ard.std_report_id)
    if template is None:
        raise QueryError(ErrorCode.IDS_NOT_CORRECT, f"no standard report {ard.std_report_id}")
    return template


def _columns(ard: FulfilAddReportDefinition) -> tuple[int, ...]:
    columns = tuple(dict.fromkeys(ard.columns))
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise QueryError(ErrorCode.IDS_NOT_CORRECT, f"unknown column ids {unknown}")
    return columns


def _facts(columns: tuple[int, ...]) -> tuple[int, ...]:
    wanted = [c for c in columns if COLUMNS[c].additive]
    for c in columns:
        if COLUMNS[c].derived:
            refs, totals = ex.references(ex.parse_expression(COLUMNS[c].equation))
            wanted += sorted(refs | totals)
    for c in wanted:
        if c not in COLUMNS or not COLUMNS[c].additive:
            raise _bad(f"an equation reads column {c}, which is not an additive fact")
    return tuple(dict.fromkeys(wanted))


def _sort_keys(
    ard: FulfilAddReportDefinition, template: Template, columns: tuple[int, ...]
) -> tuple[SortKey, ...]:
    if ard.sort_by:
        for key in ard.sort_by:
            if key.column not in columns:
                raise _bad(f"SORTBY column {key.column} is not one of the report's columns")
        first: dict[int, SortKey] = {}
        for key in ard.sort_by:
            first.setdefault(key.column, key)
        return tuple(first.values())
    return tuple(k for k in template.sort if k.column in columns)


def _breaks(ard: FulfilAddReportDefinition, dims: tuple[int, ...]) -> tuple[int, ...]:
    if ard.total_mode is None or not ard.total_mode.needs_subtotals:
        return ()
    breaks: list[int] = []
    for c in ard.subtotal_columns or ():
        if c in COLUMNS and not COLUMNS[c].dimension:
            continue  # a fact named as "to be subtotalled": every additive fact is
        if c not in dims:
            raise _bad(f"SUBTOTCOL column {c} is not a dimension column of the report")
        if c not in breaks:
            breaks.append(c)
    return tuple(breaks)


def _minute(stamp: datetime) -> int:
    return int((stamp - _EPOCH).total_seconds()) // 60


def _rational(node: ex.Expr, scale: dict[int, int]) -> tuple[str, str]:
    """An exact (numerator, denominator) pair of integer SQL expressions for *node*."""
    if isinstance(node, ex.Num):
        sign, digits, exponent = node.value.as_tuple()
        assert isinstance(exponent, int)
        number = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
        if exponent >= 0:
            return f"{number * 10**exponent}::HUGEINT", "1::HUGEINT"
        return f"{number}::HUGEINT", f"{10**-exponent}::HUGEINT"
    if isinstance(node, ex.Column | ex.Total):
        s = scale[node.colid]
        value = f"f{node.colid}" if isinstance(node, ex.Column) else f"(SUM(f{node.colid}) OVER ())"
        return f"CAST({value} * {10**s} AS HUGEINT)", f"{10**s}::HUGEINT"
    if isinstance(node, ex.Neg):
        n, d = _rational(node.operand, scale)
        return f"(-{n})", d
    n1, d1 = _rational(node.left, scale)
    n2, d2 = _rational(node.right, scale)
    if node.op == "*":
        return f"({n1} * {n2})", f"({d1} * {d2})"
    if node.op == "/":
        return f"({n1} * {d2})", f"({d1} * {n2})"
    return f"({n1} * {d2} {node.op} {n2} * {d1})", f"({d1} * {d2})"


def _derived_key(equation: str, scale: dict[int, int]) -> str:
    """floor(value * 10^SORT_DIGITS), exact; NULL where the value is empty."""
    n, d = _rational(ex.parse_expression(equation), scale)
    a = f"({n} * sign({d}) * {10**SORT_DIGITS}::HUGEINT)"
    b = f"abs({d})"
    return (
        f"CASE WHEN {d} = 0 THEN NULL ELSE {a} // {b}"
        f" - CASE WHEN {a} < 0 AND {a} % {b} <> 0 THEN 1 ELSE 0 END END"
    )


def _criteria(b: _Builder, filters: FulfilFilters, template: Template) -> list[str]:
    """The WHERE terms of FILTERS (other than BILLING) and of the template's restriction."""
    where: list[str] = []

    def values(items: tuple[str, ...] | None) -> list[str]:
        return [v.strip() for v in items or () if v.strip()]

    inbound = template.direction == "I"
    simple = (
        (filters.iaccess if inbound else filters.oaccess, "acc.access_code", "acc"),
        (filters.iusage if inbound else filters.ousage, "us.use_cd", "us"),
        (filters.idistrange if inbound else filters.odistrange, "pb.range", None),
        (filters.dur_range, "dr.duration_range_cd", "dr"),
    )
    for items, expr, join in simple:
        if values(items):
            if join:
                b.need(join)
            where.append(b.inlist(expr, values(items)))
    if values(filters.card_no):
        b.need("cd")
        where.append(b.matching("cd.card_number", values(filters.card_no)))
    if values(filters.idac):
        b.need("ia")
        where.append(b.matching("ia.idacc", values(filters.idac)))
    if values(filters.ndialed):
        expr = "tf.tollfree" if inbound else "pb.dialed_number"
        if inbound:
            b.need("tf")
        where.append(b.matching(expr, values(filters.ndialed), ranges=True))
    if filters.geo is not None:
        geo = hierarchy_entries(filters.geo, "GEO", len(GEO_LEVELS))
        if geo and all(geo):  # an entry that is "all" from the top selects everything
            b.need("rg")
            terms = [
                "("
                + " AND ".join(
                    f"{expr} = {b.bind(code)}" for expr, code in zip(GEO_LEVELS, e, strict=False)
                )
                + ")"
                for e in dict.fromkeys(geo)
            ]
            where.append("(" + " OR ".join(terms) + ")")
    if template.title in RESTRICTIONS:
        condition, joins = RESTRICTIONS[template.title]
        b.need(*joins)
        where.append(condition)
    return where


def build_query(
    ard: FulfilAddReportDefinition,
    corp_ids: Collection[str],
    *,
    template: Template | None = None,
) -> ReportQuery:
    """Build the report statement for *ard*.

    Args:
        ard: the typed Appendix D ARD.
        corp_ids: the corp ids the requesting user is entitled to now (order entry's
            answer at step 632); BILLING entries for other corps are dropped.
        template: the standard template, when the caller has it (else STDRPTID's).

    Returns:
        The statement, its named parameters and the :class:`ReportPlan`.

    Raises:
        QueryError: 6115 unknown STDRPTID or column ids; 6103 a malformed or
            contradictory filter, sort or subtotal; 6114 no BILLING; 6602 no START/END;
            7003 no BILLING entry the user is entitled to.
    """
    template = template or _template(ard)
    direction = template.direction
    columns = _columns(ard)
    dims = tuple(c for c in columns if COLUMNS[c].dimension)
    facts = _facts(columns)
    derived = tuple(c for c in columns if COLUMNS[c].derived)
    sort = _sort_keys(ard, template, columns)
    breaks = _breaks(ard, dims)
    listing = template.title in LISTINGS
    threshold = ard.threshold.reccount if ard.threshold.reccount else template.threshold
    total_mode = ard.total_mode if ard.total_mode is not None else TotalMode.NONE
    b = _Builder()
    where: list[str] = []

    # -- who: corp ids and the billing hierarchy
    filters = ard.filters
    if filters is None or filters.billing is None:
        raise QueryError(ErrorCode.REQUIRED_PARAMETERS_MISSING, "FILTERS.BILLING is required")
    entries = hierarchy_entries(filters.billing, "BILLING", len(BILLING_LEVELS))
    if any(not entry for entry in entries):
        raise _bad("BILLING: every entry must name a corp id")
    allowed = set(corp_ids)
    dropped = tuple(sorted({e[0] for e in entries if e[0] not in allowed}))
    entries = [e for e in dict.fromkeys(entries) if e[0] in allowed]
    if not entries:
        raise QueryError(ErrorCode.NOT_ENTITLED, "not entitled to any corp id of BILLING")
    corps = sorted({e[0] for e in entries})
    where.append(b.inlist("pb.corp_id", corps))  # the zonemap skips other corps' blocks
    if any(len(e) > 1 for e in entries):
        terms = []
        for entry in entries:
            parts = []
            for (expr, join), code in zip(BILLING_LEVELS, entry, strict=False):
                if join:
                    b.need(join)
                parts.append(f"{expr} = {b.bind(code)}")
            terms.append("(" + " AND ".join(parts) + ")")
        where.append("(" + " OR ".join(terms) + ")")

    # -- which calls: direction and period (PRODUCT is not a filter: a corp's inbound
    # toll-free calls are product T whatever the ARD's product)
    b.need("acc")
    where.append(f"acc.in_out = {b.bind('1' if direction == 'I' else '0')}")
    if not ard.schedule.ranges:
        raise QueryError(ErrorCode.START_DATE_NULL, "the ARD has no START/END pair")
    periods = [
        f"pb.gmt_key BETWEEN {b.bind(_minute(r.start))} AND {b.bind(_minute(r.end))}"
        for r in ard.schedule.ranges
    ]
    where.append("(" + " OR ".join(periods) + ")")

    where += _criteria(b, filters, template)

    sql = _statement(b, dims, facts, breaks, sort, listing, threshold, where)
    if any(COLUMNS[c].time for c in dims):
        b.params["tz_minutes"] = ard.timezone.offset * 60
    plan = ReportPlan(
        columns=columns,
        dims=dims,
        facts=facts,
        derived=derived,
        breaks=breaks,
        total_mode=total_mode,
        listing=listing,
        threshold=threshold,
        sort=sort,
        template=template,
        dropped_corps=dropped,
    )
    return ReportQuery(sql, b.params, plan)


def _cutoff(value: str, order: str, joins: list[str], where: list[str], limit: str) -> str:
    """A listing's cut by its first sort key: *value* at least the N-th largest (or at
    most the N-th smallest) over the same calls, where N is the threshold ``$limit``.

    Every call of the top N passes, ties at the cut included, so the ``ORDER BY ...
    LIMIT`` above it keeps exactly the same rows in the same order; but only about N
    calls now reach the dimension joins and the per-call columns (dates, numbers),
    and the scalar subquery is a top-N of one column.  *value* is a fact, NOT NULL
    by schema (a NULL would sort last and fail the comparison).
    """
    way, pick, op = ("DESC", "min", ">=") if order == "D" else ("ASC", "max", "<=")
    source = "perspective_base AS pb" + "".join(f" {j}" for j in joins)
    return (
        f"{value} {op} (SELECT {pick}(_v) FROM (SELECT {value} AS _v FROM {source}"
        f" WHERE {' AND '.join(where)} ORDER BY _v {way} LIMIT {limit}))"
    )


def _statement(
    b: _Builder,
    dims: tuple[int, ...],
    facts: tuple[int, ...],
    breaks: tuple[int, ...],
    sort: tuple[SortKey, ...],
    listing: bool,
    threshold: int | None,
    where: list[str],
) -> str:
    defs: dict[int, ColumnDef] = {c: COLUMNS[c] for c in (*dims, *facts)}
    filter_joins = [JOINS[alias] for alias in JOINS if alias in b.joins]  # WHERE's joins
    for c in dims:
        b.need(*defs[c].joins)

    def key(c: int) -> str:  # a dimension's sort key column
        return f"s{c}" if defs[c].sort_sql else f"k{c}"

    def sort_name(c: int) -> str:  # any column's sort key column
        if COLUMNS[c].derived:
            return f"x{c}"
        return key(c) if COLUMNS[c].dimension else f"f{c}"

    group_cols = [f"k{c}" for c in dims] + [f"s{c}" for c in dims if defs[c].sort_sql]
    calls_cols = [f"{defs[c].sql} AS k{c}" for c in dims]
    calls_cols += [f"{defs[c].sort_sql} AS s{c}" for c in dims if defs[c].sort_sql]
    # a fact with its own aggregate (Calls: count(*)) is read per call by a listing only
    calls_cols += [f"{defs[c].sql} AS f{c}" for c in facts if listing or not defs[c].aggregate]
    joins = [JOINS[alias] for alias in JOINS if alias in b.joins]
    limit = b.bind(threshold) if threshold is not None else ""
    if listing and limit and sort and sort[0].column in facts:  # Longest Calls ...
        first = sort[0]
        where = [*where, _cutoff(defs[first.column].sql, first.order, filter_joins, where, limit)]
    calls = (
        "SELECT "
        + (", ".join(calls_cols) or "1 AS _one")
        + "\n  FROM perspective_base AS pb"
        + "".join(f"\n  {j}" for j in joins)
        + "\n  WHERE "
        + "\n    AND ".join(where)
    )
    if listing:
        detail = "SELECT * FROM calls"
    else:
        sums = [f"{defs[c].aggregate or f'SUM(f{c})'} AS f{c}" for c in facts]
        detail = f"SELECT {', '.join(group_cols + sums) or '1 AS _one'} FROM calls"
        # no dimensions: one row, unless there are no calls at all
        detail += f" GROUP BY {', '.join(group_cols)}" if group_cols else " HAVING COUNT(*) > 0"

    scale = {c: COLUMNS[c].decimals for c in facts}
    derived_keys = {
        k.column: _derived_key(COLUMNS[k.column].equation, scale)
        for k in sort
        if COLUMNS[k.column].derived
    }
    keyed = "SELECT *" + "".join(f", {e} AS x{c}" for c, e in derived_keys.items())
    keyed += " FROM detail"

    order: list[str] = []
    for k in sort:
        order.append(f"{sort_name(k.column)} {'ASC' if k.order == 'A' else 'DESC'} NULLS LAST")
    sorted_by = {sort_name(k.column) for k in sort}
    order += [f"{key(c)} ASC NULLS LAST" for c in dims if key(c) not in sorted_by]
    order += [f"f{c} ASC NULLS LAST" for c in facts if f"f{c}" not in sorted_by]
    order_by = ", ".join(order) or "1"
    source = "keyed"
    if limit:  # a top-N: DuckDB keeps N rows, it does not sort them all
        source = f"(SELECT * FROM keyed ORDER BY {order_by} LIMIT {limit})"
    ranked = f"SELECT *, row_number() OVER (ORDER BY {order_by}) AS _rank FROM {source}"

    detail_set = ["_rank", *group_cols]
    sets = ["(" + ", ".join(detail_set) + ")"]
    full = set(breaks) == set(dims) and not listing
    for n in range(len(breaks), 0, -1):
        if n == len(breaks) and full:
            continue  # the deepest subtotal would repeat each detail row
        level = [f"k{c}" for c in breaks[:n]] + [f"s{c}" for c in breaks[:n] if defs[c].sort_sql]
        sets.append("(" + ", ".join(level) + ")")
    sets.append("()")
    total = f"GROUPING(k{breaks[0]}) = 1" if breaks else "GROUPING(_rank) = 1"
    row_type = f"CASE WHEN GROUPING(_rank) = 0 THEN 'D' WHEN {total} THEN 'T' ELSE 'S' END"
    select = [f"{row_type} AS _rt"] + [f"k{c}" for c in dims]
    select += [f"COALESCE(SUM(f{c}), 0) AS f{c}" for c in facts]
    direction = {k.column: k.order for k in sort}
    final_order = [f"({total}) DESC"]
    for c in breaks:
        way = "DESC" if direction.get(c) == "D" else "ASC"
        final_order += [f"GROUPING(k{c}) ASC", f"{key(c)} {way} NULLS LAST"]
    final_order += ["GROUPING(_rank) ASC", "MIN(_rank) ASC"]
    return (
        f"WITH calls AS (\n  {calls}\n),\n"
        f"detail AS ({detail}),\n"
        f"keyed AS ({keyed}),\n"
        f"ranked AS ({ranked})\n"
        f"SELECT {', '.join(select)}\nFROM ranked\n"
        f"GROUP BY GROUPING SETS ({', '.join(sets)})\n"
        f"ORDER BY {', '.join(final_order)}"
    )
