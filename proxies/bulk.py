"""Bulk transfers served by a proxy: one get and one put mechanism for every file.

Theory of operation
-------------------
PROTOCOL.md section 3: a bulk ``get`` names its resource as a metadata message
(``F<INBOXID=42,PART=M>``, ``RPT<REQUESTID=7>``), a ``put`` likewise
(``A<…,LOC=…>``, ``LOAD<CORP=…>``).  The framework parses and validates the
resource with the proxy's catalogue, checks the caller's row for its acronym
(:mod:`starwrs.runtime.peers`), and hands it to the handler registered with
:meth:`Proxy.serves_get` / :meth:`Proxy.accepts_put`:

* a **get** handler returns a :class:`Source` -- the resource's size, sha256 and
  a way to read it from an offset -- and this module streams it in frames of at
  most 1 MiB, reading the next chunk only once the previous frame was written
  (so a slow reader never makes the server buffer the file), the last frame with
  ``done`` and the sha256 of the whole resource.  A resume is a get with an offset.
  A cancel from the peer or a closed connection stops the stream; a get that
  ended with its ``done`` frame leaves the connection to the next exchange.
* a **put** handler returns a :class:`Sink` -- where the data is staged (a
  temporary file the handler chose) and what to do once it is complete.  Every
  frame's data is staged as it arrives; on the last frame the size and sha256 are
  checked (:class:`~starwrs.protocol.bulk.PutReceiver`, 7011 on mismatch) and only
  then is ``commit()`` called, whose message is the answer.  On a mismatch, a
  cancel, a close or any error, ``discard()`` runs and nothing is kept.

Errors a handler raises (:class:`~starwrs.grammar.errors.StarwrsError`) are
answered with their code before any data frame; anything else is the proxy's
general failure, logged, never a traceback on the wire.
"""

from __future__ import annotations

import abc
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from starwrs.grammar import Message, MessageError, parse, serialize
from starwrs.grammar.catalogue import validate
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.protocol import BulkData, BulkGet, BulkPut, ProtocolError, Response
from starwrs.protocol.bulk import PutReceiver
from starwrs.protocol.control import MAX_DATA
from starwrs.runtime import peers
from starwrs.runtime.channel import FrameChannel, PeerGone, ReadTimeout

if TYPE_CHECKING:
    from starwrs.proxies.framework import Caller, Proxy

__all__ = ["FileSink", "FileSource", "GetHandler", "PutHandler", "Sink", "Source", "serve_bulk"]

log = logging.getLogger("starwrs.proxy")

#: the transfer id this server gives every transfer (one at a time per connection)
_TRANSFER = 1
#: bytes a get reads on the trio thread (from the page cache: microseconds, less
#: than the hand-off to a worker thread and back); larger reads go to a thread
INLINE_READ = 64 * 1024


@dataclass(frozen=True, slots=True)
class Source:
    """A resource a get reads: its size, its sha256 and its bytes from an offset.

    Args:
        size: total bytes.
        sha256: hex SHA-256 of the whole resource.
        read: ``read(offset, n)`` returns up to *n* bytes at *offset* (called on
            a worker thread).
    """

    size: int
    sha256: str
    read: Callable[[int, int], bytes]


class FileSource:
    """A :class:`Source` over a file on disk (its sha256 given or computed once)."""

    @staticmethod
    def of(path: Path, sha256: str | None = None) -> Source:
        size = path.stat().st_size
        digest = sha256 or _file_sha256(path)

        def read(offset: int, n: int) -> bytes:
            with path.open("rb") as file:
                file.seek(offset)
                return file.read(n)

        return Source(size, digest, read)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Sink(abc.ABC):
    """Where a put's data goes: staged as it arrives, committed only when whole.

    Subclass it or use :class:`FileSink`.
    """

    @abc.abstractmethod
    async def write(self, data: bytes | memoryview) -> None:
        """Stage one frame's data."""

    @abc.abstractmethod
    async def commit(self) -> Message:
        """The data is complete and checked: keep it; return the answer message."""

    @abc.abstractmethod
    async def discard(self) -> None:
        """The transfer failed: forget everything staged."""


class FileSink(Sink):
    """Stage a put into *staging* (a path the handler chose), then call *on_complete*.

    *on_complete(path)* moves or loads the staged file and returns the answer;
    the staging file is removed afterwards whatever happens.
    """

    def __init__(self, staging: Path, on_complete: Callable[[Path], Awaitable[Message]]) -> None:
        self.staging = staging
        self.on_complete = on_complete
        self._file = staging.open("wb")

    async def write(self, data: bytes | memoryview) -> None:
        await trio.to_thread.run_sync(self._file.write, data)

    async def commit(self) -> Message:
        def close() -> None:
            self._file.flush()
            self._file.close()

        await trio.to_thread.run_sync(close)
        try:
            return await self.on_complete(self.staging)
        finally:
            self.staging.unlink(missing_ok=True)

    async def discard(self) -> None:
        self._file.close()
        self.staging.unlink(missing_ok=True)


GetHandler = Callable[["Caller", Any], Awaitable[Source]]
PutHandler = Callable[["Caller", Any, BulkPut], Awaitable[Sink]]


async def serve_bulk(
    proxy: Proxy, channel: FrameChannel, event: BulkGet | BulkPut, caller: Caller
) -> None:
    """Serve one bulk get or put on *channel*.

    Afterwards ``channel.reusable`` says whether the connection may carry another
    exchange (a get that ended with its ``done`` frame) or must be closed.
    """
    answer_name, typed, refusal = _resource(proxy, caller, event)
    if refusal is not None:
        await channel.send(Response(refusal[0], refusal[1], event.serial))
        return
    try:
        if isinstance(event, BulkGet):
            getter = proxy.getters[typed.ACRONYM]
            source = await getter(caller, typed)
        else:
            putter = proxy.putters[typed.ACRONYM]
            sink = await putter(caller, typed, event)
    except StarwrsError as err:
        await channel.send(Response(int(err.code), _error(answer_name, err.code), event.serial))
        return
    except Exception:
        log.exception("%s bulk handler for %s failed", proxy.service, typed.ACRONYM)
        code = proxy.general_failure
        await channel.send(Response(int(code), _error(answer_name, code), event.serial))
        return
    if isinstance(event, BulkGet):
        await _stream(channel, event, source, answer_name)
    else:
        await _receive(channel, event, sink, answer_name, proxy)


def _resource(
    proxy: Proxy, caller: Caller, event: BulkGet | BulkPut
) -> tuple[str | None, Any, tuple[int, bytes] | None]:
    """Parse and validate the resource; (answer acronym, typed, refusal or None)."""
    table = proxy.getters if isinstance(event, BulkGet) else proxy.putters
    try:
        message = parse(event.resource)
    except MessageError as err:
        return None, None, (int(err.code), _error(None, err.code))
    acronym = message.acronym
    answer = proxy.bulk_answers.get(acronym or "", acronym)
    if caller.peer is not None and not peers.allows(caller.peer, proxy.name, acronym):
        return answer, None, (int(ErrorCode.NOT_ENTITLED), _error(answer, ErrorCode.NOT_ENTITLED))
    if acronym not in table:
        code = ErrorCode.NO_VALID_REQUEST
        return answer, None, (int(code), _error(answer, code))
    try:
        typed = validate(message, proxy.service)
    except MessageError as err:
        return answer, None, (int(err.code), _error(answer, err.code))
    return answer, typed, None


def _error(answer: str | None, code: int) -> bytes:
    from starwrs.proxies.framework import error_message

    return serialize(error_message(answer, code)).encode("utf-8")


async def _stream(channel: FrameChannel, get: BulkGet, source: Source, answer: str | None) -> None:
    if not 0 <= get.offset <= source.size:
        code = ErrorCode.MALFORMED_FRAME
        await channel.send(Response(int(code), _error(answer, code), get.serial))
        return
    offset = get.offset
    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            # a cancel or a close from the peer stops the stream; the next exchange,
            # opened once the last frame arrived, is held for the frame loop
            if await channel.watch_get(idle_timeout=24 * 3600) is not None:
                nursery.cancel_scope.cancel()

        nursery.start_soon(watch)
        while True:
            n = min(MAX_DATA, source.size - offset)
            if n > INLINE_READ:
                data = await trio.to_thread.run_sync(source.read, offset, n)
            else:  # a metadata file, a news item: cheaper than a trip to a thread
                data = source.read(offset, n) if n else b""
            if len(data) != n:
                raise OSError(f"the resource shrank at offset {offset}")
            done = offset + n >= source.size
            await channel.send(
                BulkData(
                    _TRANSFER,
                    offset,
                    source.size,
                    data,
                    done=done,
                    sha256=source.sha256 if done else None,
                    serial=get.serial,
                )
            )
            offset += n
            if done:
                break
        nursery.cancel_scope.cancel()


async def _receive(
    channel: FrameChannel, put: BulkPut, sink: Sink, answer: str | None, proxy: Proxy
) -> None:
    receiver = PutReceiver(put)
    try:
        while not receiver.complete:
            event = await channel.receive()
            if not isinstance(event, BulkData):  # a cancel, or the peer went away
                await sink.discard()
                return
            await sink.write(receiver.feed(event))
    except ProtocolError as err:
        await sink.discard()
        await channel.send(Response(int(err.code), _error(answer, err.code), put.serial))
        return
    except (PeerGone, ReadTimeout):
        await sink.discard()
        return
    except BaseException:
        with trio.CancelScope(shield=True):
            await sink.discard()
        raise
    try:
        message = await sink.commit()
    except StarwrsError as err:
        await channel.send(Response(int(err.code), _error(answer, err.code), put.serial))
        return
    except Exception:
        log.exception("%s put commit for %s failed", proxy.service, put.resource[:40])
        code = proxy.general_failure
        await channel.send(Response(int(code), _error(answer, code), put.serial))
        return
    value = message.get("ERROR")
    status = int(value) if isinstance(value, str) and value.isdigit() else 0
    await channel.send(Response(status, serialize(message).encode("utf-8"), put.serial))
