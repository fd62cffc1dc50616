"""The harvest's inbound SMTP listener: aiosmtpd on a thread of its own, bridged to trio.

Theory of operation
-------------------
aiosmtpd is an asyncio server and the harvest a trio program, so the listener runs
its own asyncio event loop on a dedicated thread (as aiosmtpd's ``Controller`` does)
and every decision is made on the trio side:

* **STARTTLS** with the deployment's web certificate (``server.pem`` or the
  operator's ``--cert``), TLS 1.2 at least, and *required*: MAIL before STARTTLS is
  answered 530.  Messages above :data:`MAX_MESSAGE` bytes are refused by aiosmtpd
  (552) before they are stored; a connection idle for :data:`IDLE` seconds is closed.
* **RCPT** -- a recipient that is not the harvest mailbox is refused (550) and the
  attempt recorded in the audit trail (:meth:`~.intake.Harvest.refuse_recipient`).
* **DATA** -- the message goes to :meth:`~.intake.Harvest.receive` through
  ``trio.from_thread.run`` (on one of the loop's executor threads, so other sessions
  go on), and its :class:`~.intake.Answer` is the SMTP reply: 250 once the harvest
  owns the batch, 554 for a refusal (with the reason), 451 to try again.

:func:`serve_smtp` binds, reports the bound port through ``task_status`` and serves
until cancelled; cancelling stops the loop and joins the thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import threading
from pathlib import Path
from typing import Any

import trio
from aiosmtpd.smtp import SMTP, Envelope, Session
from starwrs.proxies.harvest.intake import Answer, Harvest
from starwrs.runtime.config import Address

__all__ = ["IDLE", "MAX_MESSAGE", "serve_smtp", "server_tls"]

log = logging.getLogger("starwrs.harvest")

#: the largest message the listener takes (a batch of 5000 records is ~1 MiB)
MAX_MESSAGE = 64 * 1024 * 1024
#: seconds a session may sit idle between commands
IDLE = 300.0


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    """The listener's STARTTLS context (no client certificates, TLS 1.2+)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    context.load_cert_chain(str(cert), str(key))
    return context


def _peer(session: Session) -> str:
    peer: Any = session.peer
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "-")


class _Handler:
    """aiosmtpd's handler: every hook hands over to trio."""

    def __init__(self, harvest: Harvest, token: trio.lowlevel.TrioToken) -> None:
        self.harvest = harvest
        self.token = token

    async def _trio(self, fn: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        call = functools.partial(trio.from_thread.run, functools.partial(fn, **kwargs))
        return await loop.run_in_executor(None, functools.partial(call, trio_token=self.token))

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        del server, options
        if not self.harvest.addressed_to_us(address):
            await self._trio(
                self.harvest.refuse_recipient,
                channel="smtp",
                peer=_peer(session),
                mail_from=str(envelope.mail_from or ""),
                rcpt=address,
            )
            return f"550 5.1.1 <{address[:100]}>: not the harvest mailbox"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        del server
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogateescape")
        try:
            answer: Answer = await self._trio(
                self.harvest.receive,
                raw=data,
                channel="smtp",
                peer=_peer(session),
                mail_from=str(envelope.mail_from or ""),
                rcpts=tuple(envelope.rcpt_tos),
            )
        except Exception:  # the trio side is stopping, or failed unexpectedly
            log.exception("harvest: a message could not be handled")
            return "451 4.3.0 the harvest cannot take messages now; try again later"
        return f"{answer.code} {answer.text}"


async def serve_smtp(
    harvest: Harvest,
    address: Address,
    tls: ssl.SSLContext,
    *,
    hostname: str = "starwrs-harvest",
    max_message: int = MAX_MESSAGE,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on *address* (port 0: any free one) until cancelled; reports the port."""
    handler = _Handler(harvest, trio.lowlevel.current_trio_token())
    loop = asyncio.SelectorEventLoop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname=hostname,
            ident="starwrs harvest",
            tls_context=tls,
            require_starttls=True,
            data_size_limit=max_message,
            decode_data=False,
            timeout=IDLE,
            loop=loop,
        )

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(
                loop.create_server(factory, host=address.host, port=address.port)
            )
        except BaseException as err:
            holder["error"] = err
            ready.set()
            loop.close()
            return
        holder["port"] = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.run_until_complete(server.wait_closed())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    thread = threading.Thread(target=main, name="harvest-smtp", daemon=True)
    thread.start()
    await trio.to_thread.run_sync(ready.wait)
    if "error" in holder:
        raise OSError(f"the harvest SMTP listener cannot listen on {address}: {holder['error']}")
    try:
        task_status.started(int(holder["port"]))
        await trio.sleep_forever()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(thread.join, 30.0)
