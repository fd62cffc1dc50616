"""Text escaping shared by both parsers and the serializer.

Theory of operation
-------------------
Inside text, ``\\`` escapes the next character, whatever it is (PROTOCOL.md section
5).  White space at the edges of a text token is not significant, so the
serializer escapes exactly what would not read back as itself: the structural
characters ``, < > = ~ \\ SOH``, the C0 controls that may not appear raw, and white
space at the start or end of a value.  Everything else is written as is, UTF-8 and
all.
"""

from __future__ import annotations

import re

__all__ = ["TEXT_PATTERN", "WS", "escape", "unescape"]

#: white space that is not significant around tokens (PROTOCOL.md section 5)
WS = " \t\r\n"

_UNIT = r"(?:[^<>=,~\\\x00-\x08\x0b\x0c\x0e-\x1f]|\\[\s\S])"
_UNIT_NOT_WS = r"(?:[^<>=,~\\\x00-\x20]|\\[\s\S])"
#: one text token, as the grammar's TEXT terminal spells it (no white space at the
#: edges unless escaped)
TEXT_PATTERN = rf"{_UNIT_NOT_WS}(?:{_UNIT}*{_UNIT_NOT_WS})?"

_ESCAPE_SEQ = re.compile(r"\\([\s\S])")
_NEEDS_ESCAPE = re.compile(r"[<>=,~\\\x00-\x08\x0b\x0c\x0e-\x1f]")


def unescape(raw: str) -> str:
    """Return *raw* with every ``\\x`` escape replaced by ``x``."""
    if "\\" not in raw:
        return raw
    return _ESCAPE_SEQ.sub(r"\1", raw)


def _escape_char(match: re.Match[str]) -> str:
    return "\\" + match.group()


def escape(text: str) -> str:
    """Return the canonical wire spelling of *text* (see the module docstring)."""
    if not text:
        return text
    if text[0] not in WS and text[-1] not in WS:
        if _NEEDS_ESCAPE.search(text) is None:
            return text
        return _NEEDS_ESCAPE.sub(_escape_char, text)
    core = text.strip(WS)
    if not core:
        return "".join("\\" + ch for ch in text)
    start = len(text) - len(text.lstrip(WS))
    lead = text[:start]
    trail = text[start + len(core) :]
    return (
        "".join("\\" + ch for ch in lead)
        + _NEEDS_ESCAPE.sub(_escape_char, core)
        + "".join("\\" + ch for ch in trail)
    )
