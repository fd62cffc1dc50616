"""Bulk transfer relay (mechanism 3): client <-> dispatcher <-> proxy, frame at a time.

Theory of operation
-------------------
Seed 001: bulk transfer is "unlimited in size", "permits cancellation during a
transfer and allows ... resumption".  The dispatcher stands between the client
(the web server) and the proxy on two connections of their own and passes frames
on one at a time, so its memory stays flat whatever the resource's size: at
most one frame (<= 1 MiB of data) is held, and the next one is not read from the
proxy before the previous one was written to the client (TCP's flow control then
slows the proxy down to the client's pace).  Frames are re-encoded on the way, so
every one the client sees carries the dispatcher's serial, and every one the
proxy sees the user's identity.

Two tasks per transfer, one per direction:

* **get** -- the *pump* reads data frames from the proxy (each within
  ``proxy_timeout``) and writes them to the client, until the ``done`` frame or
  an error answer (the proxy's, or 7006/7007 when the proxy breaks or stalls,
  which the client receives in place of the next data frame).  The *watcher*
  reads the client: a ``cancel``, a close or a broken connection stops the pump,
  and the proxy is told -- the cancel is passed on when the proxy's side allows
  one (after its first data frame), and its connection is closed either way.
  Anything else the watcher reads is the client's next exchange, opened once
  the ``done`` frame reached it: it is held for the frame loop
  (:meth:`FrameChannel.watch_get`).  A whole get leaves both connections reusable,
  so the proxy's may come from, and go back to, the dispatcher's pool.
* **put** -- the *upstream* task passes the client's data frames to the proxy
  (each within ``read_timeout``: a client that stalls is cut off) and a cancel
  likewise; the *downstream* task waits for the proxy's answer -- an early
  refusal at any time, the final answer within ``proxy_timeout`` of the last
  data frame -- and passes it back.

A resume is simply a new ``get`` with an offset, relayed like any other.  The
caller owns both connections and closes them afterwards; nothing here raises for
the peers' failures -- :class:`Outcome` says how the transfer ended.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass

import trio
from starwrs.grammar.errors import ErrorCode
from starwrs.protocol import (
    BulkCancel,
    BulkData,
    BulkGet,
    BulkPut,
    Event,
    ProtocolError,
    Response,
    State,
)
from starwrs.runtime.channel import FrameChannel, PeerGone, ReadTimeout
from starwrs.runtime.config import Limits
from starwrs.runtime.pool import error_payload

__all__ = ["Outcome", "relay_get", "relay_put"]


@dataclass(slots=True)
class Outcome:
    """How a relayed transfer ended.

    Attributes:
        status: the status the client was given (0 done, or an error code);
            None when it was given none (it cancelled or went away).
        note: ``done``, ``refused``, ``cancelled``, ``client gone``, ...
        data: bytes of resource data passed on.
    """

    status: int | None = None
    note: str = "done"
    data: int = 0
    #: a pooled proxy connection was dead before its first answer (nothing was
    #: passed on): the caller may try again on a fresh one
    stale: bool = False


async def relay_get(
    client: FrameChannel,
    proxy: FrameChannel,
    request: BulkGet,
    *,
    serial: int,
    target: str,
    limits: Limits,
    stale_ok: bool = False,
) -> Outcome:
    """Relay one bulk get; *request* is what the proxy must see (identity, serial).

    Args:
        client: the server channel the get arrived on (state ``GET_SENDING``).
        proxy: an idle client channel to the proxy (fresh or pooled).
        request: the get to send to the proxy.
        serial: the serial every frame to the client carries.
        target: the proxy's target, for error reasons.
        limits: timeouts.
        stale_ok: *proxy* came from a pool: if it turns out dead before the first
            answer, say so (``Outcome.stale``) instead of failing the client.

    Returns:
        The :class:`Outcome`.  A whole get leaves both channels reusable
        (``client`` in ``GET_DONE``, or holding the next exchange's opening;
        ``proxy`` in ``IDLE``).
    """
    outcome = Outcome()
    try:
        await proxy.send(request)
    except PeerGone:
        if stale_ok:
            outcome.stale = True
            return outcome
        return await _fail(client, outcome, serial, ErrorCode.PROXY_UNAVAILABLE, target)
    pump_scope = trio.CancelScope()

    async def watch_client() -> None:
        event = await client.watch_get(math.inf, idle_timeout=math.inf)
        if event is None:  # the next exchange, opened once the last frame arrived
            return
        if outcome.status is not None:  # the transfer ended first; nothing to stop
            return
        pump_scope.cancel()
        if isinstance(event, BulkCancel):
            outcome.note = "cancelled"
            if proxy.conn.state is State.GET_RECEIVING and proxy.conn.transfer is not None:
                with trio.move_on_after(limits.read_timeout), _QUIETLY:
                    await proxy.send(BulkCancel(proxy.conn.transfer))
        else:
            outcome.note = "client gone"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_client)
        with pump_scope:
            await _pump_get(client, proxy, outcome, serial, target, limits, stale_ok)
        if not pump_scope.cancelled_caught:  # else the watcher is passing the cancel on
            nursery.cancel_scope.cancel()
    return outcome


async def _pump_get(
    client: FrameChannel,
    proxy: FrameChannel,
    outcome: Outcome,
    serial: int,
    target: str,
    limits: Limits,
    stale_ok: bool,
) -> None:
    first = True
    while True:
        try:
            event = await proxy.receive(limits.proxy_timeout)
        except ReadTimeout:
            await _fail(client, outcome, serial, ErrorCode.PROXY_TIMEOUT, target)
            return
        except PeerGone:
            if first and stale_ok:  # a pooled connection the proxy had dropped
                outcome.stale = True
                return
            await _fail(client, outcome, serial, ErrorCode.PROXY_UNAVAILABLE, target)
            return
        except ProtocolError:
            await _fail(client, outcome, serial, ErrorCode.PROXY_UNAVAILABLE, target)
            return
        first = False
        if isinstance(event, BulkData):
            try:
                await client.send(dataclasses.replace(event, serial=serial))
            except PeerGone:
                outcome.note = "client gone"
                return
            outcome.data += len(event.data)
            if event.done:
                outcome.status = 0
                return
        elif isinstance(event, Response):
            outcome.note = "refused"
            await _answer(client, outcome, Response(event.status, event.payload, serial))
            return
        else:  # pragma: no cover - the state table allows nothing else mid-get
            await _fail(client, outcome, serial, ErrorCode.PROXY_UNAVAILABLE, target)
            return


async def relay_put(
    client: FrameChannel,
    proxy: FrameChannel,
    request: BulkPut,
    *,
    serial: int,
    target: str,
    limits: Limits,
) -> Outcome:
    """Relay one bulk put; *request* is what the proxy must see (identity, serial).

    Args:
        client: the server channel the put arrived on (state ``PUT_RECEIVING``).
        proxy: a fresh client channel to the proxy.
        request: the put to send to the proxy.
        serial: the serial the answer to the client carries.
        target: the proxy's target, for error reasons.
        limits: timeouts.

    Returns:
        The :class:`Outcome`.
    """
    outcome = Outcome()
    try:
        await proxy.send(request)
    except PeerGone:
        return await _fail(client, outcome, serial, ErrorCode.PROXY_UNAVAILABLE, target)
    answer_scope = trio.CancelScope()  # its deadline is set once the upload is complete

    async def upstream(cancel_scope: trio.CancelScope) -> None:
        while True:
            try:
                event = await client.receive(limits.read_timeout, idle_timeout=limits.read_timeout)
            except ProtocolError as err:
                outcome.note = "client error"
                await client.refuse(err.code, error_payload(err.code, err.message), serial=serial)
                outcome.status = int(err.code)
                cancel_scope.cancel()
                return
            except (ReadTimeout, PeerGone, trio.ClosedResourceError):
                outcome.note = "client gone"
                cancel_scope.cancel()
                return
            if isinstance(event, BulkData):
                try:
                    await proxy.send(event)
                except PeerGone:  # downstream hears of it from the proxy's side
                    answer_scope.deadline = trio.current_time() + limits.proxy_timeout
                    return
                outcome.data += len(event.data)
                if event.done:
                    answer_scope.deadline = trio.current_time() + limits.proxy_timeout
                    return
            else:  # a cancel, or the client closed
                outcome.note = "cancelled" if isinstance(event, BulkCancel) else "client gone"
                if isinstance(event, BulkCancel):
                    with trio.move_on_after(limits.read_timeout), _QUIETLY:
                        await proxy.send(BulkCancel(event.transfer))
                cancel_scope.cancel()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(upstream, nursery.cancel_scope)
        event: Event | None = None
        with answer_scope:
            try:
                event = await proxy.receive(math.inf)
            except (PeerGone, ProtocolError):
                event = None
        if answer_scope.cancelled_caught:
            await _fail(client, outcome, serial, ErrorCode.PROXY_TIMEOUT, target)
        elif isinstance(event, Response):
            outcome.note = "done" if event.status == 0 else "refused"
            await _answer(client, outcome, Response(event.status, event.payload, serial))
        else:
            await _fail(client, outcome, serial, ErrorCode.PROXY_UNAVAILABLE, target)
        nursery.cancel_scope.cancel()
    return outcome


async def _answer(client: FrameChannel, outcome: Outcome, answer: Response) -> None:
    try:
        await client.send(answer)
    except (PeerGone, ProtocolError):
        outcome.note = "client gone"
        return
    outcome.status = answer.status


async def _fail(
    client: FrameChannel, outcome: Outcome, serial: int, code: ErrorCode, target: str
) -> Outcome:
    """Tell the client the proxy failed (7006 broke, 7007 stalled), if it still listens."""
    why = "did not go on in time" if code == ErrorCode.PROXY_TIMEOUT else "broke off"
    reason = f"{target} proxy {why}"
    outcome.note = reason
    if await client.refuse(code, error_payload(code, reason), serial=serial):
        outcome.status = int(code)
    return outcome


#: best-effort messages to a peer being abandoned
_QUIETLY = contextlib.suppress(PeerGone, ProtocolError)
