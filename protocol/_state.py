"""The transport mechanisms' state machines, as data: one table per role.

Theory of operation
-------------------
A connection carries one exchange at a time (PROTOCOL.md section 3).  Each side
keeps one :class:`State`; every event it sends or receives is classified into a
:class:`Kind` and looked up, with its :class:`Direction`, in its role's table::

    TRANSITIONS[role][(state, direction, kind)] -> next state

A missing entry is a protocol error (code 7009): :class:`RemoteProtocolError` for
something received, :class:`LocalProtocolError` for something we tried to send --
and the machine goes to ``ERROR`` ("Rule 1" of h11: nothing happens that the table
does not say).  All transition logic lives in this module; the ``Connection``
classifies events, checks their contents and calls :meth:`ConnectionState.process`.

The rules the tables encode:

* **Sync** (mech 0) and **echo**: request, answer, back to ``IDLE``; a connection
  carries any number of them one after another, never two at once.
* **Async** (mech 1): ``Submit`` -> ``Ticket`` (or an error ``Response``), then the
  connection must close.
* **Poll** (mech 2): ``Poll`` -> ``Pending`` or the final ``Response``, then close.
* **Bulk get** (mech 3): ``BulkGet`` -> ``BulkData``... until the one with ``done``;
  the client may ``BulkCancel`` once it knows the transfer id (after the first data
  frame) or close at any point.  Frames already in flight when a cancel crosses
  them are accepted and dropped (client ``CANCELLED``, server ``DRAINING``).
  A get that ends with its ``done`` frame leaves the connection reusable: the
  client is back in ``IDLE`` and the server in ``GET_DONE``, which accepts every
  opening ``IDLE`` does, and also a cancel that crossed the last frame (then
  ``DRAINING``: the cancelling client closes).  A viewer that fetches a report's
  ``.mtd`` and then its data thus pays for one connection, not two.
* **Bulk put** (mech 3): ``BulkPut``, ``BulkData``... (the last with ``done``), then
  one ``Response``; the server may refuse early with an error ``Response`` and drain
  what is still in flight.
* Mechanisms 1, 2, a bulk put, and a bulk get that ended in an error or a cancel
  are one exchange per connection: afterwards both sides close.  (Resuming a
  dropped bulk get is a new ``BulkGet`` with an offset, on a new connection.)
* Either side may close at any point (``SEND CLOSE`` is allowed from every state);
  a peer that closes while we wait for its answer is a 7009.  After a remote error
  a server may still send one error ``Response`` (``ERROR -> MUST_CLOSE``), which is
  how "answers status 7001 and closes" happens.
"""

from __future__ import annotations

from enum import Enum

from starwrs.protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError

__all__ = ["TRANSITIONS", "ConnectionState", "Direction", "Kind", "Role", "State"]


class Role(Enum):
    """Which end of the connection a machine is."""

    CLIENT = "client"
    SERVER = "server"


class Direction(Enum):
    """Whether the event is being sent or was received."""

    __hash__ = object.__hash__  # members are singletons: Enum's own hashes the name in Python

    SEND = "send"
    RECV = "recv"


class Kind(Enum):
    """What an event is, as far as the tables care."""

    __hash__ = object.__hash__  # members are singletons: Enum's own hashes the name in Python

    REQUEST = "Request"
    ECHO = "Echo"
    SUBMIT = "Submit"
    POLL = "Poll"
    GET = "BulkGet"
    PUT = "BulkPut"
    CANCEL = "BulkCancel"
    DATA = "BulkData"
    LAST_DATA = "BulkData(done)"
    RESPONSE = "Response(status 0)"
    ERROR_RESPONSE = "Response(error)"
    ECHO_REPLY = "EchoReply"
    TICKET = "Ticket"
    PENDING = "Pending"
    CLOSE = "ConnectionClosed"


class State(Enum):
    """Where a side of a connection is."""

    __hash__ = object.__hash__  # members are singletons: Enum's own hashes the name in Python

    IDLE = "IDLE"
    # client side
    AWAIT_RESPONSE = "AWAIT_RESPONSE"
    AWAIT_ECHO_REPLY = "AWAIT_ECHO_REPLY"
    AWAIT_TICKET = "AWAIT_TICKET"
    AWAIT_POLL_ANSWER = "AWAIT_POLL_ANSWER"
    GET_REQUESTED = "GET_REQUESTED"
    GET_RECEIVING = "GET_RECEIVING"
    CANCELLED = "CANCELLED"
    PUT_SENDING = "PUT_SENDING"
    PUT_AWAIT_RESULT = "PUT_AWAIT_RESULT"
    # server side
    SEND_RESPONSE = "SEND_RESPONSE"
    SEND_ECHO_REPLY = "SEND_ECHO_REPLY"
    SEND_TICKET = "SEND_TICKET"
    SEND_POLL_ANSWER = "SEND_POLL_ANSWER"
    GET_SENDING = "GET_SENDING"
    GET_DONE = "GET_DONE"
    PUT_RECEIVING = "PUT_RECEIVING"
    SEND_PUT_RESULT = "SEND_PUT_RESULT"
    DRAINING = "DRAINING"
    # both
    MUST_CLOSE = "MUST_CLOSE"
    CLOSED = "CLOSED"
    ERROR = "ERROR"


_S = Direction.SEND
_R = Direction.RECV
_St = State
_K = Kind

_CLIENT: dict[State, dict[tuple[Direction, Kind], State]] = {
    _St.IDLE: {
        (_S, _K.REQUEST): _St.AWAIT_RESPONSE,
        (_S, _K.ECHO): _St.AWAIT_ECHO_REPLY,
        (_S, _K.SUBMIT): _St.AWAIT_TICKET,
        (_S, _K.POLL): _St.AWAIT_POLL_ANSWER,
        (_S, _K.GET): _St.GET_REQUESTED,
        (_S, _K.PUT): _St.PUT_SENDING,
        (_R, _K.CLOSE): _St.CLOSED,
    },
    _St.AWAIT_RESPONSE: {
        (_R, _K.RESPONSE): _St.IDLE,
        (_R, _K.ERROR_RESPONSE): _St.IDLE,
    },
    _St.AWAIT_ECHO_REPLY: {
        (_R, _K.ECHO_REPLY): _St.IDLE,
        (_R, _K.ERROR_RESPONSE): _St.MUST_CLOSE,
    },
    _St.AWAIT_TICKET: {
        (_R, _K.TICKET): _St.MUST_CLOSE,
        (_R, _K.ERROR_RESPONSE): _St.MUST_CLOSE,
    },
    _St.AWAIT_POLL_ANSWER: {
        (_R, _K.PENDING): _St.MUST_CLOSE,
        (_R, _K.RESPONSE): _St.MUST_CLOSE,
        (_R, _K.ERROR_RESPONSE): _St.MUST_CLOSE,
    },
    _St.GET_REQUESTED: {
        (_R, _K.DATA): _St.GET_RECEIVING,
        (_R, _K.LAST_DATA): _St.IDLE,
        (_R, _K.ERROR_RESPONSE): _St.MUST_CLOSE,
    },
    _St.GET_RECEIVING: {
        (_R, _K.DATA): _St.GET_RECEIVING,
        (_R, _K.LAST_DATA): _St.IDLE,
        (_R, _K.ERROR_RESPONSE): _St.MUST_CLOSE,
        (_S, _K.CANCEL): _St.CANCELLED,
    },
    _St.CANCELLED: {
        (_R, _K.DATA): _St.CANCELLED,
        (_R, _K.LAST_DATA): _St.CANCELLED,
        (_R, _K.ERROR_RESPONSE): _St.CANCELLED,
        (_R, _K.CLOSE): _St.CLOSED,
    },
    _St.PUT_SENDING: {
        (_S, _K.DATA): _St.PUT_SENDING,
        (_S, _K.LAST_DATA): _St.PUT_AWAIT_RESULT,
        (_S, _K.CANCEL): _St.CANCELLED,
        (_R, _K.ERROR_RESPONSE): _St.MUST_CLOSE,
    },
    _St.PUT_AWAIT_RESULT: {
        (_R, _K.RESPONSE): _St.MUST_CLOSE,
        (_R, _K.ERROR_RESPONSE): _St.MUST_CLOSE,
    },
    _St.MUST_CLOSE: {(_R, _K.CLOSE): _St.CLOSED},
    _St.CLOSED: {(_R, _K.CLOSE): _St.CLOSED},
    _St.ERROR: {(_R, _K.CLOSE): _St.CLOSED},
}

_SERVER_OPENINGS: dict[tuple[Direction, Kind], State] = {
    (_R, _K.REQUEST): _St.SEND_RESPONSE,
    (_R, _K.ECHO): _St.SEND_ECHO_REPLY,
    (_R, _K.SUBMIT): _St.SEND_TICKET,
    (_R, _K.POLL): _St.SEND_POLL_ANSWER,
    (_R, _K.GET): _St.GET_SENDING,
    (_R, _K.PUT): _St.PUT_RECEIVING,
    (_R, _K.CLOSE): _St.CLOSED,
}

_SERVER: dict[State, dict[tuple[Direction, Kind], State]] = {
    _St.IDLE: _SERVER_OPENINGS,
    _St.GET_DONE: {**_SERVER_OPENINGS, (_R, _K.CANCEL): _St.DRAINING},
    _St.SEND_RESPONSE: {
        (_S, _K.RESPONSE): _St.IDLE,
        (_S, _K.ERROR_RESPONSE): _St.IDLE,
        (_R, _K.CLOSE): _St.CLOSED,
    },
    _St.SEND_ECHO_REPLY: {
        (_S, _K.ECHO_REPLY): _St.IDLE,
        (_R, _K.CLOSE): _St.CLOSED,
    },
    _St.SEND_TICKET: {
        (_S, _K.TICKET): _St.MUST_CLOSE,
        (_S, _K.ERROR_RESPONSE): _St.MUST_CLOSE,
        (_R, _K.CLOSE): _St.CLOSED,
    },
    _St.SEND_POLL_ANSWER: {
        (_S, _K.PENDING): _St.MUST_CLOSE,
        (_S, _K.RESPONSE): _St.MUST_CLOSE,
        (_S, _K.ERROR_RESPONSE): _St.MUST_CLOSE,
        (_R, _K.CLOSE): _St.CLOSED,
    },
    _St.GET_SENDING: {
        (_S, _K.DATA): _St.GET_SENDING,
        (_S, _K.LAST_DATA): _St.GET_DONE,
        (_S, _K.ERROR_RESPONSE): _St.DRAINING,
        (_R, _K.CANCEL): _St.MUST_CLOSE,
        (_R, _K.CLOSE): _St.CLOSED,
    },
    _St.PUT_RECEIVING: {
        (_R, _K.DATA): _St.PUT_RECEIVING,
        (_R, _K.LAST_DATA): _St.SEND_PUT_RESULT,
        (_R, _K.CANCEL): _St.MUST_CLOSE,
        (_S, _K.ERROR_RESPONSE): _St.DRAINING,
        (_R, _K.CLOSE): _St.CLOSED,
    },
    _St.SEND_PUT_RESULT: {
        (_S, _K.RESPONSE): _St.MUST_CLOSE,
        (_S, _K.ERROR_RESPONSE): _St.MUST_CLOSE,
        (_R, _K.CLOSE): _St.CLOSED,
    },
    _St.DRAINING: {
        (_R, _K.DATA): _St.DRAINING,
        (_R, _K.LAST_DATA): _St.DRAINING,
        (_R, _K.CANCEL): _St.DRAINING,
        (_R, _K.CLOSE): _St.CLOSED,
    },
    _St.MUST_CLOSE: {(_R, _K.CLOSE): _St.CLOSED},
    _St.CLOSED: {(_R, _K.CLOSE): _St.CLOSED},
    _St.ERROR: {
        (_S, _K.ERROR_RESPONSE): _St.MUST_CLOSE,
        (_R, _K.CLOSE): _St.CLOSED,
    },
}


def _flatten(
    table: dict[State, dict[tuple[Direction, Kind], State]],
) -> dict[tuple[State, Direction, Kind], State]:
    flat = {
        (state, direction, kind): target
        for state, row in table.items()
        for (direction, kind), target in row.items()
    }
    # Closing is always allowed: it is how a side gives up, cancels or finishes.
    for state in State:
        flat[(state, _S, _K.CLOSE)] = _St.CLOSED
    return flat


#: role -> (state, direction, kind) -> next state; anything absent is a 7009
TRANSITIONS: dict[Role, dict[tuple[State, Direction, Kind], State]] = {
    Role.CLIENT: _flatten(_CLIENT),
    Role.SERVER: _flatten(_SERVER),
}


class ConnectionState:
    """One side's position in the tables.

    Args:
        role: which table applies.
        state: where to start (``IDLE`` for a fresh connection; tests start elsewhere).
    """

    __slots__ = ("_table", "role", "state")

    def __init__(self, role: Role, state: State = State.IDLE) -> None:
        self.role = role
        self.state = state
        self._table = TRANSITIONS[role]

    def allows(self, direction: Direction, kind: Kind) -> bool:
        """True if the table has an entry for *kind* in *direction* from here."""
        return (self.state, direction, kind) in self._table

    def process(self, direction: Direction, kind: Kind) -> State:
        """Apply one event; return the new state.

        Raises:
            LocalProtocolError: 7009, sending *kind* is not allowed here.
            RemoteProtocolError: 7009, receiving *kind* is not allowed here.
            Either way the state becomes ``ERROR``.
        """
        new = self._table.get((self.state, direction, kind))
        if new is None:
            old = self.state
            self.state = State.ERROR
            if direction is Direction.SEND:
                raise LocalProtocolError(
                    ErrorCode.MALFORMED_FRAME,
                    f"{self.role.value} cannot send {kind.value} in state {old.value}",
                )
            raise RemoteProtocolError(
                ErrorCode.MALFORMED_FRAME,
                f"{self.role.value} cannot receive {kind.value} in state {old.value}",
            )
        self.state = new
        return new
