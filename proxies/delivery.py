"""Outbox senders shared by the servers of the report delivery path (PROTOCOL.md section 7).

Theory of operation
-------------------
Every guaranteed message of this path -- Report Manager -> scheduler (schedule
changes), scheduler -> arbitrator (the Appendix D ARD), DSS -> Report Manager (ARDA,
NRL) -- is one synchronous frame whose payload is the outbox row's payload (a msgpack
envelope), sent to the row's destination through the sender's
:class:`~starwrs.runtime.pool.ProxyPool`.  The receiver answers status 0 only after
its own commit, so :func:`frame_sender` turns the answer into the outbox's outcome:

* status 0, or a status the caller names as "already done" (the NRL's 6050), is
  :class:`~starwrs.storage.outbox.Delivered`;
* the receiver being down, slow or not (yet) in the routing table -- 7006, 7007,
  7002 or no connection at all -- is :class:`~starwrs.storage.outbox.Retry`: the
  outbox tries again after a back-off and never drops the message;
* any other status is :class:`~starwrs.storage.outbox.Refused`: the message is
  parked as failed, kept, and the sender's ``on_failed`` reports it.

Each outbox of this path is delivered by exactly one process, so at start the
leases an earlier process held are void (:func:`release_leases`: a sender killed
mid-attempt is retried at once, not after its lease), and each exposes its depth,
age and parked messages as the ``starwrs_outbox_*`` metrics (:func:`watch_outbox`).

**A request that keeps failing** -- its Appendix D ARD parked in the scheduler's or
the arbitrator's outbox, its NRL parked in the DSS's -- reaches the user the way a
DSS failure does: the sender puts a *failure NRL* (``ERR=1``, ``FSIZE=0``, the code
and reason in the envelope's ``error``; :func:`failure_envelope`) into its own
outbox, subject ``RM``, key ``FAIL:<REQUESTID>`` (:func:`report_parked`).  The
Report Manager marks the run and the user report ``FAILED`` with the reason (GURL,
SURD) and gives the user an inbox item with ``ERRFLAG=1``.  A failure report that
parks in turn is only logged (and listed by ``starwrs status``), never reported again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import msgpack
from starwrs.grammar import Member, Message, serialize
from starwrs.grammar.errors import ErrorCode, StarwrsError, describe
from starwrs.protocol import Request
from starwrs.runtime.config import Limits
from starwrs.runtime.metrics import OutboxReading, set_outbox_source
from starwrs.runtime.pool import ProxyPool
from starwrs.storage.outbox import (
    Delivered,
    Outbox,
    OutboxMessage,
    Outcome,
    Refused,
    Retry,
    Sender,
)
from starwrs.storage.sqlite import Store

__all__ = [
    "FAILURE_KEY",
    "MAX_ATTEMPTS",
    "MAX_DELAY",
    "RM",
    "TRANSIENT",
    "failure_envelope",
    "failure_nrl",
    "frame_sender",
    "lease_for",
    "parked_code",
    "release_leases",
    "report_parked",
    "watch_outbox",
]

log = logging.getLogger("starwrs.delivery")

#: the Report Manager's target, and the outbox subject of what goes to it
RM = "RM"
#: the key prefix of a failure report in an outbox (``FAIL:<REQUESTID>``)
FAILURE_KEY = "FAIL:"

#: the outbox back-off cap of this path's senders, seconds: every receiver is on this
#: machine, and one that comes back is served within seconds
MAX_DELAY = 10.0
#: attempts before a message is parked: about five hours of a receiver being down
MAX_ATTEMPTS = 2000

#: statuses that mean "the receiver is not there now": deliver again later
TRANSIENT = frozenset(
    {ErrorCode.UNKNOWN_TARGET, ErrorCode.PROXY_UNAVAILABLE, ErrorCode.PROXY_TIMEOUT}
)


async def release_leases(store: Store) -> int:
    """At start: void the leases of this outbox's previous process; how many."""
    result = await store.execute(
        "UPDATE outbox SET lease_until = 0 WHERE state = 'pending' AND lease_until > 0"
    )
    return result.rowcount


def watch_outbox(
    service: str, store: Store, clock: Callable[[], float] = time.time
) -> None:
    """Expose *store*'s outbox as the ``starwrs_outbox_*`` gauges of *service*."""

    def read() -> OutboxReading:
        rows = store.fetch_now(
            "SELECT subject, state, COUNT(*), MIN(created) FROM outbox GROUP BY subject, state"
        )
        if rows is None:
            return None
        now = clock()
        pending: dict[str, int] = {}
        oldest: dict[str, float] = {}
        failed: dict[str, int] = {}
        for subject, state, count, created in rows:
            if state == "pending":
                pending[subject] = count
                oldest[subject] = max(0.0, now - created)
            else:
                failed[subject] = count
        return pending, oldest, failed

    set_outbox_source(service, read)


def lease_for(limits: Limits) -> float:
    """The outbox lease of a sender on this path: one attempt's longest time, and some.

    An attempt is a connect and one answer (``connect_timeout`` + ``proxy_timeout``);
    a message whose sender was killed mid-attempt is sent again once its lease ran out.
    """
    return limits.connect_timeout + limits.proxy_timeout + 5.0


def frame_sender(
    pool: ProxyPool, *, done: Collection[int] = (), key: str = ""
) -> Sender:
    """An outbox sender that sends each payload as one request to its destination.

    Args:
        pool: the sending service's pool (its routing table has the destinations).
        done: statuses besides 0 that mean the receiver has it already.
        key: the frame key of every request (an internal call: empty).
    """
    delivered = frozenset({0, *done})

    async def send(message: OutboxMessage) -> Outcome:
        target = message.destination
        try:
            answer = await pool.request(target, Request(target, message.payload, key=key))
        except StarwrsError as err:
            return Retry(f"{int(err.code)} {err.message}")
        if answer.status in delivered:
            return Delivered()
        if answer.status in TRANSIENT:
            return Retry(f"status {answer.status}")
        return Refused(answer.status, answer.payload[:200].decode("utf-8", "replace"))

    return send


# -- a request that failed for good, to the Report Manager ------------------------------


def failure_nrl(request_id: int, owner: Mapping[str, Any]) -> Message:
    """The NRL of a request that produced no report (``ERR=1``, no file of its own).

    *owner* is an envelope's ``deliver`` member: ``user_id``, ``entp_id``,
    ``user_report_id``, ``std_report_id``.
    """
    from starwrs.grammar.catalogue import validate
    from starwrs.proxies.rm.templates import TEMPLATES

    template = TEMPLATES.get(int(owner["std_report_id"]))
    title = template.title if template else f"Report {owner['std_report_id']}"
    message = Message(
        "NRL",
        (
            Member("TYPE", title[:30]),
            Member("ENTPID", str(owner["entp_id"])),
            Member("USERID", str(owner["user_id"])),
            Member("STDRPTID", str(owner["std_report_id"])),
            Member("USERRPTID", str(owner["user_report_id"])),
            Member("REQUESTID", str(request_id)),
            Member("COMPRESS", "0"),
            Member("LOC", f"r{request_id}_error.txt"),
            Member("FSIZE", "0"),
            Member("PRESORTED", "0"),
            Member("ERR", "1"),
        ),
    )
    validate(message, "RM")  # what we send must be what the Report Manager accepts
    return message


def failure_envelope(
    request_id: int,
    owner: Mapping[str, Any],
    code: int,
    reason: str,
    *,
    ard: str | None = None,
) -> bytes:
    """The Report Manager's envelope of a failed request (the DSS's failure path)."""
    envelope: dict[str, Any] = {
        "subject": RM,
        "kind": "NRL",
        "request_id": request_id,
        "message": serialize(failure_nrl(request_id, owner)),
        "report": {k: owner[k] for k in ("user_id", "entp_id", "user_report_id", "std_report_id")},
        "error": {"code": int(code), "reason": reason[:500]},
    }
    if ard is not None:
        envelope["ard"] = ard
    return bytes(msgpack.packb(envelope))


def parked_code(reason: str) -> int:
    """The code of a parked message's reason: a refusal's (``"6115 ..."``), else 7006.

    A message that was never refused but ran out of attempts failed because its
    receiver stayed away: 7006 (proxy unavailable).
    """
    head = reason.split(" ", 1)[0]
    if head.isdigit() and describe(int(head)):
        return int(head)
    return int(ErrorCode.PROXY_UNAVAILABLE)


def _owner_of(envelope: object) -> tuple[int, dict[str, Any]] | None:
    """(REQUESTID, owner) of a request envelope (``deliver``) or an RM one (``report``)."""
    if not isinstance(envelope, dict):
        return None
    request_id = envelope.get("request_id")
    owner = envelope.get("deliver", envelope.get("report"))
    if not (isinstance(request_id, int) and isinstance(owner, dict)):
        return None
    if not (
        isinstance(owner.get("user_id"), str)
        and isinstance(owner.get("entp_id"), str)
        and isinstance(owner.get("user_report_id"), int)
        and isinstance(owner.get("std_report_id"), int)
    ):
        return None
    return request_id, owner


async def report_parked(outbox: Outbox, message: OutboxMessage, reason: str, what: str) -> bool:
    """Tell the Report Manager, through *outbox*, that a parked request failed for good.

    *message* is a parked request envelope (the scheduler's or the arbitrator's
    Appendix D ARD, whose ``deliver`` member names the report) or a parked NRL
    envelope of the DSS (its ``report``); *what* says what could not be done, for
    the user.  A failure report that parked itself, or a message that names no
    report (``starwrs report``'s requests), is only logged.  True when queued.
    """
    if message.key.startswith(FAILURE_KEY):
        log.error("failure report parked key=%s: %s", message.key, reason)
        return False
    try:
        envelope = msgpack.unpackb(message.payload, raw=False)
    except (ValueError, msgpack.ExtraData):
        envelope = None
    found = _owner_of(envelope)
    if found is None:
        log.error("parked key=%s names no report to tell: %s", message.key, reason)
        return False
    request_id, owner = found
    ard = envelope.get("ard", envelope.get("message")) if isinstance(envelope, dict) else None
    try:
        payload = failure_envelope(
            request_id,
            owner,
            parked_code(reason),
            f"{what}: {reason}",
            ard=ard if isinstance(ard, str) else None,
        )
        await outbox.put(RM, f"{FAILURE_KEY}{request_id}", RM, payload)
    except Exception:  # a report that cannot be built must not stop the outbox
        log.exception("failure report of request=%d not queued", request_id)
        return False
    log.warning("request=%d parked, reported to RM: %s", request_id, reason)
    return True
