"""Client side of bulk transfers between services: one get and one put for every file.

Theory of operation
-------------------
Every file one starwrs server hands another -- a report to the inbox, priced calls
to a partition, a corp's calls from one partition to another, a report to
``starwrs report`` -- travels as a bulk transfer (PROTOCOL.md section 3) over a
mutual-TLS channel of its own (:meth:`~starwrs.runtime.pool.ProxyPool.connect`):

* :func:`fetch` sends a ``get`` (from an offset, for a resume), appends each data
  frame to a file and checks the whole resource's sha256 on the last frame
  (:class:`~starwrs.protocol.bulk.Download`, 7011 on mismatch); an error answer
  in place of data is raised as :class:`TransferRefused`;
* :func:`upload` announces a ``put`` with the file's size and sha256, streams it
  in frames of at most 1 MiB, read one at a time, and returns the receiver's
  final answer -- which the receiver sends only after its own commit.

Both run under the caller's deadlines; a broken peer surfaces as the channel's
``PeerGone`` / ``ReadTimeout``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import trio
from starwrs.grammar.errors import ErrorCode
from starwrs.protocol import BulkData, BulkPut, ProtocolError, Response
from starwrs.protocol.bulk import Download
from starwrs.protocol.control import MAX_DATA
from starwrs.runtime.channel import FrameChannel

__all__ = ["TransferRefused", "fetch", "file_sha256", "upload"]


class TransferRefused(Exception):
    """The other side answered the transfer with an error status."""

    def __init__(self, status: int, payload: bytes) -> None:
        super().__init__(f"{status}: {payload[:200].decode('utf-8', 'replace')}")
        self.status = status
        self.payload = payload


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


async def fetch(
    channel: FrameChannel, resource: str, out: Path, *, target: str = "", key: str = ""
) -> tuple[int, str]:
    """Get *resource* into file *out* (appending after what it holds); (size, sha256).

    Raises:
        TransferRefused: the server answered an error instead of data.
        ProtocolError: 7009 / 7011 the data does not fit or does not match.
    """
    have = out.stat().st_size if out.exists() else 0  # noqa: ASYNC240 - one stat
    hasher = hashlib.sha256()
    if have:
        hasher = await trio.to_thread.run_sync(_prefix_hash, out, have)
    download = Download.resume(resource, have, hasher, target=target, key=key)
    await channel.send(download.request())
    with out.open("ab") as file:
        while True:
            event = await channel.receive()
            if isinstance(event, Response):
                raise TransferRefused(event.status, event.payload)
            if not isinstance(event, BulkData):
                what = type(event).__name__
                raise ProtocolError(ErrorCode.MALFORMED_FRAME, f"unexpected {what} in a get")
            data = download.feed(event)
            file.write(data)
            if download.done:
                break
    return download.offset, hasher.hexdigest()


def _prefix_hash(path: Path, size: int) -> hashlib._Hash:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        remaining = size
        while remaining:
            block = file.read(min(1 << 20, remaining))
            if not block:
                break
            digest.update(block)
            remaining -= len(block)
    return digest


async def upload(
    channel: FrameChannel,
    resource: str,
    path: Path,
    *,
    target: str = "",
    key: str = "",
    answer_timeout: float | None = None,
) -> Response:
    """Put file *path* as *resource*; return the receiver's final answer.

    *answer_timeout* bounds the wait for that answer after the last frame (the
    receiver commits first: a large load takes a while); default the channel's.
    """
    size = path.stat().st_size  # noqa: ASYNC240 - one stat
    sha256 = await trio.to_thread.run_sync(file_sha256, path)
    await channel.send(BulkPut(resource, size, sha256, target=target, key=key))
    with path.open("rb") as file:
        offset = 0
        while True:
            data = file.read(MAX_DATA)
            done = offset + len(data) >= size
            await channel.send(
                BulkData(1, offset, size, data, done=done, sha256=sha256 if done else None)
            )
            offset += len(data)
            if done:
                break
    while True:
        event = await channel.receive(answer_timeout)
        if isinstance(event, Response):
            return event
