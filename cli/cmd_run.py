"""``starwrs run NAME --state DIR [--index N]``: run one service in this process.

``starwrs serve`` starts every service this way, each as its own OS process.  The
process prints exactly one line ``ready NAME`` on stdout once it listens, logs to
stderr, and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import trio
from starwrs.runtime.config import Deployment
from starwrs.runtime.services import SERVICES, entry_point


def register(sub: Any) -> None:
    """Add the ``run`` sub-command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "run", help="run one service (used by 'starwrs serve')"
    )
    parser.add_argument("name", choices=sorted(SERVICES))
    parser.add_argument("--state", required=True, type=Path, help="state directory")
    parser.add_argument("--index", type=int, default=0, help="which dispatcher (0-based)")
    parser.set_defaults(func=run)


async def _main(name: str, deployment: Deployment, index: int) -> None:
    entry = entry_point(name)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: entry(deployment, index=index, task_status=task_status)
            )
            print(f"ready {name}", flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def run(args: argparse.Namespace) -> int:
    """Run the service until a signal; return the exit status."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {args.name}[{args.index}] %(levelname)s %(name)s: %(message)s",
    )
    try:
        deployment = Deployment.load(args.state)
    except (OSError, ValueError, KeyError) as err:
        print(f"starwrs run: cannot read {args.state}/deployment.json: {err}", file=sys.stderr)
        return 2
    trio.run(_main, args.name, deployment, args.index)
    return 0
