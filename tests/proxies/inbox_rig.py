"""A running inbox for the tests: real TLS listeners on loopback, real SQLite on disk.

:func:`open_rig` starts the inbox proxy (and, when asked, the real order entry
proxy with the demo users) on 127.0.0.1, each with its deployment certificate;
:class:`Rig` talks to it the way its peers do -- synchronous frames and bulk puts
and gets over mutual TLS, with the certificate of the caller it plays.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import trio
from aiosmtpd.controller import Controller
from starwrs.fixtures.demo import load_demo
from starwrs.grammar import Message, parse
from starwrs.protocol import BulkData, BulkPut, Request, Response
from starwrs.proxies.framework import serve_proxy
from starwrs.proxies.inbox.notify import MailSettings, Notifier
from starwrs.proxies.inbox.server import Inbox, make_inbox_proxy
from starwrs.proxies.inbox.store import MIGRATIONS
from starwrs.proxies.oe.server import make_oe_proxy
from starwrs.proxies.oe.store import open_order_entry
from starwrs.runtime.config import Address, Limits, free_port
from starwrs.runtime.pki import Pki, ensure_pki
from starwrs.runtime.pool import ProxyPool
from starwrs.runtime.transfer import TransferRefused, fetch, upload
from starwrs.storage.outbox import Outbox
from starwrs.storage.sqlite import Store, open_store

JEAN = ("jeanvnet2", "00022924")
LYNNE = ("LynneLevy2", "00022924")
TFN = ("tfnadmin", "10324488")
#: 2025-03-01 12:00 GMT, the rig's wall clock at start
T0 = 1740830400.0


def add_text(
    user: tuple[str, str] = JEAN,
    *,
    loc: str = "r1_city.csv",
    part: str | None = "D",
    size: int = 0,
    category: str = "R",
    extra: str = "",
    title: str = "City Summary, Outbound",
) -> str:
    """An ``A`` for the tests (report fields filled; *extra* members appended)."""
    members = [
        f"CATEGORY={category}",
        "TYPE=priced",
        f"USERID={user[0]}",
        f"ENTPID={user[1]}",
        "COMPRESS=1" if loc.lower().endswith("_zip") else "COMPRESS=0",
        f"LOC={loc}",
        f"FSIZE={size}",
        "RPTTITLE=" + title.replace(",", "\\,"),
    ]
    if category in ("R", "D"):
        members += ["RPTID=245", "REQUESTID=32197", "RQSTDT=2025-02-28 15:18"]
    if category == "R":
        members.append("RPTCATEGORY=City Summary")
    if part is not None:
        members.append(f"PART={part}")
    if part is None and category in ("R", "D"):
        members.append("MSIZE=10")
    if extra:
        members.append(extra)
    return "A<" + ",".join(members) + ">"


@dataclass
class Rig:
    """The running inbox (and order entry) of one test."""

    state: Path
    pki: Pki
    inbox: Inbox
    db: Store
    outbox: Outbox
    notifier: Notifier
    address: Address
    oe_address: Address | None
    clock: list[float]
    pools: dict[str, ProxyPool] = field(default_factory=dict)

    def pool(self, cert: str) -> ProxyPool:
        if cert not in self.pools:
            self.pools[cert] = ProxyPool(
                {"INBX": self.address}, self.pki.internal_client_context(cert), Limits()
            )
        return self.pools[cert]

    async def send(
        self, text: str, *, user: tuple[str, str] | None = JEAN, cert: str = "dispatcher"
    ) -> tuple[int, Message]:
        """One synchronous request; (status, the answer parsed)."""
        key = f"{user[0]}@{user[1]}" if user is not None else ""
        answer = await self.pool(cert).request("INBX", Request("INBX", text.encode(), key=key))
        return answer.status, parse(answer.payload.decode("utf-8"))

    async def put(
        self, resource: str, data: bytes, *, cert: str = "dss", sha256: str | None = None
    ) -> tuple[int, Message]:
        """A bulk put of *data* as *resource* (a wrong *sha256* if given)."""
        channel = await self.pool(cert).connect("INBX")
        async with channel:
            if sha256 is None:
                path = self.state / "upload.bin"
                path.write_bytes(data)
                answer = await upload(channel, resource, path, target="INBX")
            else:
                await channel.send(BulkPut(resource, len(data), sha256, target="INBX"))
                await channel.send(
                    BulkData(1, 0, len(data), data, done=True, sha256=sha256, serial=0)
                )
                while not isinstance(answer := await channel.receive(), Response):
                    pass
        return answer.status, parse(answer.payload.decode("utf-8"))

    async def add(
        self, data: bytes, meta: bytes | None = b"<METADATA=<CRITERIA=<Name=x>>>", **kw: object
    ) -> int:
        """Put a report's two halves (or news' one); its INBOXID."""
        base = str(kw.pop("base", "r1_city"))
        user = kw.pop("user", JEAN)
        status, answer = await self.put(
            add_text(user, loc=f"{base}.csv", size=len(data), **kw),
            data,  # type: ignore[arg-type]
        )
        assert status == 0, answer
        if meta is not None:
            status, answer = await self.put(
                add_text(user, loc=f"{base}.mtd", part="M", size=len(data), **kw),  # type: ignore[arg-type]
                meta,
                cert="rm",
            )
            assert status == 0, answer
        return int(str(answer.get("INBOXID")))

    async def get(
        self,
        resource: str,
        out: Path,
        *,
        user: tuple[str, str] | None = JEAN,
        cert: str = "dispatcher",
    ) -> tuple[int, str]:
        """A bulk get into *out* (resuming after what it holds); (size, sha256)."""
        key = f"{user[0]}@{user[1]}" if user is not None else ""
        channel = await self.pool(cert).connect("INBX")
        async with channel:
            return await fetch(channel, resource, out, target="INBX", key=key)

    async def get_refused(self, resource: str, **kw: object) -> int:
        """The status a refused bulk get answers."""
        try:
            await self.get(resource, self.state / "refused.bin", **kw)  # type: ignore[arg-type]
        except TransferRefused as refused:
            return refused.status
        raise AssertionError(f"{resource} was not refused")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@asynccontextmanager
async def open_rig(
    state: Path,
    *,
    oe: bool = False,
    smtp: tuple[str, int] | None = None,
    deliver: bool = True,
    pager_gateway: str = "{pin}@pager.test",
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[Rig]:
    """Start the inbox (and order entry with the demo users if *oe*) on loopback."""
    state.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - test set-up
    pki = ensure_pki(state)
    now = [T0]
    limits = Limits()
    async with trio.open_nursery() as outer:
        oe_address = None
        if oe:
            oe_address = await outer.start(serve_demo_oe, state, pki)
        home = state / "inbox"
        home.mkdir(exist_ok=True)
        async with open_store(home / "inbox.db", MIGRATIONS) as db:
            outbox = Outbox(db, base_delay=0.01, max_delay=0.05, max_attempts=5)
            inbox = Inbox(db, home, outbox, clock=clock or (lambda: now[0]))
            oe_pool = ProxyPool(
                {"OE": oe_address} if oe_address else {},
                pki.internal_client_context("inbox"),
                limits,
            )
            settings = MailSettings(smtp=smtp, maildir=state / "mail", pager_gateway=pager_gateway)
            notifier = Notifier(inbox.items, settings, oe_pool if oe_address else None)
            async with trio.open_nursery() as nursery:
                listeners = await nursery.start(
                    serve_proxy,
                    make_inbox_proxy(inbox),
                    Address("127.0.0.1", 0),
                    pki.internal_server_context("inbox"),
                    limits,
                )
                address = Address("127.0.0.1", listeners[0].socket.getsockname()[1])
                if deliver:
                    await nursery.start(outbox.run, notifier.deliver)
                rig = Rig(state, pki, inbox, db, outbox, notifier, address, oe_address, now)
                try:
                    yield rig
                finally:
                    for pool in rig.pools.values():
                        await pool.aclose()
                    await oe_pool.aclose()
                    nursery.cancel_scope.cancel()
        outer.cancel_scope.cancel()


async def serve_demo_oe(
    state: Path, pki: Pki, *, task_status: trio.TaskStatus[Address] = trio.TASK_STATUS_IGNORED
) -> None:
    async with open_order_entry(state / "oe.db") as store:
        await load_demo(store, state)
        await store.add_user("nomail", "00022924", "secret-password", name="No Mail")
        await store.add_user(
            "paged", "00022924", "secret-password", email="paged@demo.invalid", pager="N:5550123"
        )
        await store.add_user("badmail", "00022924", "secret-password", email="nobody")
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                serve_proxy,
                make_oe_proxy(store),
                Address("127.0.0.1", 0),
                pki.internal_server_context("oe"),
                Limits(),
            )
            task_status.started(Address("127.0.0.1", listeners[0].socket.getsockname()[1]))


# -- a real SMTP server on loopback ---------------------------------------------------


@dataclass
class Mail:
    """What one SMTP transaction delivered."""

    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class SmtpServer:
    """An aiosmtpd server on loopback recording what it accepts."""

    host: str
    port: int
    received: list[Mail] = field(default_factory=list)
    #: a code answered to RCPT instead of 250 (e.g. "550 no such user")
    refuse: str | None = None
    #: while cleared, RCPT waits (a sender can be killed in the middle)
    gate: threading.Event = field(default_factory=threading.Event)
    in_rcpt: threading.Event = field(default_factory=threading.Event)
    #: while cleared, the answer to DATA waits (after the message was recorded)
    data_gate: threading.Event = field(default_factory=threading.Event)
    got_data: threading.Event = field(default_factory=threading.Event)

    async def handle_RCPT(
        self, server: object, session: object, envelope: object, address: str, options: object
    ) -> str:
        self.in_rcpt.set()
        while not self.gate.wait(0.05):
            pass
        if self.refuse is not None:
            return self.refuse
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content = envelope.original_content or envelope.content  # type: ignore[attr-defined]
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(
            Mail(envelope.mail_from, list(envelope.rcpt_tos), parsed)  # type: ignore[attr-defined]
        )
        self.got_data.set()
        while not self.data_gate.wait(0.05):
            pass
        return "250 Message accepted for delivery"


@contextmanager
def running_smtp() -> Iterator[SmtpServer]:
    """An aiosmtpd server on 127.0.0.1, on a thread, for as long as the block runs."""
    server = SmtpServer("127.0.0.1", free_port())
    server.gate.set()
    server.data_gate.set()
    # a plain asyncio loop of its own: trio-asyncio's policy is not for other threads
    loop = asyncio.SelectorEventLoop()
    controller = Controller(server, hostname=server.host, port=server.port, loop=loop)
    controller.start()
    try:
        yield server
    finally:
        server.gate.set()
        server.data_gate.set()
        controller.stop()
        loop.close()
