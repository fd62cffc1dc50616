"""The wire protocol as a sans-IO core: header, frames, transport mechanisms.

Theory of operation
-------------------
Bytes in, events out, no sockets (PROTOCOL.md sections 2-4):

* :mod:`.header` -- the 24-byte common header (+ session key), its checks and its
  ``HDR<...>`` text form;
* :mod:`.frames` -- :class:`FrameReader` / :class:`FrameWriter`: byte stream <->
  :class:`Frame` events, any chunking;
* :mod:`.connection` -- :class:`Connection`: the synchronous, asynchronous, poll
  and bulk mechanisms, client or server side, over frames;
* :mod:`._state` -- the transition tables the connection obeys;
* :mod:`.control` -- the msgpack control payloads, strictly shaped;
* :mod:`.bulk` -- resumable downloads and checked uploads (sha256, 7011);
* :mod:`.tickets` -- the ticket store behind asynchronous requests and polls.

>>> from starwrs.protocol import Connection, Request, Response, Role, NEED_DATA
>>> client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
>>> server.receive_data(client.send(Request("RM", b"GRTL<PRODUCT=V>")))
>>> server.next_event()
Request(target='RM', payload=b'GRTL<PRODUCT=V>', key='', serial=0)
>>> client.receive_data(server.send(Response(0, b"GRTL<ERROR=0>")))
>>> client.next_event()
Response(status=0, payload=b'GRTL<ERROR=0>', serial=0)
>>> client.next_event() is NEED_DATA
True
"""

from starwrs.protocol._state import Role, State
from starwrs.protocol.bulk import Download, PutReceiver, data_frames, put_request, sha256_hex
from starwrs.protocol.connection import Connection
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
    Pending,
    Poll,
    Request,
    Response,
    Submit,
    Ticket,
)
from starwrs.protocol.frames import FrameReader, FrameWriter, decode_frame, encode_frame
from starwrs.protocol.header import (
    DEFAULT_MAX_FRAME_SIZE,
    HEADER,
    HEADER_SIZE,
    VERSION,
    Header,
    Mechanism,
    header_from_text,
    header_to_text,
    make_header,
    pack_header,
    parse_header,
)
from starwrs.protocol.tickets import TicketStore

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "HEADER",
    "HEADER_SIZE",
    "NEED_DATA",
    "VERSION",
    "BulkCancel",
    "BulkData",
    "BulkGet",
    "BulkPut",
    "Connection",
    "ConnectionClosed",
    "Download",
    "Echo",
    "EchoReply",
    "ErrorCode",
    "Event",
    "Frame",
    "FrameReader",
    "FrameWriter",
    "Header",
    "LocalProtocolError",
    "Mechanism",
    "Pending",
    "Poll",
    "ProtocolError",
    "PutReceiver",
    "RemoteProtocolError",
    "Request",
    "Response",
    "Role",
    "State",
    "Submit",
    "Ticket",
    "TicketStore",
    "data_frames",
    "decode_frame",
    "encode_frame",
    "header_from_text",
    "header_to_text",
    "make_header",
    "pack_header",
    "parse_header",
    "put_request",
    "sha256_hex",
]
