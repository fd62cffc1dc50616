"""The common header of every frame (PROTOCOL.md section 2; seed Figs. 15(a)/(b)).

Theory of operation
-------------------
Every frame between the web server, the dispatcher and the proxies starts with a
24-byte fixed part, big-endian, laid out by :data:`HEADER` (``>BBBBIQI4s``)::

    version echo mech klen | length | serial | status | target
       1     1    1    1   |   4    |   8    |   4    |   4     = 24 bytes

followed by ``klen`` bytes of session key and then the payload.  ``length`` counts
the whole frame (header + key + payload).  :class:`Header` is the decoded fixed part
*plus the key* (the key belongs to the header in the seed's figure and in the text
form); ``klen`` is implied by the key.

Two functions do the work, and they are each other's inverse:

* :func:`pack_header` -- ``Header`` to the ``24 + klen`` bytes on the wire;
* :func:`parse_header` -- those bytes (any buffer, e.g. a ``memoryview`` into a
  receive buffer) back to a ``Header``, checking everything section 2 asks:
  version (7001), mechanism (7008), ``length >= 24 + klen`` (7009), ``length`` not
  above the receiver's configured maximum (7005), target and key characters (7009).

:func:`check_prefix` runs the size checks on the fixed 24 bytes alone, so a frame
reader rejects a frame that declares 4 GiB before it has buffered anything beyond
those 24 bytes.  The payload is never looked at here.

Legal values (what keeps binary -> text -> binary the identity): the target is 0-4
visible ASCII characters (``!``..``~``), left-justified and space padded on the
wire (``RM`` is ``b"RM  "``); the key is 0-255 visible ASCII characters (a cookie
value).  ``Header.target`` holds the name without its padding.

Speed: both directions have a fast path for the common case (a target seen before,
any legal key: alphanumeric, or visible ASCII such as ``jeanvnet2@00022924`` and the
URL-safe session keys with ``-`` and ``_``) that is one ``struct`` call plus a
handful of comparisons; anything else falls through to a slow path that either accepts the
header or raises the precise error.  Per-key-length ``Struct`` objects are derived
from :data:`HEADER` so the key comes out of the same ``unpack_from`` call.

Text form: :func:`header_to_text` / :func:`header_from_text` render a header in the
metadata syntax through :mod:`starwrs.grammar` --
``HDR<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=87,SERIAL=4294967297,STATUS=0,TARGET=RM,KEY=9f2c>``
-- and :func:`header_to_dict` / :func:`header_from_dict` give the JSON shape the
CLI prints.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from enum import IntEnum
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from starwrs.protocol.errors import (
    ErrorCode,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)

if TYPE_CHECKING:
    from starwrs.grammar.model import Message

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "HEADER",
    "HEADER_SIZE",
    "MAX_FRAME_LENGTH",
    "MAX_KEY_LENGTH",
    "VERSION",
    "BytesLike",
    "Header",
    "Mechanism",
    "check_prefix",
    "header_from_dict",
    "header_from_text",
    "header_to_dict",
    "header_to_text",
    "make_header",
    "pack_header",
    "parse_header",
]

BytesLike: TypeAlias = "bytes | bytearray | memoryview"

#: The fixed part of the common header -- PROTOCOL.md section 2.
HEADER = struct.Struct(">BBBBIQI4s")
#: Size of the fixed part in bytes.
HEADER_SIZE = HEADER.size
#: The protocol version this code speaks; anything else is answered with 7001.
VERSION = 1
#: Largest frame accepted unless configured otherwise (7005 above it).
DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
#: ``length`` is a 32-bit field.
MAX_FRAME_LENGTH = 0xFFFFFFFF
#: ``klen`` is an 8-bit field.
MAX_KEY_LENGTH = 0xFF

_U8 = 0xFF
_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF

#: HEADER followed by the key, one Struct per key length (derived, not a second layout)
_LAYOUTS = tuple(struct.Struct(f"{HEADER.format}{k}s") for k in range(MAX_KEY_LENGTH + 1))
#: just enough of HEADER to size a frame: version, echo, mech, klen, length
_PREFIX = struct.Struct(HEADER.format[:6])
#: every byte a target name or a key may contain: visible ASCII ``!``..``~``
_VISIBLE = bytes(range(0x21, 0x7F))


class Mechanism(IntEnum):
    """The header's ``mech`` byte -- PROTOCOL.md section 3 ("transport mechanisms")."""

    #: 0 one request frame, one response frame, same connection
    SYNC = 0
    #: 1 asynchronous request: answered at once with a ticket
    ASYNC = 1
    #: 2 asynchronous poll/reply: a ticket in, pending or the final answer out
    POLL = 2
    #: 3 bulk transfer: get or put, in data frames of at most 1 MiB
    BULK = 3


_MECHANISMS = tuple(Mechanism)


class Header(NamedTuple):
    """A decoded common header: the 24-byte fixed part plus the session key.

    Attributes:
        version: protocol version, always :data:`VERSION` once parsed.
        echo: non-zero marks a connectivity test (answered with the same header).
        mech: the transport :class:`Mechanism`.
        length: total frame length in bytes: ``24 + len(key) + len(payload)``.
        serial: dispatcher-assigned serial (0 until assigned).
        status: 0 in requests; in responses 0, 1 (pending) or an error code.
        target: the target proxy's name without padding (``RM``, ``INBX``, ...).
        key: the session key, visible ASCII (may be empty).
    """

    version: int
    echo: int
    mech: Mechanism
    length: int
    serial: int
    status: int
    target: str
    key: str

    @property
    def size(self) -> int:
        """Bytes this header takes on the wire: ``24 + len(key)``."""
        return HEADER_SIZE + len(self.key)

    @property
    def payload_length(self) -> int:
        """Bytes of payload that follow the header: ``length - 24 - len(key)``."""
        return self.length - HEADER_SIZE - len(self.key)


_new_header = tuple.__new__


def make_header(
    mech: Mechanism | int,
    target: str,
    *,
    key: str = "",
    payload_length: int = 0,
    serial: int = 0,
    status: int = 0,
    echo: int = 0,
) -> Header:
    """Build a :class:`Header`, computing ``length`` from the key and payload sizes.

    Args:
        mech: the transport mechanism (0-3).
        target: target proxy name, 0-4 visible ASCII characters.
        key: session key, 0-255 visible ASCII characters.
        payload_length: bytes of payload the frame will carry.
        serial: dispatcher-assigned serial.
        status: 0 in requests, the answer's status in responses.
        echo: non-zero for a connectivity test.

    Returns:
        The header (not yet checked; :func:`pack_header` checks it).
    """
    length = HEADER_SIZE + len(key) + payload_length
    mechanism = _MECHANISMS[mech] if isinstance(mech, int) and 0 <= mech <= 3 else mech
    return _new_header(Header, (VERSION, echo, mechanism, length, serial, status, target, key))


# -- target name cache: targets are few and not secret --------------------------------

_TARGET_NAMES: dict[bytes, str] = {}
_TARGET_BYTES: dict[str, bytes] = {}
_TARGET_CACHE_MAX = 256


def _remember_target(raw: bytes, name: str) -> None:
    if len(_TARGET_NAMES) >= _TARGET_CACHE_MAX:
        _TARGET_NAMES.clear()
        _TARGET_BYTES.clear()
    _TARGET_NAMES[raw] = name
    _TARGET_BYTES[name] = raw


def _is_visible(raw: bytes) -> bool:
    """True if every byte is visible ASCII (``!``..``~``); empty is visible."""
    return not raw.translate(None, _VISIBLE)


def _target_name(raw: bytes, error: type[ProtocolError]) -> str:
    name_bytes = raw.rstrip(b" ")
    if not _is_visible(name_bytes):
        raise error(
            ErrorCode.MALFORMED_FRAME,
            f"target {raw!r} is not visible ASCII, left-justified and space padded",
        )
    name = name_bytes.decode("ascii")
    _remember_target(raw, name)
    return name


def _target_bytes(name: object, error: type[ProtocolError]) -> bytes:
    if not isinstance(name, str):
        raise error(ErrorCode.MALFORMED_FRAME, "target must be text")
    try:
        name_bytes = name.encode("ascii")
    except UnicodeEncodeError:
        name_bytes = b"\x00"
    if len(name_bytes) > 4 or not _is_visible(name_bytes):
        raise error(
            ErrorCode.MALFORMED_FRAME, f"target {name!r} is not 0-4 visible ASCII characters"
        )
    raw = name_bytes.ljust(4, b" ")
    _remember_target(raw, name)
    return raw


def _key_text(raw: bytes, error: type[ProtocolError]) -> str:
    if not _is_visible(raw):
        raise error(ErrorCode.MALFORMED_FRAME, "session key is not visible ASCII")
    return raw.decode("ascii")


def _key_bytes(key: object, error: type[ProtocolError]) -> bytes:
    if not isinstance(key, str):
        raise error(ErrorCode.MALFORMED_FRAME, "session key must be text")
    try:
        raw = key.encode("ascii")
    except UnicodeEncodeError:
        raw = b"\x00"
    if not _is_visible(raw):
        raise error(ErrorCode.MALFORMED_FRAME, "session key is not visible ASCII")
    if len(raw) > MAX_KEY_LENGTH:
        raise error(ErrorCode.MALFORMED_FRAME, f"session key longer than {MAX_KEY_LENGTH}")
    return raw


# -- size checks shared by every decoder ------------------------------------------------


def _check_sizes(
    version: int,
    mech: int,
    klen: int,
    length: int,
    max_frame_size: int | None,
    error: type[ProtocolError],
) -> None:
    """Raise the first size/identity error of section 2, in the order a peer sees them."""
    if version != VERSION:
        raise error(ErrorCode.VERSION_MISMATCH, f"version {version}, this peer speaks {VERSION}")
    if not 0 <= mech <= 3:
        raise error(ErrorCode.UNKNOWN_MECHANISM, f"unknown mechanism {mech}")
    if length < HEADER_SIZE + klen:
        raise error(
            ErrorCode.MALFORMED_FRAME,
            f"length {length} shorter than header and key ({HEADER_SIZE + klen})",
        )
    if max_frame_size is not None and length > max_frame_size:
        raise error(ErrorCode.FRAME_TOO_LARGE, f"frame of {length} bytes, maximum {max_frame_size}")


def check_prefix(view: BytesLike, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> tuple[int, int]:
    """Size a frame from its first 24 bytes, before anything else is buffered.

    Args:
        view: at least the 24-byte fixed part.
        max_frame_size: largest total frame length accepted.

    Returns:
        ``(header_size, length)``: ``24 + klen`` and the total frame length.

    Raises:
        RemoteProtocolError: 7001 wrong version, 7008 unknown mechanism, 7009
            ``length < 24 + klen`` or fewer than 24 bytes, 7005 ``length`` above
            ``max_frame_size``.
    """
    if len(view) < HEADER_SIZE:
        raise RemoteProtocolError(ErrorCode.MALFORMED_FRAME, "truncated header")
    version, _echo, mech, klen, length = _PREFIX.unpack_from(view)
    if version != VERSION or mech > 3 or not HEADER_SIZE + klen <= length <= max_frame_size:
        _check_sizes(version, mech, klen, length, max_frame_size, RemoteProtocolError)
    return HEADER_SIZE + klen, length


# -- binary ---------------------------------------------------------------------------


def parse_header(view: BytesLike, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> Header:
    """Decode the header (fixed part and key) at the start of *view*.

    Only ``24 + klen`` bytes are read; whatever follows (the payload) is ignored.

    Args:
        view: bytes, bytearray or memoryview holding at least the header.
        max_frame_size: largest total frame length accepted (7005 above it).

    Returns:
        The :class:`Header`.

    Raises:
        RemoteProtocolError: 7001, 7005, 7008 or 7009 (see :func:`check_prefix`;
            also 7009 for a short buffer, a bad target or a bad key).
    """
    try:
        (version, echo, mech, klen, length, serial, status, raw_target, raw_key) = _LAYOUTS[
            view[3]
        ].unpack_from(view)
        if (
            version == VERSION
            and HEADER_SIZE + klen <= length <= max_frame_size
            and (not klen or raw_key.isalnum() or not raw_key.translate(None, _VISIBLE))
        ):
            return _new_header(
                Header,
                (
                    version,
                    echo,
                    _MECHANISMS[mech],
                    length,
                    serial,
                    status,
                    _TARGET_NAMES[raw_target],
                    raw_key.decode("ascii"),
                ),
            )
    except (IndexError, KeyError, struct.error):
        pass
    return _parse_header_slow(view, max_frame_size)


def _parse_header_slow(view: BytesLike, max_frame_size: int) -> Header:
    if len(view) < HEADER_SIZE:
        raise RemoteProtocolError(ErrorCode.MALFORMED_FRAME, "truncated header")
    version, echo, mech, klen, length, serial, status, raw_target = HEADER.unpack_from(view)
    _check_sizes(version, mech, klen, length, max_frame_size, RemoteProtocolError)
    if len(view) < HEADER_SIZE + klen:
        raise RemoteProtocolError(ErrorCode.MALFORMED_FRAME, "truncated session key")
    target = _target_name(raw_target, RemoteProtocolError)
    key = _key_text(bytes(view[HEADER_SIZE : HEADER_SIZE + klen]), RemoteProtocolError)
    return _new_header(
        Header, (version, echo, _MECHANISMS[mech], length, serial, status, target, key)
    )


def pack_header(header: Header) -> bytes:
    """Encode *header* as the ``24 + klen`` bytes that start its frame.

    Args:
        header: the header; ``length`` must already count the payload.

    Returns:
        The fixed part followed by the key.

    Raises:
        LocalProtocolError: 7001 version other than 1, 7008 mechanism outside 0-3,
            7009 any other field out of range (``length < 24 + klen``, target or key
            not visible ASCII or too long, integers out of their field's range).
    """
    version, echo, mech, length, serial, status, target, key = header
    try:
        raw_target = _TARGET_BYTES[target]
        raw_key = key.encode("ascii")
        klen = len(raw_key)
        if (
            version == VERSION
            and mech <= 3
            and length >= HEADER_SIZE + klen
            and (not klen or raw_key.isalnum() or not raw_key.translate(None, _VISIBLE))
        ):
            return _LAYOUTS[klen].pack(
                version, echo, mech, klen, length, serial, status, raw_target, raw_key
            )
    except (KeyError, IndexError, TypeError, AttributeError, UnicodeError, struct.error):
        pass
    return _pack_header_slow(header, LocalProtocolError)


def _check_int(name: str, value: object, top: int, error: type[ProtocolError]) -> int:
    if not isinstance(value, int) or not 0 <= value <= top:
        raise error(ErrorCode.MALFORMED_FRAME, f"{name} must be an integer 0..{top}")
    return value


def _pack_header_slow(header: Header, error: type[ProtocolError]) -> bytes:
    version, echo, mech, length, serial, status, target, key = header
    _check_int("version", version, _U8, error)
    if not isinstance(mech, int):
        raise error(ErrorCode.UNKNOWN_MECHANISM, f"unknown mechanism {mech!r}")
    raw_key = _key_bytes(key, error)
    _check_int("length", length, _U32, error)
    _check_sizes(version, mech, len(raw_key), length, None, error)
    _check_int("echo", echo, _U8, error)
    _check_int("serial", serial, _U64, error)
    _check_int("status", status, _U32, error)
    raw_target = _target_bytes(target, error)
    return HEADER.pack(version, echo, mech, len(raw_key), length, serial, status, raw_target) + (
        raw_key
    )


def _checked(header: Header, max_frame_size: int | None, error: type[ProtocolError]) -> Header:
    """Run every check of :func:`pack_header` (and the size limit) raising *error*."""
    _pack_header_slow(header, error)
    if max_frame_size is not None and header.length > max_frame_size:
        raise error(
            ErrorCode.FRAME_TOO_LARGE,
            f"frame of {header.length} bytes, maximum {max_frame_size}",
        )
    return header._replace(mech=_MECHANISMS[header.mech])


# -- text form and JSON shape ---------------------------------------------------------

#: the members of ``HDR<...>``, in the order they are written
_TEXT_KEYS = ("VERSION", "ECHO", "MECH", "LENGTH", "SERIAL", "STATUS", "TARGET", "KEY")
_INT_FIELDS = {
    "version": _U8,
    "echo": _U8,
    "length": _U32,
    "serial": _U64,
    "status": _U32,
}
_FIELDS = ("version", "echo", "mech", "length", "serial", "status", "target", "key")


def _mechanism(value: object, error: type[ProtocolError]) -> Mechanism:
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= 3:
            return _MECHANISMS[value]
    elif isinstance(value, str):
        if value in Mechanism.__members__:
            return Mechanism[value]
        if value.isascii() and value.isdigit() and len(value) <= 3 and int(value) <= 3:
            return _MECHANISMS[int(value)]
    raise error(
        ErrorCode.UNKNOWN_MECHANISM,
        f"unknown mechanism {value!r} (SYNC, ASYNC, POLL, BULK or 0-3)",
    )


def header_to_text(header: Header) -> str:
    """Render *header* in the metadata syntax: ``HDR<VERSION=1,...,KEY=...>``.

    Args:
        header: a legal header.

    Returns:
        The canonical text form; :func:`header_from_text` gives the header back.

    Raises:
        LocalProtocolError: the header is not legal (see :func:`pack_header`).
    """
    from starwrs.grammar import Member, Message, serialize

    header = _checked(header, None, LocalProtocolError)
    values = (
        str(header.version),
        str(header.echo),
        header.mech.name,
        str(header.length),
        str(header.serial),
        str(header.status),
        header.target,
        header.key,
    )
    return serialize(
        Message("HDR", tuple(Member(k, v) for k, v in zip(_TEXT_KEYS, values, strict=True)))
    )


def header_from_text(text: str, max_frame_size: int | None = DEFAULT_MAX_FRAME_SIZE) -> Header:
    """Parse the text form ``HDR<VERSION=1,ECHO=0,MECH=SYNC,...>`` back to a header.

    Members may come in any order but each exactly once; numbers are plain decimal;
    ``MECH`` is a name or 0-3; ``TARGET`` is written without its padding.

    Args:
        text: the text form.
        max_frame_size: largest ``LENGTH`` accepted (``None``: the 32-bit limit).

    Returns:
        The :class:`Header`.

    Raises:
        RemoteProtocolError: 7009 text that is not a header (with the grammar's
            offset in the message), 7001, 7005 or 7008 as for binary headers.
    """
    from starwrs.grammar import MessageError, parse

    try:
        message: Message = parse(text)
    except MessageError as err:
        raise RemoteProtocolError(
            ErrorCode.MALFORMED_FRAME,
            f"header text: {err.message} (offset {err.offset})",
        ) from err
    if message.acronym != "HDR":
        raise RemoteProtocolError(ErrorCode.MALFORMED_FRAME, "header text must start HDR<")
    fields: dict[str, object] = {}
    for member in message.members:
        name = member.key
        if name is None or name not in _TEXT_KEYS:
            raise RemoteProtocolError(ErrorCode.MALFORMED_FRAME, f"unknown header member {name!r}")
        if name.lower() in fields:
            raise RemoteProtocolError(ErrorCode.MALFORMED_FRAME, f"{name} given twice")
        if not isinstance(member.value, str):
            raise RemoteProtocolError(ErrorCode.MALFORMED_FRAME, f"{name} must be plain text")
        fields[name.lower()] = member.value
    missing = [k for k in _TEXT_KEYS if k.lower() not in fields]
    if missing:
        raise RemoteProtocolError(
            ErrorCode.MALFORMED_FRAME, f"header text lacks {', '.join(missing)}"
        )
    for name in _INT_FIELDS:
        value = fields[name]
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise RemoteProtocolError(
                ErrorCode.MALFORMED_FRAME, f"{name.upper()} must be a decimal number"
            )
        # a long digit string is out of range, not "not a number": cap it at one
        # past the widest field (20 digits) so int() never sees a huge string
        fields[name] = int(value) if len(value) <= 20 else 10**20
    return _from_fields(fields, max_frame_size)


def _from_fields(fields: Mapping[str, object], max_frame_size: int | None) -> Header:
    error = RemoteProtocolError
    version = _check_int("version", fields["version"], _U8, error)
    if version != VERSION:
        raise error(ErrorCode.VERSION_MISMATCH, f"version {version}, this peer speaks {VERSION}")
    mech = _mechanism(fields["mech"], error)
    header = _new_header(
        Header,
        (
            version,
            _check_int("echo", fields["echo"], _U8, error),
            mech,
            _check_int("length", fields["length"], _U32, error),
            _check_int("serial", fields["serial"], _U64, error),
            _check_int("status", fields["status"], _U32, error),
            fields["target"],
            fields["key"],
        ),
    )
    return _checked(header, max_frame_size, error)


def header_to_dict(header: Header) -> dict[str, object]:
    """The JSON shape of a header (``mech`` by name), as ``starwrs header decode`` prints it.

    Args:
        header: the header.

    Returns:
        ``{"version", "echo", "mech", "length", "serial", "status", "target", "key"}``.
    """
    return {
        "version": header.version,
        "echo": header.echo,
        "mech": _MECHANISMS[header.mech].name,
        "length": header.length,
        "serial": header.serial,
        "status": header.status,
        "target": header.target,
        "key": header.key,
    }


def header_from_dict(obj: object, max_frame_size: int | None = DEFAULT_MAX_FRAME_SIZE) -> Header:
    """Build a header from its JSON shape (the inverse of :func:`header_to_dict`).

    ``mech`` and ``target`` are required; ``version`` defaults to 1, ``echo``,
    ``serial`` and ``status`` to 0, ``key`` to ``""`` and ``length`` to the header's
    own size (no payload).  ``mech`` is a name or 0-3.  Other keys are errors.

    Args:
        obj: a mapping, typically from ``json.loads``.
        max_frame_size: largest ``length`` accepted (``None``: the 32-bit limit).

    Returns:
        The :class:`Header`.

    Raises:
        RemoteProtocolError: 7009 wrong shape or types, 7001, 7005 or 7008.
    """
    if not isinstance(obj, Mapping):
        raise RemoteProtocolError(ErrorCode.MALFORMED_FRAME, "a header is a JSON object")
    unknown = sorted(str(k) for k in obj if k not in _FIELDS)
    if unknown:
        raise RemoteProtocolError(
            ErrorCode.MALFORMED_FRAME, f"unknown header field(s): {', '.join(unknown)}"
        )
    for required in ("mech", "target"):
        if required not in obj:
            raise RemoteProtocolError(ErrorCode.MALFORMED_FRAME, f"header lacks {required!r}")
    key = obj.get("key", "")
    default_length = HEADER_SIZE + len(key) if isinstance(key, str) else HEADER_SIZE
    fields = {
        "version": obj.get("version", VERSION),
        "echo": obj.get("echo", 0),
        "mech": obj["mech"],
        "length": obj.get("length", default_length),
        "serial": obj.get("serial", 0),
        "status": obj.get("status", 0),
        "target": obj["target"],
        "key": key,
    }
    for name in _INT_FIELDS:
        if isinstance(fields[name], bool):
            raise RemoteProtocolError(ErrorCode.MALFORMED_FRAME, f"{name} must be an integer")
    return _from_fields(fields, max_frame_size)
