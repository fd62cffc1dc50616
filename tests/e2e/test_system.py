"""End to end through ``starwrs serve``: separate processes, real TLS, real clients.

Covers issue 4's checks: curl logs on and dispatches; TLS 1.1 is refused; an
unentitled target is 7003; a logged-off cookie is 401 at the web server and a forged
session key 7004 at the dispatcher; another session's ticket is 7003; a killed proxy
gives 7006 while the rest keeps serving, then serve restarts it (or, with
--no-restart, only reports it); two dispatchers never collide on serials;
slow senders and oversized requests are cut off while a normal client is served.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import msgpack
import pytest
from starwrs.protocol import FrameWriter
from starwrs.protocol.events import Frame
from starwrs.protocol.header import Mechanism

from .system import System, frames_of, start

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory):
    running = start(tmp_path_factory.mktemp("state"), "--head-timeout", "2")
    yield running
    running.stop()


def gua(user: str) -> bytes:
    return f"GUA<USERID={user}>".encode()


def test_ready_line_and_state(system: System) -> None:
    assert system.url.startswith("https://127.0.0.1:")
    assert (system.state / "ca.pem").exists()
    assert set(system.pids()) >= {"oe", "dispatcher[0]", "web"}
    assert len(set(system.pids().values())) == len(system.pids())  # separate processes


def test_curl_logon_dispatch_logoff(system: System, tmp_path: Path) -> None:
    jar = tmp_path / "jar"
    creds = json.dumps({"user": "jeanvnet2", "password": system.passwords()["jeanvnet2"]})
    curl = [
        "curl",
        "--silent",
        "--show-error",
        "--cacert",
        str(system.ca),
        "-b",
        str(jar),
        "-c",
        str(jar),
    ]
    done = subprocess.run(
        [*curl, "-H", "Content-Type: application/json", "-d", creds, f"{system.url}/logon"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    logon = json.loads(done.stdout)
    assert logon["user"] == "jeanvnet2"
    assert logon["enterprise"] == "00022924"
    assert "OE" in logon["applications"]
    assert "__Host-starwrs_session" in jar.read_text()

    frame_file = tmp_path / "frame.bin"
    frame_file.write_bytes(FrameWriter().send(Frame.build(Mechanism.SYNC, "OE", gua("jeanvnet2"))))
    done = subprocess.run(
        [
            *curl,
            "-H",
            "Content-Type: application/x-starwrs-frame",
            "--data-binary",
            f"@{frame_file}",
            f"{system.url}/dispatch",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    (answer,) = frames_of(done.stdout)
    assert answer.header.status == 0
    assert answer.header.serial != 0
    assert answer.payload.startswith(b"GUAA<ERROR=0,USERID=jeanvnet2")

    subprocess.run(
        [*curl, "-X", "POST", f"{system.url}/logoff"], capture_output=True, timeout=60, check=True
    )
    done = subprocess.run(
        [
            *curl,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Content-Type: application/x-starwrs-frame",
            "--data-binary",
            f"@{frame_file}",
            f"{system.url}/dispatch",
        ],
        capture_output=True,
        timeout=60,
    )
    assert done.stdout == b"401"


def test_tls_1_1_is_refused_and_1_2_accepted(system: System) -> None:
    def handshake(flag: str) -> str:
        done = subprocess.run(
            [
                "openssl",
                "s_client",
                flag,
                "-connect",
                f"{system.host}:{system.port}",
                "-CAfile",
                str(system.ca),
                "-servername",
                "localhost",
            ],
            input=b"",
            capture_output=True,
            timeout=60,
        )
        return (done.stdout + done.stderr).decode(errors="replace")

    assert "Verify return code: 0 (ok)" in handshake("-tls1_2")
    refused = handshake("-tls1_1")
    assert "Cipher is (NONE)" in refused or "Cipher    : 0000" in refused
    # the client is told why: a protocol_version alert (70), not a dropped connection
    assert "alert protocol version" in refused or "no protocols" in refused


def test_wrong_password_and_unknown_user_look_the_same(system: System) -> None:
    wrong = system.post(
        "/logon",
        json.dumps({"user": "dorod", "password": "x"}).encode(),
        content_type="application/json",
    )
    unknown = system.post(
        "/logon",
        json.dumps({"user": "nobody", "password": "x"}).encode(),
        content_type="application/json",
    )
    assert wrong[0] == unknown[0] == 401
    assert wrong[2] == unknown[2]


def test_unentitled_target_is_7003(system: System) -> None:
    cookie = system.logon("LynneLevy2")  # RM and INBX only
    status, (answer,) = system.dispatch(
        cookie, Frame.build(Mechanism.SYNC, "OE", gua("LynneLevy2"))
    )
    assert status == 200
    assert answer.header.status == 7003


def test_unknown_target_is_7002(system: System) -> None:
    cookie = system.logon("jeanvnet2")
    _, (answer,) = system.dispatch(cookie, Frame.build(Mechanism.SYNC, "ZZZZ", b"X<>"))
    assert answer.header.status == 7002


def test_no_cookie_is_401_and_garbage_is_400(system: System) -> None:
    assert system.dispatch(None, Frame.build(Mechanism.SYNC, "OE", gua("x")))[0] == 401
    cookie = system.logon("jeanvnet2")
    status, _, body = system.post("/dispatch", b"not a frame at all", cookie=cookie)
    assert status == 400
    assert b"Traceback" not in body


def test_forged_session_key_is_7004_at_the_dispatcher(system: System) -> None:
    address = system.deployment()["dispatchers"][0]
    context = ssl.create_default_context(cafile=str(system.ca))
    context.load_cert_chain(
        system.state / "internal" / "web.pem", system.state / "internal" / "web-key.pem"
    )
    frame = FrameWriter().send(
        Frame.build(Mechanism.SYNC, "OE", gua("jeanvnet2"), key="forged0key")
    )
    with (
        socket.create_connection((address["host"], address["port"]), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="dispatcher") as tls,
    ):
        tls.sendall(frame)
        data = b""
        while len(data) < 24 or len(data) < int.from_bytes(data[4:8], "big"):
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    (answer,) = frames_of(data)
    assert answer.header.status == 7004


def test_async_ticket_belongs_to_its_session(system: System) -> None:
    mine = system.logon("jeanvnet2")
    theirs = system.logon("dorod")
    _, (ticket,) = system.dispatch(mine, Frame.build(Mechanism.ASYNC, "OE", gua("jeanvnet2")))
    assert ticket.header.status == 0
    ticket_id = msgpack.unpackb(ticket.payload)["ticket"]
    poll = Frame.build(Mechanism.POLL, "OE", msgpack.packb({"ticket": ticket_id}))
    _, (foreign,) = system.dispatch(theirs, poll)
    assert foreign.header.status == 7003
    for _ in range(200):  # bounded: the work is one OE lookup
        _, (answer,) = system.dispatch(mine, poll)
        if answer.header.status != 1:
            break
    assert answer.header.status == 0
    assert answer.payload.startswith(b"GUAA<ERROR=0")
    _, (unknown,) = system.dispatch(
        mine, Frame.build(Mechanism.POLL, "OE", msgpack.packb({"ticket": "nope"}))
    )
    assert unknown.header.status == 7010


def test_oversized_body_is_413_and_the_server_keeps_serving(system: System) -> None:
    cookie = system.logon("jeanvnet2")
    status, _, _ = system.post("/dispatch", b"\x00" * (2 * 1024 * 1024), cookie=cookie)
    assert status == 413
    status, (answer,) = system.dispatch(cookie, Frame.build(Mechanism.SYNC, "OE", gua("jeanvnet2")))
    assert (status, answer.header.status) == (200, 0)


def test_slow_sender_is_cut_off_while_others_are_served(system: System) -> None:
    context = system.tls()
    with (
        socket.create_connection((system.host, system.port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as slow,
    ):
        slow.sendall(b"POST /dispatch HTTP/1.1\r\nHost: x\r\n")  # and never finishes the head
        cookie = system.logon("jeanvnet2")
        status, (answer,) = system.dispatch(
            cookie, Frame.build(Mechanism.SYNC, "OE", gua("jeanvnet2"))
        )
        assert (status, answer.header.status) == (200, 0)
        slow.settimeout(30)
        rest = b""
        try:
            while chunk := slow.recv(65536):  # the server closes within its head timeout (2 s)
                rest += chunk
        except (ConnectionResetError, ssl.SSLError):
            pass
        assert rest == b"" or rest.startswith(b"HTTP/1.1 408")


def test_admin_changes_apply_from_the_next_request(system: System) -> None:
    cookie = system.logon("tfnadmin")
    frame = Frame.build(Mechanism.SYNC, "OE", gua("tfnadmin"))
    assert system.dispatch(cookie, frame)[1][0].header.status == 0
    admin = [sys.executable, "-m", "starwrs.cli", "admin", "--state", str(system.state)]
    subprocess.run(
        [*admin, "apps", "tfnadmin", "RM", "INBX"], check=True, capture_output=True, timeout=60
    )
    assert system.dispatch(cookie, frame)[1][0].header.status == 7003
    subprocess.run([*admin, "disable", "tfnadmin"], check=True, capture_output=True, timeout=60)
    assert system.dispatch(cookie, frame)[0] == 401


def test_killed_proxy_gives_7006_then_serve_restarts_it(tmp_path: Path) -> None:
    running = start(tmp_path / "state")
    try:
        cookie = running.logon("jeanvnet2")
        killed = running.pids()["oe"]
        os.kill(killed, signal.SIGKILL)
        status, (answer,) = running.dispatch(
            cookie, Frame.build(Mechanism.SYNC, "OE", gua("jeanvnet2"))
        )
        assert (status, answer.header.status) == (200, 7006)
        status, (echo,) = running.dispatch(cookie, Frame.build(Mechanism.SYNC, "OE", echo=1))
        assert (status, echo.header.status) == (200, 0)
        # the supervisor starts it again on its own port, and the same session works
        running.wait_for_line("starwrs: oe restarted", timeout=90)
        assert running.pids()["oe"] not in (killed, None)
        status, (answer,) = running.dispatch(
            cookie, Frame.build(Mechanism.SYNC, "OE", gua("jeanvnet2"))
        )
        assert (status, answer.header.status) == (200, 0)
    finally:
        running.stop()
    assert "starwrs: oe exited with status -9; restarting in 1 s" in running.output


def test_no_restart_only_reports_a_dead_service(tmp_path: Path) -> None:
    running = start(tmp_path / "state", "--no-restart")
    # (--no-restart: nothing starts rm again, so there is no later event to wait for;
    # the report line itself says whether a restart was planned)
    try:
        cookie = running.logon("jeanvnet2")
        os.kill(running.pids()["rm"], signal.SIGKILL)
        line = running.wait_for_line("starwrs: rm exited", timeout=60)
        assert line == "starwrs: rm exited with status -9"  # and no "restarting in"
        _, (answer,) = running.dispatch(cookie, Frame.build(Mechanism.SYNC, "RM", b"GRTL<>"))
        assert answer.header.status == 7006
    finally:
        running.stop()
    assert not any(line.startswith("starwrs: rm restarted") for line in running.output)


def test_two_dispatchers_never_collide_on_serials(tmp_path: Path) -> None:
    running = start(tmp_path / "state", "--dispatchers", "2")
    try:
        assert {"dispatcher[0]", "dispatcher[1]"} <= set(running.pids())
        cookies = [running.logon("jeanvnet2") for _ in range(2)]
        serials: list[int] = []
        lock = threading.Lock()

        def client(cookie: str) -> None:
            for _ in range(15):
                _, (answer,) = running.dispatch(
                    cookie, Frame.build(Mechanism.SYNC, "OE", gua("jeanvnet2"))
                )
                assert answer.header.status == 0
                with lock:
                    serials.append(answer.header.serial)

        threads = [threading.Thread(target=client, args=(c,)) for c in cookies]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(serials) == 30
        assert len(set(serials)) == 30
        assert len({s >> 40 for s in serials}) == 2  # both dispatchers answered
    finally:
        running.stop()
