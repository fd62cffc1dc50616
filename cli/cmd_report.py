"""``starwrs report``: run one Appendix D report request through the running system.

::

    starwrs report [--state DIR] [--out FILE|-] [--corp C] [--priority 1-9]
                   [--timeout S] 'ARD<ENTPID=…,USERID=…,REQUESTID=…,…>'

As an internal operator client (the deployment's ``admin`` certificate) it
publishes the ARD to the arbitrator exactly as the Report Scheduler does (the
envelope of PROTOCOL.md section 7: ``corp_id`` from ``--corp`` or the ARD's first
BILLING corp, ``request_id`` its REQUESTID), asks the arbitrator which partition
serves the corp, follows the request's ``req_status`` rows at that partition's DSS
until it ends, prints the NRL the DSS produced on stdout and writes the report file
(``--out``, default its own name in the current directory; ``-`` for stdout, then
the NRL goes to stderr).  A request that fails prints one line with its status,
code and what the code means, and exits 1; a usage or connection problem exits 2.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgpack
import trio
from starwrs.grammar import Group, Message, MessageError, Seq, Tagged, TList, parse
from starwrs.grammar.errors import describe
from starwrs.protocol import Request
from starwrs.runtime.channel import PeerGone, ReadTimeout
from starwrs.runtime.config import Deployment
from starwrs.runtime.pki import load_pki
from starwrs.runtime.pool import ProxyPool
from starwrs.runtime.transfer import TransferRefused, fetch

#: seconds between two looks at the request's status
POLL = 0.2
#: statuses after which nothing more happens at the partition
_DONE = {
    "format_success",
    "NRL_sent",
    "parser_failed",
    "IAIO_failed",
    "format_failed",
    "ftp_failed",
}


def register(sub: Any) -> None:
    """Add the ``report`` sub-command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "report", help="run one Appendix D report request through the running system"
    )
    parser.add_argument("ard", help="the request: ARD<ENTPID=…,USERID=…,REQUESTID=…,…>")
    parser.add_argument("--state", type=Path, default=Path("state"), help="state directory")
    parser.add_argument("--out", help="where the report file goes (- for stdout)")
    parser.add_argument("--corp", help="the corp id to route by (default: the first BILLING corp)")
    parser.add_argument("--priority", type=int, default=1, choices=range(1, 10), metavar="1-9")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (600)")
    parser.set_defaults(func=run)


class _Fail(Exception):
    def __init__(self, status: int, line: str) -> None:
        super().__init__(line)
        self.status = status
        self.line = line


def _first_corp(value: object) -> str | None:
    """The first corp id of a BILLING value, in any of the seed's forms."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, Tagged):
        return _first_corp(value.group)
    if isinstance(value, Group):
        for member in value.members:
            found = _first_corp(member.value)
            if found:
                return found
    parts: tuple[object, ...] = ()
    if isinstance(value, Seq):
        parts = value.parts
    elif isinstance(value, TList):
        parts = value.items
    for part in parts:
        found = _first_corp(part)
        if found:
            return found
    return None


def routing(message: Message, corp: str | None) -> tuple[str, int]:
    """(corp id, REQUESTID) of the request, read leniently (the DSS validates)."""
    filters = message.get("FILTERS")
    billing = None
    if isinstance(filters, Group):
        billing = next((m.value for m in filters.members if m.key == "BILLING"), None)
    corp = corp or _first_corp(billing)
    if not corp:
        raise _Fail(2, "starwrs report: no corp id in FILTERS.BILLING; give --corp")
    rid = message.get("REQUESTID")
    if not (isinstance(rid, str) and rid.isdigit() and int(rid) < 2**31):
        raise _Fail(2, "starwrs report: the ARD needs REQUESTID=<0..2147483647>")
    return corp, int(rid)


async def _sync(pool: ProxyPool, target: str, payload: bytes) -> tuple[int, bytes]:
    answer = await pool.request(target, Request(target, payload))
    return answer.status, answer.payload


async def _run(args: argparse.Namespace, deployment: Deployment) -> int:
    message = parse(args.ard)
    corp, request_id = routing(message, args.corp)
    pki = load_pki(deployment.state_dir)
    pool = ProxyPool(deployment.proxies, pki.internal_client_context("admin"), deployment.limits)
    try:
        with trio.fail_after(args.timeout):
            envelope = {
                "subject": "Arbitrator",
                "request_id": request_id,
                "corp_id": corp,
                "priority": args.priority,
                "message": args.ard,
            }
            status, payload = await _sync(pool, "ARB", msgpack.packb(envelope))
            if status != 0:
                raise _Fail(
                    1, f"starwrs report: the arbitrator refused: {status} {describe(status)}"
                )
            routed = msgpack.unpackb(payload)
            target = f"DSS{routed['ods']}"
            answer = await _follow(pool, target, request_id)
            return await _finish(pool, target, request_id, answer, args)
    finally:
        with trio.CancelScope(shield=True):
            await pool.aclose()


async def _follow(pool: ProxyPool, target: str, request_id: int) -> Message:
    """Poll RQS until the request's status is final; its RQSA."""
    while True:
        status, payload = await _sync(pool, target, f"RQS<REQUESTID={request_id}>".encode())
        reply = parse(payload.decode("utf-8"))
        if status == 0 and reply.get("STATUS") in _DONE:
            return reply
        if status not in (0, 6115):  # 6115: not queued yet (the outbox delivers soon)
            raise _Fail(1, f"starwrs report: {target} answered {status} {describe(status)}")
        await trio.sleep(POLL)


async def _finish(
    pool: ProxyPool, target: str, request_id: int, answer: Message, args: argparse.Namespace
) -> int:
    status = answer.get("STATUS")
    if status != "format_success":
        code = answer.get("ERRCODE")
        number = int(code) if isinstance(code, str) and code.isdigit() else 0
        why = answer.get("ERRDESC") or ""
        raise _Fail(
            1,
            json.dumps(
                {
                    "error": number,
                    "message": f"{status}: {number} {describe(number)}".strip(),
                    "detail": why,
                    "request_id": request_id,
                    "partition": target,
                }
            ),
        )
    nrl = str(answer.get("NRL") or "")
    name = str(answer.get("FILE") or f"r{request_id}.csv")
    to_stdout = args.out == "-"
    out = Path(args.out) if args.out and not to_stdout else Path(name)
    if to_stdout:
        with tempfile.TemporaryDirectory() as folder:
            staged = Path(folder) / name
            await _fetch(pool, target, request_id, staged)
            sys.stdout.buffer.write(staged.read_bytes())
            sys.stdout.flush()
        print(nrl, file=sys.stderr)
        return 0
    partial = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
    try:
        await _fetch(pool, target, request_id, partial)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    print(nrl)
    print(f"starwrs report: {out} ({out.stat().st_size} bytes)", file=sys.stderr)
    return 0


async def _fetch(pool: ProxyPool, target: str, request_id: int, out: Path) -> None:
    channel = await pool.connect(target)
    async with channel:
        try:
            await fetch(channel, f"RPT<REQUESTID={request_id}>", out, target=target)
        except TransferRefused as err:
            raise _Fail(1, f"starwrs report: {target} refused the file: {err}") from None


def run(args: argparse.Namespace) -> int:
    """Run ``starwrs report``; exit 0 with a report, 1 when it failed, 2 otherwise."""
    try:
        deployment = Deployment.load(args.state.resolve())
    except (OSError, ValueError, KeyError, TypeError):
        print(f"starwrs report: no deployment in {args.state} (start one: serve)", file=sys.stderr)
        return 2
    if "ARB" not in deployment.proxies:
        print("starwrs report: this deployment has no arbitrator", file=sys.stderr)
        return 2
    if not args.timeout > 0 or math.isinf(args.timeout):
        print("starwrs report: --timeout must be a positive number of seconds", file=sys.stderr)
        return 2
    try:
        return trio.run(_run, args, deployment)
    except _Fail as fail:
        print(fail.line, file=sys.stderr)
        return fail.status
    except MessageError as err:
        print(json.dumps(err.to_json()), file=sys.stderr)
        return 1
    except trio.TooSlowError:
        print(f"starwrs report: no result within {args.timeout:g} s", file=sys.stderr)
        return 1
    except (OSError, PeerGone, ReadTimeout) as err:
        print(f"starwrs report: cannot reach the system: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # StarwrsError from the pool: 7006/7007
        code = getattr(err, "code", None)
        if code is not None:
            print(f"starwrs report: {int(code)} {describe(int(code))}: {err}", file=sys.stderr)
            return 2
        raise
