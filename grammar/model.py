"""The metadata message tree: what `parse` returns and `serialize` takes.

Theory of operation
-------------------
A metadata message (seed 001, Tables 1-2, Appendices A-G) is an optional acronym
followed by one bracketed body.  The body, and every bracketed group inside it, is an
ordered tuple of :class:`Member`.  A member has an optional key (``DATA CAT`` in
``DATA CAT=P``) and a :data:`Value`:

* ``str``     -- text, escapes already removed (``City Summary Outbound``);
* :class:`Group`  -- ``<...>``, a nested tuple of members;
* :class:`Tagged` -- text glued to a group: ``A<START=...,END=...>``, ``COLUMNS<44,36>``;
* :class:`Seq`    -- pieces glued together with no separator: ``<a,b><c,d>``,
  ``INBOUND<<...>>INBOUND<<...>>`` (each piece a Group or Tagged; text only last);
* :class:`TList`  -- ``~``-separated items: ``54~55~67``.

Invariants (``parse`` only produces trees that keep them; ``serialize`` relies on them):

* a key is ``None`` or non-empty text; a tag is non-empty text;
* a ``Seq`` has at least two parts, no ``Seq``/``TList`` inside it, and a ``str``
  part only as the last one (text before a group is that group's tag);
* a ``TList`` has at least two items, none of them a ``TList``;
* a group's members are never exactly one keyless empty member: ``<>`` is the
  empty group ``Group(())``.

Every class is a frozen, slotted dataclass, so trees are hashable and compare by
value: ``parse(serialize(m)) == m``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

__all__ = ["Group", "Member", "Message", "Scalar", "Seq", "TList", "Tagged", "Value"]


@dataclass(frozen=True, slots=True, init=False)
class Group:
    """``<m1,m2,...>``: an ordered tuple of members."""

    members: tuple[Member, ...]

    def __init__(self, members: tuple[Member, ...]) -> None:
        # Frozen dataclasses assign through object.__setattr__, which costs a third
        # of the fast scanner's time on a seed ARD; the slot descriptor's own
        # setter does the same thing without the lookup (the _SET_* names below).
        _SET_GROUP_MEMBERS(self, members)

    def get(self, key: str, default: Value | None = None) -> Value | None:
        """Return the value of the first member named *key* (case-sensitive)."""
        for member in self.members:
            if member.key == key:
                return member.value
        return default


@dataclass(frozen=True, slots=True, init=False)
class Tagged:
    """Text glued to a group: ``SCHEDULE=A<START=...>`` has tag ``A``."""

    tag: str
    group: Group

    def __init__(self, tag: str, group: Group) -> None:
        _SET_TAGGED_TAG(self, tag)  # see Group.__init__
        _SET_TAGGED_GROUP(self, group)


@dataclass(frozen=True, slots=True, init=False)
class Seq:
    """Glued pieces with no separator between them (``<a,b><c,d>``)."""

    parts: tuple[Group | Tagged | str, ...]

    def __init__(self, parts: tuple[Group | Tagged | str, ...]) -> None:
        _SET_SEQ_PARTS(self, parts)  # see Group.__init__


@dataclass(frozen=True, slots=True, init=False)
class TList:
    """A ``~``-separated list (``54~55~67``)."""

    items: tuple[Scalar, ...]

    def __init__(self, items: tuple[Scalar, ...]) -> None:
        _SET_TLIST_ITEMS(self, items)  # see Group.__init__


Scalar: TypeAlias = "str | Group | Tagged | Seq"
Value: TypeAlias = "str | Group | Tagged | Seq | TList"


@dataclass(frozen=True, slots=True, init=False)
class Member:
    """``KEY=value``, or a keyless ``value`` (``key is None``)."""

    key: str | None
    value: Value

    def __init__(self, key: str | None, value: Value) -> None:
        _SET_MEMBER_KEY(self, key)  # see Group.__init__
        _SET_MEMBER_VALUE(self, value)


# The slot descriptors' setters: assigning through them bypasses the frozen
# __setattr__ (which raises) exactly as dataclasses' own generated __init__ does.
_SET_GROUP_MEMBERS = Group.__dict__["members"].__set__
_SET_MEMBER_KEY = Member.__dict__["key"].__set__
_SET_MEMBER_VALUE = Member.__dict__["value"].__set__
_SET_TAGGED_TAG = Tagged.__dict__["tag"].__set__
_SET_TAGGED_GROUP = Tagged.__dict__["group"].__set__
_SET_SEQ_PARTS = Seq.__dict__["parts"].__set__
_SET_TLIST_ITEMS = TList.__dict__["items"].__set__


@dataclass(frozen=True, slots=True)
class Message:
    """A whole metadata message: ``GRTL<PRODUCT=V,...>``.

    ``acronym`` is ``None`` for a body with no acronym (``<METADATA=<...>>``).
    """

    acronym: str | None
    members: tuple[Member, ...]

    @property
    def body(self) -> Group:
        """The body as a :class:`Group` (handy for recursive code)."""
        return Group(self.members)

    def get(self, key: str, default: Value | None = None) -> Value | None:
        """Return the value of the first top-level member named *key*."""
        for member in self.members:
            if member.key == key:
                return member.value
        return default
