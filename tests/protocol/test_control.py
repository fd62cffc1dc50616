"""protocol/control.py: msgpack control payloads with strict shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starwrs.protocol import control
from starwrs.protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from starwrs.protocol.events import BulkCancel, BulkData, BulkGet, BulkPut
from starwrs.protocol.header import Mechanism, make_header

SHA = "ab" * 32
HEADER = make_header(Mechanism.BULK, "INBX", key="k", serial=9)


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def test_ticket_round_trip() -> None:
    assert control.decode_ticket(control.encode_ticket("t-1")) == "t-1"
    assert control.encode_ticket("t-1") == pack({"ticket": "t-1"})


def test_bulk_requests_round_trip() -> None:
    decode = control.decode_bulk_request
    assert decode(control.encode_get("F<INBOXID=42>", 7), HEADER) == BulkGet(
        "F<INBOXID=42>", 7, "INBX", "k", 9
    )
    assert decode(control.encode_put("F<X=1>", 3, SHA), HEADER) == BulkPut(
        "F<X=1>", 3, SHA, "INBX", "k", 9
    )
    assert decode(control.encode_cancel(5), HEADER) == BulkCancel(5)


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"ticket": ""},
        {"ticket": "a b"},
        {"ticket": "x" * 129},
        {"ticket": b"t"},
        {"ticket": 1},
        {"ticket": "t", "extra": 1},
        {b"ticket": "t"},
        ["ticket", "t"],
        "t",
    ],
)
def test_ticket_rejects(obj: Any) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        control.decode_ticket(pack(obj))
    assert info.value.code == 7009


@pytest.mark.parametrize(
    "obj",
    [
        {"op": "get", "resource": "F<A=1>"},
        {"op": "get", "resource": "F<A=1>", "offset": -1},
        {"op": "get", "resource": "F<A=1>", "offset": 2**63},
        {"op": "get", "resource": "F<A=1>", "offset": True},
        {"op": "get", "resource": "F<A=1>", "offset": 1.0},
        {"op": "get", "resource": "", "offset": 0},
        {"op": "get", "resource": b"F<A=1>", "offset": 0},
        {"op": "get", "resource": "F<A=1>", "offset": 0, "x": 1},
        {"op": "GET", "resource": "F<A=1>", "offset": 0},
        {"op": "put", "resource": "F<A=1>", "size": 1},
        {"op": "put", "resource": "F<A=1>", "size": 1, "sha256": SHA.upper()},
        {"op": "put", "resource": "F<A=1>", "size": 1, "sha256": SHA[:-1]},
        {"op": "put", "resource": "F<A=1>", "size": -1, "sha256": SHA},
        {"op": "cancel"},
        {"op": "cancel", "transfer": "1"},
        {"op": "delete", "transfer": 1},
        {"transfer": 1, "offset": 0, "total": 1},
        {"transfer": 1, "offset": 0, "total": 1, "data": "x"},
        {"transfer": 1, "offset": 0, "total": 1, "data": b""},
        {"transfer": 1, "offset": 0, "total": 1, "data": b"xy"},
        {"transfer": 1, "offset": 0, "total": 2, "data": b"x", "done": True, "sha256": SHA},
        {"transfer": 1, "offset": 0, "total": 1, "data": b"x", "done": False, "sha256": SHA},
        {"transfer": 1, "offset": 0, "total": 1, "data": b"x", "done": 1, "sha256": SHA},
        {"transfer": 1, "offset": 0, "total": 1, "data": b"x", "done": True},
        {"transfer": 1, "offset": 0, "total": 1, "data": b"x", "sha256": SHA},
        {"transfer": -1, "offset": 0, "total": 1, "data": b"x", "done": True, "sha256": SHA},
        [1, 2],
        None,
    ],
)
def test_bulk_rejects(obj: Any) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        control.decode_bulk_request(pack(obj), HEADER)
    assert info.value.code == 7009


def test_limits() -> None:
    resource = "R<" + "x" * control.MAX_RESOURCE_BYTES + ">"
    with pytest.raises(RemoteProtocolError):
        control.decode_bulk_request(pack({"op": "get", "resource": resource, "offset": 0}), HEADER)
    with pytest.raises(LocalProtocolError):
        control.encode_get(resource, 0)
    too_much = b"x" * (control.MAX_DATA + 1)
    obj = {"transfer": 1, "offset": 0, "total": len(too_much), "data": too_much}
    with pytest.raises(RemoteProtocolError):
        control.decode_data(pack(obj))
    with pytest.raises(LocalProtocolError):
        control.encode_data(BulkData(1, 0, len(too_much), too_much))
    with pytest.raises(RemoteProtocolError):  # a control payload bigger than any shape
        control.decode_ticket(b"\x81" + pack("ticket") + pack("t" * 20000))


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xc1",  # never used
        b"\x81\xa6ticket",  # truncated
        pack({"ticket": "t"}) + b"\x00",  # trailing data
        b"\x81\xa6ticket\xd4\x01\x00",  # ext type
        b"\x81\xa6ticket\xdd\x00\x00\x00\x01\x00",  # array
        b"\x81\x81\xa1a\x01\x01",  # map as a key
        b"\x81\xa6ticket\xa2\xff\xfe",  # invalid UTF-8
        b"\x91" * 5000,  # deep nesting
        b"\xdf\xff\xff\xff\xff",  # a map claiming 4 billion entries
        b"\xc6\xff\xff\xff\xff",  # a bin claiming 4 GiB
    ],
)
def test_garbage_is_7009_not_a_msgpack_exception(payload: bytes) -> None:
    for decode in (
        control.decode_ticket,
        control.decode_data,
        lambda p: control.decode_bulk_request(p, HEADER),
    ):
        with pytest.raises(RemoteProtocolError) as info:
            decode(payload)
        assert info.value.code == 7009


@given(st.binary(max_size=200))
def test_random_payloads_only_raise_protocol_errors(payload: bytes) -> None:
    for decode in (
        control.decode_ticket,
        control.decode_data,
        lambda p: control.decode_bulk_request(p, HEADER),
    ):
        try:
            decode(payload)
        except ProtocolError as err:
            assert err.code == 7009  # noqa: PT017


# -- bulk data: the hand-written fast path agrees with msgpack ------------------------------


@st.composite
def data_frames(draw: st.DrawFn) -> BulkData:
    data = draw(st.binary(max_size=70000)) if draw(st.booleans()) else draw(st.binary(max_size=40))
    done = draw(st.booleans()) or not data
    total_extra = 0 if done else draw(st.integers(0, 2**40))
    offset = draw(st.integers(0, 2**62))
    return BulkData(
        draw(st.integers(0, 2**63 - 1)),
        offset,
        offset + len(data) + total_extra,
        data,
        done,
        draw(st.text("0123456789abcdef", min_size=64, max_size=64)) if done else None,
    )


def generic(event: BulkData) -> bytes:
    obj: dict[str, Any] = {
        "transfer": event.transfer,
        "offset": event.offset,
        "total": event.total,
        "data": bytes(event.data),
    }
    if event.done:
        obj.update(done=True, sha256=event.sha256)
    return pack(obj)


@given(data_frames())
def test_encode_data_is_plain_msgpack(event: BulkData) -> None:
    encoded = b"".join(control.encode_data(event))
    assert encoded == generic(event)
    assert control.decode_data(encoded) == event
    decoded = control.decode_data(encoded, serial=4)
    assert isinstance(decoded.data, memoryview)  # our own layout: zero copy
    assert decoded.serial == 4


@given(data_frames(), st.permutations(range(6)))
def test_other_key_orders_decode_the_same(event: BulkData, order: list[int]) -> None:
    obj: dict[str, Any] = {
        "transfer": event.transfer,
        "offset": event.offset,
        "total": event.total,
        "data": bytes(event.data),
    }
    if event.done:
        obj.update(done=True, sha256=event.sha256)
    keys = [k for k in (list(obj)[i] for i in order if i < len(obj))]
    decoded = control.decode_data(pack({k: obj[k] for k in keys}))
    assert decoded == event


@given(data_frames(), st.integers(0, 100), st.binary(min_size=1, max_size=3))
def test_corrupted_fast_layout_never_disagrees(event: BulkData, at: int, junk: bytes) -> None:
    encoded = bytearray(b"".join(control.encode_data(event)))
    at = min(at, len(encoded) - 1)
    encoded[at : at + len(junk)] = junk
    payload = bytes(encoded)
    fast = outcome(lambda: control._fast_data(payload, 0))
    slow = outcome(lambda: control._data(control._unpack(payload, control.MAX_DATA), 0))
    if isinstance(fast, ProtocolError):
        assert isinstance(slow, ProtocolError)
    elif fast is not None:
        assert fast == slow


def outcome(fn: Callable[[], BulkData | None]) -> BulkData | ProtocolError | None:
    try:
        return fn()
    except ProtocolError as err:
        return err
