"""The normalized call every reader yields, the rejection it yields instead, the
format detector, the ``read`` entry point, and the NANP / E.164 number helper.

Theory of operation
-------------------
Each reader (``asterisk``, ``cucm``, ``avaya``, ``mitel``) turns one record of its
format into one :class:`Call`, or one :class:`Rejection` naming the file, the line and
the reason; a reader never raises on what a file contains.  A ``Call`` keeps the
numbers *as the PBX wrote them* (``calling``, ``called``, ``dialled``): normalizing
them (to E.164 / NANP), pricing and geography belong to the provider's harvest, which
also keeps the raw form for its audit trail.  :func:`normalize_number` is the rule it
uses for NANP numbers.

From a Call to the datamart (PROTOCOL.md section 8, ``perspective_base``)
-------------------------------------------------------------------------
==================  ======================================================================
Call                datamart
==================  ======================================================================
``start`` (UTC)     ``gmt_key`` → ``gmt.datetime`` (the minute, GMT); ``lst_key`` →
                    ``lst.datetime``: the same instant in the switch's zone (the ``tz``
                    the reader was given)
``billable`` s      ``duration``: minutes, ``DECIMAL(7,1)``, rounded up to the tenth —
                    :attr:`Call.minutes`; rating applies the tariff's billing
                    increment to the seconds
``duration`` s      not stored (ring + hold time); kept for the audit trail
``answered``        unanswered: billable 0, so ``duration`` 0.0; whether such a call is
                    loaded (or charged a connect fee) is the harvest's and tariff's call
``calling``         ``orig_number`` (``char(10)``, NANP after normalization)
``called``          ``term_number``
``dialled``         ``dialed_number``
``direction``       ``access_type.in_out``: ``'1'`` inbound, ``'0'`` outbound
                    (:attr:`Call.in_out`); internal calls carry no ``in_out``: they use no
                    carrier service and the harvest does not load them
calling / called    ``report_number``: the customer's own end (``called`` inbound,
                    ``calling`` outbound); ``orig_geo`` / ``term_geo`` from the numbers
``account``         ``ldaac_key`` → ``idacc.ldacc`` (``char(16)``, the ID/accounting code)
``trunk``           ``access_type`` (dedicated vs switched access), by the enterprise's
                    trunk table in the harvest
``call_id``         not stored: the harvest's duplicate check within a batch
``status``          not stored: the audit trail
==================  ======================================================================

Detection (``format="auto"``)
-----------------------------
The first line that is not blank (after a UTF-8 byte-order mark) decides:

1. ``cucm`` — its first field, quotes stripped, is ``cdrRecordType`` or
   ``cmrRecordType`` (the field-name header line every CUCM flat file starts with);
2. ``avaya`` — its first field is ``Call Start`` (a header), or the line starts with
   ``YYYY/MM/DD HH:MM:SS,``;
3. ``mitel`` — the line starts with a long-call mark (blank, ``-``, ``%``, ``+``), then
   ``mm/dd hh:mm`` + AM/PM column + `` hh:mm:ss `` (SMDR columns 1-23);
4. ``asterisk`` — the line starts with ``"`` (after blanks) and splits into 16 to 21
   CSV fields (cdr_csv quotes every text field; accountcode, possibly empty, is first).

Anything else is one rejection, ``format not recognised``, at that line.
"""

from __future__ import annotations

import enum
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starwrs.collector.readers._common import Source

#: the formats :func:`read` knows, by name
FORMATS = ("asterisk", "cucm", "avaya", "mitel")


class Direction(enum.StrEnum):
    """Which way a call went, seen from the PBX."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class Call:
    """One call record, normalized; every reader's field mapping is in its docstring.

    Attributes:
        start: when the call began (seized / offered), aware, UTC.
        answered: the called party answered.
        duration: seconds from start to the end of the record (includes ringing).
        billable: seconds from answer to the end (0 when not answered).
        calling: the calling number, as written (an extension, a CLI, or empty).
        called: the number the call reached, as written.
        dialled: the digits dialled, as written (often the same as ``called``).
        direction: inbound, outbound or internal.
        account: the account / client-matter code entered, or empty.
        trunk: the trunk or channel the call used outside the PBX, or empty.
        call_id: the PBX's identifier of the call, as written, or empty.
        status: the PBX's own completion / disposition code, as written, or empty.
        source: the format (one of :data:`FORMATS`).
        file: the name of the file read.
        line: the line the record was on (1 = first line).
    """

    start: datetime
    answered: bool
    duration: int
    billable: int
    calling: str
    called: str
    dialled: str
    direction: Direction
    account: str
    trunk: str
    call_id: str
    status: str
    source: str
    file: str
    line: int

    def __post_init__(self) -> None:
        if self.start.tzinfo is not UTC:
            raise ValueError("Call.start must be an aware UTC datetime")
        if self.duration < 0 or self.billable < 0:
            raise ValueError("Call durations are not negative")

    @property
    def minutes(self) -> Decimal:
        """Billable time in minutes to one decimal, as ``perspective_base.duration``:
        rounded *up* to the tenth (6 s started), the datamart's and rating's rule
        (0 s is 0.0)."""
        return Decimal(-(-self.billable // 6)).scaleb(-1)

    @property
    def in_out(self) -> str | None:
        """``access_type.in_out``: ``'1'`` inbound, ``'0'`` outbound, None internal."""
        return {Direction.INBOUND: "1", Direction.OUTBOUND: "0"}.get(self.direction)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that could not be read: where it was and why.

    ``record`` keeps the start of the line's bytes (at most 512) for quarantine.
    """

    file: str
    line: int
    reason: str
    record: bytes = b""


# -- numbers ------------------------------------------------------------------------

_SEPARATORS = str.maketrans("", "", " -.()/\t")


def digits_only(number: str) -> str:
    """The decimal digits of *number*, everything else dropped."""
    return "".join(ch for ch in number if "0" <= ch <= "9")


def _nanp(ten: str) -> str | None:
    # NPA and NXX both start with 2-9 (NANP numbering plan)
    if len(ten) == 10 and ten[0] in "23456789" and ten[3] in "23456789":
        return "+1" + ten
    return None


def normalize_number(
    number: str, *, home_npa: str | None = None, access_code: str = ""
) -> str | None:
    """The E.164 form (``+`` and digits) of a public number as a PBX wrote it, by the
    North American Numbering Plan; ``None`` for anything that is not a public number
    (an extension, a service code such as 911, an empty or withheld CLI).

    * separators (blank, ``-``, ``.``, ``/``, parentheses) are dropped;
    * ``+`` followed by 8-15 digits is already E.164 (``+1…`` must be a valid NANP
      number);
    * ``011`` is the NANP international prefix: ``011 44 20…`` → ``+4420…``;
    * 11 digits starting with ``1`` and 10 digits are NANP (NPA and NXX start 2-9);
    * 7 digits are a local number in *home_npa*, when given;
    * *access_code* (the PBX's outside-line digit, e.g. ``"9"``) is removed from the
      front only when the number is not valid with it.

    >>> normalize_number("1 (212) 478-6783")
    '+12124786783'
    >>> normalize_number("9011442079460000", access_code="9")
    '+442079460000'
    """
    cleaned = number.strip().translate(_SEPARATORS)
    found = _normalize(cleaned, home_npa)
    if found is None and access_code and cleaned.startswith(access_code):
        found = _normalize(cleaned[len(access_code) :], home_npa)
    return found


def _normalize(text: str, home_npa: str | None) -> str | None:
    if text.startswith("+"):
        rest = text[1:]
        if not rest.isascii() or not rest.isdigit() or not 8 <= len(rest) <= 15:
            return None
        return _nanp(rest[1:]) if rest.startswith("1") else "+" + rest
    if not text.isascii() or not text.isdigit():
        return None
    if text.startswith("011"):
        rest = text[3:]
        if 7 <= len(rest) <= 15 and not rest.startswith("1"):
            return "+" + rest
        return None
    if len(text) == 11 and text.startswith("1"):
        return _nanp(text[1:])
    if len(text) == 10:
        return _nanp(text)
    if len(text) == 7 and home_npa is not None:
        return _nanp(home_npa + text)
    return None


# -- detection and the entry point -----------------------------------------------------

_AVAYA_START = re.compile(rb"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2},")
_MITEL_START = re.compile(rb"[ \-%+]\d{2}/\d{2} \d{2}:\d{2}[ Pp] \d{1,2}:\d{2}:\d{2} ")
#: how much of a file detection looks at, at most
DETECT_BYTES = 64 * 1024


def detect(first_line: bytes) -> str | None:
    """The format a file's first non-blank line belongs to, or None (rules above)."""
    from starwrs.collector.readers._common import RecordError, decode, split_csv

    line = first_line.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")
    first = line.split(b",", 1)[0].strip(b' \t"').lower()
    if first in (b"cdrrecordtype", b"cmrrecordtype"):
        return "cucm"
    if first.replace(b" ", b"") == b"callstart" or _AVAYA_START.match(line):
        return "avaya"
    if _MITEL_START.match(line):
        return "mitel"
    if line.lstrip(b" \t").startswith(b'"'):
        try:
            count = len(split_csv(decode(line)))
        except RecordError:
            return None
        if 16 <= count <= 21:
            return "asterisk"
    return None


def read(
    fileobj: Source,
    format: str = "auto",
    *,
    tz: str | tzinfo | None = None,
    name: str | None = None,
    max_extension_digits: int = 6,
    uniqueid: bool | None = None,
    userfield: bool | None = None,
    newcdrcolumns: bool | None = None,
    today: date | None = None,
    meter_pulses: bool = False,
) -> Iterator[Call | Rejection]:
    """Read call records from *fileobj* (a binary file, bytes, or an iterable of
    bytes chunks), lazily: nothing is read until the result is iterated, except the
    first line when *format* is ``"auto"``.

    Args:
        format: one of :data:`FORMATS`, or ``"auto"`` (detection rules above).
        tz: the PBX's IANA time zone; required for asterisk, avaya and mitel,
            whose records carry local time (``"UTC"`` for Asterisk ``usegmtime``).
        name: the file name rejections carry (default: ``fileobj.name`` or ``-``).
        max_extension_digits: asterisk, cucm — longest number that is a station.
        uniqueid, userfield, newcdrcolumns: asterisk — the cdr.conf ``[csv]``
            options in force (None: inferred per record, see ``asterisk``).
        today: mitel — the day the file was written (records carry no year).
        meter_pulses: mitel — the "Report Meter Pulses" SMDR option is on.

    Returns:
        an iterator of :class:`Call` and :class:`Rejection`, in file order.

    Raises:
        ValueError: an unknown *format*, or a local-time format without a usable *tz*.
    """
    from starwrs.collector.readers import _common

    label = name if name is not None else str(getattr(fileobj, "name", "-"))
    pieces = _common.chunks(fileobj)
    if format == "auto":
        head, lineno, first = _first_line(pieces)
        found = detect(first) if first else None
        pieces = _chain(head, pieces)
        if found is None:
            if not first:
                return iter(())
            reason = "format not recognised (not asterisk, cucm, avaya or mitel)"
            return iter((Rejection(label, lineno, reason, first[: _common.RECORD_KEEP]),))
        format = found
    if format not in FORMATS:
        raise ValueError(f"unknown CDR format {format!r} (one of {', '.join(FORMATS)}, auto)")
    module = importlib.import_module(f"starwrs.collector.readers.{format}")
    if format == "asterisk":
        return module.read(  # type: ignore[no-any-return]
            pieces,
            tz=tz,
            name=label,
            uniqueid=uniqueid,
            userfield=userfield,
            newcdrcolumns=newcdrcolumns,
            max_extension_digits=max_extension_digits,
        )
    if format == "cucm":
        return module.read(  # type: ignore[no-any-return]
            pieces, name=label, max_extension_digits=max_extension_digits
        )
    if format == "avaya":
        return module.read(pieces, tz=tz, name=label)  # type: ignore[no-any-return]
    return module.read(  # type: ignore[no-any-return]
        pieces, tz=tz, name=label, today=today, meter_pulses=meter_pulses
    )


def _first_line(pieces: Iterator[bytes]) -> tuple[bytes, int, bytes]:
    """Read until the first non-blank line is complete (or DETECT_BYTES / the end):
    everything read, that line's number, and the line."""
    head = bytearray()
    for piece in pieces:
        head += piece
        lines = bytes(head).split(b"\n")
        for index, line in enumerate(lines[:-1]):
            if _text(index, line).strip():
                return bytes(head), index + 1, line
        if len(head) >= DETECT_BYTES:
            break
    lines = bytes(head).split(b"\n")
    for index, line in enumerate(lines):
        if _text(index, line).strip():
            return bytes(head), index + 1, line[:DETECT_BYTES]
    return bytes(head), 0, b""


def _text(index: int, line: bytes) -> bytes:
    return line.removeprefix(b"\xef\xbb\xbf") if index == 0 else line


def _chain(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest
