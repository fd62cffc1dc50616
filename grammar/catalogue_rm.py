"""Report Manager messages of seed 001, Appendix A (pick lists: catalogue_picklist).

Theory of operation
-------------------
One :func:`~starwrs.grammar.typed.typed` class per request and response:
GRTL/SRTL, GRTD/SRTD, GURL/SURL, GURD/SURD, ARD/ARDA, DRD/DRDA, CRD/CRDA and
URS/URSA.  Field order is the order of the seed's tables, which is also the
canonical output order.  Ids are ``int``, flags ``bool``, codes enums of
:mod:`starwrs.grammar.vocab`; BILLING and GEO stay as the tree.

The report lists of SRTL and SURL are written the way the seed prints them: the
first category is the value of ``REPORTS=`` and every further category follows as
a keyless group at the top level
(``SRTL<ERROR=0,REPORTS=<Cat 1=<t,1,x>,<t,2,x>>,<Cat 2=<t,3,x>>>``); a category
is ``Description=<row>`` followed by keyless ``<row>`` groups.  The seed's generic
SRTD/SURD body (``<Report Template ID=ID#, NODE1=<...>, ...>``) is typed as
``ID=`` plus numbered ``NODEn=`` members.

Code-assignment rules (beyond the family defaults of :mod:`starwrs.grammar.typed`:
missing -> 68xx / 6114, empty -> 68xx+1 / 6703, bad value -> 6103, bad id -> 6115,
unknown key -> 6610, wrong acronym -> 6104)
---------------------------------------------------------------------------------
* ENTPID not exactly 8 characters -> 6706;
* NAME (the user's report title) present but empty -> 6113; CATEGORY present but
  empty -> 6704 (Appendix E's own "cannot be empty" codes, preferred to 6824 / 6804);
* ARD: RANGETYPE missing or empty when SCHEDTYPE=A -> 6705;
  NDIALED missing or empty for a TVS report (PRODUCT=T) -> 6601;
  BILLING missing (6114) or empty (6703) for an ODS report (PRODUCT V, C or S);
  SUBTOTCOL missing (6114) or empty (6703) when TOTALMODE is 1 or 3;
  SCHEDULE's type disagreeing with SCHEDTYPE (A needs A; R needs H, D, W or M) -> 6103;
  SCHEDULE: START empty/missing/unpaired -> 6602, END -> 6603, bad date -> 6103;
  THRESHOLD.DURATION not mmss with ss < 60 -> 6103; MMADDR without ``@`` -> 6103;
* CRD and URS: USERRPTID is required (6841 / 6842) although the tables say "No":
  a copy or status update of no report cannot be carried out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from starwrs.grammar.codecs import (
    Bad,
    Choice,
    Codec,
    Ctx,
    Flag,
    Id,
    IdList,
    Int,
    Raw,
    Schedule,
    ScheduleCodec,
    SortBy,
    SortKey,
    Text,
    Values,
)
from starwrs.grammar.errors import ErrorCode
from starwrs.grammar.model import Group, Member, Seq, Value
from starwrs.grammar.typed import (
    Nested,
    TypedGroup,
    TypedMessage,
    TypedResponse,
    When,
    param,
    typed,
)
from starwrs.grammar.vocab import (
    DataCategory,
    DataType,
    Direction,
    Product,
    RangeType,
    SchedType,
    ScheduleKind,
    TotalMode,
)

__all__ = [
    "MESSAGES",
    "AddReportDefinition",
    "AddReportDefinitionAck",
    "Control",
    "CopyReportDefinition",
    "CopyReportDefinitionAck",
    "DeleteReportDefinition",
    "DeleteReportDefinitionAck",
    "GetReportTemplateDetail",
    "GetReportTemplateList",
    "GetUserReportDetail",
    "GetUserReportList",
    "Node",
    "SendReportTemplateDetail",
    "SendReportTemplateList",
    "SendUserReportDetail",
    "SendUserReportList",
    "TemplateCategory",
    "TemplateEntry",
    "Threshold",
    "UpdateReportStatus",
    "UpdateReportStatusAck",
    "UserReportCategory",
    "UserReportEntry",
    "entp_id",
    "user_id",
]

# -- parameters shared by several messages --------------------------------------------

#: ``ENTPID=`` Char (8), "require 8 characters": any other length is 6706
ENTPID = Text(exact_len=8)
#: ``DATACAT=`` of GRTL / GURL: P or U (pick lists also take B)
DATACAT = Choice(DataCategory, only=(DataCategory.PRICED, DataCategory.UNPRICED))
#: the products whose reports the StarODS server fulfils (BILLING is required)
ODS_PRODUCTS = frozenset({Product.VNET, Product.CVNS, Product.VISION})


def user_id() -> Any:
    """``USERID=`` Char (20), required (6839 / 6840)."""
    return param("USERID", Text(20), required=True)


def entp_id() -> Any:
    """``ENTPID=`` Char (8), required (6815 / 6816), exactly 8 characters (6706)."""
    return param("ENTPID", ENTPID, required=True, invalid=ErrorCode.ENTPID_LENGTH)


def _mmss(owner: type[TypedGroup], duration: int | None, key: str) -> None:
    if duration is not None and duration % 100 >= 60:
        raise owner.violation(ErrorCode.RM_PARAMETER_ERROR, key, "must be mmss with ss below 60")


# -- GRTL / SRTL ----------------------------------------------------------------------


@typed
class GetReportTemplateList(TypedMessage):
    """GRTL -- retrieve the list of standard report templates."""

    ACRONYM = "GRTL"
    product: Product = param("PRODUCT", Choice(Product), required=True)
    data_type: DataType = param("DATATYPE", Choice(DataType), required=True)
    data_cat: DataCategory = param("DATACAT", DATACAT, aliases=("DATA CAT",), required=True)
    io: Direction = param("IO", Choice(Direction), required=True)


@dataclass(frozen=True, slots=True)
class TemplateEntry:
    """One SRTL row: ``<RptTitle, RptTemplateID, RptCategoryType>``."""

    title: str
    template_id: int
    category_type: str


@dataclass(frozen=True, slots=True)
class TemplateCategory:
    """One SRTL category: its description and its templates."""

    description: str
    templates: tuple[TemplateEntry, ...]


@dataclass(frozen=True, slots=True)
class UserReportEntry:
    """One SURL row: ``<UserRptTitle, UserRptID, activeflag, report type, statusdate>``."""

    title: str
    user_report_id: int
    active: bool
    report_type: str
    status_date: str


@dataclass(frozen=True, slots=True)
class UserReportCategory:
    """One SURL category: its description and the user's reports."""

    description: str
    reports: tuple[UserReportEntry, ...]


def _row_cells(value: Value, width: int) -> list[str]:
    if not isinstance(value, Group):
        raise Bad("each report row must be a bracketed group")
    cells = [m.value for m in value.members if m.key is None and isinstance(m.value, str)]
    if len(cells) != len(value.members) or len(cells) != width:
        raise Bad(f"each report row must hold {width} plain values")
    return cells


def _category_rows(value: Value) -> tuple[str, list[Value]]:
    """``Desc=<row>, <row>, ...`` -> (description, rows)."""
    if not isinstance(value, Group) or not value.members or value.members[0].key is None:
        raise Bad("a report category must be <Description=<row>, <row>, ...>")
    first = value.members[0]
    assert first.key is not None
    rows: list[Value] = []
    for index, member in enumerate(value.members):
        if index and member.key is not None:
            raise Bad(f"one category per group (found {member.key!r})")
        pieces = member.value.parts if isinstance(member.value, Seq) else (member.value,)
        rows.extend(piece for piece in pieces if piece != Group(()))
    return first.key, rows


def _category_group(description: str, rows: list[Group]) -> Group:
    first: Value = rows[0] if rows else Group(())
    return Group((Member(description, first), *(Member(None, row) for row in rows[1:])))


class _ReportsCodec(Codec[tuple[Any, ...]]):
    """``REPORTS=``: one category (as printed) or a group of category groups."""

    __slots__ = ()

    def category(self, value: Value) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def category_value(self, category: Any) -> Group:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, value: Value, ctx: Ctx) -> tuple[Any, ...]:
        if isinstance(value, Group) and value.members and value.members[0].key is None:
            return tuple(self.category(member.value) for member in value.members)
        return (self.category(value),)

    def encode(self, value: tuple[Any, ...]) -> Value:
        return self.category_value(value[0])


class _TemplateReports(_ReportsCodec):
    __slots__ = ()

    def category(self, value: Value) -> TemplateCategory:
        description, rows = _category_rows(value)
        entries = []
        for row in rows:
            title, template_id, kind = _row_cells(row, 3)
            entries.append(TemplateEntry(title, Id().decode(template_id, Ctx("", "")), kind))
        return TemplateCategory(description, tuple(entries))

    def category_value(self, category: Any) -> Group:
        rows = [
            Group(tuple(Member(None, v) for v in (e.title, str(e.template_id), e.category_type)))
            for e in category.templates
        ]
        return _category_group(category.description, rows)


class _UserReports(_ReportsCodec):
    __slots__ = ()

    def category(self, value: Value) -> UserReportCategory:
        description, rows = _category_rows(value)
        entries = []
        for row in rows:
            title, report_id, active, kind, status = _row_cells(row, 5)
            entries.append(
                UserReportEntry(
                    title,
                    Id().decode(report_id, Ctx("", "")),
                    Flag().decode(active, Ctx("", "")),
                    kind,
                    status,
                )
            )
        return UserReportCategory(description, tuple(entries))

    def category_value(self, category: Any) -> Group:
        rows = []
        for e in category.reports:
            flag = "1" if e.active else "0"
            cells = (e.title, str(e.user_report_id), flag, e.report_type, e.status_date)
            rows.append(Group(tuple(Member(None, v) for v in cells)))
        return _category_group(category.description, rows)


class _ReportListResponse(TypedResponse):
    """Shared decoding of SRTL / SURL: trailing keyless groups are more categories."""

    __slots__ = ()
    _CODEC: ClassVar[_ReportsCodec]

    @classmethod
    def _decode_extras(
        cls, extras: tuple[Member, ...], decoded: Mapping[str, Any], label: str, prefix: str
    ) -> dict[str, Any]:
        if not extras:
            return {}
        if "reports" not in decoded:
            raise cls._stray(extras[0], label, prefix)
        more = []
        for member in extras:
            try:
                more.append(cls._CODEC.category(member.value))
            except Bad as bad:
                code = ErrorCode.IDS_NOT_CORRECT if bad.bad_id else ErrorCode.RM_PARAMETER_ERROR
                raise cls.error_at(code, label, prefix + "REPORTS", bad.reason) from None
        return {"reports": (*decoded["reports"], *more)}

    def _trailing_members(self) -> tuple[Member, ...]:
        reports: tuple[Any, ...] = getattr(self, "reports", ())
        return tuple(Member(None, self._CODEC.category_value(c)) for c in reports[1:])


@typed
class SendReportTemplateList(_ReportListResponse):
    """SRTL -- the standard report templates, by category."""

    ACRONYM = "SRTL"
    _CODEC = _TemplateReports()
    reports: tuple[TemplateCategory, ...] = param("REPORTS", _TemplateReports(), default=())


# -- GRTD / SRTD and GURD / SURD --------------------------------------------------------


@typed
class GetReportTemplateDetail(TypedMessage):
    """GRTD -- the details of one standard report template."""

    ACRONYM = "GRTD"
    report_id: int = param("REPORTID", Id(), required=True)


@dataclass(frozen=True, slots=True)
class Control:
    """``<control ID, field value, data location>`` of a report-builder node."""

    control_id: str
    field_value: Value
    data_location: str


@dataclass(frozen=True, slots=True)
class Node:
    """``NODEn=<level, label, screen id, <control>, ...>`` of SRTD / SURD."""

    level: int
    label: str
    screen_id: str
    controls: tuple[Control, ...] = ()


class _NodeCodec(Codec[Node]):
    __slots__ = ()

    _LEVEL = Int(0, 9999)

    def decode(self, value: Value, ctx: Ctx) -> Node:
        if not isinstance(value, Group) or any(m.key is not None for m in value.members):
            raise Bad("a node is <level, label, screen id, <control>, ...> without keys")
        members = [m.value for m in value.members]
        while members and members[-1] == "":
            members.pop()
        if len(members) < 3 or not all(isinstance(v, str) for v in members[:3]):
            raise Bad("a node starts with its level, label and screen id")
        level, label, screen = (str(v) for v in members[:3])
        controls: list[Control] = []
        for item in members[3:]:
            for piece in item.parts if isinstance(item, Seq) else (item,):
                if not isinstance(piece, Group) or len(piece.members) != 3:
                    raise Bad("a control is <control ID, field value, data location>")
                cid, field_value, location = (m.value for m in piece.members)
                if any(m.key is not None for m in piece.members) or not (
                    isinstance(cid, str) and isinstance(location, str)
                ):
                    raise Bad("a control's ID and data location are plain text")
                controls.append(Control(cid, field_value, location))
        return Node(self._LEVEL.decode(level, ctx), label, screen, tuple(controls))

    def encode(self, value: Node) -> Value:
        members = [Member(None, str(value.level)), Member(None, value.label)]
        members.append(Member(None, value.screen_id))
        for control in value.controls:
            cells = (control.control_id, control.field_value, control.data_location)
            members.append(Member(None, Group(tuple(Member(None, c) for c in cells))))
        return Group(tuple(members))


@typed
class SendReportTemplateDetail(TypedResponse):
    """SRTD -- a template's report-builder tree: ``ID=`` and ``NODE1=`` ... ``NODEn=``."""

    ACRONYM = "SRTD"
    template_id: int | None = param(
        "ID", Id(), aliases=("REPORT TEMPLATE ID",), required=True, default=None
    )
    nodes: tuple[Node, ...] = param("NODE", _NodeCodec(), repeated=True, numbered=True, default=())


@typed
class GetUserReportList(TypedMessage):
    """GURL -- the user's reports for one template."""

    ACRONYM = "GURL"
    user_id: str = user_id()
    template_id: int = param("RPTTMPLID", Id(), aliases=("RPTTMPID",), required=True)
    entp_id: str = entp_id()
    product: Product = param("PRODUCT", Choice(Product), required=True)
    data_cat: DataCategory = param("DATACAT", DATACAT, aliases=("DATA CAT",), required=True)


@typed
class SendUserReportList(_ReportListResponse):
    """SURL -- the user's reports, by user report category."""

    ACRONYM = "SURL"
    _CODEC = _UserReports()
    reports: tuple[UserReportCategory, ...] = param("REPORTS", _UserReports(), default=())


@typed
class GetUserReportDetail(TypedMessage):
    """GURD -- the details of one user report."""

    ACRONYM = "GURD"
    report_id: int = param("REPORTID", Id(), required=True)


@typed
class SendUserReportDetail(TypedResponse):
    """SURD -- a user report's report-builder tree (same format as SRTD)."""

    ACRONYM = "SURD"
    template_id: int | None = param(
        "ID", Id(), aliases=("REPORT TEMPLATE ID",), required=True, default=None
    )
    nodes: tuple[Node, ...] = param("NODE", _NodeCodec(), repeated=True, numbered=True, default=())


# -- ARD / ARDA -----------------------------------------------------------------------


@typed
class Threshold(TypedGroup):
    """``THRESHOLD=<RECCOUNT=..,RANKING=..,DURATION=..,ANI=..>`` (record limits)."""

    reccount: int | None = param("RECCOUNT", Int(1, 9999), default=None)
    ranking: int | None = param("RANKING", Int(1, 400), default=None)
    duration: int | None = param("DURATION", Int(1, 5959), default=None)
    ani: int | None = param("ANI", Int(1, 400), default=None)

    def check(self) -> None:
        _mmss(Threshold, self.duration, "DURATION")


def _adhoc(values: Mapping[str, Any]) -> bool:
    return values["sched_type"] is SchedType.ADHOC


def _tvs(values: Mapping[str, Any]) -> bool:
    return values["product"] is Product.TOLL_FREE


def _ods(values: Mapping[str, Any]) -> bool:
    return values["product"] in ODS_PRODUCTS


def _subtotals(values: Mapping[str, Any]) -> bool:
    mode = values["total_mode"]
    return mode is not None and bool(mode.needs_subtotals)


#: the When rules shared with the fulfilling server's ARD (catalogue_fulfil)
TVS_NDIALED = When(
    "the report is for TVS (PRODUCT=T)",
    _tvs,
    ErrorCode.NUMBER_DIALED_NULL,
    ErrorCode.NUMBER_DIALED_NULL,
)
ODS_BILLING = When("the report is for StarODS (PRODUCT V, C or S)", _ods)
SUBTOTALS = When("TOTALMODE is 1 or 3", _subtotals)
MMADDR = Text(75, pattern=r".*@.*", pattern_doc="an e-mail address containing @")


def check_schedule(owner: type[TypedGroup], schedule: Schedule | None, adhoc: bool) -> None:
    """SCHEDULE's type must agree with SCHEDTYPE (A with A; R with H, D, W, M)."""
    if schedule is None:
        return
    if (schedule.kind is ScheduleKind.ADHOC) != adhoc:
        want = "A" if adhoc else "H, D, W or M"
        raise owner.violation(
            ErrorCode.RM_PARAMETER_ERROR, "SCHEDULE", f"type must be {want} to match SCHEDTYPE"
        )


@typed
class AddReportDefinition(TypedMessage):
    """ARD -- add a user-created report to the user report table (Appendix A)."""

    ACRONYM = "ARD"
    user_id: str = user_id()
    entp_id: str = entp_id()
    std_report_id: int = param("STDRPTID", Id(), required=True)
    name: str = param("NAME", Text(100), required=True, empty=ErrorCode.RM_ENTP_OR_TITLE_EMPTY)
    product: Product = param("PRODUCT", Choice(Product), required=True)
    category: str = param("CATEGORY", Text(), required=True, empty=ErrorCode.CATEGORY_EMPTY)
    threshold: Threshold | None = param("THRESHOLD", Nested(Threshold), default=None)
    schedule: Schedule | None = param("SCHEDULE", ScheduleCodec(), default=None)
    range_type: RangeType | None = param(
        "RANGETYPE",
        Choice(RangeType),
        required_if=(When("SCHEDTYPE is A (ad hoc)", _adhoc),),
        missing=ErrorCode.RANGE_TYPE_EMPTY,
        empty=ErrorCode.RANGE_TYPE_EMPTY,
        default=None,
    )
    sched_type: SchedType = param("SCHEDTYPE", Choice(SchedType), required=True)
    timezone: str = param("TIMEZONE", Text(3), required=True)
    ndialed: tuple[str, ...] | None = param(
        "NDIALED", Values(), required_if=(TVS_NDIALED,), default=None
    )
    billing: Value | None = param("BILLING", Raw(), required_if=(ODS_BILLING,), default=None)
    card_no: tuple[str, ...] | None = param("CARDNO", Values(), default=None)
    idac: tuple[str, ...] | None = param("IDAC", Values(), default=None)
    geo: Value | None = param("GEO", Raw(), default=None)
    iaccess: tuple[str, ...] | None = param("IACCESS", Values(), default=None)
    oaccess: tuple[str, ...] | None = param("OACCESS", Values(), default=None)
    idistrange: tuple[str, ...] | None = param("IDISTRANGE", Values(), default=None)
    iusage: tuple[str, ...] | None = param("IUSAGE", Values(), default=None)
    odistrange: tuple[str, ...] | None = param("ODISTRANGE", Values(), default=None)
    ousage: tuple[str, ...] | None = param("OUSAGE", Values(), default=None)
    sort_by: tuple[SortKey, ...] | None = param("SORTBY", SortBy(), default=None)
    description: str | None = param("DESCRIPTION", Text(), default=None)
    columns: tuple[int, ...] | None = param("COLUMNS", IdList(), default=None)
    active: bool = param("ACTIVE", Flag(), default=False)
    dur_range: tuple[str, ...] | None = param("DURRANGE", Values(), default=None)
    total_mode: TotalMode = param("TOTALMODE", Choice(TotalMode), default=TotalMode.NONE)
    subtotal_columns: tuple[int, ...] | None = param(
        "SUBTOTCOL",
        IdList(20),
        aliases=("SUBTOTALCOLUMNS",),
        required_if=(SUBTOTALS,),
        default=None,
    )
    mm_addr: str | None = param("MMADDR", MMADDR, default=None)
    mm_text: str | None = param("MMTEXT", Text(500), default=None)
    pager_system: str | None = param("PGT", Text(15), default=None)
    pager_pin: str | None = param(
        "PGPIN", Text(8, pattern=r"[0-9]+", pattern_doc="digits only"), default=None
    )
    pager_text: str | None = param("PGTXT", Text(240), aliases=("PGTXL",), default=None)
    email: bool = param("EMAIL", Flag(), required=True)
    page: bool = param("PAGE", Flag(), required=True)
    lang: str | None = param("LANG", Text(4), default=None)
    curr: str | None = param("CURR", Text(4), default=None)

    def check(self) -> None:
        check_schedule(AddReportDefinition, self.schedule, self.sched_type is SchedType.ADHOC)


@typed
class AddReportDefinitionAck(TypedResponse):
    """ARDA -- the Report Manager's answer to ARD, with the new user report id."""

    ACRONYM = "ARDA"
    user_report_id: int | None = param("USERRPTID", Id(), default=None)


# -- DRD, CRD, URS and their acknowledgements ----------------------------------------


@typed
class DeleteReportDefinition(TypedMessage):
    """DRD -- delete a user-created report."""

    ACRONYM = "DRD"
    user_id: str = user_id()
    user_report_id: int = param("USERRPTID", Id(), required=True)


@typed
class DeleteReportDefinitionAck(TypedResponse):
    """DRDA -- acknowledgement of DRD."""

    ACRONYM = "DRDA"
    user_report_id: int | None = param("USERRPTID", Id(), default=None)


@typed
class CopyReportDefinition(TypedMessage):
    """CRD -- copy a user report under a new title (a new user report id)."""

    ACRONYM = "CRD"
    user_report_id: int = param("USERRPTID", Id(), required=True)
    name: str = param("NAME", Text(50), required=True, empty=ErrorCode.RM_ENTP_OR_TITLE_EMPTY)


@typed
class CopyReportDefinitionAck(TypedResponse):
    """CRDA -- acknowledgement of CRD, with the copy's user report id."""

    ACRONYM = "CRDA"
    user_report_id: int | None = param("USERRPTID", Id(), default=None)


@typed
class UpdateReportStatus(TypedMessage):
    """URS -- schedule (ACTIVE=1) or only save (ACTIVE=0) a user report."""

    ACRONYM = "URS"
    user_report_id: int = param("USERRPTID", Id(), required=True)
    active: bool = param("ACTIVE", Flag(), required=True)


@typed
class UpdateReportStatusAck(TypedResponse):
    """URSA -- acknowledgement of URS."""

    ACRONYM = "URSA"
    user_report_id: int | None = param("USERRPTID", Id(), default=None)


#: acronym -> the classes it can be, for the registry (:mod:`starwrs.grammar.catalogue`)
MESSAGES: Mapping[str, tuple[type[TypedMessage], ...]] = {
    cls.ACRONYM or "": (cls,)
    for cls in (
        GetReportTemplateList,
        SendReportTemplateList,
        GetReportTemplateDetail,
        SendReportTemplateDetail,
        GetUserReportList,
        SendUserReportList,
        GetUserReportDetail,
        SendUserReportDetail,
        AddReportDefinition,
        AddReportDefinitionAck,
        DeleteReportDefinition,
        DeleteReportDefinitionAck,
        CopyReportDefinition,
        CopyReportDefinitionAck,
        UpdateReportStatus,
        UpdateReportStatusAck,
    )
}
