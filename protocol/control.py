"""Control payloads of mechanisms 1-3: msgpack maps with strict shapes.

Theory of operation
-------------------
Tickets, polls and bulk transfers carry a msgpack map as their payload
(PROTOCOL.md section 3).  The shapes are exact -- the keys below and no others, the
types below (a ``bool`` is not an ``int``, a ``str`` is not ``bytes``), the limits
below -- and anything else is :class:`RemoteProtocolError` 7009 raised right here,
never a ``KeyError``, ``TypeError`` or msgpack exception from deeper down:

=========================  =============================================================
payload                    shape
=========================  =============================================================
ticket (mech 1 answer,     ``{"ticket": str}``, 1-128 visible ASCII characters
mech 2 request)
bulk get                   ``{"op": "get", "resource": str, "offset": int}``
bulk put                   ``{"op": "put", "resource": str, "size": int, "sha256": hex}``
bulk cancel                ``{"op": "cancel", "transfer": int}``
bulk data                  ``{"transfer": int, "offset": int, "total": int, "data": bin}``
                           and on the last frame also ``"done": true, "sha256": hex``
=========================  =============================================================

``resource`` is a metadata message of at most :data:`MAX_RESOURCE_BYTES` bytes of
UTF-8; integers are 0..2**63-1; ``hex`` is 64 lowercase hex digits; ``data`` is at
most :data:`MAX_DATA` bytes (1 MiB), non-empty except on the last frame, and
``offset + len(data) <= total`` (``==`` on the last frame).

Decoding uses ``msgpack.unpackb`` with every size limit set (string, binary, map,
array and ext lengths), so a hostile payload cannot make the unpacker allocate
more than the payload it was given.  Encoding the hot bulk data frame is done by
hand as a list of parts so the 1 MiB of data is copied once, into the frame.
"""

from __future__ import annotations

import re
from typing import Any

import msgpack
from starwrs.protocol.errors import (
    ErrorCode,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from starwrs.protocol.events import BulkCancel, BulkData, BulkGet, BulkPut
from starwrs.protocol.header import Header

__all__ = [
    "MAX_CONTROL_PAYLOAD",
    "MAX_DATA",
    "MAX_RESOURCE_BYTES",
    "MAX_TICKET_LENGTH",
    "check_data",
    "decode_bulk_request",
    "decode_data",
    "decode_ticket",
    "encode_cancel",
    "encode_data",
    "encode_get",
    "encode_put",
    "encode_ticket",
    "is_sha256_hex",
]

#: most data bytes in one bulk data frame -- PROTOCOL.md section 3
MAX_DATA = 1024 * 1024
#: longest ticket id, in characters
MAX_TICKET_LENGTH = 128
#: longest ``resource`` (a metadata message), in bytes of UTF-8
MAX_RESOURCE_BYTES = 8192
#: largest control payload other than a data frame
MAX_CONTROL_PAYLOAD = 16 * 1024
#: largest integer in a control payload
MAX_INT = 2**63 - 1
#: map overhead of a data frame beyond its data (keys, integers, hash)
_DATA_OVERHEAD = 256

_SHA256 = re.compile(r"[0-9a-f]{64}")
_TICKET = re.compile(rf"[!-~]{{1,{MAX_TICKET_LENGTH}}}")

_GET_KEYS = frozenset({"op", "resource", "offset"})
_PUT_KEYS = frozenset({"op", "resource", "size", "sha256"})
_CANCEL_KEYS = frozenset({"op", "transfer"})
_DATA_KEYS = frozenset({"transfer", "offset", "total", "data"})
_LAST_KEYS = _DATA_KEYS | {"done", "sha256"}


def is_sha256_hex(value: object) -> bool:
    """True for a str of exactly 64 lowercase hex digits."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def _bad(error: type[ProtocolError], message: str) -> ProtocolError:
    return error(ErrorCode.MALFORMED_FRAME, message)


def _unpack(payload: bytes, max_bin: int) -> dict[str, Any]:
    limit = MAX_CONTROL_PAYLOAD if not max_bin else max_bin + _DATA_OVERHEAD
    if len(payload) > limit:
        raise _bad(RemoteProtocolError, f"control payload of {len(payload)} bytes")
    try:
        obj = msgpack.unpackb(
            payload,
            raw=False,
            use_list=False,
            strict_map_key=True,
            max_str_len=MAX_RESOURCE_BYTES,
            max_bin_len=max_bin,
            max_array_len=0,
            max_map_len=6,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException) as err:
        raise _bad(RemoteProtocolError, f"control payload is not msgpack: {err}") from err
    if type(obj) is not dict:
        raise _bad(RemoteProtocolError, "control payload is not a msgpack map")
    return obj


def _int(obj: dict[str, Any], key: str, error: type[ProtocolError]) -> int:
    value = obj[key]
    if type(value) is not int or not 0 <= value <= MAX_INT:
        raise _bad(error, f"{key!r} must be an integer 0..2**63-1")
    return value


def _resource(obj: dict[str, Any], error: type[ProtocolError]) -> str:
    value = obj["resource"]
    if type(value) is not str or not value:
        raise _bad(error, "'resource' must be a non-empty metadata message")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_RESOURCE_BYTES:
        raise _bad(error, f"'resource' longer than {MAX_RESOURCE_BYTES} bytes")
    return value


def _sha256(obj: dict[str, Any], error: type[ProtocolError]) -> str:
    value = obj["sha256"]
    if not is_sha256_hex(value):
        raise _bad(error, "'sha256' must be 64 lowercase hex digits")
    assert isinstance(value, str)
    return value


def _ticket(value: object, error: type[ProtocolError]) -> str:
    if type(value) is not str or _TICKET.fullmatch(value) is None:
        raise _bad(error, f"a ticket is 1-{MAX_TICKET_LENGTH} visible ASCII characters")
    return value


# -- tickets --------------------------------------------------------------------------


def encode_ticket(ticket: str) -> bytes:
    """Payload ``{"ticket": ticket}`` of a mech 1 answer or a mech 2 poll.

    Raises:
        LocalProtocolError: 7009 a ticket that is not 1-128 visible ASCII characters.
    """
    return msgpack.packb({"ticket": _ticket(ticket, LocalProtocolError)})  # type: ignore[no-any-return]


def decode_ticket(payload: bytes) -> str:
    """The ticket of a ``{"ticket": str}`` payload.

    Raises:
        RemoteProtocolError: 7009 any other shape.
    """
    obj = _unpack(payload, 0)
    if obj.keys() != {"ticket"}:
        raise _bad(RemoteProtocolError, 'a ticket payload is exactly {"ticket": str}')
    return _ticket(obj["ticket"], RemoteProtocolError)


# -- bulk requests ----------------------------------------------------------------------


def _check_resource(resource: str) -> str:
    return _resource({"resource": resource}, LocalProtocolError)


def _check_int(name: str, value: int) -> int:
    return _int({name: value}, name, LocalProtocolError)


def encode_get(resource: str, offset: int) -> bytes:
    """Payload of a bulk get from *offset*.

    Raises:
        LocalProtocolError: 7009 a value outside its shape.
    """
    return msgpack.packb(  # type: ignore[no-any-return]
        {"op": "get", "resource": _check_resource(resource), "offset": _check_int("offset", offset)}
    )


def encode_put(resource: str, size: int, sha256: str) -> bytes:
    """Payload announcing a bulk put of *size* bytes with SHA-256 *sha256*.

    Raises:
        LocalProtocolError: 7009 a value outside its shape.
    """
    if not is_sha256_hex(sha256):
        raise _bad(LocalProtocolError, "'sha256' must be 64 lowercase hex digits")
    return msgpack.packb(  # type: ignore[no-any-return]
        {
            "op": "put",
            "resource": _check_resource(resource),
            "size": _check_int("size", size),
            "sha256": sha256,
        }
    )


def encode_cancel(transfer: int) -> bytes:
    """Payload cancelling transfer *transfer*.

    Raises:
        LocalProtocolError: 7009 a transfer id outside 0..2**63-1.
    """
    return msgpack.packb({"op": "cancel", "transfer": _check_int("transfer", transfer)})  # type: ignore[no-any-return]


def decode_bulk_request(
    payload: bytes, header: Header
) -> BulkGet | BulkPut | BulkCancel | BulkData:
    """Decode a mech 3 frame from a client: get, put, cancel (``op``) or data.

    Args:
        payload: the frame's payload.
        header: the frame's header (target, key and serial go into the event).

    Returns:
        The event; :class:`BulkData` when the map has no ``op``.

    Raises:
        RemoteProtocolError: 7009 any other shape.
    """
    event = _fast_data(payload, header.serial)
    if event is not None:
        return event
    obj = _unpack(payload, MAX_DATA)
    if "op" not in obj:
        return _data(obj, header.serial)
    op = obj["op"]
    keys = obj.keys()
    if op == "get" and keys == _GET_KEYS:
        return BulkGet(
            _resource(obj, RemoteProtocolError),
            _int(obj, "offset", RemoteProtocolError),
            header.target,
            header.key,
            header.serial,
        )
    if op == "put" and keys == _PUT_KEYS:
        return BulkPut(
            _resource(obj, RemoteProtocolError),
            _int(obj, "size", RemoteProtocolError),
            _sha256(obj, RemoteProtocolError),
            header.target,
            header.key,
            header.serial,
        )
    if op == "cancel" and keys == _CANCEL_KEYS:
        return BulkCancel(_int(obj, "transfer", RemoteProtocolError))
    raise _bad(RemoteProtocolError, "bulk request is not a get, put or cancel of the right shape")


# -- bulk data --------------------------------------------------------------------------

_K_TRANSFER = msgpack.packb("transfer")
_K_OFFSET = msgpack.packb("offset")
_K_TOTAL = msgpack.packb("total")
_K_DATA = msgpack.packb("data")
_K_DONE_TRUE = msgpack.packb("done") + msgpack.packb(True)
_K_SHA256 = msgpack.packb("sha256")


def _bin_header(n: int) -> bytes:
    if n < 0x100:
        return b"\xc4" + n.to_bytes(1, "big")
    if n < 0x10000:
        return b"\xc5" + n.to_bytes(2, "big")
    return b"\xc6" + n.to_bytes(4, "big")


def check_data(event: BulkData, error: type[ProtocolError] = LocalProtocolError) -> BulkData:
    """Check a data frame's own invariants (not its place in a transfer).

    Raises:
        ProtocolError: *error* with 7009 when a value is outside the shape.
    """
    for name in ("transfer", "offset", "total"):
        value = getattr(event, name)
        if type(value) is not int or not 0 <= value <= MAX_INT:
            raise _bad(error, f"{name!r} must be an integer 0..2**63-1")
    data = event.data
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _bad(error, "'data' must be bytes")
    if len(data) > MAX_DATA:
        raise _bad(error, f"data frame with {len(data)} bytes, at most {MAX_DATA}")
    end = event.offset + len(data)
    if event.done is True:
        if end != event.total:
            raise _bad(error, f"last data frame ends at {end}, the resource has {event.total}")
        if not is_sha256_hex(event.sha256):
            raise _bad(error, "the last data frame needs the hex sha256 of the resource")
    elif event.done is False:
        if event.sha256 is not None:
            raise _bad(error, "only the last data frame carries a sha256")
        if not data or end > event.total:
            raise _bad(error, f"data frame {event.offset}+{len(data)} of {event.total}")
    else:
        raise _bad(error, "'done' must be true or absent")
    return event


def encode_data(event: BulkData) -> list[bytes | bytearray | memoryview]:
    """The payload of a data frame, in parts (the data itself is not copied).

    Raises:
        LocalProtocolError: 7009 see :func:`check_data`.
    """
    check_data(event)
    data = event.data
    head = b"".join(
        (
            b"\x86" if event.done else b"\x84",
            _K_TRANSFER,
            msgpack.packb(event.transfer),
            _K_OFFSET,
            msgpack.packb(event.offset),
            _K_TOTAL,
            msgpack.packb(event.total),
            _K_DATA,
            _bin_header(len(data)),
        )
    )
    if event.done:
        return [head, data, _K_DONE_TRUE + _K_SHA256 + msgpack.packb(event.sha256)]
    return [head, data]


def _data(obj: dict[str, Any], serial: int) -> BulkData:
    keys = obj.keys()
    if keys == _DATA_KEYS:
        done = False
        sha256 = None
    elif keys == _LAST_KEYS:
        if obj["done"] is not True:
            raise _bad(RemoteProtocolError, "'done' must be true when present")
        done = True
        sha256 = _sha256(obj, RemoteProtocolError)
    else:
        raise _bad(RemoteProtocolError, "a data frame has transfer, offset, total, data")
    data = obj["data"]
    if type(data) is not bytes:
        raise _bad(RemoteProtocolError, "'data' must be msgpack bin")
    event = BulkData(
        _int(obj, "transfer", RemoteProtocolError),
        _int(obj, "offset", RemoteProtocolError),
        _int(obj, "total", RemoteProtocolError),
        data,
        done,
        sha256,
        serial,
    )
    return check_data(event, RemoteProtocolError)


_UINT_SIZES = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_BIN_SIZES = {0xC4: 1, 0xC5: 2, 0xC6: 4}
_LAST_TAIL = _K_DONE_TRUE + _K_SHA256 + b"\xd9\x40"  # then 64 bytes of hex


def _uint(payload: bytes, pos: int) -> tuple[int, int]:
    """A msgpack unsigned integer at *pos*: ``(value, next pos)``; ``(-1, 0)`` if not one."""
    if pos >= len(payload):
        return -1, 0
    first = payload[pos]
    if first < 0x80:
        return first, pos + 1
    size = _UINT_SIZES.get(first, 0)
    end = pos + 1 + size
    if not size or end > len(payload):
        return -1, 0
    return int.from_bytes(payload[pos + 1 : end], "big"), end


def _fast_data(payload: bytes, serial: int) -> BulkData | None:
    """Decode the canonical layout :func:`encode_data` writes, without copying the data.

    Returns ``None`` for anything else (another key order, other integer or string
    formats, ...), which the generic msgpack path then decodes or rejects; when
    this returns an event, the generic path would have returned an equal one.
    """
    if len(payload) < 2 or payload[0] not in (0x84, 0x86):
        return None
    pos = 1
    fields = []
    for key in (_K_TRANSFER, _K_OFFSET, _K_TOTAL):
        if not payload.startswith(key, pos):
            return None
        value, pos = _uint(payload, pos + len(key))
        if not 0 <= value <= MAX_INT:
            return None
        fields.append(value)
    if not payload.startswith(_K_DATA, pos) or pos + len(_K_DATA) >= len(payload):
        return None
    pos += len(_K_DATA)
    size = _BIN_SIZES.get(payload[pos], 0)
    if not size:
        return None
    start = pos + 1 + size
    end = start + int.from_bytes(payload[pos + 1 : start], "big")
    done = payload[0] == 0x86
    if end != len(payload) - (len(_LAST_TAIL) + 64 if done else 0) or start > end:
        return None
    sha256 = None
    if done:
        if not payload.startswith(_LAST_TAIL, end):
            return None
        sha256 = payload[end + len(_LAST_TAIL) :].decode("latin-1")
        if not is_sha256_hex(sha256):
            return None
    data = memoryview(payload)[start:end]
    event = BulkData(fields[0], fields[1], fields[2], data, done, sha256, serial)
    return check_data(event, RemoteProtocolError)


def decode_data(payload: bytes, serial: int = 0) -> BulkData:
    """Decode a bulk data frame's payload.

    Our own canonical encoding is decoded without copying: ``data`` is then a
    read-only ``memoryview`` into *payload*; other valid encodings give ``bytes``.

    Args:
        payload: the frame's payload.
        serial: the frame's serial, copied into the event.

    Raises:
        RemoteProtocolError: 7009 any other shape.
    """
    return _fast_data(payload, serial) or _data(_unpack(payload, MAX_DATA), serial)
