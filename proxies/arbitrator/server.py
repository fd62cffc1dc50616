"""The arbitrator process (seed Figure 11(b)): every report request to its partition.

Theory of operation
-------------------
"The arbitrator extracts the Corp_ID field from the message and maps the Corp_ID to
corresponding ODS DataMart in the table it maintains.  The arbitrator then
republishes the message with the ODS#."  Here:

* **route** -- the Report Scheduler, the Report Manager and ``starwrs report``
  publish an envelope ``{"subject": "Arbitrator", "request_id", "corp_id",
  "priority", "message"}`` (PROTOCOL.md section 7).  The arbitrator reads only
  ``corp_id`` -- never the ARD -- looks the partition up in the corp -> ODS table
  (``STATE/datamart/partitions.json``, :mod:`starwrs.storage.datamart.partitions`;
  a corp not in it goes to its default partition), and puts the envelope, subject
  ``ODS<k>``, into its outbox (``STATE/arbitrator.db``).  Only after that commit is
  status 0 answered, so a published request is never lost: the outbox
  (:mod:`starwrs.storage.outbox`) delivers it to ``DSS<k>`` in order, again after
  a lease or a back-off while that DSS is down, and the DSS acknowledges after its
  own commit.  A REQUESTID published twice is delivered twice and queued once.  An
  envelope its DSS keeps refusing is parked, and its failure NRL goes to the Report
  Manager through the same outbox (:func:`~starwrs.proxies.delivery.report_parked`).
* **move** -- ``MOVE<CORP=c,ODS=k>`` (``starwrs admin datamart move``, the admin
  certificate only): the corp's calls are exported from the partition that holds
  them (bulk get ``XPRT``), loaded into partition *k* (bulk put ``LOAD``), the
  table switched -- from then on new requests go to *k*, where the data is -- and
  finally the old partition purges the corp (``PURG``), which it does only after
  every request it had queued before has finished, and which the arbitrator sends
  only after its own outbox holds nothing older for that partition.  So requests
  for the corp are answered before, during and after a move, and never read a
  partition the corp has left.  Moves run one at a time.
* ``WHER<CORP=c>`` says where a corp is.

The seed runs two arbitrators for fail-over.  Here ``starwrs serve`` runs one
arbitrator process and its supervisor restarts it when it dies; the outbox in
``STATE/arbitrator.db`` is what survives the restart (a second arbitrator on the
same state directory would share that one file, not have an outbox of its own).
"""

from __future__ import annotations

import logging
import math
from functools import partial
from pathlib import Path
from typing import Any

import msgpack
import trio
from starwrs.grammar import Member, Message, MessageError, parse
from starwrs.grammar.catalogue_ods import MoveCorp, WhereCorp
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.protocol import Request
from starwrs.proxies.delivery import (
    MAX_ATTEMPTS,
    MAX_DELAY,
    RM,
    lease_for,
    release_leases,
    report_parked,
    watch_outbox,
)
from starwrs.proxies.framework import Caller, Proxy, serve_proxy
from starwrs.runtime.config import Deployment
from starwrs.runtime.pki import load_pki
from starwrs.runtime.pool import ProxyPool
from starwrs.runtime.transfer import TransferRefused, fetch, upload
from starwrs.storage.datamart.partitions import (
    PartitionMap,
    PartitionMapError,
    read_partition_map,
    write_partition_map,
)
from starwrs.storage.outbox import (
    OUTBOX_MIGRATION,
    Delivered,
    Outbox,
    OutboxMessage,
    Outcome,
    Refused,
    Retry,
)
from starwrs.storage.sqlite import open_store

__all__ = ["Arbitrator", "make_arbitrator_proxy", "serve_arbitrator"]

log = logging.getLogger("starwrs.arbitrator")

MIGRATIONS = [OUTBOX_MIGRATION]

#: statuses a DSS answers when it is down or slow: deliver again later
_TRANSIENT = frozenset({7006, 7007})


class Arbitrator:
    """Routing table, outbox and moves of one arbitrator process."""

    def __init__(self, state_dir: Path, outbox: Outbox, pool: ProxyPool) -> None:
        self.state_dir = state_dir
        self.outbox = outbox
        self.pool = pool
        self.moving = trio.Lock()
        self.staging = state_dir / "arbitrator"
        self.staging.mkdir(parents=True, exist_ok=True)

    def table(self) -> PartitionMap:
        try:
            return read_partition_map(self.state_dir)
        except PartitionMapError as err:
            raise StarwrsError(ErrorCode.RM_GENERAL_FAILURE, str(err)) from None

    async def route(self, envelope: dict[str, Any]) -> tuple[int, bytes]:
        """Put a published request into the outbox of its partition."""
        corp = envelope.get("corp_id")
        request_id = envelope.get("request_id")
        if envelope.get("subject") != "Arbitrator":
            raise StarwrsError(ErrorCode.NO_VALID_REQUEST, "subject must be Arbitrator")
        if not isinstance(corp, str) or not corp or len(corp) > 12:
            raise StarwrsError(ErrorCode.REQUIRED_PARAMETERS_MISSING, "corp_id")
        if not isinstance(request_id, int) or not 0 <= request_id < 2**31:
            raise StarwrsError(ErrorCode.REQUIRED_PARAMETERS_MISSING, "request_id")
        partition = self.table().partition_of(corp)
        target = f"DSS{partition}"
        if not self.pool.knows(target):
            raise StarwrsError(ErrorCode.PROXY_UNAVAILABLE, f"no partition {partition}")
        forward = dict(envelope, subject=f"ODS{partition}")
        await self.outbox.put(f"ODS{partition}", str(request_id), target, msgpack.packb(forward))
        log.info("arbitrator request=%d corp=%s ods=%d", request_id, corp, partition)
        return 0, msgpack.packb({"request_id": request_id, "ods": partition})

    async def deliver(self, message: OutboxMessage) -> Outcome:
        """Send one queued envelope to its DSS, or a failure report to RM (the sender)."""
        request = Request(message.destination, message.payload)
        try:
            answer = await self.pool.request(message.destination, request)
        except StarwrsError as err:
            return Retry(err.message)
        if answer.status == 0 or (
            message.destination == RM and answer.status == ErrorCode.RM_NRLA_RETRANSMISSION
        ):
            return Delivered()
        if answer.status in _TRANSIENT:
            return Retry(f"status {answer.status}")
        return Refused(answer.status, answer.payload[:200].decode("utf-8", "replace"))

    async def parked(self, message: OutboxMessage, reason: str) -> None:
        """A request its partition keeps refusing: the Report Manager is told."""
        what = f"the arbitrator could not hand the request to {message.destination}"
        await report_parked(self.outbox, message, reason, what)

    async def where(self, corp: str) -> Message:
        partition = self.table().partition_of(corp)
        return Message(
            "WHRA", (Member("ERROR", "0"), Member("CORP", corp), Member("ODS", str(partition)))
        )

    async def move(self, corp: str, partition: int) -> Message:
        """Move *corp*'s calls to *partition* (see the module docstring)."""
        async with self.moving:
            table = self.table()
            if not 1 <= partition <= table.partitions or not self.pool.knows(f"DSS{partition}"):
                raise StarwrsError(ErrorCode.RM_PARAMETER_ERROR, f"no partition {partition}")
            old = table.partition_of(corp)
            if old == partition:
                return _moved(corp, old, partition, 0)
            staged = self.staging / f"move-{corp}-{old}-{partition}.arrows"
            staged.unlink(missing_ok=True)
            try:
                await self._bulk_get(f"DSS{old}", f"XPRT<CORP={corp}>", staged)
                rows = await self._bulk_put(f"DSS{partition}", f"LOAD<CORP={corp}>", staged)
            finally:
                staged.unlink(missing_ok=True)
            table.assign(corp, partition)
            write_partition_map(self.state_dir, table)
            log.info("arbitrator moved corp=%s from=%d to=%d rows=%d", corp, old, partition, rows)
            await self._drain(f"ODS{old}")
            await self._sync(f"DSS{old}", f"PURG<CORP={corp}>")
            return _moved(corp, old, partition, rows)

    async def _drain(self, subject: str) -> None:
        """Wait until the outbox holds nothing for *subject* (delivered before the switch)."""
        with trio.fail_after(600):
            while (await self.outbox.stats()).pending.get(subject):
                await self.outbox.settled()

    async def _bulk_get(self, target: str, resource: str, out: Path) -> None:
        channel = await self.pool.connect(target)
        async with channel:
            try:
                await fetch(channel, resource, out, target=target)
            except TransferRefused as err:
                raise StarwrsError(_code(err.status), f"{target}: {err}") from None

    async def _bulk_put(self, target: str, resource: str, path: Path) -> int:
        channel = await self.pool.connect(target)
        async with channel:
            answer = await upload(channel, resource, path, target=target, answer_timeout=math.inf)
        reply = _parse(answer.payload)
        if answer.status != 0 or reply is None or reply.get("ERROR") != "0":
            raise StarwrsError(_code(answer.status), f"{target} refused the load")
        rows = reply.get("ROWS")
        return int(rows) if isinstance(rows, str) and rows.isdigit() else 0

    async def _sync(self, target: str, text: str) -> Message:
        answer = await self.pool.request(target, Request(target, text.encode()))
        reply = _parse(answer.payload)
        if answer.status != 0 or reply is None:
            raise StarwrsError(_code(answer.status), f"{target} refused {text}")
        return reply


def _code(status: int) -> ErrorCode:
    try:
        return ErrorCode(status)
    except ValueError:
        return ErrorCode.RM_GENERAL_FAILURE


def _parse(payload: bytes) -> Message | None:
    try:
        return parse(payload.decode("utf-8"))
    except (UnicodeDecodeError, MessageError):
        return None


def _moved(corp: str, old: int, new: int, rows: int) -> Message:
    return Message(
        "MOVA",
        (
            Member("ERROR", "0"),
            Member("CORP", corp),
            Member("FROM", str(old)),
            Member("TO", str(new)),
            Member("ROWS", str(rows)),
        ),
    )


def make_arbitrator_proxy(arbitrator: Arbitrator) -> Proxy:
    """The arbitrator's proxy: envelopes to route, MOVE, WHER."""
    proxy = Proxy("ARB", name="arbitrator")

    @proxy.takes_envelopes
    async def published(caller: Caller, envelope: dict[str, Any]) -> tuple[int, bytes]:
        del caller
        return await arbitrator.route(envelope)

    @proxy.handles("MOVE", "MOVA")
    async def move(caller: Caller, req: MoveCorp) -> Message:
        if caller.peer not in (None, "admin"):
            raise StarwrsError(ErrorCode.NOT_ENTITLED, "MOVE is the operator's")
        return await arbitrator.move(req.corp_id, req.partition)

    @proxy.handles("WHER", "WHRA")
    async def where(caller: Caller, req: WhereCorp) -> Message:
        del caller
        return await arbitrator.where(req.corp_id)

    return proxy


async def serve_arbitrator(
    deployment: Deployment,
    *,
    index: int = 0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the arbitrator on ``deployment.proxies["ARB"]`` until cancelled."""
    del index
    state = Path(deployment.state_dir)
    pki = load_pki(state)
    routes = {t: a for t, a in deployment.proxies.items() if t.startswith("DSS") or t == RM}
    pool = ProxyPool(routes, pki.internal_client_context("arbitrator"), deployment.limits)
    async with open_store(state / "arbitrator.db", MIGRATIONS) as store:
        outbox = Outbox(
            store,
            lease=lease_for(deployment.limits),
            max_delay=MAX_DELAY,
            max_attempts=MAX_ATTEMPTS,
        )
        await release_leases(store)  # this process is the outbox's only deliverer
        watch_outbox("arbitrator", store)
        arbitrator = Arbitrator(state, outbox, pool)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    serve_proxy,
                    make_arbitrator_proxy(arbitrator),
                    deployment.proxies["ARB"],
                    pki.internal_server_context("arbitrator"),
                    deployment.limits,
                )
                await nursery.start(
                    partial(outbox.run, arbitrator.deliver, on_failed=arbitrator.parked)
                )
                task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                await pool.aclose()
