"""The collector at work: read new records, build batches, send them until they are in.

Theory of operation
-------------------
One collector process per state directory (an exclusive ``flock`` on
``STATE/collector.lock``; ``status`` reads without it).  Its loop, for ``starwrs
collector run --watch DIR`` forever and for ``send FILE...`` once:

1. **read** (:meth:`Collector.scan`) -- each file is found in the spool by its
   identity (:mod:`.spool`), read from its offset, at most :data:`READ_LIMIT` bytes a
   round, and cut after its last complete line (a PBX may be writing the next one;
   ``send`` takes a last line without a line end: the file is complete).  The first
   read detects the format (``--format auto``: :func:`~.readers.model.detect`) and the
   file's own header lines (CUCM's two, an IP Office ``Call Start`` line), which every
   batch of the file repeats.  The lines are cut into batches of at most
   ``batch_records`` records and about ``batch_bytes`` bytes;
2. **seal** -- each batch entity (:mod:`.batch`) is signed with the collector's key
   and encrypted to the provider's certificate (:mod:`.smime`) on a worker thread,
   put in an e-mail whose Message-ID is the batch id, and committed to the spool
   together with the file's new offset (one transaction: nothing lost, nothing read
   twice);
3. **send** (:meth:`Collector.send_due`) -- every built batch that is due goes by
   SMTP (:mod:`.mailer`), or over the network as a bulk put through the provider's
   web tier (:mod:`.network`, answered in SMTP's codes), oldest first.  2xx:
   acknowledged when the answer names the batch (the harvest itself), else sent
   (a relay took it); 5xx: refused
   (kept, with the answer); 4xx or no connection: tried again after a back-off
   (:meth:`.Spool.failed`), the later batches wait behind it (order is kept).

Fault injection for the kill tests: a file ``STATE/faults/<point>`` makes the process
SIGKILL itself once at that point (the file is removed first): ``after-send`` (the
server's 250 arrived, the spool does not know yet), ``after-seal`` (a batch is sealed,
not yet committed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import fnmatch
import functools
import hashlib
import os
import signal
import socket
import time
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import format_datetime
from pathlib import Path

import trio
from starwrs.collector import batch as batches
from starwrs.collector import mailer, network, smime
from starwrs.collector.config import Loaded, parse_hostport
from starwrs.collector.readers import FORMATS, detect
from starwrs.collector.spool import FileRow, Spool

__all__ = [
    "READ_LIMIT",
    "Collector",
    "CollectorBusy",
    "Round",
    "lock_collector",
]

#: bytes read from one file per round
READ_LIMIT = 64 * 1024 * 1024
#: bytes of a file's start whose hash tells a replaced file
HEAD_LEN = 1024
LOCK_FILE = "collector.lock"


class CollectorBusy(Exception):
    """Another collector process holds the state directory."""


def lock_collector(state: Path) -> int:
    """Take ``STATE/collector.lock`` (held until the process exits); its fd.

    Raises:
        CollectorBusy: another collector holds it.
    """
    fd = os.open(state / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CollectorBusy(f"another collector is running on {state}") from None
    return fd


def fault(state: Path, point: str) -> None:
    """SIGKILL this process if ``STATE/faults/<point>`` exists (removed first)."""
    marker = state / "faults" / point
    if marker.exists():
        marker.unlink()
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Round:
    """What one round did (for the command's output)."""

    built: int = 0
    records: int = 0
    acknowledged: int = 0
    sent: int = 0
    refused: int = 0
    deferred: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Chunk:
    start: int
    end: int
    first_line: int
    lines: int
    records: int
    body: bytes


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _header_lines(fmt: str, lines: list[bytes]) -> int:
    """How many lines at the file's start are its own header."""
    if not lines:
        return 0
    first = lines[0].removeprefix(b"\xef\xbb\xbf").split(b",", 1)[0].strip(b' \t"\r\n').lower()
    if fmt == "cucm" and first in (b"cdrrecordtype", b"cmrrecordtype"):
        return 2
    if fmt == "avaya" and first.replace(b" ", b"") == b"callstart":
        return 1
    return 0


def _chunks(data: bytes, start: int, line: int, *, records: int, size: int) -> Iterator[_Chunk]:
    """Cut complete lines into chunks of at most *records* records / about *size* bytes."""
    pos = 0
    while pos < len(data):
        begin = pos
        count = lines = 0
        while pos < len(data) and count < records and pos - begin < size:
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end + 1
            if data[pos:end].strip():
                count += 1
            lines += 1
            pos = end
        yield _Chunk(start + begin, start + pos, line + 1, lines, count, data[begin:pos])
        line += lines


class Collector:
    """One collector: its configuration, keys and spool."""

    def __init__(
        self, loaded: Loaded, spool: Spool, *, say: Callable[[str], None] | None = None
    ) -> None:
        self.loaded = loaded
        self.config = loaded.config
        self.spool = spool
        self.say = say or (lambda _line: None)
        self.host = self.config.host if self.config.host != "-" else socket.gethostname()

    # -- reading -------------------------------------------------------------------

    def watched(self, folder: Path, pattern: str) -> list[Path]:
        """The regular, non-hidden files of *folder* matching *pattern*, by name."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(folder):
                if entry.name.startswith(".") or not fnmatch.fnmatch(entry.name, pattern):
                    continue
                if entry.is_file(follow_symlinks=True):
                    found.append(Path(entry.path))
        return sorted(found)

    async def scan(self, paths: list[Path], *, final: bool, result: Round | None = None) -> Round:
        """Read what is new in *paths* into sealed batches in the spool."""
        result = result or Round()
        for path in paths:
            try:
                await self._scan_file(path, final=final, result=result)
            except OSError as err:
                result.errors.append(f"{path}: {err.strerror or err}")
        return result

    async def _row_for(self, path: Path, fd: int) -> tuple[FileRow, int]:
        stat = os.fstat(fd)
        head = os.pread(fd, HEAD_LEN, 0)
        row = await self.spool.file(stat.st_dev, stat.st_ino)
        if row is None:
            row = await self.spool.start_file(
                str(path), stat.st_dev, stat.st_ino, _sha(head), len(head)
            )
        elif stat.st_size < row.offset or _sha(head[: row.head_len]) != row.head:
            self.say(f"{path}: replaced or truncated; reading it from the start")
            row = await self.spool.start_file(
                str(path), stat.st_dev, stat.st_ino, _sha(head), len(head)
            )
        elif len(head) > row.head_len or row.path != str(path):
            await self.spool.note_path(row.id, str(path), _sha(head), len(head))
        return row, stat.st_size

    async def _scan_file(self, path: Path, *, final: bool, result: Round) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            row, size = await self._row_for(path, fd)
            while row.offset < size:
                if row.format == "unknown":
                    return
                data = await trio.to_thread.run_sync(os.pread, fd, READ_LIMIT, row.offset)
                if not data:
                    return
                at_end = row.offset + len(data) >= size
                cut = data.rfind(b"\n") + 1
                if final and at_end:
                    cut = len(data)
                if cut == 0:
                    return  # no complete line yet
                fresh = await self._take(path, fd, row, data[:cut], result)
                if fresh is None:
                    return
                row = fresh
        finally:
            os.close(fd)

    async def _take(
        self, path: Path, fd: int, row: FileRow, data: bytes, result: Round
    ) -> FileRow | None:
        fmt, header, header_lines = row.format, row.header, row.header_lines
        offset, line = row.offset, row.line
        if fmt is None:  # the file's first read: format and header lines
            lines = data.splitlines(keepends=True)
            first = next((x for x in lines if x.strip()), b"")
            fmt = self.config.format if self.config.format != "auto" else detect(first)
            if fmt is None:
                self.say(f"{path}: format not recognised (not {', '.join(FORMATS)}); skipped")
                await self.spool.advance(
                    row.id, offset=offset, line=line, fmt="unknown", header=b"", header_lines=0
                )
                return None
            header_lines = _header_lines(fmt, lines)
            if header_lines > len([x for x in lines if x.endswith(b"\n")]):
                return None  # the header is not complete yet
            header = b"".join(lines[:header_lines])
            data = data[len(header) :]
            offset += len(header)
            line += header_lines
        for chunk in _chunks(
            data,
            offset,
            line,
            records=self.config.batch_records,
            size=self.config.batch_bytes,
        ):
            if not chunk.records:
                await self.spool.advance(
                    row.id,
                    offset=chunk.end,
                    line=line + chunk.lines,
                    fmt=fmt,
                    header=header,
                    header_lines=header_lines,
                )
            else:
                sealed = await trio.to_thread.run_sync(
                    self._seal, path, fd, fmt, header, header_lines, chunk
                )
                fault(self.loaded.state, "after-seal")
                await self.spool.advance(
                    row.id,
                    offset=chunk.end,
                    line=line + chunk.lines,
                    batch=sealed,
                    fmt=fmt,
                    header=header,
                    header_lines=header_lines,
                )
                result.built += 1
                result.records += chunk.records
            line += chunk.lines
        if not data:
            await self.spool.advance(
                row.id, offset=offset, line=line, fmt=fmt, header=header, header_lines=header_lines
            )
        fresh = await self.spool.file(row.device, row.inode)
        return fresh

    def _file_date(self, fd: int) -> dt.date:
        mtime = dt.datetime.fromtimestamp(os.fstat(fd).st_mtime, dt.UTC)
        if self.config.timezone:
            mtime = mtime.astimezone(zoneinfo.ZoneInfo(self.config.timezone))
        return mtime.date()

    def _seal(
        self,
        path: Path,
        fd: int,
        fmt: str,
        header: bytes,
        header_lines: int,
        chunk: _Chunk,
    ) -> tuple[str, int, int, int, int, int, str, bytes]:
        batch_id = batches.new_batch_id()
        entity = batches.build(
            batches.Batch(
                batch_id=batch_id,
                enterprise=self.config.enterprise,
                format=fmt,
                records=chunk.records,
                body=header + chunk.body,
                source=f"{self.host}:{path}",
                first_line=chunk.first_line,
                offset=(chunk.start, chunk.end),
                timezone=self.config.timezone,
                header_lines=header_lines,
                file_date=self._file_date(fd) if fmt == "mitel" else None,
                collector=self.config.name,
            ),
            compress=self.config.compress,
        )
        enveloped = smime.seal(
            entity, cert=self.loaded.cert, key=self.loaded.key, recipient=self.loaded.provider
        )
        domain = self.config.sender.rpartition("@")[2]
        message = smime.mail(
            enveloped,
            [
                ("From", self.config.sender),
                ("To", self.config.to),
                ("Subject", "starwrs call records"),
                ("Date", format_datetime(dt.datetime.now(dt.UTC))),
                ("Message-ID", f"<{batch_id}@{domain}>"),
            ],
        )
        return (
            batch_id,
            chunk.start,
            chunk.end,
            chunk.first_line,
            chunk.records,
            len(entity),
            _sha(entity),
            message,
        )

    # -- sending -------------------------------------------------------------------

    async def send_due(self, result: Round | None = None) -> Round:
        """Send every built batch that is due, oldest first, until one must wait."""
        result = result or Round()
        for row, message in await self.spool.due(time.time()):
            try:
                reply = await self._deliver(row.batch_id, message)
            except mailer.Unreachable as err:
                delay = await self.spool.failed(row.batch_id, str(err))
                result.deferred += 1
                result.errors.append(f"batch {row.batch_id}: {err} (again in {delay:.0f} s)")
                break
            fault(self.loaded.state, "after-send")
            if reply.ok:
                state = "acknowledged" if row.batch_id in reply.text else "sent"
                await self.spool.finished(row.batch_id, state, f"{reply.code} {reply.text}")
                setattr(result, state, getattr(result, state) + 1)
                answer = f"{reply.code} {reply.text}"
                self.say(f"batch {row.batch_id}: {row.records} records: {state}: {answer}")
            elif reply.transient:
                delay = await self.spool.failed(row.batch_id, f"{reply.code} {reply.text}")
                result.deferred += 1
                result.errors.append(
                    f"batch {row.batch_id}: {reply.code} {reply.text} (again in {delay:.0f} s)"
                )
                break
            else:
                await self.spool.finished(row.batch_id, "refused", f"{reply.code} {reply.text}")
                result.refused += 1
                result.errors.append(f"batch {row.batch_id} refused: {reply.code} {reply.text}")
        return result

    async def _deliver(self, batch_id: str, message: bytes) -> mailer.Reply:
        """Send one sealed batch by the configured path; the SMTP-style reply.

        Raises:
            mailer.Unreachable: the provider (or the relay) could not be reached.
        """
        config = self.config
        if config.url is not None:
            assert config.user is not None  # Config.check
            return await network.send_batch(
                config.url,
                user=config.user,
                password=self.loaded.web_password,
                message=message,
                batch_id=batch_id,
                ca=self.loaded.web_ca,
            )
        assert config.smtp is not None  # Config.check
        host, port = parse_hostport(config.smtp)
        return await trio.to_thread.run_sync(
            functools.partial(
                mailer.send_message,
                host,
                port,
                sender=config.sender,
                to=config.to,
                message=message,
                tls=config.tls,
                ca=self.loaded.smtp_ca,
                user=config.smtp_user,
                password=self.loaded.password,
                local_hostname=self.host if "." in self.host else None,
            )
        )

    async def pending(self) -> int:
        """Built batches not yet sent."""
        return (await self.spool.counts()).get("built", (0, 0))[0]

    async def run(
        self,
        folder: Path,
        *,
        pattern: str = "*",
        interval: float = 10.0,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """``run --watch``: read, seal and send forever."""
        task_status.started()
        while True:
            result = await self.scan(self.watched(folder, pattern), final=False)
            await self.send_due(result)
            for line in result.errors:
                self.say(line)
            wait = interval
            due = await self.spool.next_due()
            if due is not None:
                wait = max(0.0, min(interval, due - time.time()))
            await trio.sleep(wait)
