"""Test helpers for the protocol core: frame factory, chunkers, a coupled pair.

* :func:`raw_frame` builds the bytes of any event as a peer would put it on the wire,
  *without* consulting a state machine (to deliver events a machine must refuse).
* :func:`feed` pushes bytes through a reader in a given chunking and collects events.
* :class:`ConnectionPair` couples a client and a server :class:`Connection` in
  memory: what one sends, the other receives, in a chunking of the test's choice.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from starwrs.protocol import control
from starwrs.protocol._state import Role, State
from starwrs.protocol.connection import Connection
from starwrs.protocol.errors import ProtocolError
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
    Pending,
    Poll,
    Request,
    Response,
    Submit,
    Ticket,
)
from starwrs.protocol.frames import encode_frame
from starwrs.protocol.header import Header, Mechanism, make_header

Chunker = Callable[[bytes], Sequence[bytes]]


def one_chunk(data: bytes) -> list[bytes]:
    """The whole stream at once."""
    return [data] if data else []


def byte_by_byte(data: bytes) -> list[bytes]:
    """One byte per chunk."""
    return [data[i : i + 1] for i in range(len(data))]


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """Split *data* at the given offsets (sorted, deduplicated, clipped)."""
    points = sorted({min(max(c, 0), len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


class Reader(Protocol):
    def receive_data(self, data: bytes) -> None: ...

    def next_event(self) -> object: ...


def feed(reader: Reader, chunks: Sequence[bytes], *, eof: bool = True) -> list[object]:
    """Feed *chunks* (then EOF), draining events after each; errors are collected too.

    Returns the events in order; a :class:`ProtocolError` ends the list (as the
    exception object itself) because readers are sticky after an error.
    """
    out: list[object] = []
    try:
        for chunk in [*chunks, b""] if eof else chunks:
            reader.receive_data(chunk)
            while True:
                event = reader.next_event()
                if event is NEED_DATA:
                    break
                out.append(event)
                if isinstance(event, ConnectionClosed):
                    return out
    except ProtocolError as err:
        out.append(("error", int(err.code)))
    return out


def raw_frame(event: Event, reference: Header | None = None) -> bytes:
    """The bytes a peer would send for *event*, ignoring any state machine.

    Args:
        event: any event but :class:`ConnectionClosed`.
        reference: the exchange's opening header (answers copy its mechanism,
            target and serial; an echo reply copies it whole).
    """
    ref = reference or make_header(Mechanism.SYNC, "RM")
    payload: bytes | list[bytes | bytearray | memoryview]
    if isinstance(event, Request | Submit):
        mech = Mechanism.SYNC if isinstance(event, Request) else Mechanism.ASYNC
        header = make_header(mech, event.target, key=event.key, payload_length=len(event.payload))
        return encode_frame(header, event.payload)
    if isinstance(event, Echo):
        return encode_frame(make_header(event.mech, event.target, key=event.key, echo=1))
    if isinstance(event, EchoReply):
        header = ref._replace(echo=1, status=0, length=ref.size)
        return encode_frame(header)
    status = 0
    if isinstance(event, Poll):
        mech, payload = Mechanism.POLL, control.encode_ticket(event.ticket)
    elif isinstance(event, BulkGet):
        mech, payload = Mechanism.BULK, control.encode_get(event.resource, event.offset)
    elif isinstance(event, BulkPut):
        mech = Mechanism.BULK
        payload = control.encode_put(event.resource, event.size, event.sha256)
    elif isinstance(event, BulkCancel):
        mech, payload = Mechanism.BULK, control.encode_cancel(event.transfer)
    elif isinstance(event, BulkData):
        mech, payload = Mechanism.BULK, control.encode_data(event)
    elif isinstance(event, Ticket):
        mech, payload = Mechanism.ASYNC, control.encode_ticket(event.ticket)
    elif isinstance(event, Pending):
        mech, payload, status = Mechanism.POLL, b"", 1
    elif isinstance(event, Response):
        mech, payload, status = ref.mech, event.payload, event.status
    else:  # pragma: no cover
        raise TypeError(event)
    parts = payload if isinstance(payload, list) else [payload]
    header = make_header(
        mech,
        ref.target,
        payload_length=sum(len(p) for p in parts),
        serial=ref.serial,
        status=status,
    )
    return encode_frame(header, parts)


def drain(conn: Connection) -> list[Event]:
    """All events *conn* can produce from what it has received so far."""
    out: list[Event] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return out
        out.append(event)
        if isinstance(event, ConnectionClosed):
            return out


class ConnectionPair:
    """A client and a server :class:`Connection` coupled in memory.

    Args:
        chunker: how bytes are cut on their way (default: one chunk per send).
        max_frame_size: passed to both connections.
    """

    def __init__(self, chunker: Chunker = one_chunk, *, max_frame_size: int | None = None) -> None:
        kwargs = {} if max_frame_size is None else {"max_frame_size": max_frame_size}
        self.client = Connection(Role.CLIENT, **kwargs)
        self.server = Connection(Role.SERVER, **kwargs)
        self.chunker = chunker
        self.wire: list[bytes] = []  # everything that was sent, both ways, in order

    def _deliver(self, data: bytes, to: Connection) -> None:
        self.wire.append(data)
        for chunk in self.chunker(data):
            to.receive_data(chunk)

    def client_send(self, *events: Event) -> list[Event]:
        """Send *events* from the client; return what the server makes of them."""
        for event in events:
            data = self.client.send(event)
            if isinstance(event, ConnectionClosed):
                self.server.receive_data(b"")
            else:
                self._deliver(data, self.server)
        return drain(self.server)

    def server_send(self, *events: Event) -> list[Event]:
        """Send *events* from the server; return what the client makes of them."""
        for event in events:
            data = self.server.send(event)
            if isinstance(event, ConnectionClosed):
                self.client.receive_data(b"")
            else:
                self._deliver(data, self.client)
        return drain(self.client)

    def close(self) -> None:
        """Both sides close (whoever has not yet) and see the other's close."""
        for ours, theirs in ((self.client, self.server), (self.server, self.client)):
            if ours.state is not State.CLOSED:
                ours.send(ConnectionClosed())
                theirs.receive_data(b"")
                drain(theirs)


def chunks_of(data: bytes, size: int) -> Iterator[bytes]:
    """*data* in pieces of *size* bytes."""
    for i in range(0, len(data), size):
        yield data[i : i + size]
