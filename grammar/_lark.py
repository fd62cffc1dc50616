"""The normative parser: Lark LALR over ``metadata.lark``, and error classification.

Theory of operation
-------------------
``metadata.lark`` is the definition of the syntax.  :func:`lark_parse` runs it
(LALR, contextual lexer) and builds the message tree with the same helpers as the
fast scanner.  Every rejected input, whichever parser saw it first, ends here, so
there is exactly one place that decides an error's code and offset:

* empty or white-space-only input: 6611 at offset 0;
* unbalanced brackets (unescaped ``<``/``>`` counted over the whole input): 6612 at
  the ``>`` that closed the message body while more input followed, or at a stray
  ``>`` when no body was open, or at the end of input when a ``<`` was never closed;
* nesting deeper than the limit, or input longer than the limit: 6611;
* a character that can start no token at all (a raw control character, a ``\\`` at
  the very end): 6610 at that character;
* any other token where the grammar does not allow it: 6611 at that token.
"""

from __future__ import annotations

import re
from typing import NoReturn

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from starwrs.grammar._build import item_value, list_value, normalize_members
from starwrs.grammar._text import TEXT_PATTERN, unescape
from starwrs.grammar.errors import ErrorCode, MessageError
from starwrs.grammar.model import Group, Member, Message, Seq, Tagged, Value

__all__ = ["GRAMMAR", "check_limits", "lark_parse"]

#: the Lark parser, built once at import (LALR tables are small)
GRAMMAR = Lark.open(
    "metadata.lark",
    rel_to=__file__,
    parser="lalr",
    lexer="contextual",
    start="start",
    propagate_positions=False,
    maybe_placeholders=False,
)

_KEY_TEXT = re.compile(TEXT_PATTERN)
_BRACKET = re.compile(r"\\[\s\S]|[<>]")
_CONTROL = re.compile(r"[\x00\x02-\x08\x0b\x0c\x0e-\x1f]")
_WS = " \t\r\n"

_EXPECTED_NAMES = {
    "ACRONYM": "a message acronym",
    "LESSTHAN": "'<'",
    "MORETHAN": "'>'",
    "KEY": "KEY=",
    "TEXT": "text",
    "TILDE": "'~'",
    "_SEP": "',' or SOH",
    "$END": "end of input",
}


def lark_parse(text: str, *, max_depth: int, max_length: int) -> Message:
    """Parse *text* with the normative grammar.

    Args:
        text: the whole message.
        max_depth: deepest bracket nesting accepted.
        max_length: longest input accepted, in characters.

    Returns:
        The message tree.

    Raises:
        MessageError: with the code and offset the module docstring lists.
    """
    check_limits(text, max_depth=max_depth, max_length=max_length)
    try:
        tree = GRAMMAR.parse(text)
    except UnexpectedInput as err:
        _raise_classified(text, err)
    return _message(tree)


def check_limits(text: str, *, max_depth: int, max_length: int) -> None:
    """Reject empty, oversized, unbalanced and too deeply nested input.

    Raises:
        MessageError: 6611 (empty, too long, too deep) or 6612 (unbalanced).
    """
    if len(text) > max_length:
        raise MessageError(
            ErrorCode.INCORRECT_INPUT,
            f"message is {len(text)} characters long; the limit is {max_length}",
            max_length,
        )
    if not text.strip(_WS):
        raise MessageError(ErrorCode.INCORRECT_INPUT, "empty input string", 0)
    depth = 0
    deepest_at = -1
    closed_at = -1  # where depth last came back to 0
    open_stack: list[int] = []
    for match in _BRACKET.finditer(text):
        bracket = match.group()
        if bracket == "<":
            open_stack.append(match.start())
            depth += 1
            if depth > max_depth and deepest_at < 0:
                deepest_at = match.start()
        elif bracket == ">":
            if depth == 0:
                if closed_at >= 0:
                    raise MessageError(
                        ErrorCode.UNBALANCED_BRACKETS,
                        "unbalanced brackets: the message body closes here but the input goes on",
                        closed_at,
                    )
                raise MessageError(
                    ErrorCode.UNBALANCED_BRACKETS,
                    "unbalanced brackets: '>' with no matching '<'",
                    match.start(),
                )
            open_stack.pop()
            depth -= 1
            if depth == 0 and closed_at < 0:
                closed_at = match.start()
    if depth:
        raise MessageError(
            ErrorCode.UNBALANCED_BRACKETS,
            f"unbalanced brackets: {depth} '<' never closed "
            f"(the innermost opened at offset {open_stack[-1]})",
            len(text),
        )
    if deepest_at >= 0:
        raise MessageError(
            ErrorCode.INCORRECT_INPUT,
            f"brackets nested deeper than {max_depth}",
            deepest_at,
        )


def _raise_classified(text: str, err: UnexpectedInput) -> NoReturn:
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream or 0
        char = text[pos]
        if _CONTROL.match(char) or (char == "\\" and pos == len(text) - 1):
            what = (
                "a '\\' with nothing to escape" if char == "\\" else f"control character {char!r}"
            )
            raise MessageError(ErrorCode.UNKNOWN_TOKEN, f"unknown token: {what}", pos) from None
        expected = _describe(err.allowed)
        raise MessageError(
            ErrorCode.INCORRECT_INPUT, f"unexpected {char!r}; expected {expected}", pos
        ) from None
    if isinstance(err, UnexpectedToken):
        token = err.token
        if token.type == "$END":
            pos = len(text)
            found = "end of input"
        else:
            pos = token.start_pos if token.start_pos is not None else 0
            found = repr(str(token))
        expected = _describe(err.expected)
        raise MessageError(
            ErrorCode.INCORRECT_INPUT, f"unexpected {found}; expected {expected}", pos
        ) from None
    if isinstance(err, UnexpectedEOF):
        raise MessageError(
            ErrorCode.INCORRECT_INPUT, "unexpected end of input", len(text)
        ) from None
    raise MessageError(ErrorCode.INCORRECT_INPUT, str(err), 0) from None  # pragma: no cover


def _describe(names: object) -> str:
    if not isinstance(names, (set, frozenset, list, tuple)):
        return "something else"
    labels = sorted({_EXPECTED_NAMES.get(str(n), str(n)) for n in names})
    return ", ".join(labels) if labels else "nothing more"


# -- tree building --------------------------------------------------------------


def _message(tree: Tree[Token]) -> Message:
    acronym: str | None = None
    body: Tree[Token] | None = None
    for child in tree.children:
        if isinstance(child, Token):
            acronym = str(child)
        else:
            body = child
    assert body is not None
    return Message(acronym, _group(body).members)


def _group(tree: Tree[Token]) -> Group:
    members_tree = tree.children[0]
    assert isinstance(members_tree, Tree)
    members: list[Member] = []
    for mem in members_tree.children:
        assert isinstance(mem, Tree)
        members.append(_member(mem))
    return Group(normalize_members(members))


def _member(tree: Tree[Token]) -> Member:
    key: str | None = None
    value: Value = ""
    for child in tree.children:
        if isinstance(child, Token):  # KEY
            match = _KEY_TEXT.match(str(child))
            assert match is not None
            key = unescape(match.group())
        else:
            value = _atoms(child)
    return Member(key, value)


def _atoms(tree: Tree[Token]) -> Value:
    items: list[Group | Tagged | Seq | str] = []
    pieces: list[Group | Tagged | str] = []
    tag: str | None = None
    for child in tree.children:
        if isinstance(child, Token):
            if child.type == "TILDE":
                if tag is not None:
                    pieces.append(tag)
                    tag = None
                items.append(item_value(pieces))
                pieces = []
            else:  # TEXT
                tag = unescape(str(child))
        else:
            group = _group(child)
            if tag is not None:
                pieces.append(Tagged(tag, group))
                tag = None
            else:
                pieces.append(group)
    if tag is not None:
        pieces.append(tag)
    if not items:
        return item_value(pieces)
    items.append(item_value(pieces))
    return list_value(items)
