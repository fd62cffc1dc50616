"""Log lines that a user's input cannot forge, at a level set per service.

Theory of operation
-------------------
User ids, targets and message text reach log lines (a logon logs the user id it
was given before order entry has judged it).  A value holding a newline could
forge a second log line; a NUL or an escape sequence could hide one from a
reader or a terminal.  Rather than trust every call site, the one formatter of a
service process, :class:`EscapingFormatter` (installed by :func:`configure`,
which ``starwrs run`` calls), escapes the rendered message of every record:

* ``\\n`` ``\\r`` ``\\t`` become those two-character escapes, every other C0 and C1
  control character, DEL and U+2028/U+2029 become ``\\xNN`` / ``\\uNNNN``, and a
  backslash becomes ``\\\\`` -- so the escaping is unambiguous and one record is
  one physical line;
* a traceback (``log.exception``) follows its record as continuation lines, each
  escaped the same way and starting with :data:`CONTINUATION`, so no line of it
  can pass for a record.

Per-transaction lines are one line of ``key=value`` pairs, formatted lazily
(%-style arguments).  :func:`token` renders a value for such a pair: as it is
when it holds no white space, ``=`` or ``"``, else quoted (``"a b"``, with ``\\``
and ``"`` escaped), so a user id cannot forge a pair either.

Levels: ``deployment.json`` ``log_levels`` maps a service name to a level name
(:attr:`starwrs.runtime.config.Deployment.log_levels`); :func:`level_for` reads
it (default ``INFO``), :func:`configure` applies it, :func:`parse_level_option`
reads a ``SERVICE=LEVEL`` command-line value.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import TextIO

__all__ = [
    "CONTINUATION",
    "DEFAULT_LEVEL",
    "EscapingFormatter",
    "configure",
    "escape",
    "level_for",
    "parse_level_option",
    "token",
]

#: the level of a service that ``log_levels`` does not name
DEFAULT_LEVEL = "INFO"
#: how each line of a traceback starts
CONTINUATION = "  | "

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\\\\\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
_PLAIN_TOKEN = re.compile(r'[^\s="\\]+')


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """*text* with control characters and backslashes escaped (see the module doc)."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape_char, text)


def token(value: object) -> str:
    """*value* as the value of a ``key=value`` pair: bare, quoted, or ``-`` for None/empty."""
    if value is None or value == "":
        return "-"
    text = str(value)
    if _PLAIN_TOKEN.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class EscapingFormatter(logging.Formatter):
    """A :class:`logging.Formatter` whose every record is one escaped line
    (plus escaped, marked continuation lines for a traceback)."""

    _second: int = -1
    _stamp: str = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The default time stamp, its seconds part formatted once per second."""
        if datefmt:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        msec_format = self.default_msec_format or "%s,%03d"
        return msec_format % (self._stamp, record.msecs)

    def format(self, record: logging.LogRecord) -> str:
        """Render *record*; see the module docstring."""
        record.message = escape(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        blocks = [record.exc_text or ""]
        if record.stack_info:
            blocks.append(self.formatStack(record.stack_info))
        rest = [CONTINUATION + escape(part) for block in blocks for part in block.splitlines()]
        return "\n".join([line, *rest]) if rest else line


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        raise ValueError(f"{level!r} is not a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
    return number


def level_for(levels: Mapping[str, str], service: str) -> str:
    """The level *service* logs at: its entry in *levels*, else :data:`DEFAULT_LEVEL`."""
    return levels.get(service, DEFAULT_LEVEL)


def parse_level_option(text: str) -> tuple[str, str]:
    """Read one ``SERVICE=LEVEL`` option value (``rm=DEBUG``).

    Returns:
        (service, canonical level name).

    Raises:
        ValueError: no ``=``, an empty service, or not a level name (one clear line).
    """
    service, sep, level = text.partition("=")
    service = service.strip()
    if not sep or not service:
        raise ValueError(f"{text!r} is not SERVICE=LEVEL (e.g. rm=DEBUG)")
    number = _level(level)
    return service, logging.getLevelName(number)


_installed: logging.Handler | None = None


def configure(
    service: str,
    level: str | int = DEFAULT_LEVEL,
    *,
    index: int = 0,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send this process's log records, escaped, to *stream* (default stderr).

    Calling it again replaces the handler it installed before (other handlers,
    such as a test's, are left alone).  Records no longer carry the caller's file,
    line and function, nor thread and process names: no line shows them.

    Args:
        service: the service name shown in every line (``rm``, ``dispatcher``).
        level: the root logger's level (name or number).
        index: the process's index (dispatchers), shown as ``service[index]``.
        stream: where to write.

    Returns:
        The handler installed.

    Raises:
        ValueError: *level* is not a log level.
    """
    global _installed
    number = _level(level)
    # what no line of ours shows, the records need not gather (logging HOWTO,
    # "Optimization"): the caller's file and line (a stack walk per record),
    # thread, process and multiprocessing names -- ~20 % of a per-transaction line
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    label = f"{service}[{index}]".replace("%", "%%")
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(
        EscapingFormatter(f"%(asctime)s {label} %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
    root.addHandler(handler)
    root.setLevel(number)
    _installed = handler
    return handler
