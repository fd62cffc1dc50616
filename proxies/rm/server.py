"""The Report Manager proxy process (seed 001: Report Manager server 250).

Theory of operation
-------------------
The Report Manager keeps the standard report templates (:mod:`.templates`) and
every user's report definitions (:mod:`.store`, ``STATE/rm.db``), and answers
the nine request pairs of Appendix A through :mod:`starwrs.proxies.framework`:
GRTL/SRTL, GRTD/SRTD, GURL/SURL, GURD/SURD, ARD/ARDA, DRD/DRDA, CRD/CRDA,
URS/URSA and GPL/GPLA (every pick-list kind).

**Entitlements and pick lists** come from order entry's database
(``STATE/oe.db``), opened in this process with
:func:`~starwrs.proxies.oe.store.open_order_entry` and only read from (SQLite
WAL: a reader never waits for order entry's writer).  Reading the file instead
of asking the OE proxy costs no hop per request and sees an entitlement change
as soon as order entry commits it.

**Tenant isolation.** Only the ``dispatcher`` and ``dss`` certificates may connect
(:mod:`starwrs.runtime.peers`; the web server's is refused with 7003 right after the
handshake; ``rs`` and ``arbitrator`` send failure NRLs of parked requests and nothing
else), so the key is the dispatcher's word. Every request needs a user (the
dispatcher's ``USERID@ENTPID``; a request without one is 6107). The user must exist
in order entry, belong to the enterprise the dispatcher named, and be enabled (else
6107 / 7003). A ``USERID`` or ``ENTPID`` in a message that is not the caller's is
6107 (Report Manager ID error). Reports are looked up by id *and* owner, so another
user's report id is answered exactly like a missing id: 6115 (IDs are not correct).
Templates, their fields and the access, range and usage pick lists are offered only
for the products and data categories the user is entitled to (an unentitled
combination lists nothing); a template that is not offered to the user is 6115 like
an unknown one; BILLING may name only the user's own corp ids (7003 otherwise).

**Choices where the seed is silent.**  ARD carries no DATACAT: a report is
priced when the template and the user's entitlement allow it, else unpriced.
SURD's ``ID=`` is the template id (Appendix A: "Template ID"); the user report
id is in its Status node.  SUBTOTCOL names break columns: dimension columns of
the report's layout (seed Figure 12(b): subtotals "by" a column).  An hourly
schedule is for unpriced data only (seed: "For priced data the user has the option
of daily, weekly, or monthly"): 6103 on a priced report.
``GPL<PL_HIER,USERRPTID=0>`` (and ``PL_GEO``) asks for a report not saved yet --
the requestor building a new one from a template; any other id must be one of the
caller's reports.

**Scheduling and delivery** (docs/runtime.md).  Saving a report with ACTIVE=1 (ARD,
URS, CRD of an active report; ACTIVE=0 or DRD removes it) puts the schedule change
into RM's outbox in the transaction that saves the report (:mod:`.store`); the outbox
delivers it to the Report Scheduler (target ``RS``).  The DSS's ARDA and NRL arrive
as envelopes from the ``dss`` certificate and are handled by :mod:`.delivery`, whose
deliveries to the inbox (the ``.mtd`` and the ``A``) go through the same outbox.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import msgpack
import trio
from starwrs.grammar import Group, Seq, Tagged, Value, parse, serialize
from starwrs.grammar.catalogue_picklist import (
    GetPickListAccess,
    GetPickListAck,
    GetPickListCurrency,
    GetPickListDuration,
    GetPickListFields,
    GetPickListGeo,
    GetPickListHierarchy,
    GetPickListLanguage,
    GetPickListRange,
    GetPickListTimeZone,
    GetPickListUsage,
)
from starwrs.grammar.catalogue_rm import (
    AddReportDefinition,
    AddReportDefinitionAck,
    CopyReportDefinition,
    CopyReportDefinitionAck,
    DeleteReportDefinition,
    DeleteReportDefinitionAck,
    GetReportTemplateDetail,
    GetReportTemplateList,
    GetUserReportDetail,
    GetUserReportList,
    SendReportTemplateDetail,
    SendReportTemplateList,
    SendUserReportDetail,
    SendUserReportList,
    TemplateCategory,
    TemplateEntry,
    Threshold,
    UpdateReportStatus,
    UpdateReportStatusAck,
    UserReportCategory,
    UserReportEntry,
)
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.grammar.vocab import ScheduleKind
from starwrs.proxies.delivery import frame_sender, lease_for, release_leases, watch_outbox
from starwrs.proxies.framework import Caller, Proxy, serve_proxy
from starwrs.proxies.oe.model import Entitlements, GeoNode
from starwrs.proxies.oe.store import OrderEntryStore, open_order_entry
from starwrs.proxies.rm.delivery import INBOX, RunDelivery
from starwrs.proxies.rm.detail import template_nodes, user_report_nodes
from starwrs.proxies.rm.store import SCHEDULER, ReportStore, UserReport, open_report_store
from starwrs.proxies.rm.templates import CATEGORIES, COLUMNS, TEMPLATES, Template, templates_for
from starwrs.runtime.config import Deployment
from starwrs.runtime.pki import load_pki
from starwrs.runtime.pool import ProxyPool
from starwrs.storage.outbox import OutboxMessage, Outcome

__all__ = ["make_rm_proxy", "serve_rm"]

log = logging.getLogger("starwrs.rm")

Table = tuple[tuple[str, ...], ...]

_WAY = {"I": "Inbound", "O": "Outbound"}


def _id_error(reason: str) -> StarwrsError:
    return StarwrsError(ErrorCode.RM_ID_ERROR, reason)


def _missing(reason: str = "no such report") -> StarwrsError:
    return StarwrsError(ErrorCode.IDS_NOT_CORRECT, reason)


def _bad(reason: str) -> StarwrsError:
    return StarwrsError(ErrorCode.RM_PARAMETER_ERROR, reason)


def _offered(ent: Entitlements, template: Template) -> bool:
    """Whether the user may use *template* for any product and data category."""
    return any(
        ent.allows_report(p, c, template.data_type)
        for p in template.products & ent.products
        for c in template.data_cats
    )


def _template_for(ent: Entitlements, template_id: int) -> Template:
    template = TEMPLATES.get(template_id)
    if template is None or not _offered(ent, template):
        raise _missing(f"no template {template_id}")
    return template


def _corp_ids(billing: Value | None) -> set[str]:
    """The corp ids a BILLING value names (the first id of each hierarchy entry)."""
    found: set[str] = set()

    def walk(value: Value, top: bool) -> None:
        if isinstance(value, Seq):
            for part in value.parts:
                walk(part, top)
        elif isinstance(value, Tagged):
            walk(value.group, True)
        elif isinstance(value, Group) and value.members:
            first = value.members[0].value
            if top:
                # <<corp,name><bill,name><loc,name>>: the corp is the first row's first cell
                walk(first, False)
            elif isinstance(first, str):
                found.add(first)
            elif isinstance(first, Seq | Group):
                walk(first, False)

    if billing is not None:
        walk(billing, True)
    return {c for c in found if c and c.upper() != "NA"}


def _check_layout(ard: AddReportDefinition, template: Template, data_cat: str) -> None:
    allowed = set(template.fields(data_cat))
    columns = ard.columns or template.columns_for(data_cat)
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise _bad(f"columns {unknown} are not fields of template {template.template_id}")
    chosen = set(columns)
    for key in ard.sort_by or ():
        if key.column not in chosen:
            raise _bad(f"SORTBY column {key.column} is not one of the report's columns")
    for column in ard.subtotal_columns or ():
        if column not in chosen or COLUMNS[column].fact_dim != "D":
            raise _bad(f"SUBTOTCOL column {column} is not a dimension column of the report")
    if data_cat == "P" and ard.schedule is not None and ard.schedule.kind is ScheduleKind.HOURLY:
        raise _bad("hourly schedules are for unpriced data only")


def _with_defaults(ard: AddReportDefinition, template: Template, data_cat: str) -> str:
    """The canonical ARD text to store, the template's defaults filled in."""
    filled = dataclasses.replace(
        ard,
        description=ard.description or template.description,
        columns=ard.columns or template.columns_for(data_cat),
        sort_by=ard.sort_by or template.sort,
        threshold=ard.threshold or Threshold(reccount=template.threshold),
    )
    return serialize(filled.to_message())


def _stored_ard(report: UserReport) -> AddReportDefinition:
    return AddReportDefinition.from_message(parse(report.definition))


def _user_categories(reports: Iterable[UserReport]) -> tuple[UserReportCategory, ...]:
    grouped: dict[str, list[UserReportEntry]] = {}
    for r in reports:
        title = TEMPLATES[r.template_id].title if r.template_id in TEMPLATES else ""
        entry = UserReportEntry(r.name, r.report_id, r.active, title, r.updated)
        grouped.setdefault(r.category, []).append(entry)
    return tuple(UserReportCategory(d, tuple(e)) for d, e in grouped.items())


def _geo_rows(nodes: Iterable[GeoNode], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for node in nodes:
        here = (*path, node.code)
        cells = (*here, *("NA",) * (3 - len(here)))
        rows.append((node.level, *cells, node.name))
        rows.extend(_geo_rows(node.children, here))
    return rows


def make_rm_proxy(
    reports: ReportStore, oe: OrderEntryStore, delivery: RunDelivery | None = None
) -> Proxy:
    """Build the Report Manager proxy over the inventory and order entry's data.

    With *delivery*, the proxy also takes the DSS's ARDA and NRL envelopes.
    """
    proxy = Proxy("RM")

    if delivery is not None:
        runs = delivery

        @proxy.takes_envelopes
        async def from_dss(caller: Caller, envelope: dict[str, Any]) -> tuple[int, bytes]:
            return await runs.envelope(caller.peer, envelope)

    async def entitled(caller: Caller) -> Entitlements:
        if caller.user_id is None:
            raise _id_error("Report Manager requests are made for a user")
        ent = await oe.entitlements(caller.user_id)
        if ent is None or ent.entp_id != caller.entp_id:
            raise _id_error("unknown user")
        if not ent.enabled:
            raise StarwrsError(ErrorCode.NOT_ENTITLED, "user disabled")
        return ent

    def same_user(caller: Caller, user_id: str, entp_id: str | None = None) -> None:
        if user_id != caller.user_id or (entp_id is not None and entp_id != caller.entp_id):
            raise _id_error("USERID / ENTPID are not the session's")

    async def own_report(caller: Caller, report_id: int) -> UserReport:
        assert caller.user_id is not None
        report = await reports.get(caller.user_id, report_id)
        if report is None:
            raise _missing()
        return report

    # -- templates ------------------------------------------------------------------

    @proxy.handles("GRTL", "SRTL")
    async def template_list(caller: Caller, req: GetReportTemplateList) -> SendReportTemplateList:
        ent = await entitled(caller)
        product, cat = req.product.value, req.data_cat.value
        found = [
            t
            for t in templates_for(product, cat, req.io.value, req.data_type.value)
            if product in ent.products and ent.allows_report(product, cat, t.data_type)
        ]
        categories = []
        for description in CATEGORIES:
            rows = tuple(
                TemplateEntry(t.title, t.template_id, _WAY[t.direction])
                for t in found
                if t.category == description
            )
            if rows:
                categories.append(TemplateCategory(description, rows))
        return SendReportTemplateList(error=0, reports=tuple(categories))

    @proxy.handles("GRTD", "SRTD")
    async def template_detail(
        caller: Caller, req: GetReportTemplateDetail
    ) -> SendReportTemplateDetail:
        ent = await entitled(caller)
        template = _template_for(ent, req.report_id)
        priced = any(ent.allows_report(p, "P") for p in template.products)
        nodes = template_nodes(template, "P" if priced else "U")
        return SendReportTemplateDetail(error=0, template_id=template.template_id, nodes=nodes)

    # -- the user's reports ---------------------------------------------------------

    @proxy.handles("GURL", "SURL")
    async def user_report_list(caller: Caller, req: GetUserReportList) -> SendUserReportList:
        same_user(caller, req.user_id, req.entp_id)
        ent = await entitled(caller)
        _template_for(ent, req.template_id)
        found = await reports.reports(
            req.user_id,
            template_id=req.template_id,
            product=req.product.value,
            data_cat=req.data_cat.value,
        )
        return SendUserReportList(error=0, reports=_user_categories(found))

    @proxy.handles("GURD", "SURD")
    async def user_report_detail(caller: Caller, req: GetUserReportDetail) -> SendUserReportDetail:
        await entitled(caller)
        report = await own_report(caller, req.report_id)
        template = TEMPLATES[report.template_id]
        nodes = user_report_nodes(template, report, _stored_ard(report))
        return SendUserReportDetail(error=0, template_id=template.template_id, nodes=nodes)

    @proxy.handles("ARD", "ARDA")
    async def add_report(caller: Caller, req: AddReportDefinition) -> AddReportDefinitionAck:
        same_user(caller, req.user_id, req.entp_id)
        ent = await entitled(caller)
        template = _template_for(ent, req.std_report_id)
        product = req.product.value
        if product not in template.products:
            raise _bad(f"template {template.template_id} is not for product {product}")
        cats = [
            c
            for c in ("P", "U")
            if c in template.data_cats and ent.allows_report(product, c, template.data_type)
        ]
        if product not in ent.products or not cats:
            raise StarwrsError(ErrorCode.NOT_ENTITLED, f"not entitled to product {product}")
        data_cat = cats[0]
        foreign = _corp_ids(req.billing) - ent.corp_ids
        if foreign:
            raise StarwrsError(ErrorCode.NOT_ENTITLED, f"corp ids {sorted(foreign)}")
        _check_layout(req, template, data_cat)
        text = _with_defaults(req, template, data_cat)
        report = await reports.add(
            user_id=req.user_id,
            entp_id=req.entp_id,
            template_id=template.template_id,
            name=req.name,
            product=product,
            data_cat=data_cat,
            category=req.category,
            active=req.active,
            definition=lambda _id: text,
        )
        return AddReportDefinitionAck(error=0, user_report_id=report.report_id)

    @proxy.handles("DRD", "DRDA")
    async def delete_report(
        caller: Caller, req: DeleteReportDefinition
    ) -> DeleteReportDefinitionAck:
        same_user(caller, req.user_id)
        await entitled(caller)
        if not await reports.delete(req.user_id, req.user_report_id):
            raise _missing()
        return DeleteReportDefinitionAck(error=0, user_report_id=req.user_report_id)

    @proxy.handles("CRD", "CRDA")
    async def copy_report(caller: Caller, req: CopyReportDefinition) -> CopyReportDefinitionAck:
        await entitled(caller)
        assert caller.user_id is not None

        def renamed(definition: str, _new_id: int) -> str:
            ard = AddReportDefinition.from_message(parse(definition))
            return serialize(dataclasses.replace(ard, name=req.name).to_message())

        copy = await reports.copy(caller.user_id, req.user_report_id, req.name, renamed)
        if copy is None:
            raise _missing()
        return CopyReportDefinitionAck(error=0, user_report_id=copy.report_id)

    @proxy.handles("URS", "URSA")
    async def update_status(caller: Caller, req: UpdateReportStatus) -> UpdateReportStatusAck:
        await entitled(caller)
        assert caller.user_id is not None
        if not await reports.set_active(caller.user_id, req.user_report_id, req.active):
            raise _missing()
        return UpdateReportStatusAck(error=0, user_report_id=req.user_report_id)

    # -- pick lists -------------------------------------------------------------------

    async def static(kind: str, io: str | None = None) -> list[tuple[str, ...]]:
        items = await oe.pick_list(kind, io=io)
        if kind == "TIMEZONE":
            return [(i.code, i.value or "", i.description) for i in items]
        if kind == "CURR":
            return [(i.code, i.description, i.value or "") for i in items]
        return [(i.code, i.description) for i in items]

    def allowed(ent: Entitlements, product: str, data_cat: str) -> bool:
        if product not in ent.products:
            return False
        return any(ent.allows_report(product, data_cat, t) for t in ("R", "D"))

    @proxy.handles("GPL", "GPLA")
    async def pick_list(caller: Caller, req: object) -> GetPickListAck:
        ent = await entitled(caller)
        assert caller.user_id is not None
        if isinstance(req, GetPickListAccess | GetPickListRange | GetPickListUsage):
            kind = {
                GetPickListAccess: "ACCESS",
                GetPickListRange: "RANGE",
                GetPickListUsage: "USAGE",
            }[type(req)]
            rows: Table = ()
            if allowed(ent, req.product.value, req.data_cat.value):
                rows = tuple(await static(kind, req.io.value))
            field = {"ACCESS": "access", "RANGE": "range", "USAGE": "usage"}[kind]
            return GetPickListAck(error=0, **{field: rows})
        if isinstance(req, GetPickListFields):
            template = _template_for(ent, req.template_id)
            priced = any(ent.allows_report(p, "P") for p in template.products & ent.products)
            cat = "P" if priced and "P" in template.data_cats else "U"
            sorts = {k.column: k.order for k in template.sort}
            defaults = set(template.columns_for(cat))
            fields = tuple(
                (str(c), COLUMNS[c].name, "0" if c in defaults else "1", sorts.get(c, ""))
                for c in template.fields(cat)
            )
            return GetPickListAck(error=0, fields=fields)
        if isinstance(req, GetPickListDuration):
            return GetPickListAck(error=0, duration=tuple(await static("DURATION")))
        if isinstance(req, GetPickListTimeZone):
            return GetPickListAck(error=0, timezone=tuple(await static("TIMEZONE")))
        if isinstance(req, GetPickListLanguage):
            return GetPickListAck(error=0, lang=tuple(await static("LANG")))
        if isinstance(req, GetPickListCurrency):
            return GetPickListAck(error=0, curr=tuple(await static("CURR")))
        if isinstance(req, GetPickListHierarchy):
            if req.user_report_id:  # 0: a report not saved yet (the requestor's new report)
                await own_report(caller, req.user_report_id)
            corps = await oe.billing_hierarchy(ent.entp_id, ent.corp_ids)
            hier: list[tuple[str, ...]] = []
            for corp in corps:
                hier.append(("2", corp.corp_id, "NA", "NA", corp.name))
                for bill in corp.billing:
                    hier.append(("3", corp.corp_id, bill.billing_id, "NA", bill.name))
                    for loc in bill.locations:
                        row = ("4", corp.corp_id, bill.billing_id, loc.service_loc_id, loc.name)
                        hier.append(row)
            return GetPickListAck(error=0, hier=tuple(hier))
        if isinstance(req, GetPickListGeo):
            if req.user_report_id:
                await own_report(caller, req.user_report_id)
            return GetPickListAck(error=0, geo=tuple(_geo_rows(await oe.geo_hierarchy())))
        raise StarwrsError(ErrorCode.NO_VALID_REQUEST, "unknown pick list")

    return proxy


def _report_of(message: OutboxMessage) -> int | None:
    try:
        value = msgpack.unpackb(message.payload, raw=False).get("report_id")
    except (ValueError, AttributeError, msgpack.ExtraData):
        return None
    return value if isinstance(value, int) else None


async def serve_rm(
    deployment: Deployment,
    *,
    index: int = 0,
    task_status: trio.TaskStatus[ReportStore] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the Report Manager proxy on ``deployment.proxies["RM"]`` until cancelled.

    ``task_status.started`` is given the :class:`ReportStore` (tests wait on its outbox).
    """
    del index
    pki = load_pki(deployment.state_dir)
    state = Path(deployment.state_dir)
    routes = {t: a for t, a in deployment.proxies.items() if t in (SCHEDULER, INBOX)}
    pool = ProxyPool(routes, pki.internal_client_context("rm"), deployment.limits)
    try:
        async with (
            open_order_entry(state / "oe.db") as oe,
            open_report_store(state / "rm.db", lease=lease_for(deployment.limits)) as rm,
        ):
            delivery = RunDelivery(rm, pool, state / "rm" / "outgoing")
            await release_leases(rm.db)
            watch_outbox("rm", rm.db)
            to_scheduler = frame_sender(pool)

            async def send(message: OutboxMessage) -> Outcome:
                if message.destination == INBOX:
                    return await delivery.send(message)
                return await to_scheduler(message)

            async def parked(message: OutboxMessage, reason: str) -> None:
                if message.destination == INBOX:
                    await delivery.on_failed(message, reason)
                    return
                report_id = _report_of(message)
                if report_id is not None:
                    await rm.failed(report_id, f"the scheduler refused the schedule: {reason}")

            proxy = make_rm_proxy(rm, oe, delivery)
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    serve_proxy,
                    proxy,
                    deployment.proxies["RM"],
                    pki.internal_server_context("rm"),
                    deployment.limits,
                )
                await nursery.start(partial(rm.outbox.run, send, on_failed=parked))
                task_status.started(rm)
    finally:
        with trio.CancelScope(shield=True):
            await pool.aclose()
