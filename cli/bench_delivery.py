"""``starwrs bench delivery``: guaranteed delivery against bare durable SQLite commits.

Rows (part one of issue 12's delivery benchmark), each against the same baseline
measured in the same run on the same disk -- ``sqlite3`` inserts committed one by
one with ``synchronous=FULL`` in WAL mode, the cheapest a durable message can be:

* ``outbox put (FULL)`` -- messages a sender can commit into its outbox per second
  (:meth:`~starwrs.storage.outbox.Outbox.put`, each its own transaction: the point
  where a message "counts as sent");
* ``outbox put+deliver (FULL)`` -- messages per second through the whole outbox:
  put, leased, handed to a receiver that acknowledges at once, removed.  Senders
  put while the outbox delivers, as in a running server.

The files live in a temporary directory under ``--dir`` (default: the current
directory, so the numbers are the disk's the state directory is on, not a RAM
disk's).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path

import trio
from starwrs.cli.benchkit import Result, compare
from starwrs.storage.outbox import OUTBOX_MIGRATION, Delivered, Outbox, OutboxMessage, Outcome
from starwrs.storage.sqlite import open_store

__all__ = ["context", "run"]

#: bytes of one message (an ARD envelope is a few hundred)
PAYLOAD = b"x" * 300
#: the subjects messages are spread over (destinations, FIFO within each)
SUBJECTS = 4


def _bare_inserts(path: Path, n: int) -> float:
    """Inserts per second, each committed alone, ``synchronous=FULL`` (the baseline)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, key TEXT, payload BLOB)")
        start = time.perf_counter()
        for i in range(n):
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO messages (key, payload) VALUES (?, ?)", (str(i), PAYLOAD))
            db.execute("COMMIT")
        return n / (time.perf_counter() - start)
    finally:
        db.close()


async def _outbox_puts(path: Path, n: int) -> float:
    async with open_store(path, [OUTBOX_MIGRATION]) as store:
        outbox = Outbox(store)
        start = time.perf_counter()
        for i in range(n):
            await outbox.put(f"s{i % SUBJECTS}", str(i), "BENCH", PAYLOAD)
        return n / (time.perf_counter() - start)


async def _outbox_through(path: Path, n: int) -> float:
    async with open_store(path, [OUTBOX_MIGRATION]) as store:
        outbox = Outbox(store)
        delivered = 0

        async def receive(message: OutboxMessage) -> Outcome:
            nonlocal delivered
            delivered += 1
            return Delivered()

        async with trio.open_nursery() as nursery:
            await nursery.start(outbox.run, receive)
            start = time.perf_counter()
            for i in range(n):
                await outbox.put(f"s{i % SUBJECTS}", str(i), "BENCH", PAYLOAD)
            with trio.fail_after(600):
                while (await outbox.stats()).pending:
                    await outbox.settled()
            elapsed = time.perf_counter() - start
            nursery.cancel_scope.cancel()
        if delivered != n:
            raise RuntimeError(f"delivered {delivered} of {n}")
        return n / elapsed


def context() -> str:
    """What the numbers were measured on."""
    return f"delivery: files in {_where()} (SQLite {sqlite3.sqlite_version}, WAL, synchronous=FULL)"


def _where() -> Path:
    return Path(os.environ.get("STARWRS_BENCH_DIR") or Path.cwd()).resolve()


def run(quick: bool = False) -> list[Result]:
    """Measure the outbox against bare durable inserts, same run, same disk."""
    n = 150 if quick else 1500
    with tempfile.TemporaryDirectory(prefix="starwrs-bench-", dir=_where()) as tmp:
        folder = Path(tmp)
        bare = _bare_inserts(folder / "bare.db", n)
        puts = trio.run(_outbox_puts, folder / "puts.db", n)
        through = trio.run(_outbox_through, folder / "through.db", n)
        bare_again = _bare_inserts(folder / "bare2.db", n)  # the disk may have changed pace
    baseline = max(bare, bare_again)
    name = "sqlite3 insert+commit (FULL)"
    return [
        compare("outbox put (FULL)", puts, "msg/s", name, baseline),
        compare("outbox put+deliver (FULL)", through, "msg/s", name, baseline),
    ]
