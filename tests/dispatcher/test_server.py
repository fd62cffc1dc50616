"""dispatcher/server.py: real dispatchers on loopback (mutual TLS, SQLite), doubles for proxies."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from starwrs.dispatcher.serials import COUNTER_BITS
from starwrs.grammar import parse
from starwrs.protocol import (
    HEADER,
    BulkCancel,
    BulkData,
    BulkGet,
    Download,
    Echo,
    EchoReply,
    FrameReader,
    Mechanism,
    Pending,
    Poll,
    Request,
    Response,
    State,
    Submit,
    Ticket,
    data_frames,
    put_request,
    sha256_hex,
)
from starwrs.protocol.events import Frame
from starwrs.runtime.channel import FrameChannel, PeerGone, open_tls_channel
from starwrs.storage.sessions import open_session_store

from .helpers import Stack, running_stack, text


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path) as running:
        yield running


# -- echo, logon, logoff ------------------------------------------------------------


async def test_echo_is_answered_without_a_proxy_and_with_a_key_needs_a_session(
    stack: Stack,
) -> None:
    key = await stack.logon()
    asked = len(stack.oe.asked)
    async with await stack.connect() as channel:
        for target in ("RM", "NOPE", "DSP"):
            for echo_key in ("", key):  # a service's own test; one the web server relays
                await channel.send(Echo(target, key=echo_key, mech=Mechanism.SYNC))
                assert isinstance(await channel.receive(), EchoReply)
    assert stack.oe.asked[asked:] == []
    assert stack.doubles["RM"].requests == []
    async with await stack.connect() as channel:  # a key that names no session
        await channel.send(Echo("RM", key="anything", mech=Mechanism.SYNC))
        answer = await channel.receive()
    assert isinstance(answer, Response)
    assert answer.status == 7004


async def test_logon_answers_the_session_and_entitlements(stack: Stack) -> None:
    answer = await stack.call("DSP", "LON<USERID=jean,PASSWORD=secret>")
    assert answer.status == 0
    lona = parse(text(answer))
    assert lona.acronym == "LONA"
    assert lona.get("ERROR") == "0"
    assert lona.get("ENTPID") == "00022924"
    assert "DSS~INBX~RM" in text(answer)  # APPS, sorted
    assert lona.get("TIMEZONE") == "EST"
    session = lona.get("SESSION")
    assert isinstance(session, str)
    assert len(session) >= 22
    assert [a for a, _, _ in stack.oe.asked] == ["VU", "GUA"]
    assert stack.oe.asked[0][2] == ""  # VU is the dispatcher's own question


async def test_bad_password_unknown_user_and_disabled_user_get_6115(stack: Stack) -> None:
    stack.oe.users["off"] = stack.oe.users["jean"].__class__("pw", enabled=False)
    for logon in (
        "LON<USERID=jean,PASSWORD=wrong>",
        "LON<USERID=nobody,PASSWORD=secret>",
        "LON<USERID=off,PASSWORD=pw>",
    ):
        answer = await stack.call("DSP", logon)
        assert (answer.status, text(answer)) == (6115, "LONA<ERROR=6115>")


async def test_throttled_logon_is_7012(stack: Stack) -> None:
    stack.oe.users["jean"].throttled = True
    answer = await stack.call("DSP", "LON<USERID=jean,PASSWORD=secret>")
    assert (answer.status, text(answer)) == (7012, "LONA<ERROR=7012>")


async def test_malformed_dsp_messages_get_their_codes(stack: Stack) -> None:
    assert (await stack.call("DSP", "LON<PASSWORD=x>")).status == 6839  # USERID missing
    unknown = await stack.call("DSP", "NOPE<A=1>")
    assert (unknown.status, text(unknown)) == (6104, "NOPE<ERROR=6104>")
    assert (await stack.call("DSP", "LON<USERID=jean")).status == 6612  # unbalanced
    assert (await stack.call("DSP", b"\xff\xfe")).status == 6610


async def test_logoff_ends_the_session(stack: Stack) -> None:
    key = await stack.logon()
    assert (await stack.call("RM", "GRTL<PRODUCT=V>", key)).status == 0
    answer = await stack.call("DSP", "LOFF<>", key)
    assert (answer.status, text(answer)) == (0, "LOFA<ERROR=0>")
    refused = await stack.call("RM", "GRTL<PRODUCT=V>", key)
    assert refused.status == 7004
    assert parse(text(refused)).get("ERROR") == "7004"


async def test_logon_rotates_the_key_it_was_given(stack: Stack) -> None:
    old = await stack.logon()
    answer = await stack.call("DSP", "LON<USERID=jean,PASSWORD=secret>", old)
    new = parse(text(answer)).get("SESSION")
    assert isinstance(new, str)
    assert new != old
    assert (await stack.call("RM", "GRTL<>", old)).status == 7004
    assert (await stack.call("RM", "GRTL<>", new)).status == 0


# -- sessions and entitlements ----------------------------------------------------


async def test_a_request_reaches_the_proxy_with_identity_and_serial(stack: Stack) -> None:
    key = await stack.logon()
    answer = await stack.call("RM", "GRTL<PRODUCT=V>", key)
    assert (answer.status, text(answer)) == (0, "GRTLA<ERROR=0>")
    [seen] = stack.doubles["RM"].requests
    assert seen.key == "jean@00022924"  # never the session key
    assert seen.payload == b"GRTL<PRODUCT=V>"
    assert seen.serial == answer.serial != 0


async def test_a_forged_key_is_7004(stack: Stack) -> None:
    await stack.logon()
    for key in ("", "forged", "x" * 200):
        answer = await stack.call("RM", "GRTL<>", key)
        assert answer.status == 7004
        assert parse(text(answer)).acronym is None  # <ERROR=7004,REASON=...>
    assert stack.doubles["RM"].requests == []


async def test_an_idle_or_too_old_session_is_7004(stack: Stack) -> None:
    limits = stack.deployment.limits
    key = await stack.logon()
    stack.clock.advance(limits.session_idle + 1)
    assert (await stack.call("RM", "GRTL<>", key)).status == 7004

    key = await stack.logon()
    for _ in range(int(limits.session_absolute // (limits.session_idle / 2)) + 1):
        stack.clock.advance(limits.session_idle / 2)  # used often, but too old at last
        last = await stack.call("RM", "GRTL<>", key)
    assert last.status == 7004


async def test_unknown_target_is_7002_and_unentitled_target_is_7003(stack: Stack) -> None:
    stack.oe.users["jean"].apps = ("RM",)
    key = await stack.logon()
    unknown = await stack.call("ZZZ", "GRTL<>", key)
    assert unknown.status == 7002
    assert parse(text(unknown)).get("ERROR") == "7002"
    assert (await stack.call("INBX", "L<>", key)).status == 7003
    assert stack.doubles["INBX"].requests == []


async def test_entitlements_are_cached_and_an_entc_applies_from_the_next_request(
    stack: Stack,
) -> None:
    key = await stack.logon()
    assert (await stack.call("INBX", "L<>", key)).status == 0
    stack.oe.users["jean"].apps = ("RM",)  # changed in order entry ...
    assert (await stack.call("INBX", "L<>", key)).status == 0  # ... cached until told
    assert stack.oe.gua_count("jean") == 1

    answer = await stack.call("DSP", "ENTC<USERID=jean>", cert="oe")
    assert (answer.status, text(answer)) == (0, "ENTA<ERROR=0>")
    assert (await stack.call("INBX", "L<>", key)).status == 7003
    assert (await stack.call("RM", "GRTL<>", key)).status == 0


async def test_entc_from_a_customers_hop_is_refused(stack: Stack) -> None:
    key = await stack.logon()
    answer = await stack.call("DSP", "ENTC<USERID=jean>", key)  # via the web server
    assert (answer.status, text(answer)) == (7003, "ENTA<ERROR=7003>")


async def test_a_disabled_users_sessions_end_at_entc(stack: Stack, tmp_path: Path) -> None:
    stack.oe.users["ann"] = stack.oe.users["jean"].__class__("pw2")
    first, second = await stack.logon(), await stack.logon()
    other = await stack.logon("ann", "pw2")
    stack.oe.users["jean"].enabled = False
    assert (await stack.call("DSP", "ENTC<USERID=jean>", cert="oe")).status == 0
    async with open_session_store(tmp_path / "sessions.db", clock=stack.clock) as sessions:
        assert await sessions.count_live("jean") == 0
        assert await sessions.count_live("ann") == 1
    for key in (first, second):
        assert (await stack.call("RM", "GRTL<>", key)).status == 7004
    assert (await stack.call("RM", "GRTL<>", other)).status == 0


async def test_two_dispatchers_share_sessions_and_never_share_serials(tmp_path: Path) -> None:
    async with running_stack(tmp_path, dispatchers=2) as stack:
        key = await stack.logon(index=0)
        assert stack.oe.gua_count("jean") == 1
        answers: list[Response] = []

        async def client(index: int) -> None:
            async with await stack.connect(index) as channel:
                for _ in range(15):
                    await channel.send(Request("RM", b"GRTL<>", key))
                    answer = await channel.receive()
                    assert isinstance(answer, Response)
                    answers.append(answer)

        async with trio.open_nursery() as nursery:
            for index in (0, 1, 0, 1):
                nursery.start_soon(client, index)
        assert all(a.status == 0 for a in answers)
        assert stack.oe.gua_count("jean") == 2  # dispatcher 1 missed its cache once
        serials = [a.serial for a in answers]
        assert len(set(serials)) == len(serials) == 60
        assert len({s >> COUNTER_BITS for s in serials}) == 2  # one boot id each
        assert sorted(r.serial for r in stack.doubles["RM"].requests) == sorted(serials)


async def test_a_cache_miss_finds_a_disabled_user_and_ends_their_sessions(tmp_path: Path) -> None:
    async with running_stack(tmp_path, dispatchers=2) as stack:
        key = await stack.logon(index=0)
        stack.oe.users["jean"].enabled = False  # and nobody told dispatcher 1
        assert (await stack.call("RM", "GRTL<>", key, index=1)).status == 7004
        assert (await stack.call("RM", "GRTL<>", key, index=0)).status == 7004


# -- proxies that are down or slow -------------------------------------------------


async def test_an_absent_proxy_is_7006(stack: Stack) -> None:
    key = await stack.logon()
    answer = await stack.call("DSS", "ARD<>", key)
    assert answer.status == 7006
    reason = parse(text(answer)).get("REASON")
    assert reason == "DSS proxy unavailable"  # no host, no port


async def test_a_killed_proxy_is_7006_while_everyone_else_is_served(stack: Stack) -> None:
    key = await stack.logon()
    assert (await stack.call("RM", "GRTL<>", key)).status == 0  # a pooled connection now
    held: list[Response] = []

    async def held_request() -> None:
        held.append(await stack.call("RM", "HOLD<>", key))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(held_request)
        await stack.app.holding.wait()
        # RM is busy holding one request; everything else goes on
        assert (await stack.call("INBX", "L<>", key)).status == 0
        stack.doubles["RM"].kill()
    assert held[0].status == 7006
    with trio.fail_after(5):
        assert (await stack.call("RM", "GRTL<>", key)).status == 7006
    assert (await stack.call("INBX", "L<>", key)).status == 0
    async with await stack.connect() as channel:
        await channel.send(Echo("RM"))
        assert isinstance(await channel.receive(), EchoReply)


async def test_a_slow_proxy_is_7007_and_does_not_hold_up_others(tmp_path: Path) -> None:
    async with running_stack(tmp_path, proxy_timeout=0.5) as stack:
        key = await stack.logon()
        slow: list[Response] = []

        async def slow_request() -> None:
            slow.append(await stack.call("RM", "HOLD<>", key))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow_request)
            await stack.app.holding.wait()
            assert (await stack.call("INBX", "L<>", key)).status == 0
        assert slow[0].status == 7007
        assert parse(text(slow[0])).get("ERROR") == "7007"
        stack.app.release.set()


# -- asynchronous requests (mechanisms 1 and 2) -----------------------------------------


async def submit(stack: Stack, target: str, payload: bytes, key: str) -> Ticket | Response:
    async with await stack.connect() as channel:
        await channel.send(Submit(target, payload, key))
        answer = await channel.receive()
    assert isinstance(answer, Ticket | Response)
    return answer


async def poll(stack: Stack, ticket: str, key: str, index: int = 0) -> Pending | Response:
    async with await stack.connect(index) as channel:
        await channel.send(Poll(ticket, "RM", key))
        answer = await channel.receive()
    assert isinstance(answer, Pending | Response)
    return answer


async def poll_until_done(stack: Stack, ticket: str, key: str) -> Response:
    with trio.fail_after(10):
        while True:
            answer = await poll(stack, ticket, key)
            if isinstance(answer, Response):
                return answer


async def test_submit_then_poll_pending_then_done(tmp_path: Path) -> None:
    async with running_stack(tmp_path, ticket_ttl=60.0) as stack:
        await submit_then_poll(stack)


async def submit_then_poll(stack: Stack) -> None:
    key = await stack.logon()
    ticket = await submit(stack, "RM", b"HOLD<>", key)
    assert isinstance(ticket, Ticket)
    assert ticket.serial != 0
    await stack.app.holding.wait()
    assert isinstance(await poll(stack, ticket.ticket, key), Pending)
    stack.app.release.set()
    done = await poll_until_done(stack, ticket.ticket, key)
    assert (done.status, text(done)) == (0, "HOLDA<ERROR=0>")
    again = await poll(stack, ticket.ticket, key)  # kept for the TTL after the first fetch
    assert isinstance(again, Response)
    assert again.payload == done.payload
    stack.clock.advance(stack.deployment.limits.ticket_ttl + 1)
    expired = await poll(stack, ticket.ticket, key)
    assert isinstance(expired, Response)
    assert expired.status == 7010


async def test_work_cut_off_by_a_dispatcher_stop_is_answered_7006(tmp_path: Path) -> None:
    async with running_stack(tmp_path, dispatchers=2) as stack:
        key = await stack.logon()
        ticket = await submit(stack, "RM", b"HOLD<>", key)
        assert isinstance(ticket, Ticket)
        await stack.app.holding.wait()
        await stack.stop_dispatcher(0)  # SIGTERM while the proxy still works on it
        answer = await poll(stack, ticket.ticket, key, index=1)
        assert isinstance(answer, Response)
        assert answer.status == 7006
        reason = str(parse(text(answer)).get("REASON"))
        assert "stopped" in reason
        assert "may or may not" in reason
        stack.app.release.set()


async def test_a_restarted_dispatcher_settles_what_its_predecessor_left(tmp_path: Path) -> None:
    async with running_stack(tmp_path, dispatchers=2) as stack:
        key = await stack.logon()
        await stack.stop_dispatcher(0)
        # as if dispatcher 0 had been killed mid-work: its ticket stays pending
        async with open_session_store(tmp_path / "sessions.db") as store:
            lost = await store.issue_ticket(key, "RM", dispatcher=0)
            other = await store.issue_ticket(key, "RM", dispatcher=1)
        assert isinstance(await poll(stack, lost.ticket_id, key, index=1), Pending)
        await stack.start_dispatcher(0)
        answer = await poll(stack, lost.ticket_id, key, index=1)
        assert isinstance(answer, Response)
        assert answer.status == 7006
        # dispatcher 1's own work is not its business
        assert isinstance(await poll(stack, other.ticket_id, key, index=0), Pending)


async def test_poll_unknown_ticket_7010_and_another_sessions_ticket_7003(stack: Stack) -> None:
    key, other = await stack.logon(), await stack.logon()
    ticket = await submit(stack, "RM", b"GRTL<>", key)
    assert isinstance(ticket, Ticket)
    stranger = await poll(stack, ticket.ticket, other)
    assert isinstance(stranger, Response)
    assert stranger.status == 7003
    unknown = await poll(stack, "no-such-ticket", key)
    assert isinstance(unknown, Response)
    assert unknown.status == 7010
    nobody = await poll(stack, ticket.ticket, "forged")
    assert isinstance(nobody, Response)
    assert nobody.status == 7004


async def test_submit_is_checked_like_any_request(stack: Stack) -> None:
    stack.oe.users["jean"].apps = ("RM", "DSS")
    key = await stack.logon()
    for target, payload, session, code in [
        ("RM", b"GRTL<>", "forged", 7004),
        ("INBX", b"L<>", key, 7003),
        ("ZZZ", b"L<>", key, 7002),
        ("DSP", b"LOFF<>", key, 7008),
    ]:
        answer = await submit(stack, target, payload, session)
        assert isinstance(answer, Response)
        assert answer.status == code
    ticket = await submit(stack, "DSS", b"ARD<>", key)  # accepted: DSS is absent
    assert isinstance(ticket, Ticket)
    result = await poll_until_done(stack, ticket.ticket, key)
    assert result.status == 7006


# -- bulk relay (mechanism 3) ------------------------------------------------------


async def bulk_get(
    stack: Stack, download: Download, *, cancel_after: int | None = None
) -> tuple[bytes, Response | None]:
    """Run one get; cancel after that many frames if asked.  Returns data and any error."""
    parts: list[bytes] = []
    async with await stack.connect() as channel:
        await channel.send(download.request())
        frames = 0
        while True:
            event = await channel.receive()
            if isinstance(event, Response):
                return b"".join(parts), event
            assert isinstance(event, BulkData)
            assert event.serial != 0
            parts.append(bytes(download.feed(event)))
            frames += 1
            if event.done:
                return b"".join(parts), None
            if frames == cancel_after:
                await channel.send(BulkCancel(event.transfer))
                return b"".join(parts), None


async def test_bulk_get_relays_the_whole_resource(stack: Stack) -> None:
    resource = bytes(range(256)) * 1500  # 384000 bytes: 6 frames of 64 KiB
    stack.app.resources["F<INBOXID=1>"] = resource
    key = await stack.logon()
    download = Download("F<INBOXID=1>", target="INBX", key=key)
    data, error = await bulk_get(stack, download)
    assert error is None
    assert data == resource
    assert download.done
    [(name, offset, identity, serial)] = stack.app.gets
    assert (name, offset, identity) == ("F<INBOXID=1>", 0, "jean@00022924")
    assert serial != 0


async def _whole_get(channel: FrameChannel, download: Download) -> bytes:
    await channel.send(download.request())
    parts = []
    while not download.done:
        event = await channel.receive()
        assert isinstance(event, BulkData), event
        parts.append(bytes(download.feed(event)))
    return b"".join(parts)


async def test_a_whole_get_leaves_both_hops_reusable(stack: Stack) -> None:
    """A viewer's .mtd then data, then a request: one client and one proxy connection."""
    metadata, data = b"M" * 900, bytes(range(256)) * 600
    stack.app.resources.update({"F<INBOXID=5,PART=M>": metadata, "F<INBOXID=5>": data})
    inbox = stack.doubles["INBX"]
    key = await stack.logon()
    before = inbox.connections
    async with await stack.connect() as channel:
        got = await _whole_get(channel, Download("F<INBOXID=5,PART=M>", target="INBX", key=key))
        assert got == metadata
        assert channel.conn.state is State.IDLE
        got = await _whole_get(channel, Download("F<INBOXID=5>", target="INBX", key=key))
        assert got == data
        answer = await channel.request(Request("RM", b"GRTL<>", key), 5)
        assert isinstance(answer, Response)
        assert answer.status == 0
    assert inbox.connections - before == 1  # the second get reused the pooled link
    assert [g[0] for g in stack.app.gets[-2:]] == ["F<INBOXID=5,PART=M>", "F<INBOXID=5>"]


async def test_a_pooled_proxy_link_that_died_is_replaced_unseen(stack: Stack) -> None:
    stack.app.resources["F<INBOXID=6>"] = b"x" * 5000
    inbox = stack.doubles["INBX"]
    inbox.keep_after_get = False  # the proxy closes after every get (a restart, say)
    key = await stack.logon()
    before = inbox.connections
    async with await stack.connect() as channel:
        for _ in range(3):
            got = await _whole_get(channel, Download("F<INBOXID=6>", target="INBX", key=key))
            assert got == b"x" * 5000
    assert inbox.connections - before == 3


async def test_bulk_get_cancel_reaches_the_proxy_and_a_resume_completes(stack: Stack) -> None:
    resource = bytes(range(256)) * 1000
    stack.app.resources["F<INBOXID=2>"] = resource
    stack.app.pause_after_first.add("F<INBOXID=2>")
    key = await stack.logon()
    first = Download("F<INBOXID=2>", target="INBX", key=key)
    held, _ = await bulk_get(stack, first, cancel_after=1)
    assert len(held) == stack.app.chunk
    with trio.fail_after(5):
        await stack.app.paused_done.wait()
    assert stack.app.after_pause == ["BulkCancel"]

    stack.app.pause_after_first.clear()
    rest = Download("F<INBOXID=2>", held, target="INBX", key=key)
    tail, error = await bulk_get(stack, rest)
    assert error is None
    assert rest.done  # the sha256 of the whole resource matched
    assert held + tail == resource
    assert stack.app.gets[-1][1] == len(held)


async def test_a_client_that_goes_away_mid_get_closes_the_proxy_side(stack: Stack) -> None:
    stack.app.resources["F<INBOXID=3>"] = bytes(300_000)
    stack.app.pause_after_first.add("F<INBOXID=3>")
    key = await stack.logon()
    async with await stack.connect() as channel:
        await channel.send(BulkGet("F<INBOXID=3>", 0, "INBX", key))
        assert isinstance(await channel.receive(), BulkData)
    with trio.fail_after(5):
        await stack.app.paused_done.wait()
    assert stack.app.after_pause[0] in ("ConnectionClosed", "PeerGone")


async def test_bulk_errors_are_relayed_and_checked(stack: Stack) -> None:
    key = await stack.logon()
    _, missing = await bulk_get(stack, Download("F<INBOXID=404>", target="INBX", key=key))
    assert missing is not None
    assert (missing.status, missing.payload) == (5100, b"F<ERROR=5100>")
    _, down = await bulk_get(stack, Download("F<INBOXID=1>", target="DSS", key=key))
    assert down is not None
    assert down.status == 7006
    _, forged = await bulk_get(stack, Download("F<INBOXID=1>", target="INBX", key="forged"))
    assert forged is not None
    assert forged.status == 7004


async def test_bulk_put_is_relayed(stack: Stack) -> None:
    key = await stack.logon()
    upload = bytes(range(256)) * 700
    async with await stack.connect() as channel:
        await channel.send(put_request("U<INBOXID=9>", upload, target="INBX", key=key))
        for frame in data_frames(3, upload, chunk_size=50_000):
            await channel.send(frame)
        answer = await channel.receive()
    assert isinstance(answer, Response)
    assert (answer.status, answer.payload) == (0, b"Z<ERROR=0>")
    assert answer.serial != 0
    assert stack.app.uploads["U<INBOXID=9>"] == upload
    assert sha256_hex(stack.app.uploads["U<INBOXID=9>"]) == sha256_hex(upload)


# -- malformed frames, stalls, limits ----------------------------------------------------


def raw_frame(
    payload: bytes = b"", *, version: int = 1, mech: int = 0, length: int | None = None
) -> bytes:
    """Frame bytes as a broken peer might send them (no checks at all)."""
    size = 24 + len(payload) if length is None else length
    return HEADER.pack(version, 0, mech, 0, size, 0, 0, b"RM  ") + payload


async def raw_exchange(stack: Stack, data: bytes) -> tuple[list[Frame], bool]:
    """Send raw bytes; collect the frames answered until the dispatcher closes."""
    channel = await stack.connect()
    stream = channel.stream
    reader = FrameReader()
    frames: list[Frame] = []
    with trio.fail_after(5):
        await stream.send_all(data)
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                chunk = b""
            reader.receive_data(chunk)
            while isinstance(event := reader.next_event(), Frame):
                frames.append(event)
            if not chunk:
                await trio.aclose_forcefully(stream)
                return frames, True


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (raw_frame(version=2), 7001),
        (raw_frame(mech=9), 7008),
        (raw_frame(length=0xFFFFFF00), 7005),
        (raw_frame(length=20), 7009),
        (raw_frame(b"\x81\xa1x\x01", mech=2), 7009),  # a poll whose payload is no ticket
    ],
    ids=["version", "mechanism", "too-large", "too-short", "bad-control-payload"],
)
async def test_malformed_frames_get_their_codes_and_the_server_goes_on(
    stack: Stack, data: bytes, code: int
) -> None:
    frames, closed = await raw_exchange(stack, data)
    assert closed
    assert [f.header.status for f in frames] == [code]
    assert parse(frames[0].payload.decode()).get("ERROR") == str(code)
    async with await stack.connect() as channel:
        await channel.send(Echo("RM"))
        assert isinstance(await channel.receive(), EchoReply)


async def test_a_frame_that_stalls_is_cut_off_after_the_read_timeout(tmp_path: Path) -> None:
    async with running_stack(tmp_path, read_timeout=0.5) as stack:
        channel = await stack.connect()
        waiter = await stack.connect()  # idle meanwhile, and not cut off
        stream = channel.stream
        started = trio.current_time()
        await stream.send_all(raw_frame(length=100))  # 24 of 100 bytes, then nothing
        reader = FrameReader()
        with trio.fail_after(5):
            while not isinstance(event := reader.next_event(), Frame):
                reader.receive_data(await stream.receive_some(65536))
        assert event.header.status == 7009
        assert trio.current_time() - started >= 0.45
        with trio.fail_after(5):
            assert await stream.receive_some(100) == b""
        await trio.aclose_forcefully(stream)
        async with waiter:
            await waiter.send(Echo("RM"))
            assert isinstance(await waiter.receive(), EchoReply)


async def test_connections_beyond_the_limit_wait_for_a_free_slot(tmp_path: Path) -> None:
    async with running_stack(tmp_path, max_connections=2) as stack:
        first, second = await stack.connect(), await stack.connect()
        address = stack.deployment.dispatchers[0]
        context = stack.pki.internal_client_context("web")
        with pytest.raises(PeerGone):  # the handshake cannot even start
            await open_tls_channel(
                address.host,
                address.port,
                context,
                server_hostname="dispatcher",
                connect_timeout=0.3,
            )
        await first.aclose()
        third: FrameChannel = await stack.connect()
        async with third, second:
            for channel in (third, second):
                await channel.send(Echo("RM"))
                assert isinstance(await channel.receive(), EchoReply)


async def test_a_client_without_a_deployment_certificate_is_refused(stack: Stack) -> None:
    address = stack.deployment.dispatchers[0]
    context = ssl.create_default_context(cafile=str(stack.pki.ca_cert))

    async def attempt() -> None:
        channel = await open_tls_channel(
            address.host, address.port, context, server_hostname="dispatcher"
        )
        async with channel:  # TLS 1.3: the server's verdict arrives with the first read
            await channel.send(Echo("RM"))
            await channel.receive()

    with pytest.raises(PeerGone):
        await attempt()


# -- logging -------------------------------------------------------------------------


async def test_one_log_line_per_transaction_without_secrets(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="starwrs.dispatcher")
    key = await stack.logon()
    answer = await stack.call("RM", "GRTL<>", key)
    await stack.call("RM", "GRTL<>", "forged")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("serial=")]
    assert len(lines) == 3
    assert f"serial={answer.serial} user=jean target=RM mech=SYNC status=0" in lines[1]
    assert "status=7004" in lines[2]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert key not in everything
    assert "secret" not in everything
