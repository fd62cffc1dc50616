"""Parser behaviour on hand-written examples: trees, canonical text and error codes."""

from __future__ import annotations

import json

import pytest
from starwrs.grammar import (
    ErrorCode,
    Group,
    Member,
    Message,
    MessageError,
    Seq,
    Tagged,
    TList,
    parse,
    serialize,
)
from starwrs.grammar.jsonform import dumps, from_json
from starwrs.grammar.parser import MAX_DEPTH_CEILING, parse_lark


def g(*members: Member) -> Group:
    return Group(tuple(members))


def m(key: str | None, value: object) -> Member:
    return Member(key, value)  # type: ignore[arg-type]


BOTH = pytest.mark.parametrize("parser", [parse, parse_lark], ids=["fast", "lark"])


@BOTH
def test_seed_grtl(parser) -> None:
    msg = parser("GRTL<PRODUCT=V,DATATYPE=R,DATA CAT=P,IO=O>")
    assert msg == Message(
        "GRTL",
        (m("PRODUCT", "V"), m("DATATYPE", "R"), m("DATA CAT", "P"), m("IO", "O")),
    )


@BOTH
def test_white_space_around_separators_and_equals_is_not_significant(parser) -> None:
    msg = parser(" GURL < USERID = jeanvnet2 ,\n PRODUCT=T\n ,DATA CAT=U > ")
    assert serialize(msg) == "GURL<USERID=jeanvnet2,PRODUCT=T,DATA CAT=U>"


@BOTH
def test_white_space_inside_a_value_is_kept(parser) -> None:
    msg = parser("ARD<NAME=City Summary  Outbound>")
    assert msg.get("NAME") == "City Summary  Outbound"


@BOTH
def test_soh_separates_members(parser) -> None:
    msg = parser("<COLUMN_DISPLAY_ORDER=<105\x01114\x0167>\x01SORT_ALLOWED=1>")
    assert msg.acronym is None
    assert msg.members == (
        m("COLUMN_DISPLAY_ORDER", g(m(None, "105"), m(None, "114"), m(None, "67"))),
        m("SORT_ALLOWED", "1"),
    )


@BOTH
def test_tilde_list(parser) -> None:
    msg = parser("ARD<COLUMNS=<54~55~67>>")
    assert msg.get("COLUMNS") == g(m(None, TList(("54", "55", "67"))))


@BOTH
def test_tagged_group(parser) -> None:
    msg = parser("ARD<SCHEDULE=A<START=199806020000,END=199807151200>>")
    assert msg.get("SCHEDULE") == Tagged(
        "A", g(m("START", "199806020000"), m("END", "199807151200"))
    )


@BOTH
def test_repeated_tagged_groups_of_glued_groups(parser) -> None:
    msg = parser("ARD<BILLING=INBOUND<<9000,9000><NA,NA>>INBOUND<<1,1><,>>>")
    first = Tagged(
        "INBOUND",
        g(m(None, Seq((g(m(None, "9000"), m(None, "9000")), g(m(None, "NA"), m(None, "NA")))))),
    )
    second = Tagged(
        "INBOUND", g(m(None, Seq((g(m(None, "1"), m(None, "1")), g(m(None, ""), m(None, ""))))))
    )
    assert msg.get("BILLING") == Seq((first, second))


@BOTH
def test_empty_values_and_members(parser) -> None:
    msg = parser("A<PGT=,<,>,SUBTOTCOL=<>>")
    assert msg.members == (
        m("PGT", ""),
        m(None, g(m(None, ""), m(None, ""))),
        m("SUBTOTCOL", Group(())),
    )


@BOTH
def test_member_after_closing_bracket_and_white_space(parser) -> None:
    msg = parser("<CRITERIA=<Timezone=EST,Curr=2345> DEFAULT_GRAPH_MODE=0>")
    assert [mem.key for mem in msg.members] == ["CRITERIA", "DEFAULT_GRAPH_MODE"]


@BOTH
def test_text_after_closing_bracket_without_equals_is_glued(parser) -> None:
    assert parser("A<V=<x> tail>").get("V") == Seq((g(m(None, "x")), "tail"))


@BOTH
def test_tag_glued_to_group_without_equals(parser) -> None:
    msg = parser("ARD<COLUMNS<44,36,58>,SORTBY=<44A>>")
    assert msg.members[0] == m(
        None, Tagged("COLUMNS", g(m(None, "44"), m(None, "36"), m(None, "58")))
    )


@BOTH
def test_keys_may_contain_spaces(parser) -> None:
    assert parser("GRTL<DATA CAT=P>").members[0].key == "DATA CAT"


@BOTH
@pytest.mark.parametrize(
    ("wire", "text"),
    [
        (r"a\,b", "a,b"),
        (r"\<x\>", "<x>"),
        (r"k\=v", "k=v"),
        (r"1\~2", "1~2"),
        (r"back\\slash", "back\\slash"),
        ("soh\\\x01", "soh\x01"),
        (r"\ edge\ ", " edge "),
        (r"\q", "q"),
    ],
)
def test_escapes(parser, wire: str, text: str) -> None:
    assert parser(f"A<V={wire}>").get("V") == text


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("a,b", r"a\,b"),
        ("<x>", r"\<x\>"),
        ("1~2=3", r"1\~2\=3"),
        ("back\\slash", r"back\\slash"),
        ("soh\x01", "soh\\\x01"),
        (" edge ", r"\ edge\ "),
        ("  ", r"\ \ "),
        ("nul\x00", "nul\\\x00"),
        ("ünïcødé ✓", "ünïcødé ✓"),
    ],
)
def test_serializer_escapes_exactly_what_needs_it(text: str, wire: str) -> None:
    msg = Message("A", (m("V", text),))
    assert serialize(msg) == f"A<V={wire}>"
    assert parse(serialize(msg)) == msg


@BOTH
def test_body_without_acronym(parser) -> None:
    assert parser("<METADATA=<CRITERIA=<Name=x>>>").acronym is None


# -- errors: exact code and offset ------------------------------------------------

ERRORS = [
    ("", ErrorCode.INCORRECT_INPUT, 0),
    (" \n\t", ErrorCode.INCORRECT_INPUT, 0),
    ("GRTL<PRODUCT=V", ErrorCode.UNBALANCED_BRACKETS, 14),
    ("GRTL<PRODUCT=V>>", ErrorCode.UNBALANCED_BRACKETS, 14),
    ("GRTL>", ErrorCode.UNBALANCED_BRACKETS, 4),
    ("ARD<A=<b>,>,C=<d>>", ErrorCode.UNBALANCED_BRACKETS, 10),
    (r"A<V=\>", ErrorCode.UNBALANCED_BRACKETS, 6),
    ("A<V=\x02>", ErrorCode.UNKNOWN_TOKEN, 4),
    ("A<V=x\x00>", ErrorCode.UNKNOWN_TOKEN, 5),
    ("A<V=x>\\", ErrorCode.UNKNOWN_TOKEN, 6),
    ("A<V=b=c>", ErrorCode.INCORRECT_INPUT, 5),
    ("A<=b>", ErrorCode.INCORRECT_INPUT, 2),
    ("A<V=b C=d>", ErrorCode.INCORRECT_INPUT, 7),
    ("GRTLX<a>", ErrorCode.INCORRECT_INPUT, 4),
    ("A1<a>", ErrorCode.INCORRECT_INPUT, 1),
    ("A<b>c", ErrorCode.INCORRECT_INPUT, 4),
    ("A<b><c>", ErrorCode.INCORRECT_INPUT, 4),
    ("no brackets", ErrorCode.INCORRECT_INPUT, 3),
]


@BOTH
@pytest.mark.parametrize(("text", "code", "offset"), ERRORS)
def test_bad_input_gets_code_and_offset(parser, text: str, code: ErrorCode, offset: int) -> None:
    with pytest.raises(MessageError) as info:
        parser(text)
    assert (info.value.code, info.value.offset) == (code, offset), info.value.message


def test_nesting_limit() -> None:
    deep = "A" + "<" * 70 + ">" * 70
    with pytest.raises(MessageError) as info:
        parse(deep)
    assert info.value.code == ErrorCode.INCORRECT_INPUT
    assert info.value.offset == 1 + 64  # the 65th '<'
    assert parse(deep, max_depth=80).acronym == "A"


@BOTH
def test_the_deepest_nesting_allowed_parses_and_deeper_is_6611(parser) -> None:
    levels = MAX_DEPTH_CEILING - 1  # the body is one more level
    deep = "A<V=" + "<K=" * levels + "x" + ">" * levels + ">"
    tree = parser(deep, max_depth=MAX_DEPTH_CEILING)
    # what integrators do with a tree works at that depth too
    assert parse(serialize(tree), max_depth=MAX_DEPTH_CEILING) == tree
    assert hash(tree) == hash(parse_lark(deep, max_depth=MAX_DEPTH_CEILING))
    assert from_json(json.loads(dumps(tree))) == tree
    deeper = "A<V=" + "<K=" * (levels + 1) + "x" + ">" * (levels + 1) + ">"
    with pytest.raises(MessageError) as info:
        parser(deeper, max_depth=MAX_DEPTH_CEILING)
    assert info.value.code == ErrorCode.INCORRECT_INPUT


@BOTH
@pytest.mark.parametrize("max_depth", [0, -1, MAX_DEPTH_CEILING + 1, 10**6])
def test_a_max_depth_beyond_the_ceiling_is_a_programming_error(parser, max_depth: int) -> None:
    # asked to accept 10**6 levels, tree building would hit the recursion limit
    with pytest.raises(ValueError, match="max_depth"):
        parser("A<V=x>", max_depth=max_depth)


def test_length_limit() -> None:
    with pytest.raises(MessageError) as info:
        parse("A<" + "x" * 100 + ">", max_length=50)
    assert info.value.code == ErrorCode.INCORRECT_INPUT


def test_error_to_json_shape() -> None:
    with pytest.raises(MessageError) as info:
        parse("A<b")
    assert info.value.to_json() == {
        "error": 6612,
        "message": info.value.message,
        "offset": 3,
    }


# -- the group limit: pathological nesting is refused before any parsing work -----------


@BOTH
def test_the_group_limit_counts_every_unescaped_bracket(parser) -> None:
    text = "A<V=" + "<x>" * 9 + ">"  # the body and nine groups
    assert parser(text, max_groups=10).acronym == "A"
    with pytest.raises(MessageError) as info:
        parser(text, max_groups=9)
    assert info.value.code == ErrorCode.INCORRECT_INPUT
    assert info.value.offset == text.rindex("<")  # the tenth group
    assert "9 groups" in info.value.message


@BOTH
def test_escaped_brackets_are_not_groups(parser) -> None:
    text = "A<V=" + "\\<" * 50 + ",W=\\\\<x>>"  # 50 escaped, then one after an escaped '\'
    tree = parser(text, max_groups=2)
    assert tree.get("V") == "<" * 50
    with pytest.raises(MessageError) as info:
        parser(text, max_groups=1)
    assert info.value.offset == text.rindex("<")


def test_the_default_group_limit_refuses_a_megabyte_of_deep_groups_cheaply() -> None:
    import time

    unit = "<" * 60 + ">" * 60
    text = "GRTL<X=" + unit * ((1024 * 1024) // len(unit)) + ">"
    before = time.process_time()
    with pytest.raises(MessageError) as info:
        parse(text)
    assert time.process_time() - before < 0.1
    assert info.value.code == ErrorCode.INCORRECT_INPUT
    assert info.value.offset > 10_000
    wide = "A<V=" + "<x>" * 9_999 + ">"  # the default still admits 10,000 groups
    assert len(parse(wide).members) == 1


@BOTH
@pytest.mark.parametrize("max_groups", [0, -1])
def test_a_group_limit_below_one_is_a_programming_error(parser, max_groups: int) -> None:
    with pytest.raises(ValueError, match="max_groups"):
        parser("A<V=x>", max_groups=max_groups)
