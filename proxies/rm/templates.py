"""Standard report templates and the column-id / translation tables (seed 001, Appendix I).

Theory of operation
-------------------
Everything here is data, built once at import from a few small tables:

* :data:`COLUMNS` -- the Appendix I "Column ID Table": one :class:`Column` per
  column a template uses.  The seed's own ids are kept (36 Minutes, 37 Total Amt,
  54 City, 55 State, 58 Amount, 61-66 the derived percentages and averages, 67
  Calls, 105 Usage Description, 114 Range/Distance Description; 44 Area Code, as
  the request-table example of template 101 sorts on it); the others are ours, in
  the free ids 1-35 and 68-120.  Derived columns carry the seed's equation syntax
  (``( C36 / CT36 ) * 100``: ``Cn`` the row's value of column n, ``CTn`` its total).
* :data:`TRANSLATIONS` -- the "Translation Table": (colid, value) -> literal for
  columns with ``tranflag`` Y (usage, range/distance, access type, day of week,
  payphone); usage and access literals are order entry's pick-list descriptions.
* :data:`TEMPLATES` -- one :class:`Template` per (category, report, direction):
  the seven categories of the seed each list their reports (seed 001 "report
  categories"), every report kind is described once in :data:`_KINDS` (its
  dimension columns, default sort, threshold, products, data categories, extra
  customizations).  A report for inbound and one for outbound data are two
  templates; each covers the priced and (unless it needs amounts) the unpriced
  data category -- the unpriced variant simply drops the amount columns.
  Ids are assigned in order from 1, except the seed's pinned ids
  (:data:`_PINNED`: 90 = Analyze Traffic / City Summary outbound, the ARD example;
  101 = Financial / Area Code Summary outbound, the request-table example).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from starwrs.grammar.codecs import SortKey
from starwrs.proxies.oe import reference

__all__ = [
    "AMOUNT_COLUMNS",
    "CATEGORIES",
    "COLUMNS",
    "TEMPLATES",
    "TRANSLATIONS",
    "Column",
    "Template",
    "templates_for",
]


@dataclass(frozen=True, slots=True)
class Column:
    """One row of the Appendix I column-id table.

    Attributes:
        colid: the column id (``COLUMNS=<54~55>``, ``SORTBY=<54D>``).
        name: ``ia_name`` / ``rptmgr_name``: the header the user sees.
        datatype: metadata DATATYPE: S text, I integer, N number, C currency.
        decimals: digits after the point.
        width: display width.
        fact_dim: F fact (a measure) or D dimension.
        subtotal: may be subtotalled / totalled (``subtotalflag``).
        translate: the translation table applies (``tranflag``).
        equation: for derived columns (``format_columns`` Y), else "".
        dimension: the star-schema dimension (or fact table) the column reads.
    """

    colid: int
    name: str
    datatype: str
    decimals: int
    width: int
    fact_dim: str
    subtotal: bool
    translate: bool
    equation: str
    dimension: str

    @property
    def derived(self) -> bool:
        """A column computed by the formatter from other columns."""
        return bool(self.equation)


def _dim(colid: int, name: str, dimension: str, width: int = 12, *, tr: bool = False) -> Column:
    return Column(colid, name, "S", 0, width, "D", False, tr, "", dimension)


def _fact(colid: int, name: str, datatype: str, decimals: int, width: int, eq: str = "") -> Column:
    subtotal = not eq
    return Column(colid, name, datatype, decimals, width, "F", subtotal, False, eq, "call_fact")


_COLUMN_LIST: tuple[Column, ...] = (
    # dimensions
    _dim(1, "Call Date", "time", 10),
    _dim(2, "Call Time", "time", 8),
    _dim(3, "Originating Number", "originating", 15),
    _dim(4, "Dialed Number", "terminating", 15),
    _dim(5, "Toll Free Number", "toll_free", 12),
    _dim(6, "Country Code", "geography", 7),
    _dim(7, "Country", "geography", 20),
    _dim(8, "Calling Card Number", "card", 20),
    _dim(9, "ID/Acct Code", "idacc", 12),
    _dim(10, "Access Type", "access", 20, tr=True),
    _dim(11, "Hour", "time", 5),
    _dim(12, "Day of Week", "time", 10, tr=True),
    _dim(13, "Duration Range", "duration", 14),
    _dim(14, "Payphone", "originating", 8, tr=True),
    _dim(15, "Time of Day", "time", 8),
    _dim(16, "Corp ID", "billing", 8),
    _dim(17, "Billing ID", "billing", 10),
    _dim(44, "Area Code", "geography", 6),
    _dim(54, "City", "geography", 20),
    _dim(55, "State", "geography", 6),
    _dim(105, "Usage Description", "usage", 20, tr=True),
    _dim(114, "Range/Distance Description", "range", 20, tr=True),
    # facts (Appendix I / the metadata example of seed 001)
    _fact(36, "Minutes", "N", 1, 8),
    _fact(37, "Total Amt", "C", 2, 9),
    _fact(58, "Amount", "C", 2, 7),
    _fact(67, "Calls", "I", 0, 7),
    # derived columns, the seed's equation syntax
    _fact(61, "% Min", "N", 1, 5, "( C36 / CT36 ) * 100"),
    _fact(62, "% Calls", "N", 1, 7, "( C67 / CT67 ) * 100"),
    _fact(63, "% Amt", "N", 1, 5, "( C58 / CT58 ) * 100"),
    _fact(64, "Avg Min/Call", "N", 2, 12, "C36 / C67"),
    _fact(65, "Avg Amt/Min", "N", 2, 11, "C58 / C36"),
    _fact(66, "Avg Amt/Call", "N", 2, 12, "C58 / C67"),
)

#: colid -> column (Appendix I "Column ID Table")
COLUMNS: Mapping[int, Column] = {c.colid: c for c in _COLUMN_LIST}

#: columns that only exist for priced data
AMOUNT_COLUMNS = frozenset({37, 58, 63, 65, 66})

_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def _translations() -> dict[tuple[int, int], str]:
    table: dict[tuple[int, int], str] = {}
    for item in reference.PICK_LISTS:
        if item.kind == "USAGE" and item.code.isdigit():
            table[(105, int(item.code))] = item.description[:20]
        elif item.kind == "ACCESS" and item.code.isdigit():
            table[(10, int(item.code))] = item.description[:20]
        elif item.kind == "RANGE" and item.io == "I":
            table[(114, int(item.code))] = item.description[:20]
    table[(114, 19)] = "International"  # the seed's own example row
    for n, day in enumerate(_DAYS, start=1):
        table[(12, n)] = day
    table[(14, 0)] = "No"
    table[(14, 1)] = "Yes"
    return table


#: (colid, value) -> tran_literal (Appendix I "Translation Table")
TRANSLATIONS: Mapping[tuple[int, int], str] = _translations()


@dataclass(frozen=True, slots=True)
class Template:
    """One standard report template.

    Attributes:
        template_id: ``RptTemplateID`` / ``STDRPTID``.
        title: the report's name (``Longest Calls``).
        category: the category description it is listed under in SRTL.
        direction: I inbound or O outbound data.
        data_type: R (a report) or D (a call-detail list).
        products: products it applies to (V, C, S, T, H).
        data_cats: P priced and/or U unpriced.
        columns: default columns, in display order (priced variant).
        optional: further columns the user may add (PL_FIELDS).
        sort: default sort order.
        threshold: default RECCOUNT.
        customizations: the report-builder nodes the user may change.
        description: the default report description.
    """

    template_id: int
    title: str
    category: str
    direction: str
    data_type: str
    products: frozenset[str]
    data_cats: frozenset[str]
    columns: tuple[int, ...]
    optional: tuple[int, ...]
    sort: tuple[SortKey, ...]
    threshold: int
    customizations: frozenset[str]
    description: str

    def columns_for(self, data_cat: str) -> tuple[int, ...]:
        """Default columns for P (priced) or U (unpriced) data."""
        if data_cat == "P":
            return self.columns
        return tuple(c for c in self.columns if c not in AMOUNT_COLUMNS)

    def fields(self, data_cat: str = "P") -> tuple[int, ...]:
        """Every column the user may choose (defaults first)."""
        extra = (c for c in self.optional if c not in self.columns)
        every = (*self.columns, *extra)
        return every if data_cat == "P" else tuple(c for c in every if c not in AMOUNT_COLUMNS)

    def applies(self, product: str, data_cat: str, data_type: str = "R") -> bool:
        """Whether this template is offered for product x data category x data type."""
        cats = {"P", "U"} if data_cat == "B" else {data_cat}
        types = {"R", "D"} if data_type == "A" else {data_type}
        return product in self.products and bool(cats & self.data_cats) and self.data_type in types


# -- the report kinds ---------------------------------------------------------------

_SUMMARY_P = (67, 62, 36, 61, 58, 63, 64, 66, 65)  # the seed's order (ARD, metadata examples)
_LIST_P = (1, 2, 3, 4, 54, 55, 36, 58)
_ALL = frozenset("VCST")
_WITH_H = frozenset("VCSTH")
_BASE = frozenset(
    {"general", "schedule", "layout", "threshold", "hierarchy", "notification", "access"}
)


@dataclass(frozen=True, slots=True)
class _Kind:
    dims: tuple[int, ...]
    sort: str
    threshold: int = 500
    listing: bool = False
    priced_only: bool = False
    products: frozenset[str] = _ALL
    extra: frozenset[str] = frozenset()
    description: str = ""


_KINDS: dict[str, _Kind] = {
    "Longest Calls": _Kind((), "36D", 100, listing=True, description="the longest calls"),
    "Most Expensive Calls": _Kind(
        (), "58D", 100, listing=True, priced_only=True, description="the most expensive calls"
    ),
    "Off Peak Calls": _Kind((15,), "1A", 200, listing=True, description="calls made off peak"),
    "Payphone Report": _Kind((14,), "1A", 200, listing=True, description="payphone calls"),
    "Review Calls": _Kind((), "1A", 1000, listing=True, description="every call, for review"),
    "Usage Summary": _Kind(
        (105, 114), "105A", products=_WITH_H, extra=frozenset({"usage", "range"})
    ),
    "Calling Card Summary": _Kind((8,), "67D", extra=frozenset({"cardno"})),
    "Area Code Summary": _Kind((44,), "44A", extra=frozenset({"geography"})),
    "Country Code Summary": _Kind((6, 7), "6A", extra=frozenset({"geography"})),
    "State Summary": _Kind((55,), "55A", extra=frozenset({"geography"})),
    "City Summary": _Kind((54, 55), "54D", extra=frozenset({"geography"})),
    "Range Summary": _Kind((114,), "114A", extra=frozenset({"range"})),
    "Frequent Numbers": _Kind((4,), "67D", 20),
    "Frequent Area Codes": _Kind((44,), "67D", 20, extra=frozenset({"geography"})),
    "Frequent Country Codes": _Kind((6, 7), "67D", 20, extra=frozenset({"geography"})),
    "Frequent States": _Kind((55,), "67D", 20, extra=frozenset({"geography"})),
    "Frequent Cities": _Kind((54, 55), "67D", 20, extra=frozenset({"geography"})),
    "Call Duration Summary": _Kind((13,), "13A", products=_WITH_H, extra=frozenset({"duration"})),
    "IDACC/Supp Code Summary": _Kind((9,), "9A", extra=frozenset({"idac"})),
    "Call Access Summary": _Kind((10,), "10A"),
    "Most Active Toll Free Numbers": _Kind(
        (5,), "67D", 20, products=frozenset("T"), extra=frozenset({"ndialed"})
    ),
    "Most Active Calling Cards": _Kind((8,), "67D", 20, extra=frozenset({"cardno"})),
    "Hourly Distribution": _Kind((11,), "11A", 24, products=_WITH_H),
    "Day of Week Distribution": _Kind((12,), "12A", 7, products=_WITH_H),
}

#: category -> its reports, in the seed's order (seed 001, "report categories")
CATEGORIES: Mapping[str, tuple[str, ...]] = {
    "Financial": (
        "Longest Calls",
        "Most Expensive Calls",
        "Off Peak Calls",
        "Payphone Report",
        "Usage Summary",
        "Calling Card Summary",
        "Area Code Summary",
    ),
    "Marketing": (
        "Country Code Summary",
        "State Summary",
        "Frequent Numbers",
        "Frequent Area Codes",
        "Frequent States",
        "Frequent Cities",
    ),
    "Telecommunications": (
        "Call Duration Summary",
        "IDACC/Supp Code Summary",
        "Call Access Summary",
    ),
    "Call Center": (
        "Most Active Toll Free Numbers",
        "Hourly Distribution",
        "Day of Week Distribution",
        "State Summary",
        "Country Code Summary",
    ),
    "Monitor Usage": (
        "Longest Calls",
        "Most Expensive Calls",
        "Most Active Calling Cards",
        "Most Active Toll Free Numbers",
    ),
    "Analyze Traffic": (
        "Area Code Summary",
        "Country Code Summary",
        "State Summary",
        "Range Summary",
        "City Summary",
        "Frequent Numbers",
        "Payphone Report",
        "Usage Summary",
        "Calling Card Summary",
        "IDACC/Supp Code Summary",
        "Day of Week Distribution",
        "Hourly Distribution",
        "Call Access Summary",
        "Review Calls",
    ),
    "Check Calling Frequencies": (
        "Frequent Numbers",
        "Frequent Area Codes",
        "Frequent Country Codes",
        "Frequent States",
        "Frequent Cities",
    ),
}

#: (category, report, direction) -> the seed's own template id
_PINNED: Mapping[tuple[str, str, str], int] = {
    ("Analyze Traffic", "City Summary", "O"): 90,
    ("Financial", "Area Code Summary", "O"): 101,
}

_OPTIONAL = (16, 17, 10, 37)


def _sort(text: str) -> tuple[SortKey, ...]:
    return (SortKey(int(text[:-1]), "A" if text.endswith("A") else "D"),)


def _build() -> tuple[Template, ...]:
    keys = [
        (category, report, direction)
        for category, reports in CATEGORIES.items()
        for report in reports
        for direction in ("O", "I")
    ]
    taken = set(_PINNED.values())
    ids: dict[tuple[str, str, str], int] = {}
    next_id = 1
    for key in keys:
        if key in _PINNED:
            ids[key] = _PINNED[key]
            continue
        while next_id in taken:
            next_id += 1
        ids[key] = next_id
        taken.add(next_id)
    out: list[Template] = []
    for key in keys:
        category, report, direction = key
        kind = _KINDS[report]
        base = _LIST_P if kind.listing else _SUMMARY_P
        columns = (*kind.dims, *base) if not kind.listing else (*base, *kind.dims)
        way = "inbound" if direction == "I" else "outbound"
        about = kind.description or f"call detail by {COLUMNS[kind.dims[0]].name.lower()}"
        custom = set(_BASE | kind.extra)
        if "T" in kind.products:
            custom.add("ndialed")
        out.append(
            Template(
                template_id=ids[key],
                title=report,
                category=category,
                direction=direction,
                data_type="D" if report == "Review Calls" else "R",
                products=kind.products,
                data_cats=frozenset("P" if kind.priced_only else "PU"),
                columns=tuple(dict.fromkeys(columns)),
                optional=_OPTIONAL,
                sort=_sort(kind.sort),
                threshold=kind.threshold,
                customizations=frozenset(custom),
                description=f"This report summarizes {about} ({way} calls). "
                "The report is based on the date/time ranges and report criteria selected.",
            )
        )
    return tuple(sorted(out, key=lambda t: t.template_id))


#: template id -> template
TEMPLATES: Mapping[int, Template] = {t.template_id: t for t in _build()}


def templates_for(
    product: str, data_cat: str, direction: str, data_type: str = "R"
) -> list[Template]:
    """The templates offered for a GRTL: product x data category x direction x type.

    Args:
        product: V, C, S, T or H.
        data_cat: P, U (or B for either).
        direction: I, O, or B (both directions).
        data_type: R reports, D call detail, A all.

    Returns:
        Matching templates in id order.
    """
    ways = {"I", "O"} if direction == "B" else {direction}
    return [
        t
        for t in TEMPLATES.values()
        if t.direction in ways and t.applies(product, data_cat, data_type)
    ]


def check_columns(columns: Iterable[int]) -> list[int]:
    """The ids in *columns* that the column table does not know."""
    return [c for c in columns if c not in COLUMNS]
