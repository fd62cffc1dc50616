"""protocol/connection.py: the transport mechanisms end to end, in memory."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starwrs.protocol.bulk import Download, PutReceiver, data_frames, put_request, sha256_hex
from starwrs.protocol.connection import Connection, Role, State
from starwrs.protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from starwrs.protocol.events import (
    NEED_DATA,
    BulkCancel,
    BulkData,
    BulkGet,
    ConnectionClosed,
    Echo,
    EchoReply,
    Frame,
    Pending,
    Poll,
    Request,
    Response,
    Submit,
    Ticket,
)
from starwrs.protocol.frames import FrameReader
from starwrs.protocol.header import HEADER, Mechanism, make_header

from .helpers import ConnectionPair, byte_by_byte, drain, feed, one_chunk, raw_frame, split_at


def frames_of(data: bytes) -> list[Frame]:
    events = feed(FrameReader(), [data], eof=False)
    assert all(isinstance(e, Frame) for e in events)
    return events  # type: ignore[return-value]


def test_sync_transactions_one_after_another() -> None:
    pair = ConnectionPair()
    for i in range(3):
        got = pair.client_send(Request("RM", b"GRTL<PRODUCT=V>", key="sess", serial=0))
        assert got == [Request("RM", b"GRTL<PRODUCT=V>", "sess", 0)]
        assert pair.server.state is State.SEND_RESPONSE
        assert pair.server_send(Response(0, f"GRTL<ERROR=0,N={i}>".encode(), serial=77)) == [
            Response(0, f"GRTL<ERROR=0,N={i}>".encode(), 77)
        ]
        assert pair.client.state is pair.server.state is State.IDLE
    pair.close()
    assert pair.client.state is pair.server.state is State.CLOSED


def test_answers_copy_the_request_header() -> None:
    pair = ConnectionPair()
    pair.client_send(Request("DSS", b"X<A=1>", key="secret", serial=4294967297))
    pair.server_send(Response(6104, b"X<ERROR=6104>"))
    request, answer = (frames_of(data)[0].header for data in pair.wire)
    assert answer.mech is Mechanism.SYNC
    assert answer.target == "DSS"
    assert answer.key == ""  # the session key never travels back
    assert answer.serial == 4294967297  # 0 in the event: the request's serial
    assert answer.status == 6104
    assert request.status == 0


def test_pipelining_is_refused_on_both_sides() -> None:
    client = Connection(Role.CLIENT)
    client.send(Request("RM"))
    with pytest.raises(LocalProtocolError) as info:
        client.send(Request("RM"))
    assert info.value.code == 7009
    assert client.state is State.ERROR

    server = Connection(Role.SERVER)
    server.receive_data(raw_frame(Request("RM")) * 2)
    assert isinstance(server.next_event(), Request)
    with pytest.raises(RemoteProtocolError) as rinfo:
        server.next_event()
    assert rinfo.value.code == 7009
    # a server may still answer the violation once, then must close
    reply = server.send(Response(7009))
    assert frames_of(reply)[0].header.status == 7009
    assert server.state is State.MUST_CLOSE


def test_echo_repeats_the_header() -> None:
    pair = ConnectionPair()
    assert pair.client_send(Echo("INBX", "k1", Mechanism.BULK, 5)) == [
        Echo("INBX", "k1", Mechanism.BULK, 5)
    ]
    assert pair.server_send(EchoReply()) == [EchoReply()]
    echo, reply = (frames_of(d)[0].header for d in pair.wire)
    assert reply == echo
    assert pair.client.state is State.IDLE


def test_echo_reply_must_match() -> None:
    client = Connection(Role.CLIENT)
    client.send(Echo("INBX", "k1"))
    client.receive_data(raw_frame(EchoReply(), make_header(0, "RM", key="k1", echo=1)))
    with pytest.raises(RemoteProtocolError) as info:
        client.next_event()
    assert info.value.code == 7009


def test_async_submit_then_poll_on_new_connections() -> None:
    submit = ConnectionPair()
    assert submit.client_send(Submit("RS", b"ARD<A=1>", "sess")) == [
        Submit("RS", b"ARD<A=1>", "sess", 0)
    ]
    assert submit.server_send(Ticket("tk-1")) == [Ticket("tk-1")]
    assert submit.client.state is submit.server.state is State.MUST_CLOSE
    with pytest.raises(LocalProtocolError):  # one exchange per async connection
        submit.client.send(Request("RS"))
    submit = ConnectionPair()
    submit.client_send(Submit("RS", b"ARD<A=1>", "sess"))
    submit.server_send(Ticket("tk-1"))
    submit.close()

    poll = ConnectionPair()
    assert poll.client_send(Poll("tk-1", "RS", "sess")) == [Poll("tk-1", "RS", "sess", 0)]
    assert poll.server_send(Pending()) == [Pending()]
    assert poll.client.state is State.MUST_CLOSE
    assert poll.server_send(ConnectionClosed()) == [ConnectionClosed()]
    assert poll.client.state is State.CLOSED

    for answer in (Response(0, b"ARD<ERROR=0>"), Response(7010), Response(6101, b"x")):
        poll = ConnectionPair()
        poll.client_send(Poll("tk-1", "RS", "sess"))
        assert poll.server_send(answer) == [answer]


def test_pending_only_answers_a_poll_and_has_no_payload() -> None:
    client = Connection(Role.CLIENT)
    client.send(Request("RM"))
    client.receive_data(raw_frame(Pending(), make_header(2, "RM")))
    with pytest.raises(RemoteProtocolError):
        client.next_event()
    client = Connection(Role.CLIENT)
    client.send(Poll("t", "RM"))
    client.receive_data(HEADER.pack(1, 0, 2, 0, 25, 0, 1, b"RM  ") + b"!")
    with pytest.raises(RemoteProtocolError):
        client.next_event()


def test_status_1_is_not_a_response() -> None:
    server = Connection(Role.SERVER)
    server.receive_data(raw_frame(Request("RM")))
    server.next_event()
    with pytest.raises(LocalProtocolError):
        server.send(Response(1))


def test_peer_closing_before_the_answer_is_7009() -> None:
    pair = ConnectionPair()
    pair.client_send(Request("RM"))
    pair.server.send(ConnectionClosed())
    pair.client.receive_data(b"")
    with pytest.raises(RemoteProtocolError) as info:
        pair.client.next_event()
    assert info.value.code == 7009


def test_client_closing_is_fine_for_the_server() -> None:
    pair = ConnectionPair()
    pair.client_send(Request("RM"))
    assert pair.client_send(ConnectionClosed()) == [ConnectionClosed()]
    assert pair.server.state is State.CLOSED


def test_frame_level_errors_are_answered_once_with_their_code() -> None:
    for data, code in [
        (HEADER.pack(2, 0, 0, 0, 24, 0, 0, b"RM  "), 7001),
        (HEADER.pack(1, 0, 9, 0, 24, 0, 0, b"RM  "), 7008),
        (HEADER.pack(1, 0, 0, 0, 1 << 30, 0, 0, b"RM  "), 7005),
        (HEADER.pack(1, 0, 3, 0, 26, 5, 0, b"RM  ") + b"\x80\x01", 7009),
    ]:
        server = Connection(Role.SERVER)
        server.receive_data(data)
        with pytest.raises(RemoteProtocolError) as info:
            server.next_event()
        assert info.value.code == code
        assert server.state is State.ERROR
        answer = frames_of(server.send(Response(info.value.code)))[0].header
        assert answer.status == code
        assert server.state is State.MUST_CLOSE
        with pytest.raises(LocalProtocolError):
            server.send(Response(info.value.code))


# -- bulk ----------------------------------------------------------------------------------

RESOURCE = bytes(range(256)) * 40 + b"tail"  # 10 244 bytes
SHA = sha256_hex(RESOURCE)


def serve_get(pair: ConnectionPair, request: BulkGet, chunk: int = 1000) -> list[BulkData]:
    frames = list(data_frames(3, RESOURCE, offset=request.offset, chunk_size=chunk))
    return [e for e in pair.server_send(*frames) if isinstance(e, BulkData)]


def test_bulk_get_whole_and_resumed() -> None:
    download = Download("F<INBOXID=42>", target="INBX", key="sess")
    pair = ConnectionPair()
    assert pair.client_send(download.request()) == [BulkGet("F<INBOXID=42>", 0, "INBX", "sess", 0)]
    held = bytearray()
    for event in serve_get(pair, download.request())[:4]:
        held += download.feed(event)
    assert not download.done
    pair.close()  # interrupted after 4 frames

    resume = Download("F<INBOXID=42>", bytes(held), target="INBX", key="sess")
    assert resume.request().offset == 4000
    pair = ConnectionPair()
    got = pair.client_send(resume.request())
    assert got == [BulkGet("F<INBOXID=42>", 4000, "INBX", "sess", 0)]
    for event in serve_get(pair, got[0]):  # type: ignore[arg-type]
        held += resume.feed(event)
    assert resume.done
    assert bytes(held) == RESOURCE
    assert pair.client.state is State.IDLE
    assert pair.server.state is State.GET_DONE
    pair.close()


def test_bulk_get_of_a_fully_held_resource_is_one_empty_last_frame() -> None:
    pair = ConnectionPair()
    pair.client_send(BulkGet("F<A=1>", len(RESOURCE)))
    (last,) = serve_get(pair, BulkGet("F<A=1>", len(RESOURCE)))
    assert last.done
    assert not last.data
    assert last.sha256 == SHA


def test_bulk_frames_must_continue_the_transfer() -> None:
    bad_sequences = [
        [BulkData(3, 1, 10, b"a")],  # does not start at the requested offset
        [BulkData(3, 0, 10, b"a"), BulkData(4, 1, 10, b"b")],  # another transfer
        [BulkData(3, 0, 10, b"a"), BulkData(3, 2, 10, b"b")],  # a gap
        [BulkData(3, 0, 10, b"ab"), BulkData(3, 1, 10, b"b")],  # an overlap
        [BulkData(3, 0, 10, b"a"), BulkData(3, 1, 11, b"b")],  # total changed
    ]
    for sequence in bad_sequences:
        client = Connection(Role.CLIENT)
        client.send(BulkGet("F<A=1>", 0))
        server = Connection(Role.SERVER)
        server.receive_data(raw_frame(BulkGet("F<A=1>", 0)))
        server.next_event()
        for event in sequence[:-1]:
            server.send(event)
        with pytest.raises(LocalProtocolError):
            server.send(sequence[-1])
        client.receive_data(b"".join(raw_frame(e, client.request) for e in sequence))
        with pytest.raises(RemoteProtocolError) as info:
            drain(client)
        assert info.value.code == 7009


def test_bulk_cancel_drops_frames_in_flight() -> None:
    pair = ConnectionPair()
    pair.client_send(BulkGet("F<A=1>"))
    frames = list(data_frames(8, RESOURCE, chunk_size=2000))
    # the server has sent three frames; the client saw only the first
    sent = [pair.server.send(f) for f in frames[:3]]
    pair.client.receive_data(sent[0])
    assert drain(pair.client) == [frames[0]]
    with pytest.raises(LocalProtocolError):
        pair.client.send(BulkCancel(99))  # not this transfer
    pair = ConnectionPair()
    pair.client_send(BulkGet("F<A=1>"))
    sent = [pair.server.send(f) for f in frames[:3]]
    pair.client.receive_data(sent[0])
    drain(pair.client)
    cancel = pair.client.send(BulkCancel(8))
    assert pair.client.state is State.CANCELLED
    pair.client.receive_data(sent[1] + sent[2])
    assert len(drain(pair.client)) == 2  # delivered, to be dropped
    pair.server.receive_data(cancel)
    assert drain(pair.server) == [BulkCancel(8)]
    assert pair.server.state is State.MUST_CLOSE
    with pytest.raises(LocalProtocolError):
        pair.server.send(frames[3])
    pair.close()


def test_cancel_crossing_the_last_frame_is_harmless() -> None:
    pair = ConnectionPair()
    pair.client_send(BulkGet("F<A=1>"))
    frames = list(data_frames(8, RESOURCE, chunk_size=6000))
    pair.client.receive_data(pair.server.send(frames[0]))
    drain(pair.client)
    last = pair.server.send(frames[1])
    assert pair.server.state is State.GET_DONE
    assert pair.client_send(BulkCancel(8)) == [BulkCancel(8)]
    assert pair.server.state is State.DRAINING
    pair.client.receive_data(last)
    drain(pair.client)
    assert pair.client.state is State.CANCELLED
    pair.close()


def test_a_whole_get_leaves_the_connection_reusable() -> None:
    """The viewer's .mtd then data: two gets and a request on one connection."""
    pair = ConnectionPair()
    for transfer in (3, 4):
        pair.client_send(BulkGet("F<INBOXID=42>"))
        for frame in data_frames(transfer, RESOURCE, chunk_size=4000):
            pair.server_send(frame)
        assert (pair.client.state, pair.server.state) == (State.IDLE, State.GET_DONE)
    request = Request("INBX", b"L<INBOXID=0>", "sess", 0)
    assert pair.client_send(request) == [request]
    assert pair.server_send(Response(0, b"ok")) == [Response(0, b"ok")]
    assert pair.client.state is pair.server.state is State.IDLE


def test_data_after_a_whole_get_is_a_7009() -> None:
    pair = ConnectionPair()
    pair.client_send(BulkGet("F<A=1>"))
    frames = list(data_frames(8, RESOURCE, chunk_size=6000))
    for frame in frames:
        pair.server_send(frame)
    with pytest.raises(LocalProtocolError) as caught:
        pair.server.send(frames[-1])
    assert caught.value.code == 7009


def test_server_error_in_the_middle_of_a_get() -> None:
    pair = ConnectionPair()
    pair.client_send(BulkGet("F<A=1>"))
    frames = list(data_frames(8, RESOURCE, chunk_size=2000))
    pair.server_send(frames[0])
    assert pair.server_send(Response(5104)) == [Response(5104)]
    assert pair.client.state is State.MUST_CLOSE


def put(pair: ConnectionPair, data: bytes, announced: bytes | None = None) -> list[object]:
    """Upload *data* (announcing *announced*'s size and hash); the server checks it."""
    request = put_request("F<INBOXID=7>", announced if announced is not None else data)
    (opened,) = pair.client_send(request)
    receiver = PutReceiver(opened)  # type: ignore[arg-type]
    staged = bytearray()
    events: list[object] = []
    for frame in data_frames(11, data, chunk_size=3000, sha256=request.sha256):
        try:
            for event in pair.client_send(frame):
                assert isinstance(event, BulkData)
                staged += receiver.feed(event)
        except ProtocolError as err:
            events.append(pair.server_send(Response(err.code)))
            return events
    events.append(pair.server_send(Response(0)))
    events.append(bytes(staged))
    return events


def test_bulk_put_checked_and_kept() -> None:
    pair = ConnectionPair()
    assert put(pair, RESOURCE) == [[Response(0)], RESOURCE]
    assert pair.client.state is pair.server.state is State.MUST_CLOSE


def test_bulk_put_with_a_wrong_hash_is_7011_and_nothing_kept() -> None:
    pair = ConnectionPair()
    tampered = RESOURCE[:-1] + b"!"
    assert put(pair, tampered, announced=RESOURCE) == [[Response(7011)]]
    assert pair.client.state is State.MUST_CLOSE


def test_bulk_put_last_frame_must_name_the_announced_hash() -> None:
    pair = ConnectionPair()
    pair.client_send(put_request("F<A=1>", b"abc"))
    pair.server.receive_data(raw_frame(BulkData(1, 0, 3, b"abc", True, "0" * 64)))
    with pytest.raises(RemoteProtocolError) as info:
        drain(pair.server)
    assert info.value.code == 7011
    with pytest.raises(LocalProtocolError) as linfo:
        Connection(Role.CLIENT).send(BulkData(1, 0, 3, b"abc", True, "0" * 64))
    assert linfo.value.code == 7009
    client = Connection(Role.CLIENT)
    client.send(put_request("F<A=1>", b"abc"))
    with pytest.raises(LocalProtocolError) as linfo:
        client.send(BulkData(1, 0, 3, b"abc", True, "0" * 64))
    assert linfo.value.code == 7011


def test_bulk_put_refused_early_drains_the_rest() -> None:
    pair = ConnectionPair()
    pair.client_send(put_request("F<A=1>", RESOURCE))
    frames = list(data_frames(4, RESOURCE, chunk_size=4000))
    in_flight = pair.client.send(frames[0])
    assert pair.server_send(Response(7003)) == [Response(7003)]
    assert pair.server.state is State.DRAINING
    pair.server.receive_data(in_flight)
    assert drain(pair.server) == [frames[0]]
    assert pair.client.state is State.MUST_CLOSE
    pair.close()


def test_bulk_put_cancelled_by_the_client() -> None:
    pair = ConnectionPair()
    pair.client_send(put_request("F<A=1>", RESOURCE))
    frames = list(data_frames(4, RESOURCE, chunk_size=4000))
    pair.client_send(frames[0])
    assert pair.client_send(BulkCancel(4)) == [BulkCancel(4)]
    assert pair.server.state is State.MUST_CLOSE
    assert pair.client.state is State.CANCELLED
    pair.close()


def test_put_data_must_stay_within_the_announced_size() -> None:
    client = Connection(Role.CLIENT)
    client.send(put_request("F<A=1>", b"abc"))
    with pytest.raises(LocalProtocolError):
        client.send(BulkData(1, 0, 4, b"abcd", True, sha256_hex(b"abcd")))


# -- chunking and fuzzing at the connection level ----------------------------------------------


def conversation() -> tuple[bytes, bytes]:
    """Bytes a client sends and bytes a server answers, for a mixed session."""
    pair = ConnectionPair()
    pair.client_send(Request("RM", b"GRTL<PRODUCT=V>", "k"))
    pair.server_send(Response(0, b"GRTL<ERROR=0>"))
    pair.client_send(Echo("RM", "k"))
    pair.server_send(EchoReply())
    pair.client_send(put_request("F<A=1>", RESOURCE, key="k"))
    for frame in data_frames(1, RESOURCE, chunk_size=3000):
        pair.client_send(frame)
    pair.server_send(Response(0))
    request, response, echo, reply, *upload, result = pair.wire
    assert len(upload) == 5  # the put and its 4 data frames
    return request + echo + b"".join(upload), response + reply + result


TO_SERVER, TO_CLIENT = conversation()


def serve(chunks: list[bytes], *, eof: bool = False) -> list[object]:
    """A server that answers as it goes: what it saw, in order (an error ends it)."""
    server = Connection(Role.SERVER)
    seen: list[object] = []
    try:
        for chunk in [*chunks, b""] if eof else chunks:
            server.receive_data(chunk)
            while (event := server.next_event()) is not NEED_DATA:
                seen.append(event)
                if isinstance(event, Request):
                    server.send(Response(0, b"GRTL<ERROR=0>"))
                elif isinstance(event, Echo):
                    server.send(EchoReply())
                elif isinstance(event, BulkData) and event.done:
                    server.send(Response(0))
                elif isinstance(event, ConnectionClosed):
                    return seen
    except ProtocolError as err:
        seen.append(("error", int(err.code)))
    return seen


@given(st.lists(st.integers(0, len(TO_SERVER)), max_size=40))
def test_server_sees_the_same_events_in_any_chunking(cuts: list[int]) -> None:
    expected = serve(one_chunk(TO_SERVER))
    assert len(expected) == 3 + 4  # request, echo, put, 4 data frames
    assert serve(split_at(TO_SERVER, cuts)) == expected


def test_server_sees_the_same_events_byte_by_byte() -> None:
    assert serve(byte_by_byte(TO_SERVER)) == serve(one_chunk(TO_SERVER))


@given(st.integers(0, len(TO_SERVER) - 1))
def test_truncated_client_stream_ends_in_a_protocol_error_or_a_close(cut: int) -> None:
    events = serve(one_chunk(TO_SERVER[:cut]), eof=True)
    last = events[-1]
    assert last == ConnectionClosed() or last == ("error", 7009)


@given(st.binary(max_size=600), st.sampled_from([Role.CLIENT, Role.SERVER]))
def test_random_bytes_end_only_in_protocol_errors(data: bytes, role: Role) -> None:
    conn = Connection(role)
    if role is Role.CLIENT:
        conn.send(BulkGet("F<A=1>"))
    events = feed(conn, one_chunk(data))
    last = events[-1]
    assert isinstance(last, ConnectionClosed | tuple)


@given(st.lists(st.binary(min_size=24, max_size=24), max_size=4), st.binary(max_size=64))
def test_random_headers_with_valid_prefix_end_only_in_protocol_errors(
    heads: list[bytes], tail: bytes
) -> None:
    data = b"".join(b"\x01" + h[1:] for h in heads) + tail
    for role in Role:
        events = feed(Connection(role), one_chunk(data))
        assert isinstance(events[-1], ConnectionClosed | tuple)


def test_need_data_until_a_whole_frame() -> None:
    server = Connection(Role.SERVER)
    data = raw_frame(Request("RM", b"x" * 100))
    for i in range(len(data) - 1):
        server.receive_data(data[i : i + 1])
        assert server.next_event() is NEED_DATA
    server.receive_data(data[-1:])
    assert server.next_event() == Request("RM", b"x" * 100)


junk = st.one_of(st.none(), st.integers(-5, 2**65), st.text(max_size=6), st.binary(max_size=6))


@given(
    st.one_of(
        st.builds(Request, junk, junk, junk, junk),
        st.builds(Submit, junk, junk, junk, junk),
        st.builds(Echo, junk, junk, junk, junk),
        st.builds(Poll, junk, junk, junk, junk),
        st.builds(BulkGet, junk, junk, junk, junk, junk),
    )
)
def test_sending_junk_fields_is_a_local_protocol_error(event: object) -> None:
    client = Connection(Role.CLIENT)
    try:
        client.send(event)  # type: ignore[arg-type]
    except LocalProtocolError as err:
        assert err.code in (7001, 7005, 7008, 7009)  # noqa: PT017
        assert client.state is State.ERROR


@given(st.builds(Response, junk, junk, junk))
def test_answering_with_junk_fields_is_a_local_protocol_error(event: Response) -> None:
    server = Connection(Role.SERVER)
    server.receive_data(raw_frame(Request("RM")))
    server.next_event()
    try:
        server.send(event)
    except LocalProtocolError as err:
        assert err.code == 7009  # noqa: PT017
