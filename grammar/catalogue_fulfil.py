"""Messages between the Report Manager / Scheduler and a fulfilling server (StarODS DSS).

Theory of operation
-------------------
* Appendix B: ``NRL`` (Notify Report Location), sent by the fulfilling server to
  the Report Manager when a report file is in the inbox, and ``NRLA``, the Report
  Manager's acknowledgement.  They belong to the Report Manager's catalogue.
* Appendix D: the ``ARD`` the Report Scheduler publishes to the fulfilling server
  (a copy is kept in the DSS ``request`` table, Appendix I) and its ``ARDA``, which
  echoes the REQUESTID.  They belong to the ``DSS`` catalogue; the Report
  Manager's own ARD/ARDA (Appendix A) live in :mod:`catalogue_rm`.

The fulfilling server's ARD differs from the Report Manager's: it carries
USERRPTID and REQUESTID, its filters are grouped in ``FILTERS=<...>``, its time
zone is ``TIMEZONE=<LABEL=MDT,OFFSET=-6>`` and it has no NAME, CATEGORY,
SCHEDTYPE or notification fields.  The seed's two spellings of the subtotal
columns are both read (``SUBTOTCOL`` as in the Appendix I example and Appendices
A and F; ``SUBTOTALCOLUMNS`` as in the Appendix D table); ``SUBTOTCOL`` is written.

Code-assignment rules (beyond the Report Manager family defaults: missing -> 68xx
/ 6114, empty -> 68xx+1 / 6703, bad value -> 6103, bad id -> 6115, unknown key ->
6610, wrong acronym -> 6104)
-------------------------------------------------------------------------------
* ENTPID not exactly 8 characters -> 6706;
* NRL: USERRPTID (6841 / 6842) and REQUESTID (6114 / 6703) are required unless a
  REPORTTITLE is given (a fulfilling server not using the Report Requester);
  REPORTTITLE (alias RPTTITLE) given but empty -> 6600;
* ARD: FILTERS.NDIALED missing or empty for TVS (PRODUCT=T) -> 6601;
  FILTERS.BILLING missing or empty for StarODS (PRODUCT V, C, S) -> 6114;
  TOTALMODE missing for StarODS -> 6114, empty -> 6703;
  SUBTOTCOL missing (6114) or empty (6703) when TOTALMODE is 1 or 3;
  TIMEZONE.OFFSET outside -12..+13 -> 6103; SCHEDULE as in catalogue_rm
  (START 6602, END 6603, format 6103);
* ARDA: REQUESTID is required (6114) when ERROR=0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starwrs.grammar.catalogue_rm import ODS_PRODUCTS, SUBTOTALS, entp_id, user_id
from starwrs.grammar.codecs import (
    MAX_ID,
    Choice,
    Flag,
    Id,
    IdList,
    Int,
    Raw,
    Rows,
    Schedule,
    ScheduleCodec,
    SortBy,
    SortKey,
    Text,
    Values,
)
from starwrs.grammar.errors import ErrorCode
from starwrs.grammar.model import Value
from starwrs.grammar.typed import (
    Nested,
    TypedGroup,
    TypedMessage,
    TypedResponse,
    When,
    param,
    typed,
)
from starwrs.grammar.vocab import ItemCategory, Priority, Product, TotalMode

__all__ = [
    "MESSAGES_DSS",
    "MESSAGES_RM",
    "FulfilAddReportDefinition",
    "FulfilAddReportDefinitionAck",
    "FulfilFilters",
    "FulfilThreshold",
    "FulfilTimeZone",
    "NotifyReportLocation",
    "NotifyReportLocationAck",
]


# -- NRL / NRLA (Appendix B) ------------------------------------------------------------


def _untitled(values: Mapping[str, Any]) -> bool:
    return values["report_title"] is None


_REQUESTER = When(
    "no REPORTTITLE is given (the fulfilling server uses the Report Requester)", _untitled
)


@typed
class NotifyReportLocation(TypedMessage):
    """NRL -- a fulfilling server tells the Report Manager where a report file is."""

    ACRONYM = "NRL"
    type: str = param("TYPE", Text(30), required=True)
    entp_id: str = entp_id()
    user_id: str = user_id()
    std_report_id: int = param("STDRPTID", Id(), required=True)
    user_report_id: int | None = param("USERRPTID", Id(), required_if=(_REQUESTER,), default=None)
    request_id: int | None = param("REQUESTID", Id(), required_if=(_REQUESTER,), default=None)
    priority: Priority | None = param("PRIORITY", Choice(Priority), default=None)
    compress: bool = param("COMPRESS", Flag(), required=True)
    loc: str = param("LOC", Text(255), required=True)
    fsize: int = param("FSIZE", Int(0, MAX_ID), required=True)
    report_title: str | None = param(
        "REPORTTITLE",
        Text(100),
        aliases=("RPTTITLE",),
        nonempty=True,
        empty=ErrorCode.REPORT_TITLE_NULL,
        default=None,
    )
    presorted: bool = param("PRESORTED", Flag(), required=True)
    err: bool = param("ERR", Flag(), default=False)
    total: tuple[tuple[str, ...], ...] | None = param("TOTAL", Rows(), default=None)
    category: ItemCategory | None = param("CATEGORY", Choice(ItemCategory), default=None)


@typed
class NotifyReportLocationAck(TypedResponse):
    """NRLA -- the Report Manager's acknowledgement of an NRL."""

    ACRONYM = "NRLA"
    user_id: str | None = param("USERID", Text(20), required=True, default=None)
    user_report_id: int | None = param("USERRPTID", Id(), required=True, default=None)
    request_id: int | None = param("REQUESTID", Id(), default=None)


# -- ARD / ARDA to the fulfilling server (Appendix D) -------------------------------------


@typed
class FulfilThreshold(TypedGroup):
    """``THRESHOLD=<...>`` as the fulfilling server gets it (RECCOUNT up to Char (10))."""

    reccount: int | None = param("RECCOUNT", Int(1, MAX_ID), default=None)
    ranking: int | None = param("RANKING", Int(1, 400), default=None)
    duration: int | None = param("DURATION", Int(1, 5959), default=None)
    ani: int | None = param("ANI", Int(1, 400), default=None)

    def check(self) -> None:
        if self.duration is not None and self.duration % 100 >= 60:
            raise FulfilThreshold.violation(
                ErrorCode.RM_PARAMETER_ERROR, "DURATION", "must be mmss with ss below 60"
            )


@typed
class FulfilFilters(TypedGroup):
    """``FILTERS=<NDIALED=..,BILLING=..,...>`` -- the report criteria."""

    ndialed: tuple[str, ...] | None = param("NDIALED", Values(), default=None)
    billing: Value | None = param("BILLING", Raw(), default=None)
    dur_range: tuple[str, ...] | None = param("DURRANGE", Values(), default=None)
    card_no: tuple[str, ...] | None = param("CARDNO", Values(), default=None)
    idistrange: tuple[str, ...] | None = param("IDISTRANGE", Values(), default=None)
    odistrange: tuple[str, ...] | None = param("ODISTRANGE", Values(), default=None)
    iusage: tuple[str, ...] | None = param("IUSAGE", Values(), default=None)
    ousage: tuple[str, ...] | None = param("OUSAGE", Values(), default=None)
    idac: tuple[str, ...] | None = param("IDAC", Values(), default=None)
    geo: Value | None = param("GEO", Raw(), default=None)
    iaccess: tuple[str, ...] | None = param("IACCESS", Values(), default=None)
    oaccess: tuple[str, ...] | None = param("OACCESS", Values(), default=None)


@typed
class FulfilTimeZone(TypedGroup):
    """``TIMEZONE=<LABEL=MST,OFFSET=-7>``: label and whole-hour GMT offset, -12..+13."""

    label: str = param("LABEL", Text(3), required=True)
    offset: int = param("OFFSET", Int(-12, 13, signed=True), required=True)


def _ods(values: Mapping[str, Any]) -> bool:
    return values["product"] in ODS_PRODUCTS


@typed
class FulfilAddReportDefinition(TypedMessage):
    """ARD (Appendix D) -- the Report Scheduler's request to a fulfilling server."""

    ACRONYM = "ARD"
    entp_id: str = entp_id()
    user_id: str = user_id()
    std_report_id: int = param("STDRPTID", Id(), required=True)
    user_report_id: int = param("USERRPTID", Id(), required=True)
    request_id: int = param("REQUESTID", Id(), required=True)
    product: Product = param("PRODUCT", Choice(Product), required=True)
    threshold: FulfilThreshold = param("THRESHOLD", Nested(FulfilThreshold), required=True)
    columns: tuple[int, ...] = param("COLUMNS", IdList(), required=True)
    filters: FulfilFilters | None = param("FILTERS", Nested(FulfilFilters), default=None)
    sort_by: tuple[SortKey, ...] | None = param("SORTBY", SortBy(), default=None)
    timezone: FulfilTimeZone = param("TIMEZONE", Nested(FulfilTimeZone), required=True)
    schedule: Schedule = param("SCHEDULE", ScheduleCodec(), required=True)
    total_mode: TotalMode | None = param(
        "TOTALMODE",
        Choice(TotalMode),
        required_if=(When("the report is for StarODS (PRODUCT V, C or S)", _ods),),
        default=None,
    )
    subtotal_columns: tuple[int, ...] | None = param(
        "SUBTOTCOL",
        IdList(),
        aliases=("SUBTOTALCOLUMNS",),
        required_if=(SUBTOTALS,),
        default=None,
    )

    def check(self) -> None:
        filters = self.filters
        cls = FulfilAddReportDefinition
        if self.product is Product.TOLL_FREE and (filters is None or filters.ndialed is None):
            raise cls.violation(
                ErrorCode.NUMBER_DIALED_NULL,
                "FILTERS.NDIALED",
                "required when the report is for TVS (PRODUCT=T), but missing",
            )
        if self.product in ODS_PRODUCTS and (filters is None or filters.billing is None):
            raise cls.violation(
                ErrorCode.REQUIRED_PARAMETERS_MISSING,
                "FILTERS.BILLING",
                "required when the report is for StarODS (PRODUCT V, C or S), but missing",
            )


@typed
class FulfilAddReportDefinitionAck(TypedResponse):
    """ARDA (Appendix D) -- the fulfilling server's receipt of an ARD."""

    ACRONYM = "ARDA"
    user_report_id: int | None = param("USERRPTID", Id(), default=None)
    request_id: int | None = param("REQUESTID", Id(), required=True, default=None)


#: acronym -> class, Report Manager side (NRL arrives at the Report Manager)
MESSAGES_RM: Mapping[str, tuple[type[TypedMessage], ...]] = {
    "NRL": (NotifyReportLocation,),
    "NRLA": (NotifyReportLocationAck,),
}

#: acronym -> class, fulfilling server (DSS) side
MESSAGES_DSS: Mapping[str, tuple[type[TypedMessage], ...]] = {
    "ARD": (FulfilAddReportDefinition,),
    "ARDA": (FulfilAddReportDefinitionAck,),
}
