"""Which deployment certificate may call which internal service, and with what.

Theory of operation
-------------------
Every internal hop is mutual TLS with certificates of the deployment's own CA
(:mod:`starwrs.runtime.pki`), and each certificate names one service
(:func:`~starwrs.runtime.pki.peer_service_name`).  Holding *a* deployment
certificate is not enough to be served: the web server's certificate lives in
the DMZ, so a break-in there must reach the dispatcher and nothing else.  The
table below, :data:`GRANTS`, is the one place that says who calls whom:

* one :class:`Grant` per (caller, service) pair that is allowed; a pair with no
  row is refused.  A row may narrow what the caller sends: ``targets`` (the
  dispatcher only: which frame targets it may address) and ``messages`` (the
  acronyms of the service's *own* messages it may send -- for the dispatcher,
  those to ``DSP``);
* :data:`RESERVED` names messages that only some callers may send, whichever row
  lets them connect (order entry's admin messages come from ``admin`` only).

Every listener enforces it right after the TLS handshake with :func:`admit`: a
caller without a row gets one 7003 answer frame (to its first request when that
arrives in time, else a bare one), the refusal is logged, and the connection is
closed.  The dispatcher checks ``targets`` per frame, the dispatcher and the
proxy framework check ``messages`` per request (:func:`allows`), both answering
7003.

Rows for services still to be built (``rs``, ``arbitrator``, ``dss``, ``inbox``,
``harvest``) are here already; their issues narrow them to the messages they
define.  To add a service: add its rows, and its certificate name to
``pki.SERVICE_NAMES``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import trio
from starwrs.grammar.errors import ErrorCode
from starwrs.protocol import ProtocolError
from starwrs.runtime.channel import FrameChannel, PeerGone, ReadTimeout
from starwrs.runtime.metrics import count_refused
from starwrs.runtime.pki import peer_service_name
from starwrs.runtime.tls import TlsStream

__all__ = [
    "GRANTS",
    "REFUSAL",
    "RESERVED",
    "Grant",
    "admit",
    "allows",
    "callers_of",
    "grant_for",
    "peer_of",
    "senders_of",
    "services",
]

log = logging.getLogger("starwrs.peers")

#: the answer payload of a refused peer (reasons never name hosts or ports)
REFUSAL = b"<ERROR=7003,REASON=this service does not serve the caller's certificate>"


@dataclass(frozen=True, slots=True)
class Grant:
    """What *caller* (a certificate name) may ask of *service*.

    Attributes:
        caller: the calling certificate's service name.
        service: the listening service.
        targets: frame targets the caller may address (the dispatcher's rows);
            None: any.
        messages: acronyms of the service's own messages the caller may send;
            None: any that :data:`RESERVED` does not keep for others.
        why: what the caller uses it for (documentation).
    """

    caller: str
    service: str
    targets: frozenset[str] | None = None
    messages: frozenset[str] | None = None
    why: str = ""

    def allows_target(self, target: str) -> bool:
        """Whether this caller may address frame *target* (routing form, e.g. ``RM``)."""
        return self.targets is None or target in self.targets

    def allows_message(self, acronym: str | None) -> bool:
        """Whether this caller may send the message *acronym* to the service."""
        if self.messages is not None and acronym not in self.messages:
            return False
        reserved = RESERVED.get((self.service, acronym or ""))
        return reserved is None or self.caller in reserved


def _row(
    caller: str,
    service: str,
    why: str,
    *,
    targets: Iterable[str] | None = None,
    messages: Iterable[str] | None = None,
) -> Grant:
    return Grant(
        caller,
        service,
        None if targets is None else frozenset(targets),
        None if messages is None else frozenset(messages),
        why,
    )


#: order entry's admin messages (``starwrs admin``; SBR sets an enterprise's brand)
OE_ADMIN = ("UAPP", "UENB", "SBR")

#: order entry's notification defaults: the inbox's (and the admin's, for news)
OE_NOTIFY = ("GUN", "GEU")
#: what a customer may ask of the inbox (never ``A``: items come from the servers)
INBOX_READ = ("D", "L", "F", "U")

#: caller -> service, and what it may send there.  No row: refused (7003).
GRANTS: tuple[Grant, ...] = (
    # the DMZ web server reaches the dispatcher and nothing else
    _row("web", "dispatcher", "customers' requests, logon and logoff"),
    # order entry and the operator tell the dispatchers of entitlement changes
    _row("oe", "dispatcher", "ENTC after a change", targets=["DSP"], messages=["ENTC"]),
    _row("admin", "dispatcher", "ENTC", targets=["DSP"], messages=["ENTC"]),
    # the dispatcher routes to every application proxy
    _row("dispatcher", "oe", "logon (VU), entitlements (GUA), routed requests"),
    _row("dispatcher", "rm", "routed requests"),
    _row("dispatcher", "rs", "routed requests"),
    _row("dispatcher", "inbox", "routed requests: D, L, F, U", messages=INBOX_READ),
    _row("dispatcher", "dss", "routed requests"),
    _row("dispatcher", "harvest", "a collector's batches over the network", messages=["CDRB"]),
    # the operator's tools
    _row(
        "admin",
        "oe",
        "UAPP, UENB, SBR; GUA (apps --add/--remove); GUN, GEU (news)",
        messages=(*OE_ADMIN, "GUA", *OE_NOTIFY),
    ),
    _row("admin", "arbitrator", "operations"),
    _row("admin", "dss", "operations"),
    _row("admin", "inbox", "news (A), operations", messages=("A", *INBOX_READ)),
    _row("admin", "harvest", "operations"),
    # report delivery (PROTOCOL.md section 7)
    _row("rm", "rs", "scheduled reports"),
    _row("rm", "arbitrator", "publishes ARD"),
    _row("rs", "arbitrator", "publishes ARD"),
    _row("arbitrator", "dss", "republishes ARD to the partition"),
    _row("rm", "inbox", "metadata files, A", messages=["A"]),
    _row("dss", "oe", "entitlements checked again"),
    _row("dss", "rm", "ARDA, NRL"),
    # failure NRLs (envelopes) of requests their outboxes parked, no message of RM's
    _row("rs", "rm", "failure NRL of a parked request (issue 12)", messages=()),
    _row("arbitrator", "rm", "failure NRL of a parked request (issue 12)", messages=()),
    _row("dss", "inbox", "report files (A puts)", messages=["A"]),
    _row("inbox", "oe", "notification defaults (GUN)", messages=["GUN"]),
    # the harvest (seed 003): priced calls into the corp's partition, news of rejections
    _row("harvest", "dss", "LOAD puts of priced calls", messages=["LOAD"]),
    _row("harvest", "oe", "an enterprise's users (GEU) for news", messages=["GEU"]),
    _row("harvest", "inbox", "news of rejected records (A)", messages=["A"]),
)

#: (service, acronym) -> the only callers that may send that message
RESERVED: dict[tuple[str, str], frozenset[str]] = {
    ("oe", "UAPP"): frozenset({"admin"}),
    ("oe", "UENB"): frozenset({"admin"}),
    ("oe", "SBR"): frozenset({"admin"}),
    ("oe", "VU"): frozenset({"dispatcher"}),  # password checks: the logon flow only
    ("dispatcher", "ENTC"): frozenset({"oe", "admin"}),
    ("oe", "GUN"): frozenset({"inbox", "admin"}),
    ("oe", "GEU"): frozenset({"inbox", "admin", "harvest"}),
    ("inbox", "A"): frozenset({"rm", "dss", "admin", "harvest"}),
}

_BY_PAIR: dict[tuple[str, str], Grant] = {(g.caller, g.service): g for g in GRANTS}
if len(_BY_PAIR) != len(GRANTS):  # pragma: no cover - a mistake in the table above
    raise RuntimeError("the peer table has two rows for one (caller, service)")


def grant_for(caller: str | None, service: str) -> Grant | None:
    """The row that lets *caller* call *service*, or None (refused)."""
    if caller is None:
        return None
    return _BY_PAIR.get((caller, service))


def allows(caller: str | None, service: str, acronym: str | None) -> bool:
    """Whether *caller* may send message *acronym* to *service* (row and reservations)."""
    grant = grant_for(caller, service)
    return grant is not None and grant.allows_message(acronym)


def callers_of(service: str) -> frozenset[str]:
    """Every certificate name that may call *service*."""
    return frozenset(g.caller for g in GRANTS if g.service == service)


def senders_of(service: str, acronym: str) -> frozenset[str]:
    """Every certificate name that may send *acronym* to *service*."""
    return frozenset(g.caller for g in GRANTS if g.service == service and g.allows_message(acronym))


def services() -> frozenset[str]:
    """Every service with a row, as caller or as listener."""
    return frozenset(name for g in GRANTS for name in (g.caller, g.service))


def peer_of(stream: trio.abc.Stream) -> str | None:
    """The certificate name of a handshaken TLS stream's peer (None for anything else)."""
    if not isinstance(stream, TlsStream | trio.SSLStream):
        return None
    return peer_service_name(stream.getpeercert())


async def admit(channel: FrameChannel, service: str, *, wait: float = 5.0) -> Grant | None:
    """Check the peer of a freshly handshaken connection against :data:`GRANTS`.

    A refused peer is answered 7003 -- in answer to its first request if one
    arrives within *wait* seconds, else with a bare error frame -- and logged;
    the caller then closes the connection.

    Args:
        channel: the server side of the connection, TLS handshake done.
        service: the listening service's name.
        wait: seconds to wait for the refused peer's first frame.

    Returns:
        The peer's :class:`Grant`, or None when it was refused.
    """
    peer = peer_of(channel.stream)
    grant = grant_for(peer, service)
    if grant is not None:
        return grant
    log.warning("refused peer=%s service=%s: no row in the peer table", peer or "-", service)
    count_refused(service, "peer")
    with contextlib.suppress(ProtocolError, ReadTimeout, PeerGone):
        await channel.receive(wait)  # answered in its exchange when it is a request
    await channel.refuse(int(ErrorCode.NOT_ENTITLED), REFUSAL)
    return None
