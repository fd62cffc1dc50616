"""A sans-IO connection: the transport mechanisms over frames, client or server side.

Theory of operation
-------------------
:class:`Connection` is h11's ``Connection`` for PROTOCOL.md section 3.  Feed it the
bytes the transport delivered with :meth:`~Connection.receive_data` (``b""`` at the
end of the stream), collect events with :meth:`~Connection.next_event` until it
returns :data:`NEED_DATA`, and turn your own events into bytes with
:meth:`~Connection.send`.  It never touches a socket, never imports trio, never
sleeps; the same object serves the web server, the dispatcher, the proxies, the
CLI, the tests and the fuzzers.

Each event goes through three steps, in both directions:

1. **classify** -- a frame becomes an event (:mod:`.events`) and the event a
   :class:`~starwrs.protocol._state.Kind`; control payloads are decoded strictly by
   :mod:`.control` (7009 for any other shape);
2. **check** -- the event must fit the exchange: an answer carries the request's
   mechanism; an echo reply repeats the echo's header; bulk data frames belong to
   one transfer, start at the requested offset, follow each other without gap or
   overlap, keep ``total``, and a put's last frame names the announced sha256
   (7011 otherwise);
3. **transition** -- :class:`~starwrs.protocol._state.ConnectionState` looks the
   kind up in its role's table; no entry is a 7009.

Any :class:`ProtocolError` on the way leaves the connection in ``ERROR``; a server
may then still ``send(Response(status=err.code))`` once and must close.

Header fields are filled in here so callers deal in meaning, not bytes: a request's
mechanism comes from its event type; answers go out with the request's mechanism
and target, no session key, and the request's serial unless the event names
another; a client's follow-up frames (put data, cancel) repeat the opening
request's target, key and serial.

What this layer does *not* do is hash: verifying a transfer's sha256 needs the
whole resource, which a resumed get only partly passes through.  The helpers in
:mod:`starwrs.protocol.bulk` do it (7011 on mismatch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starwrs.protocol import control
from starwrs.protocol._state import ConnectionState, Direction, Kind, Role, State
from starwrs.protocol.errors import (
    ErrorCode,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from starwrs.protocol.events import (
    NEED_DATA,
    BulkCancel,
    BulkData,
    BulkGet,
    BulkPut,
    ConnectionClosed,
    Echo,
    EchoReply,
    Event,
    Frame,
    NeedData,
    Pending,
    Poll,
    Request,
    Response,
    Submit,
    Ticket,
)
from starwrs.protocol.frames import FrameReader, encode_frame
from starwrs.protocol.header import (
    DEFAULT_MAX_FRAME_SIZE,
    BytesLike,
    Header,
    Mechanism,
    make_header,
)

__all__ = ["Connection", "Role", "State", "kind_of"]

_SIMPLE_KINDS: dict[type, Kind] = {
    Request: Kind.REQUEST,
    Echo: Kind.ECHO,
    Submit: Kind.SUBMIT,
    Poll: Kind.POLL,
    BulkGet: Kind.GET,
    BulkPut: Kind.PUT,
    BulkCancel: Kind.CANCEL,
    EchoReply: Kind.ECHO_REPLY,
    Ticket: Kind.TICKET,
    Pending: Kind.PENDING,
    ConnectionClosed: Kind.CLOSE,
}

_REQUEST_MECH = {
    Kind.REQUEST: Mechanism.SYNC,
    Kind.SUBMIT: Mechanism.ASYNC,
    Kind.POLL: Mechanism.POLL,
    Kind.GET: Mechanism.BULK,
    Kind.PUT: Mechanism.BULK,
}


def kind_of(event: object) -> Kind:
    """Classify *event* for the transition tables.

    Raises:
        LocalProtocolError: 7009 for an object that is not an event, or a
            ``Response`` with status 1 (send :class:`Pending` instead).
    """
    kind = _SIMPLE_KINDS.get(type(event))
    if kind is not None:
        return kind
    if isinstance(event, BulkData):
        return Kind.LAST_DATA if event.done else Kind.DATA
    if isinstance(event, Response):
        status = event.status
        if (
            not isinstance(status, int)
            or isinstance(status, bool)
            or not (status == 0 or 2 <= status <= 0xFFFFFFFF)
        ):
            raise LocalProtocolError(
                ErrorCode.MALFORMED_FRAME,
                f"Response status must be 0 or 2..2**32-1, not {status!r} (pending is Pending)",
            )
        return Kind.RESPONSE if status == 0 else Kind.ERROR_RESPONSE
    raise LocalProtocolError(ErrorCode.MALFORMED_FRAME, f"{event!r} is not an event")


def _check_bytes(value: object) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise LocalProtocolError(
            ErrorCode.MALFORMED_FRAME, f"a payload is bytes, not {type(value).__name__}"
        )


@dataclass(slots=True)
class _Transfer:
    """Bookkeeping of the bulk transfer in progress on this connection."""

    op: Kind  # GET or PUT
    next_offset: int
    total: int | None = None
    transfer: int | None = None
    sha256: str | None = None  # announced by a put

    def advance(self, event: BulkData, error: type[ProtocolError]) -> None:
        if self.transfer is None:
            self.transfer = event.transfer
        elif event.transfer != self.transfer:
            raise error(
                ErrorCode.MALFORMED_FRAME,
                f"data for transfer {event.transfer} inside transfer {self.transfer}",
            )
        if self.total is None:
            self.total = event.total
        elif event.total != self.total:
            raise error(
                ErrorCode.MALFORMED_FRAME, f"total changed from {self.total} to {event.total}"
            )
        if event.offset != self.next_offset:
            raise error(
                ErrorCode.MALFORMED_FRAME,
                f"data frame at offset {event.offset}, expected {self.next_offset}",
            )
        if event.done and self.sha256 is not None and event.sha256 != self.sha256:
            raise error(
                ErrorCode.CHECKSUM_MISMATCH, "last data frame's sha256 differs from the put's"
            )
        self.next_offset = event.end


class Connection:
    """One end of a starwrs connection, sans-IO.

    Args:
        our_role: ``Role.CLIENT`` (sends requests) or ``Role.SERVER`` (answers).
        max_frame_size: largest frame accepted and sent (7005 above it).
    """

    def __init__(self, our_role: Role, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.our_role = our_role
        self.max_frame_size = max_frame_size
        self._machine = ConnectionState(our_role)
        self._reader = FrameReader(max_frame_size)
        self._request: Header | None = None  # opening frame of the current exchange
        self._exchange: Kind | None = None
        self._transfer: _Transfer | None = None
        self._error_header: Header | None = None  # frame that caused a remote error

    # -- state -------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """Our side's current :class:`State`."""
        return self._machine.state

    @property
    def request(self) -> Header | None:
        """Header of the frame that opened the current (or last) exchange."""
        return self._request

    @property
    def transfer(self) -> int | None:
        """Id of the bulk transfer in progress, once a data frame has named it."""
        return self._transfer.transfer if self._transfer else None

    # -- receiving ---------------------------------------------------------------------

    def receive_data(self, data: BytesLike) -> None:
        """Add bytes from the transport; ``b""`` when the peer closed the stream.

        Raises:
            RuntimeError: data after the end of the stream (a caller bug).
        """
        self._reader.receive_data(data)

    def next_event(self) -> Event | Literal[NeedData.NEED_DATA]:
        """Return the next event, or :data:`NEED_DATA` when more bytes are needed.

        Raises:
            RemoteProtocolError: the peer broke the protocol; its ``code`` is the
                status to answer with.  The connection is then in ``ERROR``.
        """
        frame: Frame | None = None
        try:
            item = self._reader.next_event()
            if item is NEED_DATA:
                return NEED_DATA
            if isinstance(item, ConnectionClosed):
                self._machine.process(Direction.RECV, Kind.CLOSE)
                return item
            frame = item
            if self.our_role is Role.SERVER:
                kind, event = self._from_client(frame)
            else:
                kind, event = self._from_server(frame)
            if not self._machine.allows(Direction.RECV, kind):
                self._machine.process(Direction.RECV, kind)  # raises
            self._check_received(kind, event, frame.header)
            self._machine.process(Direction.RECV, kind)
        except ProtocolError:
            self._machine.state = State.ERROR
            self._error_header = frame.header if frame is not None else None
            raise
        return event

    def _from_client(self, frame: Frame) -> tuple[Kind, Event]:
        h = frame.header
        if h.status:
            raise RemoteProtocolError(
                ErrorCode.MALFORMED_FRAME, f"a request carries status 0, not {h.status}"
            )
        if h.echo:
            return Kind.ECHO, Echo(h.target, h.key, h.mech, h.serial)
        mech = h.mech
        if mech is Mechanism.SYNC:
            return Kind.REQUEST, Request(h.target, frame.payload, h.key, h.serial)
        if mech is Mechanism.ASYNC:
            return Kind.SUBMIT, Submit(h.target, frame.payload, h.key, h.serial)
        if mech is Mechanism.POLL:
            ticket = control.decode_ticket(frame.payload)
            return Kind.POLL, Poll(ticket, h.target, h.key, h.serial)
        event = control.decode_bulk_request(frame.payload, h)
        if isinstance(event, BulkData):
            return (Kind.LAST_DATA if event.done else Kind.DATA), event
        return _SIMPLE_KINDS[type(event)], event

    def _from_server(self, frame: Frame) -> tuple[Kind, Event]:
        h = frame.header
        request = self._request
        if h.echo:
            if (
                request is None
                or not request.echo
                or (h.mech, h.target, h.key) != (request.mech, request.target, request.key)
                or h.status
                or frame.payload
            ):
                raise RemoteProtocolError(
                    ErrorCode.MALFORMED_FRAME, "echo reply does not repeat the echo's header"
                )
            return Kind.ECHO_REPLY, EchoReply()
        status = h.status
        if status >= 2:
            return Kind.ERROR_RESPONSE, Response(status, frame.payload, h.serial)
        if request is not None and h.mech != request.mech:
            raise RemoteProtocolError(
                ErrorCode.MALFORMED_FRAME,
                f"answer with mechanism {h.mech.name} to a {request.mech.name} request",
            )
        mech = h.mech
        if status == 1:
            if mech is not Mechanism.POLL or frame.payload:
                raise RemoteProtocolError(
                    ErrorCode.MALFORMED_FRAME, "pending (status 1) is a poll answer, no payload"
                )
            return Kind.PENDING, Pending(h.serial)
        if mech is Mechanism.ASYNC:
            return Kind.TICKET, Ticket(control.decode_ticket(frame.payload), h.serial)
        if mech is Mechanism.BULK and self._exchange is not Kind.PUT:
            event = control.decode_data(frame.payload, h.serial)
            return (Kind.LAST_DATA if event.done else Kind.DATA), event
        return Kind.RESPONSE, Response(0, frame.payload, h.serial)

    def _check_received(self, kind: Kind, event: Event, header: Header) -> None:
        state = self._machine.state
        if kind in _REQUEST_MECH or kind is Kind.ECHO:
            self._open(kind, event, header)
        elif isinstance(event, BulkData) and state not in (State.CANCELLED, State.DRAINING):
            assert self._transfer is not None
            self._transfer.advance(event, RemoteProtocolError)
        elif isinstance(event, BulkCancel) and state is not State.DRAINING:
            self._check_cancel(event, RemoteProtocolError)

    # -- sending -----------------------------------------------------------------------

    def send(self, event: Event) -> bytes:
        """Return the bytes that carry *event* (``b""`` for :class:`ConnectionClosed`).

        Raises:
            LocalProtocolError: the event is not allowed now or not valid; the
                connection is then in ``ERROR``.
        """
        try:
            kind = kind_of(event)
            if not self._machine.allows(Direction.SEND, kind):
                self._machine.process(Direction.SEND, kind)  # raises
            data = self._to_frame(kind, event)
            self._machine.process(Direction.SEND, kind)
        except ProtocolError:
            self._machine.state = State.ERROR
            raise
        return data

    def _to_frame(self, kind: Kind, event: Event) -> bytes:
        max_size = self.max_frame_size
        if isinstance(event, ConnectionClosed):
            return b""
        if kind in _REQUEST_MECH or kind is Kind.ECHO:
            return self._send_request(kind, event)
        if isinstance(event, EchoReply):
            request = self._require_request()
            header = request._replace(status=0, length=request.size)
            return encode_frame(header, b"", max_size)
        if isinstance(event, BulkData):
            assert self._transfer is not None
            control.check_data(event)
            self._transfer.advance(event, LocalProtocolError)
            return self._follow_up_or_answer(0, control.encode_data(event), event.serial)
        if isinstance(event, BulkCancel):
            self._check_cancel(event, LocalProtocolError)
            return self._follow_up_or_answer(0, control.encode_cancel(event.transfer), 0)
        if isinstance(event, Ticket):
            return self._follow_up_or_answer(0, control.encode_ticket(event.ticket), event.serial)
        if isinstance(event, Pending):
            return self._follow_up_or_answer(1, b"", event.serial)
        assert isinstance(event, Response)
        return self._follow_up_or_answer(event.status, event.payload, event.serial)

    def _send_request(self, kind: Kind, event: Event) -> bytes:
        if isinstance(event, Echo):
            mech, echo, payload = event.mech, 1, b""
        else:
            mech, echo = _REQUEST_MECH[kind], 0
            if isinstance(event, Request | Submit):
                payload = event.payload
            elif isinstance(event, Poll):
                payload = control.encode_ticket(event.ticket)
            elif isinstance(event, BulkGet):
                payload = control.encode_get(event.resource, event.offset)
            else:
                assert isinstance(event, BulkPut)
                payload = control.encode_put(event.resource, event.size, event.sha256)
        assert isinstance(event, Request | Submit | Poll | BulkGet | BulkPut | Echo)
        _check_bytes(payload)
        if not isinstance(event.key, str) or not isinstance(event.target, str):
            raise LocalProtocolError(ErrorCode.MALFORMED_FRAME, "target and key must be text")
        header = make_header(
            mech,
            event.target,
            key=event.key,
            payload_length=len(payload),
            serial=event.serial,
            echo=echo,
        )
        data = encode_frame(header, payload, self.max_frame_size)
        self._open(kind, event, header)
        return data

    def _follow_up_or_answer(
        self, status: int, payload: BytesLike | list[BytesLike], serial: int
    ) -> bytes:
        """A frame in the current exchange: the client's put data/cancel or an answer."""
        parts = payload if isinstance(payload, list) else [payload]
        for part in parts:
            _check_bytes(part)
        size = sum(len(p) for p in parts)
        if self.our_role is Role.CLIENT:
            opening = self._require_request()
            header = make_header(
                opening.mech,
                opening.target,
                key=opening.key,
                payload_length=size,
                serial=opening.serial,
            )
        else:
            request = self._request
            if self.state is State.ERROR and self._error_header is not None:
                request = self._error_header
            if request is None:  # an error answer to bytes that never made a header
                request = make_header(Mechanism.SYNC, "")
            header = make_header(
                request.mech,
                request.target,
                payload_length=size,
                serial=serial or request.serial,
                status=status,
            )
        return encode_frame(header, parts, self.max_frame_size)

    # -- exchange bookkeeping ----------------------------------------------------------

    def _require_request(self) -> Header:
        if self._request is None:  # unreachable through the tables
            raise LocalProtocolError(ErrorCode.MALFORMED_FRAME, "no exchange in progress")
        return self._request

    def _open(self, kind: Kind, event: Event, header: Header) -> None:
        """Remember the frame that opens an exchange (sent or received)."""
        self._request = header
        self._exchange = kind
        if isinstance(event, BulkGet):
            self._transfer = _Transfer(Kind.GET, event.offset)
        elif isinstance(event, BulkPut):
            self._transfer = _Transfer(Kind.PUT, 0, total=event.size, sha256=event.sha256)
        else:
            self._transfer = None

    def _check_cancel(self, event: BulkCancel, error: type[ProtocolError]) -> None:
        transfer = self._transfer
        if type(event.transfer) is not int or not 0 <= event.transfer <= control.MAX_INT:
            raise error(ErrorCode.MALFORMED_FRAME, "transfer id must be an integer 0..2**63-1")
        if transfer is not None and transfer.transfer not in (None, event.transfer):
            raise error(
                ErrorCode.MALFORMED_FRAME,
                f"cancel names transfer {event.transfer}, the transfer is {transfer.transfer}",
            )
