"""The batch: what one collector message carries -- a MIME entity of raw PBX records.

The format
----------
A batch is one MIME entity (RFC 2045): header lines, a blank line, and as its body
the call records *exactly as the PBX wrote them* (the provider keeps the original for
its audit trail and reads it with the same readers, :mod:`starwrs.collector.readers`)::

    MIME-Version: 1.0
    Content-Type: application/vnd.starwrs.cdr-batch
    Content-Transfer-Encoding: binary
    X-Starwrs-Batch: 5f0c3f2a9d0b4e7c8a1e2d3c4b5a6978
    X-Starwrs-Enterprise: 00022924
    X-Starwrs-Format: asterisk
    X-Starwrs-Source: pbx1:/var/log/asterisk/cdr-csv/Master.csv
    X-Starwrs-Records: 120
    X-Starwrs-First-Line: 3001
    X-Starwrs-Offset: 402117-418230
    X-Starwrs-Timezone: America/New_York
    X-Starwrs-Header-Lines: 0
    X-Starwrs-Created: 2026-12-01T23:30:49Z

    "","1001","2125550100",...

=========================  ==============================================================
header                     meaning
=========================  ==============================================================
``X-Starwrs-Batch``        required; the batch id, 8-64 of ``[0-9A-Za-z._-]`` (the
                           collector uses 32 hex digits of a random UUID).  The provider
                           applies a batch id once: the same id again is acknowledged
                           and not applied (a replay), another content under a known id
                           is refused.
``X-Starwrs-Enterprise``   required; the ENTPID the records belong to.  It must be the
                           enterprise the signing collector is enrolled for.
``X-Starwrs-Format``       required; ``asterisk``, ``cucm``, ``avaya`` or ``mitel``.
``X-Starwrs-Records``      required; the records in the body (non-blank lines after
                           the header lines).
``X-Starwrs-Source``       the file the records came from (``host:path``), for
                           rejections and the audit trail; default ``-``.
``X-Starwrs-First-Line``   the line of that file the first record was on (default 1),
                           so a rejection names the file's own line.
``X-Starwrs-Offset``       the byte range ``start-end`` of the file (information).
``X-Starwrs-Timezone``     the PBX's IANA zone; required for the formats that write
                           local time (asterisk, avaya, mitel).
``X-Starwrs-Header-Lines`` how many lines at the start of the body are the file's own
                           header, repeated in every batch of the file (CUCM's field-name
                           and field-type lines, an IP Office ``Call Start`` line);
                           default 0.
``X-Starwrs-File-Date``    mitel: the day the file was written, ``YYYY-MM-DD`` (its
                           records carry no year).
``X-Starwrs-Created``      when the collector built the batch (UTC, information).
``X-Starwrs-Collector``    the collector's name (information).
=========================  ==============================================================

**Compressed batches.**  ``Content-Type: application/vnd.starwrs.cdr-batch+gzip`` (the
registered ``+gzip`` suffix, RFC 8460): the body is the records compressed as one gzip
member (RFC 1952; ``gunzip`` reads it).  The collector compresses by default
(``collector init --no-compress`` turns it off): call records shrink 5-10x, so a batch
is a small e-mail (relays commonly refuse over 25 MB) and costs the provider less to
receive, hash, decrypt and decode.  A media type of its own, not a header beside the old
one, so that a receiver that does not know it refuses the batch ("not a call-record
batch": the collector keeps it and can send it again) instead of reading gzip bytes as
records.  A body that inflates past ``MAX_BODY`` (65 MiB: the largest
``--batch-bytes`` and the file's header lines), is cut short, is not gzip or has data
after its member is refused.

The entity is signed, then enveloped (:mod:`starwrs.collector.smime`): the headers
travel encrypted, never in the clear.  Compression is inside the signature, so
``openssl cms -decrypt`` then ``-verify`` still give back the exact entity the collector
signed (and ``gunzip`` its records); it is the batch's own, not S/MIME's CompressedData
(RFC 3274), which the ``openssl`` of common distributions is built without.  Header
names are case-insensitive; the body is binary (any line ending the readers accept).

:func:`build` writes one; :func:`parse` reads one and raises :class:`BatchError` with
a one-line reason for anything it cannot take.
"""

from __future__ import annotations

import datetime as dt
import re
import types
import uuid
import zlib
import zoneinfo
from dataclasses import dataclass

from starwrs.collector.readers import FORMATS

_inflate: types.ModuleType = zlib
try:  # Intel ISA-L's inflate: the same gzip, 2.7x faster than zlib's (0.23 vs 0.62 us
    # a record); the harvest inflates every batch
    from isal import isal_zlib

    _inflate = isal_zlib
except ImportError:  # pragma: no cover - the same result, slower
    pass

__all__ = [
    "LOCAL_TIME_FORMATS",
    "Batch",
    "BatchError",
    "build",
    "count_records",
    "new_batch_id",
    "parse",
]

CONTENT_TYPE = "application/vnd.starwrs.cdr-batch"
#: formats whose records carry the PBX's local time (they need X-Starwrs-Timezone)
LOCAL_TIME_FORMATS = frozenset({"asterisk", "avaya", "mitel"})
#: the most header bytes a batch may have
MAX_HEAD = 16 * 1024
#: the most bytes a compressed body may inflate to: the collector's largest batch
#: (``--batch-bytes``, at most 64 MiB) and its file's header lines
MAX_BODY = 65 * 1024 * 1024
#: the media type of a batch whose body is gzip'd
GZIP_CONTENT_TYPE = CONTENT_TYPE + "+gzip"
#: the gzip level the collector compresses with (zlib's default: ~5x on call records
#: at ~50 MB/s; level 1 is 3.5x faster but leaves the e-mail ~20 % larger)
GZIP_LEVEL = 6

_BATCH_ID = re.compile(r"^[0-9A-Za-z._-]{8,64}$")
_ENTP = re.compile(r"^[0-9A-Za-z]{1,12}$")
_RANGE = re.compile(r"^(\d+)-(\d+)$")


class BatchError(Exception):
    """A batch entity that cannot be taken (the message is the reason, one line)."""


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch: its headers' values and the raw records."""

    batch_id: str
    enterprise: str
    format: str
    records: int
    body: bytes
    source: str = "-"
    first_line: int = 1
    offset: tuple[int, int] | None = None
    timezone: str | None = None
    header_lines: int = 0
    file_date: dt.date | None = None
    created: dt.datetime | None = None
    collector: str | None = None


def new_batch_id() -> str:
    """A fresh batch id: 32 hex digits of a random UUID."""
    return uuid.uuid4().hex


def _clean(value: str) -> str:
    """A header value: printable ASCII, at most 255 characters, and stripped, as a
    header's value reads back (a source of blanks only reads back as "-")."""
    text = "".join(ch if " " <= ch <= "~" else "?" for ch in value)
    return text[:255].strip() or "-"


def build(batch: Batch, *, compress: bool = False) -> bytes:
    """The MIME entity of *batch* (CRLF header lines, the body as it is, or gzip'd
    as ``application/vnd.starwrs.cdr-batch+gzip`` when *compress*).

    Raises:
        ValueError: a value the format does not allow.
    """
    _check(batch)
    headers = [
        ("MIME-Version", "1.0"),
        ("Content-Type", GZIP_CONTENT_TYPE if compress else CONTENT_TYPE),
        ("Content-Transfer-Encoding", "binary"),
        ("X-Starwrs-Batch", batch.batch_id),
        ("X-Starwrs-Enterprise", batch.enterprise),
        ("X-Starwrs-Format", batch.format),
        ("X-Starwrs-Source", _clean(batch.source)),
        ("X-Starwrs-Records", str(batch.records)),
        ("X-Starwrs-First-Line", str(batch.first_line)),
    ]
    if batch.offset is not None:
        headers.append(("X-Starwrs-Offset", f"{batch.offset[0]}-{batch.offset[1]}"))
    if batch.timezone:
        headers.append(("X-Starwrs-Timezone", batch.timezone))
    headers.append(("X-Starwrs-Header-Lines", str(batch.header_lines)))
    if batch.file_date is not None:
        headers.append(("X-Starwrs-File-Date", batch.file_date.isoformat()))
    created = batch.created or dt.datetime.now(dt.UTC)
    headers.append(("X-Starwrs-Created", created.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))
    if batch.collector:
        headers.append(("X-Starwrs-Collector", _clean(batch.collector)))
    body = _gzip(batch.body) if compress else batch.body
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode("ascii") + b"\r\n" + body


def _gzip(data: bytes) -> bytes:
    """One gzip member of *data*, with no file name and time 0: the same records make
    the same bytes."""
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def _gunzip(data: bytes) -> bytes:
    """The records of a gzip body (one member), at most MAX_BODY bytes.

    Raises:
        BatchError: not gzip, cut short, more after the member, or too large.
    """
    unpacker = _inflate.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out: bytes = unpacker.decompress(data, MAX_BODY + 1)
    except (zlib.error, _inflate.error) as err:
        raise BatchError(f"the gzip body does not inflate ({err})") from None
    if len(out) > MAX_BODY:
        raise BatchError(f"the gzip body inflates past {MAX_BODY >> 20} MiB")
    if not unpacker.eof:
        raise BatchError("the gzip body is cut short")
    if unpacker.unused_data.strip(b"\r\n"):
        raise BatchError("the gzip body has data after its end")
    return out


def _check(batch: Batch) -> None:
    if not _BATCH_ID.match(batch.batch_id):
        raise ValueError(f"batch id {batch.batch_id!r} is not 8-64 of [0-9A-Za-z._-]")
    if not _ENTP.match(batch.enterprise):
        raise ValueError(f"enterprise {batch.enterprise!r} is not 1-12 letters or digits")
    if batch.format not in FORMATS:
        raise ValueError(f"format {batch.format!r} is not one of {', '.join(FORMATS)}")
    if batch.records < 0 or batch.first_line < 1 or batch.header_lines < 0:
        raise ValueError("records, first line and header lines are counts")
    if batch.format in LOCAL_TIME_FORMATS and not batch.timezone:
        raise ValueError(f"{batch.format} records are in local time: a time zone is needed")


def _split(entity: bytes) -> tuple[bytes, bytes]:
    found = [
        (at, len(sep))
        for sep in (b"\r\n\r\n", b"\n\n")
        if (at := entity.find(sep, 0, MAX_HEAD + len(sep))) >= 0
    ]
    if not found:
        raise BatchError("no blank line after the batch headers (or headers over 16 KiB)")
    at, size = min(found)
    return entity[:at], entity[at + size :]


def _headers(head: bytes) -> dict[str, str]:
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise BatchError("batch headers must be ASCII") from None
    found: dict[str, str] = {}
    name = ""
    for line in re.split(r"\r?\n", text):
        if line[:1] in (" ", "\t") and name:  # folded continuation
            found[name] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise BatchError(f"bad batch header line {line[:60]!r}")
        name = key.strip().lower()
        if name in found:
            raise BatchError(f"batch header {key.strip()} appears twice")
        found[name] = value.strip()
    return found


def _int(headers: dict[str, str], name: str, default: int | None = None) -> int:
    value = headers.get(name.lower())
    if value is None:
        if default is None:
            raise BatchError(f"batch header {name} is missing")
        return default
    if not value.isdigit() or len(value) > 12:
        raise BatchError(f"batch header {name} must be a whole number, not {value[:40]!r}")
    return int(value)


def parse(entity: bytes) -> Batch:
    """Read a batch entity.

    Raises:
        BatchError: anything the format does not allow (see the module docstring).
    """
    head, body = _split(entity)
    headers = _headers(head)
    kind = headers.get("content-type", CONTENT_TYPE).split(";")[0].strip().lower()
    if kind not in (CONTENT_TYPE, GZIP_CONTENT_TYPE):
        raise BatchError(f"not a call-record batch (Content-Type {kind[:60]})")
    batch_id = headers.get("x-starwrs-batch")
    if batch_id is None:
        raise BatchError("batch header X-Starwrs-Batch is missing")
    if not _BATCH_ID.match(batch_id):
        raise BatchError(f"batch id {batch_id[:70]!r} is not 8-64 of [0-9A-Za-z._-]")
    enterprise = headers.get("x-starwrs-enterprise")
    if enterprise is None or not _ENTP.match(enterprise):
        raise BatchError("batch header X-Starwrs-Enterprise is missing or not an ENTPID")
    fmt = headers.get("x-starwrs-format", "").lower()
    if fmt not in FORMATS:
        raise BatchError(f"batch format {fmt[:20]!r} is not one of {', '.join(FORMATS)}")
    timezone = headers.get("x-starwrs-timezone") or None
    if timezone is not None:
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise BatchError(f"time zone {timezone[:40]!r} is not an IANA zone") from None
    elif fmt in LOCAL_TIME_FORMATS:
        raise BatchError(f"{fmt} records are in local time: X-Starwrs-Timezone is missing")
    offset = None
    if "x-starwrs-offset" in headers:
        match = _RANGE.match(headers["x-starwrs-offset"])
        if match is None:
            raise BatchError("batch header X-Starwrs-Offset must be START-END")
        offset = (int(match.group(1)), int(match.group(2)))
    file_date = None
    if "x-starwrs-file-date" in headers:
        try:
            file_date = dt.date.fromisoformat(headers["x-starwrs-file-date"])
        except ValueError:
            raise BatchError("batch header X-Starwrs-File-Date must be YYYY-MM-DD") from None
    created = None
    if "x-starwrs-created" in headers:
        try:
            created = dt.datetime.fromisoformat(headers["x-starwrs-created"].replace("Z", "+00:00"))
        except ValueError:
            created = None
    first_line = _int(headers, "X-Starwrs-First-Line", 1)
    if first_line < 1:
        raise BatchError("batch header X-Starwrs-First-Line starts at 1")
    if kind == GZIP_CONTENT_TYPE:
        body = _gunzip(body)
    return Batch(
        batch_id=batch_id,
        enterprise=enterprise,
        format=fmt,
        records=_int(headers, "X-Starwrs-Records"),
        body=body,
        source=headers.get("x-starwrs-source", "-") or "-",
        first_line=first_line,
        offset=offset,
        timezone=timezone,
        header_lines=_int(headers, "X-Starwrs-Header-Lines", 0),
        file_date=file_date,
        created=created,
        collector=headers.get("x-starwrs-collector"),
    )


def count_records(body: bytes, header_lines: int = 0) -> int:
    """Non-blank lines of *body* after its *header_lines* (what X-Starwrs-Records counts)."""
    lines = body.split(b"\n")
    return sum(1 for line in lines[header_lines:] if line.strip())
