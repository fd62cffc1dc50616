"""protocol/header.py: the common header, its checks, its text and JSON forms."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starwrs.protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from starwrs.protocol.header import (
    DEFAULT_MAX_FRAME_SIZE,
    HEADER,
    HEADER_SIZE,
    Header,
    Mechanism,
    check_prefix,
    header_from_dict,
    header_from_text,
    header_to_dict,
    header_to_text,
    make_header,
    pack_header,
    parse_header,
)

T = TypeVar("T")

#: the example of PROTOCOL.md section 2, as bytes
EXAMPLE = (
    b"\x01\x00\x00\x04"  # version 1, echo 0, mech SYNC, klen 4
    b"\x00\x00\x00\x57"  # length 87
    b"\x00\x00\x00\x01\x00\x00\x00\x01"  # serial 4294967297
    b"\x00\x00\x00\x00"  # status 0
    b"RM  "  # target
    b"9f2c"  # key
)
EXAMPLE_TEXT = (
    "HDR<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=87,SERIAL=4294967297,STATUS=0,TARGET=RM,KEY=9f2c>"
)


def fixed(
    version: int = 1,
    echo: int = 0,
    mech: int = 0,
    klen: int = 0,
    length: int = 24,
    serial: int = 0,
    status: int = 0,
    target: bytes = b"RM  ",
) -> bytes:
    return struct.pack(">BBBBIQI4s", version, echo, mech, klen, length, serial, status, target)


def test_layout_is_the_spec() -> None:
    assert HEADER.format == ">BBBBIQI4s"
    assert HEADER_SIZE == 24


def test_example_decodes() -> None:
    header = parse_header(EXAMPLE)
    assert header == Header(1, 0, Mechanism.SYNC, 87, 4294967297, 0, "RM", "9f2c")
    assert header.size == 28
    assert header.payload_length == 59
    assert pack_header(header) == EXAMPLE
    assert parse_header(memoryview(EXAMPLE)) == header
    assert parse_header(bytearray(EXAMPLE) + b"payload") == header


def test_example_text_form() -> None:
    header = parse_header(EXAMPLE)
    assert header_to_text(header) == EXAMPLE_TEXT
    assert header_from_text(EXAMPLE_TEXT) == header
    assert pack_header(header_from_text(EXAMPLE_TEXT)) == EXAMPLE


# -- byte-literal rejections, each with its exact code ---------------------------------

REJECTIONS = [
    pytest.param(b"", 7009, id="empty"),
    pytest.param(EXAMPLE[:23], 7009, id="23-bytes"),
    pytest.param(EXAMPLE[:27], 7009, id="key-cut-short"),
    pytest.param(fixed(version=2), 7001, id="version-2"),
    pytest.param(fixed(version=0), 7001, id="version-0"),
    pytest.param(fixed(version=2, mech=9), 7001, id="version-before-mech"),
    pytest.param(fixed(mech=4), 7008, id="mech-4"),
    pytest.param(fixed(mech=255), 7008, id="mech-255"),
    pytest.param(fixed(length=23), 7009, id="length-below-24"),
    pytest.param(fixed(klen=4, length=27) + b"9f2c", 7009, id="length-below-24+klen"),
    pytest.param(fixed(length=0), 7009, id="length-0"),
    pytest.param(fixed(length=DEFAULT_MAX_FRAME_SIZE + 1), 7005, id="over-16MiB"),
    pytest.param(fixed(length=0xFFFFFFFF), 7005, id="4GiB"),
    pytest.param(fixed(target=b"\x00\x00\x00\x00"), 7009, id="target-nul"),
    pytest.param(fixed(target=b" RM "), 7009, id="target-leading-space"),
    pytest.param(fixed(target=b"R M "), 7009, id="target-inner-space"),
    pytest.param(fixed(target=b"RM\xff "), 7009, id="target-non-ascii"),
    pytest.param(fixed(target=b"RM\n "), 7009, id="target-control"),
    pytest.param(fixed(klen=2, length=26) + b"\xc3\xa9", 7009, id="key-non-ascii"),
    pytest.param(fixed(klen=2, length=26) + b"a ", 7009, id="key-space"),
    pytest.param(fixed(klen=2, length=26) + b"a\x7f", 7009, id="key-del"),
]


@pytest.mark.parametrize(("data", "code"), REJECTIONS)
def test_parse_rejects_with_code(data: bytes, code: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_header(data)
    assert info.value.code == code


def test_max_frame_size_is_configurable() -> None:
    data = fixed(length=1000)
    assert parse_header(data, max_frame_size=1000).length == 1000
    with pytest.raises(RemoteProtocolError) as info:
        parse_header(data, max_frame_size=999)
    assert info.value.code == 7005


def test_check_prefix_sizes_a_frame_from_24_bytes() -> None:
    assert check_prefix(EXAMPLE[:24]) == (28, 87)
    with pytest.raises(RemoteProtocolError) as info:
        check_prefix(fixed(length=0xFFFFFFFF))
    assert info.value.code == 7005
    assert check_prefix(fixed(length=0xFFFFFFFF), 0xFFFFFFFF) == (24, 0xFFFFFFFF)
    with pytest.raises(RemoteProtocolError) as info:
        check_prefix(EXAMPLE[:10])
    assert info.value.code == 7009


def test_all_key_and_target_characters() -> None:
    key = bytes(range(0x21, 0x7F)).decode()
    for target in ("", "A", "INBX", "!~<,", "a=b\\"):
        header = make_header(Mechanism.BULK, target, key=key)
        assert parse_header(pack_header(header)) == header
        assert header_from_text(header_to_text(header)) == header


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"version": 2}, 7001),
        ({"mech": 4}, 7008),
        ({"mech": -1}, 7008),
        ({"mech": "SYNC"}, 7008),
        ({"length": 27}, 7009),
        ({"length": 2**32}, 7009),
        ({"echo": 256}, 7009),
        ({"serial": 2**64}, 7009),
        ({"serial": -1}, 7009),
        ({"status": 2**32}, 7009),
        ({"target": "TOOLONG"}, 7009),
        ({"target": "R M"}, 7009),
        ({"target": "é"}, 7009),
        ({"target": 42}, 7009),
        ({"key": "x" * 256}, 7009),
        ({"key": "a b"}, 7009),
        ({"key": "é"}, 7009),
        ({"key": None}, 7009),
        ({"length": "87"}, 7009),
    ],
)
def test_pack_rejects_with_code(change: dict[str, Any], code: int) -> None:
    header = parse_header(EXAMPLE)._replace(**change)
    with pytest.raises(LocalProtocolError) as info:
        pack_header(header)
    assert info.value.code == code


# -- round trips over every field's full range -----------------------------------------

visible = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


@st.composite
def headers(draw: st.DrawFn) -> Header:
    key = draw(st.text(visible, max_size=255))
    target = draw(st.text(visible, max_size=4))
    payload = draw(st.integers(0, 0xFFFFFFFF - HEADER_SIZE - len(key)))
    return make_header(
        draw(st.sampled_from(Mechanism)),
        target,
        key=key,
        payload_length=payload,
        serial=draw(st.integers(0, 2**64 - 1)),
        status=draw(st.integers(0, 2**32 - 1)),
        echo=draw(st.integers(0, 255)),
    )


@given(headers())
def test_binary_round_trip(header: Header) -> None:
    data = pack_header(header)
    assert len(data) == header.size
    assert parse_header(data, max_frame_size=0xFFFFFFFF) == header
    assert parse_header(memoryview(data), max_frame_size=0xFFFFFFFF) == header


@given(headers())
def test_binary_text_binary_is_identity(header: Header) -> None:
    data = pack_header(header)
    text = header_to_text(parse_header(data, 0xFFFFFFFF))
    assert pack_header(header_from_text(text, None)) == data


@given(headers())
def test_json_round_trip(header: Header) -> None:
    assert header_from_dict(header_to_dict(header), None) == header


def outcome(fn: Callable[[T], Header], arg: T) -> Header | ProtocolError:
    """The function's result, or the ProtocolError it raised (anything else escapes)."""
    try:
        return fn(arg)
    except ProtocolError as err:
        return err


@given(st.binary(max_size=64))
def test_random_bytes_parse_or_raise_protocol_error(data: bytes) -> None:
    result = outcome(parse_header, data)
    if isinstance(result, ProtocolError):
        assert result.code in (7001, 7005, 7008, 7009)
    else:
        assert pack_header(result) == data[: result.size]


@given(st.text(max_size=120))
def test_random_text_parses_or_raises_protocol_error(text: str) -> None:
    result = outcome(header_from_text, text)
    if isinstance(result, ProtocolError):
        assert result.code in (7001, 7005, 7008, 7009)


# -- text and JSON forms: rejections ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("HDR<VERSION=1", 7009),
        ("", 7009),
        ("GRTL<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=24,SERIAL=0,STATUS=0,TARGET=RM,KEY=>", 7009),
        ("HDR<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=24,SERIAL=0,STATUS=0,TARGET=RM>", 7009),
        ("HDR<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=24,SERIAL=0,STATUS=0,TARGET=RM,KEY=,X=1>", 7009),
        (
            "HDR<VERSION=1,VERSION=1,ECHO=0,MECH=SYNC,LENGTH=24,SERIAL=0,STATUS=0,TARGET=RM,KEY=>",
            7009,
        ),
        ("HDR<VERSION=2,ECHO=0,MECH=SYNC,LENGTH=24,SERIAL=0,STATUS=0,TARGET=RM,KEY=>", 7001),
        ("HDR<VERSION=1,ECHO=0,MECH=FAST,LENGTH=24,SERIAL=0,STATUS=0,TARGET=RM,KEY=>", 7008),
        ("HDR<VERSION=1,ECHO=0,MECH=7,LENGTH=24,SERIAL=0,STATUS=0,TARGET=RM,KEY=>", 7008),
        ("HDR<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=-4,SERIAL=0,STATUS=0,TARGET=RM,KEY=>", 7009),
        ("HDR<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=2_4,SERIAL=0,STATUS=0,TARGET=RM,KEY=>", 7009),
        ("HDR<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=23,SERIAL=0,STATUS=0,TARGET=RM,KEY=>", 7009),
        ("HDR<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=99999999,SERIAL=0,STATUS=0,TARGET=RM,KEY=>", 7005),
        ("HDR<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=24,SERIAL=0,STATUS=0,TARGET=<A>,KEY=>", 7009),
        ("HDR<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=24,SERIAL=0,STATUS=0,TARGET=RMRMR,KEY=>", 7009),
    ],
)
def test_text_rejects_with_code(text: str, code: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        header_from_text(text)
    assert info.value.code == code


def test_text_accepts_any_member_order_and_mech_numbers() -> None:
    text = "HDR<KEY=9f2c,TARGET=RM,STATUS=0,SERIAL=4294967297,LENGTH=87,MECH=0,ECHO=0,VERSION=1>"
    assert pack_header(header_from_text(text)) == EXAMPLE


def test_dict_defaults_and_rejections() -> None:
    header = header_from_dict({"mech": "BULK", "target": "INBX"})
    assert header == make_header(Mechanism.BULK, "INBX")
    assert header_from_dict({"mech": 3, "target": "INBX", "key": "ab"}).length == 26
    for bad, code in [
        ([], 7009),
        ({"target": "RM"}, 7009),
        ({"mech": "SYNC"}, 7009),
        ({"mech": "SYNC", "target": "RM", "klen": 0}, 7009),
        ({"mech": True, "target": "RM"}, 7008),
        ({"mech": "SYNC", "target": "RM", "serial": True}, 7009),
        ({"mech": "SYNC", "target": "RM", "serial": 1.5}, 7009),
        ({"mech": "SYNC", "target": "RM", "version": 3}, 7001),
    ]:
        with pytest.raises(RemoteProtocolError) as info:
            header_from_dict(bad)
        assert info.value.code == code, bad
