"""``starwrs admin rerate --corp C --from DAY --to DAY``: price stored calls again after a
tariff change, and tell the users whose delivered reports changed.

::

    starwrs admin --state DIR tariff load new-tariffs.csv
    starwrs admin --state DIR rerate --corp 90000003 --from 2026-03-01 --to 2026-03-31

Theory of operation
-------------------
The corp's partition file belongs to its DSS process (one process per DuckDB file), so
the re-rating goes through the DSS's own operations, with the deployment's ``admin``
certificate (grammar/catalogue_ods.py):

1. ``WHER`` (arbitrator): which partition holds the corp;
2. bulk get ``XPRT<CORP=…,FROM=…,TO=…>``: the corp's calls of the period (GMT days
   ``--from`` to ``--to`` inclusive, as ``gmt_key`` minutes), with their count and the
   checksum of their ``gmt_key`` values computed here;
3. :func:`~starwrs.proxies.harvest.rating.rerate_priced` here, by the tariffs in
   ``STATE/harvest/tariffs.sqlite`` now.  A call no tariff covers any more stops the
   command (one line with the first reason): nothing is changed, nothing priced at 0;
4. bulk put ``RRAT<CORP,FROM,TO,ROWS,CHECK>`` of the re-priced calls: the DSS swaps the
   period's calls in ONE transaction, and only if the period still holds what was
   exported (a harvest load into the period in between refuses it -- run again).  The
   swap is idempotent: the same file sent twice leaves the same calls.  The answer
   names the delivered reports of the corp's enterprise whose period meets it;
5. the reports whose period holds a call whose price changed, of users order entry
   says may see the corp (``GUA``), are named in one inbox news item per user
   (category F, ``cli/admin_news.py``: the item's LOC comes from its text, so sending
   it again adds nothing; the text names when this re-rating began, kept in the
   journal, so a later re-rating of the same period is news again).

Exactly once: before step 4 a journal ``STATE/harvest/rerate/<corp>-<from>-<to>.json``
records the minutes of the changed calls; it is removed after step 5.  Run again
after a crash, the command re-exports (now already re-priced: nothing changes), sends
``RRAT`` again (idempotent) for the report list and sends the news from the journal
-- an item already delivered is answered 5005 and not added twice.

Exit 0 when done (also when no price changed); 1 when a call no tariff covers, a DSS,
order entry or inbox refusal; 2 for a usage mistake or a server that cannot be reached.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import trio
from starwrs.cli.admin_news import news_add
from starwrs.grammar import Member, Message, MessageError, parse, serialize
from starwrs.grammar.catalogue_ods import CHECK_MODULUS
from starwrs.grammar.errors import describe
from starwrs.grammar.values import text_items
from starwrs.protocol import Request
from starwrs.proxies.harvest.rating import rerate_priced
from starwrs.runtime.config import Deployment
from starwrs.runtime.pki import load_pki
from starwrs.runtime.pool import ProxyPool
from starwrs.runtime.transfer import TransferRefused, fetch, upload
from starwrs.storage.datamart.export import read_ipc, write_ipc

__all__ = ["register"]

_MONEY = ("amount", "nosurcharge_amt", "tax", "intl_surcharge", "currency_cd")


def register(actions: Any) -> None:
    """Add ``rerate`` to ``starwrs admin``."""
    rerate = actions.add_parser("rerate", help="price a corp's stored calls again")
    rerate.add_argument("--corp", required=True, help="the corp id")
    rerate.add_argument("--from", dest="first", required=True, type=_day, help="YYYY-MM-DD (GMT)")
    rerate.add_argument("--to", dest="last", required=True, type=_day, help="YYYY-MM-DD, included")
    rerate.set_defaults(func=run)


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day YYYY-MM-DD") from None


class _Stop(Exception):
    """The command stops with one line and an exit status."""

    def __init__(self, line: str, status: int = 1) -> None:
        super().__init__(line)
        self.line = line
        self.status = status


def _minute(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * 1440


def _gmt_minutes(table: pa.Table) -> np.ndarray[Any, Any]:
    gmt = table.column("gmt").combine_chunks().cast(pa.timestamp("s"))
    return np.asarray(pc.cast(gmt, pa.int64()).to_numpy(zero_copy_only=False)) // 60


def _changed(before: pa.Table, after: pa.Table) -> list[int]:
    """The gmt minutes of the calls whose price columns differ (sorted, distinct)."""
    differs = np.zeros(before.num_rows, dtype=bool)
    for name in _MONEY:
        old, new = before.column(name), after.column(name)
        if pa.types.is_decimal(old.type):
            old, new = old.cast(pa.decimal128(12, 2)), new.cast(pa.decimal128(12, 2))
        else:
            old, new = old.cast(pa.string()), new.cast(pa.string())
        same = pc.fill_null(pc.equal(old, new), False)
        differs |= ~np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)
    return sorted({int(m) for m in _gmt_minutes(before)[differs]})


def _parse(payload: bytes) -> Message | None:
    try:
        return parse(payload.decode("utf-8"))
    except (UnicodeDecodeError, MessageError):
        return None


class _Rerate:
    def __init__(self, deployment: Deployment, args: argparse.Namespace, pool: ProxyPool) -> None:
        self.state = Path(deployment.state_dir)
        self.corp: str = args.corp
        self.first: dt.date = args.first
        self.last: dt.date = args.last
        self.since, self.until = _minute(self.first), _minute(self.last) + 1440
        self.pool = pool
        self.journal = (
            self.state / "harvest" / "rerate" / f"{self.corp}-{self.since}-{self.until}.json"
        )

    async def _ask(self, target: str, text: str) -> Message:
        answer = await self.pool.request(target, Request(target, text.encode()))
        reply = _parse(answer.payload)
        code = reply.get("ERROR") if reply is not None else None
        if answer.status != 0 or code != "0" or reply is None:
            number = int(code) if isinstance(code, str) and code.isdigit() else answer.status
            raise _Stop(f"{target} refused {text.split('<')[0]}: {describe(number)} ({number})")
        return reply

    async def partition(self) -> int:
        reply = await self._ask("ARB", f"WHER<CORP={self.corp}>")
        return int(str(reply.get("ODS")))

    async def run(self, tmp: Path) -> str:
        k = await self.partition()
        target = f"DSS{k}"
        exported = tmp / "period.arrows"
        channel = await self.pool.connect(target)
        async with channel:
            resource = f"XPRT<CORP={self.corp},FROM={self.since},TO={self.until}>"
            try:
                await fetch(channel, resource, exported, target=target)
            except TransferRefused as err:
                raise _Stop(f"{target} refused the export: {err}") from None
        stored = await trio.to_thread.run_sync(read_ipc, exported)
        journal = self._read_journal()
        if stored.num_rows == 0 and journal is None:
            return f"corp {self.corp} has no calls from {self.first} to {self.last}"
        if stored.num_rows:
            entp = str(stored.column("enterprise_id")[0])
        else:
            assert journal is not None
            entp = str(journal["entp"])
        rated = await trio.to_thread.run_sync(
            lambda: rerate_priced(stored, entp_id=entp, corp_id=self.corp, state_dir=self.state)
        )
        if rated.rejected:
            row, why = rated.rejected[0]
            raise _Stop(
                f"{len(rated.rejected)} of the period's {stored.num_rows} calls are not covered"
                f" by the tariffs now (call at {stored.column('gmt')[row]}: {why}); nothing changed"
            )
        changed = _changed(stored, rated.priced)
        if journal is not None:
            changed = sorted(set(changed) | set(journal["changed"]))
        if not changed:
            return f"corp {self.corp}: no price changed from {self.first} to {self.last}"
        began = str(journal.get("at", "")) if journal is not None else ""
        began = began or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        self._write_journal(entp, changed, began)
        minutes = _gmt_minutes(stored)
        tally = (stored.num_rows, int(minutes.sum()) % CHECK_MODULUS)
        priced = tmp / "rerated.arrows"
        await trio.to_thread.run_sync(write_ipc, priced, [rated.priced])
        reports = await self._replace(target, priced, tally)
        if await self.partition() != k:
            raise _Stop(f"corp {self.corp} moved to another partition meanwhile; run again")
        users = await self._news(changed, reports, tmp, began)
        self.journal.unlink(missing_ok=True)
        return (
            f"rerated corp {self.corp} from {self.first} to {self.last}: {stored.num_rows}"
            f" calls, {len(changed)} minutes with changed prices; news to {users} users"
        )

    async def _replace(
        self, target: str, path: Path, tally: tuple[int, int]
    ) -> list[tuple[str, ...]]:
        resource = (
            f"RRAT<CORP={self.corp},FROM={self.since},TO={self.until},"
            f"ROWS={tally[0]},CHECK={tally[1]}>"
        )
        channel = await self.pool.connect(target)
        async with channel:
            answer = await upload(channel, resource, path, target=target, answer_timeout=math.inf)
        reply = _parse(answer.payload)
        code = reply.get("ERROR") if reply is not None else None
        if answer.status != 0 or code != "0" or reply is None:
            number = int(code) if isinstance(code, str) and code.isdigit() else answer.status
            raise _Stop(
                f"{target} refused the re-rated calls: {describe(number) or 'refused'} ({number});"
                " if the period changed meanwhile (a harvest load), run again"
            )
        rows: list[tuple[str, ...]] = []
        value = reply.get("REPORTS")
        for group in _groups(value):
            rows.append(tuple(str(v) for v in group))
        return rows

    async def _news(
        self, changed: list[int], reports: list[tuple[str, ...]], tmp: Path, began: str
    ) -> int:
        """Send one news item per user whose delivered reports hold a changed call."""
        by_user: dict[tuple[str, str], list[str]] = {}
        for user, user_entp, request_id, title, ranges in reports:
            spans = [tuple(int(x) for x in r.split("-")) for r in ranges.split(";") if r]
            if any(_holds(changed, a, b) for a, b in spans):
                by_user.setdefault((user, user_entp), []).append(f"{title} (request {request_id})")
        sent = 0
        for (user, user_entp), names in sorted(by_user.items()):
            if not await self._may_see(user):
                continue
            title = f"Calls re-priced: corp {self.corp}, {self.first} to {self.last}"
            text = (
                f"The calls of corp {self.corp} from {self.first} to {self.last} (GMT) were priced"
                f" again on {began} GMT by the tariffs now in force. These reports you received"
                " covered them and would now show other amounts:\n"
                + "".join(f"  {n}\n" for n in names)
            ).encode()
            path = tmp / f"news-{sent}.txt"
            path.write_bytes(text)
            channel = await self.pool.connect("INBX")
            async with channel:
                answer = await upload(
                    channel, news_add(user, user_entp, title, text), path, target="INBX"
                )
            if answer.status not in (0, 5005):
                raise _Stop(f"the inbox refused the news for {user}: {describe(answer.status)}")
            sent += 1
        return sent

    async def _may_see(self, user: str) -> bool:
        answer = await self.pool.request(
            "OE", Request("OE", serialize(Message("GUA", (Member("USERID", user),))).encode())
        )
        reply = _parse(answer.payload)
        if reply is None or reply.get("ERROR") != "0":
            return False
        return self.corp in text_items(reply.get("CORPIDS"))

    def _read_journal(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.journal.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data

    def _write_journal(self, entp: str, changed: list[int], began: str) -> None:
        self.journal.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.journal.with_suffix(".tmp")
        data = {"entp": entp, "changed": changed, "at": began}
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.journal)


def _holds(changed: list[int], first: int, last: int) -> bool:
    """Whether a changed minute lies in [first, last]."""
    at = bisect.bisect_left(changed, first)
    return at < len(changed) and changed[at] <= last


def _groups(value: Any) -> list[tuple[Any, ...]]:
    """The rows of a ``<<a,b,…><…>>`` value (one group, or a sequence of groups)."""
    members: tuple[Any, ...] = getattr(value, "members", ())
    if len(members) != 1:
        return []
    inner = members[0].value
    groups = getattr(inner, "parts", None)
    if groups is None:
        groups = (inner,) if getattr(inner, "members", None) is not None else ()
    return [tuple(m.value for m in getattr(g, "members", ())) for g in groups]


async def _main(deployment: Deployment, args: argparse.Namespace) -> str:
    pki = load_pki(deployment.state_dir)
    pool = ProxyPool(deployment.proxies, pki.internal_client_context("admin"), deployment.limits)
    try:
        with tempfile.TemporaryDirectory(prefix="starwrs-rerate-") as tmp:
            return await _Rerate(deployment, args, pool).run(Path(tmp))
    finally:
        with trio.CancelScope(shield=True):
            await pool.aclose()


def run(args: argparse.Namespace) -> int:
    """Run ``admin rerate``."""
    if args.last < args.first:
        print("starwrs admin rerate: --to is before --from", file=sys.stderr)
        return 2
    try:
        deployment = Deployment.load(args.state.resolve())
    except (OSError, KeyError, ValueError, TypeError):
        print(f"starwrs admin rerate: no deployment in {args.state}", file=sys.stderr)
        return 2
    try:
        print(trio.run(_main, deployment, args))
    except _Stop as stop:
        print(f"starwrs admin rerate: {stop.line}", file=sys.stderr)
        return stop.status
    except Exception as err:  # the pool's 7006, a broken connection, a refused TLS
        print(f"starwrs admin rerate: a server is unreachable: {err}", file=sys.stderr)
        return 2
    return 0
