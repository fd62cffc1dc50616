"""What order entry says about a user, and the dispatcher's cache of it.

Theory of operation
-------------------
Seed 001: "the user's entitlements ... are fetched by the dispatch server from
StarOE at logon time and cached."  At logon the dispatcher asks OE ``VU`` (who is
this, with which password?) and ``GUA`` (which applications may they use?); the
answers are read here, leniently -- only the members the dispatcher needs, so OE
may add members without breaking logons:

* :func:`read_validation` -- ``VUA<ERROR=0,USERID,ENTPID,TIMEZONE,LANG,CURR>``;
* :func:`read_applications` -- ``GUAA<ERROR=0,USERID,APPS=<RM~INBX>,PRODUCTS=<V>,
  CORPIDS=<...>>``.  A GUAA whose ERROR is not 0, or that says ``ENABLED=0``,
  means OE no longer accepts the user (unknown or disabled): their sessions end.

A GUAA or VUA that does not parse, or lacks what it must carry, is order entry's
fault, never the user's: :class:`StarwrsError` 7006.

:class:`EntitlementCache` keeps each user's application codes in memory, at most
``max_users`` of them (least recently used dropped first).  OE's ``ENTC`` drops a
user's entry (:meth:`~EntitlementCache.drop`), so a change applies from the next
request, which misses and asks OE again -- once, however many requests for that
user miss at the same time (:meth:`~EntitlementCache.lookup`).  A *generation*
per user closes the race between a fetch that started before an ``ENTC`` and
finishes after it: the fetch took the generation first, and
:meth:`~EntitlementCache.put` refuses a stale one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio
from starwrs.grammar import Message, MessageError, parse
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.grammar.values import text_items

__all__ = [
    "Applications",
    "EntitlementCache",
    "Validation",
    "read_applications",
    "read_validation",
    "text_items",
]


@dataclass(frozen=True, slots=True)
class Validation:
    """Order entry's answer to ``VU``.

    Attributes:
        error: 0 when the user and password are right and the user is enabled.
        user_id: the user id as OE spells it.
        entp_id: the user's enterprise.
        timezone: default time zone.
        lang: default language.
        curr: default currency.
    """

    error: int
    user_id: str | None = None
    entp_id: str | None = None
    timezone: str | None = None
    lang: str | None = None
    curr: str | None = None


@dataclass(frozen=True, slots=True)
class Applications:
    """Order entry's answer to ``GUA``.

    Attributes:
        enabled: False when OE refused the user (ERROR not 0, or ``ENABLED=0``).
        apps: the frame targets the user may use (upper case).
        products: product ids (Appendix A: V, C, S, T, H).
        corp_ids: the corp ids the user may see.
    """

    enabled: bool
    apps: frozenset[str] = frozenset()
    products: tuple[str, ...] = ()
    corp_ids: tuple[str, ...] = ()


def _text(message: Message, key: str) -> str | None:
    value = message.get(key)
    return value if isinstance(value, str) and value else None


def _answer(payload: bytes, acronym: str) -> tuple[Message, int]:
    try:
        message = parse(payload.decode("utf-8"))
    except (UnicodeDecodeError, MessageError) as err:
        raise StarwrsError(
            ErrorCode.PROXY_UNAVAILABLE, f"order entry answered {acronym} with a bad message"
        ) from err
    error = message.get("ERROR")
    if not (isinstance(error, str) and error.isascii() and error.isdigit()):
        raise StarwrsError(ErrorCode.PROXY_UNAVAILABLE, f"order entry's {acronym} lacks ERROR")
    return message, int(error)


def read_validation(payload: bytes) -> Validation:
    """Read a ``VUA`` answer.

    Raises:
        StarwrsError: 7006 for an answer that is not a message with ``ERROR=``,
            or a success without ``ENTPID``.
    """
    message, error = _answer(payload, "VUA")
    if error:
        return Validation(error)
    entp_id = _text(message, "ENTPID")
    if entp_id is None:
        raise StarwrsError(ErrorCode.PROXY_UNAVAILABLE, "order entry's VUA lacks ENTPID")
    return Validation(
        0,
        user_id=_text(message, "USERID"),
        entp_id=entp_id,
        timezone=_text(message, "TIMEZONE"),
        lang=_text(message, "LANG"),
        curr=_text(message, "CURR"),
    )


def read_applications(payload: bytes) -> Applications:
    """Read a ``GUAA`` answer.

    Raises:
        StarwrsError: 7006 for an answer that is not a message with ``ERROR=``.
    """
    message, error = _answer(payload, "GUAA")
    if error or _text(message, "ENABLED") == "0":
        return Applications(False)
    return Applications(
        True,
        apps=frozenset(app.strip().upper() for app in text_items(message.get("APPS"))),
        products=text_items(message.get("PRODUCTS")),
        corp_ids=text_items(message.get("CORPIDS")),
    )


@dataclass(slots=True)
class _Flight:
    """One fetch from OE that every caller missing the same user waits for."""

    done: trio.Event = field(default_factory=trio.Event)
    result: Applications | None = None
    cached: bool = False
    error: StarwrsError | None = None


class EntitlementCache:
    """Each user's application codes, as order entry last said.

    Args:
        max_users: entries kept; the least recently used go first.
    """

    def __init__(self, max_users: int = 100_000) -> None:
        self.max_users = max_users
        self._apps: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._flights: dict[str, _Flight] = {}

    async def lookup(
        self, user_id: str, fetch: Callable[[], Awaitable[Applications]]
    ) -> Applications:
        """The user's applications: cached, or fetched once for every caller that
        misses at the same time (a restarted dispatcher meets a crowd).

        Args:
            user_id: the user.
            fetch: asks OE; called at most once per miss, whoever else waits.

        Returns:
            What OE said (``enabled`` False: OE refused the user) or the cache.

        Raises:
            StarwrsError: the fetch's own error (7006/7007), for every waiter.
        """
        while True:
            apps = self.get(user_id)
            if apps is not None:
                return Applications(True, apps)
            flight = self._flights.get(user_id)
            if flight is None:
                break
            await flight.done.wait()
            if flight.error is not None:
                raise StarwrsError(flight.error.code, flight.error.message)
            result = flight.result
            if result is not None and (flight.cached or not result.enabled):
                return result
            # the fetch was cancelled, or an ENTC overtook it: look again
        flight = self._flights[user_id] = _Flight()
        generation = self.generation(user_id)
        try:
            result = await fetch()
            flight.result = result
            if result.enabled:
                flight.cached = self.put(user_id, result.apps, generation)
            return result
        except StarwrsError as err:
            flight.error = err
            raise
        finally:
            del self._flights[user_id]
            flight.done.set()

    def __len__(self) -> int:
        return len(self._apps)

    def get(self, user_id: str) -> frozenset[str] | None:
        """The cached applications of *user_id*, or None on a miss."""
        apps = self._apps.get(user_id)
        if apps is not None:
            self._apps.move_to_end(user_id)
        return apps

    def generation(self, user_id: str) -> int:
        """Take before asking OE; give to :meth:`put` with the answer."""
        return self._generations.get(user_id, 0)

    def put(self, user_id: str, apps: frozenset[str], generation: int) -> bool:
        """Cache *apps* unless an :meth:`drop` came after *generation* was taken.

        Returns:
            True if cached.
        """
        if self._generations.get(user_id, 0) != generation:
            return False
        self._apps[user_id] = apps
        self._apps.move_to_end(user_id)
        while len(self._apps) > self.max_users:
            self._apps.popitem(last=False)
        return True

    def drop(self, user_id: str) -> None:
        """Forget *user_id*'s entry; fetches in flight will not cache theirs."""
        self._apps.pop(user_id, None)
        self._generations[user_id] = self._generations.get(user_id, 0) + 1
