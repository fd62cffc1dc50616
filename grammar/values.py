"""Reading plain values out of parsed trees (the inverse of ``codecs.list_group``)."""

from __future__ import annotations

from starwrs.grammar.model import Group, TList, Value

__all__ = ["text_items"]


def text_items(value: Value | None) -> tuple[str, ...]:
    """The text items of a list value: ``<RM~INBX>``, ``RM~INBX``, ``<RM>``, ``RM``, ``<>``."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, TList):
        items: list[str] = []
        for item in value.items:
            items.extend(text_items(item))
        return tuple(items)
    if isinstance(value, Group):
        out: list[str] = []
        for member in value.members:
            if member.key is None:
                out.extend(text_items(member.value))
        return tuple(out)
    return ()  # a tagged group or a sequence is not a list of text
