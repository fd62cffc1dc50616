"""``starwrs serve``: start the whole system, each service its own OS process.

Theory of operation
-------------------
1. create the state directory, the deployment CA and certificates (first start);
2. choose the internal ports and write ``STATE/deployment.json``;
3. with ``--demo``, load the demo enterprises and users into order entry and write
   ``STATE/demo-credentials.json``;
4. start every service as its own OS process and supervise them
   (:mod:`starwrs.runtime.supervise`: restarts with back-off, ``pids.json``;
   ``--no-restart`` only reports; Ctrl-C or SIGTERM stops them all).
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from functools import partial
from pathlib import Path
from typing import Any

import trio
from starwrs.runtime import logs
from starwrs.runtime.config import Address, Deployment, Limits, free_port, process_label
from starwrs.runtime.pki import ensure_pki
from starwrs.runtime.services import instance_of, proxy_targets
from starwrs.runtime.statelock import StateBusy, lock_state
from starwrs.runtime.supervise import supervise
from starwrs.storage.datamart.partitions import PartitionMapError, read_partition_map


def register(sub: Any) -> None:
    """Add the ``serve`` sub-command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "serve", help="start the whole system (web, dispatcher, proxies)"
    )
    parser.add_argument("--state", type=Path, default=Path("state"), help="state directory")
    parser.add_argument(
        "--demo", action="store_true", help="load the demo enterprises, users and datamart"
    )
    parser.add_argument(
        "--demo-calls",
        type=int,
        default=None,
        metavar="N",
        help="calls in the demo datamart (default 300000; made on first start only)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="web server address")
    parser.add_argument("--port", type=int, default=8443, help="web server port (0: any free)")
    parser.add_argument("--dispatchers", type=int, default=1, help="dispatcher processes")
    parser.add_argument("--cert", help="the web server's certificate chain (PEM)")
    parser.add_argument("--key", help="the web server's private key (PEM)")
    parser.add_argument("--session-idle", type=float, help="session idle timeout, seconds")
    parser.add_argument("--session-absolute", type=float, help="session lifetime, seconds")
    parser.add_argument("--proxy-timeout", type=float, help="seconds to wait for a proxy")
    parser.add_argument(
        "--head-timeout", type=float, help="seconds a client has to send a request head"
    )
    parser.add_argument(
        "--log-level",
        action="append",
        default=[],
        type=_level_option,
        metavar="SERVICE=LEVEL",
        help="a service's log level, e.g. rm=DEBUG (repeatable; default INFO)",
    )
    parser.add_argument(
        "--smtp",
        type=_smtp_option,
        metavar="HOST:PORT",
        help="mail relay for the inbox's notifications (default: the Maildir STATE/mail/)",
    )
    parser.add_argument(
        "--pager-gateway",
        type=_pager_option,
        metavar="ADDRESS",
        help="e-mail-to-pager gateway, {pin} and {type} replaced (default {pin}@pager.invalid)",
    )
    parser.add_argument(
        "--harvest-smtp",
        type=_listen_option,
        default="127.0.0.1:0",
        metavar="HOST:PORT",
        help="where the harvest takes collectors' e-mail (default a free loopback port)",
    )
    parser.add_argument(
        "--harvest-mailbox",
        type=_mailbox_option,
        default="harvest@localhost",
        metavar="ADDRESS",
        help="the mailbox collectors send to (default harvest@localhost)",
    )
    parser.add_argument(
        "--no-restart",
        dest="restart",
        action="store_false",
        help="report a service that dies instead of starting it again",
    )
    parser.set_defaults(func=run)


def _level_option(text: str) -> tuple[str, str]:
    try:
        return logs.parse_level_option(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _smtp_option(text: str) -> str:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:25)")
    return f"{host.strip('[]')}:{int(port)}"


def _listen_option(text: str) -> str:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (port 0: any free one)")
    return f"{host.strip('[]')}:{int(port)}"


def _mailbox_option(text: str) -> str:
    local, at, domain = text.strip().rpartition("@")
    if not at or not local or not domain or not text.isascii() or any(c in text for c in " <>"):
        raise argparse.ArgumentTypeError(f"{text!r} is not an e-mail address")
    return text.strip()


def _pager_option(text: str) -> str:
    if "@" not in text or "{pin}" not in text:
        raise argparse.ArgumentTypeError(
            f"{text!r} needs an @ and {{pin}}, e.g. {{pin}}@pager.example"
        )
    return text.strip()


def _limits(args: argparse.Namespace) -> Limits:
    overrides: dict[str, float] = {}
    if args.session_idle is not None:
        overrides["session_idle"] = args.session_idle
    if args.session_absolute is not None:
        overrides["session_absolute"] = args.session_absolute
    if args.proxy_timeout is not None:
        overrides["proxy_timeout"] = args.proxy_timeout
    if args.head_timeout is not None:
        overrides["head_timeout"] = args.head_timeout
    for name, value in overrides.items():
        if not value > 0:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive number of seconds")
    return Limits(**overrides)  # type: ignore[arg-type]


def prepare(args: argparse.Namespace) -> Deployment:
    """Steps 1-2: PKI and ``deployment.json``."""
    state: Path = args.state.resolve()
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    (state / "logs").mkdir(exist_ok=True)
    ensure_pki(state, hostnames=[args.host], server_cert=args.cert, server_key=args.key)
    port = args.port or free_port(args.host)
    try:
        partitions = read_partition_map(state).partitions
    except PartitionMapError as err:
        raise ValueError(str(err)) from None
    targets = proxy_targets(partitions)
    labels = [
        "serve",
        "web",
        *(process_label("dispatcher", i) for i in range(args.dispatchers)),
        *(process_label(*instance_of(target)) for target in targets),
    ]
    deployment = Deployment(
        state_dir=state,
        web=Address(args.host, port),
        dispatchers=tuple(Address("127.0.0.1", free_port()) for _ in range(args.dispatchers)),
        proxies={target: Address("127.0.0.1", free_port()) for target in targets},
        limits=_limits(args),
        web_cert=args.cert,
        web_key=args.key,
        metrics={label: Address("127.0.0.1", free_port()) for label in labels},
        log_levels=dict(args.log_level),
        smtp=getattr(args, "smtp", None),
        pager_gateway=getattr(args, "pager_gateway", None) or "{pin}@pager.invalid",
        harvest_smtp=_harvest_smtp(getattr(args, "harvest_smtp", None) or "127.0.0.1:0"),
        harvest_mailbox=getattr(args, "harvest_mailbox", None) or "harvest@localhost",
    )
    deployment.save()
    return deployment


def _harvest_smtp(text: str) -> Address:
    """The harvest's SMTP address; port 0 becomes a free port now (kept on restarts)."""
    host, _, port = text.rpartition(":")
    return Address(host, int(port) or free_port(host))


async def load_demo_data(state: Path) -> Path:
    """Step 3: demo enterprises and users; returns the credentials file."""
    from starwrs.fixtures.demo import CREDENTIALS_FILE, load_demo
    from starwrs.proxies.oe.store import open_order_entry

    async with open_order_entry(state / "oe.db") as store:
        await load_demo(store, state)
    return state / CREDENTIALS_FILE


def check_port(host: str, port: int) -> None:
    """Fail with one clear line if the web server's address cannot be bound.

    Raises:
        ValueError: the port is in use or the address is not this machine's.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except PermissionError:
            raise ValueError(
                f"port {port} on {host} needs privileges; choose another with --port"
            ) from None
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise ValueError(
                    f"port {port} on {host} is in use by another program; "
                    "choose another with --port (0: any free port)"
                ) from None
            raise ValueError(f"cannot listen on {host}:{port}: {err.strerror}") from None


def load_demo_datamart(state: Path, calls: int | None) -> str:
    """Step 3b: the demo datamart (first start only); what was made, or ""."""
    from starwrs.fixtures.datamart import DEMO_CALLS, demo_datamart

    result = demo_datamart(state, calls=DEMO_CALLS if calls is None else calls)
    if not result.total:
        return ""
    return f"{result.total:,} calls in {result.seconds:.1f} s"


def run(args: argparse.Namespace) -> int:
    """``starwrs serve``."""
    if not 0 <= args.port <= 65535:
        print(f"starwrs serve: --port {args.port} is not a TCP port (0-65535)", file=sys.stderr)
        return 2
    if args.demo_calls is not None and not 0 <= args.demo_calls <= 50_000_000:
        print("starwrs serve: --demo-calls must be between 0 and 50000000", file=sys.stderr)
        return 2
    if args.dispatchers < 1 or args.dispatchers > 16:
        print("starwrs serve: --dispatchers must be between 1 and 16", file=sys.stderr)
        return 2
    try:
        lock = lock_state(args.state.resolve())
    except StateBusy as err:
        print(f"starwrs serve: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"starwrs serve: cannot use {args.state}: {err.strerror or err}", file=sys.stderr)
        return 2
    try:
        check_port(args.host, args.port)
        deployment = prepare(args)
    except ValueError as err:
        print(f"starwrs serve: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"starwrs serve: cannot prepare {args.state}: {err}", file=sys.stderr)
        return 2
    if args.demo:
        creds = trio.run(load_demo_data, deployment.state_dir)
        print(f"starwrs: demo users and passwords in {creds}", flush=True)
        made = load_demo_datamart(deployment.state_dir, args.demo_calls)
        if made:
            print(f"starwrs: demo datamart: {made}", flush=True)
    if deployment.harvest_smtp is not None:
        print(
            f"starwrs: harvest takes mail for {deployment.harvest_mailbox}"
            f" at {deployment.harvest_smtp} (STARTTLS)",
            flush=True,
        )
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return trio.run(partial(supervise, deployment, restart=args.restart, inherit=(lock,)))
