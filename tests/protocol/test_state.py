"""protocol/_state.py: every (state, input) pair of both machines, alone and wired.

Two levels:

* the bare :class:`ConnectionState` for every role x state x direction x kind;
* a real :class:`Connection` driven into every state it can reach, then offered
  every kind of event, sent (our events) or received (as frame bytes from a peer
  that ignores all rules): it must move exactly as the table says, or raise a
  ProtocolError with code 7009 and sit in ERROR.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable

import pytest
from starwrs.protocol import _state
from starwrs.protocol._state import TRANSITIONS, ConnectionState, Direction, Kind, Role, State
from starwrs.protocol.connection import Connection
from starwrs.protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from starwrs.protocol.events import (
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

from .helpers import drain, raw_frame

ALL_PAIRS = list(itertools.product(Role, State, Direction, Kind))


@pytest.mark.parametrize(("role", "state", "direction", "kind"), ALL_PAIRS)
def test_bare_machine(role: Role, state: State, direction: Direction, kind: Kind) -> None:
    machine = ConnectionState(role, state)
    expected = TRANSITIONS[role].get((state, direction, kind))
    assert machine.allows(direction, kind) == (expected is not None)
    if expected is not None:
        assert machine.process(direction, kind) is expected
        assert machine.state is expected
        return
    error = LocalProtocolError if direction is Direction.SEND else RemoteProtocolError
    with pytest.raises(error) as info:
        machine.process(direction, kind)
    assert info.value.code == 7009
    assert machine.state is State.ERROR


def test_tables_only_name_real_states_and_close_is_always_sendable() -> None:
    for role, table in TRANSITIONS.items():
        for state in State:
            assert table[(state, Direction.SEND, Kind.CLOSE)] is State.CLOSED, (role, state)
    # the client never receives what only clients send, and vice versa
    client_sends = {Kind.REQUEST, Kind.ECHO, Kind.SUBMIT, Kind.POLL, Kind.GET, Kind.PUT}
    server_sends = {Kind.RESPONSE, Kind.ERROR_RESPONSE, Kind.ECHO_REPLY, Kind.TICKET}
    for (_, direction, kind), _next in TRANSITIONS[Role.CLIENT].items():
        assert kind not in (server_sends if direction is Direction.SEND else client_sends)
    for (_, direction, kind), _next in TRANSITIONS[Role.SERVER].items():
        assert kind not in (client_sends if direction is Direction.SEND else server_sends)


# -- the wired Connection ----------------------------------------------------------------

DATA = b"0123456789"
SHA = hashlib.sha256(DATA).hexdigest()
GET = BulkGet("F<INBOXID=42>", 0, "INBX", "key1")
PUT = BulkPut("F<INBOXID=43>", len(DATA), SHA, "INBX", "key1")


def _recv(conn: Connection, event: Event) -> None:
    if isinstance(event, ConnectionClosed):
        conn.receive_data(b"")
    else:
        conn.receive_data(raw_frame(event, conn.request))
    assert drain(conn)


Step = tuple[str, Event]

#: how to reach each state from a fresh connection: ("send"|"recv", event) steps
CLIENT_PATHS: dict[State, list[Step]] = {
    State.IDLE: [],
    State.AWAIT_RESPONSE: [("send", Request("RM", b"GRTL<A=1>"))],
    State.AWAIT_ECHO_REPLY: [("send", Echo("RM", "key1"))],
    State.AWAIT_TICKET: [("send", Submit("RS", b"ARD<A=1>"))],
    State.AWAIT_POLL_ANSWER: [("send", Poll("t-1", "RS"))],
    State.GET_REQUESTED: [("send", GET)],
    State.GET_RECEIVING: [("send", GET), ("recv", BulkData(5, 0, 10, DATA[:3]))],
    State.CANCELLED: [
        ("send", GET),
        ("recv", BulkData(5, 0, 10, DATA[:3])),
        ("send", BulkCancel(5)),
    ],
    State.PUT_SENDING: [("send", PUT)],
    State.PUT_AWAIT_RESULT: [("send", PUT), ("send", BulkData(9, 0, 10, DATA, True, SHA))],
    State.MUST_CLOSE: [("send", Submit("RS")), ("recv", Ticket("t-1"))],
    State.CLOSED: [("send", ConnectionClosed())],
    State.ERROR: [("recv", Response(0, b"unsolicited"))],
}

SERVER_PATHS: dict[State, list[Step]] = {
    State.IDLE: [],
    State.SEND_RESPONSE: [("recv", Request("RM", b"GRTL<A=1>"))],
    State.SEND_ECHO_REPLY: [("recv", Echo("RM", "key1"))],
    State.SEND_TICKET: [("recv", Submit("RS", b"ARD<A=1>"))],
    State.SEND_POLL_ANSWER: [("recv", Poll("t-1", "RS"))],
    State.GET_SENDING: [("recv", GET)],
    State.PUT_RECEIVING: [("recv", PUT)],
    State.SEND_PUT_RESULT: [("recv", PUT), ("recv", BulkData(9, 0, 10, DATA, True, SHA))],
    State.GET_DONE: [("recv", GET), ("send", BulkData(5, 0, 10, DATA, True, SHA))],
    State.DRAINING: [
        ("recv", GET),
        ("send", BulkData(5, 0, 10, DATA, True, SHA)),
        ("recv", BulkCancel(5)),
    ],
    State.MUST_CLOSE: [("recv", Submit("RS")), ("send", Ticket("t-1"))],
    State.CLOSED: [("send", ConnectionClosed())],
    State.ERROR: [("recv", Response(7002, b"requests carry status 0"))],
}


def reach(role: Role, state: State) -> Connection:
    conn = Connection(role)
    paths = CLIENT_PATHS if role is Role.CLIENT else SERVER_PATHS
    for how, event in paths[state]:
        if how == "send":
            conn.send(event)
        else:
            try:
                _recv(conn, event)
            except ProtocolError:
                assert state is State.ERROR
    assert conn.state is state
    return conn


def sample(kind: Kind, conn: Connection) -> Event:
    """A content-valid event of *kind* for *conn*'s current exchange."""
    transfer = conn._transfer
    is_put = transfer is not None and transfer.op is Kind.PUT
    tid = 9 if is_put else 5
    if transfer is not None and transfer.transfer is not None:
        tid = transfer.transfer
    offset = transfer.next_offset if transfer is not None else 0
    makers: dict[Kind, Callable[[], Event]] = {
        Kind.REQUEST: lambda: Request("RM", b"GRTL<A=1>"),
        Kind.ECHO: lambda: Echo("RM", "key1"),
        Kind.SUBMIT: lambda: Submit("RS", b"ARD<A=1>"),
        Kind.POLL: lambda: Poll("t-1", "RS"),
        Kind.GET: lambda: GET,
        Kind.PUT: lambda: PUT,
        Kind.CANCEL: lambda: BulkCancel(tid),
        Kind.DATA: lambda: BulkData(tid, min(offset, 9), 10, DATA[offset : offset + 1] or b"x"),
        Kind.LAST_DATA: lambda: BulkData(tid, offset, 10, DATA[offset:], True, SHA),
        Kind.RESPONSE: lambda: Response(0, b"ok"),
        Kind.ERROR_RESPONSE: lambda: Response(7002, b""),
        Kind.ECHO_REPLY: lambda: EchoReply(),
        Kind.TICKET: lambda: Ticket("t-1"),
        Kind.PENDING: lambda: Pending(),
        Kind.CLOSE: lambda: ConnectionClosed(),
    }
    return makers[kind]()


_MECH_OF = {
    Kind.REQUEST: 0,
    Kind.SUBMIT: 1,
    Kind.TICKET: 1,
    Kind.POLL: 2,
    Kind.GET: 3,
    Kind.PUT: 3,
    Kind.CANCEL: 3,
    Kind.DATA: 3,
    Kind.LAST_DATA: 3,
}


def wire_kind(kind: Kind, conn: Connection) -> Kind | None:
    """What the spec says the frame offered as *kind* is to the receiving *conn*.

    The wire has no direction bit: a request and a status-0 answer of the same
    mechanism are the same bytes, so each side reads a frame as what it can be from
    where it stands.  ``None``: the frame is malformed for this side (a 7009).
    """
    request = conn.request
    ref_mech = request.mech if request is not None else 0
    if kind is Kind.CLOSE:
        return kind
    mech = ref_mech if kind is Kind.RESPONSE else _MECH_OF.get(kind)
    if conn.our_role is Role.SERVER:
        if kind in (Kind.ECHO, Kind.ECHO_REPLY):
            return Kind.ECHO
        if kind in (Kind.PENDING, Kind.ERROR_RESPONSE):
            return None  # requests carry status 0
        if mech == 0:
            return Kind.REQUEST
        if mech == 1:
            return Kind.SUBMIT
        if mech == 2:
            return Kind.POLL if kind is Kind.POLL else None  # payload must be a ticket
        return None if kind is Kind.RESPONSE else kind  # b"ok" is no bulk map
    # the client
    if kind in (Kind.ECHO, Kind.ECHO_REPLY):
        return Kind.ECHO_REPLY if request is not None and request.echo else None
    if kind is Kind.ERROR_RESPONSE:
        return kind
    if kind is Kind.PENDING:
        return kind if request is None or request.mech == 2 else None
    if request is not None and mech != request.mech:
        return None
    if mech in (0, 2):
        return Kind.RESPONSE
    if mech == 1:
        return Kind.TICKET if kind is Kind.TICKET else None  # payload must be a ticket
    if conn._exchange is Kind.PUT:
        return Kind.RESPONSE
    return kind if kind in (Kind.DATA, Kind.LAST_DATA) else None


def _deliver(conn: Connection, direction: Direction, event: Event) -> None:
    if direction is Direction.SEND:
        conn.send(event)
    else:
        _recv(conn, event)


@pytest.mark.parametrize(
    ("role", "state", "direction", "kind"),
    [
        (role, state, direction, kind)
        for role, state, direction, kind in ALL_PAIRS
        if state in (CLIENT_PATHS if role is Role.CLIENT else SERVER_PATHS)
    ],
)
def test_wired_connection(role: Role, state: State, direction: Direction, kind: Kind) -> None:
    conn = reach(role, state)
    event = sample(kind, conn)
    seen: Kind | None = kind
    if direction is Direction.RECV:
        seen = wire_kind(kind, conn)
    expected = TRANSITIONS[role].get((state, direction, seen)) if seen else None
    error = LocalProtocolError if direction is Direction.SEND else RemoteProtocolError
    if expected is None:
        with pytest.raises(error) as info:
            _deliver(conn, direction, event)
        assert info.value.code == 7009
        assert conn.state is State.ERROR
    else:
        _deliver(conn, direction, event)
        assert conn.state is expected


def test_every_state_of_each_table_is_reached_by_the_wired_test() -> None:
    assert set(_state._CLIENT) == set(CLIENT_PATHS)
    assert set(_state._SERVER) == set(SERVER_PATHS)
