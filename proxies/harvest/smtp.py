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

  The message itself is read by :func:`read_data`, not by aiosmtpd's own DATA loop
  (:class:`Listener` overrides ``smtp_DATA`` and nothing else).  aiosmtpd reads DATA a
  line at a time through a stream buffer of one SMTP line (1001 bytes), so the
  transport pauses and resumes every 2 KiB: a 26 MB batch of 50,000 records cost the
  listener's thread ~1 s of CPU, 20 us a record, three times what verifying,
  decrypting, reading and rating it cost.  :func:`read_data` reads to the end mark in
  blocks of up to :data:`DATA_BUFFER` bytes and keeps aiosmtpd's rules: the end is a
  line ``.``; a line's leading dot is removed (RFC 5321 4.5.2); more than the size
  limit is answered 552 after the end mark, and nothing is kept.  One rule is not
  kept: a line longer than 1000 characters is taken, not answered 500 -- RFC 5321
  4.5.3.1 asks servers to impose no such limit where they can, the size limit still
  bounds a message, and checking each line would cost as much as the reading.

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
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax
from starwrs.collector.mailer import dot_starts_a_line
from starwrs.proxies.harvest.intake import Answer, Harvest
from starwrs.runtime.config import Address

__all__ = ["IDLE", "MAX_MESSAGE", "Listener", "read_data", "serve_smtp", "server_tls", "unstuff"]

log = logging.getLogger("starwrs.harvest")

#: the largest message the listener takes (a batch of 5000 records is ~1 MiB)
MAX_MESSAGE = 64 * 1024 * 1024
#: seconds a session may sit idle between commands
IDLE = 300.0
#: the stream buffer while a message is read (:func:`read_data`)
DATA_BUFFER = 1 << 20


def unstuff(content: bytes) -> bytes:
    """*content* with the leading dot of every line that has one removed (RFC 5321
    4.5.2, the sender's transparency; lines end with CRLF, as aiosmtpd reads them)."""
    if not dot_starts_a_line(content, b"\r\n"):
        return content
    return (b"\r\n" + content).replace(b"\r\n.", b"\r\n")[2:]


async def read_data(reader: asyncio.StreamReader, *, size_limit: int | None) -> bytes | None:
    """Read one message's DATA from *reader*, up to and with its end line ``.``: the
    content (dots unstuffed, without the end line), or None when the lines add up to
    more than *size_limit* bytes (then nothing is kept, and the rest is read and
    dropped up to the end line, as aiosmtpd does before it answers 552).  Reads exactly
    to the end line, so a pipelined command after it stays in *reader*.

    Raises:
        asyncio.IncompleteReadError: the stream ended before the end line.
    """
    pieces: list[bytes] = []
    size, too_much = 0, False
    before = b"\r\n"  # the two bytes before the next piece (a line before the first)
    # aiosmtpd's limit is one SMTP line: the transport would pause every 2 KiB
    saved: int = reader._limit  # type: ignore[attr-defined]
    reader._limit = max(saved, DATA_BUFFER)  # type: ignore[attr-defined]
    try:
        while True:
            try:
                piece = await reader.readuntil(b".\r\n")
                ended = (before + piece[-5:])[-5:-3] == b"\r\n"  # the line "."
            except asyncio.LimitOverrunError as err:  # no ".\r\n" in DATA_BUFFER bytes
                piece, ended = await reader.read(err.consumed), False
                if not piece:
                    raise asyncio.IncompleteReadError(b"", None) from None
            body = piece[:-3] if ended else piece
            size += len(body)
            too_much = size_limit is not None and 0 < size_limit < size
            if too_much:
                pieces.clear()  # drained to the end line, nothing kept
            else:
                pieces.append(body)
            before = (before + piece[-2:])[-2:]
            if ended:
                break
    finally:
        reader._limit = saved  # type: ignore[attr-defined]
    return None if too_much else unstuff(b"".join(pieces))


class Listener(SMTP):
    """aiosmtpd's SMTP session with its DATA read by :func:`read_data` (the module
    docstring says why); every other command, hook and answer is aiosmtpd's."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            content = await read_data(self._reader, size_limit=self.data_size_limit)
        except asyncio.CancelledError:
            log.info("harvest smtp: connection lost during DATA")
            self._writer.close()
            raise
        except asyncio.IncompleteReadError:  # the connection closed mid-message
            self._writer.close()
            return
        if content is None:
            await self.push("552 Error: Too much mail data")
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)


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
        return Listener(
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
