"""The typed message catalogue: which class validates which message, per service.

Theory of operation
-------------------
Every message class of the catalogue modules is registered under the service
whose proxy receives it (and its answer under the same service):

======  =========================================================================
RM      Appendix A (GRTL ... URSA, GPL/GPLA of every kind), Appendix B (NRL/NRLA),
        Appendix F (METADATA: no acronym)
DSS     Appendix D: the ARD sent to the fulfilling server, its ARDA
INBX    Appendices C and G: A, D (one item / all items), L, F, U, Z; METADATA
        (the ``.mtd`` files the inbox stores)
OE      StarOE: VU/VUA, GUA/GUAA (:mod:`catalogue_oe`); GPL/GPLA (the pick lists
        are StarOE's); the admin requests UAPP, UENB (:mod:`catalogue_session`)
DSP     the dispatcher itself: LON/LONA, LOFF/LOFA, ENTC/ENTA
        (:mod:`catalogue_session`, docs/runtime.md)
ARB     the arbitrator's operations (:mod:`catalogue_ods`)
HARV    the harvest: CDRB/CDRA, a collector's batch over the network
        (:mod:`catalogue_harvest`)
======  =========================================================================

:func:`validate` looks the message's acronym up in its service (the header's
``target``: ``RM``, ``DSS``, ``INBX``, ``OE``; padding and case do not matter).
Without a service the first service that knows the acronym is used, in the order
RM, DSS, INBX, OE -- so ``ARD``/``ARDA`` mean the Report Manager's (Appendix A), and
the fulfilling server's (Appendix D) must be asked for with ``service="DSS"``.
An acronym with several forms (``D``, ``GPL``) is resolved from the message's
contents (:func:`catalogue_inbox.delete_form`, :func:`catalogue_picklist.pick_list_form`).

Code-assignment rules
---------------------
* an acronym the service does not know (or a missing acronym where the service has
  no METADATA) -> 6104 for RM, DSS and OE, 5103 for INBX (and 6104 when no
  service is given), the message echoing the acronym;
* GPL without a pick-list token -> 6701, with an unknown one -> 6610;
* everything else: the class's own rules (see each catalogue module and
  :mod:`starwrs.grammar.typed`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from starwrs.grammar import (
    catalogue_fulfil,
    catalogue_harvest,
    catalogue_inbox,
    catalogue_metadata,
    catalogue_ods,
    catalogue_oe,
    catalogue_picklist,
    catalogue_rm,
    catalogue_session,
)
from starwrs.grammar.errors import ErrorCode, MessageError
from starwrs.grammar.model import Message
from starwrs.grammar.typed import TypedMessage

__all__ = ["SERVICES", "entries", "known_acronyms", "lookup", "resolve", "validate"]

#: the services with a catalogue, in the order tried when no service is given
SERVICES: tuple[str, ...] = ("RM", "DSS", "INBX", "OE", "DSP", "ARB", "HARV")

Resolver = Callable[[Message], type[TypedMessage]]
_Entry = tuple[tuple[type[TypedMessage], ...], Resolver | None]


def _build() -> dict[str, dict[str | None, _Entry]]:
    registry: dict[str, dict[str | None, _Entry]] = {service: {} for service in SERVICES}

    def add(
        service: str,
        messages: Mapping[str, tuple[type[TypedMessage], ...]]
        | Mapping[str | None, tuple[type[TypedMessage], ...]],
        resolvers: Mapping[str, Resolver] | None = None,
    ) -> None:
        table = registry[service]
        for acronym, classes in messages.items():
            if acronym in table:
                raise RuntimeError(f"{service} {acronym!r} registered twice")
            resolver = (resolvers or {}).get(acronym) if acronym is not None else None
            table[acronym] = (classes, resolver)

    add("RM", catalogue_rm.MESSAGES)
    add("RM", catalogue_picklist.MESSAGES, catalogue_picklist.RESOLVERS)
    add("RM", catalogue_fulfil.MESSAGES_RM)
    add("RM", catalogue_metadata.MESSAGES)
    add("DSS", catalogue_fulfil.MESSAGES_DSS)
    add("DSS", catalogue_ods.DSS_OPS_MESSAGES)
    add("ARB", catalogue_ods.ARB_MESSAGES)
    add("HARV", catalogue_harvest.HARV_MESSAGES)
    add("INBX", catalogue_inbox.MESSAGES, catalogue_inbox.RESOLVERS)
    add("INBX", catalogue_metadata.MESSAGES)
    add("OE", catalogue_oe.MESSAGES)
    add("OE", catalogue_picklist.MESSAGES, catalogue_picklist.RESOLVERS)
    add("OE", catalogue_session.OE_ADMIN_MESSAGES)
    add("DSP", catalogue_session.DSP_MESSAGES)
    return registry


_REGISTRY = _build()


def _service(service: str | None) -> str | None:
    if service is None:
        return None
    name = service.strip().upper()
    if name not in _REGISTRY:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
    return name


def _find(acronym: str | None, service: str | None) -> tuple[str | None, _Entry | None]:
    name = _service(service)
    if name is not None:
        return name, _REGISTRY[name].get(acronym)
    for candidate in SERVICES:
        entry = _REGISTRY[candidate].get(acronym)
        if entry is not None:
            return candidate, entry
    return None, None


def known_acronyms() -> set[str]:
    """Every acronym some service's catalogue knows (requests and answers)."""
    found: set[str] = set()
    for table in _REGISTRY.values():
        found.update(a for a in table if a is not None)
    return found


def lookup(acronym: str | None, service: str | None = None) -> tuple[type[TypedMessage], ...]:
    """The classes an acronym can be in a service (several for ``D`` and ``GPL``).

    Args:
        acronym: the wire acronym, or None for a body without one (METADATA).
        service: ``RM``, ``DSS``, ``INBX`` or ``OE``; None for the first that
            knows the acronym (RM, DSS, INBX, OE).

    Returns:
        The classes, or ``()`` for an unknown acronym.

    Raises:
        ValueError: for an unknown service name.
    """
    return (_find(acronym, service)[1] or ((), None))[0]


def resolve(message: Message, service: str | None = None) -> type[TypedMessage]:
    """The class that validates *message* (see :func:`validate`).

    Raises:
        MessageError: 6104 / 5103 for an unknown acronym; 6701 / 6610 for a GPL
            without a known pick-list token.
        ValueError: for an unknown service name.
    """
    name, entry = _find(message.acronym, service)
    if entry is None:
        code = ErrorCode.INBOX_INVALID_REQUEST if name == "INBX" else ErrorCode.NO_VALID_REQUEST
        where = f"the {name} service" if name else "any service"
        what = f"request {message.acronym!r}" if message.acronym else "a message without acronym"
        raise MessageError(code, f"{what} is not known to {where}", key=message.acronym)
    classes, resolver = entry
    return resolver(message) if resolver is not None else classes[0]


def validate(message: Message, service: str | None = None) -> TypedMessage:
    """Validate a parsed message against the catalogue and return its typed form.

    Args:
        message: a tree from :func:`starwrs.grammar.parse`.
        service: the receiving service (``RM``, ``DSS``, ``INBX``, ``OE``), or None
            to take the first that knows the acronym (RM first: ``ARD`` is then the
            Report Manager's).

    Returns:
        An instance of the message's class; ``validate(m).to_message()`` is the
        canonical tree.

    Raises:
        MessageError: with the Appendix E code of the first violation (offset 0).
        ValueError: for an unknown service name.
    """
    return resolve(message, service).from_message(message)


def entries() -> Iterator[tuple[str, str | None, tuple[type[TypedMessage], ...]]]:
    """Every (service, acronym, classes) of the catalogue, for documentation and tests."""
    for service in SERVICES:
        for acronym, (classes, _resolver) in _REGISTRY[service].items():
            yield service, acronym, classes
