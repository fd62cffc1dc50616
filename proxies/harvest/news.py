"""Loading through the DSS, and the customer's news of a batch with rejected records.

Theory of operation
-------------------
:class:`DssLoader` hands a staged batch to the corp's partition the way every server
hands another a file: a bulk put ``LOAD<CORP=c,BATCH=id>`` of the Arrow IPC stream to
target ``DSS<k>`` over a mutual-TLS channel with the harvest's certificate
(:func:`starwrs.runtime.transfer.upload`); the DSS answers ``LODA<ERROR=0,ROWS=n>`` only
after its commit, and answers a batch id it loaded before with that load's rows.  A
DSS that cannot be reached, breaks off or refuses is :class:`~.intake.LoadFailed`
(the harvest tries again later).

:class:`News` delivers the outbox messages :mod:`.intake` puts when a batch had
rejections: the enterprise's enabled users from order entry (``GEU``), then for each
an inbox news item (category F) as a bulk put of ``A`` -- the same kind of item
``starwrs admin news`` sends -- whose text lists the batch, its counts and the first
rejected records with their file, line and reason (the rest counted).  The item's
LOC is derived from the batch id and the user, so a delivery repeated after a crash
adds nothing twice (the inbox answers 5005, taken as delivered).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import tempfile
from pathlib import Path

import msgpack
import trio
from starwrs.grammar import Member, Message, MessageError, parse, serialize
from starwrs.grammar.errors import StarwrsError, describe
from starwrs.grammar.values import text_items
from starwrs.protocol import Request
from starwrs.proxies.harvest.intake import NEWS_LINES, LoadFailed
from starwrs.proxies.harvest.store import HarvestStore
from starwrs.runtime.channel import PeerGone, ReadTimeout
from starwrs.runtime.pool import ProxyPool
from starwrs.runtime.transfer import upload
from starwrs.storage.outbox import Delivered, OutboxMessage, Outcome, Refused, Retry

__all__ = ["DssLoader", "News", "news_text"]

log = logging.getLogger("starwrs.harvest")

_ALREADY_THERE = 5005


class _Later(Exception):
    """Order entry or the inbox cannot be asked now."""


def _reply(payload: bytes) -> Message | None:
    try:
        return parse(payload.decode("utf-8"))
    except (UnicodeDecodeError, MessageError):
        return None


class DssLoader:
    """Loads staged batches through the partitions' DSS processes."""

    def __init__(self, pool: ProxyPool) -> None:
        self.pool = pool

    async def load(self, partition: int, corp_id: str, batch_id: str, path: Path) -> int:
        target = f"DSS{partition}"
        if not self.pool.knows(target):
            raise LoadFailed(f"the deployment has no {target}")
        try:
            channel = await self.pool.connect(target)
            async with channel:
                answer = await upload(
                    channel,
                    f"LOAD<CORP={corp_id},BATCH={batch_id}>",
                    path,
                    target=target,
                    answer_timeout=math.inf,
                )
        except (StarwrsError, PeerGone, ReadTimeout, OSError, trio.BrokenResourceError) as err:
            raise LoadFailed(f"{target}: {err}") from None
        reply = _reply(answer.payload)
        if answer.status != 0 or reply is None or reply.get("ERROR") != "0":
            detail = answer.payload[:200].decode("utf-8", "replace")
            raise LoadFailed(f"{target} refused the load: {answer.status} {detail}")
        rows = reply.get("ROWS")
        return int(rows) if isinstance(rows, str) and rows.isdigit() else 0


def news_text(batch: dict[str, object], rejected: list[tuple[str, int, str]]) -> str:
    """The text of the news item about one batch."""
    lines = [
        f"Batch {batch['batch_id']} of call records from {batch['source']}",
        f"received {batch['received']}: {batch['accepted']} record(s) accepted and priced,"
        f" {batch['rejected']} rejected, {batch['skipped']} not charged (internal or unanswered).",
        "",
        "Rejected records (file, line, reason):",
    ]
    for file, line, reason in rejected[:NEWS_LINES]:
        lines.append(f"  {file} line {line}: {reason}")
    if len(rejected) > NEWS_LINES:
        lines.append(f"  ... and {len(rejected) - NEWS_LINES} more")
    lines += ["", "Correct them at the PBX and send them again in a new batch."]
    return "\n".join(lines) + "\n"


def _news_add(user: str, entp: str, batch_id: str, title: str, size: int) -> str:
    digest = hashlib.sha256(f"{batch_id}\0{user}\0{entp}".encode()).hexdigest()[:24]
    members = [
        Member("CATEGORY", "F"),
        Member("TYPE", "news"),
        Member("USERID", user),
        Member("ENTPID", entp),
        Member("PRIORITY", "3"),
        Member("COMPRESS", "0"),
        Member("UNOTIFY", "0"),
        Member("LOC", f"harvest-{digest}.txt"),
        Member("FSIZE", str(size)),
        Member("RPTTITLE", title),
        Member("PART", "D"),
    ]
    return serialize(Message("A", tuple(members)))


class News:
    """The outbox's sender for news of rejected records."""

    def __init__(self, store: HarvestStore, pool: ProxyPool) -> None:
        self.store = store
        self.pool = pool

    async def _users(self, entp: str) -> list[str]:
        message = serialize(Message("GEU", (Member("ENTPID", entp),)))
        answer = await self.pool.request("OE", Request("OE", message.encode()))
        reply = _reply(answer.payload)
        if reply is None or reply.get("ERROR") != "0":
            raise _Later(f"order entry answered {answer.status} for enterprise {entp}")
        users = reply.get("USERS")
        return [u for u in (text_items(users) if users is not None else ()) if u]

    async def deliver(self, message: OutboxMessage) -> Outcome:
        envelope = msgpack.unpackb(message.payload, raw=False)
        batch_id, entp = str(envelope["batch_id"]), str(envelope["entp_id"])
        row = await self.store.batch(batch_id)
        audits = await self.store.audit_rows(batch_id=batch_id)
        if row is None or not audits:
            return Refused(0, f"no batch {batch_id}")
        audit = audits[0]
        quarantined = await self.store.quarantined(batch_id)
        received = dt.datetime.fromtimestamp(audit["received"], dt.UTC)
        text = news_text(
            {
                "batch_id": batch_id,
                "source": audit["source"] or "-",
                "received": received.strftime("%Y-%m-%d %H:%M GMT"),
                "accepted": row["accepted"],
                "rejected": row["rejected"],
                "skipped": row["skipped"],
            },
            [(q["file"], q["line"], q["reason"]) for q in quarantined],
        ).encode("utf-8")
        title = f"Call records: {row['rejected']} rejected in batch {batch_id[:8]}"
        try:
            users = await self._users(entp)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "news.txt"
                path.write_bytes(text)
                for user in users:
                    resource = _news_add(user, entp, batch_id, title, len(text))
                    channel = await self.pool.connect("INBX")
                    async with channel:
                        answer = await upload(channel, resource, path, target="INBX")
                    if answer.status not in (0, _ALREADY_THERE):
                        code = answer.status
                        return Retry(f"inbox answered {code} {describe(code)} for {user}")
        except (
            _Later,
            StarwrsError,
            PeerGone,
            ReadTimeout,
            OSError,
            trio.BrokenResourceError,
        ) as err:
            return Retry(f"news of batch {batch_id}: {err}")
        log.info("harvest news batch=%s users=%d", batch_id, len(users))
        return Delivered()
