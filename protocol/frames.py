"""Sans-IO frame reader and writer: bytes in, :class:`Frame` events out, and back.

Theory of operation
-------------------
A frame is the common header (:mod:`starwrs.protocol.header`), the session key and
the payload, ``length`` bytes in all.  :class:`FrameReader` is fed whatever the
transport delivered (``receive_data``), in any chunking, and hands out whole
frames (``next_event``), in the style of h11:

1. Until 24 bytes are buffered it answers :data:`NEED_DATA`.
2. With 24 bytes it sizes the frame (:func:`~starwrs.protocol.header.check_prefix`):
   wrong version, unknown mechanism, ``length < 24 + klen`` or ``length`` above the
   configured maximum are rejected *here*, from the 24 bytes alone -- a frame that
   declares 4 GiB costs 24 bytes of buffer, never more.
3. Once ``length`` bytes are buffered it parses the header and key and returns
   ``Frame(header, payload)``.
4. ``receive_data(b"")`` marks the end of the stream: at a frame boundary
   ``next_event`` returns :class:`ConnectionClosed` (forever after); in the middle
   of a frame it raises 7009.

Errors are sticky: after a :class:`RemoteProtocolError` every further
``next_event`` raises again, because a byte stream cannot be resynchronised once a
frame boundary is lost.

:class:`ReceiveBuffer` holds the unread bytes as a queue of immutable chunks, so a
large chunk is kept as it arrived (no ``bytearray += data``) and a frame's payload
is copied exactly once, by ``take`` -- or not at all when a chunk is exactly that
payload.  Small chunks are coalesced into one ``bytearray`` first so a peer that
trickles bytes one at a time cannot make us hold a million tiny objects.  Nothing is
ever deleted from the front of a buffer.

:class:`FrameWriter` is the other direction: ``send(Frame)`` checks the frame
(header fields, ``length`` consistency, the maximum size) and returns its bytes.
:func:`decode_frame` reads a buffer that must hold exactly one frame -- the body of
the web server's ``POST /dispatch`` (PROTOCOL.md section 1), where anything else is
an HTTP 400.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Literal

from starwrs.protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from starwrs.protocol.events import NEED_DATA, ConnectionClosed, Frame, NeedData
from starwrs.protocol.header import (
    DEFAULT_MAX_FRAME_SIZE,
    HEADER_SIZE,
    BytesLike,
    Header,
    check_prefix,
    pack_header,
    parse_header,
)

__all__ = ["FrameReader", "FrameWriter", "ReceiveBuffer", "decode_frame", "encode_frame"]

#: chunks shorter than this are coalesced into the buffer's tail bytearray
_COALESCE = 4096


class ReceiveBuffer:
    """Received bytes not consumed yet: a queue of immutable chunks and a small tail.

    Logically the content is ``chunks[0][offset:] + chunks[1] + ... + tail`` (when
    there are no chunks, ``tail[offset:]``).  ``take(n)`` removes and returns the
    first *n* bytes with one copy at most.
    """

    __slots__ = ("_chunks", "_offset", "_size", "_tail")

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._tail = bytearray()
        self._offset = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, data: BytesLike) -> None:
        """Add *data* at the end (kept as is when it is a large ``bytes``)."""
        n = len(data)
        if not n:
            return
        if n < _COALESCE:
            self._tail += data
            if len(self._tail) >= _COALESCE:
                self._flush_tail()
        else:
            if self._tail:
                self._flush_tail()
            self._chunks.append(data if type(data) is bytes else bytes(data))
        self._size += n

    def _flush_tail(self) -> None:
        tail = self._tail
        if self._chunks:
            self._chunks.append(bytes(tail))
        else:
            self._chunks.append(bytes(tail[self._offset :]))
            self._offset = 0
        tail.clear()

    def peek(self, n: int) -> bytes:
        """Return the first *n* bytes (``n <= len(self)``) without consuming them."""
        chunks = self._chunks
        off = self._offset
        if chunks:
            first = chunks[0]
            if len(first) - off >= n:
                return first[off : off + n]
            parts = [first[off:]]
            need = n - len(parts[0])
            for chunk in list(chunks)[1:]:
                parts.append(chunk[:need])
                need -= len(parts[-1])
                if not need:
                    break
            if need:
                parts.append(bytes(self._tail[:need]))
            return b"".join(parts)
        return bytes(self._tail[off : off + n])

    def take(self, n: int) -> bytes:
        """Remove the first *n* bytes (``n <= len(self)``) and return them."""
        if not n:
            return b""
        self._size -= n
        chunks = self._chunks
        off = self._offset
        if not chunks:
            tail = self._tail
            out = bytes(tail[off : off + n])
            off += n
            if off == len(tail):
                tail.clear()
                off = 0
            self._offset = off
            return out
        first = chunks[0]
        avail = len(first) - off
        if n < avail:
            self._offset = off + n
            return first[off : off + n]
        chunks.popleft()
        self._offset = 0
        if n == avail:
            return first[off:] if off else first
        parts: list[BytesLike] = [memoryview(first)[off:] if off else first]
        need = n - avail
        while need:
            if chunks:
                chunk = chunks[0]
                if len(chunk) <= need:
                    parts.append(chunk)
                    chunks.popleft()
                    need -= len(chunk)
                else:
                    parts.append(memoryview(chunk)[:need])
                    self._offset = need
                    need = 0
            else:
                tail = self._tail
                parts.append(bytes(tail[:need]))
                if need == len(tail):
                    tail.clear()
                else:
                    self._offset = need
                need = 0
        return b"".join(parts)


class FrameReader:
    """Turns a byte stream into :class:`Frame` events (sans-IO, any chunking).

    Args:
        max_frame_size: largest total frame length accepted; a larger declared
            ``length`` is rejected with 7005 from the first 24 bytes.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.max_frame_size = max_frame_size
        self._buffer = ReceiveBuffer()
        self._eof = False
        self._head = 0  # 24 + klen of the frame being read; 0 until it is sized
        self._length = 0
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned in a frame."""
        return len(self._buffer)

    @property
    def eof(self) -> bool:
        """True once ``receive_data(b"")`` marked the end of the stream."""
        return self._eof

    def receive_data(self, data: BytesLike) -> None:
        """Add bytes from the transport; ``b""`` means the peer closed the stream.

        Raises:
            RuntimeError: data after the end of the stream (a caller bug).
        """
        if data:
            if self._eof:
                raise RuntimeError("received data after the end of the stream")
            self._buffer.append(data)
        else:
            self._eof = True

    def next_event(self) -> Frame | ConnectionClosed | Literal[NeedData.NEED_DATA]:
        """Return the next whole frame, :class:`ConnectionClosed`, or :data:`NEED_DATA`.

        Raises:
            RemoteProtocolError: 7001, 7005, 7008 or 7009 (see :mod:`.header`), and
                7009 when the stream ends inside a frame.  Sticky: once raised,
                every later call raises too.
        """
        if self._error is not None:
            raise RemoteProtocolError(self._error.code, self._error.message)
        try:
            return self._next_event()
        except RemoteProtocolError as err:
            self._error = err
            raise

    def _next_event(self) -> Frame | ConnectionClosed | Literal[NeedData.NEED_DATA]:
        buffer = self._buffer
        if not self._head:
            if len(buffer) < HEADER_SIZE:
                if not self._eof:
                    return NEED_DATA
                if len(buffer):
                    raise RemoteProtocolError(
                        ErrorCode.MALFORMED_FRAME, "stream ended inside a frame header"
                    )
                return ConnectionClosed()
            self._head, self._length = check_prefix(buffer.peek(HEADER_SIZE), self.max_frame_size)
        if len(buffer) < self._length:
            if not self._eof:
                return NEED_DATA
            raise RemoteProtocolError(
                ErrorCode.MALFORMED_FRAME,
                f"stream ended after {len(buffer)} of {self._length} bytes of a frame",
            )
        head = buffer.take(self._head)
        payload = buffer.take(self._length - self._head)
        self._head = 0
        return Frame(parse_header(head, self.max_frame_size), payload)


def decode_frame(data: BytesLike, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> Frame:
    """Decode *data* that must be exactly one frame (an HTTP body, a fixture).

    Args:
        data: the bytes.
        max_frame_size: largest frame accepted.

    Returns:
        The frame.

    Raises:
        RemoteProtocolError: 7001/7005/7008/7009 as for a stream; 7009 also when
            *data* is shorter or longer than the frame's ``length``.
    """
    header = parse_header(data, max_frame_size)
    if len(data) != header.length:
        raise RemoteProtocolError(
            ErrorCode.MALFORMED_FRAME,
            f"{len(data)} bytes for a frame of length {header.length}",
        )
    return Frame(header, bytes(data[header.size :]))


def encode_frame(
    header: Header,
    payload: BytesLike | Sequence[BytesLike] = b"",
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
) -> bytes:
    """Encode one frame; *payload* may be given in parts to save a copy.

    Args:
        header: the header; ``length`` must equal ``24 + len(key) + payload size``.
        payload: the payload, or a sequence of parts that make it up.
        max_frame_size: largest total length allowed (the peer would refuse more).

    Returns:
        The frame's bytes.

    Raises:
        LocalProtocolError: 7005 over ``max_frame_size``; 7009 inconsistent
            ``length`` or a bad header field; 7001/7008 as in
            :func:`~starwrs.protocol.header.pack_header`.
    """
    parts = (payload,) if isinstance(payload, bytes | bytearray | memoryview) else payload
    size = sum(len(p) for p in parts)
    if header.length != HEADER_SIZE + len(header.key) + size:
        raise LocalProtocolError(
            ErrorCode.MALFORMED_FRAME,
            f"header length {header.length} but header, key and payload make "
            f"{HEADER_SIZE + len(header.key) + size}",
        )
    if header.length > max_frame_size:
        raise LocalProtocolError(
            ErrorCode.FRAME_TOO_LARGE,
            f"frame of {header.length} bytes, maximum {max_frame_size}",
        )
    return b"".join((pack_header(header), *parts))


class FrameWriter:
    """Turns :class:`Frame` events into bytes, checking each one.

    Args:
        max_frame_size: largest total frame length this writer produces (7005).
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.max_frame_size = max_frame_size
        self._closed = False

    def send(self, event: Frame | ConnectionClosed) -> bytes:
        """Return the bytes for *event* (``b""`` for :class:`ConnectionClosed`).

        Raises:
            LocalProtocolError: an invalid frame (see :func:`encode_frame`) or a
                frame after :class:`ConnectionClosed` (7009).
        """
        if self._closed:
            raise LocalProtocolError(ErrorCode.MALFORMED_FRAME, "the stream is closed")
        if isinstance(event, ConnectionClosed):
            self._closed = True
            return b""
        return encode_frame(event.header, event.payload, self.max_frame_size)
