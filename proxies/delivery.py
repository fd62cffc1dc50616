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
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.protocol import Request
from starwrs.runtime.config import Limits
from starwrs.runtime.metrics import OutboxReading, set_outbox_source
from starwrs.runtime.pool import ProxyPool
from starwrs.storage.outbox import Delivered, OutboxMessage, Outcome, Refused, Retry, Sender
from starwrs.storage.sqlite import Store

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_DELAY",
    "TRANSIENT",
    "frame_sender",
    "lease_for",
    "release_leases",
    "watch_outbox",
]

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
