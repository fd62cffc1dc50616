"""The inbox proxy process (seed: Inbox Server 270; Appendices C, E, G; docs/runtime.md).

Theory of operation
-------------------
The inbox answers every request with ``Z<REQ=x,ERROR=n,...>`` through
:mod:`starwrs.proxies.framework`, keeps items in :mod:`.store` and notifies through
:mod:`.notify`:

* **A** -- items arrive as bulk puts, one per half (PROTOCOL.md section 7): the
  resource is the item's ``A`` with ``PART=D`` (data, the default) or ``PART=M``
  (metadata).  The LOC is checked (5158) and ``FSIZE`` against the put's size (5160)
  before any data is taken; the data is staged, checked by size and sha256 by the
  framework, and only then kept (:meth:`~.store.InboxStore.put_half`).  The put that
  completes an item adds it, queues its notifications in the same transaction, and
  answers its INBOXID.  A synchronous ``A`` confirms an added item (0, then 5005) or
  says which half is missing (5163 data, 5166 metadata).
* **L / F / U / D** -- for the customer in the frame key (``USERID@ENTPID``, set by
  the dispatcher): a message naming another USERID or ENTPID is 7003, and another
  user's INBOXID is answered exactly like one that does not exist (5100; 5125 for
  D).  ``F`` answers its file's size and sha256 synchronously and streams the file
  over bulk get, from any offset (a resume).  Internal callers (``admin``) name the
  owner in the message, or none for an item by INBOXID.
* **TTL** -- every :data:`PURGE_EVERY` seconds (and at start) expired items and
  their files are deleted; files a crash left without a row are removed at start.

Database failures are 5106 (5107 for a list), never a traceback on the wire.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import trio
from starwrs.grammar import Member, Message
from starwrs.grammar.catalogue_inbox import (
    AddItem,
    DeleteAllItems,
    DeleteItem,
    FetchItem,
    ItemPart,
    ListItems,
    UpdateItem,
)
from starwrs.grammar.codecs import Rows
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.grammar.vocab import InboxRequest
from starwrs.protocol import BulkPut
from starwrs.proxies.bulk import FileSink, FileSource, Source
from starwrs.proxies.framework import Caller, Proxy, serve_proxy
from starwrs.proxies.inbox.names import parse_loc
from starwrs.proxies.inbox.notify import MailSettings, Notifier, queue_notifications
from starwrs.proxies.inbox.store import DEFAULT_TTL, MIGRATIONS, InboxStore, Item, Owner
from starwrs.runtime.config import Deployment
from starwrs.runtime.metrics import set_outbox_source
from starwrs.runtime.pki import load_pki
from starwrs.runtime.pool import ProxyPool
from starwrs.storage.outbox import Outbox, OutboxMessage
from starwrs.storage.sqlite import Store, Transaction, open_store

__all__ = ["PURGE_EVERY", "Inbox", "make_inbox_proxy", "serve_inbox"]

log = logging.getLogger("starwrs.inbox")

#: seconds between two TTL purges
PURGE_EVERY = 600.0
_E = ErrorCode


def z(req: InboxRequest, code: int, **fields: str | int | None) -> Message:
    """``Z<REQ=req,ERROR=code,...>`` with the fields given (None ones left out)."""
    members = [Member("REQ", req.value), Member("ERROR", str(int(code)))]
    for key, value in fields.items():
        if value is not None:
            members.append(Member(key.upper(), str(value)))
    return Message("Z", tuple(members))


def _stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M")


class _Refusal(Exception):
    """A request answered with *code* (and nothing else)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def scope(caller: Caller, user_id: str | None = None, entp_id: str | None = None) -> Owner | None:
    """Whose items a request may see: the key's user, or (internal) the message's.

    Raises:
        _Refusal: 7003 -- a customer naming another user, or a routed request
            without an identity.
    """
    if caller.user_id is not None:
        owner = (caller.user_id, caller.entp_id or "")
        if user_id is not None and (user_id, entp_id) != owner:
            raise _Refusal(_E.NOT_ENTITLED)
        return owner
    if caller.peer == "dispatcher":
        raise _Refusal(_E.NOT_ENTITLED)
    if user_id is not None and entp_id is not None:
        return (user_id, entp_id)
    return None


class Inbox:
    """The inbox's state: items and files, the notification outbox, the purge.

    Args:
        db: the open ``inbox.db``.
        home: ``STATE/inbox``.
        outbox: the notification outbox over *db*.
        ttl: default time to live, days.
        clock: wall-clock seconds.
    """

    def __init__(
        self,
        db: Store,
        home: Path,
        outbox: Outbox,
        *,
        ttl: int = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.items = InboxStore(db, home, on_added=self._added, ttl=ttl, clock=clock)

    async def _added(self, tx: Transaction, item: Item, add: AddItem) -> None:
        queued = await queue_notifications(self.outbox, tx, item, add)
        log.info(
            "inbox added id=%d user=%s category=%s notifications=%d",
            item.inbox_id,
            item.user_id,
            item.category,
            queued,
        )

    # -- A ----------------------------------------------------------------------------

    async def put(self, caller: Caller, add: AddItem, put: BulkPut) -> FileSink:
        """Take one half of an item (a bulk put): checked now, kept once whole."""
        del caller
        part = add.part or ItemPart.DATA
        loc = parse_loc(add.loc, part)
        if part is ItemPart.DATA and add.fsize != put.size:
            raise StarwrsError(_E.INBOX_ADD_FSIZE, f"FSIZE={add.fsize} but the put is {put.size}")
        staging = self.items.staging / f"{secrets.token_hex(8)}.part"

        async def complete(path: Path) -> Message:
            try:
                added = await self.items.put_half(add, part, loc, path, put.sha256)
            except sqlite3.Error:
                log.exception("inbox put failed")
                return z(InboxRequest.ADD, _E.INBOX_STORED_PROCEDURE)
            code = _E.INBOX_DUPLICATE if added.duplicate else 0
            self.outbox.wake()  # its notifications are committed now
            log.info(
                "inbox put user=%s key=%s part=%s bytes=%d code=%d id=%s",
                add.user_id,
                loc.key,
                part.value,
                put.size,
                code,
                added.inbox_id,
            )
            return z(
                InboxRequest.ADD,
                code,
                inboxid=added.inbox_id,
                part=part.value,
                size=None if added.duplicate else put.size,
                sha256=None if added.duplicate else put.sha256,
            )

        return FileSink(staging, complete)

    async def confirm(self, caller: Caller, add: AddItem) -> Message:
        """A synchronous ``A`` (see the module doc)."""
        del caller
        loc = parse_loc(add.loc)
        added = await self.items.confirm(add, loc)
        self.outbox.wake()  # an item it completed has its notifications committed
        if added.inbox_id is not None:
            code = _E.INBOX_DUPLICATE if added.duplicate else 0
            return z(InboxRequest.ADD, code, inboxid=added.inbox_id)
        if added.meta_missing and added.data is not None:
            return z(
                InboxRequest.ADD,
                _E.INBOX_NO_METADATA,
                part=ItemPart.DATA.value,
                size=added.data.size,
                sha256=added.data.sha256,
            )
        return z(InboxRequest.ADD, _E.INBOX_ADD_NO_FILE)

    # -- L, F, U, D -------------------------------------------------------------------

    async def list(self, caller: Caller, req: ListItems) -> Message:
        owner = scope(caller, req.user_id, req.entp_id)
        assert owner is not None
        try:
            items = await self.items.list_items(owner, req.category.value, req.inbox_id)
        except sqlite3.Error:
            log.exception("inbox list failed")
            return z(InboxRequest.LIST, _E.INBOX_OPEN_CURSOR)
        rows = tuple(
            (
                str(i.inbox_id),
                i.category,
                i.type,
                i.title,
                i.rpt_category,
                i.requested,
                str(i.fsize),
                str(i.msize),
                "1" if i.ack else "0",
                _stamp(i.expires),
            )
            for i in items
        )
        latest = items[0].inbox_id if items else req.inbox_id
        members = list(z(InboxRequest.LIST, 0, inboxid=latest, ttl=self.items.ttl).members)
        members.append(Member("ITEMS", Rows().encode(rows)))
        return Message("Z", tuple(members))

    async def _file(self, caller: Caller, inbox_id: int, part: ItemPart) -> tuple[Item, Source]:
        item = await self.items.item(inbox_id, scope(caller))
        if item is None:
            raise _Refusal(_E.INBOX_NO_RECORDS)
        stored = item.data if part is ItemPart.DATA else item.meta
        if stored is None:
            raise _Refusal(_E.INBOX_NO_METADATA)
        try:
            # the sha256 is the stored one, so this is one stat(): no worker thread
            source = FileSource.of(stored.path, stored.sha256)
        except OSError:
            log.exception("inbox item %d: its %s file cannot be opened", inbox_id, part.value)
            code = _E.INBOX_FETCH_OPEN if part is ItemPart.DATA else _E.INBOX_FETCH_FILENAME
            raise _Refusal(code) from None
        return item, source

    async def fetch(self, caller: Caller, req: FetchItem) -> Message:
        """A synchronous ``F``: which file, its size and sha256 (fetch it over bulk)."""
        _item, source = await self._file(caller, req.inbox_id, req.part)
        return z(
            InboxRequest.FETCH,
            0,
            inboxid=req.inbox_id,
            part=req.part.value,
            size=source.size,
            sha256=source.sha256,
        )

    async def fetch_bulk(self, caller: Caller, req: FetchItem) -> Source:
        """A bulk get of ``F``: the file, from the get's offset."""
        try:
            _item, source = await self._file(caller, req.inbox_id, req.part)
        except _Refusal as refusal:
            raise StarwrsError(ErrorCode(refusal.code), "not available") from None
        return source

    async def update(self, caller: Caller, req: UpdateItem) -> Message:
        owner = scope(caller, req.user_id, req.entp_id)
        if not await self.items.update(req.inbox_id, owner, ttl=req.ttl, ack=req.ack):
            return z(InboxRequest.UPDATE, _E.INBOX_NO_RECORDS)
        return z(InboxRequest.UPDATE, 0, inboxid=req.inbox_id)

    async def delete(self, caller: Caller, req: DeleteItem | DeleteAllItems) -> Message:
        if isinstance(req, DeleteItem):
            found = await self.items.delete(req.inbox_id, scope(caller))
        else:
            owner = scope(caller, req.user_id, req.entp_id)
            assert owner is not None
            found = await self.items.delete_all(owner) > 0
        return z(InboxRequest.DELETE, 0 if found else _E.INBOX_DELETE_NONE)

    # -- housekeeping -----------------------------------------------------------------

    async def purge_forever(
        self,
        every: float = PURGE_EVERY,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Delete expired items every *every* seconds, the first time at once."""
        task_status.started()
        while True:
            try:
                purged = await self.items.purge()
                if purged:
                    log.info("inbox purged items=%d", purged)
            except sqlite3.Error:
                log.exception("inbox purge failed; trying again later")
            await trio.sleep(every)


async def _failed(message: OutboxMessage, reason: str) -> None:
    log.warning("notification %s not sent: %s", message.key, reason)


async def _guard(req: InboxRequest, call: Awaitable[Message]) -> Message:
    """Await a handler's answer; a refusal or a database failure is its ``Z``."""
    try:
        return await call
    except _Refusal as refusal:
        return z(req, refusal.code)
    except StarwrsError as err:
        return z(req, err.code)
    except sqlite3.Error:
        log.exception("inbox %s failed", req.value)
        return z(req, _E.INBOX_STORED_PROCEDURE)


def make_inbox_proxy(inbox: Inbox) -> Proxy:
    """The inbox proxy: A (sync and bulk put), D, L, F (sync and bulk get), U."""
    proxy = Proxy("INBX", general_failure=_E.INBOX_STORED_PROCEDURE, name="inbox")

    @proxy.handles("A", "Z")
    async def add(caller: Caller, req: AddItem) -> Message:
        return await _guard(InboxRequest.ADD, inbox.confirm(caller, req))

    @proxy.handles("D", "Z")
    async def delete(caller: Caller, req: DeleteItem | DeleteAllItems) -> Message:
        return await _guard(InboxRequest.DELETE, inbox.delete(caller, req))

    @proxy.handles("L", "Z")
    async def list_items(caller: Caller, req: ListItems) -> Message:
        return await _guard(InboxRequest.LIST, inbox.list(caller, req))

    @proxy.handles("F", "Z")
    async def fetch(caller: Caller, req: FetchItem) -> Message:
        return await _guard(InboxRequest.FETCH, inbox.fetch(caller, req))

    @proxy.handles("U", "Z")
    async def update(caller: Caller, req: UpdateItem) -> Message:
        return await _guard(InboxRequest.UPDATE, inbox.update(caller, req))

    proxy.serves_get("F", "Z")(inbox.fetch_bulk)
    proxy.accepts_put("A", "Z")(inbox.put)
    return proxy


def mail_settings(deployment: Deployment) -> MailSettings:
    """Where the deployment's notifications go (``--smtp``, else ``STATE/mail``)."""
    relay = None
    if deployment.smtp:
        host, _, port = deployment.smtp.rpartition(":")
        relay = (host, int(port))
    web = deployment.web
    return MailSettings(
        smtp=relay,
        maildir=Path(deployment.state_dir) / "mail",
        pager_gateway=deployment.pager_gateway,
        web_url=f"https://{web.host}:{web.port}/",
    )


async def serve_inbox(
    deployment: Deployment,
    *,
    index: int = 0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the inbox on ``deployment.proxies["INBX"]`` until cancelled."""
    del index
    state = Path(deployment.state_dir)
    pki = load_pki(state)
    routes = {t: a for t, a in deployment.proxies.items() if t == "OE"}
    pool = ProxyPool(routes, pki.internal_client_context("inbox"), deployment.limits)
    home = state / "inbox"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        async with open_store(home / "inbox.db", MIGRATIONS) as db:
            outbox = Outbox(db)
            inbox = Inbox(db, home, outbox)
            notifier = Notifier(inbox.items, mail_settings(deployment), pool)
            set_outbox_source("inbox", inbox.items.outbox_reading)
            swept = await inbox.items.sweep()
            await inbox.items.release_leases()
            if swept:
                log.info("inbox removed %d files no item names", swept)
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    serve_proxy,
                    make_inbox_proxy(inbox),
                    deployment.proxies["INBX"],
                    pki.internal_server_context("inbox"),
                    deployment.limits,
                )
                await nursery.start(inbox.purge_forever)
                await nursery.start(partial(outbox.run, notifier.deliver, on_failed=_failed))
                task_status.started()
    finally:
        with trio.CancelScope(shield=True):
            await pool.aclose()
