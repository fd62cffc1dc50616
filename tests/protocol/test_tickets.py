"""protocol/tickets.py: tickets bound to sessions, results kept until fetched + TTL."""

from __future__ import annotations

import itertools

import pytest
from starwrs.protocol import control
from starwrs.protocol.errors import LocalProtocolError, RemoteProtocolError
from starwrs.protocol.events import Pending, Response
from starwrs.protocol.tickets import DEFAULT_TICKET_TTL, TicketStore


def counting_store(ttl: float = 10.0) -> TicketStore:
    counter = itertools.count(1)
    return TicketStore(ttl, new_ticket=lambda: f"tk-{next(counter)}")


def test_lifecycle() -> None:
    store = counting_store()
    ticket = store.issue("sessA", now=0.0)
    assert ticket == "tk-1"
    assert ticket in store
    assert store.poll(ticket, "sessA", now=1.0) == Pending()
    store.complete(ticket, Response(0, b"ARD<ERROR=0>"), now=100.0)
    assert store.poll(ticket, "sessA", now=1000.0) == Response(0, b"ARD<ERROR=0>")  # kept
    assert store.poll(ticket, "sessA", now=1009.9) == Response(0, b"ARD<ERROR=0>")  # re-poll
    with pytest.raises(RemoteProtocolError) as info:
        store.poll(ticket, "sessA", now=1010.0)
    assert info.value.code == 7010
    assert ticket not in store


def test_another_sessions_poll_is_7003() -> None:
    store = counting_store()
    ticket = store.issue("sessA", 0.0)
    with pytest.raises(RemoteProtocolError) as info:
        store.poll(ticket, "sessB", 0.0)
    assert info.value.code == 7003
    store.complete(ticket, Response(6101), 1.0)
    with pytest.raises(RemoteProtocolError) as info:
        store.poll(ticket, "sessB", 2.0)
    assert info.value.code == 7003
    assert store.poll(ticket, "sessA", 3.0) == Response(6101)


def test_unknown_ticket_is_7010() -> None:
    store = counting_store()
    with pytest.raises(RemoteProtocolError) as info:
        store.poll("nope", "sessA", 0.0)
    assert info.value.code == 7010
    with pytest.raises(LocalProtocolError) as linfo:
        store.complete("nope", Response(0), 0.0)
    assert linfo.value.code == 7010


def test_expire_purges_only_fetched_results_past_ttl() -> None:
    store = counting_store(ttl=5.0)
    pending = store.issue("s", 0.0)
    done = store.issue("s", 0.0)
    unfetched = store.issue("s", 0.0)
    store.complete(done, Response(0), 0.0)
    store.complete(unfetched, Response(0), 0.0)
    store.poll(done, "s", 1.0)
    assert store.expire(5.9) == 0
    assert store.expire(6.0) == 1
    assert len(store) == 2
    assert pending in store
    assert unfetched in store
    store.poll(unfetched, "s", 7.0)
    with pytest.raises(LocalProtocolError) as info:  # completing an expired ticket
        store.complete(unfetched, Response(0), 12.0)
    assert info.value.code == 7010


def test_default_tickets_are_unguessable_and_fit_the_payload() -> None:
    store = TicketStore()
    assert store.ttl == DEFAULT_TICKET_TTL == 3600.0
    tickets = {store.issue("s", 0.0) for _ in range(100)}
    assert len(tickets) == 100
    for ticket in tickets:
        assert control.decode_ticket(control.encode_ticket(ticket)) == ticket
        assert len(ticket) >= 20


def test_duplicate_ticket_ids_are_refused() -> None:
    store = TicketStore(new_ticket=lambda: "same")
    store.issue("s", 0.0)
    with pytest.raises(LocalProtocolError):
        store.issue("s", 0.0)
