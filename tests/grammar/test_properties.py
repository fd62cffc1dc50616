"""Property tests: round trips, canonical form, fuzzed input, and the two parsers agreeing."""

from __future__ import annotations

import contextlib
import json
import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from starwrs.grammar import Message, MessageError, parse, serialize
from starwrs.grammar._lark import GRAMMAR
from starwrs.grammar._scanner import Bail, _split, scan
from starwrs.grammar._text import TEXT_PATTERN
from starwrs.grammar.jsonform import dumps, from_json, to_json
from starwrs.grammar.parser import parse_lark
from starwrs.grammar.strategies import messages, texts

from ..conftest import scaled

SEED_ARD = (
    "ARD<USERID=jeanvnet2,ENTPID=00022924,STDRPTID=90,NAME=City Summary Outbound,"
    "PRODUCT=S,CATEGORY=Analyze Traffic,THRESHOLD=<RECCOUNT=20>,"
    "SCHEDULE=A<START=199806020000,END=199807151200>,RANGETYPE=1,SCHEDTYPE=A,TIMEZONE=45,"
    "BILLING=INBOUND<<90000003,90000003><NA,NA><NA,NA>>INBOUND<<90000004,90000004><NA,NA>"
    "<NA,NA>>,CARDNO=<654654*~5465465465465465>,IDAC=<46546546*~1246>,"
    "GEO=GEO<<001,001 USA/WORLDZONE1><NA,NA><NA,NA><NA,NA><NA,NA>>GEO<<001,001 "
    "USA/WORLDZONE1><CO,CO><NA,NA><NA,NA><NA,NA>>,OACCESS=<4~1>,ODISTRANGE=<A~F>,"
    "OUSAGE=<5~4>,SORTBY=<54D>,DESCRIPTION=This report summarizes call detail.,"
    "COLUMNS=<54~55~67~62~36~61~58~63~64~66~65>,ACTIVE=1,TOTALMODE=0,EMAIL=0,PAGE=0,"
    "LANG=1234, CURR=2345>"
)


def outcome(parser, text: str) -> Message | tuple[int, int]:
    """A parser's answer as a comparable value: the tree, or (code, offset)."""
    try:
        return parser(text)  # type: ignore[no-any-return]
    except MessageError as err:
        return (int(err.code), err.offset)


@given(messages())
def test_round_trip(message: Message) -> None:
    text = serialize(message)
    assert parse(text) == message
    assert parse_lark(text) == message
    assert serialize(parse(text)) == text  # the serializer's form is canonical


@given(messages())
def test_json_round_trip(message: Message) -> None:
    assert from_json(to_json(message)) == message
    assert from_json(json.loads(dumps(message))) == message


_STRUCTURAL = re.compile(r"\\[\s\S]|[,<>=~\x01]")


@given(messages(), st.sampled_from([" ", "\n", "\t ", "\r\n"]))
def test_white_space_around_tokens_is_not_significant(message: Message, ws: str) -> None:
    text = serialize(message)
    spaced = _STRUCTURAL.sub(
        lambda m: m.group() if m.group()[0] == "\\" else ws + m.group() + ws, text
    )
    assert parse(ws + spaced + ws) == message


# Hypothesis can draw TEXT and KEY from their regexes, but slowly; these build the
# same languages from their units (an escape, a plain character, inner white space).
_plain = st.one_of(
    st.sampled_from("aZ09.*/#&()_%:+-é✓"),
    st.characters(exclude_categories=("Cs", "Zs", "Cc")).filter(lambda c: c not in "<>=,~\\"),
)
_unit_not_ws = st.one_of(_plain, st.characters(exclude_categories=("Cs",)).map(lambda c: "\\" + c))
_unit = st.one_of(_unit_not_ws, st.sampled_from(" \t\r\n"))
_text_terminal = st.one_of(
    _unit_not_ws,
    st.builds(
        lambda first, middle, last: first + "".join(middle) + last,
        _unit_not_ws,
        st.lists(_unit, max_size=4),
        _unit_not_ws,
    ),
)
_key_terminal = st.builds(
    lambda t, ws: t + ws + "=", _text_terminal, st.sampled_from(["", " ", "\n"])
)


# from_lark is slow to draw from this grammar (~0.2-0.6 s an example, mostly discarded
# overruns), so this test runs fewer examples than the others (300 took 193 s of CI).
@settings(max_examples=120 if scaled(500) == 500 else 30, suppress_health_check=list(HealthCheck))
@given(from_lark(GRAMMAR, start="start", explicit={"TEXT": _text_terminal, "KEY": _key_terminal}))
def test_every_string_of_the_grammar_parses_and_both_parsers_agree(text: str) -> None:
    tree = parse_lark(text)
    assert scan(text, 64) == tree
    assert parse(serialize(tree)) == tree


def _mutate(data: st.DataObject, text: str) -> str:
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["insert", "delete", "replace", "truncate", "duplicate"]))
        pos = data.draw(st.integers(0, len(chars)))
        if op == "insert":
            chars.insert(pos, data.draw(st.sampled_from(list("<>=,~\\\x01 \x00\x02é"))))
        elif op == "delete" and pos < len(chars):
            del chars[pos]
        elif op == "replace" and pos < len(chars):
            chars[pos] = data.draw(st.sampled_from(list("<>=,~\\\x01 a\x7f\x1f")))
        elif op == "truncate":
            del chars[pos:]
        elif op == "duplicate" and pos < len(chars):
            end = data.draw(st.integers(pos, len(chars)))
            chars[pos:pos] = chars[pos:end]
    return "".join(chars)


# 1,500 under CI: each example generates a message and runs both parsers (lark's is
# ~1 ms); at 10,000 this one test took most of a CI run's half hour
@settings(max_examples=scaled(1_500))
@given(st.data(), st.one_of(messages().map(serialize), st.just(SEED_ARD)))
def test_mutated_input_ends_in_a_message_or_a_coded_error(data: st.DataObject, text: str) -> None:
    mutated = _mutate(data, text)
    fast = outcome(parse, mutated)
    slow = outcome(parse_lark, mutated)
    assert fast == slow
    if isinstance(fast, tuple):
        code, offset = fast
        assert code in (6610, 6611, 6612)
        assert 0 <= offset <= len(mutated)
    else:
        # the scanner accepts exactly what the grammar accepts
        assert scan(mutated, 64) == fast


@settings(max_examples=scaled(3000))
@given(st.text(max_size=80))
@example("")
@example("<")
@example(">")
@example("\\")
def test_random_text_ends_in_a_message_or_a_coded_error(text: str) -> None:
    assert outcome(parse, text) == outcome(parse_lark, text)


@given(
    st.text(alphabet=st.one_of(st.sampled_from("\\ \t<>=,~\x01\x00"), st.characters()), max_size=10)
)
def test_text_terminal_matches_the_documented_pattern(text: str) -> None:
    (terminal,) = [t for t in GRAMMAR.terminals if t.name == "TEXT"]
    ours = re.fullmatch(TEXT_PATTERN, text) is not None
    lark = re.fullmatch(terminal.pattern.to_regexp(), text) is not None
    assert ours == lark


@given(texts)
def test_scanner_never_raises_anything_but_bail(text: str) -> None:
    with contextlib.suppress(Bail):
        scan(f"A<V={text}>", 64)


_SPLIT_CHARS = st.one_of(st.sampled_from("<>=,~ a\x7f\x02"), st.characters())


@given(st.text(alphabet=_SPLIT_CHARS, max_size=40))
@example("A<B=c,d~e>")  # ASCII: the byte-translation split
@example("A<B=\u00e9,d~e>")  # not ASCII: the regular-expression split
@example("\x02")  # the translation's own marker: the regular-expression split
def test_both_splits_cut_at_the_same_delimiters(text: str) -> None:
    parts = re.split(r"([<>=,~])", text)
    assert _split(text) == (parts[0::2], "".join(parts[1::2]))
