"""The inbox as its own OS process (``starwrs run inbox``), killed with SIGKILL while it
sends a notification -- after the restart the notification goes out, and only once --
and while a file is being put: the sender's retry stores it whole, once.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from starwrs.protocol import BulkData, BulkPut
from starwrs.runtime.config import Address, Deployment, Limits, free_port
from starwrs.runtime.pki import Pki, ensure_pki
from starwrs.runtime.pool import ProxyPool
from starwrs.runtime.transfer import upload

from .inbox_rig import SmtpServer, add_text, running_smtp, serve_demo_oe

pytestmark = pytest.mark.slow

CSV = b"0,54\r\nD,Boston\r\n"
MTD = b"<METADATA=<CRITERIA=<Name=City>>>"


class InboxProcess:
    """``starwrs run inbox --state DIR``, started and killed by the test.

    Its log (stderr) is read as it comes, so the test can wait for a line.
    """

    def __init__(self, state: Path, nursery: trio.Nursery) -> None:
        self.state = state
        self.nursery = nursery
        self.process: trio.Process | None = None
        self.log = ""
        self._more = trio.Event()

    async def start(self) -> None:
        self.log = ""
        self.process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "starwrs.cli", "run", "inbox", "--state", str(self.state)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.nursery.start_soon(self._read_log, self.process)
        seen = b""
        with trio.fail_after(60):
            while b"ready inbox" not in seen:
                chunk = await self.process.stdout.receive_some(1024)
                assert chunk, self.log
                seen += chunk

    async def _read_log(self, process: trio.Process) -> None:
        assert process.stderr is not None
        async for chunk in process.stderr:
            self.log += chunk.decode("utf-8", "replace")
            self._more.set()
            self._more = trio.Event()

    async def wait_for_log(self, text: str) -> None:
        with trio.fail_after(30):
            while text not in self.log:
                await self._more.wait()

    async def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            with trio.move_on_after(20):
                await self.process.wait()
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()


async def wait_for(event: object) -> None:
    """Wait (on a worker thread) for a threading.Event the SMTP server sets."""
    assert await trio.to_thread.run_sync(event.wait, 30)  # type: ignore[attr-defined]


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[tuple[InboxProcess, Pki, Address, SmtpServer]]:
    pki = ensure_pki(tmp_path)
    with running_smtp() as smtp:
        async with trio.open_nursery() as nursery:
            oe = await nursery.start(serve_demo_oe, tmp_path, pki)
            inbox = Address("127.0.0.1", free_port())
            Deployment(
                state_dir=tmp_path,
                web=Address("127.0.0.1", 8443),
                dispatchers=(),
                proxies={"OE": oe, "INBX": inbox},
                smtp=f"{smtp.host}:{smtp.port}",
            ).save()
            process = InboxProcess(tmp_path, nursery)
            await process.start()
            try:
                yield process, pki, inbox, smtp
            finally:
                with trio.CancelScope(shield=True):
                    await process.stop()
                nursery.cancel_scope.cancel()


async def put_report(pki: Pki, address: Address, tmp_path: Path) -> None:
    """The DSS's data half and the Report Manager's metadata half (UNOTIFY=2)."""
    for cert, text, data in (
        ("dss", add_text(loc="r1.csv", size=len(CSV)), CSV),
        ("rm", add_text(loc="r1.mtd", part="M", size=len(CSV), extra="SEV=2,UNOTIFY=2"), MTD),
    ):
        pool = ProxyPool({"INBX": address}, pki.internal_client_context(cert), Limits())
        path = tmp_path / f"{cert}.bin"
        path.write_bytes(data)
        channel = await pool.connect("INBX")
        async with channel:
            answer = await upload(channel, text, path, target="INBX")
        assert answer.status == 0, answer.payload
        await pool.aclose()


def notified(state: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(f"file:{state}/inbox/inbox.db?mode=ro", uri=True) as db:
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone() == (0,)
        return db.execute("SELECT key, state, attempts FROM notified").fetchall()


async def test_killed_while_sending_it_sends_once_after_the_restart(
    system: tuple[InboxProcess, Pki, Address, SmtpServer], tmp_path: Path
) -> None:
    process, pki, address, smtp = system
    smtp.gate.clear()  # the conversation stops at RCPT
    await put_report(pki, address, tmp_path)
    await wait_for(smtp.in_rcpt)
    await process.kill()
    smtp.gate.set()
    await process.start()
    await wait_for(smtp.got_data)
    await process.wait_for_log("notified key=1.email")
    (mail,) = smtp.received
    assert mail.recipients == ["jeanvnet2@demo.invalid"]
    assert mail.message["Subject"] == 'Your report "City Summary, Outbound" is in your inbox'
    await process.stop()
    assert notified(tmp_path) == [("1.email", "sent", 2)]
    assert smtp.received == [mail]


async def test_killed_before_the_servers_answer_the_same_message_id_is_sent_again(
    system: tuple[InboxProcess, Pki, Address, SmtpServer], tmp_path: Path
) -> None:
    # The server has the whole message, the sender never hears 250: SMTP cannot say
    # whether it was delivered (RFC 5321 6.1), so it is sent again -- with the same
    # Message-ID, by which a receiver recognises it.
    process, pki, address, smtp = system
    smtp.data_gate.clear()
    await put_report(pki, address, tmp_path)
    await wait_for(smtp.got_data)
    await process.kill()
    smtp.got_data.clear()
    smtp.data_gate.set()
    await process.start()
    await wait_for(smtp.got_data)
    await process.wait_for_log("notified key=1.email")
    first, second = smtp.received
    assert first.message["Message-ID"] == second.message["Message-ID"]
    await process.stop()
    assert notified(tmp_path) == [("1.email", "sent", 2)]


async def test_killed_while_a_file_is_put_the_retry_keeps_it_whole_and_once(
    system: tuple[InboxProcess, Pki, Address, SmtpServer], tmp_path: Path
) -> None:
    process, pki, address, _smtp = system
    data = bytes(range(256)) * 32768  # 8 MiB: eight data frames
    digest = hashlib.sha256(data).hexdigest()
    resource = add_text(loc="big.csv", size=len(data))
    pool = ProxyPool({"INBX": address}, pki.internal_client_context("dss"), Limits())
    channel = await pool.connect("INBX")
    await channel.send(BulkPut(resource, len(data), digest, target="INBX"))
    for offset in (0, 1 << 20):  # two of the eight frames, then the inbox dies
        chunk = data[offset : offset + (1 << 20)]
        await channel.send(BulkData(1, offset, len(data), chunk, done=False))
    await process.kill()
    await trio.aclose_forcefully(channel.stream)
    await process.start()
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    for expected in (0, 5005):  # the sender's retry, then a retry of the retry
        channel = await pool.connect("INBX")
        async with channel:
            answer = await upload(channel, resource, path, target="INBX")
        assert answer.status == expected, answer.payload
    await pool.aclose()
    (stored,) = (tmp_path / "inbox" / "data").iterdir()
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest
    assert list((tmp_path / "inbox" / "staging").iterdir()) == []
