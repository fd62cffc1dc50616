"""Property tests of the typed catalogue: round trips, and mutations ending only in codes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starwrs.grammar import (
    Group,
    Member,
    Message,
    MessageError,
    Seq,
    Tagged,
    Value,
    parse,
    serialize,
    typed,
)
from starwrs.grammar.catalogue import entries, resolve, validate
from starwrs.grammar.catalogue_picklist import GetPickListAck
from starwrs.grammar.codecs import Bad
from starwrs.grammar.errors import ErrorCode
from starwrs.grammar.strategies import messages
from starwrs.grammar.typed import TypedMessage

from ..conftest import scaled
from .catalogue_helpers import codec_values, instances, seed_index, seed_text

_FIRST_SERVICE: dict[type[TypedMessage], str] = {}
for _service, _acronym, _classes in entries():
    for _cls in _classes:
        _FIRST_SERVICE.setdefault(_cls, _service)
#: every class once, with the first service that registers it
CLASSES = sorted(((s, c) for c, s in _FIRST_SERVICE.items()), key=lambda p: (p[0], p[1].__name__))


def _strategy(cls: type[TypedMessage]) -> st.SearchStrategy[Any]:
    if cls is GetPickListAck:
        # exactly one list in a successful answer
        names = [b.name for b in cls.params() if b.name != "error"]

        def one(name: str) -> st.SearchStrategy[Any]:
            nones = {other: st.none() for other in names if other != name}
            rows = codec_values(next(b.spec.codec for b in cls.params() if b.name == name))
            return instances(cls, **nones, **{name: st.one_of(rows, st.just(()))})

        return st.sampled_from(names).flatmap(one)
    return instances(cls)


@pytest.mark.parametrize(("service", "cls"), CLASSES, ids=[f"{s}-{c.__name__}" for s, c in CLASSES])
@settings(max_examples=scaled(400) // 2)  # 25 a class here, 200 under the CI profile
@given(data=st.data())
def test_typed_round_trip(service: str, cls: type[TypedMessage], data: st.DataObject) -> None:
    instance = data.draw(_strategy(cls))
    text = serialize(instance.to_message())
    again = validate(parse(text), service)
    assert type(again) is cls
    assert again == instance
    assert serialize(again.to_message()) == text
    assert cls.from_message(instance.to_message()) == instance


# -- mutations of valid messages -------------------------------------------------------

BASES: list[tuple[str, str]] = [
    (str(e["service"]), seed_text(str(e["file"]))) for e in seed_index() if e["expect"] == "ok"
] + [
    ("RM", "GPL<PL_ACCESS,IO=I,PRODUCT=T,DATACAT=P>"),
    ("RM", "GPLA<ERROR=0,PL_ACCESS=<<1,DIAL-1><2,CARD>>>"),
    ("RM", "SRTL<ERROR=0,REPORTS=<Analyze Traffic=<City Summary,44,R>,<Longest,2,R>>,<B=<x,9,D>>>"),
    ("RM", "SRTD<ERROR=0,ID=44,NODE1=<1,General,GEN01>,NODE2=<2,Name,RN01,<TXT1,,NAME>>>"),
    ("RM", "SURL<ERROR=0,REPORTS=<Mine=<My Calls,245,1,R,19980602>>>"),
    ("RM", "CRD<USERRPTID=5,NAME=copy>"),
    ("RM", "URS<USERRPTID=5,ACTIVE=1>"),
    ("INBX", "D<INBOXID=5>"),
    ("INBX", "D<USERID=u,ENTPID=00022924>"),
    ("INBX", "L<ENTPID=00022924,USERID=u,CATEGORY=R,INBOXID=40>"),
    ("INBX", "F<INBOXID=42>"),
    ("INBX", "U<ENTPID=00022924,USERID=u,INBOXID=5,TTL=45,ACK=0>"),
    ("INBX", "Z<REQ=L,ERROR=0,INBOXID=40,TTL=45,<41,R,My Calls>>"),
    ("OE", "VU<USERID=jeanvnet2,PASSWORD=secret>"),
    ("OE", "GUAA<ERROR=0,USERID=u,APPS=<RM~INBX>>"),
]

_ODD_TEXT = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "A", "R", "Z", "2147483648", "x" * 300, "a@b", " "]),
    st.text(max_size=20),
)
_ODD_VALUE: st.SearchStrategy[Value] = st.one_of(
    _ODD_TEXT,
    st.just(Group(())),
    st.builds(lambda t: Group((Member(None, t), Member(None, t))), _ODD_TEXT),
    st.builds(
        lambda k, t: Group((Member(k, t),)), st.sampled_from(["START", "END", "X"]), _ODD_TEXT
    ),
    st.builds(lambda tag: Tagged(tag, Group(())), st.sampled_from(["A", "D", "Q"])),
    st.just(Seq((Group(()), Group(())))),
)
_KEYS = st.sampled_from(
    [
        "FOO",
        "ERROR",
        "USERID",
        "ENTPID",
        "PRODUCT",
        "TOTALMODE",
        "SCHEDULE",
        "UNOTIFY",
        "PL_GEO",
        "COMPRESS",
        "LOC",
        "NAME",
        "START",
        "INBOXID",
        "TTL",
    ]
)


def _groups(members: tuple[Member, ...], path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Paths of every member list in the tree (the body and each nested group)."""
    out = [path]
    for index, member in enumerate(members):
        value = member.value
        inner = value.group if isinstance(value, Tagged) else value
        if isinstance(inner, Group):
            out.extend(_groups(inner.members, (*path, index)))
    return out


def _replace(
    members: tuple[Member, ...], path: tuple[int, ...], new: tuple[Member, ...]
) -> tuple[Member, ...]:
    if not path:
        return new
    index, rest = path[0], path[1:]
    member = members[index]
    value = member.value
    if isinstance(value, Tagged):
        value = Tagged(value.tag, Group(_replace(value.group.members, rest, new)))
    else:
        assert isinstance(value, Group)
        value = Group(_replace(value.members, rest, new))
    return (*members[:index], Member(member.key, value), *members[index + 1 :])


def _get(members: tuple[Member, ...], path: tuple[int, ...]) -> tuple[Member, ...]:
    for index in path:
        value = members[index].value
        members = value.group.members if isinstance(value, Tagged) else value.members  # type: ignore[union-attr]
    return members


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str | None, Message]:
    service, text = draw(st.sampled_from(BASES))
    message = parse(text)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_groups(message.members)))
        members = list(_get(message.members, path))
        kind = draw(
            st.sampled_from(["drop", "blank", "long", "wrong", "dup", "rename", "add", "stray"])
        )
        if members and kind != "add":
            index = draw(st.integers(0, len(members) - 1))
            member = members[index]
            if kind == "drop":
                del members[index]
            elif kind == "blank":
                members[index] = Member(member.key, "")
            elif kind == "long":
                members[index] = Member(member.key, "9" * draw(st.integers(9, 300)))
            elif kind == "wrong":
                members[index] = Member(member.key, draw(_ODD_VALUE))
            elif kind == "dup":
                members.insert(index, member)
            elif kind == "rename":
                members[index] = Member(draw(_KEYS), member.value)
            else:
                members.insert(index, Member(None, draw(_ODD_TEXT)))
        else:
            members.append(Member(draw(_KEYS), draw(_ODD_VALUE)))
        if members == [Member(None, "")]:
            members = []
        message = Message(message.acronym, _replace(message.members, path, tuple(members)))
    use_service = draw(st.sampled_from([service, service, None]))
    return use_service, message


def _one_pass_agrees(service: str | None, message: Message) -> None:
    """The one-pass reader accepts only what the ordered passes accept, identically."""
    try:
        cls = resolve(message, service)
        members = cls._unwrap(message.members, cls.label())
    except MessageError:
        return
    label = cls.label()
    try:
        fast = typed._decode_one_pass(cls, members, label, "", None)
    except (Bad, MessageError, typed._GiveUp):
        return
    assert typed._decode_ordered(cls, members, label, "", None) == fast


def _check(service: str | None, message: Message) -> None:
    _one_pass_agrees(service, message)
    failure: MessageError | None = None
    try:
        typed = validate(message, service)
    except MessageError as err:
        failure = err
    if failure is not None:
        assert isinstance(failure.code, ErrorCode)
        assert failure.offset == 0
        assert failure.message
        return
    # Accepted: then its canonical form is accepted again, to the same value.
    assert validate(parse(serialize(typed.to_message())), service) == typed


@settings(max_examples=scaled(3000))
@given(mutated())
def test_mutations_end_in_a_code_or_a_valid_instance(case: tuple[str | None, Message]) -> None:
    _check(*case)


_ACRONYMS = sorted({a for _s, a, _c in entries() if a is not None})


def _all_keys() -> list[str]:
    keys: set[str] = set()
    stack: list[type[Any]] = [cls for _s, _a, classes in entries() for cls in classes]
    while stack:
        cls = stack.pop()
        for bound in cls.params():
            keys.update((bound.spec.wire, *bound.spec.aliases))
            inner = getattr(bound.spec.codec, "cls", None)
            if inner is not None:
                stack.append(inner)
    return sorted(keys)


_CATALOGUE_KEYS = st.sampled_from(_all_keys())
_BODIES = st.lists(
    st.builds(Member, st.one_of(_CATALOGUE_KEYS, _CATALOGUE_KEYS, st.none()), _ODD_VALUE),
    max_size=8,
).map(lambda ms: tuple(ms) if ms != [Member(None, "")] else ())


@settings(max_examples=scaled(3000))
@given(
    st.sampled_from([None, "RM", "DSS", "INBX", "OE"]),
    st.sampled_from([*_ACRONYMS, None]),
    _BODIES,
)
def test_bodies_of_catalogue_keys_end_in_a_code(
    service: str | None, acronym: str | None, members: tuple[Member, ...]
) -> None:
    _check(service, Message(acronym, members))


@settings(max_examples=scaled(500))
@given(
    st.sampled_from([None, "RM", "DSS", "INBX", "OE"]),
    st.sampled_from([*_ACRONYMS, None]),
    messages(),
)
def test_random_bodies_end_in_a_code(
    service: str | None, acronym: str | None, message: Message
) -> None:
    _check(service, dataclasses.replace(message, acronym=acronym))
