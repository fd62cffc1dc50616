"""Message tree -> canonical wire text.

Theory of operation
-------------------
One canonical text per tree: the acronym (if any) glued to ``<``, members joined by
``,`` with no optional white space, keys followed by ``=``, groups in ``<...>``, list
items joined by ``~``, glued pieces written one after another.  Text goes through
:func:`starwrs.grammar._text.escape`.  ``serialize(parse(x))`` is canonical and
``parse(serialize(m)) == m`` for every tree that keeps the invariants of
:mod:`starwrs.grammar.model`.
"""

from __future__ import annotations

from starwrs.grammar._text import escape
from starwrs.grammar.model import Group, Member, Message, Seq, Tagged, TList, Value

__all__ = ["serialize", "serialize_value"]


def serialize(message: Message) -> str:
    """Return the canonical wire text of *message*.

    Args:
        message: a tree as :func:`starwrs.grammar.parse` returns it.

    Returns:
        The canonical text, e.g. ``GRTL<PRODUCT=V,DATATYPE=R,DATA CAT=P,IO=O>``.
    """
    out: list[str] = [message.acronym or ""]
    _members(message.members, out)
    return "".join(out)


def serialize_value(value: Value) -> str:
    """Return the canonical wire text of one value (no key)."""
    out: list[str] = []
    _value(value, out)
    return "".join(out)


def _members(members: tuple[Member, ...], out: list[str]) -> None:
    out.append("<")
    first = True
    for member in members:
        if not first:
            out.append(",")
        first = False
        if member.key is not None:
            out.append(escape(member.key))
            out.append("=")
        _value(member.value, out)
    out.append(">")


def _value(value: Value, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(escape(value))
    elif isinstance(value, Group):
        _members(value.members, out)
    elif isinstance(value, Tagged):
        out.append(escape(value.tag))
        _members(value.group.members, out)
    elif isinstance(value, Seq):
        for part in value.parts:
            _value(part, out)
    elif isinstance(value, TList):
        first = True
        for item in value.items:
            if not first:
                out.append("~")
            first = False
            _value(item, out)
    else:  # pragma: no cover - guarded by the type checker
        raise TypeError(f"not a message value: {value!r}")
