"""Pooled mutual-TLS links from one service to others, and the error answers of a hop.

Theory of operation
-------------------
The dispatcher routes by it, and every server that calls another (the Report
Manager calling the inbox, the arbitrator the DSS, the DSS the Report Manager)
uses the same pool.  The routing table is the deployment's ``proxies`` map
(target -> address, docs/runtime.md); a target that is not in it is 7002.  Every
service listens with mutual TLS and presents its service's certificate, so the
caller connects with ``server_hostname`` = the service name (:data:`SERVICE_OF_TARGET`)
and its own certificate: hostname checking proves which service answered.

:class:`ProxyPool` keeps idle synchronous connections per target for reuse (the
seed's third socket, without a handshake per request):

* :meth:`ProxyPool.request` checks a connection out (or opens one), sends one
  :class:`~starwrs.protocol.Request`, waits ``proxy_timeout`` for the answer and
  puts the connection back only when the exchange ended cleanly.  A timeout is
  :data:`ErrorCode.PROXY_TIMEOUT` (7007); a proxy that refuses, breaks, closes or
  breaks the protocol is :data:`ErrorCode.PROXY_UNAVAILABLE` (7006).  A pooled
  connection that turns out to be dead (the proxy restarted, or dropped it while
  idle) is retried once on a fresh connection; a fresh one is never retried.
* :meth:`ProxyPool.checkout` / :meth:`ProxyPool.checkin` lend a connection for
  a bulk get, which leaves it reusable when it ends with its last frame.
* :meth:`ProxyPool.connect` opens a connection of its own (bulk puts and
  asynchronous work are one exchange per connection).
* idle connections older than ``idle_keep`` are dropped rather than reused, so
  the pool never hands out a connection the proxy is about to time out.

Each call runs in its caller's task: one proxy's failure is that caller's 7006,
never anything that reaches other connections.

The dispatcher's own refusals carry a metadata body with no acronym,
``<ERROR=7006,REASON=RM proxy unavailable>`` (:func:`error_payload`): a
human-readable reason that names no internal host, port or key.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from types import MappingProxyType

import trio
from starwrs.grammar import Member, Message, serialize
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.protocol import ConnectionClosed, ProtocolError, Request, Response, State
from starwrs.runtime.channel import FrameChannel, PeerGone, ReadTimeout, open_tls_channel
from starwrs.runtime.config import Address, Limits

__all__ = [
    "SERVICE_OF_TARGET",
    "ProxyPool",
    "error_payload",
    "normalize_target",
    "proxy_timeout",
    "proxy_unavailable",
    "service_name",
]

log = logging.getLogger("starwrs.pool")

#: frame target -> the service name in that proxy's certificate
SERVICE_OF_TARGET: Mapping[str, str] = MappingProxyType(
    {
        "OE": "oe",
        "RM": "rm",
        "RS": "rs",
        "INBX": "inbox",
        "DSS": "dss",
        "ARB": "arbitrator",
        "HARV": "harvest",
    }
)


def normalize_target(target: str) -> str:
    """The routing form of a header target: no padding, upper case."""
    return target.strip().upper()


def service_name(target: str) -> str:
    """The certificate service name of the proxy serving *target*.

    Every ODS partition's DSS (``DSS1``, ``DSS2``, ...) presents the one ``dss``
    certificate.
    """
    if target.startswith("DSS") and target[3:].isdigit():
        return "dss"
    return SERVICE_OF_TARGET.get(target, target.lower())


def error_payload(code: int, reason: str) -> bytes:
    """The body of a dispatcher refusal: ``<ERROR=code,REASON=reason>`` (UTF-8).

    Args:
        code: the status code (also the header's ``status``).
        reason: what went wrong, for people; no secrets, no internal addresses.
    """
    message = Message(None, (Member("ERROR", str(int(code))), Member("REASON", reason)))
    return serialize(message).encode("utf-8")


def proxy_unavailable(target: str, why: str = "unavailable") -> StarwrsError:
    """A 7006 naming the proxy by its target only."""
    return StarwrsError(ErrorCode.PROXY_UNAVAILABLE, f"{target} proxy {why}")


def proxy_timeout(target: str) -> StarwrsError:
    """A 7007 naming the proxy by its target only."""
    return StarwrsError(ErrorCode.PROXY_TIMEOUT, f"{target} proxy did not answer in time")


class ProxyPool:
    """Connections from this service to the services of a routing table.

    Args:
        routes: target -> address (the deployment's ``proxies``).
        context: this service's internal client TLS context.
        limits: the deployment's limits (connect, read and proxy timeouts, frame size).
        max_idle: idle connections kept per target.
        idle_keep: seconds an idle connection may wait to be reused.
    """

    def __init__(
        self,
        routes: Mapping[str, Address],
        context: ssl.SSLContext,
        limits: Limits,
        *,
        max_idle: int = 64,
        idle_keep: float = 20.0,
    ) -> None:
        self.routes = {normalize_target(t): a for t, a in routes.items()}
        self.context = context
        self.limits = limits
        self.max_idle = max_idle
        self.idle_keep = idle_keep
        self._idle: dict[str, list[tuple[float, FrameChannel]]] = {}
        self._closed = False

    def knows(self, target: str) -> bool:
        """True if *target* (routing form) is in the routing table."""
        return target in self.routes

    async def connect(self, target: str) -> FrameChannel:
        """Open a new connection to the proxy of *target*.

        Raises:
            StarwrsError: 7002 for a target not in the table; 7006 when nothing
                answers, or the TLS handshake fails, within ``connect_timeout``.
        """
        address = self.routes.get(target)
        if address is None:
            raise StarwrsError(ErrorCode.UNKNOWN_TARGET, f"unknown target {target!r}")
        limits = self.limits
        try:
            return await open_tls_channel(
                address.host,
                address.port,
                self.context,
                server_hostname=service_name(target),
                connect_timeout=limits.connect_timeout,
                read_timeout=limits.read_timeout,
                max_frame_size=limits.max_frame_size,
            )
        except PeerGone as err:
            log.warning("%s proxy at %s: %s", target, address, err.message)
            raise proxy_unavailable(target) from err

    async def request(self, target: str, request: Request) -> Response:
        """Send one synchronous request to *target*'s proxy and return its answer.

        Args:
            target: routing form of the target.
            request: the request as the proxy must see it (identity key, serial).

        Returns:
            The proxy's :class:`Response` (any status it chose).

        Raises:
            StarwrsError: 7002 unknown target, 7006 proxy unavailable, 7007 timeout.
        """
        for attempt in range(2):
            reused, channel = await self.checkout(target)
            keep = False
            try:
                answer = await self._exchange(target, channel, request)
                keep = channel.conn.state is State.IDLE
                return answer
            except _Stale as stale:
                if reused and attempt == 0:
                    log.info("%s proxy: pooled connection was dead, reconnecting", target)
                    continue
                raise proxy_unavailable(target) from stale
            finally:
                if not (keep and self._checkin(target, channel)):
                    await trio.aclose_forcefully(channel.stream)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(self, target: str, channel: FrameChannel, request: Request) -> Response:
        try:
            event = await channel.request(request, self.limits.proxy_timeout)
        except ReadTimeout as err:
            raise proxy_timeout(target) from err
        except PeerGone as err:
            raise _Stale(err.message) from err
        except ProtocolError as err:
            log.warning("%s proxy broke the protocol: %s", target, err.message)
            raise proxy_unavailable(target, "answered with a malformed frame") from err
        if isinstance(event, ConnectionClosed):
            raise _Stale("closed the connection")
        if not isinstance(event, Response):  # pragma: no cover - the state table forbids it
            raise proxy_unavailable(target, "answered out of turn")
        return event

    async def checkout(self, target: str) -> tuple[bool, FrameChannel]:
        """An idle pooled connection to *target*'s proxy (True) or a new one (False).

        Give it back with :meth:`checkin`.  A pooled one may turn out dead: the
        caller retries once on a new one if nothing was answered yet.

        Raises:
            StarwrsError: as :meth:`connect`; 7006 while the pool closes.
        """
        if self._closed:
            raise proxy_unavailable(target, "is not reachable while the dispatcher stops")
        idle = self._idle.get(target)
        now = trio.current_time()
        while idle:
            since, channel = idle.pop()
            if now - since < self.idle_keep:
                return True, channel
            await trio.aclose_forcefully(channel.stream)
        return False, await self.connect(target)

    async def checkin(self, target: str, channel: FrameChannel) -> None:
        """Give back a checked-out connection: kept if its exchange ended cleanly
        (``IDLE``: a synchronous answer, a whole bulk get), else closed."""
        if not (channel.conn.state is State.IDLE and self._checkin(target, channel)):
            await trio.aclose_forcefully(channel.stream)

    def _checkin(self, target: str, channel: FrameChannel) -> bool:
        """Keep a clean connection for reuse; False when the caller must close it."""
        idle = self._idle.setdefault(target, [])
        if self._closed or len(idle) >= self.max_idle:
            return False
        idle.append((trio.current_time(), channel))
        return True

    async def aclose(self) -> None:
        """Close every idle connection; later requests get 7006."""
        self._closed = True
        idle, self._idle = self._idle, {}
        for channels in idle.values():
            for _, channel in channels:
                await trio.aclose_forcefully(channel.stream)


class _Stale(Exception):
    """The connection died under the request (a pooled one may be retried)."""
