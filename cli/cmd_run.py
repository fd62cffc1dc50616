"""``starwrs run NAME --state DIR [--index N]``: run one service in this process.

``starwrs serve`` starts every service this way, each as its own OS process.  The
process prints exactly one line ``ready NAME`` on stdout once it listens, logs to
stderr, and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import trio
from starwrs.runtime import logs
from starwrs.runtime.config import Deployment, process_label
from starwrs.runtime.metrics import serve_metrics
from starwrs.runtime.services import entry_point, installed_services


def register(sub: Any) -> None:
    """Add the ``run`` sub-command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "run", help="run one service (used by 'starwrs serve')"
    )
    parser.add_argument("name", choices=installed_services())
    parser.add_argument("--state", required=True, type=Path, help="state directory")
    parser.add_argument("--index", type=int, default=0, help="which dispatcher (0-based)")
    parser.set_defaults(func=run)


async def _main(name: str, deployment: Deployment, index: int) -> None:
    entry = entry_point(name)
    metrics = deployment.metrics.get(process_label(name, index))
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            if metrics is not None:
                await nursery.start(serve_metrics, metrics)
            await nursery.start(
                lambda task_status: entry(deployment, index=index, task_status=task_status)
            )
            print(f"ready {name}", flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def run(args: argparse.Namespace) -> int:
    """Run the service until a signal; return the exit status."""
    try:
        deployment = Deployment.load(args.state)
    except (OSError, ValueError, KeyError) as err:
        print(f"starwrs run: cannot read {args.state}/deployment.json: {err}", file=sys.stderr)
        return 2
    # every record one escaped line on stderr, at the level deployment.json names
    logs.configure(args.name, logs.level_for(deployment.log_levels, args.name), index=args.index)
    if args.name == "dispatcher" and not 0 <= args.index < len(deployment.dispatchers):
        print(
            f"starwrs run: --index {args.index} is not a dispatcher of this deployment "
            f"(it has {len(deployment.dispatchers)}: 0-{len(deployment.dispatchers) - 1})",
            file=sys.stderr,
        )
        return 2
    try:
        trio.run(_main, args.name, deployment, args.index)
    except (OSError, BaseExceptionGroup) as failure:
        cause = _first_os_error(failure)
        if cause is None:
            # a service crash: its log needs the whole story, not one line
            logging.getLogger("starwrs.run").critical(
                "%s crashed", args.name, exc_info=failure
            )
            return 1
        print(f"starwrs run {args.name}: {_explain(cause, deployment)}", file=sys.stderr)
        return 2
    return 0


def _first_os_error(failure: BaseException) -> OSError | None:
    """The OS error inside *failure* (trio wraps a task's error in groups)."""
    if isinstance(failure, OSError):
        return failure
    if isinstance(failure, BaseExceptionGroup):
        for inner in failure.exceptions:
            found = _first_os_error(inner)
            if found is not None:
                return found
    return None


def _explain(err: OSError, deployment: Deployment) -> str:
    """One line for the OS error that stopped the service (address in use, ...)."""
    if err.errno == errno.EADDRINUSE:
        return (
            "its address is in use -- is this deployment already running? "
            f"(starwrs status --state {deployment.state_dir})"
        )
    return f"{err.__class__.__name__}: {err}"
