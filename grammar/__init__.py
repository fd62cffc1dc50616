"""Metadata messages: parse, serialize and validate (PROTOCOL.md section 5).

>>> from starwrs.grammar import parse, serialize
>>> msg = parse("GRTL<PRODUCT=V, DATATYPE=R, DATA CAT=P, IO=O>")
>>> msg.acronym, msg.get("DATA CAT")
('GRTL', 'P')
>>> serialize(msg)
'GRTL<PRODUCT=V,DATATYPE=R,DATA CAT=P,IO=O>'
"""

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
