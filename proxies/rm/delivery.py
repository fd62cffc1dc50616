"""The Report Manager's side of report delivery: ARDA and NRL in, metadata and ``A`` out.

Theory of operation
-------------------
Seed Figures 10(a)-(b) and 13(c): the DSS answers every request it was published
with an ARDA (parsed, or the parser's code) and, once the file is in the inbox, an
NRL.  Both arrive from the DSS's outbox as msgpack envelopes
``{"subject": "RM", "kind": "ARDA"|"NRL", "request_id", "message", "report": {...},
"ard": <the Appendix D ARD>, "error": {"code", "reason"}}`` (docs/runtime.md
"Scheduling and delivery"); only the ``dss`` certificate may send them.

* **ARDA** -- recorded once per REQUESTID (the run is ``SUBMITTED``, the user
  report's status too; a parser code marks the run ``FAILED``); answered status 0
  after the commit.
* **NRL** -- a REQUESTID already completed is answered ``NRLA<ERROR=6050>`` (status
  6050: the DSS stops resending).  Otherwise the report must be the named user's
  (6115 if not), and for a report file the inbox must hold it at the size the NRL
  gives: a synchronous ``A`` for the item answers 5166 with the data half's SIZE
  (docs/runtime.md "The inbox"); a missing file or another size is 6707 (the
  fulfilling server's response is incorrect), the inbox being down 7006 (the DSS
  tries again).  Then, in *one* transaction (:meth:`ReportStore.complete_run`):
  the NRL is recorded as received, the run and the user report become ``C`` (or
  ``FAILED`` with the reason), and the inbox delivery is queued in RM's outbox --
  the Appendix F ``.mtd`` (:mod:`.metadata`) with the item's full ``A``, or, for a
  DSS failure (``ERR=1``), a short text file holding the reason with ``ERRFLAG=1``.
  Only then is ``NRLA<ERROR=0>`` answered.
* **to the inbox** -- :meth:`RunDelivery.send` (the outbox's sender for subject
  ``INBX:<user>``) puts the file beside the data as a bulk put whose resource is
  the item's ``A`` with ``PART=M`` (``PART=D`` for a failure's text), then sends
  the inbox the synchronous ``A``; 0 and 5005 ("already there") both mean done,
  and the INBOXID is recorded.  A delivery the inbox keeps refusing is parked, and
  the report is marked ``FAILED`` with the reason (``on_failed``); the user gets an
  ``ERRFLAG=1`` item with it.
* **parked elsewhere** -- a request the scheduler's or the arbitrator's outbox
  parked, or an NRL the DSS's parked, arrives as a failure NRL (``ERR=1``) from that
  server (the ``rs`` and ``arbitrator`` certificates may send nothing else) and
  takes the DSS failure's path above.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import msgpack
import trio
from starwrs.grammar import Member, Message, MessageError, parse, serialize
from starwrs.grammar.catalogue import validate
from starwrs.grammar.catalogue_fulfil import (
    FulfilAddReportDefinition,
    FulfilAddReportDefinitionAck,
    NotifyReportLocation,
)
from starwrs.grammar.catalogue_rm import AddReportDefinition
from starwrs.grammar.errors import ErrorCode, StarwrsError, describe
from starwrs.protocol import ProtocolError, Request
from starwrs.proxies.delivery import FAILURE_KEY, TRANSIENT, failure_nrl, parked_code
from starwrs.proxies.rm.metadata import metadata_text, run_metadata
from starwrs.proxies.rm.store import ReportStore, UserReport
from starwrs.proxies.rm.templates import TEMPLATES
from starwrs.runtime.channel import PeerGone, ReadTimeout
from starwrs.runtime.pool import ProxyPool
from starwrs.runtime.transfer import upload
from starwrs.storage.outbox import Delivered, OutboxMessage, Outcome, Refused, Retry

__all__ = ["INBOX", "RunDelivery", "item_fields"]

log = logging.getLogger("starwrs.rm")

#: the inbox's target
INBOX = "INBX"
#: certificates that may send failure NRLs only: their outboxes parked a request
FAILURE_REPORTERS = ("rs", "arbitrator")


def _base(loc: str) -> str:
    """The item key's base name of a LOC: last component, no extension."""
    name = PurePosixPath(loc.replace("\\", "/")).name
    return name.split(".", 1)[0] or name


def _notify(ard: AddReportDefinition) -> int:
    """UNOTIFY from the report's EMAIL / PAGE (0 none, 1 page, 2 e-mail, 3 both)."""
    return (2 if ard.email else 0) + (1 if ard.page else 0)


def item_fields(
    report: UserReport,
    ard: AddReportDefinition,
    *,
    request_id: int,
    loc: str,
    fsize: int,
    compress: bool,
    requested: dt.datetime,
    msize: int | None,
    error: bool,
    reason: str = "",
) -> list[Member]:
    """The members of the item's Appendix C ``A`` (without PART)."""
    template = TEMPLATES.get(report.template_id)
    notify = _notify(ard)
    members = [
        Member("CATEGORY", "R"),
        Member("TYPE", "priced" if report.data_cat == "P" else "unpriced"),
        Member("USERID", report.user_id),
        Member("ENTPID", report.entp_id),
        Member("RPTID", str(report.report_id)),
        Member("REQUESTID", str(request_id)),
        Member("COMPRESS", "1" if compress else "0"),
        Member("UNOTIFY", str(notify)),
    ]
    if notify:
        members.append(Member("SEV", "1" if error else "3"))
    text = ard.mm_text
    if error:
        text = f"{report.name} could not be produced: {reason}"[:500]
    optional = (
        ("MMADDR", ard.mm_addr),
        ("MMTEXT", text),
        ("PGT", (ard.pager_system or "")[:1] or None),
        ("PGPIN", ard.pager_pin),
        ("PGTXT", ard.pager_text),
    )
    members += [Member(k, v) for k, v in optional if v]
    members += [
        Member("RPTCATEGORY", (template.title if template else report.category)[:50]),
        Member("LOC", loc),
        Member("RQSTDT", requested.strftime("%Y-%m-%d %H:%M")),
        Member("FSIZE", str(fsize)),
        Member("RPTTITLE", report.name[:255]),
    ]
    if msize is not None:
        members.append(Member("MSIZE", str(msize)))
    if error:
        members.append(Member("ERRFLAG", "1"))
    return members


def _answer(payload: bytes) -> Message | None:
    try:
        return parse(payload.decode("utf-8"))
    except (UnicodeDecodeError, MessageError):
        return None


def _int(message: Message | None, key: str) -> int | None:
    value = message.get(key) if message is not None else None
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _nrla(nrl: NotifyReportLocation | None, code: int) -> tuple[int, bytes]:
    members = [Member("ERROR", str(int(code)))]
    if nrl is not None:
        members += [Member("USERID", nrl.user_id)]
        if nrl.user_report_id is not None:
            members.append(Member("USERRPTID", str(nrl.user_report_id)))
        if nrl.request_id is not None:
            members.append(Member("REQUESTID", str(nrl.request_id)))
    return int(code), serialize(Message("NRLA", tuple(members))).encode("utf-8")


class RunDelivery:
    """ARDA and NRL from the DSS, and the Report Manager's deliveries to the inbox.

    Args:
        reports: the inventory (its outbox carries the inbox deliveries).
        pool: RM's pool; its table has ``INBX``.
        staging: a folder for the files being put (``STATE/rm/outgoing``).
        clock: epoch seconds.
    """

    def __init__(
        self, reports: ReportStore, pool: ProxyPool, staging: Path, *, clock: Any = None
    ) -> None:
        self.reports = reports
        self.pool = pool
        self.staging = staging
        staging.mkdir(parents=True, exist_ok=True)
        self.clock = clock or reports.clock

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    # -- envelopes from the DSS -----------------------------------------------------------

    async def envelope(self, peer: str | None, envelope: dict[str, Any]) -> tuple[int, bytes]:
        """One ARDA or NRL envelope from a DSS outbox; (status, answer).

        The scheduler and the arbitrator send failure NRLs only (``ERR=1``): the
        requests their outboxes parked (:func:`~starwrs.proxies.delivery.report_parked`).
        """
        if peer not in (None, "dss", *FAILURE_REPORTERS):
            raise StarwrsError(ErrorCode.NOT_ENTITLED, "ARDA and NRL come from the DSS")
        if peer in FAILURE_REPORTERS and envelope.get("kind") != "NRL":
            raise StarwrsError(ErrorCode.NOT_ENTITLED, f"{peer} sends failure NRLs only")
        if envelope.get("subject") != "RM":
            raise StarwrsError(ErrorCode.NO_VALID_REQUEST, "subject must be RM")
        request_id = envelope.get("request_id")
        if not (isinstance(request_id, int) and 0 <= request_id <= 2**31 - 1):
            raise StarwrsError(ErrorCode.REQUIRED_PARAMETERS_MISSING, "request_id")
        owner = envelope.get("report")
        text = envelope.get("message")
        if not isinstance(owner, dict) or not isinstance(text, str):
            raise StarwrsError(ErrorCode.REQUIRED_PARAMETERS_MISSING, "report, message")
        kind = envelope.get("kind")
        if kind == "ARDA":
            return await self._arda(request_id, owner, text)
        if kind == "NRL":
            return await self._nrl(
                request_id, owner, text, envelope, failure_only=peer in FAILURE_REPORTERS
            )
        raise StarwrsError(ErrorCode.NO_VALID_REQUEST, "kind must be ARDA or NRL")

    async def _owner(
        self, owner: dict[str, Any], nrl: NotifyReportLocation | None = None
    ) -> UserReport:
        user, entp = owner.get("user_id"), owner.get("entp_id")
        report_id = owner.get("user_report_id")
        if not (isinstance(user, str) and isinstance(entp, str) and isinstance(report_id, int)):
            raise StarwrsError(ErrorCode.REQUIRED_PARAMETERS_MISSING, "report owner")
        report = await self.reports.owned(user, entp, report_id)
        if report is None:
            raise StarwrsError(ErrorCode.IDS_NOT_CORRECT, f"no report {report_id} of {user}")
        if nrl is not None and (nrl.user_id, nrl.entp_id, nrl.user_report_id) != (
            user,
            entp,
            report_id,
        ):
            raise StarwrsError(ErrorCode.RM_ID_ERROR, "the NRL names another report")
        return report

    async def _arda(self, request_id: int, owner: dict[str, Any], text: str) -> tuple[int, bytes]:
        try:
            ack = validate(parse(text), "DSS")
        except MessageError as err:
            raise StarwrsError(err.code, f"ARDA: {err}") from None
        if not isinstance(ack, FulfilAddReportDefinitionAck):
            raise StarwrsError(ErrorCode.NO_VALID_REQUEST, "not an ARDA")
        report = await self._owner(owner)
        code = int(ack.error or 0)
        reason = describe(code) if code else ""
        new = await self.reports.acknowledged(request_id, report, code, reason)
        log.info("rm arda request=%d report=%d error=%d new=%s",
                 request_id, report.report_id, code, new)  # fmt: skip
        return 0, msgpack.packb({"request_id": request_id, "new": new})

    async def _nrl(
        self,
        request_id: int,
        owner: dict[str, Any],
        text: str,
        envelope: dict[str, Any],
        *,
        failure_only: bool = False,
    ) -> tuple[int, bytes]:
        try:
            nrl = validate(parse(text), "RM")
        except MessageError as err:
            return _nrla(None, err.code)
        if not isinstance(nrl, NotifyReportLocation) or nrl.request_id != request_id:
            return _nrla(None, ErrorCode.FULFILLING_RESPONSE_INCORRECT)
        if failure_only and not nrl.err:
            return _nrla(nrl, ErrorCode.NOT_ENTITLED)
        if await self.reports.completed(request_id):
            return _nrla(nrl, ErrorCode.RM_NRLA_RETRANSMISSION)
        try:
            report = await self._owner(owner, nrl)
            ard = AddReportDefinition.from_message(parse(report.definition))
            if nrl.err:
                code, reason = _failure(envelope.get("error"))
                job = self._failure_job(report, ard, nrl, code, reason)
            else:
                code, reason = 0, ""
                job = await self._report_job(report, ard, nrl, envelope.get("ard"))
        except StarwrsError as err:
            return _nrla(nrl, err.code)
        subject = f"{INBOX}:{report.user_id}"
        payload = msgpack.packb(job)
        new = await self.reports.complete_run(
            request_id,
            report,
            loc=nrl.loc,
            error_code=code,
            reason=reason,
            delivery=(subject, payload),
        )
        log.info("rm nrl request=%d report=%d err=%d new=%s",
                 request_id, report.report_id, code, new)  # fmt: skip
        return _nrla(nrl, 0 if new else ErrorCode.RM_NRLA_RETRANSMISSION)

    async def _report_job(
        self,
        report: UserReport,
        ard: AddReportDefinition,
        nrl: NotifyReportLocation,
        run_text: object,
    ) -> dict[str, Any]:
        """The delivery of a finished report: its ``.mtd`` and the item's ``A``."""
        run: FulfilAddReportDefinition | None = None
        if isinstance(run_text, str):
            with contextlib.suppress(MessageError):
                typed = validate(parse(run_text), "DSS")
                run = typed if isinstance(typed, FulfilAddReportDefinition) else None
        template = TEMPLATES[report.template_id]
        text = metadata_text(run_metadata(report, ard, template, nrl, run)).encode("utf-8")
        name = _base(nrl.loc) + (".mtd_zip" if nrl.compress else ".mtd")
        content = _zipped(name[: -len("_zip")], text) if nrl.compress else text
        fields = item_fields(
            report,
            ard,
            request_id=int(nrl.request_id or 0),
            loc=name,
            fsize=nrl.fsize,
            compress=nrl.compress,
            requested=self._now(),
            msize=len(content),
            error=False,
        )
        await self._check_data(report, fields, nrl)
        return {
            "request_id": nrl.request_id,
            "report_id": report.report_id,
            "name": name,
            "content": content,
            "put": serialize(Message("A", (*fields, Member("PART", "M")))),
            "add": serialize(Message("A", tuple(fields))),
        }

    def _failure_job(
        self,
        report: UserReport,
        ard: AddReportDefinition,
        nrl: NotifyReportLocation,
        code: int,
        reason: str,
    ) -> dict[str, Any]:
        """The delivery of a failed run: a text file with the reason, ``ERRFLAG=1``."""
        name = _base(nrl.loc) + ".txt"
        content = (
            f"{report.name}\r\nThe report could not be produced.\r\n"
            f"Error {code}: {describe(code)}\r\n{reason}\r\n"
        ).encode()
        fields = item_fields(
            report,
            ard,
            request_id=int(nrl.request_id or 0),
            loc=name,
            fsize=len(content),
            compress=False,
            requested=self._now(),
            msize=None,
            error=True,
            reason=reason,
        )
        return {
            "request_id": nrl.request_id,
            "report_id": report.report_id,
            "name": name,
            "content": content,
            "put": serialize(Message("A", (*fields, Member("PART", "D")))),
            "add": serialize(Message("A", (*fields, Member("MSIZE", "0")))),
        }

    async def _check_data(
        self, report: UserReport, fields: list[Member], nrl: NotifyReportLocation
    ) -> None:
        """The inbox holds the NRL's data file at its size (synchronous ``A``: 5166)."""
        data_loc = [m if m.key != "LOC" else Member("LOC", nrl.loc) for m in fields]
        payload = serialize(Message("A", tuple(data_loc))).encode("utf-8")
        try:
            answer = await self.pool.request(INBOX, Request(INBOX, payload))
        except StarwrsError as err:
            raise StarwrsError(ErrorCode.PROXY_UNAVAILABLE, f"inbox: {err.message}") from None
        reply = _answer(answer.payload)
        code = _int(reply, "ERROR")
        if answer.status in TRANSIENT:
            raise StarwrsError(ErrorCode.PROXY_UNAVAILABLE, f"inbox status {answer.status}")
        if code in (0, int(ErrorCode.INBOX_DUPLICATE)):
            return  # the item is there already: a delivery of ours got through before
        if code == int(ErrorCode.INBOX_NO_METADATA):
            size = _int(reply, "SIZE")
            if size == nrl.fsize:
                return
            why = f"the inbox holds {size} bytes of {nrl.loc}, the NRL says {nrl.fsize}"
        elif code == int(ErrorCode.INBOX_ADD_NO_FILE):
            why = f"the inbox has no file {nrl.loc}"
        else:
            why = f"the inbox answered {answer.status} for {nrl.loc}"
        log.warning("rm nrl request=%s report=%d: %s", nrl.request_id, report.report_id, why)
        raise StarwrsError(ErrorCode.FULFILLING_RESPONSE_INCORRECT, why)

    # -- deliveries to the inbox (the outbox's sender) ------------------------------------

    async def send(self, message: OutboxMessage) -> Outcome:
        """Put the run's file into the inbox, then add the item (``A``)."""
        try:
            job = msgpack.unpackb(message.payload, raw=False)
        except (ValueError, msgpack.ExtraData):
            return Refused(int(ErrorCode.RM_GENERAL_FAILURE), "unreadable delivery")
        staged = self.staging / f"{message.id}-{PurePosixPath(job['name']).name}"
        await trio.to_thread.run_sync(staged.write_bytes, job["content"])
        try:
            outcome, inbox_id = await self._put(job, staged)
        finally:
            staged.unlink(missing_ok=True)
        if outcome is not None:
            return outcome
        try:
            answer = await self.pool.request(
                INBOX, Request(INBOX, str(job["add"]).encode("utf-8"))
            )
        except StarwrsError as err:
            return Retry(f"{int(err.code)} {err.message}")
        reply = _answer(answer.payload)
        code = _int(reply, "ERROR")
        if answer.status in TRANSIENT:
            return Retry(f"inbox status {answer.status}")
        if code not in (0, int(ErrorCode.INBOX_DUPLICATE)):
            return Refused(answer.status, answer.payload[:200].decode("utf-8", "replace"))
        inbox_id = _int(reply, "INBOXID") or inbox_id
        await self.reports.delivered(int(job["request_id"]), inbox_id)
        log.info("rm delivered request=%s inbox_id=%s", job["request_id"], inbox_id)
        return Delivered()

    async def _put(self, job: dict[str, Any], staged: Path) -> tuple[Outcome | None, int | None]:
        try:
            channel = await self.pool.connect(INBOX)
        except StarwrsError as err:
            return Retry(f"{int(err.code)} {err.message}"), None
        try:
            async with channel:
                answer = await upload(channel, str(job["put"]), staged, target=INBOX)
        except (PeerGone, ReadTimeout, ProtocolError, trio.BrokenResourceError) as err:
            return Retry(f"inbox put: {err}"), None
        reply = _answer(answer.payload)
        code = _int(reply, "ERROR")
        if answer.status in TRANSIENT:
            return Retry(f"inbox status {answer.status}"), None
        if code in (0, int(ErrorCode.INBOX_DUPLICATE)):
            return None, _int(reply, "INBOXID")
        if answer.status == int(ErrorCode.CHECKSUM_MISMATCH):
            return Retry("inbox put: checksum mismatch"), None
        return Refused(answer.status, answer.payload[:200].decode("utf-8", "replace")), None

    async def on_failed(self, message: OutboxMessage, reason: str) -> None:
        """A parked delivery: the report's status becomes ``FAILED`` with the reason.

        The user is told as for a DSS failure: an item with ``ERRFLAG=1`` holding
        the reason goes to the inbox (key ``FAIL:<REQUESTID>``) -- unless that is
        what parked.
        """
        try:
            job = msgpack.unpackb(message.payload, raw=False)
            report_id, request_id = int(job["report_id"]), int(job["request_id"])
        except (ValueError, KeyError, TypeError, msgpack.ExtraData):
            return
        why = f"the inbox refused the report: {reason}"
        await self.reports.failed(report_id, why, request_id)
        if message.key.startswith(FAILURE_KEY) or ":" not in message.subject:
            log.error("rm failure item of request=%d parked: %s", request_id, reason)
            return
        report = await self.reports.get(message.subject.split(":", 1)[1], report_id)
        if report is None:
            return
        try:
            ard = AddReportDefinition.from_message(parse(report.definition))
            owner = {
                "user_id": report.user_id,
                "entp_id": report.entp_id,
                "user_report_id": report.report_id,
                "std_report_id": report.template_id,
            }
            nrl = validate(failure_nrl(request_id, owner), "RM")
        except MessageError:
            log.exception("rm request=%d: no failure item", request_id)
            return
        assert isinstance(nrl, NotifyReportLocation)
        job = self._failure_job(report, ard, nrl, parked_code(reason), why)
        await self.reports.outbox.put(
            message.subject, f"{FAILURE_KEY}{request_id}", INBOX, msgpack.packb(job)
        )


def _failure(error: object) -> tuple[int, str]:
    """(code, reason) of a failure NRL's envelope ``error``."""
    if isinstance(error, dict):
        code, reason = error.get("code"), error.get("reason")
        if isinstance(code, int) and code > 0:
            return code, str(reason or describe(code))[:500]
    code = int(ErrorCode.RM_GENERAL_FAILURE)
    return code, describe(code)


def _zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()
