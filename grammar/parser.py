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
"""

from __future__ import annotations

from starwrs.grammar import _lark
from starwrs.grammar._scanner import DEEPEST, Bail, scan
from starwrs.grammar.errors import ErrorCode, MessageError
from starwrs.grammar.model import Message

__all__ = ["DEFAULT_MAX_DEPTH", "DEFAULT_MAX_LENGTH", "MAX_DEPTH_CEILING", "parse", "parse_lark"]

#: deepest bracket nesting accepted (the seed's deepest message nests 5 levels)
DEFAULT_MAX_DEPTH = 64
#: the largest ``max_depth`` a caller may ask for (deeper trees would exhaust the
#: interpreter's recursion limit while being built, serialized or validated)
MAX_DEPTH_CEILING = DEEPEST
#: longest message accepted, in characters (frames carry at most 16 MiB anyway)
DEFAULT_MAX_LENGTH = 4 * 1024 * 1024


def parse(
    text: str,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> Message:
    """Parse one metadata message.

    Args:
        text: the message, e.g. ``GRTL<PRODUCT=V,DATATYPE=R,DATA CAT=P,IO=O>``.
        max_depth: deepest bracket nesting accepted, 1 to :data:`MAX_DEPTH_CEILING`.
        max_length: longest input accepted, in characters.

    Returns:
        The message tree (:class:`~starwrs.grammar.model.Message`).

    Raises:
        MessageError: 6610, 6611 or 6612 with the offset where it went wrong.
        ValueError: *max_depth* out of range (a programming error, not bad input).
    """
    _check_max_depth(max_depth)
    if not isinstance(text, str):
        raise MessageError(ErrorCode.INCORRECT_INPUT, "input is not text", 0)
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
) -> Message:
    """Parse with the normative Lark grammar only (for differential tests and tools)."""
    _check_max_depth(max_depth)
    return _lark.lark_parse(text, max_depth=max_depth, max_length=max_length)


def _check_max_depth(max_depth: int) -> None:
    if not 1 <= max_depth <= MAX_DEPTH_CEILING:
        raise ValueError(f"max_depth must be 1 to {MAX_DEPTH_CEILING}, not {max_depth}")
