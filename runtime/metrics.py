"""Prometheus metrics for every starwrs process (seed: "throughput and volumes at the
Web servers, dispatcher server, application proxies").

Theory of operation
-------------------
Every process keeps its metrics in prometheus-client's default registry (which also
carries the client's process collector: CPU seconds, resident memory, open file
descriptors) and serves them on its own loopback listener, the address
``deployment.json`` names under ``metrics`` for its process label (``web``,
``dispatcher0``, ``oe``, ``rm``, ``serve`` for the supervisor).  ``starwrs run``
starts the listener beside the service (:func:`serve_metrics`), so no service can
forget it; the listener speaks plain HTTP/1.1 through h11 (``GET /metrics``) and only
on 127.0.0.1, like any internal port.

The metric families are defined here once, so the web server, the dispatcher and
the proxy framework count the same things under the same names:

``starwrs_requests_total{service, target, acronym, status}``
    transactions answered, by hop.  ``acronym`` is a message acronym the catalogue
    knows or ``other`` -- a label never takes an arbitrary value a client sent
    (that would let a fuzzer grow memory without bound).
``starwrs_request_seconds{service, target}``
    latency histogram per hop, from the request's first byte to its answer.
``starwrs_active_sessions``
    sessions alive in the sessions store (dispatcher).
``starwrs_tls_handshakes_total{service, result}``
    ``ok`` or ``failed``.
``starwrs_connections_refused_total{service, reason}``
    connections turned away by a limit (``slots``, ``per_source``, ``peer``, ...).
``starwrs_restarts_total{service}``
    services the supervisor started again.
``starwrs_outbox_pending{service, subject}``, ``starwrs_outbox_oldest_seconds{service, subject}``,
``starwrs_outbox_failed{service, subject}``
    the guaranteed-delivery queue of a process (:mod:`starwrs.storage.outbox`): depth,
    age of the oldest pending message, parked messages; read at scrape time from the
    sources registered with :func:`set_outbox_source`.

Who counts what (docs/runtime.md): the web server one request per HTTP request
(target ``DSP`` for ``/logon`` and ``/logoff``, the frame's target for
``/dispatch``, none for files; the HTTP status), the dispatcher one per frame it
answers (echoes included; the frame's status), the proxy framework one per request
(:func:`count_request`); every TLS listener its handshakes (:func:`count_handshake`);
the web server's admission (``per_source``), every accept loop that finds all its
slots held (``slots``: those connections wait in the backlog) and the peer table
(``peer``) their refusals (:func:`count_refused`).

Counting is cheap: label children are cached by :func:`count_request` on its raw
arguments, so a transaction costs one cache look-up, one counter addition and one
histogram observation (~3 µs); :func:`acronym_of` reads a payload's acronym with
one anchored regular expression.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import h11
import prometheus_client
import trio
from prometheus_client import Counter, Gauge, Histogram
from starwrs.runtime.config import Address

__all__ = [
    "ACTIVE_SESSIONS",
    "HANDSHAKES",
    "REFUSED",
    "REQUESTS",
    "REQUEST_SECONDS",
    "RESTARTS",
    "acronym_label",
    "acronym_of",
    "count_handshake",
    "count_refused",
    "count_request",
    "serve_metrics",
    "set_outbox_source",
    "set_sessions_source",
]

log = logging.getLogger("starwrs.metrics")

REQUESTS = Counter(
    "starwrs_requests",
    "Transactions answered, by hop",
    ["service", "target", "acronym", "status"],
)
REQUEST_SECONDS = Histogram(
    "starwrs_request_seconds",
    "Seconds from a request's first byte to its answer, by hop",
    ["service", "target"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ACTIVE_SESSIONS = Gauge("starwrs_active_sessions", "Sessions alive in the sessions store")
HANDSHAKES = Counter("starwrs_tls_handshakes", "TLS handshakes, by result", ["service", "result"])
REFUSED = Counter(
    "starwrs_connections_refused", "Connections turned away by a limit", ["service", "reason"]
)
RESTARTS = Counter("starwrs_restarts", "Services started again after they died", ["service"])

#: the longest request head the metrics listener reads
_MAX_HEAD = 8 * 1024
_HEAD_TIMEOUT = 5.0


@lru_cache(maxsize=1)
def _known_acronyms() -> frozenset[str]:
    from starwrs.grammar.catalogue import known_acronyms

    return frozenset(known_acronyms())


def acronym_label(acronym: str | None) -> str:
    """*acronym* if the catalogue knows it, else ``other`` (bounded label values)."""
    if acronym and acronym in _known_acronyms():
        return acronym
    return "other" if acronym else "none"


#: the acronym a metadata payload starts with (``GRTL`` of ``GRTL<...>``)
_ACRONYM = re.compile(rb"\s*([A-Za-z]{1,4})\s*<")


def acronym_of(payload: bytes) -> str | None:
    """The acronym *payload* starts with, or None (not a message, or no acronym)."""
    match = _ACRONYM.match(payload)
    return match.group(1).decode("ascii") if match else None


@lru_cache(maxsize=4096)
def _children(service: str, target: str, acronym: str | None, status: int) -> tuple[Any, Any]:
    """The label children for raw arguments (the cache bounds what clients can grow)."""
    target = _target_label(target)
    return (
        REQUESTS.labels(service, target, acronym_label(acronym), str(int(status))),
        REQUEST_SECONDS.labels(service, target),
    )


def count_request(
    service: str, target: str, acronym: str | None, status: int, seconds: float
) -> None:
    """Count one answered transaction of *service* (a hop) and its latency.

    Args:
        service: the process's service name (``web``, ``dispatcher``, ``rm``...).
        target: the frame's target, as the caller sent it (bounded by the frame
            format to four characters; unknown ones count under ``other``).
        acronym: the request's acronym, or None (echo, bulk, control payloads).
        status: the answer's status code.
        seconds: the transaction's latency.
    """
    counter, histogram = _children(service, target, acronym, status)
    counter.inc()
    histogram.observe(seconds)


@lru_cache(maxsize=64)
def _handshakes(service: str, ok: bool) -> Any:
    return HANDSHAKES.labels(service, "ok" if ok else "failed")


def count_handshake(service: str, ok: bool) -> None:
    """Count one TLS handshake at *service*'s listener, ``ok`` or ``failed``."""
    _handshakes(service, ok).inc()


@lru_cache(maxsize=64)
def _refusals(service: str, reason: str) -> Any:
    return REFUSED.labels(service, reason)


def count_refused(service: str, reason: str) -> None:
    """Count one connection *service* turned away by a limit (*reason*: a fixed word)."""
    _refusals(service, reason).inc()


_TARGETS = frozenset({"OE", "RM", "RS", "INBX", "DSS", "DSP", "ARB", "HARV", ""})


def _target_label(target: str) -> str:
    target = target.strip()
    if target in _TARGETS or (target.startswith("DSS") and target[3:].isdigit()):
        return target or "none"
    return "other"


def set_sessions_source(count: Callable[[], float]) -> None:
    """Have ``starwrs_active_sessions`` read *count()* at every scrape."""
    ACTIVE_SESSIONS.set_function(count)


#: (pending, oldest age in seconds, failed) per subject, or None when unreadable now
OutboxReading = tuple[dict[str, int], dict[str, float], dict[str, int]] | None
_OUTBOX_SOURCES: dict[str, Callable[[], OutboxReading]] = {}


class _OutboxCollector:
    """The ``starwrs_outbox_*`` gauges, read from every registered source at scrape time."""

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        families = (
            GaugeMetricFamily(
                "starwrs_outbox_pending",
                "Messages waiting in an outbox",
                labels=["service", "subject"],
            ),
            GaugeMetricFamily(
                "starwrs_outbox_oldest_seconds",
                "Age of the oldest message waiting in an outbox",
                labels=["service", "subject"],
            ),
            GaugeMetricFamily(
                "starwrs_outbox_failed",
                "Messages parked as failed in an outbox",
                labels=["service", "subject"],
            ),
        )
        for service, read in list(_OUTBOX_SOURCES.items()):
            try:
                reading = read()
            except Exception:  # a scrape must never fail because one source did
                log.exception("outbox metrics of %s", service)
                continue
            if reading is None:
                continue
            pending, oldest, failed = reading
            for subject, count in pending.items():
                families[0].add_metric([service, subject], float(count))
            for subject, age in oldest.items():
                families[1].add_metric([service, subject], age)
            for subject, count in failed.items():
                families[2].add_metric([service, subject], float(count))
        yield from families


prometheus_client.REGISTRY.register(_OutboxCollector())


def set_outbox_source(service: str, read: Callable[[], OutboxReading]) -> None:
    """Have the ``starwrs_outbox_*`` gauges of *service* read *read()* at every scrape."""
    _OUTBOX_SOURCES[service] = read


async def serve_metrics(
    address: Address, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve ``GET /metrics`` on *address* (loopback) until cancelled."""
    listeners = await trio.open_tcp_listeners(address.port, host=address.host)
    task_status.started()
    await trio.serve_listeners(_handle, listeners)


async def _handle(stream: trio.SocketStream) -> None:
    """One exchange per connection: read the request head, answer, close."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
    async with stream:
        try:
            with trio.fail_after(_HEAD_TIMEOUT):
                request = await _read_request(stream, conn)
            if request is None:
                return
            body, status, content_type = _answer(request)
            head = h11.Response(
                status_code=status,
                headers=[
                    ("Content-Type", content_type),
                    ("Content-Length", str(len(body))),
                    ("Connection", "close"),
                ],
            )
            await stream.send_all(
                conn.send(head) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
            )
        except (trio.TooSlowError, trio.BrokenResourceError, h11.ProtocolError, OSError):
            return


async def _read_request(stream: trio.SocketStream, conn: h11.Connection) -> h11.Request | None:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return None
            conn.receive_data(chunk)
            continue
        return event if isinstance(event, h11.Request) else None


def _answer(request: h11.Request) -> tuple[bytes, int, str]:
    if request.method != b"GET":
        return b"only GET\n", 405, "text/plain; charset=utf-8"
    if request.target.split(b"?")[0] != b"/metrics":
        return b"not found\n", 404, "text/plain; charset=utf-8"
    return prometheus_client.generate_latest(), 200, prometheus_client.CONTENT_TYPE_LATEST
