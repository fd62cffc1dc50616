"""The application proxy framework every proxy process uses.

Theory of operation
-------------------
A proxy (seed: "application specific daemon") receives frames from the dispatcher
over mutual TLS, validates each request, has it serviced, and answers.  This module
does everything but the servicing:

1. **listen** -- :func:`serve_proxy` binds the proxy's address with a server
   context that requires a deployment client certificate, and serves each
   connection in its own task (a broken connection never affects another);
   right after the handshake the peer's certificate must have a row for this
   service in :mod:`starwrs.runtime.peers` (else 7003 and close);
2. **frame loop** -- echo frames are answered at once without touching the
   handlers; a synchronous request is one transaction; a connection carries any
   number of them, one after another, and so does a bulk get that ended with its
   last frame (a dispatcher pools the connection); protocol errors are answered with their
   code and the connection closed, and so is a frame that stops short (7009,
   within ``limits.frame_timeout`` for a small frame: PROTOCOL.md section 2); a
   connection on which no frame starts for :data:`IDLE_TIMEOUT` (a day) is closed
   quietly;
3. **validate** -- a message the peer's row does not allow it to send is 7003
   (admin messages from ``admin`` only); the payload is decoded (UTF-8), parsed
   with the grammar (its group limit refuses pathological nesting early, 6611)
   and validated with the typed catalogue of the proxy's service, so handlers
   only ever see well-formed, typed requests;
4. **dispatch** -- by acronym to the handler registered with :meth:`Proxy.handles`;
   an acronym the proxy does not serve is echoed back with 6104 (seed Table 2:
   "the response message will echo the message acronym back along with an
   appropriate error code");
5. **answer** -- the handler's answer is serialized; the header status mirrors its
   ``ERROR=`` (so a dispatcher or client can branch without parsing).  A handler
   that raises :class:`~starwrs.grammar.errors.StarwrsError` is answered with that
   code; any other exception is logged and answered with the service's general
   failure code -- never a traceback on the wire.

The caller's identity arrives in the frame key as ``USERID@ENTPID`` (the dispatcher
resolved the session; see docs/runtime.md).  Each transaction is one INFO line of
``key=value`` pairs (:mod:`starwrs.runtime.logs`).
"""

from __future__ import annotations

import logging
import math
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import trio
from starwrs.grammar import Member, Message, MessageError, parse, serialize
from starwrs.grammar.catalogue import validate
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.grammar.typed import TypedMessage
from starwrs.protocol import (
    BulkGet,
    BulkPut,
    ConnectionClosed,
    Echo,
    EchoReply,
    ProtocolError,
    Request,
    Response,
    Role,
)
from starwrs.proxies.bulk import GetHandler, PutHandler, serve_bulk
from starwrs.runtime import peers
from starwrs.runtime.channel import FrameChannel, PeerGone, ReadTimeout
from starwrs.runtime.config import Address, Limits
from starwrs.runtime.logs import token
from starwrs.runtime.metrics import acronym_of, count_handshake, count_refused, count_request
from starwrs.runtime.services import PROXIES
from starwrs.runtime.tls import AnyTls, TlsListener, is_tls

__all__ = ["Caller", "Handler", "Proxy", "error_message", "serve_connection", "serve_proxy"]

log = logging.getLogger("starwrs.proxy")

#: seconds a proxy keeps a connection on which no frame starts
IDLE_TIMEOUT = 24 * 3600.0
#: how stale the idle deadline may get before it is moved (a cancel scope's deadline
#: costs as much to move as the rest of a small frame's bookkeeping)
_IDLE_SLACK = 60.0

_ACRONYM = re.compile(r"\s*([A-Za-z]{1,4})\s*<")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request, as the dispatcher resolved it."""

    user_id: str | None
    entp_id: str | None
    serial: int = 0
    #: the service named by the peer's deployment certificate (``dispatcher``,
    #: ``admin``, ...): who connected, as opposed to on whose behalf
    peer: str | None = None

    @property
    def internal(self) -> bool:
        """A service acting for itself (no user behind the request)."""
        return self.user_id is None

    @classmethod
    def from_key(cls, key: str, serial: int = 0, peer: str | None = None) -> Caller:
        """Read the ``USERID@ENTPID`` identity the dispatcher puts in the key."""
        if not key:
            return cls(None, None, serial, peer)
        user, _, entp = key.rpartition("@")
        if not user:
            return cls(entp or None, None, serial, peer)
        return cls(user, entp or None, serial, peer)


Handler = Callable[[Caller, Any], Awaitable[Message | TypedMessage]]
#: an envelope handler answers (header status, payload bytes)
EnvelopeHandler = Callable[[Caller, dict[str, Any]], Awaitable[tuple[int, bytes]]]

#: first bytes of a msgpack map (fixmap, map16, map32): an envelope, not a message
_MSGPACK_MAP = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}


def error_message(answer: str | None, code: int) -> Message:
    """The minimal error answer: ``ANSWER<ERROR=code>`` (or a bare ``<ERROR=…>``)."""
    return Message(answer, (Member("ERROR", str(int(code))),))


@dataclass
class Proxy:
    """One application proxy: its service name and its handlers.

    Args:
        service: the catalogue service (``OE``, ``RM``, ``INBX``, …).
        general_failure: the code answered when a handler fails unexpectedly.
        name: the service's certificate name, its rows in
            :mod:`starwrs.runtime.peers` (default: from the target, ``OE`` ->
            ``oe``, ``INBX`` -> ``inbox``).
    """

    service: str
    general_failure: ErrorCode = ErrorCode.RM_GENERAL_FAILURE
    handlers: dict[str, tuple[str, Handler]] = field(default_factory=dict)
    name: str = ""
    #: bulk resources by acronym (:mod:`starwrs.proxies.bulk`)
    getters: dict[str, GetHandler] = field(default_factory=dict)
    putters: dict[str, PutHandler] = field(default_factory=dict)
    #: the answer acronym of each bulk resource's errors
    bulk_answers: dict[str, str] = field(default_factory=dict)
    #: the handler of msgpack envelopes (PROTOCOL.md section 7), if the proxy takes any
    envelope: EnvelopeHandler | None = None

    def __post_init__(self) -> None:
        if not self.name:
            self.name = PROXIES.get(self.service, self.service.lower())

    def handles(self, acronym: str, answer: str) -> Callable[[Handler], Handler]:
        """Register the decorated coroutine for requests *acronym*, answered *answer*."""

        def register(fn: Handler) -> Handler:
            self.handlers[acronym] = (answer, fn)
            return fn

        return register

    def serves_get(self, acronym: str, answer: str) -> Callable[[GetHandler], GetHandler]:
        """Register the decorated coroutine for bulk gets of resource *acronym*."""

        def register(fn: GetHandler) -> GetHandler:
            self.getters[acronym] = fn
            self.bulk_answers[acronym] = answer
            return fn

        return register

    def accepts_put(self, acronym: str, answer: str) -> Callable[[PutHandler], PutHandler]:
        """Register the decorated coroutine for bulk puts of resource *acronym*."""

        def register(fn: PutHandler) -> PutHandler:
            self.putters[acronym] = fn
            self.bulk_answers[acronym] = answer
            return fn

        return register

    def takes_envelopes(self, fn: EnvelopeHandler) -> EnvelopeHandler:
        """Register the decorated coroutine for msgpack envelope payloads."""
        self.envelope = fn
        return fn

    async def handle(self, caller: Caller, payload: bytes) -> tuple[int, bytes]:
        """Service one request payload; return (header status, answer payload).

        A caller with a ``peer`` (every request that came over the network) may
        send only what its row in :mod:`starwrs.runtime.peers` allows (7003
        otherwise); a caller without one is an in-process call.
        """
        if self.envelope is not None and payload[:1] and payload[0] in _MSGPACK_MAP:
            return await self._envelope(caller, payload)
        _answer, message = await self._answer(caller, payload)
        if isinstance(message, TypedMessage):
            message = message.to_message()
        status = _error_of(message)
        return status, serialize(message).encode("utf-8")

    async def _envelope(self, caller: Caller, payload: bytes) -> tuple[int, bytes]:
        """A msgpack envelope: decoded strictly, handed to the envelope handler."""
        assert self.envelope is not None
        try:
            envelope = msgpack.unpackb(payload, raw=False, strict_map_key=True)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            envelope = None
        if not isinstance(envelope, dict):
            code = ErrorCode.MALFORMED_FRAME
            return int(code), serialize(error_message(None, code)).encode("utf-8")
        try:
            return await self.envelope(caller, envelope)
        except StarwrsError as err:
            return int(err.code), serialize(error_message(None, err.code)).encode("utf-8")
        except Exception:
            log.exception("%s envelope handler failed", self.service)
            code = self.general_failure
            return int(code), serialize(error_message(None, code)).encode("utf-8")

    async def _answer(
        self, caller: Caller, payload: bytes
    ) -> tuple[str | None, Message | TypedMessage]:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            return None, error_message(None, ErrorCode.UNKNOWN_TOKEN)
        match = _ACRONYM.match(text)
        acronym = match.group(1) if match else None
        entry = self.handlers.get(acronym or "")
        answer = entry[0] if entry else acronym
        if caller.peer is not None and not peers.allows(caller.peer, self.name, acronym):
            return answer, error_message(answer, ErrorCode.NOT_ENTITLED)
        try:
            message = parse(text)
            typed = validate(message, self.service)
        except MessageError as err:
            return answer, error_message(answer, err.code)
        if entry is None:
            return answer, error_message(acronym, ErrorCode.NO_VALID_REQUEST)
        try:
            return answer, await entry[1](caller, typed)
        except StarwrsError as err:
            return answer, error_message(answer, err.code)
        except Exception:
            log.exception("%s handler for %s failed", self.service, acronym)
            return answer, error_message(answer, self.general_failure)


def _error_of(message: Message) -> int:
    value = message.get("ERROR")
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


async def serve_connection(proxy: Proxy, stream: trio.abc.Stream, limits: Limits) -> None:
    """Serve one accepted connection until it closes (TLS handshake, peer check, frames).

    Args:
        proxy: the proxy to serve.
        stream: a TLS stream over the accepted socket (handshake not yet
            done); a stream without TLS has no peer certificate and is refused.
        limits: the deployment's limits.
    """
    channel = FrameChannel(
        stream,
        Role.SERVER,
        read_timeout=limits.read_timeout,
        max_frame_size=limits.max_frame_size,
        frame_timeout=limits.frame_timeout,
        min_frame_rate=limits.min_frame_rate,
    )
    async with channel:
        try:
            if is_tls(stream):
                try:
                    with trio.fail_after(limits.connect_timeout):
                        await stream.do_handshake()
                except (trio.BrokenResourceError, trio.TooSlowError, ssl.SSLError, OSError):
                    count_handshake(proxy.name, False)
                    raise
                count_handshake(proxy.name, True)
            if await peers.admit(channel, proxy.name, wait=limits.connect_timeout) is None:
                return
            await _frame_loop(proxy, channel, peers.peer_of(stream))
        except (PeerGone, trio.BrokenResourceError, trio.TooSlowError, ssl.SSLError, OSError):
            return


async def _frame_loop(proxy: Proxy, channel: FrameChannel, peer: str | None) -> None:
    """Serve frames until the connection ends; one that stays idle for
    :data:`IDLE_TIMEOUT` is closed quietly (a frame that had started: 7009)."""
    # between transactions a connection may sit idle in a pool, for up to a day: one
    # cancel scope per connection (its deadline moved at most once a minute) instead
    # of one per frame; a started frame still has its own, short deadline
    idle = trio.CancelScope(deadline=trio.current_time() + IDLE_TIMEOUT)
    with idle:
        await _frames(proxy, channel, peer, idle)
    if idle.cancelled_caught and channel.mid_frame:
        code = ErrorCode.MALFORMED_FRAME
        await _refuse(channel, proxy, peer, code, "a frame stopped short")


def _keep(idle: trio.CancelScope) -> None:
    """Push the idle deadline a day ahead, if it is more than a minute stale."""
    now = trio.current_time()
    if idle.deadline - now < IDLE_TIMEOUT - _IDLE_SLACK:
        idle.deadline = now + IDLE_TIMEOUT


async def _frames(
    proxy: Proxy, channel: FrameChannel, peer: str | None, idle: trio.CancelScope
) -> None:
    while True:
        _keep(idle)
        try:
            event = await channel.receive(idle_timeout=math.inf)  # the limit is *idle*'s
        except ProtocolError as err:  # including a frame the peer closed short
            await _refuse(channel, proxy, peer, err.code, err.message)
            return
        except ReadTimeout as err:
            if not err.idle:  # a frame that stopped short
                await _refuse(channel, proxy, peer, err.code, err.message)
            return
        if isinstance(event, ConnectionClosed):
            return
        _keep(idle)  # a transaction starts with (nearly) a whole day ahead of it
        if isinstance(event, Echo):
            await channel.send(EchoReply())
            count_request(proxy.name, event.target, None, 0, 0.0)
        elif isinstance(event, Request):
            started = time.perf_counter()
            caller = Caller.from_key(event.key, event.serial, peer)
            status, payload = await proxy.handle(caller, event.payload)
            await channel.send(Response(status, payload, event.serial))
            count_request(
                proxy.name,
                event.target,
                acronym_of(event.payload),
                status,
                time.perf_counter() - started,
            )
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "service=%s serial=%d user=%s status=%d ms=%.1f peer=%s",
                    proxy.name,
                    event.serial,
                    token(caller.user_id),
                    status,
                    (time.perf_counter() - started) * 1000,
                    peer,
                )
        elif isinstance(event, BulkGet | BulkPut) and (proxy.getters or proxy.putters):
            idle.deadline = math.inf  # a transfer has limits of its own
            await serve_bulk(proxy, channel, event, Caller.from_key(event.key, event.serial, peer))
            if not channel.reusable:  # a put, a cancel, an error: one exchange
                return
            idle.deadline = trio.current_time() + IDLE_TIMEOUT  # a whole get: next one
        else:
            # async tickets are the dispatcher's
            await _refuse(channel, proxy, peer, ErrorCode.UNKNOWN_MECHANISM, "not served here")
            return


async def _refuse(
    channel: FrameChannel, proxy: Proxy, peer: str | None, code: int, why: str
) -> None:
    """Answer *code* (in the exchange when there is one) before the connection closes."""
    log.info("service=%s refused peer=%s status=%d: %s", proxy.name, peer, code, why)
    count_request(proxy.name, "", None, code, 0.0)
    await channel.refuse(int(code), serialize(error_message(None, code)).encode())


async def serve_proxy(
    proxy: Proxy,
    address: Address,
    ssl_context: Any,
    limits: Limits,
    *,
    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on *address* with mutual TLS and serve *proxy* until cancelled."""
    listeners = await trio.open_tcp_listeners(address.port, host=address.host)
    tls = [TlsListener(lst, ssl_context) for lst in listeners]
    limiter = trio.CapacityLimiter(limits.max_connections)

    async def handler(stream: AnyTls) -> None:
        if not limiter.available_tokens:
            count_refused(proxy.name, "slots")  # it waits for a slot
        async with limiter:
            await serve_connection(proxy, stream, limits)

    task_status.started(listeners)
    await trio.serve_listeners(handler, tls)
