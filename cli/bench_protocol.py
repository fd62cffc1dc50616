"""``starwrs bench header`` and ``starwrs bench frames``: the protocol core's speed.

Theory of operation
-------------------
Each result is measured against a baseline *in the same run* (see
:mod:`starwrs.cli.benchkit`):

* **header** -- :func:`~starwrs.protocol.header.pack_header` followed by
  :func:`~starwrs.protocol.header.parse_header` (every check of PROTOCOL.md section
  2, a 32-character session key, a ``NamedTuple`` with text fields) against bare
  ``struct.pack`` + ``struct.unpack`` of the same 24 bytes (module functions, as
  the issue names them), plus one row against a precompiled ``Struct`` (stricter)
  and one for the floor: a ``NamedTuple`` wrapped around bare struct with no
  checks at all, i.e. the best any Python-level codec of this shape can do.
* **frames** -- MB/s of 1 MiB bulk data frames (mech 3, msgpack ``data`` of
  1 MiB) through :class:`~starwrs.protocol.frames.FrameReader`, fed in 64 KiB
  chunks as a socket delivers them, against a plain copy loop that moves the same
  chunks once through a ``memoryview`` into a reused 1 MiB ring buffer (the
  fastest plain copy loop we found: faster than copying into one big buffer).  Two more rows:
  the whole stream in one chunk, and the full client
  :class:`~starwrs.protocol.connection.Connection` (frames decoded into
  ``BulkData`` events, transfer checks included).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import NamedTuple

from starwrs.cli.benchkit import Result, compare, rate
from starwrs.protocol._state import Role
from starwrs.protocol.connection import Connection
from starwrs.protocol.events import NEED_DATA, BulkData, BulkGet, Frame
from starwrs.protocol.frames import FrameReader
from starwrs.protocol.header import HEADER, Mechanism, make_header, pack_header, parse_header

__all__ = ["run_frames", "run_header"]

_MIB = 1024 * 1024


class _RawHeader(NamedTuple):
    version: int
    echo: int
    mech: int
    klen: int
    length: int
    serial: int
    status: int
    target: bytes


def _floor_pack(header: _RawHeader) -> bytes:
    return HEADER.pack(*header)


def _floor_parse(data: bytes) -> _RawHeader:
    return tuple.__new__(_RawHeader, HEADER.unpack(data))


_CHUNK = 64 * 1024


def run_header(quick: bool) -> list[Result]:
    """Header encode + decode per second against bare struct, same run."""
    seconds = 0.25 if quick else 1.5
    key = "9f2c" * 8
    header = make_header(Mechanism.SYNC, "RM", key=key, payload_length=31, serial=4294967297)
    bare = make_header(Mechanism.SYNC, "RM", payload_length=31, serial=4294967297)
    assert parse_header(pack_header(header)) == header

    def ours() -> object:
        return parse_header(pack_header(header))

    def ours_no_key() -> object:
        return parse_header(pack_header(bare))

    fmt = HEADER.format
    s_pack, s_unpack = struct.pack, struct.unpack
    h_pack, h_unpack = HEADER.pack, HEADER.unpack

    def module_struct() -> object:
        return s_unpack(fmt, s_pack(fmt, 1, 0, 0, 32, 87, 4294967297, 0, b"RM  "))

    def compiled_struct() -> object:
        return h_unpack(h_pack(1, 0, 0, 32, 87, 4294967297, 0, b"RM  "))

    # The floor of any codec with a pack and a parse function: no checks at all.
    raw = _RawHeader._make(HEADER.unpack(HEADER.pack(1, 0, 0, 32, 87, 4294967297, 0, b"RM  ")))

    def floor() -> object:
        return _floor_parse(_floor_pack(raw))

    ours_rate = rate(ours, seconds=seconds, batch=1000)
    no_key_rate = rate(ours_no_key, seconds=seconds, batch=1000)
    module_rate = rate(module_struct, seconds=seconds, batch=1000)
    compiled_rate = rate(compiled_struct, seconds=seconds, batch=1000)
    floor_rate = rate(floor, seconds=seconds, batch=1000)
    ops, name = "ops/s", "header.pack+parse"
    return [
        compare(f"{name} (32-char key)", ours_rate, ops, "struct.pack+unpack", module_rate),
        compare(f"{name} (no key)", no_key_rate, ops, "struct.pack+unpack", module_rate),
        compare(f"{name} (32-char key)", ours_rate, ops, "Struct.pack+unpack", compiled_rate),
        compare(
            "NamedTuple(struct), no checks", floor_rate, ops, "struct.pack+unpack", module_rate
        ),
    ]


def _bulk_stream(frames: int) -> tuple[bytes, list[bytes]]:
    """A server's answer to a get: *frames* data frames of 1 MiB, and its 64 KiB chunks."""
    server = Connection(Role.SERVER)
    client = Connection(Role.CLIENT)
    server.receive_data(client.send(BulkGet("F<INBOXID=42>", 0, "INBX")))
    server.next_event()
    data = os.urandom(_MIB)
    total = frames * _MIB
    parts = []
    for i in range(frames):
        last = i == frames - 1
        event = BulkData(1, i * _MIB, total, data, last, "0" * 64 if last else None)
        parts.append(server.send(event))
    stream = b"".join(parts)
    chunks = [stream[i : i + _CHUNK] for i in range(0, len(stream), _CHUNK)]
    return stream, chunks


def _mbps(fn: Callable[[], object], size: int, seconds: float) -> float:
    return rate(fn, seconds=seconds, batch=1) * size / 1e6


def run_frames(quick: bool) -> list[Result]:
    """MB/s through the frame reader against a plain copy loop, same run."""
    seconds = 0.25 if quick else 1.5
    count = 8 if quick else 16
    stream, chunks = _bulk_stream(count)
    size = len(stream)
    ring = bytearray(_MIB)  # reused, cache-warm: the fastest plain copy we found

    def copy_loop() -> object:
        view = memoryview(ring)
        pos = 0
        for chunk in chunks:
            n = len(chunk)
            if pos + n > _MIB:
                k = _MIB - pos
                view[pos:] = chunk[:k]
                view[: n - k] = chunk[k:]
                pos = n - k
            else:
                view[pos : pos + n] = chunk
                pos += n
        return pos

    def read_frames(pieces: list[bytes]) -> Callable[[], object]:
        def run() -> object:
            reader = FrameReader()
            frames = 0
            for chunk in pieces:
                reader.receive_data(chunk)
                while isinstance(reader.next_event(), Frame):
                    frames += 1
            assert frames == count
            return frames

        return run

    def read_bulk() -> object:
        client = Connection(Role.CLIENT)
        client.send(BulkGet("F<INBOXID=42>", 0, "INBX"))
        got = 0
        for chunk in chunks:
            client.receive_data(chunk)
            while (event := client.next_event()) is not NEED_DATA:
                assert isinstance(event, BulkData)
                got += len(event.data)
        assert got == count * _MIB
        return got

    baseline = _mbps(copy_loop, size, seconds)
    chunked = _mbps(read_frames(chunks), size, seconds)
    whole = _mbps(read_frames([stream]), size, seconds)
    bulk = _mbps(read_bulk, size, seconds)
    copy_name = "memoryview copy loop"
    return [
        compare("frames.read (1 MiB frames, 64 KiB chunks)", chunked, "MB/s", copy_name, baseline),
        compare("frames.read (1 MiB frames, one chunk)", whole, "MB/s", copy_name, baseline),
        compare("connection.bulk_get (BulkData events)", bulk, "MB/s", copy_name, baseline),
    ]
