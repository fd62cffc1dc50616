"""One message in, at most one load out: verify, decrypt, refuse replays, read, rate, load.

Theory of operation
-------------------
:meth:`Harvest.receive` takes a whole message (the SMTP DATA, or a bulk put's file)
and answers like SMTP: 250 when the harvest has taken responsibility for it, 554 when
it refuses it for good (with the reason), 451 when the sender should try again.
Every outcome is one row in the audit trail (:mod:`.store`).  In order:

1. **decrypt** with the harvest's RSA key (:func:`starwrs.collector.smime.decrypt`):
   not encrypted, not encrypted to us, or not decryptable is refused;
2. **verify** the signature against every enrolled collector certificate (revoked
   ones included, so that a revoked signer is told apart from an unknown one): not
   signed, an altered content, an unknown signer, a revoked signer are refused;
3. **read** the signed content as a batch (:mod:`starwrs.collector.batch`); its
   enterprise must be the one the signer is enrolled for ("wrongly addressed"
   otherwise), and its sender's recipients must all be the harvest mailbox;
4. **once** -- under a lock per batch id: an id already taken with the same digest is
   a replay, acknowledged (250) and not applied again; with another digest it is
   refused;
5. **records** -- the body is read with the collector's readers (format, time zone,
   file date from the headers), in bulk (:func:`~starwrs.collector.readers.columnar.\
   read_table`: what the readers yield, as one table); each record that does not read
   is *quarantined* with its file, line and reason; a ``call_id`` seen twice in one
   batch (with the same start) is quarantined as a duplicate; the calls, an Arrow
   table of ``Call``'s columns, are
   **rated** (:func:`starwrs.proxies.harvest.rating.rate_calls`, numbers to E.164,
   times to GMT, durations to minutes, geography, usage, price): its rejections are
   quarantined too, its skipped calls (internal, unanswered) only counted;
6. **commit** -- the priced rows are written to ``STATE/harvest/loading/<batch>.arrows``
   (fsync), then one transaction records the batch as ``loading``, its audit row and
   its quarantine.  From here the harvest owns the batch: the answer is 250 even if
   the load below has to wait;
7. **load** -- a bulk put ``LOAD<CORP=c,BATCH=id>`` to the corp's partition's DSS
   (the partition from ``partitions.json``); the DSS loads a batch id once, so a load
   repeated after a crash (the answer lost, or this process killed in between) does
   not load twice.  Then one transaction marks the batch ``applied``, finishes its
   audit row and -- when records were rejected -- puts a news item for the customer
   into the outbox (sent by :mod:`.news`).  A load that fails is retried by
   :meth:`Harvest.resume` with back-off, which also finishes, at start, every batch a
   killed process left ``loading``.

A refusal never loads anything.  Fault injection for the kill tests: a file
``STATE/harvest/faults/after-load`` makes the process SIGKILL itself once right after
the DSS answered a load (before the batch is marked applied).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import msgpack
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import trio
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from starwrs.collector import batch as batches
from starwrs.collector import smime
from starwrs.collector.identity import fingerprint
from starwrs.collector.readers.columnar import read_table
from starwrs.proxies.harvest.store import AuditEntry, HarvestStore
from starwrs.storage.datamart.export import write_ipc
from starwrs.storage.datamart.partitions import read_partition_map, write_partition_map
from starwrs.storage.outbox import Outbox

__all__ = ["Answer", "Harvest", "LoadFailed", "Loader", "Rater", "fsync_file"]

log = logging.getLogger("starwrs.harvest")

NEWS_SUBJECT = "news"
#: rejections listed in a news item (the rest are counted)
NEWS_LINES = 20
RESUME_BASE = 1.0
RESUME_MAX = 60.0


@dataclass(frozen=True, slots=True)
class Answer:
    """The harvest's answer, SMTP-style: a code and one line of text."""

    code: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300


class LoadFailed(Exception):
    """A load did not happen (the DSS is down, or refused it)."""


class Loader(Protocol):
    """Loads one staged batch into a partition (exactly once per batch id)."""

    async def load(self, partition: int, corp_id: str, batch_id: str, path: Path) -> int: ...


#: rate_calls(calls, entp_id=, corp_id=, state_dir=) -> Rated (``.priced``, ``.rejected``,
#: ``.skipped``)
Rater = Callable[..., Any]


def _default_rater() -> Rater:
    from starwrs.proxies.harvest.rating import rate_calls

    return rate_calls


def fault(state_dir: Path, point: str) -> None:
    """SIGKILL this process if ``STATE/harvest/faults/<point>`` exists (removed first)."""
    marker = state_dir / "harvest" / "faults" / point
    if marker.exists():
        marker.unlink()
        os.kill(os.getpid(), signal.SIGKILL)


class _Refused(Exception):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass
class _Read:
    table: pa.Table
    quarantine: list[tuple[str, int, str, bytes]]
    raw: Callable[[int], bytes]  # a call's (row's) record, as quarantine keeps it


class _Records:
    """The body's lines, found only when a record is wanted (a quarantine)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._ends: npt.NDArray[np.int64] | None = None

    def __call__(self, line: int) -> bytes:
        """The record on *line* (1 = the body's first), at most 512 bytes, no line end."""
        if self._ends is None:
            self._ends = np.flatnonzero(np.frombuffer(self.body, dtype=np.uint8) == 10)
        ends = self._ends
        count = len(ends) + 1
        if not 0 < line <= count:
            return b""
        start = int(ends[line - 2]) + 1 if line > 1 else 0
        end = int(ends[line - 1]) if line <= len(ends) else len(self.body)
        return self.body[start:end][:512].rstrip(b"\r")


def read_batch(batch: batches.Batch) -> _Read:
    """The calls of *batch* as a table, and its records that do not read (quarantine).

    Raises:
        ValueError: the batch's options cannot be read with (an unknown zone).
    """
    source = batch.source
    shift = batch.first_line - 1 - batch.header_lines
    raw = _Records(batch.body)
    got = read_table(
        batch.body, batch.format, tz=batch.timezone, name=source, today=batch.file_date
    )
    quarantine = [
        (source, r.line + shift, r.reason, raw(r.line)) for r in got.rejections
    ]
    table = got.calls
    dups = _duplicates(table)
    if len(dups):
        lines = table.column("line").to_numpy()
        ids = table.column("call_id")
        for row, first in dups.tolist():
            line = int(lines[row])
            quarantine.append(
                (
                    source,
                    line + shift,
                    f"duplicate of line {int(lines[first]) + shift} (call id {ids[row]})",
                    raw(line),
                )
            )
        keep = np.ones(table.num_rows, dtype=bool)
        keep[dups[:, 0]] = False
        table = table.filter(pa.array(keep))
    lines = table.column("line")
    table = table.set_column(
        table.column_names.index("line"), "line", pc.add(lines, shift) if shift else lines
    )
    return _Read(
        table, quarantine, lambda row: raw(int(lines[row].as_py()))
    )


def _duplicates(table: pa.Table) -> npt.NDArray[np.int64]:
    """(row, first row) of each call whose non-empty ``call_id`` and ``start`` an
    earlier call of the batch has (the rows are in line order)."""
    ids = table.column("call_id").combine_chunks()
    named = np.flatnonzero(pc.not_equal(ids, "").to_numpy(zero_copy_only=False))
    if len(named) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    encoded = pc.dictionary_encode(ids.take(pa.array(named)))
    if len(encoded.dictionary) == len(named):  # every id once: no duplicate
        return np.zeros((0, 2), dtype=np.int64)
    keys = pa.table(
        {
            "id": encoded.indices,
            "start": table.column("start").combine_chunks().take(pa.array(named)),
            "row": pa.array(named, pa.int64()),
        }
    )
    first = keys.group_by(["id", "start"], use_threads=False).aggregate([("row", "min")])
    joined = keys.join(first, ["id", "start"], use_threads=False)
    row = joined.column("row").to_numpy()
    first_row = joined.column("row_min").to_numpy()
    later = row != first_row
    out = np.stack([row[later], first_row[later]], axis=1)
    return out[np.argsort(out[:, 0], kind="stable")]


def fsync_file(path: Path) -> None:
    """Flush *path* to disk (a staged batch survives a power cut before it is recorded)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Harvest:
    """The provider side: see the module docstring."""

    def __init__(
        self,
        state_dir: Path,
        store: HarvestStore,
        *,
        cert: x509.Certificate,
        key: rsa.RSAPrivateKey,
        mailbox: str,
        loader: Loader,
        outbox: Outbox,
        rater: Rater | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.store = store
        self.cert = cert
        self.key = key
        self.mailbox = mailbox
        self.loader = loader
        self.outbox = outbox
        self.rater = rater or _default_rater()
        self.staging = self.state_dir / "harvest" / "loading"
        self.staging.mkdir(parents=True, exist_ok=True)
        self.archive = self.state_dir / "harvest" / "archive"
        self.archive.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, trio.Lock] = {}
        self._wake = trio.Event()
        #: set (and replaced) whenever a batch is applied (tests wait on it)
        self.applied = trio.Event()

    # -- the recipients ------------------------------------------------------------

    def addressed_to_us(self, address: str) -> bool:
        return address.strip().strip("<>").lower() == self.mailbox.lower()

    async def refuse_recipient(self, *, channel: str, peer: str, mail_from: str, rcpt: str) -> None:
        """Record a message refused at RCPT for a mailbox that is not ours."""
        await self.store.audit(
            AuditEntry(
                channel,
                time.time(),
                peer=peer,
                mail_from=mail_from,
                rcpt=rcpt,
                kind="wrong-address",
                reason=f"wrongly addressed: {rcpt[:100]} is not the harvest mailbox",
            )
        )

    # -- one message ---------------------------------------------------------------

    def _check_recipients(self, rcpts: tuple[str, ...]) -> None:
        wrong = [r for r in rcpts if not self.addressed_to_us(r)]
        if wrong:
            raise _Refused("wrong-address", f"wrongly addressed: {wrong[0][:100]} is not us")

    async def receive(
        self,
        raw: bytes,
        *,
        channel: str = "smtp",
        peer: str | None = None,
        mail_from: str | None = None,
        rcpts: tuple[str, ...] = (),
        enterprise: str | None = None,
    ) -> Answer:
        """Take one message (see the module docstring); the answer for the sender.

        *enterprise* (the network path): the enterprise of the user who put the
        message; a batch whose signer is enrolled for another is refused.
        """
        # a worker thread: hashing a batch of 50,000 records (26 MB) takes ~20 ms
        digest, message_id = await trio.to_thread.run_sync(_identify, raw)
        entry = AuditEntry(
            channel,
            time.time(),
            peer=peer,
            mail_from=mail_from,
            rcpt=",".join(rcpts)[:500] or None,
            size=len(raw),
            message_sha256=digest,
            message_id=message_id,
        )
        try:
            self._check_recipients(rcpts)
            opened, enrollment, batch = await self._open(raw, entry, enterprise)
            lock = self._locks.setdefault(batch.batch_id, trio.Lock())
            async with lock:
                return await self._take(opened, enrollment, batch, entry)
        except _Refused as refused:
            entry.result, entry.kind, entry.reason = "refused", refused.kind, refused.reason
            await self.store.audit(entry)
            log.info("harvest refused batch=%s: %s", entry.batch_id or "-", refused.reason)
            return Answer(554, f"5.7.0 refused: {refused.reason}")

    async def _open(
        self, raw: bytes, entry: AuditEntry, enterprise: str | None
    ) -> tuple[smime.Opened, Any, batches.Batch]:
        enrolled = await self.store.collectors()
        try:
            inner = await trio.to_thread.run_sync(smime.decrypt, raw, self.cert, self.key)
        except smime.SmimeError as err:
            raise _Refused(err.kind, err.reason) from None
        try:
            opened = await trio.to_thread.run_sync(
                smime.verify_inner, inner, [e.cert for e in enrolled]
            )
        except smime.SmimeError as err:
            if err.kind == "unknown-signer":
                claimed = smime.signers_in(inner)
                who = claimed[0].subject.rfc4514_string() if claimed else "no certificate"
                entry.signer_subject = who[:200]
                if claimed:
                    entry.signer = fingerprint(claimed[0])
                raise _Refused(err.kind, f"unknown signer ({who[:120]}): not enrolled") from None
            raise _Refused(err.kind, err.reason) from None
        except Exception as err:  # hostile MIME the parsers trip over
            log.warning("harvest: unreadable signed entity: %r", err)
            raise _Refused("malformed", "the signed part cannot be read") from None
        verified = opened.verified
        entry.signer = fingerprint(verified.signer)
        entry.signer_subject = verified.signer.subject.rfc4514_string()[:200]
        entry.digest_alg = verified.digest_name
        entry.digest = verified.digest.hex()
        entry.signed_attrs = verified.signed_attrs
        entry.signature = verified.signature
        entry.signing_time = verified.signing_time.isoformat() if verified.signing_time else None
        enrollment = next(e for e in enrolled if e.fingerprint == entry.signer)
        entry.entp_id, entry.corp_id = enrollment.entp_id, enrollment.corp_id
        if enrollment.revoked is not None:
            when = dt.datetime.fromtimestamp(enrollment.revoked, dt.UTC).isoformat(
                timespec="seconds"
            )
            why = f": {enrollment.revoked_reason}" if enrollment.revoked_reason else ""
            raise _Refused("revoked-signer", f"the signer's enrollment was revoked {when}{why}")
        try:
            batch = await trio.to_thread.run_sync(batches.parse, opened.content)
        except batches.BatchError as err:
            raise _Refused("malformed", f"malformed batch: {err}") from None
        entry.batch_id, entry.format = batch.batch_id, batch.format
        entry.source, entry.records = batch.source[:255], batch.records
        if enterprise is not None and enrollment.entp_id != enterprise:
            raise _Refused(
                "wrong-enterprise",
                f"wrongly addressed: sent by a user of enterprise {enterprise[:12]}, the signer"
                f" is enrolled for {enrollment.entp_id}",
            )
        if batch.enterprise != enrollment.entp_id:
            raise _Refused(
                "wrong-enterprise",
                f"wrongly addressed: the batch is for enterprise {batch.enterprise}, the signer"
                f" is enrolled for {enrollment.entp_id}",
            )
        # keep what was signed, verifiable later with the collector's certificate
        await trio.to_thread.run_sync((self.archive / f"{batch.batch_id}.smime").write_bytes, inner)
        return opened, enrollment, batch

    async def _take(
        self, opened: smime.Opened, enrollment: Any, batch: batches.Batch, entry: AuditEntry
    ) -> Answer:
        seen = await self.store.batch(batch.batch_id)
        if seen is not None:
            if seen["digest"] != entry.digest:
                raise _Refused(
                    "reused-id",
                    f"batch id {batch.batch_id} was used before for other records",
                )
            entry.result, entry.kind = "replayed", "replay"
            entry.reason = (
                f"replay: batch {batch.batch_id} was taken before (audit #{seen['audit_id']},"
                f" {seen['state']}); not applied again"
            )
            await self.store.audit(entry)
            log.info("harvest replay batch=%s", batch.batch_id)
            return Answer(250, f"2.0.0 batch {batch.batch_id} already taken (replay)")
        try:
            got = await trio.to_thread.run_sync(read_batch, batch)
        except ValueError as err:
            raise _Refused("malformed", f"the records cannot be read: {err}") from None
        corp = enrollment.corp_id
        try:
            rated = await trio.to_thread.run_sync(
                lambda: self.rater(
                    got.table,
                    entp_id=enrollment.entp_id,
                    corp_id=corp,
                    state_dir=self.state_dir,
                )
            )
        except Exception as err:
            log.exception("harvest rating failed batch=%s", batch.batch_id)
            entry.result, entry.kind, entry.reason = "deferred", "rating", f"rating failed: {err}"
            await self.store.audit(entry)
            return Answer(451, f"4.3.0 batch {batch.batch_id} cannot be rated now; try later")
        quarantine = list(got.quarantine)
        if rated.rejected:
            files, line_of = got.table.column("file"), got.table.column("line")
            for rid, reason in rated.rejected:
                quarantine.append(
                    (files[rid].as_py(), line_of[rid].as_py(), reason, got.raw(rid))
                )
        quarantine.sort(key=lambda q: q[1])
        priced: pa.Table = rated.priced
        entry.accepted, entry.rejected = priced.num_rows, len(quarantine)
        entry.skipped = len(getattr(rated, "skipped", ()))
        partition = await self._partition(corp)
        staged = self.staging / f"{batch.batch_id}.arrows"
        if priced.num_rows:
            await trio.to_thread.run_sync(write_ipc, staged, [priced])
            await trio.to_thread.run_sync(fsync_file, staged)
        entry.result = "loading"
        async with self.store.store.transaction() as tx:
            audit_id = await self.store.audit(entry, tx)
            await tx.execute(
                "INSERT INTO batches (batch_id, entp_id, corp_id, digest, state, audit_id,"
                " partition, accepted, rejected, skipped, started)"
                " VALUES (?, ?, ?, ?, 'loading', ?, ?, ?, ?, ?, ?)",
                (
                    batch.batch_id,
                    enrollment.entp_id,
                    corp,
                    entry.digest,
                    audit_id,
                    partition,
                    entry.accepted,
                    entry.rejected,
                    entry.skipped,
                    time.time(),
                ),
            )
            await self.store.quarantine(tx, batch.batch_id, quarantine)
        text = (
            f"batch {batch.batch_id} taken: {entry.accepted} accepted, {entry.rejected} rejected,"
            f" {entry.skipped} skipped"
        )
        try:
            await self._load(batch.batch_id)
        except LoadFailed as err:
            log.warning("harvest load deferred batch=%s: %s", batch.batch_id, err)
            self._wake.set()
            return Answer(250, f"2.0.0 {text}; loading")
        return Answer(250, f"2.0.0 {text}")

    async def _partition(self, corp: str) -> int:
        def find() -> int:
            table = read_partition_map(self.state_dir)
            if corp not in table.corps:
                fresh = read_partition_map(self.state_dir)
                fresh.assign(corp, fresh.partition_of(corp))
                write_partition_map(self.state_dir, fresh)
                return fresh.partition_of(corp)
            return table.partition_of(corp)

        return await trio.to_thread.run_sync(find)

    # -- loading -------------------------------------------------------------------

    async def _load(self, batch_id: str) -> None:
        """Load a ``loading`` batch and mark it applied (raises LoadFailed to retry)."""
        row = await self.store.batch(batch_id)
        if row is None or row["state"] != "loading":
            return
        staged = self.staging / f"{batch_id}.arrows"
        if row["accepted"]:
            if not staged.exists():
                raise LoadFailed(f"the staged calls of batch {batch_id} are missing")
            rows = await self.loader.load(row["partition"], row["corp_id"], batch_id, staged)
            if rows != row["accepted"]:
                log.warning("harvest batch=%s loaded %d of %d", batch_id, rows, row["accepted"])
            fault(self.state_dir, "after-load")
        async with self.store.store.transaction() as tx:
            await tx.execute(
                "UPDATE batches SET state = 'applied', applied = ? WHERE batch_id = ?",
                (time.time(), batch_id),
            )
            await self.store.finish_audit(tx, row["audit_id"], "applied", None)
            if row["rejected"]:
                payload = msgpack.packb({"batch_id": batch_id, "entp_id": row["entp_id"]})
                await self.outbox.put(NEWS_SUBJECT, batch_id, "INBX", payload, tx=tx)
        staged.unlink(missing_ok=True)
        self.applied.set()
        self.applied = trio.Event()
        log.info(
            "harvest applied batch=%s corp=%s accepted=%d rejected=%d",
            batch_id,
            row["corp_id"],
            row["accepted"],
            row["rejected"],
        )

    async def resume(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Finish every ``loading`` batch, now and whenever a load was deferred."""
        task_status.started()
        delay = RESUME_BASE
        while True:
            self._wake = trio.Event()
            failed = False
            for row in await self.store.loading():
                lock = self._locks.setdefault(row["batch_id"], trio.Lock())
                async with lock:
                    try:
                        await self._load(row["batch_id"])
                    except LoadFailed as err:
                        log.warning("harvest load of batch=%s waits: %s", row["batch_id"], err)
                        failed = True
            if failed:
                with trio.move_on_after(delay):
                    await self._wake.wait()
                delay = min(RESUME_MAX, delay * 2)
            else:
                delay = RESUME_BASE
                await self._wake.wait()


def _identify(raw: bytes) -> tuple[str, str | None]:
    """(The message's SHA-256, its Message-ID) for the audit trail."""
    return hashlib.sha256(raw).hexdigest(), _message_id(raw)


def _message_id(raw: bytes) -> str | None:
    head = raw[: raw.find(b"\r\n\r\n") if b"\r\n\r\n" in raw[:65536] else 65536]
    for line in head.split(b"\n"):
        if line.lower().startswith(b"message-id:"):
            return line[11:].strip().decode("ascii", "replace")[:200]
    return None
