"""Report metadata (Appendix F, "GET METADATA"): how the Report Viewer shows a report.

Theory of operation
-------------------
The Report Manager writes one metadata body per report (the ``.mtd`` file stored
beside the data in the inbox).  It has no acronym: ``<METADATA=<...>>``, and inside
the ``METADATA`` group:

* ``CRITERIA=<...>`` -- the lines printed above the report (:class:`Criteria`);
* the graph defaults (``DEFAULT_GRAPH_MODE``, ``DEFAULT_GRAPH_TYPE``,
  ``DEFINE_X_AXIS``, ``X_AXIS_COLUMN``, ``DEFAULT_Y_COLUMNS``);
* the column orders (``COLUMN_DISPLAY_ORDER``, ``COLUMN_STORED_ORDER``), sorting
  and totals (``SORT_ALLOWED``, ``PRESORTED``, ``PRESUBTOTALED``, ``TOTALMODE``,
  ``SORT_COLUMNS``, ``SUBTOTCOL``, ``SELECTED_SECTION``);
* one ``METACOLUMN=<...>`` per column (:class:`MetaColumn`).

Where the Appendix F table and the seed's two examples disagree, the examples
decide what is accepted and the table decides the canonical spelling:
``COLUMN_STORED_ORDER``, ``Report_Level`` and ``Time_zone`` are optional (an
example omits each); ``PRESUBTOTALED`` and ``SORT_COLUMNS`` are accepted although
only the example has them; ``SUBTOTAL_COLUMNS`` (example 1) is read as
``SUBTOTCOL``, ``DEFAULT_Y_COLUMN`` (table) as ``DEFAULT_Y_COLUMNS`` (both
examples), ``Timezone`` (example 1) as ``Time_zone`` (table).  Key case does not
matter (``NAME=`` is ``Name=``).  The free-form criteria lines (Report_Level,
Dates, Number_Dialed, ...) stay as trees, and an empty one (``Options=``,
``One_Time=``) is kept as ``""``: the viewer prints the line, and One_Time versus
Recurring is the schedule type.

Code-assignment rules (Report Manager family defaults, plus)
------------------------------------------------------------
* no ``METADATA=`` group -> 6701, anything beside it -> 6610;
  ``CRITERIA`` missing -> 6701, empty -> 6703;
* Name missing -> 6823, empty -> 6600 (report title is null); Description
  missing -> 6811, empty -> 6812, over 100 characters -> 6103; Dates missing -> 6114;
* METACOLUMN.DATATYPE missing -> 6809, empty -> 6810, not S/C/I/N/D/L -> 6103;
  CALCULATE_EXPRESSION missing or empty when CALCULATE is 1 -> 6114 / 6703;
* X_AXIS_COLUMN missing or empty when DEFINE_X_AXIS is 1 -> 6114 / 6703;
  SUBTOTCOL missing or empty when TOTALMODE is 1 or 3 or SELECTED_SECTION is 1
  -> 6114 / 6703.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starwrs.grammar.catalogue_rm import SUBTOTALS
from starwrs.grammar.codecs import Choice, Flag, Id, IdList, Int, Raw, SortBy, SortKey, Text
from starwrs.grammar.errors import ErrorCode
from starwrs.grammar.model import Value
from starwrs.grammar.typed import Nested, TypedGroup, TypedMessage, When, param, typed
from starwrs.grammar.vocab import ColumnDataType, GraphMode, GraphType, TotalMode

__all__ = ["MESSAGES", "Criteria", "MetaColumn", "ReportMetadata"]


def _opt(key: str) -> Any:
    """An optional free-form criteria line; ``Options=`` (a line with no value) is kept."""
    return param(key, Raw(), keep_empty=True, default=None)


@typed
class Criteria(TypedGroup):
    """``CRITERIA=<...>``: the report's name, totals and selection criteria."""

    name: str = param("Name", Text(100), required=True, empty=ErrorCode.REPORT_TITLE_NULL)
    total_inbound_amount: Value | None = _opt("Total_Inbound_Amount")
    total_outbound_amount: Value | None = _opt("Total_Outbound_Amount")
    total_amount: Value | None = _opt("Total_Amount")
    total_inbound_minutes: Value | None = _opt("Total_Inbound_Minutes")
    total_outbound_minutes: Value | None = _opt("Total_Outbound_Minutes")
    total_minutes: Value | None = _opt("Total_Minutes")
    total_inbound_calls: Value | None = _opt("Total_Inbound_Calls")
    total_outbound_calls: Value | None = _opt("Total_Outbound_Calls")
    total_calls: Value | None = _opt("Total_Calls")
    total: str | None = param("Total", Text(), default=None)
    description: str = param("Description", Text(100), required=True)
    report_level: Value | None = _opt("Report_Level")
    options: Value | None = _opt("Options")
    supp_code: Value | None = _opt("Supp_Code")
    access_type: Value | None = _opt("Access_Type")
    card_number: Value | None = _opt("Card_Number")
    id_accounting_codes: Value | None = _opt("ID/Accounting_Codes")
    number_dialed: Value | None = _opt("Number_Dialed")
    range: Value | None = _opt("Range")
    usage: Value | None = _opt("Usage")
    scheduling_information: Value | None = _opt("Scheduling_Information")
    one_time: Value | None = _opt("One_Time")
    recurring: Value | None = _opt("Recurring")
    dates: Value = param("Dates", Raw(), required=True)
    time_zone: str | None = param("Time_zone", Text(), aliases=("Timezone",), default=None)
    lang: str | None = param("Lang", Text(4), default=None)
    curr: str | None = param("Curr", Text(4), default=None)


def _calculated(values: Mapping[str, Any]) -> bool:
    return bool(values["calculate"])


@typed
class MetaColumn(TypedGroup):
    """``METACOLUMN=<...>``: how the viewer shows one column."""

    column_id: int = param("META_COLUMN_ID", Id(), required=True)
    label: str = param("COLUMN_LABEL", Text(), required=True)
    data_type: ColumnDataType = param("DATATYPE", Choice(ColumnDataType), required=True)
    decimal: int | None = param("DECIMAL", Int(0, 99), default=None)
    hideable: bool = param("HIDEABLE", Flag(), required=True)
    graphable: bool = param("GRAPHABLE", Flag(), required=True)
    width: int = param("WIDTH", Int(0, 9999), required=True)
    calculate: bool = param("CALCULATE", Flag(), required=True)
    calculate_expression: Value | None = param(
        "CALCULATE_EXPRESSION",
        Raw(),
        required_if=(When("CALCULATE is 1", _calculated),),
        default=None,
    )


def _x_axis(values: Mapping[str, Any]) -> bool:
    return bool(values["define_x_axis"])


def _selected(values: Mapping[str, Any]) -> bool:
    return bool(values["selected_section"])


@typed
class ReportMetadata(TypedMessage):
    """``<METADATA=<CRITERIA=<...>,...,METACOLUMN=<...>,...>>`` -- a report's metadata."""

    ACRONYM = None
    WRAPPER = "METADATA"
    criteria: Criteria = param(
        "CRITERIA", Nested(Criteria), required=True, missing=ErrorCode.REQUIRED_TOKENS_MISSING
    )
    default_graph_mode: GraphMode = param("DEFAULT_GRAPH_MODE", Choice(GraphMode), required=True)
    default_graph_type: GraphType = param("DEFAULT_GRAPH_TYPE", Choice(GraphType), required=True)
    define_x_axis: bool = param("DEFINE_X_AXIS", Flag(), required=True)
    x_axis_column: int | None = param(
        "X_AXIS_COLUMN", Id(), required_if=(When("DEFINE_X_AXIS is 1", _x_axis),), default=None
    )
    default_y_columns: tuple[int, ...] | None = param(
        "DEFAULT_Y_COLUMNS", IdList(), aliases=("DEFAULT_Y_COLUMN",), default=None
    )
    column_display_order: tuple[int, ...] = param("COLUMN_DISPLAY_ORDER", IdList(), required=True)
    column_stored_order: tuple[int, ...] | None = param(
        "COLUMN_STORED_ORDER", IdList(), default=None
    )
    sort_allowed: bool = param("SORT_ALLOWED", Flag(), required=True)
    presorted: bool = param("PRESORTED", Flag(), required=True)
    presubtotaled: bool | None = param("PRESUBTOTALED", Flag(), default=None)
    total_mode: TotalMode = param("TOTALMODE", Choice(TotalMode), required=True)
    sort_columns: tuple[SortKey, ...] | None = param("SORT_COLUMNS", SortBy(), default=None)
    subtotal_columns: tuple[int, ...] | None = param(
        "SUBTOTCOL",
        IdList(),
        aliases=("SUBTOTAL_COLUMNS",),
        required_if=(SUBTOTALS, When("SELECTED_SECTION is 1", _selected)),
        default=None,
    )
    selected_section: bool = param("SELECTED_SECTION", Flag(), required=True)
    columns: tuple[MetaColumn, ...] = param(
        "METACOLUMN", Nested(MetaColumn), repeated=True, default=()
    )


#: acronym (None: no acronym) -> the classes it can be
MESSAGES: Mapping[str | None, tuple[type[TypedMessage], ...]] = {None: (ReportMetadata,)}
