"""The dispatcher (seed: "Dispatch Server 46"): sessions, entitlements, serials, routing.

Theory of operation
-------------------
Seed 001: the dispatch server unwraps the frame from the DMZ web server, examines
the wrappers "to reveal the user and the target middle-tier service", checks that
the user "is entitled to communicate with the desired service" (entitlements
"fetched ... from StarOE at logon time and cached"), and forwards the message to
that service's proxy over a third socket.  Here (docs/runtime.md):

* :func:`serve_dispatcher` listens with mutual TLS (the ``dispatcher``
  certificate; clients need one from the deployment CA), accepts at most
  ``limits.max_connections`` connections at a time (more wait in the backlog),
  and serves each connection in its own task, catching everything that task can
  raise: one connection's or one proxy's failure never reaches another.
* **Per connection**, frames are taken one after another: an **echo** is answered
  at once, contacting nothing (one that carries a key -- every echo the web
  server relays does -- only if the key names a live session: 7004 and the
  connection closed otherwise); target ``DSP`` is the dispatcher itself (``LON``,
  ``LOFF``, ``ENTC``); any other target is a **transaction** for a proxy.  An idle
  connection is closed quietly after ``idle_timeout``; a frame that stops short is
  answered 7009 (within ``frame_timeout`` of its first byte, more for a large
  frame, never more than ``read_timeout``) and the connection closed; a frame with a
  bad version, mechanism or size is answered with its code (7001/7008/7005/7009)
  and the connection closed.
* **A transaction** gets a serial (:mod:`.serials`), then: the frame's key must
  name a live session (7004; the session is *touched*), the target must be in the
  routing table (7002) and among the user's applications (7003).  The request
  then goes to the proxy with the key replaced by the user's identity
  ``USERID@ENTPID`` -- the session key never leaves the dispatcher -- over a pooled
  connection (:mod:`.routing`), with ``proxy_timeout`` (7007); a proxy that is
  down or breaks is 7006.  Every answer carries the transaction's serial.
* **Mechanism 1** issues a ticket bound to the session, answers it and closes;
  the work runs in a task of the server's own nursery (it outlives the
  connection) and stores the proxy's final status and payload with the ticket.
  **Mechanism 2** answers pending (status 1), the final answer, 7010 (unknown or
  expired) or 7003 (another session's).  **Mechanism 3** is relayed frame by
  frame in both directions (:mod:`.relay`).
* Refusals carry ``<ERROR=code,REASON=...>`` (:func:`.routing.error_payload`);
  the dispatcher's own messages answer in their own acronym (``LONA<ERROR=6115>``).
* **Peers**: right after the TLS handshake the client's certificate must have a
  row for ``dispatcher`` in :mod:`starwrs.runtime.peers` (``web``; ``oe`` and
  ``admin`` for target ``DSP`` only): otherwise 7003 and the connection closed.
* **Logging**: one line per transaction -- serial, user, target, mechanism,
  status, milliseconds, the session's hash id (never its key, never a password),
  as ``key=value`` pairs (:func:`starwrs.runtime.logs.token`).

Logon: ``VU`` to OE, with the ``SOURCE`` address the web server put in ``LON``
(6115 for a bad user, password or a disabled user -- OE does the same work either
way; OE's 7012 "throttled" is passed on), then ``GUA``; a
session is started (rotating any key the LON frame carried), the user's
applications cached (:mod:`.entitlements`) and their enterprise kept with the
session, so any dispatcher sharing the sessions database can resolve the
identity.  ``ENTC`` (from the ``oe`` or ``admin`` certificate only) drops the
user's cached applications, asks OE again at once, and ends every session of a
user OE no longer accepts.  A cache miss (a restarted or another dispatcher)
asks OE too; a user OE refuses then has their sessions ended and gets 7004.
"""

from __future__ import annotations

import errno
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import trio
from starwrs.dispatcher.entitlements import (
    Applications,
    EntitlementCache,
    read_applications,
    read_validation,
)
from starwrs.dispatcher.relay import Outcome, relay_get, relay_put
from starwrs.dispatcher.serials import SerialSource
from starwrs.grammar import Member, Message, MessageError, parse, serialize
from starwrs.grammar.catalogue_oe import (
    GetBrandLogo,
    GetUserApplications,
    GetUserContext,
    ValidateUser,
)
from starwrs.grammar.catalogue_session import (
    DSP_MESSAGES,
    EntitlementsChanged,
    EntitlementsChangedAck,
    Logoff,
    LogoffAck,
    Logon,
    LogonAck,
)
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.grammar.typed import TypedMessage
from starwrs.protocol import (
    BulkGet,
    BulkPut,
    ConnectionClosed,
    Echo,
    EchoReply,
    Event,
    Mechanism,
    Pending,
    Poll,
    ProtocolError,
    Request,
    Response,
    Role,
    Submit,
    Ticket,
)
from starwrs.runtime import logs, peers
from starwrs.runtime.channel import FrameChannel, PeerGone, ReadTimeout
from starwrs.runtime.config import Deployment, Limits
from starwrs.runtime.metrics import (
    acronym_of,
    count_handshake,
    count_refused,
    count_request,
    set_sessions_source,
)
from starwrs.runtime.pki import load_pki
from starwrs.runtime.pool import (
    ProxyPool,
    error_payload,
    normalize_target,
    proxy_unavailable,
)
from starwrs.runtime.tls import AnyTls, TlsListener
from starwrs.storage.sessions import (
    Clock,
    Session,
    SessionConfig,
    SessionStore,
    TicketState,
    open_session_store,
)

__all__ = [
    "DSP",
    "ENTC_SENDERS",
    "IDLE_TIMEOUT",
    "LOGON_THROTTLED",
    "Caller",
    "Dispatcher",
    "serve_dispatcher",
]

log = logging.getLogger("starwrs.dispatcher")

#: the dispatcher's own target (docs/runtime.md)
DSP = "DSP"
#: LONA ERROR when OE throttles an account (docs/runtime.md)
LOGON_THROTTLED = int(ErrorCode.LOGON_THROTTLED)
#: seconds an idle client connection is kept between transactions
IDLE_TIMEOUT = 600.0
#: certificate names allowed to send ENTC (the peer table's word)
ENTC_SENDERS = peers.senders_of("dispatcher", "ENTC")
#: seconds between purges of expired sessions and tickets
PURGE_EVERY = 300.0
#: errno values of accept() that mean "out of file descriptors/memory for now"
_ACCEPT_CAPACITY = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
#: (target, acronym) every live session may send synchronously, whatever its
#: applications: the backplane's user context and its brand's logo (order entry
#: answers them for the key's own user only; docs/runtime.md "Entitlements")
EVERY_SESSION = frozenset({("OE", GetUserContext.ACRONYM), ("OE", GetBrandLogo.ACRONYM)})
_ACRONYM = re.compile(rb"\s*([A-Za-z]{1,4})\s*<")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a transaction is for, once the session resolved.

    Attributes:
        user_id: the user.
        entp_id: the user's enterprise.
        session_id: the session's hash id (safe to log).
    """

    user_id: str
    entp_id: str
    session_id: str

    @property
    def identity(self) -> str:
        """The key the proxies see: ``USERID@ENTPID``."""
        return f"{self.user_id}@{self.entp_id}"


@dataclass(slots=True)
class _Tx:
    """One transaction, for its log line."""

    serial: int
    target: str
    mech: Mechanism
    peer: str | None
    started: float = field(default_factory=time.perf_counter)
    user: str | None = None
    session: str | None = None
    note: str = ""
    #: the request's acronym, for its metric (None: not read cheaply)
    acronym: str | None = None


#: the dispatcher's own requests and the acronyms of their answers
_DSP_ANSWERS: dict[type[TypedMessage], str | None] = {
    Logon: LogonAck.ACRONYM,
    Logoff: LogoffAck.ACRONYM,
    EntitlementsChanged: EntitlementsChangedAck.ACRONYM,
}


def _pack_session(entp_id: str) -> bytes:
    data: bytes = msgpack.packb({"entp": entp_id})
    return data


def _unpack_session(session: Session) -> str:
    try:
        data = msgpack.unpackb(session.data)
        entp = data["entp"]
    except (ValueError, TypeError, KeyError, msgpack.ExtraData) as err:
        raise StarwrsError(ErrorCode.NO_SESSION, "session is not a dispatcher session") from err
    if not isinstance(entp, str):
        raise StarwrsError(ErrorCode.NO_SESSION, "session is not a dispatcher session")
    return entp


def _encode(message: TypedMessage | Message) -> bytes:
    tree = message.to_message() if isinstance(message, TypedMessage) else message
    return serialize(tree).encode("utf-8")


def _refusal(err: StarwrsError) -> tuple[int, bytes]:
    return int(err.code), error_payload(err.code, err.message)


class Dispatcher:
    """One dispatcher process's state; :func:`serve_dispatcher` runs it.

    Args:
        limits: the deployment's limits.
        sessions: the shared sessions database.
        pool: connections to the proxies.
        serials: this process's serial numbers.
        background: the server's nursery (asynchronous work runs there).
        idle_timeout: seconds an idle client connection is kept.
    """

    def __init__(
        self,
        limits: Limits,
        sessions: SessionStore,
        pool: ProxyPool,
        serials: SerialSource,
        background: trio.Nursery,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        index: int = 0,
    ) -> None:
        self.limits = limits
        self.index = index
        self.sessions = sessions
        self.pool = pool
        self.serials = serials
        self.entitlements = EntitlementCache()
        self.idle_timeout = idle_timeout
        self._background = background
        self._work = trio.CapacityLimiter(max(1, limits.max_connections))

    # -- connections -------------------------------------------------------------

    async def serve_stream(self, stream: trio.abc.Stream, peer: str | None) -> None:
        """Serve one connection until it closes; never raises (but Cancelled).

        A peer the peer table (:mod:`starwrs.runtime.peers`) does not let call the
        dispatcher is answered 7003 and the connection closed.

        Args:
            stream: the handshaken stream.
            peer: the service name of the client's certificate.
        """
        channel = FrameChannel(
            stream,
            Role.SERVER,
            read_timeout=self.limits.read_timeout,
            max_frame_size=self.limits.max_frame_size,
            frame_timeout=self.limits.frame_timeout,
            min_frame_rate=self.limits.min_frame_rate,
        )
        async with channel:
            try:
                grant = await peers.admit(channel, "dispatcher", wait=self.limits.connect_timeout)
                if grant is not None:
                    await self._frame_loop(channel, peer, grant)
            except (PeerGone, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            except Exception:
                log.exception("connection from %s failed", peer)

    async def _frame_loop(
        self, channel: FrameChannel, peer: str | None, grant: peers.Grant
    ) -> None:
        while True:
            try:
                event = await channel.receive(idle_timeout=self.idle_timeout)
            except ProtocolError as err:
                log.info("refused a frame from %s: %s", peer, err)
                await channel.refuse(err.code, error_payload(err.code, err.message))
                count_request("dispatcher", "", None, err.code, 0.0)
                return
            except ReadTimeout as err:
                if not err.idle:
                    log.info("cut off %s: %s", peer, err.message)
                    await channel.refuse(err.code, error_payload(err.code, err.message))
                    count_request("dispatcher", "", None, err.code, 0.0)
                return
            if isinstance(event, ConnectionClosed):
                return
            if isinstance(event, Echo):
                started = time.perf_counter()
                if not await self._echo_allowed(event):
                    code = ErrorCode.NO_SESSION
                    await channel.refuse(code, error_payload(code, "the echo needs a session"))
                    count_request("dispatcher", event.target, None, code, 0.0)
                    return
                await channel.send(EchoReply())
                count_request("dispatcher", event.target, None, 0, time.perf_counter() - started)
            elif not _target_allowed(grant, event):
                await self._not_allowed(channel, event, peer)
                if not isinstance(event, Request):
                    return
            elif isinstance(event, Request):
                await self._sync(channel, event, peer)
            elif isinstance(event, Submit):
                await self._submit(channel, event, peer)
                return
            elif isinstance(event, Poll):
                await self._poll(channel, event, peer)
                return
            elif isinstance(event, BulkGet | BulkPut):
                await self._bulk(channel, event, peer)
                if not channel.reusable:  # a put, an error, a cancel: one exchange
                    return
            else:  # pragma: no cover - the state table lets nothing else open an exchange
                return

    async def _begin(self, target: str, mech: Mechanism, peer: str | None) -> _Tx:
        return _Tx(await self.serials.next(), normalize_target(target), mech, peer)

    async def _not_allowed(self, channel: FrameChannel, event: Event, peer: str | None) -> None:
        """Refuse (7003) a frame whose target the peer's certificate may not address."""
        mech = _MECHANISM_OF.get(type(event), Mechanism.BULK)
        tx = await self._begin(getattr(event, "target", ""), mech, peer)
        why = f"the {peer} certificate may not address {tx.target}"
        await self._refuse(channel, tx, StarwrsError(ErrorCode.NOT_ENTITLED, why))

    def _log(self, tx: _Tx, status: int | None) -> None:
        seconds = time.perf_counter() - tx.started
        if status is not None:  # answered: counted (starwrs_requests_total)
            count_request("dispatcher", tx.target, tx.acronym, status, seconds)
        if not log.isEnabledFor(logging.INFO):
            return
        log.info(
            "serial=%d user=%s target=%s mech=%s status=%s ms=%.1f session=%s peer=%s note=%s",
            tx.serial,
            logs.token(tx.user),
            logs.token(tx.target),
            tx.mech.name,
            "-" if status is None else status,
            seconds * 1000,
            tx.session[:16] if tx.session else "-",
            tx.peer or "-",
            logs.token(tx.note),
        )

    # -- who may do what ---------------------------------------------------------

    async def authorize(
        self, key: str, target: str, tx: _Tx | None = None, *, payload: bytes | None = None
    ) -> Caller:
        """Resolve the session of *key* and check that its user may use *target* (or
        that the message in *payload* is one every session may send: :data:`EVERY_SESSION`).

        Raises:
            StarwrsError: 7004 no live session (or OE no longer accepts the user),
                7002 a target not in the routing table, 7003 not entitled,
                7006/7007 when OE must be asked and cannot answer.
        """
        session = await self.sessions.touch(key)
        if tx is not None:
            tx.user, tx.session = session.user_id, session.session_id
        caller = Caller(session.user_id, _unpack_session(session), session.session_id)
        if not self.pool.knows(target):
            raise StarwrsError(ErrorCode.UNKNOWN_TARGET, f"unknown target {target!r}")
        apps = await self._applications(caller)
        if target not in apps and (target, _acronym(payload)) not in EVERY_SESSION:
            raise StarwrsError(ErrorCode.NOT_ENTITLED, f"not entitled to {target}")
        return caller

    async def _applications(self, caller: Caller) -> frozenset[str]:
        cached = self.entitlements.get(caller.user_id)
        if cached is not None:  # the hot path: no fetch to prepare
            return cached

        async def fetch() -> Applications:
            answer = await self._ask_applications(caller.user_id, caller.identity)
            if not answer.enabled:
                ended = await self.sessions.end_user(caller.user_id)
                log.info(
                    "user %s refused by order entry: %d session(s) ended", caller.user_id, ended
                )
            return answer

        answer = await self.entitlements.lookup(caller.user_id, fetch)
        if not answer.enabled:
            raise StarwrsError(ErrorCode.NO_SESSION, "session ended")
        return answer.apps

    async def _ask_oe(self, message: TypedMessage, key: str) -> bytes:
        if not self.pool.knows("OE"):
            raise proxy_unavailable("OE", "is not configured")
        request = Request("OE", _encode(message), key, await self.serials.next())
        return (await self.pool.request("OE", request)).payload

    async def _ask_applications(self, user_id: str, key: str) -> Applications:
        payload = await self._ask_oe(GetUserApplications(user_id=user_id), key)
        return read_applications(payload)

    # -- mechanism 0 ---------------------------------------------------------------

    async def _sync(self, channel: FrameChannel, request: Request, peer: str | None) -> None:
        tx = await self._begin(request.target, Mechanism.SYNC, peer)
        tx.acronym = acronym_of(request.payload)
        try:
            if tx.target == DSP:
                status, payload = await self._dsp(request, tx)
            else:
                caller = await self.authorize(
                    request.key, tx.target, tx, payload=request.payload
                )
                forward = Request(tx.target, request.payload, caller.identity, tx.serial)
                answer = await self.pool.request(tx.target, forward)
                status, payload = answer.status, answer.payload
        except StarwrsError as err:
            status, payload = _refusal(err)
        try:
            await channel.send(Response(status, payload, tx.serial))
        finally:
            self._log(tx, status)

    # -- target DSP ------------------------------------------------------------------

    async def _dsp(self, request: Request, tx: _Tx) -> tuple[int, bytes]:
        try:
            message = parse(request.payload.decode("utf-8"))
        except UnicodeDecodeError:
            return _own_error(None, ErrorCode.UNKNOWN_TOKEN)
        except MessageError as err:
            return _own_error(None, err.code)
        classes = DSP_MESSAGES.get(message.acronym or "")
        tx.note = message.acronym or ""
        if classes is None or classes[0] not in _DSP_ANSWERS:
            return _own_error(message.acronym, ErrorCode.NO_VALID_REQUEST)
        cls = classes[0]
        answer = _DSP_ANSWERS[cls]
        if not peers.allows(tx.peer, "dispatcher", message.acronym):
            return _own_error(answer, ErrorCode.NOT_ENTITLED)
        try:
            typed = cls.from_message(message)
        except MessageError as err:
            return _own_error(answer, err.code)
        if isinstance(typed, Logon):
            return await self._logon(request, typed, tx)
        if isinstance(typed, Logoff):
            return await self._logoff(request, tx)
        assert isinstance(typed, EntitlementsChanged)
        return await self._entitlements_changed(typed, tx)

    async def _echo_allowed(self, echo: Echo) -> bool:
        """An echo carrying a key (all the web server relays do) needs a live session."""
        if not echo.key:
            return True  # a service's own connectivity test
        try:
            await self.sessions.peek(echo.key)
        except StarwrsError:
            return False
        return True

    async def _logon(self, request: Request, logon: Logon, tx: _Tx) -> tuple[int, bytes]:
        tx.user = logon.user_id
        # SOURCE (the client's address, set by the web server) goes on to OE, which
        # throttles failed logons per account and source, and per source
        payload = await self._ask_oe(
            ValidateUser(user_id=logon.user_id, password=logon.password, source=logon.source),
            "",
        )
        validation = read_validation(payload)
        if validation.error == LOGON_THROTTLED:
            return _own_error(LogonAck.ACRONYM, LOGON_THROTTLED)
        if validation.error or validation.entp_id is None:
            return _own_error(LogonAck.ACRONYM, ErrorCode.IDS_NOT_CORRECT)
        user_id = validation.user_id or logon.user_id
        tx.user = user_id
        generation = self.entitlements.generation(user_id)
        apps = await self._ask_applications(user_id, f"{user_id}@{validation.entp_id}")
        if not apps.enabled:
            return _own_error(LogonAck.ACRONYM, ErrorCode.IDS_NOT_CORRECT)
        key, session = await self.sessions.start(
            user_id, data=_pack_session(validation.entp_id), replacing=request.key or None
        )
        tx.session = session.session_id
        self.entitlements.put(user_id, apps.apps, generation)
        ack = LogonAck(
            error=0,
            session=key,
            user_id=user_id,
            entp_id=validation.entp_id,
            apps=tuple(sorted(apps.apps)),
            products=apps.products,
            corp_ids=apps.corp_ids,
            timezone=validation.timezone,
            lang=validation.lang,
            curr=validation.curr,
        )
        return 0, _encode(ack)

    async def _logoff(self, request: Request, tx: _Tx) -> tuple[int, bytes]:
        if request.key:
            try:
                session = await self.sessions.peek(request.key)
                tx.user, tx.session = session.user_id, session.session_id
            except StarwrsError:
                pass
            await self.sessions.end(request.key)
        return 0, _encode(LogoffAck(error=0))

    async def _entitlements_changed(
        self, change: EntitlementsChanged, tx: _Tx
    ) -> tuple[int, bytes]:
        if tx.peer not in ENTC_SENDERS:
            return _own_error(EntitlementsChangedAck.ACRONYM, ErrorCode.NOT_ENTITLED)
        user_id = change.user_id
        tx.user = user_id
        self.entitlements.drop(user_id)
        generation = self.entitlements.generation(user_id)
        try:
            answer = await self._ask_applications(user_id, "")
        except StarwrsError as err:  # the cache is dropped: the next request asks again
            log.warning("ENTC %s: order entry not asked: %s", user_id, err.message)
            return 0, _encode(EntitlementsChangedAck(error=0))
        if answer.enabled:
            self.entitlements.put(user_id, answer.apps, generation)
        else:
            ended = await self.sessions.end_user(user_id)
            tx.note = f"ENTC ended {ended} session(s)"
        return 0, _encode(EntitlementsChangedAck(error=0))

    async def _refuse(self, channel: FrameChannel, tx: _Tx, err: StarwrsError) -> None:
        """Answer a refused request with its code, and log the transaction."""
        status, payload = _refusal(err)
        try:
            await channel.send(Response(status, payload, tx.serial))
        finally:
            self._log(tx, status)

    # -- mechanisms 1 and 2 -----------------------------------------------------------

    async def _submit(self, channel: FrameChannel, submit: Submit, peer: str | None) -> None:
        tx = await self._begin(submit.target, Mechanism.ASYNC, peer)
        try:
            _not_dsp(tx.target)
            caller = await self.authorize(submit.key, tx.target, tx)
            ticket = await self.sessions.issue_ticket(submit.key, tx.target, self.index)
        except StarwrsError as err:
            await self._refuse(channel, tx, err)
            return
        forward = Request(tx.target, submit.payload, caller.identity, tx.serial)
        self._background.start_soon(self._run_ticket, ticket.ticket_id, forward, tx)
        await channel.send(Ticket(ticket.ticket_id, tx.serial))

    async def _run_ticket(self, ticket_id: str, forward: Request, tx: _Tx) -> None:
        status = int(ErrorCode.PROXY_UNAVAILABLE)
        try:
            async with self._work:
                try:
                    answer = await self.pool.request(forward.target, forward)
                    status, payload = answer.status, answer.payload
                except StarwrsError as err:
                    status, payload = _refusal(err)
                await self.sessions.complete_ticket(ticket_id, status, payload)
        except StarwrsError as err:  # the session ended meanwhile: nobody to tell
            tx.note = f"result dropped: {err.message}"
        except Exception:
            log.exception("asynchronous work for serial %d failed", tx.serial)
        finally:
            self._log(tx, status)

    async def _poll(self, channel: FrameChannel, poll: Poll, peer: str | None) -> None:
        tx = await self._begin(poll.target, Mechanism.POLL, peer)
        status = 1
        try:
            session = await self.sessions.touch(poll.key)
            tx.user, tx.session = session.user_id, session.session_id
            ticket = await self.sessions.poll_ticket(poll.key, poll.ticket)
        except StarwrsError as err:
            await self._refuse(channel, tx, err)
            return
        try:
            if ticket.state is TicketState.PENDING or ticket.status is None:
                await channel.send(Pending(tx.serial))
            else:
                status = ticket.status
                await channel.send(Response(status, ticket.payload or b"", tx.serial))
        finally:
            self._log(tx, status)

    # -- mechanism 3 ---------------------------------------------------------------

    async def _bulk(
        self, channel: FrameChannel, opening: BulkGet | BulkPut, peer: str | None
    ) -> None:
        tx = await self._begin(opening.target, Mechanism.BULK, peer)
        status: int | None
        try:
            _not_dsp(tx.target)
            caller = await self.authorize(opening.key, tx.target, tx)
            if isinstance(opening, BulkPut):
                proxy = await self.pool.connect(tx.target)
        except StarwrsError as err:
            await self._refuse(channel, tx, err)
            return
        status = None
        try:
            if isinstance(opening, BulkGet):
                forward_get = BulkGet(
                    opening.resource, opening.offset, tx.target, caller.identity, tx.serial
                )
                outcome = await self._relay_get(channel, forward_get, tx)
            else:
                forward_put = BulkPut(
                    opening.resource,
                    opening.size,
                    opening.sha256,
                    tx.target,
                    caller.identity,
                    tx.serial,
                )
                async with proxy:
                    outcome = await relay_put(
                        channel,
                        proxy,
                        forward_put,
                        serial=tx.serial,
                        target=tx.target,
                        limits=self.limits,
                    )
            status = outcome.status
            tx.note = f"{outcome.note} bytes={outcome.data}"
        finally:
            self._log(tx, status)

    async def _relay_get(self, channel: FrameChannel, get: BulkGet, tx: _Tx) -> Outcome:
        """Relay a get over a pooled proxy connection, given back afterwards (a whole
        get leaves it reusable: a viewer's ``.mtd`` and data cost no handshake).  A
        pooled one found dead before its first answer is replaced once by a new one."""
        reused: bool | None = None  # None: nothing checked out yet
        while True:
            try:
                if reused is None:
                    reused, proxy = await self.pool.checkout(tx.target)
                else:
                    log.info("%s proxy: pooled connection was dead, reconnecting", tx.target)
                    reused, proxy = False, await self.pool.connect(tx.target)
            except StarwrsError as err:
                status, payload = _refusal(err)
                ok = await channel.refuse(status, payload, serial=tx.serial)
                return Outcome(status if ok else None, "refused")
            try:
                outcome = await relay_get(
                    channel,
                    proxy,
                    get,
                    serial=tx.serial,
                    target=tx.target,
                    limits=self.limits,
                    stale_ok=reused,
                )
            finally:
                await self.pool.checkin(tx.target, proxy)
            if not outcome.stale:
                return outcome

    # -- housekeeping ----------------------------------------------------------------

    async def purge_forever(self, every: float = PURGE_EVERY) -> None:
        """Delete expired sessions and ticket results every *every* seconds."""
        while True:
            await trio.sleep(every)
            try:
                counts = await self.sessions.purge_expired()
            except Exception:
                log.exception("purging expired sessions failed")
                continue
            if counts.sessions or counts.tickets:
                log.info("purged %d session(s), %d ticket(s)", *counts)


#: the mechanism of each event that opens an exchange (bulk: the others)
_MECHANISM_OF: dict[type, Mechanism] = {
    Request: Mechanism.SYNC,
    Submit: Mechanism.ASYNC,
    Poll: Mechanism.POLL,
}


def _acronym(payload: bytes | None) -> str | None:
    """The acronym a request payload starts with (``GUC`` of ``GUC<>``), if any."""
    match = _ACRONYM.match(payload) if payload is not None else None
    return match.group(1).decode("ascii") if match else None


def _target_allowed(grant: peers.Grant, event: Event) -> bool:
    """Whether the peer may address the target of *event* (an opening frame)."""
    target = getattr(event, "target", None)
    return target is None or grant.allows_target(normalize_target(target))


def _not_dsp(target: str) -> None:
    """Mechanisms 1-3 are for proxies: the dispatcher's own messages are synchronous."""
    if target == DSP:
        raise StarwrsError(ErrorCode.UNKNOWN_MECHANISM, "target DSP takes synchronous requests")


def _own_error(answer: str | None, code: int) -> tuple[int, bytes]:
    """An error in the dispatcher's own message family: ``LONA<ERROR=6115>``."""
    return int(code), _encode(Message(answer, (Member("ERROR", str(int(code))),)))


async def _accept_loop(
    listener: TlsListener,
    dispatcher: Dispatcher,
    limiter: trio.CapacityLimiter,
    nursery: trio.Nursery,
    handshake_timeout: float,
) -> None:
    """Accept while below the connection limit; each connection gets a task of its own."""
    while True:
        token = object()
        try:
            limiter.acquire_on_behalf_of_nowait(token)
        except trio.WouldBlock:
            count_refused("dispatcher", "slots")  # the next connections wait in the backlog
            await limiter.acquire_on_behalf_of(token)
        try:
            stream = await listener.accept()
        except OSError as err:
            limiter.release_on_behalf_of(token)
            if err.errno in _ACCEPT_CAPACITY:
                log.warning("accept: %s; pausing", err)
                await trio.sleep(0.1)
                continue
            raise
        except BaseException:
            limiter.release_on_behalf_of(token)
            raise
        nursery.start_soon(_connection, stream, dispatcher, limiter, token, handshake_timeout)


async def _connection(
    stream: AnyTls,
    dispatcher: Dispatcher,
    limiter: trio.CapacityLimiter,
    token: object,
    handshake_timeout: float,
) -> None:
    try:
        try:
            with trio.fail_after(handshake_timeout):
                await stream.do_handshake()
        except (trio.TooSlowError, trio.BrokenResourceError, OSError) as err:
            count_handshake("dispatcher", False)
            log.info("TLS handshake failed: %s", err.__class__.__name__)
            await trio.aclose_forcefully(stream)
            return
        count_handshake("dispatcher", True)
        await dispatcher.serve_stream(stream, peers.peer_of(stream))
    except Exception:
        log.exception("connection task failed")
    finally:
        limiter.release_on_behalf_of(token)


async def serve_dispatcher(
    deployment: Deployment,
    *,
    index: int = 0,
    task_status: trio.TaskStatus[Sequence[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    clock: Clock | None = None,
    idle_timeout: float = IDLE_TIMEOUT,
) -> None:
    """Run dispatcher number *index* of *deployment* until cancelled.

    Args:
        deployment: addresses and limits; its state directory holds the PKI and
            ``sessions.db`` (shared with the other dispatchers).
        index: which of ``deployment.dispatchers`` to listen on.
        task_status: ``started`` is called with the bound listeners (port 0 in
            the address picks a free port; the listeners tell which).
        clock: wall-clock seconds for session and ticket times (tests).
        idle_timeout: seconds an idle client connection is kept.

    Raises:
        FileNotFoundError: the PKI has not been made (``ensure_pki``).
        OSError: the address cannot be bound.
    """
    limits = deployment.limits
    state_dir = Path(deployment.state_dir)
    pki = load_pki(state_dir, services=("dispatcher",))
    server_context = pki.internal_server_context("dispatcher")
    client_context = pki.internal_client_context("dispatcher")
    address = deployment.dispatchers[index]
    config = SessionConfig(
        idle_timeout=limits.session_idle,
        absolute_timeout=limits.session_absolute,
        ticket_ttl=limits.ticket_ttl,
    )
    async with open_session_store(
        state_dir / "sessions.db", config=config, clock=clock or time.time
    ) as sessions:
        set_sessions_source(sessions.count_live_now)  # one indexed COUNT per scrape

        async def renew() -> int:
            return await sessions.new_boot(index)

        serials = SerialSource(await renew(), renew)
        await _abandon_tickets(sessions, index, "its dispatcher stopped before the answer")
        pool = ProxyPool(deployment.proxies, client_context, limits)
        listeners = await trio.open_tcp_listeners(address.port, host=address.host)
        try:
            async with trio.open_nursery() as nursery:
                dispatcher = Dispatcher(
                    limits, sessions, pool, serials, nursery, idle_timeout=idle_timeout, index=index
                )
                limiter = trio.CapacityLimiter(max(1, limits.max_connections))
                for listener in listeners:
                    tls = TlsListener(listener, server_context)
                    nursery.start_soon(
                        _accept_loop, tls, dispatcher, limiter, nursery, limits.read_timeout
                    )
                nursery.start_soon(dispatcher.purge_forever)
                log.info("dispatcher %d listening on %s, boot %d", index, address, serials.boot_id)
                task_status.started(listeners)
        finally:
            with trio.CancelScope(shield=True):
                await _abandon_tickets(sessions, index, "the dispatcher stopped before the answer")
                await pool.aclose()
                for listener in listeners:
                    await trio.aclose_forcefully(listener)


async def _abandon_tickets(sessions: SessionStore, index: int, why: str) -> None:
    """Settle the tickets dispatcher *index* left pending: 7006, the work was lost.

    At start they are a crashed predecessor's; at stop, this process's own unfinished
    work (just cancelled).  The proxy may or may not have done the work: the reason
    says so, and the client decides whether to submit again.
    """
    code = ErrorCode.PROXY_UNAVAILABLE
    reason = f"{why}; the request may or may not have been carried out"
    try:
        count = await sessions.abandon_tickets(index, int(code), error_payload(code, reason))
    except Exception:  # the store is gone too: nothing more to save
        log.exception("could not settle the pending tickets of dispatcher %d", index)
        return
    if count:
        log.warning("dispatcher %d: %d pending ticket(s) answered 7006 (%s)", index, count, why)
