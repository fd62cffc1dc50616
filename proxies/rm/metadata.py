"""The ``.mtd`` metadata file of one report run (seed Appendix F, PROTOCOL.md section 6).

Theory of operation
-------------------
"Once the RM server has received the NRL message from the fulfilling server, it
verifies the file's presence and builds a metadata file ... This .MTD file is
utilized by the Report Viewer to know how to display the report."  The viewer has
nothing else: :func:`run_metadata` writes everything it needs from three sources,

* the user's report (its stored Appendix A ARD and the template it customizes):
  name, description, report level (BILLING), the customer's selections (access,
  cards, ID/accounting codes, numbers dialed, ranges, usages), the schedule type,
  language, currency, the columns in the user's order, the sort, TOTALMODE and the
  break columns (SUBTOTCOL);
* the run, as the DSS was asked for it (the Appendix D ARD: its GMT period and
  TIMEZONE label): the Dates line on the user's wall clock and the Time_zone;
* the NRL: the fulfilling server's totals (``TOTAL=<<36,…><58,…><67,…>>`` ->
  ``Total_Minutes``, ``Total_Amount``, ``Total_Calls`` and the direction's own
  ``Total_Outbound_*`` / ``Total_Inbound_*``) and PRESORTED.

Choices where the seed is silent: the default graph is a bar chart of the first
fact column over the first dimension column (no graph for call lists); every
column is hideable and every fact graphable; derived columns keep their equation
in CALCULATE_EXPRESSION with CALCULATE=0 (the DSS computed them, the viewer may
recompute them for rows it makes); PRESUBTOTALED is 1 when the file carries ``S``
rows (TOTALMODE 1 or 3); SELECTED_SECTION is 0.  Dates are ``MM/DD/YYYY hh:mm``
on the user's clock: the START~END pairs of a one-time report, the kind followed by
this run's period for a recurring one
(``<Daily~03/08/2026 00:00 - 03/09/2026 00:00>``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from starwrs.grammar import Group, Member, TList, Value, serialize
from starwrs.grammar.catalogue_fulfil import FulfilAddReportDefinition, NotifyReportLocation
from starwrs.grammar.catalogue_metadata import Criteria, MetaColumn, ReportMetadata
from starwrs.grammar.catalogue_rm import AddReportDefinition
from starwrs.grammar.vocab import (
    ColumnDataType,
    GraphMode,
    GraphType,
    Product,
    ScheduleKind,
    TotalMode,
)
from starwrs.proxies.rm.store import UserReport
from starwrs.proxies.rm.templates import COLUMNS, Template
from starwrs.proxies.rs.schedule import zone_for

__all__ = ["metadata_text", "run_metadata"]

_KIND_NAMES = {
    ScheduleKind.HOURLY: "Hourly",
    ScheduleKind.DAILY: "Daily",
    ScheduleKind.WEEKLY: "Weekly",
    ScheduleKind.MONTHLY: "Monthly",
}

#: NRL total column -> the criteria line's measure
_MEASURE = {36: "Minutes", 37: "Amount", 58: "Amount", 67: "Calls"}


def _list(items: Iterable[str] | None) -> Value | None:
    ordered = tuple(items or ())
    if not ordered:
        return None
    inner: Value = ordered[0] if len(ordered) == 1 else TList(ordered)
    return Group((Member(None, inner),))


def _pair(column: str, total: str) -> Value:
    return Group((Member(None, column), Member(None, total)))


def _stamp(moment: dt.datetime, zone: dt.tzinfo) -> str:
    return moment.replace(tzinfo=dt.UTC).astimezone(zone).strftime("%m/%d/%Y %H:%M")


def _dates(ard: AddReportDefinition, run: FulfilAddReportDefinition | None) -> tuple[bool, Value]:
    """(one time?, the Dates line) for this run."""
    zone = zone_for(ard.timezone)
    kind = ard.schedule.kind if ard.schedule is not None else ScheduleKind.ADHOC
    if kind is ScheduleKind.ADHOC:
        if run is not None and run.schedule.ranges:
            ranges = run.schedule.ranges
            shown = [f"{_stamp(p.start, zone)} - {_stamp(p.end, zone)}" for p in ranges]
        else:  # the pairs as the user gave them, on their own clock
            pairs = ard.schedule.ranges if ard.schedule is not None else ()
            shown = [f"{p.start:%m/%d/%Y %H:%M} - {p.end:%m/%d/%Y %H:%M}" for p in pairs]
        return True, _list(shown) or ""
    name = _KIND_NAMES[kind]
    if run is None or not run.schedule.ranges:
        return False, name
    period = run.schedule.ranges[0]
    end = period.end + dt.timedelta(minutes=1)  # the DSS's END is the period's last minute
    return False, _list((name, f"{_stamp(period.start, zone)} - {_stamp(end, zone)}")) or name


def _totals(nrl: NotifyReportLocation, direction: str) -> dict[str, Value]:
    way = "Inbound" if direction == "I" else "Outbound"
    found: dict[str, Value] = {}
    for row in nrl.total or ():
        if len(row) != 2 or not row[0].isdigit():
            continue
        measure = _MEASURE.get(int(row[0]))
        if measure is None:
            continue
        value = _pair(row[0], row[1])
        found.setdefault(f"total_{way.lower()}_{measure.lower()}", value)
        found.setdefault(f"total_{measure.lower()}", value)
    return found


def _metacolumn(colid: int) -> MetaColumn:
    column = COLUMNS[colid]
    fact = column.fact_dim == "F"
    return MetaColumn(
        column_id=colid,
        label=column.name,
        data_type=ColumnDataType(column.datatype),
        decimal=column.decimals,
        hideable=True,
        graphable=fact,
        width=column.width,
        calculate=False,
        calculate_expression=column.equation or "",
    )


def run_metadata(
    report: UserReport,
    ard: AddReportDefinition,
    template: Template,
    nrl: NotifyReportLocation,
    run: FulfilAddReportDefinition | None,
) -> ReportMetadata:
    """The Appendix F metadata of one run of *report* (see the module docstring)."""
    io = "I" if template.direction == "I" else "O"
    one_time, dates = _dates(ard, run)
    label = run.timezone.label if run is not None else ard.timezone
    criteria = Criteria(
        name=report.name[:100],
        total="Totals are located at the bottom of the report."
        if ard.product is Product.TOLL_FREE
        else None,
        description=(ard.description or template.description)[:100],
        report_level=ard.billing if ard.billing is not None else "All Levels",
        options="",
        access_type=_list(ard.iaccess if io == "I" else ard.oaccess),
        card_number=_list(ard.card_no),
        id_accounting_codes=_list(ard.idac),
        number_dialed=_list(ard.ndialed),
        range=_list(ard.idistrange if io == "I" else ard.odistrange),
        usage=_list(ard.iusage if io == "I" else ard.ousage),
        scheduling_information="",
        one_time="" if one_time else None,
        recurring=None if one_time else "",
        dates=dates,
        time_zone=label,
        lang=ard.lang,
        curr=ard.curr,
        **_totals(nrl, io),
    )
    columns = tuple(ard.columns or template.columns_for(report.data_cat))
    dims = [c for c in columns if COLUMNS[c].fact_dim == "D"]
    facts = [c for c in columns if COLUMNS[c].fact_dim == "F"]
    graph = bool(dims and facts and template.data_type == "R" and template.sort)
    mode = ard.total_mode
    return ReportMetadata(
        criteria=criteria,
        default_graph_mode=GraphMode.GRAPH if graph else GraphMode.NONE,
        default_graph_type=GraphType.BAR if graph else GraphType.NONE,
        define_x_axis=graph,
        x_axis_column=dims[0] if graph else None,
        default_y_columns=(facts[0],) if graph else None,
        column_display_order=columns,
        column_stored_order=tuple(template.columns_for(report.data_cat)),
        sort_allowed=True,
        presorted=nrl.presorted,
        presubtotaled=mode in (TotalMode.SUBTOTAL, TotalMode.BOTH),
        total_mode=mode,
        sort_columns=ard.sort_by or template.sort,
        subtotal_columns=tuple(ard.subtotal_columns or ()) or None,
        selected_section=False,
        columns=tuple(_metacolumn(c) for c in columns),
    )


def metadata_text(metadata: ReportMetadata) -> str:
    """The ``.mtd`` file's text: the message in canonical form (PROTOCOL.md section 6)."""
    return serialize(metadata.to_message())
