# ruff: noqa: S608 -- SQL text is built from our own column lists; values are parameters
"""The collector's durable spool: what was read from which file, and every batch built
from it until the provider has it.  SQLite (``STATE/spool.db``, WAL, synchronous=FULL).

Theory of operation
-------------------
*Files* are known by their identity, ``(device, inode)``, not their name, so a log
rotation that renames ``Master.csv`` to ``Master.csv.1`` goes on reading the old file
where it stopped and starts the new one at 0.  A file whose first bytes changed (the
SHA-256 of its first ``head_len`` bytes) or that shrank below what was read was
replaced or truncated in place: it starts over at 0.  Each file row holds ``offset``
(bytes already in batches) and ``line`` (lines already in batches), its detected
format and the header lines its batches repeat.

*Batches* move ``built`` -> ``acknowledged`` (the harvest itself answered and named
the batch), ``sent`` (an SMTP relay took it: the provider's answer does not come back
by SMTP) or ``refused`` (a permanent 5xx, kept with the answer; ``--resend-refused``
puts it back).  The built message (signed and encrypted once) is stored with the
batch, so every attempt sends the same bytes with the same Message-ID.

**Nothing lost, nothing twice.**  A batch is inserted *in the same transaction* that
moves its file's offset past its bytes: after a crash, bytes are either in exactly one
batch or still unread.  A batch is marked sent only after the server's 250; a crash
between the two sends it again, and the provider applies a batch id once (it
acknowledges the repeat as a replay).  Back-off: ``min(300, 2**attempts)`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starwrs.storage.sqlite import Row, Store, Transaction, open_store

__all__ = ["BatchRow", "FileRow", "Spool", "open_spool"]

SPOOL_FILE = "spool.db"

MIGRATIONS = [
    """
CREATE TABLE files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    head TEXT NOT NULL DEFAULT '',
    head_len INTEGER NOT NULL DEFAULT 0,
    offset INTEGER NOT NULL DEFAULT 0,
    line INTEGER NOT NULL DEFAULT 0,
    format TEXT,
    header BLOB NOT NULL DEFAULT x'',
    header_lines INTEGER NOT NULL DEFAULT 0,
    seen REAL NOT NULL,
    UNIQUE (device, inode)
);
CREATE TABLE batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id TEXT NOT NULL UNIQUE,
    file_id INTEGER NOT NULL REFERENCES files,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    first_line INTEGER NOT NULL,
    records INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    digest TEXT NOT NULL,
    message BLOB,
    state TEXT NOT NULL DEFAULT 'built'
        CHECK (state IN ('built', 'sent', 'acknowledged', 'refused')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    reply TEXT,
    created REAL NOT NULL,
    done REAL
);
CREATE INDEX batches_due ON batches (state, next_attempt, seq);
""",
]

MAX_BACKOFF = 300.0


@dataclass(frozen=True, slots=True)
class FileRow:
    """What the spool knows of one file."""

    id: int
    path: str
    device: int
    inode: int
    head: str
    head_len: int
    offset: int
    line: int
    format: str | None
    header: bytes
    header_lines: int

    @classmethod
    def of(cls, row: Row) -> FileRow:
        return cls(
            row["id"],
            row["path"],
            row["device"],
            row["inode"],
            row["head"],
            row["head_len"],
            row["offset"],
            row["line"],
            row["format"],
            bytes(row["header"]),
            row["header_lines"],
        )


@dataclass(frozen=True, slots=True)
class BatchRow:
    """One batch in the spool."""

    seq: int
    batch_id: str
    path: str
    start: int
    end: int
    first_line: int
    records: int
    bytes: int
    state: str
    attempts: int
    next_attempt: float
    last_error: str | None
    reply: str | None
    created: float
    done: float | None


_BATCH_COLUMNS = (
    "b.seq, b.batch_id, f.path, b.start, b.end, b.first_line, b.records, b.bytes, b.state,"
    " b.attempts, b.next_attempt, b.last_error, b.reply, b.created, b.done"
)


def _batch(row: Row) -> BatchRow:
    return BatchRow(*tuple(row))


class Spool:
    """The spool of one collector state directory (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def file(self, device: int, inode: int) -> FileRow | None:
        row = await self.store.fetchone(
            "SELECT * FROM files WHERE device = ? AND inode = ?", (device, inode)
        )
        return FileRow.of(row) if row is not None else None

    async def start_file(
        self, path: str, device: int, inode: int, head: str, head_len: int
    ) -> FileRow:
        """Know a file from its beginning (new, or replaced / truncated in place)."""
        async with self.store.transaction() as tx:
            await tx.execute(
                "INSERT INTO files (path, device, inode, head, head_len, seen)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device, inode) DO UPDATE SET"
                " path = excluded.path, head = excluded.head, head_len = excluded.head_len,"
                " offset = 0, line = 0, format = NULL, header = x'', header_lines = 0,"
                " seen = excluded.seen",
                (path, device, inode, head, head_len, time.time()),
            )
            row = await tx.fetchone(
                "SELECT * FROM files WHERE device = ? AND inode = ?", (device, inode)
            )
        assert row is not None
        return FileRow.of(row)

    async def note_path(self, file_id: int, path: str, head: str, head_len: int) -> None:
        """The file's current name and a longer head hash (not durable: bookkeeping)."""
        await self.store.execute(
            "UPDATE files SET path = ?, head = ?, head_len = ?, seen = ? WHERE id = ?",
            (path, head, head_len, time.time(), file_id),
            durable=False,
        )

    async def advance(
        self,
        file_id: int,
        *,
        offset: int,
        line: int,
        fmt: str | None,
        header: bytes,
        header_lines: int,
        batch: tuple[str, int, int, int, int, int, str, bytes] | None = None,
    ) -> None:
        """Move a file's offset; with *batch* (id, start, end, first line, records,
        bytes, digest, message) insert that batch in the same transaction."""
        async with self.store.transaction() as tx:
            await self._advance(tx, file_id, offset, line, fmt, header, header_lines)
            if batch is not None:
                batch_id, start, end, first_line, records, size, digest, message = batch
                await tx.execute(
                    "INSERT INTO batches (batch_id, file_id, start, end, first_line, records,"
                    " bytes, digest, message, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        batch_id,
                        file_id,
                        start,
                        end,
                        first_line,
                        records,
                        size,
                        digest,
                        message,
                        time.time(),
                    ),
                )

    @staticmethod
    async def _advance(
        tx: Transaction,
        file_id: int,
        offset: int,
        line: int,
        fmt: str | None,
        header: bytes,
        header_lines: int,
    ) -> None:
        result = await tx.execute(
            "UPDATE files SET offset = ?, line = ?, format = ?, header = ?, header_lines = ?,"
            " seen = ? WHERE id = ? AND offset <= ?",
            (offset, line, fmt, header, header_lines, time.time(), file_id, offset),
        )
        if result.rowcount != 1:
            raise RuntimeError("the spool's file offset moved under us (two collectors?)")

    async def due(self, now: float) -> list[tuple[BatchRow, bytes]]:
        """Built batches whose next attempt is due, oldest first, with their message."""
        rows = await self.store.fetchall(
            f"SELECT {_BATCH_COLUMNS}, b.message FROM batches b JOIN files f ON f.id = b.file_id"
            " WHERE b.state = 'built' AND b.next_attempt <= ? ORDER BY b.seq",
            (now,),
        )
        values = [tuple(row) for row in rows]
        return [(BatchRow(*v[:-1]), bytes(v[-1])) for v in values]

    async def next_due(self) -> float | None:
        """When the next built batch may be attempted (None: nothing to send)."""
        row = await self.store.fetchone(
            "SELECT min(next_attempt) FROM batches WHERE state = 'built'"
        )
        return None if row is None or row[0] is None else float(row[0])

    async def finished(self, batch_id: str, state: str, reply: str) -> None:
        """The server answered: acknowledged, sent (a relay) or refused."""
        keep = state == "refused"  # a refused batch can be sent again later
        await self.store.execute(
            "UPDATE batches SET state = ?, reply = ?, done = ?, attempts = attempts + 1,"
            f" message = {'message' if keep else 'NULL'} WHERE batch_id = ?",
            (state, reply[:500], time.time(), batch_id),
        )

    async def failed(self, batch_id: str, error: str) -> float:
        """A transient failure: count it and back off; returns the delay."""
        row = await self.store.fetchone(
            "SELECT attempts FROM batches WHERE batch_id = ?", (batch_id,)
        )
        attempts = (row[0] if row else 0) + 1
        delay = min(MAX_BACKOFF, float(2 ** min(attempts, 16)))
        await self.store.execute(
            "UPDATE batches SET attempts = ?, next_attempt = ?, last_error = ? WHERE batch_id = ?",
            (attempts, time.time() + delay, error[:500], batch_id),
            durable=False,
        )
        return delay

    async def resend_refused(self) -> int:
        """Put refused batches back in the queue; how many."""
        result = await self.store.execute(
            "UPDATE batches SET state = 'built', next_attempt = 0, done = NULL"
            " WHERE state = 'refused' AND message IS NOT NULL"
        )
        return result.rowcount

    async def retry_now(self) -> None:
        """Make every built batch due now (an operator's ``send``)."""
        await self.store.execute(
            "UPDATE batches SET next_attempt = 0 WHERE state = 'built'", durable=False
        )

    async def batches(self, limit: int = 50) -> list[BatchRow]:
        rows = await self.store.fetchall(
            f"SELECT {_BATCH_COLUMNS} FROM batches b JOIN files f ON f.id = b.file_id"
            " ORDER BY b.seq DESC LIMIT ?",
            (limit,),
        )
        return [_batch(row) for row in rows]

    async def counts(self) -> dict[str, tuple[int, int]]:
        """state -> (batches, records)."""
        rows = await self.store.fetchall(
            "SELECT state, count(*), coalesce(sum(records), 0) FROM batches GROUP BY state"
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    async def files(self) -> list[FileRow]:
        rows = await self.store.fetchall("SELECT * FROM files ORDER BY path, id")
        return [FileRow.of(row) for row in rows]


@asynccontextmanager
async def open_spool(state: Path) -> AsyncIterator[Spool]:
    """Open (create, migrate) ``STATE/spool.db``."""
    async with open_store(state / SPOOL_FILE, MIGRATIONS) as store:
        yield Spool(store)
