"""What the four readers share: bytes to numbered lines, a lenient CSV field
splitter, times and durations, and the driver loop that turns a bad record into a
:class:`~starwrs.collector.readers.model.Rejection`.

Theory of operation
-------------------
A source is bytes, a binary file object (read in ``CHUNK``-byte pieces, never whole)
or any iterable of ``bytes`` chunks.  :func:`split_lines` cuts the chunks at ``\\n``
(a ``\\r`` before it is dropped, so CRLF and LF files read the same) and numbers the
lines from 1, counting blank ones, so that a rejection names the line an editor shows.
A line is never held longer than ``MAX_LINE`` bytes: the rest of an over-long line is
skipped, counted, and the line comes out as ``None``.  The result depends only on the
bytes, never on where the chunks were cut (the property tests check exactly that).

:func:`drive` runs a format's ``parse(lineno, text)`` over the lines: a blank line is
skipped; a line with NUL bytes (the zero-filled tail a power cut leaves in a file) or
one too long is rejected; text is UTF-8, or Latin-1 when it is not valid UTF-8 (old
PBXs write names in Latin-1); ``parse`` returns a ``Call``, ``None`` for a line that is
not a call (a header, a CMR), or raises :class:`RecordError` (any ``ValueError``) with
the reason, which becomes the rejection.  Nothing a file contains makes a reader raise.

A record is one line: a newline inside a quoted CSV field is not supported, so the two
halves are two rejections rather than one record swallowing the lines after it.
"""

from __future__ import annotations

import csv as _csv
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starwrs.collector.readers.model import Call, Direction, Rejection

#: bytes read from a file object at a time
CHUNK = 64 * 1024
#: the longest line a reader holds (bytes, without its line end)
MAX_LINE = 64 * 1024
#: how much of a rejected line a rejection keeps
RECORD_KEEP = 512

Source = bytes | bytearray | memoryview | BinaryIO | Iterable[bytes]

_BOM = b"\xef\xbb\xbf"


class RecordError(ValueError):
    """A record cannot be read; ``str(err)`` is the reason given in the rejection."""


def chunks(source: Source) -> Iterator[bytes]:
    """The bytes of *source* as a stream of chunks (see the module docstring)."""
    if isinstance(source, bytes | bytearray | memoryview):
        yield bytes(source)
        return
    read = getattr(source, "read", None)
    if read is not None:
        while True:
            piece = read(CHUNK)
            if not piece:
                return
            yield bytes(piece)
    else:
        for piece in source:
            if piece:
                yield bytes(piece)


def split_lines(
    pieces: Iterable[bytes], max_line: int = MAX_LINE
) -> Iterator[tuple[int, bytes | None]]:
    """Number the lines of a chunk stream: ``(lineno, line)``, ``line`` without its
    ``\\n`` / ``\\r\\n``, or ``None`` when longer than *max_line* bytes."""
    lineno = 0
    pending = bytearray()
    skipped = 0  # bytes of the current line already thrown away (too long)
    for piece in pieces:
        start = 0
        while True:
            end = piece.find(b"\n", start)
            if end < 0:
                pending += piece[start:]
                if len(pending) > max_line + 1:  # +1: a '\r' may still be dropped
                    skipped += len(pending)
                    pending.clear()
                break
            pending += piece[start:end]
            start = end + 1
            lineno += 1
            yield lineno, _finish(pending, skipped, max_line)
            pending.clear()
            skipped = 0
    if pending or skipped:
        yield lineno + 1, _finish(pending, skipped, max_line)


def _finish(pending: bytearray, skipped: int, max_line: int) -> bytes | None:
    if pending.endswith(b"\r"):
        del pending[-1:]
    if skipped or len(pending) > max_line:
        return None
    return bytes(pending)


def decode(raw: bytes) -> str:
    """A line's text: UTF-8, or Latin-1 where it is not valid UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def drive(
    source: Source,
    name: str,
    parse: Callable[[int, str], Call | None],
) -> Iterator[Call | Rejection]:
    """Run *parse* over the numbered lines of *source* (see the module docstring)."""
    return drive_lines(split_lines(chunks(source)), name, parse)


def drive_lines(
    lines: Iterable[tuple[int, bytes | None]],
    name: str,
    parse: Callable[[int, str], Call | None],
) -> Iterator[Call | Rejection]:
    """:func:`drive` over lines already numbered as :func:`split_lines` numbers them
    (a line ``None`` is one too long): any subset of a file's lines, in order, reads
    exactly as those lines do in the whole file."""
    for lineno, raw in lines:
        if raw is None:
            yield Rejection(name, lineno, f"line longer than {MAX_LINE} bytes")
            continue
        if lineno == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if not raw.strip():
            continue
        if b"\x00" in raw:
            yield Rejection(name, lineno, "line contains NUL bytes", raw[:RECORD_KEEP])
            continue
        try:
            call = parse(lineno, decode(raw))
        except (ValueError, OverflowError) as err:
            yield Rejection(name, lineno, str(err) or type(err).__name__, raw[:RECORD_KEEP])
            continue
        if call is not None:
            yield call


# -- CSV ---------------------------------------------------------------------------


def split_csv(text: str) -> list[str]:
    """Split one CSV record into its fields.

    A field is either quoted (``"…"``, a doubled ``""`` inside stands for one quote)
    or bare; blanks and tabs at the edges of a field, inside its quotes or outside,
    are padding and dropped.  A quote inside a bare field is kept as written (IP
    Office does not quote its names).  Raises :class:`RecordError` for an
    unterminated quoted field and for text after a closing quote.

    The stdlib ``csv`` module (C) splits the common, unpadded records; anything it
    calls an error goes to the splitter here, which accepts padding after a closing
    quote and gives the reason for what it refuses.  The two agree (a property test).
    """
    if not text:
        return [""]
    if "\t" in text or "\r" in text or "\n" in text or "\x00" in text:
        return split_csv_slowly(text)  # csv skips no tabs, ends lines at CR, refuses NUL
    try:
        fields = next(_csv.reader((text,), skipinitialspace=True, strict=True))
    except _csv.Error:
        return split_csv_slowly(text)
    return [field.strip(" \t") for field in fields]


def split_csv_slowly(text: str) -> list[str]:
    """:func:`split_csv`, by hand: the reference the fast path is held to."""
    fields: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            i += 1
            parts: list[str] = []
            while True:
                j = text.find('"', i)
                if j < 0:
                    raise RecordError(f"unterminated quoted field {len(fields) + 1}")
                parts.append(text[i:j])
                if text.startswith('"', j + 1):
                    parts.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] != ",":
                raise RecordError(f"text after the closing quote of field {len(fields) + 1}")
            fields.append("".join(parts).strip(" \t"))
        else:
            j = text.find(",", i)
            if j < 0:
                j = n
            fields.append(text[i:j].strip(" \t"))
            i = j
        if i >= n:
            return fields
        i += 1


# -- numbers, times, durations -------------------------------------------------------

_DIGITS = re.compile(r"[0-9]+")
_HMS = re.compile(r"([0-9]{1,4}):([0-5][0-9]):([0-5][0-9])")


def parse_count(text: str, what: str) -> int:
    """A non-negative decimal integer field (at most 10 digits)."""
    value = text.strip()
    if not _DIGITS.fullmatch(value) or len(value) > 10:
        raise RecordError(f"{what} is not a whole number: {value[:40]!r}")
    return int(value)


def parse_hms(text: str, what: str) -> int:
    """``H:MM:SS`` (1-4 digit hours) as seconds."""
    value = text.strip()
    found = _HMS.fullmatch(value)
    if found is None:
        raise RecordError(f"{what} is not HH:MM:SS: {value[:40]!r}")
    hours, minutes, seconds = (int(group) for group in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def zone(tz: str | tzinfo | None, fmt: str) -> tzinfo:
    """The PBX's zone for a format that writes local times.

    Raises ``ValueError`` when *tz* is missing or not an IANA zone name (the
    caller's mistake, not the file's, so it is raised, not turned into rejections).
    """
    if tz is None:
        raise ValueError(
            f"{fmt} records carry the PBX's local time: give the PBX's IANA time zone "
            "(tz='America/New_York', or 'UTC' for a PBX that logs GMT)"
        )
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {tz!r} (use an IANA name)") from err


def local_to_utc(naive: datetime, local: tzinfo) -> datetime:
    """A PBX's wall-clock time as an aware UTC datetime.

    A time that occurs twice (the hour after DST ends) is taken as its first
    occurrence; a time that never occurs (the hour skipped when DST starts) cannot
    have been written by a running clock and raises :class:`RecordError`.
    """
    if local is UTC:
        return naive.replace(tzinfo=UTC)
    aware = naive.replace(tzinfo=local, fold=0)
    utc = aware.astimezone(UTC)
    if utc.astimezone(local).replace(tzinfo=None) != naive:
        raise RecordError(f"local time {naive:%Y-%m-%d %H:%M:%S} does not exist in {local}")
    return utc


#: the timestamp layouts the readers use, as regular expressions (faster than strptime,
#: and stricter: every field has its full number of digits)
_STAMPS = {
    "%Y-%m-%d %H:%M:%S": re.compile(
        r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})"
    ),
    "%Y/%m/%d %H:%M:%S": re.compile(
        r"([0-9]{4})/([0-9]{2})/([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})"
    ),
}


def parse_local(text: str, fmt: str, local: tzinfo, what: str) -> datetime:
    """A local timestamp in the layout *fmt* (a key of ``_STAMPS``), as UTC."""
    value = text.strip()
    found = _STAMPS[fmt].fullmatch(value)
    if found is None:
        raise RecordError(f"{what} is not a time: {value[:40]!r}")
    year, month, day, hour, minute, second = (int(group) for group in found.groups())
    try:
        naive = datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise RecordError(f"{what} is not a time: {value[:40]!r}") from None
    return local_to_utc(naive, local)


def utc_from_epoch(seconds: int) -> datetime:
    """Seconds since 1970 (UTC) as an aware datetime."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)


# -- direction --------------------------------------------------------------------

_EXTENSION = re.compile(r"[0-9*#]+")


def is_extension(number: str, max_digits: int) -> bool:
    """A number short enough to be a station on the PBX (not a public number)."""
    return len(number) <= max_digits and _EXTENSION.fullmatch(number) is not None


def guess_direction(calling: str, called: str, max_digits: int) -> Direction:
    """Direction from the numbers alone, for formats that do not record it.

    extension → extension is internal, extension → public number outbound, public
    number (or none: a withheld caller) → extension inbound.  Public → public (a call
    forwarded off the PBX) is outbound: it uses, and costs, an outgoing trunk.
    """
    inside_from = is_extension(calling, max_digits)
    inside_to = is_extension(called, max_digits)
    if inside_from and inside_to:
        return Direction.INTERNAL
    if not inside_from and inside_to:
        return Direction.INBOUND
    return Direction.OUTBOUND
