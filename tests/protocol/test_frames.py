"""protocol/frames.py: the frame reader and writer, and the receive buffer."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starwrs.protocol.errors import LocalProtocolError, RemoteProtocolError
from starwrs.protocol.events import NEED_DATA, ConnectionClosed, Frame
from starwrs.protocol.frames import (
    FrameReader,
    FrameWriter,
    ReceiveBuffer,
    decode_frame,
    encode_frame,
)
from starwrs.protocol.header import HEADER, Mechanism, make_header

from .helpers import byte_by_byte, feed, one_chunk, split_at

visible = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    payload = draw(st.binary(max_size=300))
    return Frame.build(
        draw(st.sampled_from(Mechanism)),
        draw(st.text(visible, max_size=4)),
        payload,
        key=draw(st.text(visible, max_size=40)),
        serial=draw(st.integers(0, 2**64 - 1)),
        status=draw(st.integers(0, 2**32 - 1)),
        echo=draw(st.integers(0, 255)),
    )


def stream_of(items: list[Frame]) -> bytes:
    writer = FrameWriter()
    return b"".join(writer.send(f) for f in items)


@given(st.lists(frames(), max_size=6), st.lists(st.integers(0, 4000), max_size=30))
def test_any_chunking_gives_the_same_events(items: list[Frame], cuts: list[int]) -> None:
    data = stream_of(items)
    expected = [*items, ConnectionClosed()]
    assert feed(FrameReader(), one_chunk(data)) == expected
    assert feed(FrameReader(), byte_by_byte(data)) == expected
    assert feed(FrameReader(), split_at(data, cuts)) == expected


@given(st.lists(frames(), min_size=1, max_size=4), st.data())
def test_truncated_stream_ends_in_7009_or_a_clean_close(
    items: list[Frame], data: st.DataObject
) -> None:
    stream = stream_of(items)
    cut = data.draw(st.integers(0, len(stream) - 1))
    events = feed(FrameReader(), split_at(stream[:cut], data.draw(st.lists(st.integers(0, cut)))))
    boundaries = {0}
    for frame in items:
        boundaries.add(max(boundaries) + frame.header.length)
    if cut in boundaries:
        assert events[-1] == ConnectionClosed()
    else:
        assert events[-1] == ("error", 7009)
    assert all(isinstance(e, Frame) for e in events[:-1])


@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=10))
def test_random_bytes_end_only_in_protocol_errors(data: bytes, cuts: list[int]) -> None:
    events = feed(FrameReader(), split_at(data, cuts))
    last = events[-1]
    assert last == ConnectionClosed() or (
        isinstance(last, tuple) and last[1] in (7001, 7005, 7008, 7009)
    )
    # the same bytes in one chunk reach the same end
    assert feed(FrameReader(), one_chunk(data)) == events


def four_gib_header() -> bytes:
    return HEADER.pack(1, 0, 3, 0, 0xFFFFFFFF, 0, 0, b"INBX")


def test_4gib_frame_is_rejected_from_the_header_alone() -> None:
    reader = FrameReader()
    tracemalloc.start()
    try:
        reader.receive_data(four_gib_header())
        with pytest.raises(RemoteProtocolError) as info:
            reader.next_event()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.code == 7005
    assert reader.buffered == 24
    assert peak < 64 * 1024


def test_4gib_frame_allowed_by_config_still_allocates_nothing_up_front() -> None:
    reader = FrameReader(max_frame_size=0xFFFFFFFF)
    tracemalloc.start()
    try:
        reader.receive_data(four_gib_header())
        assert reader.next_event() is NEED_DATA
        reader.receive_data(b"x" * 1000)
        assert reader.next_event() is NEED_DATA
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
    reader.receive_data(b"")
    with pytest.raises(RemoteProtocolError) as info:
        reader.next_event()
    assert info.value.code == 7009


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (HEADER.pack(2, 0, 0, 0, 24, 0, 0, b"RM  "), 7001),
        (HEADER.pack(1, 0, 4, 0, 24, 0, 0, b"RM  "), 7008),
        (HEADER.pack(1, 0, 0, 8, 31, 0, 0, b"RM  "), 7009),
        (HEADER.pack(1, 0, 0, 0, 17 * 1024 * 1024, 0, 0, b"RM  "), 7005),
        (HEADER.pack(1, 0, 0, 2, 26, 0, 0, b"RM  ") + b"\x00\x00", 7009),
        (HEADER.pack(1, 0, 0, 0, 24, 0, 0, b"\x00RM "), 7009),
    ],
)
def test_reader_rejects_with_code_and_stays_failed(data: bytes, code: int) -> None:
    reader = FrameReader()
    reader.receive_data(data)
    for _ in range(2):
        with pytest.raises(RemoteProtocolError) as info:
            reader.next_event()
        assert info.value.code == code


def test_close_at_a_boundary_and_data_after_close() -> None:
    reader = FrameReader()
    frame = Frame.build(0, "RM", b"hello")
    reader.receive_data(FrameWriter().send(frame))
    assert reader.next_event() == frame
    assert reader.next_event() is NEED_DATA
    reader.receive_data(b"")
    assert reader.eof
    assert reader.next_event() == ConnectionClosed()
    assert reader.next_event() == ConnectionClosed()
    with pytest.raises(RuntimeError):
        reader.receive_data(b"more")


def test_empty_payload_and_key_frame() -> None:
    frame = Frame.build(Mechanism.POLL, "")
    assert frame.header.length == 24
    assert feed(FrameReader(), one_chunk(FrameWriter().send(frame))) == [frame, ConnectionClosed()]


def test_writer_checks() -> None:
    writer = FrameWriter(max_frame_size=100)
    good = Frame.build(0, "RM", b"x" * 76)
    assert len(writer.send(good)) == 100
    with pytest.raises(LocalProtocolError) as info:
        writer.send(Frame.build(0, "RM", b"x" * 77))
    assert info.value.code == 7005
    with pytest.raises(LocalProtocolError) as info:
        writer.send(Frame(make_header(0, "RM", payload_length=3), b"ab"))
    assert info.value.code == 7009
    with pytest.raises(LocalProtocolError) as info:
        writer.send(Frame.build(5, "RM"))
    assert info.value.code == 7008
    assert writer.send(ConnectionClosed()) == b""
    with pytest.raises(LocalProtocolError):
        writer.send(good)


def test_encode_frame_in_parts() -> None:
    header = make_header(3, "INBX", key="k", payload_length=6)
    assert encode_frame(header, [b"ab", bytearray(b"cd"), memoryview(b"ef")]).endswith(b"kabcdef")


def test_large_chunks_are_not_copied_into_the_buffer() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    frame = Frame.build(3, "INBX", payload)
    data = FrameWriter().send(frame)
    body = data[24:]
    reader = FrameReader()
    reader.receive_data(data[:24])
    reader.receive_data(body)
    event = reader.next_event()
    assert isinstance(event, Frame)
    assert event.payload is body  # handed over, not copied


# -- the receive buffer against a bytes model --------------------------------------------

ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(max_size=9000)),
        st.tuples(st.just("take"), st.integers(0, 20000)),
        st.tuples(st.just("peek"), st.integers(0, 20000)),
    ),
    max_size=40,
)


@given(ops)
def test_receive_buffer_behaves_like_bytes(operations: list[tuple[str, object]]) -> None:
    buffer = ReceiveBuffer()
    model = b""
    for op, arg in operations:
        if op == "append":
            assert isinstance(arg, bytes)
            buffer.append(arg if len(arg) % 2 else bytearray(arg))
            model += arg
        else:
            assert isinstance(arg, int)
            n = min(arg, len(model))
            if op == "take":
                assert buffer.take(n) == model[:n]
                model = model[n:]
            else:
                assert buffer.peek(n) == model[:n]
        assert len(buffer) == len(model)


def test_decode_frame_takes_exactly_one_frame() -> None:
    frame = Frame.build(0, "RM", b"GRTL<PRODUCT=V>", key="")
    data = FrameWriter().send(frame)
    assert decode_frame(data) == frame
    assert decode_frame(memoryview(data)) == frame
    for bad in (data[:-1], data + b"x", data + data, b""):
        with pytest.raises(RemoteProtocolError) as info:
            decode_frame(bad)
        assert info.value.code == 7009


def test_package_doctest() -> None:
    import doctest

    import starwrs.protocol

    result = doctest.testmod(starwrs.protocol)
    assert result.attempted > 0
    assert result.failed == 0
