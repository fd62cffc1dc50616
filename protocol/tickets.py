"""The ticket store behind asynchronous requests and polls (PROTOCOL.md section 3).

Theory of operation
-------------------
An asynchronous request (mech 1) is answered at once with a ticket; the work runs;
a later poll (mech 2, on a new connection) gets status 1 until the result is in,
then the result.  :class:`TicketStore` is that bookkeeping, sans-IO: it never looks
at a clock, every call takes ``now`` (seconds, any monotonic origin), so the
dispatcher passes ``trio.current_time()`` and tests pass whatever they like.

Rules:

* a ticket belongs to the session that submitted the work; a poll from another
  session gets 7003 (not entitled);
* a result is kept until it is fetched, then for ``ttl`` seconds more (default one
  hour) so a poll whose answer was lost can be repeated; after that, and for a
  ticket never issued, a poll gets 7010;
* tickets are unguessable (``secrets.token_urlsafe``), 1-128 visible ASCII
  characters as the ticket payload requires.

:meth:`TicketStore.poll` returns the event to send (:class:`Pending` or the final
:class:`Response`) and raises :class:`RemoteProtocolError` with 7003 or 7010,
whose code is the status to answer with.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from starwrs.protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from starwrs.protocol.events import Pending, Response

__all__ = ["DEFAULT_TICKET_TTL", "TicketStore"]

#: seconds a fetched result stays available -- PROTOCOL.md section 3
DEFAULT_TICKET_TTL = 3600.0


def _new_ticket() -> str:
    return secrets.token_urlsafe(16)


@dataclass(slots=True)
class _Entry:
    session: str
    issued: float
    result: Response | None = None
    fetched: float | None = None


class TicketStore:
    """Tickets of one dispatcher: pending work and results awaiting their poll.

    Args:
        ttl: seconds a result stays available after it was first fetched.
        new_ticket: makes a fresh ticket id (tests pass a counter).
    """

    def __init__(
        self, ttl: float = DEFAULT_TICKET_TTL, *, new_ticket: Callable[[], str] = _new_ticket
    ) -> None:
        self.ttl = ttl
        self._new_ticket = new_ticket
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, ticket: object) -> bool:
        return ticket in self._entries

    def issue(self, session_key: str, now: float) -> str:
        """Register new work for *session_key*; return its ticket.

        Raises:
            LocalProtocolError: 7009 ``new_ticket`` returned a ticket in use.
        """
        ticket = self._new_ticket()
        if ticket in self._entries:
            raise LocalProtocolError(ErrorCode.MALFORMED_FRAME, "ticket id issued twice")
        self._entries[ticket] = _Entry(session_key, now)
        return ticket

    def complete(self, ticket: str, result: Response, now: float) -> None:
        """Store the final answer of *ticket*'s work.

        Args:
            ticket: the ticket from :meth:`issue`.
            result: the answer a poll will get (any status but 1).
            now: the current time.

        Raises:
            LocalProtocolError: 7010 the ticket is unknown or expired.
        """
        entry = self._entries.get(ticket)
        if entry is None or self._expired(entry, now):
            raise LocalProtocolError(ErrorCode.UNKNOWN_TICKET, "unknown or expired ticket")
        entry.result = result

    def poll(self, ticket: str, session_key: str, now: float) -> Pending | Response:
        """Answer a poll: :class:`Pending` or the stored result.

        The first time a result is returned starts its ``ttl``.

        Raises:
            RemoteProtocolError: 7010 unknown or expired ticket; 7003 the ticket
                belongs to another session.
        """
        entry = self._entries.get(ticket)
        if entry is not None and self._expired(entry, now):
            del self._entries[ticket]
            entry = None
        if entry is None:
            raise RemoteProtocolError(ErrorCode.UNKNOWN_TICKET, "unknown or expired ticket")
        if not hmac.compare_digest(entry.session.encode(), session_key.encode()):
            raise RemoteProtocolError(ErrorCode.NOT_ENTITLED, "the ticket is not this session's")
        if entry.result is None:
            return Pending()
        if entry.fetched is None:
            entry.fetched = now
        return entry.result

    def _expired(self, entry: _Entry, now: float) -> bool:
        return entry.fetched is not None and now - entry.fetched >= self.ttl

    def expire(self, now: float) -> int:
        """Forget results fetched more than ``ttl`` ago; return how many went."""
        gone = [t for t, e in self._entries.items() if self._expired(e, now)]
        for ticket in gone:
            del self._entries[ticket]
        return len(gone)
