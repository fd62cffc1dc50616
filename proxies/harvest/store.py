"""The harvest's store ``STATE/harvest/harvest.db``: enrolled collectors, the audit trail,
the batches applied, the quarantine of rejected records, and the news outbox.

Theory of operation
-------------------
* ``collectors`` -- one row per enrolled collector certificate, keyed by its SHA-256
  fingerprint: the enterprise and corp its batches belong to, the PEM, when it was
  enrolled and, once revoked, when and why.  A revoked row stays: a batch signed by it
  is refused as *revoked*, not as unknown.  ``starwrs admin collector enroll`` /
  ``revoke`` write here directly (the harvest reads the rows for every message, so a
  change applies to the next one, whether or not the system is running).
* ``audit`` -- one row per message received or refused (non-repudiation, seed 001
  Figure 8): when, how (``smtp``), from whom (peer address, MAIL FROM, recipients,
  the signer's fingerprint and subject), its size and SHA-256, the batch id and
  enterprise, the **signed digest** (the SHA-256 of the batch as signed, the DER of the
  signed attributes and the signature: anyone holding the collector's certificate can
  check that the collector signed exactly that digest), the counts accepted /
  rejected / skipped, and the result: ``applied``, ``replayed``, ``refused``,
  ``deferred`` (try again) or ``loading`` (in progress) -- with the reason.
* ``batches`` -- a batch id once it has been taken: its digest and state
  (``loading``, then ``applied``).  A batch id is applied once.
* ``quarantine`` -- each rejected record: batch, file, line, reason, the raw record.
* ``outbox`` (:mod:`starwrs.storage.outbox`) -- the news to send to the customer about
  a batch with rejections, put in the transaction that marks it applied.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from starwrs.collector.identity import fingerprint
from starwrs.storage.outbox import OUTBOX_MIGRATION
from starwrs.storage.sqlite import Row, Store, Transaction, open_store

__all__ = ["AuditEntry", "Enrollment", "HarvestStore", "harvest_db", "open_harvest_store"]

MIGRATIONS = [
    """
CREATE TABLE collectors (
    fingerprint TEXT PRIMARY KEY,
    entp_id TEXT NOT NULL,
    corp_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    cert BLOB NOT NULL,
    enrolled REAL NOT NULL,
    revoked REAL,
    revoked_reason TEXT
);
CREATE INDEX collectors_entp ON collectors (entp_id);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received REAL NOT NULL,
    channel TEXT NOT NULL,
    peer TEXT,
    mail_from TEXT,
    rcpt TEXT,
    message_id TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    message_sha256 TEXT,
    batch_id TEXT,
    entp_id TEXT,
    corp_id TEXT,
    signer TEXT,
    signer_subject TEXT,
    digest_alg TEXT,
    digest TEXT,
    signed_attrs BLOB,
    signature BLOB,
    signing_time TEXT,
    format TEXT,
    source TEXT,
    records INTEGER,
    accepted INTEGER,
    rejected INTEGER,
    skipped INTEGER,
    result TEXT NOT NULL
        CHECK (result IN ('applied', 'replayed', 'refused', 'deferred', 'loading')),
    kind TEXT,
    reason TEXT,
    finished REAL
);
CREATE INDEX audit_batch ON audit (batch_id);
CREATE TABLE batches (
    batch_id TEXT PRIMARY KEY,
    entp_id TEXT NOT NULL,
    corp_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('loading', 'applied')),
    audit_id INTEGER NOT NULL,
    partition INTEGER NOT NULL,
    accepted INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    started REAL NOT NULL,
    applied REAL
);
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id TEXT NOT NULL,
    file TEXT NOT NULL,
    line INTEGER NOT NULL,
    reason TEXT NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX quarantine_batch ON quarantine (batch_id);
""",
    OUTBOX_MIGRATION,
]


def harvest_db(state_dir: Path) -> Path:
    """``STATE/harvest/harvest.db``."""
    return Path(state_dir) / "harvest" / "harvest.db"


@dataclass(frozen=True, slots=True)
class Enrollment:
    """One enrolled collector certificate."""

    fingerprint: str
    entp_id: str
    corp_id: str
    subject: str
    cert: x509.Certificate
    enrolled: float
    revoked: float | None
    revoked_reason: str | None

    @classmethod
    def of(cls, row: Row) -> Enrollment:
        return cls(
            row["fingerprint"],
            row["entp_id"],
            row["corp_id"],
            row["subject"],
            x509.load_pem_x509_certificate(bytes(row["cert"])),
            row["enrolled"],
            row["revoked"],
            row["revoked_reason"],
        )


@dataclass
class AuditEntry:
    """The columns of one audit row (what is known so far)."""

    channel: str
    received: float
    peer: str | None = None
    mail_from: str | None = None
    rcpt: str | None = None
    message_id: str | None = None
    size: int = 0
    message_sha256: str | None = None
    batch_id: str | None = None
    entp_id: str | None = None
    corp_id: str | None = None
    signer: str | None = None
    signer_subject: str | None = None
    digest_alg: str | None = None
    digest: str | None = None
    signed_attrs: bytes | None = None
    signature: bytes | None = None
    signing_time: str | None = None
    format: str | None = None
    source: str | None = None
    records: int | None = None
    accepted: int | None = None
    rejected: int | None = None
    skipped: int | None = None
    result: str = "refused"
    kind: str | None = None
    reason: str | None = None

    def columns(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class HarvestStore:
    """The harvest's SQLite store (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- collectors ----------------------------------------------------------------

    async def enroll(self, entp_id: str, corp_id: str, cert: x509.Certificate) -> str:
        """Enroll *cert* for the enterprise and corp (again: re-enrolled, un-revoked)."""
        fp = fingerprint(cert)
        await self.store.execute(
            "INSERT INTO collectors (fingerprint, entp_id, corp_id, subject, cert, enrolled)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO UPDATE SET"
            " entp_id = excluded.entp_id, corp_id = excluded.corp_id,"
            " enrolled = excluded.enrolled, revoked = NULL, revoked_reason = NULL",
            (
                fp,
                entp_id,
                corp_id,
                cert.subject.rfc4514_string(),
                cert.public_bytes(serialization.Encoding.PEM),
                time.time(),
            ),
        )
        return fp

    async def revoke(self, fp: str, reason: str, entp_id: str | None = None) -> int:
        """Revoke the collector(s) whose fingerprint starts with *fp*; how many."""
        sql = (
            "UPDATE collectors SET revoked = ?, revoked_reason = ?"
            " WHERE fingerprint LIKE ? || '%' AND revoked IS NULL"
        )
        params: list[Any] = [time.time(), reason, fp.lower()]
        if entp_id is not None:
            sql += " AND entp_id = ?"
            params.append(entp_id)
        result = await self.store.execute(sql, params)
        return result.rowcount

    async def collectors(self, entp_id: str | None = None) -> list[Enrollment]:
        sql = "SELECT * FROM collectors"
        params: tuple[str, ...] = ()
        if entp_id is not None:
            sql += " WHERE entp_id = ?"
            params = (entp_id,)
        rows = await self.store.fetchall(sql + " ORDER BY entp_id, enrolled", params)
        return [Enrollment.of(row) for row in rows]

    # -- audit ---------------------------------------------------------------------

    async def audit(self, entry: AuditEntry, tx: Transaction | None = None) -> int:
        """Insert an audit row; its id."""
        columns = entry.columns()
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO audit ({names}, finished) VALUES ({marks}, ?)"  # noqa: S608
        params = (*columns.values(), None if entry.result == "loading" else time.time())
        result = await (tx.execute(sql, params) if tx else self.store.execute(sql, params))
        assert result.lastrowid is not None
        return result.lastrowid

    async def finish_audit(
        self, tx: Transaction, audit_id: int, result: str, reason: str | None, **counts: int
    ) -> None:
        sets = ", ".join(f"{name} = ?" for name in counts)
        await tx.execute(
            f"UPDATE audit SET result = ?, reason = ?, finished = ?{', ' if sets else ''}{sets}"  # noqa: S608
            " WHERE id = ?",
            (result, reason, time.time(), *counts.values(), audit_id),
        )

    async def audit_rows(self, limit: int = 100, batch_id: str | None = None) -> list[Row]:
        if batch_id is not None:
            return await self.store.fetchall(
                "SELECT * FROM audit WHERE batch_id = ? ORDER BY id", (batch_id,)
            )
        return await self.store.fetchall("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))

    # -- batches -------------------------------------------------------------------

    async def batch(self, batch_id: str) -> Row | None:
        return await self.store.fetchone("SELECT * FROM batches WHERE batch_id = ?", (batch_id,))

    async def loading(self) -> list[Row]:
        return await self.store.fetchall(
            "SELECT * FROM batches WHERE state = 'loading' ORDER BY started"
        )

    async def quarantined(self, batch_id: str) -> list[Row]:
        return await self.store.fetchall(
            "SELECT file, line, reason, record FROM quarantine WHERE batch_id = ? ORDER BY id",
            (batch_id,),
        )

    @staticmethod
    async def quarantine(
        tx: Transaction, batch_id: str, rows: Sequence[tuple[str, int, str, bytes]]
    ) -> None:
        await tx.execute("DELETE FROM quarantine WHERE batch_id = ?", (batch_id,))
        await tx.executemany(
            "INSERT INTO quarantine (batch_id, file, line, reason, record) VALUES (?, ?, ?, ?, ?)",
            [(batch_id, *row) for row in rows],
        )


@asynccontextmanager
async def open_harvest_store(state_dir: Path) -> AsyncIterator[HarvestStore]:
    """Open (create, migrate) ``STATE/harvest/harvest.db``."""
    path = harvest_db(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    async with open_store(path, MIGRATIONS) as store:
        yield HarvestStore(store)
