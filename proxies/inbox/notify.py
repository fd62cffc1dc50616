"""Notifications: an e-mail and/or a page when an item arrives (seed: UNOTIFY, Appendix C).

Theory of operation
-------------------
When the inbox adds an item whose ``A`` asks for it (``UNOTIFY`` 1 page, 2 e-mail,
3 both), :func:`queue_notifications` puts one message per channel into the inbox's
outbox (:mod:`starwrs.storage.outbox`) *inside the transaction that adds the item*:
subject ``notify``, key ``<INBOXID>.email`` / ``<INBOXID>.page``, payload a msgpack
map of what the message needs (title, dates, the overrides of the ``A``).  So an item
never exists without its notifications, and a notification is never lost: the
outbox delivers it through :meth:`Notifier.deliver`, again after a back-off while
order entry or the mail server is down.

Delivering one message:

1. **sent before?**  ``notified`` (the inbox store) says ``sent``: it is delivered,
   nothing is sent again (the outbox lost our acknowledgement).
2. **addresses** -- MMADDR / PGT + PGPIN of the ``A``, else the user's defaults from
   order entry (``GUN``): unreachable is 5183 (retried), an error answer 5184, no
   e-mail address 5180, one without ``@`` 5179, no pager PIN 5182 -- the last four
   park the message as failed (kept, shown in the outbox's failed list).
3. **send** -- recorded as ``sending`` first, then the message goes out: through SMTP
   (``smtplib`` on a worker thread) when the deployment names a relay, else into the
   Maildir ``STATE/mail/``; a page is an e-mail to the pager gateway address.  Every
   message carries a ``Message-ID`` made from its outbox key and creation time, the
   same on every attempt.
4. **record** -- ``sent``, and the outbox row deleted, in one transaction.

So a redelivery after anything but a crash in the instant between the server's
acceptance and step 4 sends nothing.  In that instant the outcome is unknown: the
Maildir is checked for the message's file first (exactly once), over SMTP the same
``Message-ID`` is sent again for the receiver to deduplicate (SMTP itself offers no
more; RFC 5321 section 6.1 calls this duplicate delivery).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import msgpack
import trio
from starwrs.grammar import Member, Message, MessageError, parse, serialize
from starwrs.grammar.catalogue_inbox import AddItem
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.grammar.vocab import Notify
from starwrs.protocol import Request
from starwrs.proxies.inbox.store import InboxStore, Item
from starwrs.runtime.pool import ProxyPool
from starwrs.storage.outbox import Delivered, Outbox, OutboxMessage, Outcome, Refused, Retry
from starwrs.storage.sqlite import Transaction

__all__ = [
    "SUBJECT",
    "MailSettings",
    "Notifier",
    "compose",
    "message_id",
    "queue_notifications",
]

log = logging.getLogger("starwrs.inbox.notify")

#: the outbox subject of every notification
SUBJECT = "notify"
_CATEGORY_WORDS = {"R": "report", "D": "call detail", "F": "news"}
#: seconds an SMTP conversation may take
SMTP_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class MailSettings:
    """Where notifications go (from the deployment).

    Attributes:
        smtp: the relay ``(host, port)``, or None for the Maildir.
        maildir: the Maildir used without a relay (``STATE/mail``).
        pager_gateway: the e-mail-to-pager address, ``{pin}`` and ``{type}`` replaced.
        web_url: where customers open the inbox (said in every e-mail).
        sender: the ``From`` address.
    """

    smtp: tuple[str, int] | None
    maildir: Path
    pager_gateway: str = "{pin}@pager.invalid"
    web_url: str = "https://127.0.0.1:8443/"
    sender: str = "starwrs inbox <inbox@starwrs.invalid>"


# -- queueing (in the transaction that adds the item) -------------------------------


async def queue_notifications(outbox: Outbox, tx: Transaction, item: Item, add: AddItem) -> int:
    """Put the notifications *add* asks for into *outbox* within *tx*; how many."""
    channels = {
        Notify.PAGE: ("page",),
        Notify.EMAIL: ("email",),
        Notify.EMAIL_AND_PAGE: ("email", "page"),
    }.get(add.notify, ())
    note = {
        "inbox_id": item.inbox_id,
        "user_id": item.user_id,
        "entp_id": item.entp_id,
        "category": item.category,
        "type": item.type,
        "title": item.title,
        "rpt_category": item.rpt_category,
        "requested": item.requested,
        "added": item.created,
        "expires": item.expires,
        "fsize": item.fsize,
        "err_flag": item.err_flag,
        "severity": add.severity,
        "mm_addr": add.mm_addr,
        "mm_text": add.mm_text,
        "pager_type": add.pager_type,
        "pager_pin": add.pager_pin,
        "pager_text": add.pager_text,
    }
    for channel in channels:
        payload = msgpack.packb(dict(note, channel=channel))
        await outbox.put(SUBJECT, f"{item.inbox_id}.{channel}", channel, payload, tx=tx)
    return len(channels)


# -- composing ----------------------------------------------------------------------


def message_id(message: OutboxMessage) -> str:
    """The ``Message-ID`` of one notification: the same on every attempt."""
    return f"<starwrs.{message.key}.{int(message.created * 1e6)}@inbox.starwrs.invalid>"


def _stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M GMT")


def compose(
    note: dict[str, Any], address: str, settings: MailSettings, *, name: str = ""
) -> EmailMessage:
    """The e-mail (or the page, for ``channel == "page"``) for one notification."""
    mail = EmailMessage()
    mail["From"] = settings.sender
    mail["To"] = address
    mail["Date"] = format_datetime(dt.datetime.fromtimestamp(note["added"], dt.UTC))
    inbox_id = note["inbox_id"]
    title = str(note["title"])
    if note["channel"] == "page":
        mail["Subject"] = "starwrs page"
        mail.set_content(_page_text(note))
        return mail
    word = _CATEGORY_WORDS.get(note["category"], "item")
    if note["category"] == "F":
        mail["Subject"] = f"News: {title}"
        opening = f'News for you in your starwrs inbox: "{title}".'
    elif note["err_flag"]:
        mail["Subject"] = f'Your {word} "{title}" could not be produced'
        opening = (
            f'Your {word} "{title}" could not be produced; the reason is in your '
            "starwrs inbox."
        )
    else:
        mail["Subject"] = f'Your {word} "{title}" is in your inbox'
        opening = f'Your {word} "{title}" is in your starwrs inbox.'
    if note.get("mm_text"):
        opening = str(note["mm_text"])
    lines = [f"Hello {name or note['user_id']},", "", opening, ""]
    if note.get("rpt_category"):
        lines.append(f"  Report:     {note['rpt_category']}")
    if note.get("requested"):
        lines.append(f"  Requested:  {note['requested']} GMT")
    lines += [
        f"  Arrived:    {_stamp(note['added'])}",
        f"  Inbox item: {inbox_id} ({word}, {note['type']}; {note['fsize']} bytes)",
        f"  Kept until: {_stamp(note['expires'])}",
        "",
        f"To open it, log on at {settings.web_url} and choose it in the Message Center,",
        "or fetch it with the starwrs command:",
        "",
        f"  starwrs client --user {note['user_id']} send 'F<INBOXID={inbox_id}>'"
        " --mech bulk --out report.csv",
    ]
    if note["category"] != "F" and not note["err_flag"]:
        lines.append(
            f"  starwrs client --user {note['user_id']} send 'F<INBOXID={inbox_id},PART=M>'"
            " --mech bulk --out report.mtd"
        )
    mail.set_content("\n".join(lines) + "\n")
    return mail


def _page_text(note: dict[str, Any]) -> str:
    numeric = (note.get("pager_type") or "A").upper() == "N"
    text = note.get("pager_text")
    if numeric:
        digits = "".join(c for c in str(text or "") if c.isdigit())
        return (digits or str(note["inbox_id"]))[:20]
    if text:
        return str(text)[:240]
    return f"starwrs: {str(note['title'])[:180]} is in your inbox (item {note['inbox_id']})"


# -- delivering ---------------------------------------------------------------------


class Notifier:
    """The outbox sender of notifications (see the module doc)."""

    def __init__(
        self, store: InboxStore, settings: MailSettings, oe: ProxyPool | None
    ) -> None:
        self.store = store
        self.settings = settings
        self.oe = oe
        self._maildir_ready = False

    async def deliver(self, message: OutboxMessage) -> Outcome:
        """Send one queued notification (at most once per key; see the module doc)."""
        try:
            note = msgpack.unpackb(message.payload, raw=False)
            channel = note["channel"]
        except (ValueError, KeyError, TypeError, msgpack.ExtraData, msgpack.FormatError):
            channel = None
        if channel not in ("email", "page"):
            return Refused(int(ErrorCode.INBOX_NOTIFY_CONSTRUCTOR), "payload is not a notification")
        if await self.store.notified(message.key) == "sent":
            await self.store.sent(message.key, message.id)
            return Delivered()
        try:
            address, name = await self._address(note)
        except StarwrsError as err:
            if err.code == ErrorCode.INBOX_NOTIFY_COMM:
                return Retry(f"{int(err.code)} {err.message}")
            return Refused(int(err.code), err.message)
        mail = compose(note, address, self.settings, name=name)
        mail["Message-ID"] = message_id(message)
        await self.store.sending(message.key, mail["Message-ID"], address)
        outcome = await self._send(mail, message)
        if isinstance(outcome, Delivered):
            await self.store.sent(message.key, message.id)
            log.info(
                "notified key=%s channel=%s to=%s", message.key, channel, _redact(address)
            )
        return outcome

    async def _address(self, note: dict[str, Any]) -> tuple[str, str]:
        """(address, the user's name) for a notification, asking order entry if needed."""
        if not note.get("user_id") or not note.get("entp_id"):
            raise StarwrsError(ErrorCode.INBOX_NOTIFY_NO_USER, "no user or enterprise")
        defaults: dict[str, str] = {}
        if note["channel"] == "email" and not note.get("mm_addr"):
            defaults = await self._defaults(note["user_id"])
            if not defaults.get("EMAIL"):
                raise StarwrsError(ErrorCode.INBOX_NOTIFY_NO_TEXT, "the user has no e-mail address")
        if note["channel"] == "page" and not note.get("pager_pin"):
            defaults = await self._defaults(note["user_id"])
            if not defaults.get("PGPIN"):
                raise StarwrsError(ErrorCode.INBOX_NOTIFY_PAGE, "no pager PIN for the user")
            note["pager_pin"] = defaults["PGPIN"]
            note["pager_type"] = note.get("pager_type") or defaults.get("PGT") or "A"
        if note["channel"] == "email":
            address = str(note.get("mm_addr") or defaults["EMAIL"])
        else:
            address = self.settings.pager_gateway.format(
                pin=note["pager_pin"], type=(note.get("pager_type") or "A")
            )
        if "@" not in address or any(c in address for c in "\r\n<>,"):
            raise StarwrsError(ErrorCode.INBOX_NOTIFY_EMAIL, "the address has no @")
        return address, defaults.get("USERNAME", "")

    async def _defaults(self, user_id: str) -> dict[str, str]:
        """The user's ``GUNA`` from order entry, as a dict of its members."""
        if self.oe is None:
            raise StarwrsError(ErrorCode.INBOX_NOTIFY_COMM, "no order entry configured")
        request = serialize(Message("GUN", (Member("USERID", user_id),))).encode()
        try:
            answer = await self.oe.request("OE", Request("OE", request))
        except StarwrsError as err:
            raise StarwrsError(ErrorCode.INBOX_NOTIFY_COMM, f"order entry: {err.message}") from None
        if answer.status in (7006, 7007):
            raise StarwrsError(ErrorCode.INBOX_NOTIFY_COMM, f"order entry status {answer.status}")
        try:
            reply = parse(answer.payload.decode("utf-8"))
        except (UnicodeDecodeError, MessageError):
            raise StarwrsError(
                ErrorCode.INBOX_NOTIFY_OE, "order entry's answer is not a message"
            ) from None
        values = {m.key: m.value for m in reply.members if m.key and isinstance(m.value, str)}
        if values.get("ERROR") != "0":
            raise StarwrsError(ErrorCode.INBOX_NOTIFY_OE, f"order entry: {values.get('ERROR')}")
        if values.get("ENABLED") == "0":
            raise StarwrsError(ErrorCode.INBOX_NOTIFY_OE, "the user is disabled")
        return values

    async def _send(self, mail: EmailMessage, message: OutboxMessage) -> Outcome:
        smtp = self.settings.smtp
        try:
            if smtp is None:
                await trio.to_thread.run_sync(self._to_maildir, mail)
                return Delivered()
            return await trio.to_thread.run_sync(_smtp_send, smtp, mail)
        except RuntimeError as err:  # no worker thread could be started
            return Retry(f"{int(ErrorCode.INBOX_NOTIFY_FORK)} {err}")
        except OSError as err:
            return Retry(f"{int(ErrorCode.INBOX_NOTIFY)} {err.__class__.__name__}: {err}")

    def _to_maildir(self, mail: EmailMessage) -> None:
        root = self.settings.maildir
        if not self._maildir_ready:
            import mailbox

            mailbox.Maildir(root, create=True)  # new/, cur/, tmp/
            self._maildir_ready = True
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in mail["Message-ID"])
        if (root / "new" / name).exists() or any((root / "cur").glob(name + ":*")):
            return  # delivered by an attempt whose outcome was never recorded
        tmp = root / "tmp" / f"{name}.{os.getpid()}"
        with tmp.open("wb") as file:
            file.write(mail.as_bytes())
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(tmp, root / "new" / name)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)


def _smtp_send(relay: tuple[str, int], mail: EmailMessage) -> Outcome:
    """One SMTP conversation (on a worker thread): Delivered, Retry (4xx, down) or Refused."""
    host, port = relay
    try:
        with smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT, local_hostname="starwrs") as client:
            client.send_message(mail)
    except smtplib.SMTPRecipientsRefused as err:
        codes = [code for code, _ in err.recipients.values()]
        if codes and all(code >= 500 for code in codes):
            return Refused(int(ErrorCode.INBOX_NOTIFY), f"recipient refused: {codes[0]}")
        return Retry(f"{int(ErrorCode.INBOX_NOTIFY)} recipient deferred: {codes}")
    except smtplib.SMTPResponseException as err:
        said = err.smtp_error
        text = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
        reason = f"{err.smtp_code} {text[:200]}"
        if err.smtp_code >= 500:
            return Refused(int(ErrorCode.INBOX_NOTIFY), f"the mail server refused: {reason}")
        return Retry(f"{int(ErrorCode.INBOX_NOTIFY)} {reason}")
    except (smtplib.SMTPException, OSError) as err:
        return Retry(f"{int(ErrorCode.INBOX_NOTIFY)} {err.__class__.__name__}: {err}")
    return Delivered()


def _redact(address: str) -> str:
    """An address for the log: the domain and the first letter only."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}…@{domain}"
