"""Get Pick List (GPL) and its acknowledgement (GPLA), every kind of Appendix A.

Theory of operation
-------------------
A ``GPL`` names its pick-list type with a token -- ``PL_ACCESS``, ``PL_FIELDS``,
``PL_DURATION``, ``PL_TIMEZONE``, ``PL_HIER``, ``PL_GEO``, ``PL_RANGE``,
``PL_USAGE``, ``PL_LANG`` or ``PL_CURR`` -- and then that kind's parameters.  The
seed's tables write the token both bare (``PL_FIELDS``) and as a key
(``PL_ACCESS=``); all of ``PL_X``, ``PL_X=`` and ``PL_X=PL_X`` are read, and the
canonical form is the bare token first: ``GPL<PL_ACCESS,IO=I,PRODUCT=T,DATACAT=P>``.
:func:`pick_list_form` chooses the class from the token.

``GPLA`` carries the list under the same token as a key, its rows as groups:
``GPLA<ERROR=0,PL_ACCESS=<<1,DIAL-1><2,CARD>>>``.

Several GPL tables of the seed also list ``ERROR=`` (RANGE, USAGE, LANG, CURR) and
call the request a "Response": copy slips from the acknowledgement tables.  A GPL is
a request and carries no ERROR (``ERROR=`` is an unknown parameter, 6610).  The
LANG and CURR requests take no parameter besides the token.

Code-assignment rules (Report Manager family defaults, plus)
------------------------------------------------------------
* no pick-list token -> 6701 (required tokens missing); a ``PL_...`` token that
  is not one of the ten -> 6610; two different tokens, or the token twice -> 6103;
  ``PL_X=`` with a value other than ``PL_X`` -> 6103;
* IO other than I or O -> 6103; DATACAT other than U, P, B -> 6103;
  RPTTMPLID (alias RPTTMPID) missing -> 6831, empty -> 6832;
  USERRPTID missing -> 6841, empty -> 6842;
* GPLA with ERROR=0: no list -> 6701; more than one list -> 6103.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar, Self

from starwrs.grammar.codecs import Choice, Id, Rows, is_empty
from starwrs.grammar.errors import ErrorCode
from starwrs.grammar.model import Member, Message
from starwrs.grammar.typed import (
    TypedMessage,
    TypedResponse,
    decode_members,
    norm_key,
    param,
    typed,
)
from starwrs.grammar.vocab import DataCategory, Direction, PickList, Product

__all__ = [
    "MESSAGES",
    "RESOLVERS",
    "GetPickListAccess",
    "GetPickListAck",
    "GetPickListCurrency",
    "GetPickListDuration",
    "GetPickListFields",
    "GetPickListGeo",
    "GetPickListHierarchy",
    "GetPickListLanguage",
    "GetPickListRange",
    "GetPickListTimeZone",
    "GetPickListUsage",
    "pick_list_form",
]

_IO = Choice(Direction, only=(Direction.INBOUND, Direction.OUTBOUND))


def _token_of(member: Member) -> str | None:
    """The normalised ``PL_...`` token a member names, if any."""
    if member.key is None:
        return norm_key(member.value) if isinstance(member.value, str) else None
    return norm_key(member.key)


class _PickListRequest(TypedMessage):
    """Shared decoding of every GPL kind: the token is taken out, then the rest."""

    __slots__ = ()
    ACRONYM = "GPL"
    PICK_LIST: ClassVar[PickList]

    @classmethod
    def _decode_members(cls, members: tuple[Member, ...], label: str, prefix: str) -> Self:
        token = cls.PICK_LIST.value
        rest: list[Member] = []
        seen = False
        for member in members:
            if _token_of(member) != token:
                rest.append(member)
                continue
            if seen:
                raise cls.error_at(ErrorCode.RM_PARAMETER_ERROR, label, token, "given twice")
            seen = True
            value = member.value
            if member.key is not None and value != "" and value != token:
                raise cls.error_at(
                    ErrorCode.RM_PARAMETER_ERROR, label, token, f"must be {token} or empty"
                )
        if not seen:
            raise cls.error_at(
                ErrorCode.REQUIRED_TOKENS_MISSING, label, token, "pick-list type missing"
            )
        return decode_members(cls, tuple(rest), label, prefix)

    def _leading_members(self) -> tuple[Member, ...]:
        return (Member(None, self.PICK_LIST.value),)


@typed
class GetPickListAccess(_PickListRequest):
    """GPL PL_ACCESS -- access codes for a product, direction and data category."""

    PICK_LIST = PickList.ACCESS
    io: Direction = param("IO", _IO, required=True)
    product: Product = param("PRODUCT", Choice(Product), required=True)
    data_cat: DataCategory = param(
        "DATACAT", Choice(DataCategory), aliases=("DATA CAT",), required=True
    )


@typed
class GetPickListFields(_PickListRequest):
    """GPL PL_FIELDS -- the fields (columns) of a report template."""

    PICK_LIST = PickList.FIELDS
    template_id: int = param("RPTTMPLID", Id(), aliases=("RPTTMPID",), required=True)


@typed
class GetPickListDuration(_PickListRequest):
    """GPL PL_DURATION -- duration ranges."""

    PICK_LIST = PickList.DURATION


@typed
class GetPickListTimeZone(_PickListRequest):
    """GPL PL_TIMEZONE -- time zones."""

    PICK_LIST = PickList.TIMEZONE


@typed
class GetPickListHierarchy(_PickListRequest):
    """GPL PL_HIER -- the billing hierarchy for a user report."""

    PICK_LIST = PickList.HIER
    user_report_id: int = param("USERRPTID", Id(), required=True)


@typed
class GetPickListGeo(_PickListRequest):
    """GPL PL_GEO -- the geographical hierarchy for a user report."""

    PICK_LIST = PickList.GEO
    user_report_id: int = param("USERRPTID", Id(), required=True)


@typed
class GetPickListRange(_PickListRequest):
    """GPL PL_RANGE -- static distance ranges."""

    PICK_LIST = PickList.RANGE
    io: Direction = param("IO", _IO, required=True)
    product: Product = param("PRODUCT", Choice(Product), required=True)
    data_cat: DataCategory = param(
        "DATACAT", Choice(DataCategory), aliases=("DATA CAT",), required=True
    )


@typed
class GetPickListUsage(_PickListRequest):
    """GPL PL_USAGE -- static usage codes."""

    PICK_LIST = PickList.USAGE
    io: Direction = param("IO", _IO, required=True)
    product: Product = param("PRODUCT", Choice(Product), required=True)
    data_cat: DataCategory = param(
        "DATACAT", Choice(DataCategory), aliases=("DATA CAT",), required=True
    )


@typed
class GetPickListLanguage(_PickListRequest):
    """GPL PL_LANG -- languages."""

    PICK_LIST = PickList.LANG


@typed
class GetPickListCurrency(_PickListRequest):
    """GPL PL_CURR -- currencies."""

    PICK_LIST = PickList.CURR


Table = tuple[tuple[str, ...], ...]


@typed
class GetPickListAck(TypedResponse):
    """GPLA -- one pick list, under its token: ``PL_ACCESS=<<1,DIAL-1><2,CARD>>``."""

    ACRONYM = "GPLA"
    access: Table | None = param("PL_ACCESS", Rows(), default=None)
    fields: Table | None = param("PL_FIELDS", Rows(), default=None)
    duration: Table | None = param("PL_DURATION", Rows(), default=None)
    timezone: Table | None = param("PL_TIMEZONE", Rows(), default=None)
    hier: Table | None = param("PL_HIER", Rows(), default=None)
    geo: Table | None = param("PL_GEO", Rows(), default=None)
    range: Table | None = param("PL_RANGE", Rows(), default=None)
    usage: Table | None = param("PL_USAGE", Rows(), default=None)
    lang: Table | None = param("PL_LANG", Rows(), default=None)
    curr: Table | None = param("PL_CURR", Rows(), default=None)

    @classmethod
    def _decode_members(cls, members: tuple[Member, ...], label: str, prefix: str) -> Self:
        # ``PL_HIER=<>`` is an empty list, not an absent one.
        empty: dict[str, Table] = {}
        for member in members:
            bound = cls._find(member.key) if member.key is not None else None
            if bound is not None and bound.name != "error" and is_empty(member.value):
                empty[bound.name] = ()
        return decode_members(cls, members, label, prefix, empty)

    def lists(self) -> dict[PickList, Table]:
        """The lists present, by kind (one in a well-formed answer)."""
        out: dict[PickList, Table] = {}
        for bound in self.params()[1:]:
            rows = getattr(self, bound.name)
            if rows is not None:
                out[PickList(bound.spec.wire)] = rows
        return out

    def check(self) -> None:
        if self.error != 0:
            return
        present = self.lists()
        if not present:
            raise GetPickListAck.violation(
                ErrorCode.REQUIRED_TOKENS_MISSING, "PL_", "no pick list in the answer"
            )
        if len(present) > 1:
            raise GetPickListAck.violation(
                ErrorCode.RM_PARAMETER_ERROR, "PL_", "more than one pick list in the answer"
            )


_REQUESTS: tuple[type[_PickListRequest], ...] = (
    GetPickListAccess,
    GetPickListFields,
    GetPickListDuration,
    GetPickListTimeZone,
    GetPickListHierarchy,
    GetPickListGeo,
    GetPickListRange,
    GetPickListUsage,
    GetPickListLanguage,
    GetPickListCurrency,
)
_BY_TOKEN: Mapping[str, type[_PickListRequest]] = {cls.PICK_LIST.value: cls for cls in _REQUESTS}


def pick_list_form(message: Message) -> type[TypedMessage]:
    """Choose the GPL class from the message's pick-list token.

    Raises:
        MessageError: 6701 without a token, 6610 for an unknown ``PL_`` token,
            6103 for two different tokens.
    """
    found: list[str] = []
    unknown: str | None = None
    for member in message.members:
        token = _token_of(member)
        if token is None:
            continue
        if token in _BY_TOKEN:
            if token not in found:
                found.append(token)
        elif token.startswith("PL_") and unknown is None:
            unknown = token
    if len(found) > 1:
        raise _PickListRequest.error_at(
            ErrorCode.RM_PARAMETER_ERROR,
            "GPL",
            found[1],
            f"a second pick-list type after {found[0]}",
        )
    if found:
        return _BY_TOKEN[found[0]]
    if unknown is not None:
        raise _PickListRequest.error_at(
            ErrorCode.UNKNOWN_TOKEN, "GPL", unknown, "unknown pick-list type"
        )
    raise _PickListRequest.error_at(
        ErrorCode.REQUIRED_TOKENS_MISSING,
        "GPL",
        "PL_",
        "pick-list type (PL_ACCESS, PL_FIELDS, ...) missing",
    )


#: acronym -> the classes it can be
MESSAGES: Mapping[str, tuple[type[TypedMessage], ...]] = {
    "GPL": _REQUESTS,
    "GPLA": (GetPickListAck,),
}

#: acronym -> how to choose among several classes
RESOLVERS: Mapping[str, Callable[[Message], type[TypedMessage]]] = {"GPL": pick_list_form}
