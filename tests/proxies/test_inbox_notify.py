"""proxies/inbox/notify.py: e-mail and pages when an item arrives, through a real SMTP
server on loopback (aiosmtpd on a thread), never lost, never sent twice.
"""

from __future__ import annotations

import inspect
import mailbox
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import msgpack
import pytest
import trio
from starwrs.grammar.errors import ErrorCode as E
from starwrs.storage.outbox import Delivered, OutboxMessage

from .inbox_rig import Rig, SmtpServer, add_text, open_rig, running_smtp

CSV = b"0,54\r\nD,Boston\r\n"
MTD = b"<METADATA=<CRITERIA=<Name=City>>>"
NOTIFY_EMAIL = "SEV=2,UNOTIFY=2"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


async def settle(rig: Rig, until: Callable[[], Awaitable[bool]] | Callable[[], object]) -> None:
    """Wait until *until()* holds, woken by the outbox recording an attempt.

    The short bound only covers an attempt settling while *until* looks.
    """
    with trio.fail_after(30):
        while True:
            done = until()
            if inspect.isawaitable(done):
                done = await done
            if done:
                return
            with trio.move_on_after(0.2):
                await rig.outbox.settled()


async def parked(rig: Rig) -> list[OutboxMessage]:
    await settle(rig, lambda: _any_failed(rig))
    return await rig.outbox.failed()


async def _any_failed(rig: Rig) -> bool:
    return bool(await rig.outbox.failed())


@pytest.fixture
async def rig(tmp_path: Path, smtp: SmtpServer) -> AsyncIterator[Rig]:
    async with open_rig(tmp_path, oe=True, smtp=(smtp.host, smtp.port)) as rig:
        yield rig


async def add_report(rig: Rig, extra: str = NOTIFY_EMAIL, user: str = "jeanvnet2") -> int:
    await rig.put(add_text((user, "00022924"), loc="r1.csv", size=len(CSV)), CSV)
    status, answer = await rig.put(
        add_text((user, "00022924"), loc="r1.mtd", part="M", size=len(CSV), extra=extra),
        MTD,
        cert="rm",
    )
    assert status == 0, answer
    return int(str(answer.get("INBOXID")))


async def test_an_email_to_the_users_address_from_order_entry(rig: Rig, smtp: SmtpServer) -> None:
    inbox_id = await add_report(rig)
    await settle(rig, lambda: smtp.received)
    (mail,) = smtp.received
    assert mail.recipients == ["jeanvnet2@demo.invalid"]
    assert mail.sender == "inbox@starwrs.invalid"
    message = mail.message
    assert message["Subject"] == 'Your report "City Summary, Outbound" is in your inbox'
    assert message["To"] == "jeanvnet2@demo.invalid"
    assert message["Message-ID"].startswith(f"<starwrs.{inbox_id}.email.")
    body = message.get_content()
    assert "Hello Jean (Vnet and Vision reports)," in body
    assert 'Your report "City Summary, Outbound" is in your starwrs inbox.' in body
    assert "Requested:  2025-02-28 15:18 GMT" in body
    assert "Arrived:    2025-03-01 12:00 GMT" in body
    assert f"Inbox item: {inbox_id} (report, priced; {len(CSV)} bytes)" in body
    assert "log on at https://127.0.0.1:8443/ and choose it in the Message Center" in body
    assert f"send 'F<INBOXID={inbox_id}>' --mech bulk --out report.csv" in body
    assert f"send 'F<INBOXID={inbox_id},PART=M>' --mech bulk --out report.mtd" in body
    assert await rig.outbox.failed() == []
    assert (await rig.outbox.stats()).pending == {}


async def test_overrides_of_the_add_and_a_page(rig: Rig, smtp: SmtpServer) -> None:
    inbox_id = await add_report(
        rig,
        "SEV=1,UNOTIFY=3,MMADDR=boss@example.test,MMTEXT=The June numbers are in.,"
        "PGT=A,PGPIN=12345678,PGTXT=June report ready",
    )
    await settle(rig, lambda: len(smtp.received) == 2)
    by_rcpt = {mail.recipients[0]: mail.message for mail in smtp.received}
    assert set(by_rcpt) == {"boss@example.test", "12345678@pager.test"}
    email = by_rcpt["boss@example.test"]
    assert email.get_content().splitlines()[2] == "The June numbers are in."
    assert f"Inbox item: {inbox_id}" in email.get_content()
    page = by_rcpt["12345678@pager.test"]
    assert page.get_content().strip() == "June report ready"
    assert page["Message-ID"] != email["Message-ID"]


async def test_a_numeric_page_to_the_users_default_pager(rig: Rig, smtp: SmtpServer) -> None:
    inbox_id = await add_report(rig, "SEV=1,UNOTIFY=1", user="paged")
    await settle(rig, lambda: smtp.received)
    (mail,) = smtp.received
    assert mail.recipients == ["5550123@pager.test"]
    assert mail.message.get_content().strip() == str(inbox_id)  # numeric pagers: digits


async def test_news_and_failures_say_so(rig: Rig, smtp: SmtpServer) -> None:
    news = add_text(category="F", loc="n.txt", size=4, title="Maintenance", extra=NOTIFY_EMAIL)
    await rig.put(news, b"Sun.", cert="admin")
    failed = add_text(loc="r9.txt", size=6, extra="ERRFLAG=1," + NOTIFY_EMAIL, title="Monthly")
    await rig.put(failed, b"failed")
    await settle(rig, lambda: len(smtp.received) == 2)
    subjects = sorted(str(mail.message["Subject"]) for mail in smtp.received)
    assert subjects == ["News: Maintenance", 'Your report "Monthly" could not be produced']


async def test_a_second_delivery_attempt_sends_nothing(tmp_path: Path, smtp: SmtpServer) -> None:
    async with open_rig(tmp_path, oe=True, smtp=(smtp.host, smtp.port), deliver=False) as rig:
        await add_report(rig)
        (row,) = await rig.db.fetchall("SELECT * FROM outbox")
        queued = OutboxMessage(
            row["id"], row["subject"], row["key"], row["destination"], bytes(row["payload"]),
            row["created"], row["attempts"],
        )  # fmt: skip
        assert rig.inbox.items.outbox_reading() == ({"notify": 1}, {"notify": 0.0}, {})
        assert isinstance(await rig.notifier.deliver(queued), Delivered)
        assert await rig.db.fetchall("SELECT * FROM outbox") == []  # delivered = recorded
        assert rig.inbox.items.outbox_reading() == ({}, {}, {})
        # the outbox did not see the acknowledgement (a crash, a lease that ran out)
        assert isinstance(await rig.notifier.deliver(queued), Delivered)
        assert len(smtp.received) == 1
        (sent,) = await rig.db.fetchall("SELECT state, attempts FROM notified")
        assert tuple(sent) == ("sent", 1)


@pytest.mark.parametrize(
    ("user", "extra", "code"),
    [
        ("nomail", NOTIFY_EMAIL, E.INBOX_NOTIFY_NO_TEXT),  # no address anywhere
        ("badmail", NOTIFY_EMAIL, E.INBOX_NOTIFY_EMAIL),  # order entry's has no @
        ("ghost", NOTIFY_EMAIL, E.INBOX_NOTIFY_OE),  # order entry does not know the user
        ("jeanvnet2", "SEV=1,UNOTIFY=1", E.INBOX_NOTIFY_PAGE),  # no pager PIN
        ("jeanvnet2", NOTIFY_EMAIL + ",MMADDR=x@y.test", E.INBOX_NOTIFY),  # the server says 550
    ],
)
async def test_what_cannot_be_sent_is_parked_with_its_code(
    rig: Rig, smtp: SmtpServer, user: str, extra: str, code: int
) -> None:
    if code == E.INBOX_NOTIFY:
        smtp.refuse = "550 no such user"
    await add_report(rig, extra, user=user)
    (failed,) = await parked(rig)
    assert failed.last_error is not None
    assert failed.last_error.startswith(f"{int(code)} ")
    assert smtp.received == []
    # the item itself is in the inbox all the same
    _, listed = await rig.send(
        f"L<ENTPID=00022924,USERID={user},CATEGORY=R>", user=(user, "00022924")
    )
    assert listed.get("INBOXID") is not None


async def test_order_entry_down_is_retried_then_parked(tmp_path: Path, smtp: SmtpServer) -> None:
    async with open_rig(tmp_path, oe=False, smtp=(smtp.host, smtp.port)) as rig:
        await add_report(rig)
        (failed,) = await parked(rig)  # 5 attempts in the rig
        assert failed.attempts == 5
        assert failed.last_error is not None
        assert failed.last_error.startswith("gave up after 5 attempts: 5183 ")
        assert smtp.received == []


async def test_a_bad_payload_is_refused_as_5178_and_one_without_a_user_5171(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    async with open_rig(tmp_path, smtp=(smtp.host, smtp.port), deliver=False) as rig:
        queued = OutboxMessage(1, "notify", "1.email", "email", b"\x93\x01", 0.0, 0)
        outcome = await rig.notifier.deliver(queued)
        assert getattr(outcome, "code", None) == E.INBOX_NOTIFY_CONSTRUCTOR
        nobody = msgpack.packb({"channel": "email", "user_id": "", "entp_id": "00022924"})
        queued = OutboxMessage(2, "notify", "2.email", "email", nobody, 0.0, 0)
        outcome = await rig.notifier.deliver(queued)
        assert getattr(outcome, "code", None) == E.INBOX_NOTIFY_NO_USER
    assert smtp.received == []


async def test_without_a_relay_mail_goes_to_the_maildir_exactly_once(tmp_path: Path) -> None:
    async with open_rig(tmp_path, oe=True, deliver=False) as rig:
        await add_report(rig)
        (row,) = await rig.db.fetchall("SELECT * FROM outbox")
        queued = OutboxMessage(
            row["id"], row["subject"], row["key"], row["destination"], bytes(row["payload"]),
            row["created"], row["attempts"],
        )  # fmt: skip
        assert isinstance(await rig.notifier.deliver(queued), Delivered)
        # a crash right after the file was written: the outcome was never recorded
        await rig.db.execute("UPDATE notified SET state = 'sending'")
        assert isinstance(await rig.notifier.deliver(queued), Delivered)
        box = mailbox.Maildir(tmp_path / "mail", create=False)
        (message,) = list(box)
        assert message["To"] == "jeanvnet2@demo.invalid"
        assert "is in your inbox" in str(message["Subject"])
