"""``starwrs admin datamart``: the operator's view of the ODS partitions.

::

    starwrs admin --state DIR datamart move CORP ODS2   # move a corp's calls to partition 2
    starwrs admin --state DIR datamart where CORP       # which partition holds a corp

Both go to the arbitrator (``MOVE`` / ``WHER``, grammar/catalogue_ods.py) with the
deployment's ``admin`` certificate.  A move copies the corp's calls to the new
partition, switches the routing table, and has the old partition purge them once
the requests it already had are done; reports for the corp keep being answered
throughout.  Exit 0 on ``ERROR=0``, 1 on an error answer (one line with what its
code means), 2 for a usage or connection problem.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

import trio
from starwrs.grammar import MessageError, parse
from starwrs.grammar.errors import describe
from starwrs.protocol import Request
from starwrs.runtime.config import Deployment
from starwrs.runtime.pki import load_pki
from starwrs.runtime.pool import ProxyPool

_ODS = re.compile(r"(?:ODS)?([1-9][0-9]?)", re.IGNORECASE)
_CORP = re.compile(r"[A-Za-z0-9]{1,12}")


def register(actions: Any) -> None:
    """Add ``datamart move|where`` to ``starwrs admin``."""
    datamart = actions.add_parser("datamart", help="ODS partitions: move a corp, find a corp")
    steps = datamart.add_subparsers(dest="datamart_action", required=True)
    move = steps.add_parser("move", help="move a corp's calls to another partition")
    move.add_argument("corp", type=_corp)
    move.add_argument("partition", type=_partition, metavar="ODS<k>")
    move.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait (3600)")
    where = steps.add_parser("where", help="which partition holds a corp")
    where.add_argument("corp", type=_corp)
    for parser in (move, where):
        parser.set_defaults(func=run)


def _corp(text: str) -> str:
    if not _CORP.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a corp id (1-12 letters or digits)")
    return text


def _partition(text: str) -> int:
    found = _ODS.fullmatch(text.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r} is not a partition (ODS1, ODS2, ...)")
    return int(found.group(1))


async def _ask(deployment: Deployment, text: str, seconds: float) -> tuple[int, str]:
    pki = load_pki(deployment.state_dir)
    limits = deployment.limits
    pool = ProxyPool(deployment.proxies, pki.internal_client_context("admin"), limits)
    try:
        with trio.fail_after(seconds):
            # a move runs as long as copying the corp takes: no proxy_timeout on it
            channel = await pool.connect("ARB")
            async with channel:
                await channel.send(Request("ARB", text.encode()))
                answer = await channel.receive(seconds)
        return getattr(answer, "status", 1), getattr(answer, "payload", b"").decode()
    finally:
        with trio.CancelScope(shield=True):
            await pool.aclose()


def run(args: argparse.Namespace) -> int:
    """Run one ``admin datamart`` action."""
    try:
        deployment = Deployment.load(args.state.resolve())
    except (OSError, KeyError, ValueError, TypeError):
        print(f"starwrs admin: no deployment in {args.state}", file=sys.stderr)
        return 2
    if args.datamart_action == "move":
        text, timeout = f"MOVE<CORP={args.corp},ODS={args.partition}>", args.timeout
    else:
        text, timeout = f"WHER<CORP={args.corp}>", 60.0
    try:
        status, payload = trio.run(_ask, deployment, text, timeout)
    except trio.TooSlowError:
        print(f"starwrs admin datamart: no answer within {timeout:g} s", file=sys.stderr)
        return 2
    except Exception as err:  # 7006 from the pool, a broken connection
        print(f"starwrs admin datamart: arbitrator unreachable: {err}", file=sys.stderr)
        return 2
    try:
        code = parse(payload).get("ERROR")
    except MessageError:
        code = None
    if status == 0 and code == "0":
        print(payload)
        return 0
    number = int(code) if isinstance(code, str) and code.isdigit() else status
    print(
        f"starwrs admin datamart {args.datamart_action} {args.corp}: "
        f"{describe(number) or 'refused'} ({number})",
        file=sys.stderr,
    )
    return 1
