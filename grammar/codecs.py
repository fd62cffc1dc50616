"""Value codecs: one wire :data:`~starwrs.grammar.model.Value` <-> one typed Python value.

Theory of operation
-------------------
A codec knows one kind of parameter value -- text with a ``Char (n)`` limit, an id,
a flag, a code from a vocabulary, a timestamp, a list of column ids, a sort order, a
schedule, rows of a pick list, or a free-form value kept as the tree -- and does two
things:

* ``decode(value, ctx)`` turns a *non-empty* wire value into the typed value, or
  raises :class:`Bad` saying what is wrong;
* ``encode(typed)`` returns the canonical wire value, the one the serializer writes.

``decode(encode(x)) == x`` for every typed value a codec can return.  Codecs never
see empty values (``""`` or ``<>``): :mod:`starwrs.grammar.typed` treats those as
"present but empty" before any codec runs.

Code-assignment rules
---------------------
A codec does not know which message or service it serves, so it names no wire code
itself except where the seed ties a code to the value's own structure:

* :class:`Bad` with ``bad_id=True`` -- an id that is not 0..2147483647 -- becomes the
  family's bad-id code (6115 for the Report Manager family, 5101 for the Inbox);
* :class:`Text` raises its ``pattern_code`` (when given) for a value that does not
  match its pattern -- ``MMADDR`` without ``@`` is 5179 in the Inbox;
* :class:`ScheduleCodec` names its codes: a START that is empty, missing or
  unpaired is 6602, an END that is empty, missing or unpaired is 6603, an unknown
  key inside the schedule is 6610; a bad date, a start after its end or
  overlapping pairs are 6103;
* every other :class:`Bad` becomes the parameter's own "invalid" code when it has
  one, else the family's (6103 / 5101).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import ClassVar, Generic, Literal, NamedTuple, TypeVar

from starwrs.grammar.errors import ErrorCode
from starwrs.grammar.model import Group, Member, Seq, Tagged, TList, Value
from starwrs.grammar.vocab import ScheduleKind

__all__ = [
    "MAX_ID",
    "NO_CTX",
    "Bad",
    "Choice",
    "Codec",
    "Ctx",
    "DateRange",
    "Flag",
    "Id",
    "IdList",
    "Int",
    "Raw",
    "Rows",
    "Schedule",
    "ScheduleCodec",
    "SortBy",
    "SortKey",
    "Stamp",
    "Text",
    "Values",
    "is_empty",
    "list_group",
]

#: the seed's limit on every unique id ("Limit ... is 2147483647")
MAX_ID = 2147483647

T = TypeVar("T")
E = TypeVar("E", bound=Enum)


def is_empty(value: Value) -> bool:
    """True for a value that is present but carries nothing: ``K=`` or ``K=<>``."""
    return value == "" or (type(value) is Group and not value.members)


class Bad(Exception):
    """A value that does not fit its codec (internal; becomes a MessageError).

    Attributes:
        reason: what is wrong, in words, without the parameter name.
        code: a wire code fixed by the value's structure, or None to let the
            parameter / family decide.
        bad_id: True when the value is a malformed or out-of-range id.
    """

    def __init__(self, reason: str, code: ErrorCode | None = None, *, bad_id: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.bad_id = bad_id


class Ctx(NamedTuple):
    """Where a value sits: the message label (``ARD``) and the dotted key (``THRESHOLD.ANI``).

    A NamedTuple rather than a dataclass: one is made per decoded value, and a
    tuple is the cheapest immutable record CPython builds.
    """

    label: str
    key: str


#: the context handed to codecs that are not :attr:`Codec.contextual`
NO_CTX = Ctx("", "")


class Codec(Generic[T]):
    """Base class: decode a non-empty wire value, encode a typed value canonically."""

    __slots__ = ()

    #: True for a codec that reads its *ctx* (a nested typed group names its keys
    #: after it); every other codec is handed :data:`NO_CTX`, which saves building
    #: a context per value on the hot path.
    contextual: ClassVar[bool] = False

    def decode(self, value: Value, ctx: Ctx) -> T:  # pragma: no cover - abstract
        """Return the typed value of *value*, or raise :class:`Bad`."""
        raise NotImplementedError

    def encode(self, value: T) -> Value:  # pragma: no cover - abstract
        """Return the canonical wire value of *value*."""
        raise NotImplementedError

    def is_void(self, value: T) -> bool:
        """True when *value* carries nothing and reads as absent (an empty nested group)."""
        return False


def _text(value: Value) -> str:
    if not isinstance(value, str):
        raise Bad("must be plain text, not a bracketed or listed value")
    return value


def _items(value: Value) -> list[str]:
    """Flatten ``a``, ``a~b``, ``<a~b>``, ``<a,b>`` (SOH too) into item texts."""
    if type(value) is str:
        return [value]
    parts: tuple[Value, ...] | list[Value]
    if type(value) is TList:
        parts = value.items
    elif type(value) is Group:
        members = value.members
        if len(members) == 1 and members[0].key is None:  # the usual <a~b~c>
            inner = members[0].value
            parts = inner.items if type(inner) is TList else (inner,)
        else:
            parts = []
            for member in members:
                if member.key is not None:
                    raise Bad(f"list items have no keys (found {member.key!r})")
                inner = member.value
                parts.extend(inner.items if type(inner) is TList else (inner,))
    else:
        raise Bad("must be a list such as <a~b~c>")
    out: list[str] = []
    for part in parts:
        if type(part) is not str:
            raise Bad("list items must be plain text")
        if not part:
            raise Bad("list has an empty item")
        out.append(part)
    return out


def _id(text: str) -> int:
    """An id's value, or :class:`Bad` (``bad_id``) when it is not 0..MAX_ID."""
    if not (text.isdigit() and text.isascii()) or len(text) > 10:
        raise Bad(f"must be an id from 0 to {MAX_ID} (got {text[:40]!r})", bad_id=True)
    number = int(text)
    if number > MAX_ID:
        raise Bad(f"must be an id from 0 to {MAX_ID} (got {text[:40]!r})", bad_id=True)
    return number


def list_group(items: list[str]) -> Group:
    """The canonical list group: ``<>``, ``<a>`` or ``<a~b~c>``."""
    if not items:
        return Group(())
    if len(items) == 1:
        return Group((Member(None, items[0]),))
    return Group((Member(None, TList(tuple(items))),))


class Text(Codec[str]):
    """Free text with the seed's ``Char (n)`` limit and optional exact length / pattern."""

    __slots__ = ("exact_len", "max_len", "pattern", "pattern_code", "pattern_doc")

    def __init__(
        self,
        max_len: int | None = None,
        *,
        exact_len: int | None = None,
        pattern: str | None = None,
        pattern_doc: str = "",
        pattern_code: ErrorCode | None = None,
    ) -> None:
        self.max_len = max_len
        self.exact_len = exact_len
        self.pattern = re.compile(pattern, re.DOTALL) if pattern else None
        self.pattern_doc = pattern_doc or (f"of the form {pattern}" if pattern else "")
        self.pattern_code = pattern_code

    def decode(self, value: Value, ctx: Ctx) -> str:
        text = _text(value)
        if self.exact_len is not None and len(text) != self.exact_len:
            raise Bad(f"must be exactly {self.exact_len} characters (got {len(text)})")
        if self.max_len is not None and len(text) > self.max_len:
            raise Bad(f"is longer than Char ({self.max_len}) (got {len(text)} characters)")
        if self.pattern is not None and not self.pattern.fullmatch(text):
            raise Bad(f"must be {self.pattern_doc} (got {text[:40]!r})", self.pattern_code)
        return text

    def encode(self, value: str) -> Value:
        return value


class Id(Codec[int]):
    """A unique id: decimal digits, at most 10 of them, 0..2147483647."""

    __slots__ = ()

    def decode(self, value: Value, ctx: Ctx) -> int:
        return _id(_text(value))

    def encode(self, value: int) -> Value:
        return str(value)


class Int(Codec[int]):
    """A bounded decimal integer (sizes, counts, widths, offsets, error codes)."""

    __slots__ = ("hi", "lo", "signed")

    def __init__(self, lo: int, hi: int, *, signed: bool = False) -> None:
        self.lo = lo
        self.hi = hi
        self.signed = signed

    def decode(self, value: Value, ctx: Ctx) -> int:
        text = _text(value)
        body = text[1:] if self.signed and text[:1] in "+-" else text
        if not (body.isascii() and body.isdigit()) or len(body) > 12:
            raise Bad(f"must be a whole number (got {text[:40]!r})")
        number = int(text)
        if not self.lo <= number <= self.hi:
            raise Bad(f"must be from {self.lo} to {self.hi} (got {number})")
        return number

    def encode(self, value: int) -> Value:
        return str(value)


class Flag(Codec[bool]):
    """``0`` / ``1`` -> False / True."""

    __slots__ = ()

    def decode(self, value: Value, ctx: Ctx) -> bool:
        text = _text(value)
        if text not in ("0", "1"):
            raise Bad(f"must be 0 or 1 (got {text[:40]!r})")
        return text == "1"

    def encode(self, value: bool) -> Value:
        return "1" if value else "0"


class Choice(Codec[E]):
    """One code of a vocabulary enum (:mod:`starwrs.grammar.vocab`), optionally a subset."""

    __slots__ = ("by_text", "enum")

    def __init__(self, enum: type[E], only: tuple[E, ...] | None = None) -> None:
        self.enum = enum
        members = only if only is not None else tuple(enum)
        self.by_text = {str(m.value): m for m in members}

    def decode(self, value: Value, ctx: Ctx) -> E:
        text = _text(value)
        try:
            return self.by_text[text]
        except KeyError:
            allowed = ", ".join(self.by_text)
            raise Bad(f"must be one of {allowed} (got {text[:40]!r})") from None

    def encode(self, value: E) -> Value:
        return str(value.value)


class Stamp(Codec[datetime]):
    """A timestamp in one fixed layout: ``YYYYMMDDhhmm`` or ``YYYY-MM-DD HH:MM``."""

    __slots__ = ("layout", "regex")

    _LAYOUTS = {
        "YYYYMMDDhhmm": r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})",
        "YYYY-MM-DD HH:MM": r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2})",
    }

    def __init__(self, layout: Literal["YYYYMMDDhhmm", "YYYY-MM-DD HH:MM"]) -> None:
        self.layout = layout
        self.regex = re.compile(self._LAYOUTS[layout], re.ASCII)

    def decode(self, value: Value, ctx: Ctx) -> datetime:
        text = _text(value)
        return self.parse12(text) if self.layout == "YYYYMMDDhhmm" else self.parse(text)

    def parse(self, text: str) -> datetime:
        """Parse *text* in this layout or raise :class:`Bad`."""
        match = self.regex.fullmatch(text)
        if match is None:
            raise Bad(f"must be a date/time {self.layout} (got {text[:40]!r})")
        year, month, day, hour, minute = map(int, match.groups())
        try:
            return datetime(year, month, day, hour, minute)
        except ValueError:
            raise Bad(f"is not a real date/time (got {text!r})") from None

    @staticmethod
    def parse12(text: str) -> datetime:
        """Parse ``YYYYMMDDhhmm`` (the schedule's layout) or raise :class:`Bad`.

        The same rule as ``Stamp("YYYYMMDDhhmm").parse``, without the regex: every
        scheduled report request carries two of these.
        """
        if len(text) != 12 or not (text.isdigit() and text.isascii()):
            raise Bad(f"must be a date/time YYYYMMDDhhmm (got {text[:40]!r})")
        try:
            return datetime(
                int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:])
            )
        except ValueError:
            raise Bad(f"is not a real date/time (got {text!r})") from None

    def encode(self, value: datetime) -> Value:
        if self.layout == "YYYYMMDDhhmm":
            day = f"{value.year:04d}{value.month:02d}{value.day:02d}"
            return f"{day}{value.hour:02d}{value.minute:02d}"
        day = f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        return f"{day} {value.hour:02d}:{value.minute:02d}"


class IdList(Codec[tuple[int, ...]]):
    """Column ids: ``<54~55~67>``, ``<44,36>``, SOH-separated, or one bare id.

    ``max_len`` is the ``Char (n)`` limit on the ids written ``~``-joined.
    """

    __slots__ = ("max_len",)

    def __init__(self, max_len: int | None = None) -> None:
        self.max_len = max_len

    def decode(self, value: Value, ctx: Ctx) -> tuple[int, ...]:
        items = _items(value)
        joined = "".join(items)
        if joined.isdigit() and joined.isascii() and max(map(len, items)) <= 10:
            ids = tuple(map(int, items))  # all digits: only the range is left to check
            if max(ids) > MAX_ID:
                ids = tuple([_id(item) for item in items])  # names the first bad one
        else:
            ids = tuple([_id(item) for item in items])
        if self.max_len is not None and len("~".join(map(str, ids))) > self.max_len:
            raise Bad(f"is longer than Char ({self.max_len})")
        return ids

    def encode(self, value: tuple[int, ...]) -> Value:
        return list_group([str(v) for v in value])


class Values(Codec[tuple[str, ...]]):
    """Single or multiple text values: ``<4~1>``, ``<A~F>``, ``<800#1, 800#2>``."""

    __slots__ = ("item_max",)

    def __init__(self, item_max: int | None = None) -> None:
        self.item_max = item_max

    def decode(self, value: Value, ctx: Ctx) -> tuple[str, ...]:
        items = tuple(_items(value))
        if self.item_max is not None:
            for item in items:
                if len(item) > self.item_max:
                    raise Bad(f"has an item longer than Char ({self.item_max})")
        return items

    def encode(self, value: tuple[str, ...]) -> Value:
        return list_group(list(value))


class SortKey(NamedTuple):
    """One SORTBY entry: a column id and ``A`` (ascending) or ``D`` (descending)."""

    column: int
    order: Literal["A", "D"]


class SortBy(Codec[tuple[SortKey, ...]]):
    """``SORTBY=<54D>``, ``<5A~4D>``: column id followed by A or D, per item."""

    __slots__ = ()

    _ITEM = re.compile(r"(\d{1,10})([AD])", re.ASCII)

    def decode(self, value: Value, ctx: Ctx) -> tuple[SortKey, ...]:
        keys: list[SortKey] = []
        for item in _items(value):
            match = self._ITEM.fullmatch(item)
            if match is None:
                raise Bad(f"items must be a column id followed by A or D, e.g. 1A (got {item!r})")
            column = int(match.group(1))
            if column > MAX_ID:
                raise Bad(f"column id {column} is above {MAX_ID}", bad_id=True)
            keys.append(SortKey(column, "A" if match.group(2) == "A" else "D"))
        return tuple(keys)

    def encode(self, value: tuple[SortKey, ...]) -> Value:
        return list_group([f"{key.column}{key.order}" for key in value])


class Rows(Codec[tuple[tuple[str, ...], ...]]):
    """Rows of text: ``<<1,DIAL-1><2,CARD>>`` (pick lists, fulfilling-server totals)."""

    __slots__ = ()

    def decode(self, value: Value, ctx: Ctx) -> tuple[tuple[str, ...], ...]:
        if not isinstance(value, Group):
            raise Bad("must be rows such as <<a,b><c,d>>")
        rows: list[tuple[str, ...]] = []
        for member in value.members:
            if member.key is not None:
                raise Bad(f"rows have no keys (found {member.key!r})")
            pieces = member.value.parts if isinstance(member.value, Seq) else (member.value,)
            for piece in pieces:
                if not isinstance(piece, Group):
                    raise Bad("each row must be a bracketed group <a,b,...>")
                row: list[str] = []
                for cell in piece.members:
                    if cell.key is not None or not isinstance(cell.value, str):
                        raise Bad("row cells must be plain text without keys")
                    row.append(cell.value)
                rows.append(tuple(row))
        return tuple(rows)

    def encode(self, value: tuple[tuple[str, ...], ...]) -> Value:
        groups = [Group(tuple(Member(None, cell) for cell in row)) for row in value]
        if len(groups) == 1:
            return Group((Member(None, groups[0]),))
        return Group((Member(None, Seq(tuple(groups))),)) if groups else Group(())


class Raw(Codec[Value]):
    """A free-form hierarchical value kept as the tree (BILLING, GEO, ...)."""

    __slots__ = ()

    def decode(self, value: Value, ctx: Ctx) -> Value:
        return value

    def encode(self, value: Value) -> Value:
        return value


class DateRange(NamedTuple):
    """One START/END pair of an ad hoc schedule."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Schedule:
    """``SCHEDULE=A<START=...,END=...>``: the kind and its (start, end) pairs, in order."""

    kind: ScheduleKind
    ranges: tuple[DateRange, ...] = ()


_STAMP12 = Stamp("YYYYMMDDhhmm")


class ScheduleCodec(Codec[Schedule]):
    """``A<START=199806020000,END=199807151200,...>`` or a bare kind ``D``."""

    __slots__ = ()

    _KINDS = {kind.value: kind for kind in ScheduleKind}

    def decode(self, value: Value, ctx: Ctx) -> Schedule:
        members: tuple[Member, ...] = ()
        if isinstance(value, str):
            tag = value
        elif isinstance(value, Tagged):
            tag, members = value.tag, value.group.members
        else:
            raise Bad("must be a schedule type with its dates, e.g. A<START=...,END=...>")
        kind = self._KINDS.get(tag)
        if kind is None:
            raise Bad(f"schedule type must be one of A, H, D, W, M (got {tag[:40]!r})")
        ranges = self._pairs(members)
        if kind is ScheduleKind.ADHOC and not ranges:
            raise Bad("an ad hoc schedule needs START/END pairs", ErrorCode.START_DATE_NULL)
        if len(ranges) > 1:
            for before, after in itertools.pairwise(sorted(ranges)):
                if after.start < before.end:
                    raise Bad("START/END pairs overlap")
        return Schedule(kind, tuple(ranges))

    def _pairs(self, members: tuple[Member, ...]) -> list[DateRange]:
        ranges: list[DateRange] = []
        start: datetime | None = None
        for member in members:
            key = member.key
            if key != "START" and key != "END":  # the usual spelling, else normalise
                key = (key or "").strip().upper()
                if key not in ("START", "END"):
                    shown = member.key if member.key is not None else "a member without a key"
                    raise Bad(
                        f"only START and END belong in a schedule (found {shown})",
                        ErrorCode.UNKNOWN_TOKEN,
                    )
            value = member.value
            if type(value) is not str or not value:
                code = ErrorCode.START_DATE_NULL if key == "START" else ErrorCode.END_DATE_NULL
                if is_empty(value):
                    raise Bad(f"{key} has no date", code)
                raise Bad(f"{key} must be plain text, not a bracketed or listed value")
            try:
                stamp = Stamp.parse12(value)
            except Bad as bad:
                raise Bad(f"{key} {bad.reason}") from None
            if key == "START":
                if start is not None:
                    raise Bad("START without its END", ErrorCode.END_DATE_NULL)
                start = stamp
            else:
                if start is None:
                    raise Bad("END without its START", ErrorCode.START_DATE_NULL)
                if stamp < start:
                    raise Bad("END is before its START")
                ranges.append(DateRange(start, stamp))
                start = None
        if start is not None:
            raise Bad("START without its END", ErrorCode.END_DATE_NULL)
        return ranges

    def encode(self, value: Schedule) -> Value:
        if not value.ranges:
            return value.kind.value
        members: list[Member] = []
        for start, end in value.ranges:
            members.append(Member("START", _STAMP12.encode(start)))
            members.append(Member("END", _STAMP12.encode(end)))
        return Tagged(value.kind.value, Group(tuple(members)))
