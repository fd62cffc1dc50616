"""Inbox messages of seed 001: Appendix C (Add, ``Z``) and Appendix G (D, L, F, U).

Theory of operation
-------------------
The Inbox server takes five requests, each one letter: ``A`` (add an item; sent
by the Report Manager), ``D`` (delete one item by INBOXID, or all of a user's
items by USERID + ENTPID), ``L`` (list), ``F`` (fetch) and ``U`` (update), and
answers every one with ``Z<REQ=x,ERROR=n,...>``.  ``D`` has two forms: a ``D``
that names an INBOXID is "Delete Item", any other is "Delete All Items"
(:func:`delete_form` chooses).  The list acknowledgement's rows (the table's
``<data>``) are keyless members after the keyed ones: ``Z<REQ=L,ERROR=0,<...>,<...>>``.

INBOXID is an integer id everywhere (the tables say Char (10), Char (25) and
Char () for it; the Inbox assigns the ids, so one kind is used).  RQSTDT is read
as ``YYYY-MM-DD HH:MM``, the table's own format (its ``Char (12)`` is too short
for it).  ``REQUESTID`` on ``A`` is not in the Appendix C table but is in the
seed's own example, so it is accepted as an optional id.  RPTID stays text (Char (30),
as other fulfilling servers may use non-numeric report ids).  PRIORITY ("ONLY
news") and the notification overrides are accepted on any item and required on
none; TTL on ``U`` is optional (the table) but, when given, must be 1..999 (5112).
``U`` has no CATEGORY although Appendix E has 5113 "Category missing on Update":
the table wins, and 5113 is never raised.

Additions of PROTOCOL.md sections 6-7 (the inbox's files travel as bulk transfers):
``PART=D`` (data, the default) / ``PART=M`` (metadata) on ``A`` -- the half a bulk
put carries; a put with a PART needs no MSIZE, its size is the put's -- and on
``F``; the ``Z`` of a fetch or a put carries ``PART``, ``SIZE`` and ``SHA256``, and the
list's rows travel in ``ITEMS=<<...>...>`` (keyless rows are still read).

Code-assignment rules (Inbox family: missing / empty -> the parameter's own code,
else 5102; bad value -> 5101; unknown key or token -> 5101; wrong acronym -> 5103)
----------------------------------------------------------------------------------
* A: CATEGORY missing, empty or not R/D/F -> 5151; TYPE missing, empty or longer
  than 30 -> 5152; USERID or ENTPID missing, empty or invalid (ENTPID not 8
  characters, USERID over 20) -> 5153, except ENTPID missing or empty when
  UNOTIFY is 1, 2 or 3 -> 5164; RPTID missing for a report or call detail
  (CATEGORY R/D) -> 5154; COMPRESS missing/empty -> 5155; SEV missing when
  UNOTIFY is 1..3 -> 5156; RPTCATEGORY (alias RPTCATEGORIES) missing for a report
  -> 5157; LOC missing -> 5158; RQSTDT missing for a report or call detail ->
  5159; FSIZE missing -> 5160; RPTTITLE missing -> 5161; MSIZE missing for a
  report or call detail -> 5162; COMPRESS and LOC disagree (COMPRESS=1 but LOC not
  ending in ``_zip``, or COMPRESS=0 but it does) -> 5165; MMADDR without ``@`` ->
  5179;
* D (one item): INBOXID empty -> 5102; D (all items): USERID missing -> 5141,
  ENTPID missing -> 5102;
* L: USERID missing -> 5131; CATEGORY missing -> 5132; ENTPID missing -> 5102;
* F: INBOXID missing -> 5121;
* U: INBOXID or USERID missing -> 5111; TTL empty or not 1..999 -> 5112;
  ENTPID missing -> 5102;
* Z: TTL or rows with a REQ other than L -> 5101.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from starwrs.grammar.codecs import MAX_ID, Choice, Flag, Id, Int, Rows, Stamp, Text, is_empty
from starwrs.grammar.errors import ErrorCode
from starwrs.grammar.model import Member, Message, Value
from starwrs.grammar.typed import INBOX, TypedMessage, When, decode_members, norm_key, param, typed
from starwrs.grammar.vocab import InboxRequest, ItemCategory, Notify, Priority

__all__ = [
    "MESSAGES",
    "RESOLVERS",
    "Acknowledgment",
    "AddItem",
    "DeleteAllItems",
    "DeleteItem",
    "FetchItem",
    "ItemPart",
    "ListItems",
    "UpdateItem",
    "delete_form",
]

_E = ErrorCode
_ENTPID = Text(exact_len=8)
_NOTIFYING = (Notify.PAGE, Notify.EMAIL, Notify.EMAIL_AND_PAGE)


class ItemPart(StrEnum):
    """``PART=`` -- which file of an item: D = the data (report) file, M = its metadata."""

    DATA = "D"
    METADATA = "M"


def _report_or_data(values: Mapping[str, Any]) -> bool:
    return values["category"] in (ItemCategory.REPORT, ItemCategory.CALL_DETAIL)


def _report(values: Mapping[str, Any]) -> bool:
    return values["category"] is ItemCategory.REPORT


def _notifying(values: Mapping[str, Any]) -> bool:
    return values["notify"] in _NOTIFYING


_FOR_REPORT_OR_DATA = When("CATEGORY is R or D (a report or call detail)", _report_or_data)
_FOR_SYNC_REPORT_OR_DATA = When(
    "CATEGORY is R or D and no PART (a bulk put's size is its own)",
    lambda values: _report_or_data(values) and values["part"] is None,
)


@typed
class AddItem(TypedMessage):
    """A -- add an item (report, call detail or news) to a user's inbox."""

    FAMILY = INBOX
    ACRONYM = "A"
    severity: int | None = param(
        "SEV",
        Int(1, 3),
        required_if=(When("UNOTIFY is 1, 2 or 3", _notifying),),
        missing=_E.INBOX_ADD_SEV,
        default=None,
    )
    category: ItemCategory = param(
        "CATEGORY",
        Choice(ItemCategory),
        required=True,
        missing=_E.INBOX_ADD_CATEGORY,
        invalid=_E.INBOX_ADD_CATEGORY,
    )
    type: str = param(
        "TYPE", Text(30), required=True, missing=_E.INBOX_ADD_TYPE, invalid=_E.INBOX_ADD_TYPE
    )
    user_id: str = param(
        "USERID",
        Text(20),
        required=True,
        missing=_E.INBOX_ADD_ENTP_USER,
        invalid=_E.INBOX_ADD_ENTP_USER,
    )
    report_id: str | None = param(
        "RPTID",
        Text(30),
        required_if=(_FOR_REPORT_OR_DATA,),
        missing=_E.INBOX_ADD_RPTID,
        default=None,
    )
    priority: Priority | None = param("PRIORITY", Choice(Priority), default=None)
    compress: bool = param("COMPRESS", Flag(), required=True, missing=_E.INBOX_ADD_COMPRESS)
    notify: Notify = param("UNOTIFY", Choice(Notify), default=Notify.NONE)
    mm_addr: str | None = param(
        "MMADDR",
        Text(
            75,
            pattern=r".*@.*",
            pattern_doc="an address with @",
            pattern_code=_E.INBOX_NOTIFY_EMAIL,
        ),
        default=None,
    )
    mm_text: str | None = param("MMTEXT", Text(500), default=None)
    pager_type: str | None = param("PGT", Text(1), default=None)
    pager_pin: str | None = param(
        "PGPIN", Text(8, pattern=r"[0-9]+", pattern_doc="digits only"), default=None
    )
    pager_text: str | None = param("PGTXT", Text(240), aliases=("PGTXL",), default=None)
    report_category: str | None = param(
        "RPTCATEGORY",
        Text(50),
        aliases=("RPTCATEGORIES",),
        required_if=(When("CATEGORY is R (a report)", _report),),
        missing=_E.INBOX_ADD_RPTCATEGORY,
        default=None,
    )
    loc: str = param("LOC", Text(255), required=True, missing=_E.INBOX_ADD_LOC)
    entp_id: str = param(
        "ENTPID",
        _ENTPID,
        required=True,
        missing=_E.INBOX_ADD_ENTP_USER,
        invalid=_E.INBOX_ADD_ENTP_USER,
    )
    requested: datetime | None = param(
        "RQSTDT",
        Stamp("YYYY-MM-DD HH:MM"),
        required_if=(_FOR_REPORT_OR_DATA,),
        missing=_E.INBOX_ADD_RQSTDT,
        default=None,
    )
    fsize: int = param("FSIZE", Int(0, MAX_ID), required=True, missing=_E.INBOX_ADD_FSIZE)
    title: str = param("RPTTITLE", Text(255), required=True, missing=_E.INBOX_ADD_RPTTITLE)
    msize: int | None = param(
        "MSIZE",
        Int(0, MAX_ID),
        required_if=(_FOR_SYNC_REPORT_OR_DATA,),
        missing=_E.INBOX_ADD_MSIZE,
        default=None,
    )
    err_flag: bool = param("ERRFLAG", Flag(), default=False)
    request_id: int | None = param("REQUESTID", Id(), default=None)
    #: the half a bulk put carries (PROTOCOL.md section 7); None in a synchronous A
    part: ItemPart | None = param("PART", Choice(ItemPart), default=None)

    @classmethod
    def _decode_members(cls, members: tuple[Member, ...], label: str, prefix: str) -> Self:
        # 5164 before 5153: ENTPID absent (or empty) while a notification is asked for.
        keyed = {norm_key(m.key): m.value for m in members if m.key is not None}
        notify = keyed.get("UNOTIFY")
        entp = keyed.get("ENTPID")
        if notify in ("1", "2", "3") and (entp is None or is_empty(entp)):
            raise cls.error_at(
                _E.INBOX_ADD_ENTP_NOTIFY, label, "ENTPID", "required when UNOTIFY is 1, 2 or 3"
            )
        return decode_members(cls, members, label, prefix)

    def check(self) -> None:
        zipped = self.loc.lower().endswith("_zip")
        if self.compress != zipped:
            said = (
                "COMPRESS=1 but LOC does not end in _zip"
                if self.compress
                else ("COMPRESS=0 but LOC ends in _zip")
            )
            raise AddItem.violation(_E.INBOX_ADD_COMPRESS_LOC, "LOC", said)


@typed
class DeleteItem(TypedMessage):
    """D (one item) -- delete the item with this INBOXID."""

    FAMILY = INBOX
    ACRONYM = "D"
    inbox_id: int = param("INBOXID", Id(), required=True)


@typed
class DeleteAllItems(TypedMessage):
    """D (all items) -- delete every item of a user."""

    FAMILY = INBOX
    ACRONYM = "D"
    user_id: str = param("USERID", Text(20), required=True, missing=_E.INBOX_DELETE_USER_MISSING)
    entp_id: str = param("ENTPID", _ENTPID, required=True)


@typed
class ListItems(TypedMessage):
    """L -- list a user's items of one category (later than INBOXID, if given)."""

    FAMILY = INBOX
    ACRONYM = "L"
    entp_id: str = param("ENTPID", _ENTPID, required=True)
    user_id: str = param("USERID", Text(20), required=True, missing=_E.INBOX_LIST_USER_MISSING)
    category: ItemCategory = param(
        "CATEGORY", Choice(ItemCategory), required=True, missing=_E.INBOX_LIST_CATEGORY_MISSING
    )
    inbox_id: int | None = param("INBOXID", Id(), default=None)


@typed
class FetchItem(TypedMessage):
    """F -- fetch one item (its data; bulk transfer per PROTOCOL.md section 3)."""

    FAMILY = INBOX
    ACRONYM = "F"
    inbox_id: int = param("INBOXID", Id(), required=True, missing=_E.INBOX_FETCH_ID_MISSING)
    part: ItemPart = param("PART", Choice(ItemPart), default=ItemPart.DATA)


@typed
class UpdateItem(TypedMessage):
    """U -- acknowledge an item or change its time to live."""

    FAMILY = INBOX
    ACRONYM = "U"
    entp_id: str = param("ENTPID", _ENTPID, required=True)
    user_id: str = param("USERID", Text(20), required=True, missing=_E.INBOX_UPDATE_ID_MISSING)
    inbox_id: int = param("INBOXID", Id(), required=True, missing=_E.INBOX_UPDATE_ID_MISSING)
    ttl: int | None = param(
        "TTL",
        Int(1, 999),
        nonempty=True,
        empty=_E.INBOX_UPDATE_TTL,
        invalid=_E.INBOX_UPDATE_TTL,
        default=None,
    )
    ack: bool = param("ACK", Flag(), default=True)


@typed
class Acknowledgment(TypedMessage):
    """Z -- the Inbox's answer to A, D, L, F and U."""

    FAMILY = INBOX
    ACRONYM = "Z"
    req: InboxRequest = param("REQ", Choice(InboxRequest), required=True)
    error: int = param("ERROR", Int(0, 9999), required=True)
    inbox_id: int | None = param("INBOXID", Id(), default=None)
    ttl: int | None = param("TTL", Int(1, 999), default=None)
    #: F and bulk puts: which file, its size and SHA-256 (PROTOCOL.md section 6)
    part: ItemPart | None = param("PART", Choice(ItemPart), default=None)
    size: int | None = param("SIZE", Int(0, 2**63 - 1), default=None)
    sha256: str | None = param(
        "SHA256", Text(exact_len=64, pattern="[0-9a-f]{64}", pattern_doc="hex"), default=None
    )
    #: L: the rows of PROTOCOL.md section 6, ``ITEMS=<<INBOXID,CATEGORY,...>...>``
    items: tuple[tuple[str, ...], ...] = param("ITEMS", Rows(), default=())
    #: the list rows (the table's ``<data>``), keyless members after the others
    rows: tuple[Value, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the acknowledgement reports success (``ERROR=0``)."""
        return self.error == 0

    @classmethod
    def _decode_extras(
        cls, extras: tuple[Member, ...], decoded: Mapping[str, Any], label: str, prefix: str
    ) -> dict[str, Any]:
        return {"rows": tuple(member.value for member in extras)} if extras else {}

    def _trailing_members(self) -> tuple[Member, ...]:
        return tuple(Member(None, row) for row in self.rows)

    def check(self) -> None:
        if self.req is not InboxRequest.LIST:
            if self.ttl is not None:
                raise Acknowledgment.violation(_E.INBOX_PARSER, "TTL", "only in a list answer")
            if self.rows or self.items:
                raise Acknowledgment.violation(_E.INBOX_PARSER, "REQ", "rows only with REQ=L")


def delete_form(message: Message) -> type[TypedMessage]:
    """Choose the form of a ``D``: with an INBOXID, Delete Item; else Delete All Items."""
    for member in message.members:
        if member.key is not None and norm_key(member.key) == "INBOXID":
            return DeleteItem
    return DeleteAllItems


#: acronym -> the classes it can be
MESSAGES: Mapping[str, tuple[type[TypedMessage], ...]] = {
    "A": (AddItem,),
    "D": (DeleteItem, DeleteAllItems),
    "L": (ListItems,),
    "F": (FetchItem,),
    "U": (UpdateItem,),
    "Z": (Acknowledgment,),
}

#: acronym -> how to choose among several classes
RESOLVERS: Mapping[str, Callable[[Message], type[TypedMessage]]] = {"D": delete_form}
