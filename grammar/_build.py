"""Turning a run of atoms into a value: shared by the Lark path and the scanner.

A member's value arrives as a run of atoms -- text, groups and ``~`` -- with no
separator between them.  ``~`` splits the run into list items; inside an item, text
followed by a group is that group's tag; one piece is the value itself, several are a
:class:`~starwrs.grammar.model.Seq`.  Both parsers call these functions, so their
trees are the same by construction.
"""

from __future__ import annotations

from starwrs.grammar.model import Group, Member, Seq, Tagged, TList, Value

__all__ = ["EMPTY_MEMBER", "item_value", "list_value", "normalize_members"]

#: ``<,>`` has two of these; ``<>`` is the empty group, not one of these
EMPTY_MEMBER = Member(None, "")


def item_value(pieces: list[Group | Tagged | str]) -> Group | Tagged | Seq | str:
    """Return the value of one list item made of glued *pieces*."""
    if not pieces:
        return ""
    if len(pieces) == 1:
        return pieces[0]
    return Seq(tuple(pieces))


def list_value(items: list[Group | Tagged | Seq | str]) -> Value:
    """Return a ``~`` list of *items* (at least two)."""
    return TList(tuple(items))


def normalize_members(members: list[Member]) -> tuple[Member, ...]:
    """``<>`` and ``< >`` parse as one empty member; that is the empty group."""
    if len(members) == 1 and members[0] == EMPTY_MEMBER:
        return ()
    return tuple(members)
