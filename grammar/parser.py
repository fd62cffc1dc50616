"""``parse(text) -> Message``: the fast scanner first, the Lark grammar for the rest.

Theory of operation
-------------------
Well-formed input -- nearly all traffic -- is read by the scanner in
:mod:`starwrs.grammar._scanner`.  Anything the scanner does not accept goes to the
normative Lark parser in :mod:`starwrs.grammar._lark`, which returns the tree or
raises :class:`~starwrs.grammar.errors.MessageError` with the Appendix E code and the
offset.  So every error takes the Lark path, and any input ends in a ``Message`` or
a ``MessageError`` -- never another exception, never a hang (both parsers are
linear; nesting and length are bounded).

Before either runs, the number of groups (unescaped ``<``; the body is one) is
held to ``max_groups``: a megabyte of deeply nested brackets is linear work too,
but a second of it, so it is refused with 6611 after one ``str.count`` -- what
one sender cannot use to slow a proxy's other requests down.
"""

from __future__ import annotations

import re

from starwrs.grammar import _lark
from starwrs.grammar._scanner import DEEPEST, Bail, scan
from starwrs.grammar.errors import ErrorCode, MessageError
from starwrs.grammar.model import Message

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_GROUPS",
    "DEFAULT_MAX_LENGTH",
    "MAX_DEPTH_CEILING",
    "parse",
    "parse_lark",
]

#: deepest bracket nesting accepted (the seed's deepest message nests 5 levels)
DEFAULT_MAX_DEPTH = 64
#: the largest ``max_depth`` a caller may ask for (deeper trees would exhaust the
#: interpreter's recursion limit while being built, serialized or validated)
MAX_DEPTH_CEILING = DEEPEST
#: longest message accepted, in characters (frames carry at most 16 MiB anyway)
DEFAULT_MAX_LENGTH = 4 * 1024 * 1024
#: most groups (``<``) a message may open, the body included; the seed's biggest
#: messages open a few dozen, pick lists and inbox lists one per row
DEFAULT_MAX_GROUPS = 10_000

#: an escape (skipped) or an opening bracket
_OPEN_OR_ESCAPE = re.compile(r"\\[\s\S]|<")


def parse(
    text: str,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_length: int = DEFAULT_MAX_LENGTH,
    max_groups: int = DEFAULT_MAX_GROUPS,
) -> Message:
    """Parse one metadata message.

    Args:
        text: the message, e.g. ``GRTL<PRODUCT=V,DATATYPE=R,DATA CAT=P,IO=O>``.
        max_depth: deepest bracket nesting accepted, 1 to :data:`MAX_DEPTH_CEILING`.
        max_length: longest input accepted, in characters.
        max_groups: most groups (unescaped ``<``, the body included) accepted,
            at least 1; checked before any parsing work.

    Returns:
        The message tree (:class:`~starwrs.grammar.model.Message`).

    Raises:
        MessageError: 6610, 6611 or 6612 with the offset where it went wrong
            (6611 at the first group beyond *max_groups*).
        ValueError: *max_depth* or *max_groups* out of range (a programming
            error, not bad input).
    """
    _check_max_depth(max_depth)
    if not isinstance(text, str):
        raise MessageError(ErrorCode.INCORRECT_INPUT, "input is not text", 0)
    _check_groups(text, max_groups, max_length)
    if len(text) <= max_length:
        try:
            return scan(text, max_depth)
        except Bail:
            pass
    return _lark.lark_parse(text, max_depth=max_depth, max_length=max_length)


def parse_lark(
    text: str,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_length: int = DEFAULT_MAX_LENGTH,
    max_groups: int = DEFAULT_MAX_GROUPS,
) -> Message:
    """Parse with the normative Lark grammar only (for differential tests and tools)."""
    _check_max_depth(max_depth)
    if isinstance(text, str):
        _check_groups(text, max_groups, max_length)
    return _lark.lark_parse(text, max_depth=max_depth, max_length=max_length)


def _check_max_depth(max_depth: int) -> None:
    if not 1 <= max_depth <= MAX_DEPTH_CEILING:
        raise ValueError(f"max_depth must be 1 to {MAX_DEPTH_CEILING}, not {max_depth}")


def _check_groups(text: str, max_groups: int, max_length: int) -> None:
    """6611 when *text* opens more than *max_groups* groups (escaped ``<`` do not count).

    One ``str.count`` for nearly every input; only a text with more ``<`` than
    allowed is walked, up to the first group too many.  A text over *max_length*
    is left to the length check (its own 6611).
    """
    if max_groups < 1:
        raise ValueError(f"max_groups must be at least 1, not {max_groups}")
    if text.count("<") <= max_groups or len(text) > max_length:
        return
    seen = 0
    for match in _OPEN_OR_ESCAPE.finditer(text):
        if match.end() - match.start() == 1:  # an unescaped '<'
            seen += 1
            if seen > max_groups:
                raise MessageError(
                    ErrorCode.INCORRECT_INPUT,
                    f"more than {max_groups} groups in one message",
                    match.start(),
                )
