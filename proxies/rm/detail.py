"""The report-builder tree of SRTD / SURD (seed 001, "NODE1=<node level, label, ...>").

Theory of operation
-------------------
A template's detail is a list of :class:`~starwrs.grammar.catalogue_rm.Node`:
General (with Report Name, Report Description and Scheduled Execution under it),
Layout (columns, sort, threshold, totals), then one node per customization the
template allows -- Access, Hierarchy (billing), Geographic, the criteria (range,
usage, duration, cards, ID/account codes, numbers dialed) -- and Notification.
Each control is ``<control id, field value, data location>``: the field value is
the current value (a template's default, or what the user saved), or the pick
list that supplies the choices (``PL_ACCESS``); the data location is the ARD
parameter the value is saved in (``THRESHOLD.RECCOUNT``).

A user report's tree (SURD) is the same tree filled from its stored ARD, plus a
Status node (USERRPTID, product, category, status, last update and, when the last
run failed, its reason).  The status is ``SAVED`` or ``SCHEDULED`` as the user set
it, then the last run's: ``SUBMITTED`` (the DSS took it), ``C`` (complete: in the
inbox) or ``FAILED``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starwrs.grammar import Group, Member, TList, Value
from starwrs.grammar.catalogue_rm import AddReportDefinition, Control, Node
from starwrs.proxies.rm.store import UserReport
from starwrs.proxies.rm.templates import Template

__all__ = ["template_nodes", "user_report_nodes", "values"]


def values(items: Iterable[str]) -> Group:
    """``<a~b~c>`` (or ``<a>``, or ``<>``) of plain values."""
    ordered = tuple(items)
    if not ordered:
        return Group(())
    value: Value = ordered[0] if len(ordered) == 1 else TList(ordered)
    return Group((Member(None, value),))


def _sort_text(template: Template) -> Group:
    return values(f"{k.column}{k.order}" for k in template.sort)


def _defaults(template: Template, data_cat: str) -> dict[str, Value]:
    return {
        "NAME": template.title,
        "DESCRIPTION": template.description,
        "SCHEDTYPE": "A",
        "SCHEDULE": "",
        "RANGETYPE": "1",
        "TIMEZONE": "",
        "ACTIVE": "0",
        "COLUMNS": values(str(c) for c in template.columns_for(data_cat)),
        "SORTBY": _sort_text(template),
        "THRESHOLD": Group((Member("RECCOUNT", str(template.threshold)),)),
        "TOTALMODE": "0",
        "SUBTOTCOL": Group(()),
        "EMAIL": "0",
        "PAGE": "0",
    }


#: customization -> (node label, screen id, [(control id, choices, ARD parameter)])
_CRITERIA: Mapping[str, tuple[str, str, tuple[tuple[str, str, str], ...]]] = {
    "access": ("Access", "SCR_ACCESS", (("LST_ACCESS", "PL_ACCESS", "{io}ACCESS"),)),
    "hierarchy": ("Hierarchy", "SCR_HIER", (("TRE_BILLING", "PL_HIER", "BILLING"),)),
    "geography": ("Geographic", "SCR_GEO", (("TRE_GEO", "PL_GEO", "GEO"),)),
    "range": ("Distance Range", "SCR_RANGE", (("LST_RANGE", "PL_RANGE", "{io}DISTRANGE"),)),
    "usage": ("Usage", "SCR_USAGE", (("LST_USAGE", "PL_USAGE", "{io}USAGE"),)),
    "duration": ("Duration Range", "SCR_DURATION", (("LST_DUR", "PL_DURATION", "DURRANGE"),)),
    "cardno": ("Calling Cards", "SCR_CARD", (("TXT_CARDNO", "", "CARDNO"),)),
    "idac": ("ID/Account Codes", "SCR_IDAC", (("TXT_IDAC", "", "IDAC"),)),
    "ndialed": ("Numbers Dialed", "SCR_NDIALED", (("TXT_NDIALED", "", "NDIALED"),)),
}


def _nodes(template: Template, data_cat: str, given: Mapping[str, Value]) -> list[Node]:
    def cur(key: str, fallback: Value = "") -> Value:
        return given.get(key, fallback)

    given = {**_defaults(template, data_cat), **given}

    nodes = [
        Node(1, "General", "SCR_GENERAL"),
        Node(2, "Report Name", "SCR_NAME", (Control("TXT_NAME", cur("NAME"), "NAME"),)),
        Node(
            2,
            "Report Description",
            "SCR_DESC",
            (Control("TXT_DESC", cur("DESCRIPTION"), "DESCRIPTION"),),
        ),
        Node(
            2,
            "Scheduled Execution",
            "SCR_SCHED",
            (
                Control("OPT_SCHEDTYPE", cur("SCHEDTYPE"), "SCHEDTYPE"),
                Control("TXT_SCHEDULE", cur("SCHEDULE"), "SCHEDULE"),
                Control("OPT_RANGETYPE", cur("RANGETYPE"), "RANGETYPE"),
                Control("LST_TIMEZONE", cur("TIMEZONE", "PL_TIMEZONE"), "TIMEZONE"),
                Control("CHK_ACTIVE", cur("ACTIVE"), "ACTIVE"),
            ),
        ),
        Node(
            1,
            "Layout",
            "SCR_LAYOUT",
            (
                Control("LST_COLUMNS", cur("COLUMNS"), "COLUMNS"),
                Control("LST_FIELDS", "PL_FIELDS", "COLUMNS"),
                Control("LST_SORT", cur("SORTBY"), "SORTBY"),
                Control("TXT_THRESHOLD", cur("THRESHOLD"), "THRESHOLD"),
                Control("OPT_TOTALMODE", cur("TOTALMODE"), "TOTALMODE"),
                Control("LST_SUBTOTCOL", cur("SUBTOTCOL"), "SUBTOTCOL"),
            ),
        ),
    ]
    io = "I" if template.direction == "I" else "O"
    for name, (label, screen, controls) in _CRITERIA.items():
        if name not in template.customizations:
            continue
        built = []
        for control_id, choices, location in controls:
            where = location.format(io=io)
            built.append(Control(control_id, cur(where, choices), where))
        nodes.append(Node(1, label, screen, tuple(built)))
    notify = (
        Control("CHK_EMAIL", cur("EMAIL"), "EMAIL"),
        Control("TXT_MMADDR", cur("MMADDR"), "MMADDR"),
        Control("TXT_MMTEXT", cur("MMTEXT"), "MMTEXT"),
        Control("CHK_PAGE", cur("PAGE"), "PAGE"),
        Control("TXT_PGT", cur("PGT"), "PGT"),
        Control("TXT_PGPIN", cur("PGPIN"), "PGPIN"),
        Control("TXT_PGTXT", cur("PGTXT"), "PGTXT"),
    )
    nodes.append(Node(1, "Notification", "SCR_NOTIFY", notify))
    return nodes


def template_nodes(template: Template, data_cat: str = "P") -> tuple[Node, ...]:
    """The SRTD tree of a standard template, with its defaults."""
    return tuple(_nodes(template, data_cat, {}))


def user_report_nodes(
    template: Template, report: UserReport, ard: AddReportDefinition
) -> tuple[Node, ...]:
    """The SURD tree of a user report: the template's tree filled from its ARD."""
    given: dict[str, Value] = {
        m.key: m.value for m in ard.to_message().members if m.key is not None
    }
    given["ACTIVE"] = "1" if report.active else "0"
    nodes = _nodes(template, report.data_cat, given)
    status = Node(
        1,
        "Status",
        "SCR_STATUS",
        (
            Control("TXT_USERRPTID", str(report.report_id), "USERRPTID"),
            Control("TXT_PRODUCT", report.product, "PRODUCT"),
            Control("TXT_CATEGORY", report.category, "CATEGORY"),
            Control("TXT_STATUS", report.status, "STATUS"),
            Control("TXT_LASTUPDATE", report.updated, "LASTUPDATE"),
            *(
                (Control("TXT_REASON", report.status_reason, "STATUSREASON"),)
                if report.status_reason
                else ()
            ),
        ),
    )
    return (*nodes, status)
