# cython: annotation_typing=False
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
value: ``parse(serialize(m)) == m``.  The install compiles this module with Cython,
which makes each class an extension type (``cython.cclass``; still a dataclass to
:mod:`dataclasses`): creating one is about three times cheaper, and a parse is mostly
creating them.  Run as plain Python they are ordinary frozen dataclasses
(:mod:`starwrs.grammar._cython`).  Either way a field accepts any object and is not
type-checked at run time; assigning one raises ``AttributeError`` (in plain Python
its subclass ``dataclasses.FrozenInstanceError``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from starwrs.grammar import _cython as cython
else:
    try:  # compiled: Cython's compile-time module, where cython.compiled is True
        import cython
    except ImportError:
        from starwrs.grammar import _cython as cython
    if not cython.compiled:  # plain Python (even with Cython installed): ours
        from starwrs.grammar import _cython as cython

__all__ = ["Group", "Member", "Message", "Scalar", "Seq", "TList", "Tagged", "Value"]


@cython.dataclasses.dataclass(frozen=True)
@cython.cclass
class Group:
    """``<m1,m2,...>``: an ordered tuple of members."""

    members: tuple[Member, ...]

    def get(self, key: str, default: Value | None = None) -> Value | None:
        """Return the value of the first member named *key* (case-sensitive)."""
        for member in self.members:
            if member.key == key:
                return member.value
        return default


@cython.dataclasses.dataclass(frozen=True)
@cython.cclass
class Tagged:
    """Text glued to a group: ``SCHEDULE=A<START=...>`` has tag ``A``."""

    tag: str
    group: Group


@cython.dataclasses.dataclass(frozen=True)
@cython.cclass
class Seq:
    """Glued pieces with no separator between them (``<a,b><c,d>``)."""

    parts: tuple[Group | Tagged | str, ...]


@cython.dataclasses.dataclass(frozen=True)
@cython.cclass
class TList:
    """A ``~``-separated list (``54~55~67``)."""

    items: tuple[Scalar, ...]


Scalar: TypeAlias = "str | Group | Tagged | Seq"
Value: TypeAlias = "str | Group | Tagged | Seq | TList"


@cython.dataclasses.dataclass(frozen=True)
@cython.cclass
class Member:
    """``KEY=value``, or a keyless ``value`` (``key is None``)."""

    key: str | None
    value: Value


@cython.dataclasses.dataclass(frozen=True)
@cython.cclass
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
