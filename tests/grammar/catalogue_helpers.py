"""Helpers for the catalogue tests: seed fixtures, message edits, typed-instance strategies."""

from __future__ import annotations

import dataclasses
import json
import string
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from starwrs.grammar import Group, Member, Message, Seq, Tagged, TList, Value, parse, serialize
from starwrs.grammar.catalogue_rm import (
    Control,
    Node,
    TemplateCategory,
    TemplateEntry,
    UserReportCategory,
    UserReportEntry,
)
from starwrs.grammar.codecs import (
    MAX_ID,
    Choice,
    DateRange,
    Flag,
    Id,
    IdList,
    Int,
    Raw,
    Rows,
    Schedule,
    ScheduleCodec,
    SortBy,
    SortKey,
    Stamp,
    Text,
    Values,
)
from starwrs.grammar.errors import MessageError
from starwrs.grammar.typed import Nested, TypedGroup, TypedMessage
from starwrs.grammar.vocab import ScheduleKind

SEED_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "seed"


def seed_index() -> list[dict[str, Any]]:
    """The entries of ``fixtures/seed/index.json``."""
    data = json.loads((SEED_DIR / "index.json").read_text(encoding="utf-8"))
    entries: list[dict[str, Any]] = data["fixtures"]
    return entries


def seed_text(name: str) -> str:
    """The exact text of one seed fixture."""
    return (SEED_DIR / name).read_text(encoding="utf-8")


# -- editing messages ------------------------------------------------------------------


def value_of(wire: str) -> Value:
    """Parse one wire value: ``value_of("<1~2>")``."""
    return parse(f"X<K={wire}>").members[0].value


def drop(text: str, *keys: str) -> str:
    """*text* without its top-level members named *keys*."""
    msg = parse(text)
    return serialize(Message(msg.acronym, tuple(m for m in msg.members if m.key not in keys)))


def put(text: str, key: str, wire: str) -> str:
    """*text* with member *key* set to the wire value *wire* (replaced, else appended)."""
    msg = parse(text)
    new = Member(key, value_of(wire) if wire else "")
    members = [new if m.key == key else m for m in msg.members]
    if new not in members:
        members.append(new)
    return serialize(Message(msg.acronym, tuple(members)))


# -- strategies for valid typed instances ------------------------------------------------

#: every character the serializer escapes, white space, letters, digits, non-ASCII
_ALPHABET = st.sampled_from(list("<>=,~\\\x01 \t\naZz09#*/.&%é·漢\u2028\U0001f4de"))


def _text(min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[str]:
    return st.text(alphabet=_ALPHABET, min_size=min_size, max_size=max_size)


def _codec_text(codec: Text) -> st.SearchStrategy[str]:
    if codec.pattern is not None:
        if "@" in codec.pattern.pattern:
            word = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=10)
            strat = st.builds(lambda a, b: f"{a}@{b}", word, word)
        else:
            strat = st.text(string.digits, min_size=1, max_size=8)
    elif codec.exact_len is not None:
        strat = st.text(string.digits, min_size=codec.exact_len, max_size=codec.exact_len)
    else:
        strat = _text(max_size=min(codec.max_len or 30, 30))
    limit = codec.max_len
    return strat if limit is None else strat.filter(lambda s: len(s) <= limit)


_STAMPS = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0)
)
_IDS = st.integers(0, MAX_ID)


def _schedules() -> st.SearchStrategy[Schedule]:
    def build(kind: ScheduleKind, stamps: list[datetime]) -> Schedule:
        ordered = sorted(set(stamps))
        pairs = [DateRange(ordered[i], ordered[i + 1]) for i in range(0, len(ordered) - 1, 2)]
        if kind is ScheduleKind.ADHOC and not pairs:
            pairs = [DateRange(datetime(1998, 6, 2), datetime(1998, 7, 15, 12))]
        return Schedule(kind, tuple(pairs))

    return st.builds(build, st.sampled_from(ScheduleKind), st.lists(_STAMPS, max_size=6))


def _build_raw_values() -> st.SearchStrategy[Value]:
    """Free-form values keeping the model's invariants, never empty."""
    text = _text(max_size=6)
    group = st.lists(st.builds(Member, st.none() | text, text), min_size=1, max_size=2).map(
        lambda ms: Group(tuple(ms))
    )
    tagged = st.builds(Tagged, text, group)
    seq = st.lists(st.one_of(group, tagged), min_size=2, max_size=2).map(lambda p: Seq(tuple(p)))
    tlist = st.lists(text, min_size=2, max_size=3).map(lambda i: TList(tuple(i)))
    return st.one_of(text, text, group, tagged, seq, tlist)


_RAW = _build_raw_values()


def _raw_values() -> st.SearchStrategy[Value]:
    return _RAW


def _node() -> st.SearchStrategy[Node]:
    control = st.builds(Control, _text(), _text(), _text())
    return st.builds(
        Node, st.integers(0, 9999), _text(), _text(), st.lists(control, max_size=3).map(tuple)
    )


def _reports(codec: Any) -> st.SearchStrategy[Any]:
    name = type(codec).__name__
    if name == "_TemplateReports":
        entry: st.SearchStrategy[Any] = st.builds(TemplateEntry, _text(), _IDS, _text())
        category: st.SearchStrategy[Any] = st.builds(
            TemplateCategory, _text(), st.lists(entry, max_size=3).map(tuple)
        )
    else:
        entry = st.builds(UserReportEntry, _text(), _IDS, st.booleans(), _text(), _text())
        category = st.builds(UserReportCategory, _text(), st.lists(entry, max_size=3).map(tuple))
    return st.lists(category, min_size=1, max_size=3).map(tuple)


def codec_values(codec: Any) -> st.SearchStrategy[Any]:
    """Valid typed values for one codec."""
    if isinstance(codec, Text):
        return _codec_text(codec)
    if isinstance(codec, Id):
        return _IDS
    if isinstance(codec, Int):
        return st.integers(codec.lo, codec.hi)
    if isinstance(codec, Flag):
        return st.booleans()
    if isinstance(codec, Choice):
        members: list[Enum] = list(codec.by_text.values())
        return st.sampled_from(members)
    if isinstance(codec, Stamp):
        return _STAMPS
    if isinstance(codec, IdList):
        ids = st.lists(st.integers(0, 999), min_size=1, max_size=6).map(tuple)
        limit = codec.max_len
        return ids if limit is None else ids.filter(lambda t: len("~".join(map(str, t))) <= limit)
    if isinstance(codec, Values):
        limit = codec.item_max or 12
        return st.lists(_text(max_size=limit), min_size=1, max_size=4).map(tuple)
    if isinstance(codec, SortBy):
        key = st.builds(SortKey, st.integers(0, 99999), st.sampled_from(["A", "D"]))
        return st.lists(key, min_size=1, max_size=4).map(tuple)
    if isinstance(codec, ScheduleCodec):
        return _schedules()
    if isinstance(codec, Rows):
        row = st.lists(_text(), min_size=1, max_size=3).map(tuple)
        return st.lists(row, min_size=1, max_size=3).map(tuple)
    if isinstance(codec, Raw):
        return _raw_values()
    if isinstance(codec, Nested):
        # A group with nothing in it is written <> and read back as absent (None).
        return instances(codec.cls).filter(lambda group: group._encode_members() != ())
    if type(codec).__name__ == "_NodeCodec":
        return _node()
    if type(codec).__name__ in ("_TemplateReports", "_UserReports"):
        return _reports(codec)
    raise TypeError(f"no strategy for {codec!r}")


def _valid(instance: TypedGroup) -> bool:
    """Whether the catalogue accepts *instance* (rules, required and conditional params)."""
    try:
        if isinstance(instance, TypedMessage):
            type(instance).from_message(instance.to_message())
        else:
            instance.check()
    except MessageError:
        return False
    return True


def instances(cls: type[Any], **overrides: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Instances of a typed class that the catalogue accepts.

    Required parameters are always generated; optional ones are present with
    probability 3/4 so that conditionally required ones are usually there; the
    combinations that still break a rule are filtered out.  *overrides* replace
    the strategy of named fields.
    """
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for bound in cls.params():
        values = codec_values(bound.spec.codec)
        if bound.name == "error":
            values = st.one_of(st.just(0), values)
        if bound.spec.repeated:
            fields[bound.name] = st.lists(values, max_size=2).map(tuple)
        elif bound.spec.required:
            fields[bound.name] = values
        else:
            fields[bound.name] = st.one_of(values, values, values, st.just(bound.default))
    for fld in dataclasses.fields(cls):
        if fld.name == "rows" and fld.name not in fields:
            fields["rows"] = st.lists(_raw_values(), max_size=2).map(tuple)
    fields.update(overrides)
    strategy = st.fixed_dictionaries(fields).map(lambda kw: cls(**kw)).filter(_valid)
    # deferred: a short repr (the full one runs to hundreds of kB and warns)
    return st.deferred(lambda: strategy)
