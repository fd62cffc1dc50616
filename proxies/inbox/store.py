"""The inbox's database and files: ``STATE/inbox/`` (docs/runtime.md "The inbox").

Theory of operation
-------------------
One SQLite file, ``inbox.db`` (:data:`MIGRATIONS`), and two directories the seed
keeps apart ("the data and meta-data are separated to further secure the data"):
``data/`` with the report and call detail files, table ``data_files``, and
``meta/`` with the ``.mtd`` metadata files, table ``meta_files``.  Every file is
stored under a name the inbox chose (:func:`~.names.stored_name`); the sender's
LOC is kept as text and never opened.

* **halves** -- a bulk put of one half (:meth:`InboxStore.put_half`) first moves the
  checked, staged file to its final name, then, in one transaction: records the
  half as received (:func:`~starwrs.storage.outbox.accept_once`, so the same half
  twice is 5005 -- even after the item was deleted), inserts its row, and, if the
  item is now complete, inserts the item -- which assigns its INBOXID -- and calls
  the ``on_added`` hook in the same transaction (the server queues the
  notifications there, so an item and its notifications commit together).  A
  transaction that fails removes the file it placed; a crash between the move
  and the commit leaves an unreferenced file that :meth:`InboxStore.sweep` removes
  at the next start.
* **complete** -- a report or call detail item needs its data and its metadata; news
  and an item whose fulfilling server failed (``ERRFLAG=1``) the data only.  The
  item's fields come from the ``A`` of its metadata half if it has one (the Report
  Manager's, which knows the user's choices), else from its data half's.
* **owners** -- every read and change names the owner ``(USERID, ENTPID)`` it is
  for, and a row of another owner is not found: "another user's INBOXID answers
  exactly like a missing one".
* **deleting** -- an item's rows go in one transaction, its files after the commit
  (a crash in between leaves files :meth:`InboxStore.sweep` removes); the TTL purge
  (:meth:`InboxStore.purge`) deletes expired items, and halves that never found
  their other half within the default TTL, the same way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import trio
from starwrs.grammar import parse, serialize
from starwrs.grammar.catalogue import validate
from starwrs.grammar.catalogue_inbox import AddItem, ItemPart
from starwrs.grammar.vocab import ItemCategory
from starwrs.proxies.inbox.names import Loc, stored_name
from starwrs.runtime.metrics import OutboxReading
from starwrs.storage.outbox import OUTBOX_MIGRATION, RECEIVED_MIGRATION, accept_once
from starwrs.storage.sqlite import Row, Store, Transaction

__all__ = ["DEFAULT_TTL", "MIGRATIONS", "Added", "InboxStore", "Item", "Owner", "StoredFile"]

#: days an item is kept unless ``U`` says otherwise (Appendix G)
DEFAULT_TTL = 45
#: most rows one list answer carries (newest first)
MAX_LIST = 2000

MIGRATIONS: list[str] = [
    """
    CREATE TABLE data_files (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL,
        entp_id TEXT NOT NULL,
        item_key TEXT NOT NULL,
        name TEXT NOT NULL UNIQUE,
        loc TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        add_text TEXT NOT NULL,
        created REAL NOT NULL,
        UNIQUE (user_id, entp_id, item_key)
    );
    CREATE TABLE meta_files (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL,
        entp_id TEXT NOT NULL,
        item_key TEXT NOT NULL,
        name TEXT NOT NULL UNIQUE,
        loc TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        add_text TEXT NOT NULL,
        created REAL NOT NULL,
        UNIQUE (user_id, entp_id, item_key)
    );
    CREATE TABLE items (
        inbox_id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL,
        entp_id TEXT NOT NULL,
        item_key TEXT NOT NULL,
        category TEXT NOT NULL CHECK (category IN ('R', 'D', 'F')),
        type TEXT NOT NULL,
        title TEXT NOT NULL,
        rpt_category TEXT NOT NULL DEFAULT '',
        rpt_id TEXT NOT NULL DEFAULT '',
        request_id INTEGER,
        requested TEXT NOT NULL DEFAULT '',
        compress INTEGER NOT NULL DEFAULT 0,
        err_flag INTEGER NOT NULL DEFAULT 0,
        priority INTEGER,
        data_id INTEGER NOT NULL REFERENCES data_files (id),
        meta_id INTEGER REFERENCES meta_files (id),
        created REAL NOT NULL,
        ttl INTEGER NOT NULL,
        expires REAL NOT NULL,
        ack INTEGER NOT NULL DEFAULT 0,
        confirmed INTEGER NOT NULL DEFAULT 0,
        UNIQUE (user_id, entp_id, item_key)
    );
    CREATE INDEX items_owner ON items (user_id, entp_id, category, inbox_id);
    CREATE INDEX items_expires ON items (expires);
    CREATE TABLE notified (
        key TEXT PRIMARY KEY,
        message_id TEXT NOT NULL,
        address TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('sending', 'sent')),
        attempts INTEGER NOT NULL DEFAULT 1,
        at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    OUTBOX_MIGRATION,
    RECEIVED_MIGRATION,
]

#: the owner of an item: (USERID, ENTPID)
Owner = tuple[str, str]

_ITEM_SELECT = (
    "SELECT i.*, d.name AS data_name, d.size AS fsize, d.sha256 AS data_sha256,"
    " m.name AS meta_name, m.size AS msize, m.sha256 AS meta_sha256"
    " FROM items i JOIN data_files d ON d.id = i.data_id"
    " LEFT JOIN meta_files m ON m.id = i.meta_id"
)


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One stored file of an item: where it is, how big, its SHA-256."""

    path: Path
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Item:
    """One inbox item as the list and fetch answers need it."""

    inbox_id: int
    user_id: str
    entp_id: str
    category: str
    type: str
    title: str
    rpt_category: str
    rpt_id: str
    request_id: int | None
    requested: str
    compress: bool
    err_flag: bool
    fsize: int
    msize: int
    created: float
    ttl: int
    expires: float
    ack: bool
    data: StoredFile
    meta: StoredFile | None


@dataclass(frozen=True, slots=True)
class Added:
    """What storing a half (or a synchronous ``A``) did.

    Attributes:
        inbox_id: the item's INBOXID once it exists (None while a half is missing).
        duplicate: the half (or the add) was there before: nothing was changed (5005).
        data: the stored data half, when there is one.
        meta_missing: the data is there but the metadata the item needs is not.
    """

    inbox_id: int | None
    duplicate: bool = False
    data: StoredFile | None = None
    meta_missing: bool = False


#: called in the transaction that adds an item (the server queues notifications)
AddedHook = Callable[[Transaction, Item, AddItem], Awaitable[None]]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _place(staged: Path, final: Path) -> None:
    """Move a complete staged file to its final name, durably."""
    with staged.open("rb") as file:
        os.fsync(file.fileno())
    os.replace(staged, final)
    _fsync_dir(final.parent)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


class InboxStore:
    """The inbox's items and files over an open :class:`Store` (see the module doc).

    Args:
        store: ``STATE/inbox/inbox.db`` opened with :data:`MIGRATIONS`.
        home: ``STATE/inbox``; ``data/``, ``meta/`` and ``staging/`` are made in it.
        on_added: the hook called in the transaction that adds an item.
        ttl: the default time to live, days.
        clock: wall-clock seconds (``time.time``).
    """

    def __init__(
        self,
        store: Store,
        home: Path,
        *,
        on_added: AddedHook | None = None,
        ttl: int = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.home = home
        self.data_dir = home / "data"
        self.meta_dir = home / "meta"
        self.staging = home / "staging"
        for folder in (self.data_dir, self.meta_dir, self.staging):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.on_added = on_added
        self.ttl = ttl
        self.clock = clock

    # -- adding -----------------------------------------------------------------------

    async def put_half(
        self, add: AddItem, part: ItemPart, loc: Loc, staged: Path, sha256: str
    ) -> Added:
        """Keep a staged, checked half; add the item if it is now complete."""
        folder = self.meta_dir if part is ItemPart.METADATA else self.data_dir
        table = "meta_files" if part is ItemPart.METADATA else "data_files"
        final = folder / stored_name(part)
        await trio.to_thread.run_sync(_place, staged, final)
        owner = (add.user_id, add.entp_id)
        now = self.clock()
        size = final.stat().st_size
        try:
            async with self.store.transaction() as tx:
                if await accept_once(tx, f"A.{part.value}", _dedup(owner, loc.key)):
                    await tx.execute(
                        f"INSERT INTO {table} (user_id, entp_id, item_key, name, loc, size,"  # noqa: S608 - one of two constants
                        " sha256, add_text, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (*owner, loc.key, final.name, add.loc, size, sha256, _text(add), now),
                    )
                    added = Added(await self._complete(tx, owner, loc.key))
                    if added.inbox_id is None and part is ItemPart.METADATA:
                        added = Added(await self._attach_metadata(tx, owner, loc.key))
                else:  # the same half again: nothing changes
                    added = Added(await self._item_id(tx, owner, loc.key), duplicate=True)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_unlink_all, [final])
            raise
        if added.duplicate:
            await trio.to_thread.run_sync(_unlink_all, [final])
        return added

    async def confirm(self, add: AddItem, loc: Loc) -> Added:
        """A synchronous ``A``: 0 the first time for an added item, else 5005 / 5163 / 5166."""
        owner = (add.user_id, add.entp_id)
        async with self.store.transaction() as tx:
            row = await tx.fetchone(
                "SELECT inbox_id, confirmed FROM items WHERE user_id = ? AND entp_id = ?"
                " AND item_key = ?",
                (*owner, loc.key),
            )
            if row is None:
                data = await tx.fetchone(
                    "SELECT name, size, sha256 FROM data_files WHERE user_id = ? AND entp_id = ?"
                    " AND item_key = ?",
                    (*owner, loc.key),
                )
                if data is None:
                    return Added(None)
                inbox_id = await self._complete(tx, owner, loc.key, sync_add=add)
                if inbox_id is None:
                    stored = StoredFile(self.data_dir / data["name"], data["size"], data["sha256"])
                    return Added(None, data=stored, meta_missing=True)
            elif row["confirmed"]:
                return Added(row["inbox_id"], duplicate=True)
            else:
                inbox_id = row["inbox_id"]
            await tx.execute("UPDATE items SET confirmed = 1 WHERE inbox_id = ?", (inbox_id,))
        return Added(inbox_id)

    async def _item_id(self, tx: Transaction, owner: Owner, key: str) -> int | None:
        row = await tx.fetchone(
            "SELECT inbox_id FROM items WHERE user_id = ? AND entp_id = ? AND item_key = ?",
            (*owner, key),
        )
        return None if row is None else int(row[0])

    async def _complete(
        self, tx: Transaction, owner: Owner, key: str, sync_add: AddItem | None = None
    ) -> int | None:
        """Add the item of *key* if it is complete and not added yet; its INBOXID or None."""
        if await self._item_id(tx, owner, key) is not None:
            return None
        params = (*owner, key)
        data = await tx.fetchone(
            "SELECT * FROM data_files WHERE user_id = ? AND entp_id = ? AND item_key = ?", params
        )
        if data is None:
            return None
        meta = await tx.fetchone(
            "SELECT * FROM meta_files WHERE user_id = ? AND entp_id = ? AND item_key = ?", params
        )
        add = sync_add or _typed(meta["add_text"] if meta is not None else data["add_text"])
        needs_meta = add.category is not ItemCategory.NEWS and not add.err_flag
        if needs_meta and meta is None:
            return None
        now = self.clock()
        requested = add.requested.strftime("%Y-%m-%d %H:%M") if add.requested else ""
        result = await tx.execute(
            "INSERT INTO items (user_id, entp_id, item_key, category, type, title, rpt_category,"
            " rpt_id, request_id, requested, compress, err_flag, priority, data_id, meta_id,"
            " created, ttl, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                *owner,
                key,
                add.category.value,
                add.type,
                add.title,
                add.report_category or "",
                add.report_id or "",
                add.request_id,
                requested,
                int(add.compress),
                int(add.err_flag),
                int(add.priority) if add.priority is not None else None,
                data["id"],
                meta["id"] if meta is not None else None,
                now,
                self.ttl,
                now + self.ttl * 86400.0,
            ),
        )
        inbox_id = int(result.lastrowid or 0)
        item = await self._one(tx, inbox_id)
        if self.on_added is not None and item is not None:
            await self.on_added(tx, item, add)
        return inbox_id

    async def _attach_metadata(self, tx: Transaction, owner: Owner, key: str) -> int | None:
        """A metadata half for an item added without one (ERRFLAG): attach it."""
        inbox_id = await self._item_id(tx, owner, key)
        if inbox_id is None:
            return None
        await tx.execute(
            "UPDATE items SET meta_id = (SELECT id FROM meta_files WHERE user_id = ?"
            " AND entp_id = ? AND item_key = ?) WHERE inbox_id = ? AND meta_id IS NULL",
            (*owner, key, inbox_id),
        )
        return inbox_id

    # -- reading ----------------------------------------------------------------------

    def _item(self, row: Row) -> Item:
        meta = None
        if row["meta_name"] is not None:
            meta = StoredFile(self.meta_dir / row["meta_name"], row["msize"], row["meta_sha256"])
        return Item(
            inbox_id=row["inbox_id"],
            user_id=row["user_id"],
            entp_id=row["entp_id"],
            category=row["category"],
            type=row["type"],
            title=row["title"],
            rpt_category=row["rpt_category"],
            rpt_id=row["rpt_id"],
            request_id=row["request_id"],
            requested=row["requested"],
            compress=bool(row["compress"]),
            err_flag=bool(row["err_flag"]),
            fsize=row["fsize"],
            msize=row["msize"] or 0,
            created=row["created"],
            ttl=row["ttl"],
            expires=row["expires"],
            ack=bool(row["ack"]),
            data=StoredFile(self.data_dir / row["data_name"], row["fsize"], row["data_sha256"]),
            meta=meta,
        )

    async def _one(self, tx: Transaction, inbox_id: int) -> Item | None:
        row = await tx.fetchone(_ITEM_SELECT + " WHERE i.inbox_id = ?", (inbox_id,))
        return None if row is None else self._item(row)

    async def item(self, inbox_id: int, owner: Owner | None) -> Item | None:
        """The item *inbox_id* if *owner* owns it (None: any owner -- operations)."""
        if owner is None:
            row = await self.store.point_fetchone(
                _ITEM_SELECT + " WHERE i.inbox_id = ?", (inbox_id,)
            )
        else:
            row = await self.store.point_fetchone(
                _ITEM_SELECT + " WHERE i.inbox_id = ? AND i.user_id = ? AND i.entp_id = ?",
                (inbox_id, *owner),
            )
        return None if row is None else self._item(row)

    async def list_items(self, owner: Owner, category: str, after: int | None) -> list[Item]:
        """*owner*'s items of *category*, newest first, only those after *after* if given."""
        rows = await self.store.fetchall(
            _ITEM_SELECT + " WHERE i.user_id = ? AND i.entp_id = ? AND i.category = ?"
            " AND i.inbox_id > ? ORDER BY i.inbox_id DESC LIMIT ?",
            (*owner, category, after or 0, MAX_LIST),
        )
        return [self._item(row) for row in rows]

    # -- changing ---------------------------------------------------------------------

    async def update(
        self, inbox_id: int, owner: Owner | None, *, ttl: int | None, ack: bool
    ) -> bool:
        """Acknowledge (or not) an item and change its TTL; False when not found."""
        sql = "UPDATE items SET ack = ?"
        params: list[object] = [int(ack)]
        if ttl is not None:
            sql += ", ttl = ?, expires = created + ? * 86400.0"
            params += [ttl, ttl]
        sql += " WHERE inbox_id = ?"
        params.append(inbox_id)
        if owner is not None:
            sql += " AND user_id = ? AND entp_id = ?"
            params += list(owner)
        result = await self.store.execute(sql, params)
        return result.rowcount == 1

    async def delete(self, inbox_id: int, owner: Owner | None) -> bool:
        """Delete one item and free its files; False when not found."""
        where, params = "i.inbox_id = ?", list[object]([inbox_id])
        if owner is not None:
            where += " AND i.user_id = ? AND i.entp_id = ?"
            params += list(owner)
        return await self._delete_where(where, params) == 1

    async def delete_all(self, owner: Owner) -> int:
        """Delete every item of *owner*; how many."""
        return await self._delete_where("i.user_id = ? AND i.entp_id = ?", list(owner))

    async def _delete_where(self, where: str, params: list[object]) -> int:
        paths: list[Path] = []
        async with self.store.transaction() as tx:
            rows = await tx.fetchall(_ITEM_SELECT + " WHERE " + where, params)
            for row in rows:
                item = self._item(row)
                paths += [item.data.path, *([item.meta.path] if item.meta else [])]
                await tx.execute("DELETE FROM items WHERE inbox_id = ?", (item.inbox_id,))
                await tx.execute("DELETE FROM data_files WHERE id = ?", (row["data_id"],))
                if row["meta_id"] is not None:
                    await tx.execute("DELETE FROM meta_files WHERE id = ?", (row["meta_id"],))
        await trio.to_thread.run_sync(_unlink_all, paths)
        return len(rows)

    async def purge(self) -> int:
        """Delete expired items and stale lone halves with their files; items deleted."""
        now = self.clock()
        items = await self._delete_where("i.expires <= ?", [now])
        stale = now - self.ttl * 86400.0
        paths: list[Path] = []
        async with self.store.transaction() as tx:
            for table, folder, column in (
                ("data_files", self.data_dir, "data_id"),
                ("meta_files", self.meta_dir, "meta_id"),
            ):
                lone = (
                    f" FROM {table} WHERE created <= ? AND id NOT IN"  # noqa: S608 - constants
                    f" (SELECT {column} FROM items WHERE {column} IS NOT NULL)"
                )
                rows = await tx.fetchall("SELECT name" + lone, (stale,))
                paths += [folder / row["name"] for row in rows]
                await tx.execute("DELETE" + lone, (stale,))
        await trio.to_thread.run_sync(_unlink_all, paths)
        return items

    async def sweep(self) -> int:
        """Remove files no row names (a crash between a move and its commit) and staging."""
        known: set[str] = set()
        for table in ("data_files", "meta_files"):
            rows = await self.store.fetchall(f"SELECT name FROM {table}")  # noqa: S608
            known.update(row["name"] for row in rows)

        def sweep() -> int:
            removed = 0
            for folder in (self.data_dir, self.meta_dir, self.staging):
                for path in folder.iterdir():
                    if folder is self.staging or path.name not in known:
                        path.unlink(missing_ok=True)
                        removed += 1
            return removed

        return await trio.to_thread.run_sync(sweep)

    # -- notifications: what was sent -------------------------------------------------

    async def notified(self, key: str) -> str | None:
        """``sending`` / ``sent`` for a notification key, or None (never attempted)."""
        row = await self.store.point_fetchone("SELECT state FROM notified WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def sending(self, key: str, message_id: str, address: str) -> None:
        """Record that an attempt is about to send *key* (its outcome may stay unknown)."""
        await self.store.execute(
            "INSERT INTO notified (key, message_id, address, state, at)"
            " VALUES (?, ?, ?, 'sending', ?) ON CONFLICT (key) DO UPDATE SET"
            " attempts = attempts + 1, address = excluded.address, at = excluded.at",
            (key, message_id, address, self.clock()),
        )

    async def sent(self, key: str, outbox_id: int) -> None:
        """Record *key* as sent and take it out of the outbox, in one transaction."""
        async with self.store.transaction() as tx:
            await tx.execute(
                "UPDATE notified SET state = 'sent', at = ? WHERE key = ?", (self.clock(), key)
            )
            await tx.execute("DELETE FROM outbox WHERE id = ?", (outbox_id,))

    async def release_leases(self) -> int:
        """At start: the leases of a predecessor that died are void (one inbox per outbox).

        The outbox would wait a lease out before delivering again; only this
        process delivers this outbox, so an attempt still leased at its start
        belonged to a process that is gone.
        """
        result = await self.store.execute(
            "UPDATE outbox SET lease_until = 0 WHERE state = 'pending' AND lease_until > 0"
        )
        return result.rowcount

    def outbox_reading(self) -> OutboxReading:
        """The outbox's depth, age and parked messages now (the metrics scrape)."""
        rows = self.store.fetch_now(
            "SELECT subject, state, COUNT(*), MIN(created) FROM outbox GROUP BY subject, state"
        )
        if rows is None:
            return None
        now = self.clock()
        pending: dict[str, int] = {}
        oldest: dict[str, float] = {}
        failed: dict[str, int] = {}
        for subject, state, count, created in rows:
            if state == "pending":
                pending[subject] = count
                oldest[subject] = max(0.0, now - created)
            else:
                failed[subject] = count
        return pending, oldest, failed


def _dedup(owner: Owner, key: str) -> str:
    return f"{owner[0]}@{owner[1]}/{key}"


def _text(add: AddItem) -> str:
    return serialize(add.to_message())


def _typed(text: str) -> AddItem:
    typed = validate(parse(text), "INBX")
    assert isinstance(typed, AddItem)
    return typed
