"""Frames inside HTTP bodies: the request body as frames, the key, the bulk put relay.

Theory of operation
-------------------
``POST /dispatch`` carries frames (PROTOCOL.md section 1): the request body is one
frame with ``klen`` 0 -- or, for a bulk put, the put frame followed by its data
frames -- and the answer is the dispatcher's frame(s).  This module holds the
frame-level pieces of that relay, so :mod:`.web` deals in requests and answers:

* :class:`BodyFrames` parses a request body into frames *as it arrives*, with the
  sans-IO :class:`~starwrs.protocol.FrameReader`; a size limit (``max_body``,
  lifted for a put's data) is enforced on the bytes counted, and a frame header
  that declares more than the limit is refused (413) from its first 24 bytes;
* :func:`with_key` / :func:`without_key` put the cookie's session key into a frame
  on its way in and take any key out of a frame on its way back (the key lives in
  the HttpOnly cookie; it must never become readable by page scripts);
* :func:`get_done` tells where a bulk get stands after a frame: going on (False),
  ended with its ``done`` frame, the link clean again (True), or ended by an error
  answer (None) -- the data itself is not copied to find out;
* :func:`relay_put` streams a put's data frames to the dispatcher, one frame in
  memory at a time, while listening for its answer (an early refusal stops the
  upload).
"""

from __future__ import annotations

import trio
from starwrs.grammar.errors import ErrorCode
from starwrs.protocol import (
    NEED_DATA,
    ConnectionClosed,
    Frame,
    FrameReader,
    Mechanism,
    ProtocolError,
    encode_frame,
)
from starwrs.protocol.control import MAX_DATA, decode_data
from starwrs.web.http_server import HttpConnection, HttpError
from starwrs.web.upstream import Link, UpstreamError

__all__ = [
    "MAX_PUT_FRAME",
    "BodyFrames",
    "check_put_data",
    "check_request_frame",
    "get_done",
    "relay_put",
    "with_key",
    "without_key",
]

#: a bulk put's data frames: 1 MiB of data plus the msgpack map and the header
MAX_PUT_FRAME = MAX_DATA + 64 * 1024


def with_key(frame: Frame, key: str) -> bytes:
    """The frame's bytes with *key* as its session key."""
    header = frame.header._replace(key=key, length=frame.header.length + len(key))
    return encode_frame(header, frame.payload)


def without_key(frame: Frame) -> bytes:
    """The frame's bytes with an empty session key."""
    key = frame.header.key
    header = frame.header._replace(key="", length=frame.header.length - len(key))
    return encode_frame(header, frame.payload)


def get_done(frame: Frame) -> bool | None:
    """A status-0 bulk data frame's ``done`` flag; None for anything else (an error
    answer, or a frame that is not data: either ends the get, and its link)."""
    if frame.header.status != 0 or frame.header.mech != Mechanism.BULK:
        return None
    try:
        return decode_data(frame.payload).done
    except ProtocolError:
        return None


class BodyFrames:
    """Frames of a request body, parsed as the body arrives (sans-IO reader)."""

    def __init__(self, http: HttpConnection, limit: int | None, max_frame_size: int) -> None:
        self.http = http
        self.limit = limit
        self.reader = FrameReader(max_frame_size)
        self.size = 0

    async def next(self) -> Frame | None:
        """The next frame, or None at the end of the body.

        Raises:
            HttpError: 400 bytes that are not frames (or end inside one); 413 past
                the size limit.
        """
        while True:
            try:
                event = self.reader.next_event()
            except ProtocolError as err:
                if err.code == ErrorCode.FRAME_TOO_LARGE:
                    raise HttpError(413, err.code, err.message, close=True) from None
                raise HttpError(
                    400, err.code, f"body is not a frame: {err.message}", close=True
                ) from None
            if isinstance(event, Frame):
                return event
            if isinstance(event, ConnectionClosed):
                return None
            assert event is NEED_DATA
            chunk = await self.http.receive_body_chunk()
            if chunk is None:
                self.reader.receive_data(b"")
                continue
            self.size += len(chunk)
            if self.limit is not None and self.size > self.limit:
                raise HttpError(
                    413,
                    ErrorCode.FRAME_TOO_LARGE,
                    f"body larger than {self.limit} bytes",
                    close=True,
                )
            self.reader.receive_data(chunk)


def check_request_frame(frame: Frame) -> None:
    """Refuse (400) a request frame with a session key or a status."""
    header = frame.header
    if header.key:
        raise HttpError(
            400,
            ErrorCode.MALFORMED_FRAME,
            "send the frame with klen 0: the session key comes from the cookie",
            close=True,
        )
    if header.status:
        raise HttpError(400, ErrorCode.MALFORMED_FRAME, "a request carries status 0", close=True)


def check_put_data(frame: Frame) -> None:
    """Refuse (400) a frame after a put that is not a bulk frame."""
    if frame.header.mech != Mechanism.BULK or frame.header.echo:
        raise HttpError(400, ErrorCode.MALFORMED_FRAME, "a put continues with mech 3 frames")


async def relay_put(link: Link, body: BodyFrames, frame: Frame, key: str, seconds: float) -> Frame:
    """Send a bulk put and its data frames while listening for the dispatcher's answer.

    An early answer (the dispatcher refused the put) stops the upload; the
    answer's deadline (*seconds*) starts when the whole body has been relayed.

    Args:
        link: a fresh link to a dispatcher.
        body: the request body, its first frame (*frame*, the put) already read.
        frame: the put frame.
        key: the session key to fill in.
        seconds: the time each send may take, and the answer after the last frame.

    Returns:
        The dispatcher's answer frame.

    Raises:
        HttpError: the body is not a put's frames (400).
        UpstreamError: the dispatcher hop failed (7006/7007/7009).
        ClientGone: the client went away mid-upload.
    """
    errors: list[Exception] = []
    answers: list[Frame] = []
    body.limit = None
    body.reader.max_frame_size = MAX_PUT_FRAME
    answer_scope = trio.CancelScope()

    async def pump() -> None:
        try:
            await link.send(with_key(frame, key), seconds)
            while (data := await body.next()) is not None:
                check_request_frame(data)
                check_put_data(data)
                await link.send(with_key(data, key), seconds)
        except Exception as err:
            errors.append(err)
            nursery.cancel_scope.cancel()
            return
        answer_scope.deadline = trio.current_time() + seconds

    async def wait_answer() -> None:
        with answer_scope:
            try:
                answers.append(await link.receive(float("inf")))
            except Exception as err:
                errors.append(err)
        if not answers and not errors:
            errors.append(UpstreamError(ErrorCode.PROXY_TIMEOUT, "no answer to the put"))
        nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump)
        nursery.start_soon(wait_answer)
    if answers:
        return answers[0]
    raise errors[0]
