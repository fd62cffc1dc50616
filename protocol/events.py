"""Every event the frame and mechanism layers produce and consume.

Theory of operation
-------------------
The sans-IO objects speak in events: :class:`~starwrs.protocol.frames.FrameReader`
turns bytes into :class:`Frame` events, and
:class:`~starwrs.protocol.connection.Connection` turns frames into the events of
the transport mechanisms of PROTOCOL.md section 3 and back.  ``next_event()``
returns an event or :data:`NEED_DATA`; ``send(event)`` returns bytes.

Who sends what (the ``Connection`` enforces it with the table in
:mod:`starwrs.protocol._state`):

==========================  ===================  ====================================
mechanism                   client sends         server answers
==========================  ===================  ====================================
any, ``echo`` set           :class:`Echo`        :class:`EchoReply`
0 synchronous               :class:`Request`     :class:`Response`
1 asynchronous request      :class:`Submit`      :class:`Ticket` (or an error Response)
2 asynchronous poll/reply   :class:`Poll`        :class:`Pending` or :class:`Response`
3 bulk get                  :class:`BulkGet`,    :class:`BulkData` ... (last: ``done``)
                            :class:`BulkCancel`  or an error Response
3 bulk put                  :class:`BulkPut`,    :class:`Response` at the end
                            :class:`BulkData`...,
                            :class:`BulkCancel`
==========================  ===================  ====================================

:class:`ConnectionClosed` stands for the end of the byte stream in both directions.

Header fields the caller does not give are filled in by the ``Connection``: an
answer's ``serial`` of 0 becomes the request's serial, answers carry the request's
target and no session key, and follow-up client frames (bulk data, cancel) carry the
opening request's target, key and serial.  All events are frozen, slotted
dataclasses: hashable, comparable by value, cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal, TypeAlias

from starwrs.protocol.header import Header, Mechanism, make_header

__all__ = [
    "NEED_DATA",
    "BulkCancel",
    "BulkData",
    "BulkGet",
    "BulkPut",
    "ConnectionClosed",
    "Echo",
    "EchoReply",
    "Event",
    "Frame",
    "NeedData",
    "Pending",
    "Poll",
    "Request",
    "Response",
    "Submit",
    "Ticket",
]


class NeedData(Enum):
    """Sentinel type of :data:`NEED_DATA`."""

    NEED_DATA = "NEED_DATA"


#: ``next_event()`` returns this when more bytes are needed (h11's convention).
NEED_DATA: Literal[NeedData.NEED_DATA] = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The byte stream ended (received), or we close it (sent)."""


# -- the frame layer ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """One whole frame: the common header and the payload after the key.

    ``header.length`` always equals ``24 + len(header.key) + len(payload)`` for a
    frame the reader produced; :class:`~starwrs.protocol.frames.FrameWriter` checks
    it for frames you send.  Use :meth:`build` to have it computed.
    """

    header: Header
    payload: bytes = b""

    @classmethod
    def build(
        cls,
        mech: Mechanism | int,
        target: str,
        payload: bytes = b"",
        *,
        key: str = "",
        serial: int = 0,
        status: int = 0,
        echo: int = 0,
    ) -> Frame:
        """Make a frame, computing the header's ``length``.

        Args:
            mech: transport mechanism (0-3).
            target: target proxy name (0-4 visible ASCII characters).
            payload: the bytes after the key.
            key: session key (visible ASCII).
            serial: dispatcher-assigned serial.
            status: 0 in requests; the answer's status in responses.
            echo: non-zero for a connectivity test.

        Returns:
            The frame (checked when it is written).
        """
        header = make_header(
            mech,
            target,
            key=key,
            payload_length=len(payload),
            serial=serial,
            status=status,
            echo=echo,
        )
        return cls(header, payload)


# -- requests (client to server) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """Mechanism 0: one synchronous request; ``payload`` is a metadata message."""

    target: str
    payload: bytes = b""
    key: str = ""
    serial: int = 0


@dataclass(frozen=True, slots=True)
class Echo:
    """A connectivity test (``echo`` set): the peer answers at once, contacting nothing."""

    target: str = ""
    key: str = ""
    mech: Mechanism = Mechanism.SYNC
    serial: int = 0


@dataclass(frozen=True, slots=True)
class Submit:
    """Mechanism 1: asynchronous request; answered with a :class:`Ticket`."""

    target: str
    payload: bytes = b""
    key: str = ""
    serial: int = 0


@dataclass(frozen=True, slots=True)
class Poll:
    """Mechanism 2: ask for the result of a ticket, on a new connection."""

    ticket: str
    target: str = ""
    key: str = ""
    serial: int = 0


@dataclass(frozen=True, slots=True)
class BulkGet:
    """Mechanism 3: fetch *resource* (a metadata message) from byte *offset* on."""

    resource: str
    offset: int = 0
    target: str = ""
    key: str = ""
    serial: int = 0


@dataclass(frozen=True, slots=True)
class BulkPut:
    """Mechanism 3: upload *size* bytes whose SHA-256 is *sha256* (64 hex digits)."""

    resource: str
    size: int
    sha256: str
    target: str = ""
    key: str = ""
    serial: int = 0


@dataclass(frozen=True, slots=True)
class BulkCancel:
    """Mechanism 3: stop transfer *transfer* (the client's side of a get or put)."""

    transfer: int


# -- answers (server to client) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Response:
    """A final answer: status 0 (success) or an error code, with its payload.

    Answers a :class:`Request`, a :class:`Poll` (the work's final result), a
    :class:`BulkPut` (at the end), or refuses any request with ``status >= 2``.
    """

    status: int = 0
    payload: bytes = b""
    serial: int = 0


@dataclass(frozen=True, slots=True)
class EchoReply:
    """The answer to an :class:`Echo`: the same header, status 0, empty payload."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """Mechanism 1: work accepted; poll for its result with this opaque id."""

    ticket: str
    serial: int = 0


@dataclass(frozen=True, slots=True)
class Pending:
    """Mechanism 2: status 1, the work is not finished yet; poll again later."""

    serial: int = 0


@dataclass(frozen=True, slots=True)
class BulkData:
    """Mechanism 3: *data* at *offset* of a resource of *total* bytes.

    A received frame's *data* may be a read-only ``memoryview`` into the frame
    (zero copy); ``bytes(event.data)`` when a ``bytes`` is needed.

    The last frame of a transfer has ``done=True`` and the hex SHA-256 of the
    whole resource; every other frame has ``done=False`` and ``sha256=None``.
    Sent by the server for a get and by the client for a put.
    """

    transfer: int
    offset: int
    total: int
    data: bytes | memoryview
    done: bool = False
    sha256: str | None = None
    serial: int = 0

    @property
    def end(self) -> int:
        """Offset just after this frame's data."""
        return self.offset + len(self.data)


#: Everything ``Connection.next_event()`` may return besides :data:`NEED_DATA`.
Event: TypeAlias = (
    "Request | Echo | Submit | Poll | BulkGet | BulkPut | BulkCancel | Response | EchoReply"
    " | Ticket | Pending | BulkData | ConnectionClosed"
)
