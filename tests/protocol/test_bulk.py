"""protocol/bulk.py: data frames, resumable downloads, checked uploads -- at 1 MiB too."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starwrs.protocol.bulk import Download, PutReceiver, data_frames, put_request, sha256_hex
from starwrs.protocol.control import MAX_DATA
from starwrs.protocol.errors import LocalProtocolError, RemoteProtocolError
from starwrs.protocol.events import BulkData, BulkGet

from .helpers import ConnectionPair, chunks_of

DATA = b"abcdefghij"


def test_data_frames() -> None:
    frames = list(data_frames(7, DATA, offset=2, chunk_size=3))
    assert [bytes(f.data) for f in frames] == [b"cde", b"fgh", b"ij"]
    assert [f.offset for f in frames] == [2, 5, 8]
    assert [f.done for f in frames] == [False, False, True]
    assert frames[-1].sha256 == sha256_hex(DATA)
    assert {f.total for f in frames} == {10}
    assert {f.transfer for f in frames} == {7}
    (only,) = data_frames(7, b"")
    assert only == BulkData(7, 0, 0, b"", True, sha256_hex(b""))
    with pytest.raises(RemoteProtocolError) as info:
        list(data_frames(7, DATA, offset=11))
    assert info.value.code == 7009
    with pytest.raises(LocalProtocolError):
        list(data_frames(7, DATA, chunk_size=0))
    with pytest.raises(LocalProtocolError):
        list(data_frames(7, DATA, chunk_size=MAX_DATA + 1))


def test_download_checks_order_and_checksum() -> None:
    download = Download("F<A=1>", b"abc")
    assert download.request() == BulkGet("F<A=1>", 3)
    with pytest.raises(RemoteProtocolError) as info:
        download.feed(BulkData(1, 4, 10, b"e"))
    assert info.value.code == 7009
    download.feed(BulkData(1, 3, 10, b"defg"))
    with pytest.raises(RemoteProtocolError) as info:
        download.feed(BulkData(1, 7, 11, b"hij"))
    assert info.value.code == 7009
    with pytest.raises(RemoteProtocolError) as info:
        download.feed(BulkData(1, 7, 10, b"hiJ", True, sha256_hex(DATA)))
    assert info.value.code == 7011
    assert download.done
    with pytest.raises(RemoteProtocolError):
        download.feed(BulkData(1, 10, 10, b"", True, sha256_hex(DATA)))


def test_download_resume_with_a_hasher() -> None:
    hasher = hashlib.sha256(DATA[:6])
    download = Download.resume("F<A=1>", 6, hasher, target="INBX", key="k")
    assert download.request() == BulkGet("F<A=1>", 6, "INBX", "k")
    assert download.feed(BulkData(1, 6, 10, b"ghij", True, sha256_hex(DATA))) == b"ghij"
    assert download.done


def test_put_receiver() -> None:
    put = put_request("F<A=1>", DATA)
    assert (put.size, put.sha256) == (10, sha256_hex(DATA))
    receiver = PutReceiver(put)
    assert receiver.feed(BulkData(1, 0, 10, b"abcde")) == b"abcde"
    with pytest.raises(RemoteProtocolError) as info:
        receiver.feed(BulkData(1, 6, 10, b"ghij", True, put.sha256))
    assert info.value.code == 7009
    receiver.feed(BulkData(1, 5, 10, b"fghij", True, put.sha256))
    assert receiver.complete

    receiver = PutReceiver(put)
    with pytest.raises(RemoteProtocolError) as info:
        receiver.feed(BulkData(1, 0, 11, DATA + b"!", True, put.sha256))
    assert info.value.code == 7011

    receiver = PutReceiver(put)
    with pytest.raises(RemoteProtocolError) as info:
        receiver.feed(BulkData(1, 0, 10, DATA.upper(), True, put.sha256))
    assert info.value.code == 7011


BIG = random.Random(42).randbytes(2 * MAX_DATA + 12345)
BIG_SHA = sha256_hex(BIG)


def socket_chunks(data: bytes) -> list[bytes]:
    return list(chunks_of(data, 64 * 1024))


@settings(max_examples=4, deadline=None)
@given(st.integers(1, len(BIG) - 1))
def test_one_mib_frames_interrupted_and_resumed(stop_at: int) -> None:
    """A 2 MiB+ resource in 1 MiB frames over 64 KiB reads; the link drops mid-way."""
    held = bytearray()
    download = Download("F<INBOXID=9>")
    pair = ConnectionPair(socket_chunks)
    pair.client_send(download.request())
    for frame in data_frames(1, BIG):
        assert len(frame.data) <= MAX_DATA
        if frame.offset >= stop_at:
            break
        for event in pair.server_send(frame):
            assert isinstance(event, BulkData)
            held += download.feed(event)
    pair.close()
    resume = Download("F<INBOXID=9>", bytes(held))
    pair = ConnectionPair(socket_chunks)
    (request,) = pair.client_send(resume.request())
    assert isinstance(request, BulkGet)
    for frame in data_frames(2, BIG, offset=request.offset, sha256=BIG_SHA):
        for event in pair.server_send(frame):
            assert isinstance(event, BulkData)
            held += resume.feed(event)
    assert resume.done
    assert bytes(held) == BIG
