"""The DSS column-id table and translation table (seed 001, Appendix I; Figure 12(b)).

Theory of operation
-------------------
Appendix I gives the formatter two tables: the **Column ID Table** (``colid``, the
names, ``fact_dim_flag``, ``subtotalflag``, ``tranflag``, ``equation`` for a derived
column, ``numflag``) and the **Translation Table** (``colid``, ``value``,
``tran_literal``).  Both are data here:

* :data:`COLUMNS` -- one :class:`ColumnDef` per column id any standard template of the
  Report Manager uses (``proxies/rm/templates.py`` assigns the ids and the labels the
  viewer shows; a test holds the two tables to the same ids, labels, data types,
  decimals and equations).  What the DSS adds is how each column is read from the
  star schema of Appendix H (table and column names of PROTOCOL.md section 8):
  ``sql`` is an expression over **one call**, using the aliases of :data:`JOINS`
  (``pb`` is ``perspective_base``), and ``joins`` names the aliases it needs.
  Dimensions are grouped by that value; additive facts (``subtotalflag`` Y) are summed
  per row (Calls is counted: ``aggregate``), per subtotal and for the report total;
  derived columns (``equation``, the seed's ``( C36 / CT36 ) * 100``) are computed by
  the formatter with :mod:`starwrs.proxies.dss.expr` and never read from the datamart.
* :data:`TRANSLATIONS` -- (colid, code as text) -> literal, for the columns whose
  ``translate`` flag is set; a code not in the table is written as it is.  Codes
  and literals come from the datamart's own reference data
  (:mod:`starwrs.storage.datamart.reference`), so a code the datamart stores always
  has its literal here; day of week, payphone and time-of-day literals are ours, and
  ``(114, '19') -> International`` is the seed's example row.

Where the seed is silent (the choices are ours and documented per column below):

* dates and times are shown in the **user's time zone**: the GMT minute of the call
  (``perspective_base.gmt_key``, minutes since 1970) plus the ARD's
  ``TIMEZONE.OFFSET`` hours (bound as ``$tz_minutes``); ``Call Date`` is ISO
  ``YYYY-MM-DD``, ``Call Time`` ``HH:MM``, ``Hour`` 0-23, ``Day of Week`` 1 = Sunday.
  ``Time of Day`` is the tariff rate period of the switch's local time (``lst.rate``).
* geography columns (country, area code, city, state) read ``report_geo``: the far end
  as the customer sees it (the called place of an outbound call, the caller of an
  inbound one), which is also what the GEO filter selects.
* ``Total Amt`` (37) is ``amount`` + ``tax``; ``Amount`` (58) is ``amount`` (the price
  with its surcharges, Appendix H).
* translated columns sort by their code (``Access Type`` by the seed's printed order
  of the codes, ``sort_sql``), never by the literal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starwrs.storage.datamart import reference as ref

__all__ = [
    "COLUMNS",
    "JOINS",
    "LOCAL_TIME",
    "TRANSLATIONS",
    "ColumnDef",
    "translate",
]

#: The call's minute in the user's time zone: GMT minute + ``$tz_minutes``.
LOCAL_TIME = "make_timestamp((pb.gmt_key::BIGINT + $tz_minutes) * 60000000)"

#: alias -> the join that brings it in (``pb`` = perspective_base, always present).
#: Every fact key is NOT NULL (``schema.FACT_COLUMNS``) and the load writes the
#: dimension row of every key it stores (``0`` = none for toll-free, card and ID code
#: has its own row), so a key join finds exactly one row: an inner join, which leaves
#: DuckDB free to order the joins and to filter the dimension's scan.
JOINS: Mapping[str, str] = {
    "bc": "JOIN billing_corp AS bc ON bc.billing_corp_key = pb.billing_corp_key",
    "acc": "JOIN access_type AS acc ON acc.access_type_key = pb.access_type_key",
    "rg": "JOIN report_geo AS rg ON rg.geo_key = pb.report_geo_key",
    "tf": "JOIN tollfree AS tf ON tf.tollfree_key = pb.tollfree_key",
    "cd": "JOIN card AS cd ON cd.card_key = pb.card_key",
    "ia": "JOIN idacc AS ia ON ia.idacc_key = pb.idacc_key",
    "us": "JOIN usage AS us ON us.usage_key = pb.usage_key",
    "lst": "JOIN lst ON lst.time_key = pb.lst_key",
    # the band with the greatest low_end <= duration (the bands are contiguous): an
    # ASOF join is a merge, where a range join would test every band for every call;
    # not a key, so LEFT: a duration below every band would still be a call
    "dr": "ASOF LEFT JOIN duration_range AS dr ON pb.duration >= dr.low_end",
}


@dataclass(frozen=True, slots=True)
class ColumnDef:
    """One row of the Appendix I column-id table, with how the DSS reads it.

    Attributes:
        colid: the column id (``COLUMNS=<54~55>``).
        label: ``rptmgr_name`` / the viewer's COLUMN_LABEL.
        datatype: Appendix F DATATYPE: S string, I integer, N number, C currency.
        decimals: digits after the point in the file (Appendix F DECIMAL).
        kind: ``fact_dim_flag``: ``D`` dimension or ``F`` fact.
        sql: the value for one call over the star schema ("" for a derived column).
        joins: the :data:`JOINS` aliases ``sql`` (and ``sort_sql``) need.
        additive: ``subtotalflag``: summed into subtotals and totals.
        translate: ``tranflag``: the file shows :data:`TRANSLATIONS` literals.
        equation: the derived column's equation (``format_columns`` Y), else "".
        sort_sql: a dimension's sort key when it is not the value itself ("").
        time: ``sql`` uses :data:`LOCAL_TIME` (needs ``$tz_minutes``).
        aggregate: an additive fact's value for a group of calls when it is not
            ``SUM`` of ``sql`` ("" = the sum): ``count(*)`` for Calls (67), which
            DuckDB can also count below the dimension joins, where a sum of 1s it cannot.
    """

    colid: int
    label: str
    datatype: str
    decimals: int
    kind: str
    sql: str
    joins: tuple[str, ...] = ()
    additive: bool = False
    translate: bool = False
    equation: str = ""
    sort_sql: str = ""
    time: bool = False
    aggregate: str = ""

    @property
    def derived(self) -> bool:
        """Computed by the formatter from other columns (an equation)."""
        return bool(self.equation)

    @property
    def dimension(self) -> bool:
        """A dimension (grouped by), not a fact."""
        return self.kind == "D"


def _dim(
    colid: int,
    label: str,
    sql: str,
    *joins: str,
    translate: bool = False,
    sort_sql: str = "",
) -> ColumnDef:
    return ColumnDef(
        colid,
        label,
        "S",  # the file holds their text (the viewer's DATATYPE, as the Report Manager's)
        0,
        "D",
        sql,
        joins,
        translate=translate,
        sort_sql=sort_sql,
        time=LOCAL_TIME in sql,
    )


def _fact(
    colid: int, label: str, datatype: str, decimals: int, sql: str, aggregate: str = ""
) -> ColumnDef:
    return ColumnDef(
        colid, label, datatype, decimals, "F", sql, (), additive=True, aggregate=aggregate
    )


def _derived(colid: int, label: str, decimals: int, equation: str) -> ColumnDef:
    return ColumnDef(colid, label, "N", decimals, "F", "", (), equation=equation)


_TABLE: tuple[ColumnDef, ...] = (
    # -- dimensions --------------------------------------------------------------------
    _dim(1, "Call Date", f"CAST({LOCAL_TIME} AS DATE)"),
    _dim(2, "Call Time", f"strftime({LOCAL_TIME}, '%H:%M')"),
    _dim(3, "Originating Number", "pb.orig_number"),
    _dim(4, "Dialed Number", "pb.dialed_number"),
    _dim(5, "Toll Free Number", "tf.tollfree", "tf"),
    _dim(6, "Country Code", "rg.country_cd", "rg"),
    _dim(7, "Country", "rg.country_name", "rg"),
    _dim(8, "Calling Card Number", "cd.card_number", "cd"),
    _dim(9, "ID/Acct Code", "ia.idacc", "ia"),
    # access_type_key is the code's ordinal in Appendix H's printed order (+100 inbound)
    _dim(
        10,
        "Access Type",
        "acc.access_code",
        "acc",
        translate=True,
        sort_sql="acc.access_type_key % 100",
    ),
    _dim(11, "Hour", f"hour({LOCAL_TIME})"),
    _dim(12, "Day of Week", f"dayofweek({LOCAL_TIME}) + 1", translate=True),
    _dim(13, "Duration Range", "dr.duration_range_cd", "dr", translate=True),
    _dim(
        14,
        "Payphone",
        "CASE WHEN pb.pay_phone_cd = 'P' THEN 1 ELSE 0 END",
        translate=True,
    ),
    _dim(15, "Time of Day", "lst.rate", "lst", translate=True),
    _dim(16, "Corp ID", "pb.corp_id"),
    _dim(17, "Billing ID", "bc.billing_id", "bc"),
    _dim(44, "Area Code", "rg.npa", "rg"),
    _dim(54, "City", "rg.city_name", "rg"),
    _dim(55, "State", "rg.state_cd", "rg"),
    _dim(105, "Usage Description", "us.use_cd", "us", translate=True),
    _dim(114, "Range/Distance Description", "pb.range", translate=True),
    # -- additive facts (Appendix I "Total Amt" 37; the metadata example's 36, 58, 67) --
    _fact(36, "Minutes", "N", 1, "pb.duration"),
    _fact(37, "Total Amt", "C", 2, "pb.amount + pb.tax"),
    _fact(58, "Amount", "C", 2, "pb.amount"),
    _fact(67, "Calls", "I", 0, "1", "count(*)"),  # 1 per call (a listing's row)
    # -- derived columns: the seed's % Min (61) and its siblings, averages per call/minute
    _derived(61, "% Min", 1, "( C36 / CT36 ) * 100"),
    _derived(62, "% Calls", 1, "( C67 / CT67 ) * 100"),
    _derived(63, "% Amt", 1, "( C58 / CT58 ) * 100"),
    _derived(64, "Avg Min/Call", 2, "C36 / C67"),
    _derived(65, "Avg Amt/Min", 2, "C58 / C36"),
    _derived(66, "Avg Amt/Call", 2, "C58 / C67"),
)

#: colid -> column (Appendix I "Column ID Table")
COLUMNS: Mapping[int, ColumnDef] = {c.colid: c for c in _TABLE}

_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def _translations() -> dict[tuple[int, str], str]:
    table: dict[tuple[int, str], str] = {}
    for code, value, _inbound_only in ref.ACCESS_TYPES:
        if value is not None:
            table[(10, code)] = value
    for n, day in enumerate(_DAYS, start=1):
        table[(12, str(n))] = day
    for code, low, high in ref.DURATION_RANGES:
        table[(13, code)] = f"{low:.1f} to {high:.1f}"
    table[(14, "0")] = "No"
    table[(14, "1")] = "Yes"
    for code, description in ref.RATE_PERIODS:
        table[(15, code)] = description.split(" ", 1)[0].title()
    for code, description in ref.USAGE:
        table[(105, code)] = description
    for band, (low, high) in enumerate(ref.DISTANCE_BANDS, start=1):
        label = f"{low} TO {high} MILES" if high < 99999 else f"{low}+ MILES"
        for in_out in ("1", "0"):
            table[(114, ref.range_code(band, in_out))] = label
    table[(114, "19")] = "International"  # the seed's own example row
    return table


#: (colid, code as text) -> tran_literal (Appendix I "Translation Table")
TRANSLATIONS: Mapping[tuple[int, str], str] = _translations()


def translate(colid: int, code: str) -> str:
    """The literal the file shows for *code* of column *colid* (the code if none)."""
    return TRANSLATIONS.get((colid, code), code)
