"""Bulk transfer helpers: slicing a resource into data frames, checking what arrives.

Theory of operation
-------------------
The :class:`~starwrs.protocol.connection.Connection` checks that a transfer's data
frames fit together (one transfer id, no gap, no overlap, constant ``total``, the
last one ``done``).  What it cannot check alone is the sha256 of the *whole*
resource: a resumed get passes only the tail of the resource through the
connection.  The objects here hold that state, sans-IO like the rest:

* :func:`data_frames` -- the sender's side (a server answering a get, a client
  uploading a put): a resource in memory, from an offset, as
  :class:`~starwrs.protocol.events.BulkData` events of at most 1 MiB each, the last
  with ``done`` and the resource's sha256;
* :class:`Download` -- the client's side of a get: makes the
  :class:`~starwrs.protocol.events.BulkGet` (from the offset already held, for a
  resume), hashes the prefix it was given and every frame that follows, and
  refuses the last frame with 7011 if the whole does not match;
* :class:`PutReceiver` -- the server's side of a put: hashes what arrives and, on
  the last frame, checks the size and sha256 the put announced -- 7011 on
  mismatch.  It keeps no data: the caller stages each frame's data and commits it
  only after the last frame was accepted; on 7011 (or a cancel, or a close) it
  discards the staging, so nothing is kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Protocol

from starwrs.protocol.control import MAX_DATA
from starwrs.protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from starwrs.protocol.events import BulkData, BulkGet, BulkPut
from starwrs.protocol.header import BytesLike

__all__ = ["Download", "Hasher", "PutReceiver", "data_frames", "put_request", "sha256_hex"]


class Hasher(Protocol):
    """What :class:`Download` needs of a ``hashlib.sha256()`` object."""

    def update(self, data: BytesLike, /) -> None: ...

    def hexdigest(self) -> str: ...


def sha256_hex(data: BytesLike) -> str:
    """The lowercase hex SHA-256 of *data*, as the last data frame carries it."""
    return hashlib.sha256(data).hexdigest()


def data_frames(
    transfer: int,
    resource: bytes,
    *,
    offset: int = 0,
    chunk_size: int = MAX_DATA,
    sha256: str | None = None,
) -> Iterator[BulkData]:
    """Slice *resource* from *offset* into data frames; the last one is ``done``.

    Args:
        transfer: the transfer id to put in every frame.
        resource: the whole resource.
        offset: where to start (a get's ``offset``; 0 for a put).
        chunk_size: data bytes per frame, 1..1 MiB.
        sha256: the resource's hex sha256 if already known (else computed).

    Yields:
        :class:`BulkData` events, at least one (an empty or fully held resource
        gives one empty ``done`` frame).

    Raises:
        RemoteProtocolError: 7009 *offset* beyond the end of the resource.
        LocalProtocolError: 7009 *chunk_size* outside 1..1 MiB.
    """
    total = len(resource)
    if not 0 <= offset <= total:
        raise RemoteProtocolError(
            ErrorCode.MALFORMED_FRAME, f"offset {offset} beyond the resource's {total} bytes"
        )
    if not 0 < chunk_size <= MAX_DATA:
        raise LocalProtocolError(ErrorCode.MALFORMED_FRAME, f"chunk size {chunk_size}")
    digest = sha256 if sha256 is not None else sha256_hex(resource)
    view = memoryview(resource)
    while total - offset > chunk_size:
        yield BulkData(transfer, offset, total, bytes(view[offset : offset + chunk_size]))
        offset += chunk_size
    yield BulkData(transfer, offset, total, bytes(view[offset:]), True, digest)


def put_request(resource: str, data: BytesLike, *, target: str = "", key: str = "") -> BulkPut:
    """The :class:`BulkPut` announcing an upload of *data* (size and sha256 filled in)."""
    return BulkPut(resource, len(data), sha256_hex(data), target, key)


class Download:
    """The client's side of one bulk get, resumable.

    Args:
        resource: the resource to fetch (a metadata message, e.g. ``F<INBOXID=42>``).
        have: the bytes of the resource already held (a resume starts after them).
        target: target proxy of the get.
        key: session key of the get.
    """

    def __init__(
        self, resource: str, have: BytesLike = b"", *, target: str = "", key: str = ""
    ) -> None:
        self.resource = resource
        self.target = target
        self.key = key
        self.offset = len(have)
        self.total: int | None = None
        self.done = False
        self._hash: Hasher = hashlib.sha256(have)

    @classmethod
    def resume(
        cls, resource: str, offset: int, hasher: Hasher, *, target: str = "", key: str = ""
    ) -> Download:
        """Resume from *offset* with a sha256 object already fed the first *offset* bytes.

        For resources too large to keep in memory: hash the file's prefix once.
        """
        download = cls(resource, target=target, key=key)
        download.offset = offset
        download._hash = hasher
        return download

    def request(self) -> BulkGet:
        """The :class:`BulkGet` to send: from the offset held so far."""
        return BulkGet(self.resource, self.offset, self.target, self.key)

    def feed(self, event: BulkData) -> bytes | memoryview:
        """Account for one data frame; return its data for the caller to append.

        Raises:
            RemoteProtocolError: 7009 a frame that does not continue the resource
                (offset or total), 7011 the last frame's sha256 does not match the
                whole resource.
        """
        if self.done or event.offset != self.offset:
            raise RemoteProtocolError(
                ErrorCode.MALFORMED_FRAME,
                f"data at offset {event.offset}, {self.offset} bytes are held",
            )
        if self.total is not None and event.total != self.total:
            raise RemoteProtocolError(ErrorCode.MALFORMED_FRAME, "the resource changed size")
        self.total = event.total
        data = event.data
        self._hash.update(data)
        self.offset += len(data)
        if event.done:
            self.done = True
            if self._hash.hexdigest() != event.sha256:
                raise RemoteProtocolError(
                    ErrorCode.CHECKSUM_MISMATCH, "the resource's sha256 does not match"
                )
        return data


class PutReceiver:
    """The server's side of one bulk put: checks size and sha256 at the end.

    Args:
        put: the :class:`BulkPut` that opened the transfer.
    """

    def __init__(self, put: BulkPut) -> None:
        self.size = put.size
        self.sha256 = put.sha256
        self.received = 0
        self.complete = False
        self._hash = hashlib.sha256()

    def feed(self, event: BulkData) -> bytes | memoryview:
        """Account for one data frame; return its data for the caller to stage.

        Raises:
            RemoteProtocolError: 7009 data past the announced size or out of order;
                7011 on the last frame when the size or the sha256 differ from the
                announced ones.  Either way the caller discards what it staged.
        """
        data = event.data
        if self.complete or event.offset != self.received:
            raise RemoteProtocolError(
                ErrorCode.MALFORMED_FRAME,
                f"put data at offset {event.offset}, {self.received} bytes received",
            )
        self.received += len(data)
        if self.received > self.size:
            raise RemoteProtocolError(
                ErrorCode.CHECKSUM_MISMATCH, f"more than the announced {self.size} bytes"
            )
        self._hash.update(data)
        if event.done:
            self.complete = True
            if self.received != self.size or self._hash.hexdigest() != self.sha256:
                raise RemoteProtocolError(
                    ErrorCode.CHECKSUM_MISMATCH,
                    "uploaded data does not match the announced size and sha256",
                )
        return data
