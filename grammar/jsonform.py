"""The message tree as JSON: the stable shape ``starwrs parse`` prints.

Theory of operation
-------------------
The shape is documented in the README and never changes within a major version::

    MESSAGE = {"acronym": "GRTL" | null, "members": [MEMBER, ...]}
    MEMBER  = {"key": "DATA CAT" | null, "value": VALUE}
    VALUE   = "text"
            | {"group": [MEMBER, ...]}                  <...>
            | {"tag": "A", "group": [MEMBER, ...]}      A<...>
            | {"seq": [VALUE, ...]}                     glued pieces
            | {"list": [VALUE, ...]}                    a~b~c

:func:`dumps` writes canonical JSON (sorted keys, no optional white space, UTF-8
text as is); :func:`from_json` turns the shape back into a tree, checking it, so
fixtures and tools can be written in either form.
"""

from __future__ import annotations

import json
from typing import Any

from starwrs.grammar.errors import ErrorCode, MessageError
from starwrs.grammar.model import Group, Member, Message, Seq, Tagged, TList, Value

__all__ = ["dumps", "from_json", "to_json"]

JSONValue = str | dict[str, Any]


def to_json(message: Message) -> dict[str, Any]:
    """Return the JSON shape of *message* (see the module docstring)."""
    return {"acronym": message.acronym, "members": _members_json(message.members)}


def dumps(message: Message, *, indent: int | None = None) -> str:
    """Return canonical JSON text for *message* (pretty-printed with *indent*)."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(
        to_json(message), ensure_ascii=False, sort_keys=True, indent=indent, separators=separators
    )


def _members_json(members: tuple[Member, ...]) -> list[dict[str, Any]]:
    return [{"key": m.key, "value": _value_json(m.value)} for m in members]


def _value_json(value: Value) -> JSONValue:
    if isinstance(value, str):
        return value
    if isinstance(value, Group):
        return {"group": _members_json(value.members)}
    if isinstance(value, Tagged):
        return {"tag": value.tag, "group": _members_json(value.group.members)}
    if isinstance(value, Seq):
        return {"seq": [_value_json(p) for p in value.parts]}
    return {"list": [_value_json(i) for i in value.items]}


def from_json(data: Any) -> Message:
    """Build a message tree from its JSON shape.

    Raises:
        MessageError: 6611 when *data* is not the documented shape.
    """
    if not isinstance(data, dict) or set(data) != {"acronym", "members"}:
        raise _shape("a message is {'acronym': ..., 'members': [...]}")
    acronym = data["acronym"]
    if acronym is not None and not isinstance(acronym, str):
        raise _shape("'acronym' must be text or null")
    return Message(acronym, _members(data["members"]))


def _members(data: Any) -> tuple[Member, ...]:
    if not isinstance(data, list):
        raise _shape("'members' must be a list")
    out: list[Member] = []
    for item in data:
        if not isinstance(item, dict) or set(item) != {"key", "value"}:
            raise _shape("a member is {'key': ..., 'value': ...}")
        key = item["key"]
        if key is not None and not isinstance(key, str):
            raise _shape("'key' must be text or null")
        out.append(Member(key, _value(item["value"])))
    return tuple(out)


def _value(data: Any) -> Value:
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        keys = set(data)
        if keys == {"group"}:
            return Group(_members(data["group"]))
        if keys == {"tag", "group"} and isinstance(data["tag"], str):
            return Tagged(data["tag"], Group(_members(data["group"])))
        if keys == {"seq"} and isinstance(data["seq"], list):
            parts = tuple(_value(p) for p in data["seq"])
            if any(isinstance(p, (Seq, TList)) for p in parts):
                raise _shape("a 'seq' holds groups, tagged groups and text")
            return Seq(parts)  # type: ignore[arg-type]
        if keys == {"list"} and isinstance(data["list"], list):
            items = tuple(_value(i) for i in data["list"])
            if any(isinstance(i, TList) for i in items):
                raise _shape("a 'list' cannot hold a list")
            return TList(items)  # type: ignore[arg-type]
    raise _shape(f"not a value: {data!r:.60}")


def _shape(message: str) -> MessageError:
    return MessageError(ErrorCode.INCORRECT_INPUT, f"bad JSON message shape: {message}", 0)
