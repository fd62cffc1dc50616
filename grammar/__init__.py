"""Metadata messages: parse, serialize and validate (PROTOCOL.md section 5).

>>> from starwrs.grammar import parse, serialize
>>> msg = parse("GRTL<PRODUCT=V, DATATYPE=R, DATA CAT=P, IO=O>")
>>> msg.acronym, msg.get("DATA CAT")
('GRTL', 'P')
>>> serialize(msg)
'GRTL<PRODUCT=V,DATATYPE=R,DATA CAT=P,IO=O>'
"""

# ruff: noqa: E402 -- the guard must run before any compiled module can be imported
from starwrs.grammar import _speedups

_speedups.install(__path__)

from starwrs.grammar.errors import ErrorCode, MessageError, StarwrsError
from starwrs.grammar.model import Group, Member, Message, Seq, Tagged, TList, Value
from starwrs.grammar.parser import parse
from starwrs.grammar.serializer import serialize, serialize_value

__all__ = [
    "ErrorCode",
    "Group",
    "Member",
    "Message",
    "MessageError",
    "Seq",
    "StarwrsError",
    "TList",
    "Tagged",
    "Value",
    "parse",
    "serialize",
    "serialize_value",
]
