# cython: annotation_typing=False
"""The fast path: a hand-written scanner that accepts exactly what the grammar does.

Theory of operation
-------------------
Lark's LALR parser is the definition of the syntax but costs about a millisecond for
a seed-sized ARD; the Report Manager parses every request. This scanner splits the
input once at the structural characters (:func:`_split`: C-level byte translation
for ASCII, ``re.split`` otherwise) and walks the pieces, building the tree with the
same helpers as the Lark path (:mod:`starwrs.grammar._build`). It never reports an
error itself: at the first thing it does not like it raises :class:`Bail`, and
:func:`starwrs.grammar.parse` hands the input to the Lark parser, which either
rejects it with the normative code and offset or -- should the two ever disagree --
accepts it. Differential Hypothesis tests (tests/grammar/test_properties.py) hold
the two to the same trees on generated, seed and mutated input.

Escapes are removed before splitting: each ``\\x`` becomes a NUL placeholder and the
escaped characters are put back, in order, as text pieces are read.  A raw NUL is
never valid input; one would show up as one placeholder too many, and bails.
"""

from __future__ import annotations

import re

from starwrs.grammar._build import EMPTY_MEMBER, item_value
from starwrs.grammar.model import Group, Member, Message, Seq, Tagged, TList, Value

__all__ = ["DEEPEST", "Bail", "scan"]


class Bail(Exception):
    """The scanner gives up; the Lark parser decides."""


_SPLIT = re.compile(r"([<>=,~])").split
_ESCAPE = re.compile(r"\\([\s\S])")
_BAD_RAW = re.compile(r"[\x00\x02-\x08\x0b\x0c\x0e-\x1f]").search
_BAD_AFTER_ESCAPES = re.compile(r"[\x02-\x08\x0b\x0c\x0e-\x1f\\]").search
_ACRONYM = re.compile(r"[A-Za-z]{1,4}").fullmatch
_WS = " \t\r\n"
#: the deepest nesting any parse may be asked to accept: building (Lark path),
#: comparing, hashing and serializing a tree recurse three to five interpreter
#: levels per bracket level, and the compiled scanner recurses in C with no
#: interpreter depth check
DEEPEST = 100


class _Scan:
    __slots__ = ("delims", "escaped", "escapes", "max_depth", "texts")

    def __init__(self, texts: list[str], delims: str, escapes: list[str], max_depth: int) -> None:
        self.texts = texts
        self.delims = delims
        self.escapes = escapes
        self.escaped = bool(escapes)
        self.max_depth = max_depth

    def restore(self, stripped: str) -> str:
        """Put escaped characters back into a stripped text piece."""
        if "\x00" not in stripped:
            return stripped
        chunks = stripped.split("\x00")
        escapes = self.escapes
        out = [chunks[0]]
        for chunk in chunks[1:]:
            out.append(escapes.pop())
            out.append(chunk)
        return "".join(out)

    def members(self, i: int, depth: int) -> tuple[tuple[Member, ...], int]:
        """Read members from ``texts[i]`` (the text after ``<``) to the matching ``>``.

        Returns the members and the index of the text after the ``>``.  The common
        shapes (``KEY=text``, ``text`` and ``KEY=<group>`` followed by ``,`` or ``>``)
        take short paths; everything else goes through the general value loop.
        SOH separators were turned into commas by :func:`scan`.
        """
        if depth > self.max_depth:
            raise Bail
        texts = self.texts
        delims = self.delims
        escaped = self.escaped
        restore = self.restore
        members: list[Member] = []
        append = members.append
        key: str | None
        while True:
            t = texts[i]
            d = delims[i]
            if d == "=":
                key = t.strip(_WS)
                if escaped:
                    key = restore(key)
                if not key:
                    raise Bail
                i += 1
                t = texts[i]
                d = delims[i]
            else:
                key = None
            if d == ",":
                s = t.strip(_WS)
                append(Member(key, restore(s) if escaped else s))
                i += 1
                continue
            if d == ">":
                s = t.strip(_WS)
                if not s and key is None and not members:
                    return (), i + 1  # ``<>``: the empty group
                append(Member(key, restore(s) if escaped else s))
                return tuple(members), i + 1
            # general value: groups, tags, glued pieces, ~ lists, glued next members
            items: list[Group | Tagged | Seq | str] | None = None
            pieces: list[Group | Tagged | str] = []
            after_group = False
            while True:
                s = t.strip(_WS)
                if escaped:
                    s = restore(s)
                if d == "<":
                    group_members, i = self.members(i + 1, depth + 1)
                    group = Group(group_members)
                    t = texts[i]
                    d = delims[i]  # IndexError past the end: Bail via scan()
                    if not s and d == "," and items is None and not pieces and not t.strip(_WS):
                        append(Member(key, group))  # the usual ``KEY=<...>,``
                        i += 1
                        break
                    pieces.append(Tagged(s, group) if s else group)
                    after_group = True
                    continue
                if d == "=":
                    # only legal as a new member glued after a value that ends with '>'
                    if not (after_group and s):
                        raise Bail
                    append(Member(key, _value(items, pieces)))
                    key = s
                    items = None
                    pieces = []
                    after_group = False
                    i += 1
                    t = texts[i]
                    d = delims[i]
                    continue
                if s:
                    pieces.append(s)
                if d == "~":
                    if items is None:
                        items = []
                    items.append(item_value(pieces))
                    pieces = []
                    after_group = False
                    i += 1
                    t = texts[i]
                    d = delims[i]
                    continue
                append(Member(key, _value(items, pieces)))
                if d == ">":
                    if len(members) == 1 and members[0] == EMPTY_MEMBER:
                        return (), i + 1
                    return tuple(members), i + 1
                i += 1  # ',': the next member
                break


def _value(
    items: list[Group | Tagged | Seq | str] | None, pieces: list[Group | Tagged | str]
) -> Value:
    if items is None:
        return item_value(pieces)
    items.append(item_value(pieces))
    return TList(tuple(items))


def scan(text: str, max_depth: int) -> Message:
    """Parse *text* the fast way.

    Raises:
        Bail: anything unusual; the caller then asks the Lark parser.
    """
    escapes: list[str] = []
    if "\\" in text:
        text = _ESCAPE.sub(lambda m: escapes.append(m.group(1)) or "\x00", text)  # type: ignore[func-returns-value]
        # a raw NUL would be taken for a placeholder: count them
        if text.count("\x00") != len(escapes) or _BAD_AFTER_ESCAPES(text):
            raise Bail
        escapes.reverse()  # popped from the end, in document order
    elif not text.isprintable() and _BAD_RAW(text):  # printable: no control chars
        raise Bail
    if "\x01" in text:
        text = text.replace("\x01", ",")  # the two separators mean the same
    texts, delims = _split(text)
    if not delims or delims[0] != "<":
        raise Bail
    acronym: str | None = texts[0].strip(_WS)
    if acronym:
        if _ACRONYM(acronym) is None:
            raise Bail
    else:
        acronym = None
    scanner = _Scan(texts, delims, escapes, min(max_depth, DEEPEST))
    try:
        members, end = scanner.members(1, 1)
    except (IndexError, RecursionError) as err:
        raise Bail from err
    if end != len(texts) - 1 or texts[end].strip(_WS):
        raise Bail
    return Message(acronym, members)


def _split(text: str) -> tuple[list[str], str]:
    """Split *text* at ``< > = , ~``: the text pieces, and the delimiters in order.

    ``texts[i]`` is the text before ``delims[i]``; the last text follows the last
    delimiter.  ASCII input (nearly every message) is split by two C-level byte
    translations, four times faster than the regular expression that splits
    anything else.  ``\x02`` marks a delimiter there, so text holding one (never
    valid input; :func:`scan` refuses it first) takes the regular expression too.
    """
    if text.isascii() and "\x02" not in text:
        raw = text.encode("ascii")
        texts = raw.translate(_DELIM_TO_MARK).decode("ascii").split("\x02")
        return texts, raw.translate(None, _NOT_DELIM).decode("ascii")
    parts = _SPLIT(text)
    return parts[0::2], "".join(parts[1::2])


_DELIMS = b"<>=,~"
_DELIM_TO_MARK = bytes.maketrans(_DELIMS, b"\x02" * len(_DELIMS))
_NOT_DELIM = bytes(c for c in range(256) if c not in _DELIMS)
