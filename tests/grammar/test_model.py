"""The tree classes behave as frozen dataclasses, compiled (extension types) or not."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest
from hypothesis import given
from starwrs.grammar import _speedups, parse, serialize
from starwrs.grammar.model import Group, Member, Message, Seq, Tagged, TList
from starwrs.grammar.strategies import messages

FIELDS = {
    Group: ("members",),
    Tagged: ("tag", "group"),
    Seq: ("parts",),
    TList: ("items",),
    Member: ("key", "value"),
    Message: ("acronym", "members"),
}


@pytest.mark.parametrize("cls", list(FIELDS), ids=lambda c: c.__name__)
def test_every_class_is_a_dataclass_with_its_fields_in_order(cls: type) -> None:
    assert dataclasses.is_dataclass(cls)
    assert tuple(f.name for f in dataclasses.fields(cls)) == FIELDS[cls]
    assert cls.__match_args__ == FIELDS[cls]  # type: ignore[attr-defined]


def test_the_compiled_form_is_an_extension_type_and_the_pure_one_is_slotted() -> None:
    compiled = _speedups.status()["model"] == "compiled"
    member = Member("K", "v")
    # an extension type has getset descriptors; a slotted class member descriptors
    kind = type(vars(Member)["key"]).__name__
    assert kind == ("getset_descriptor" if compiled else "member_descriptor")
    assert not hasattr(member, "__dict__")


def test_construction_takes_positional_or_keyword_fields_and_nothing_else() -> None:
    assert Member("K", "v") == Member(key="K", value="v") == Member("K", value="v")
    assert Tagged(tag="A", group=Group(())).tag == "A"
    with pytest.raises(TypeError):
        Member("K")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Member("K", "v", "extra")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Member(key="K", val="v")  # type: ignore[call-arg]


def test_a_tree_is_frozen() -> None:
    member = Member("K", "v")
    with pytest.raises(AttributeError):
        member.key = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del member.value  # type: ignore[misc]
    assert member == Member("K", "v")


def test_replace_copy_pickle_and_repr_work_as_for_any_dataclass() -> None:
    tree = parse("ARD<NAME=x,SCHEDULE=A<START=1>,IDS=1~2,G=<a><b>>")
    renamed = dataclasses.replace(tree, acronym="GRTL")
    assert (renamed.acronym, renamed.members) == ("GRTL", tree.members)
    assert copy.deepcopy(tree) == tree
    assert pickle.loads(pickle.dumps(tree)) == tree
    assert repr(Member("K", "v")) == "Member(key='K', value='v')"
    names = {cls.__name__: cls for cls in FIELDS}
    assert eval(repr(tree), names) == tree


@given(messages())
def test_equal_trees_built_apart_hash_equal(message: Message) -> None:
    again = parse(serialize(message))
    assert again == message
    assert hash(again) == hash(message)
