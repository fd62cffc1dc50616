"""``starwrs serve``: start the whole system, each service its own OS process.

Theory of operation
-------------------
1. create the state directory, the deployment CA and certificates (first start);
2. choose the internal ports and write ``STATE/deployment.json``;
3. with ``--demo``, load the demo enterprises and users into order entry and write
   ``STATE/demo-credentials.json``;
4. start the proxies, then the dispatchers, then the web server, each as
   ``python -m starwrs.cli run NAME`` with its log in ``STATE/logs/NAME.log``,
   waiting for each one's ``ready`` line;
5. print ``starwrs: ready https://HOST:PORT`` and supervise: a service that dies is
   reported and started again on its own port after a back-off (1 s, doubling to
   30 s while it keeps dying within a minute of starting; :func:`restart_delay`),
   with ``pids.json`` rewritten; meanwhile the rest keep serving and the dispatcher
   answers 7006 for it.  ``--no-restart`` only reports.  Ctrl-C or SIGTERM stops
   them all (SIGTERM, then SIGKILL after 5 s).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import trio
from starwrs.cli.services import installed_proxies
from starwrs.dispatcher.config import Address, Deployment, Limits, free_port
from starwrs.dispatcher.pki import ensure_pki

READY_TIMEOUT = 60.0
#: restart back-off: first delay, ceiling, and how long a run must last to reset it
RESTART_FIRST = 1.0
RESTART_MAX = 30.0
RESTART_STABLE = 60.0


def restart_delay(previous: float | None, lived: float) -> float:
    """Seconds to wait before starting a service again.

    *previous* is the delay before its last start (None: it never restarted);
    *lived* is how long that run lasted.  A service that ran for a while starts
    again after :data:`RESTART_FIRST`; one that keeps dying waits twice as long each
    time, up to :data:`RESTART_MAX`, so a crash loop costs little.
    """
    if previous is None or lived >= RESTART_STABLE:
        return RESTART_FIRST
    return min(previous * 2, RESTART_MAX)


def register(sub: Any) -> None:
    """Add the ``serve`` sub-command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "serve", help="start the whole system (web, dispatcher, proxies)"
    )
    parser.add_argument("--state", type=Path, default=Path("state"), help="state directory")
    parser.add_argument("--demo", action="store_true", help="load the demo enterprises and users")
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
        "--no-restart",
        dest="restart",
        action="store_false",
        help="report a service that dies instead of starting it again",
    )
    parser.set_defaults(func=run)


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
    return Limits(**overrides)  # type: ignore[arg-type]


def prepare(args: argparse.Namespace) -> Deployment:
    """Steps 1-2: PKI and ``deployment.json``."""
    state: Path = args.state.resolve()
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    (state / "logs").mkdir(exist_ok=True)
    ensure_pki(state, hostnames=[args.host], server_cert=args.cert, server_key=args.key)
    port = args.port or free_port(args.host)
    deployment = Deployment(
        state_dir=state,
        web=Address(args.host, port),
        dispatchers=tuple(Address("127.0.0.1", free_port()) for _ in range(args.dispatchers)),
        proxies={target: Address("127.0.0.1", free_port()) for target in installed_proxies()},
        limits=_limits(args),
        web_cert=args.cert,
        web_key=args.key,
    )
    deployment.save()
    return deployment


async def load_demo_data(state: Path) -> Path:
    """Step 3: demo enterprises and users; returns the credentials file."""
    from starwrs.fixtures.demo import CREDENTIALS_FILE, load_demo
    from starwrs.proxies.oe.store import open_order_entry

    async with open_order_entry(state / "oe.db") as store:
        await load_demo(store, state)
    return state / CREDENTIALS_FILE


def _plan(deployment: Deployment) -> list[tuple[str, int]]:
    proxies = [
        (name, 0) for target, name in installed_proxies().items() if target in deployment.proxies
    ]
    dispatchers = [("dispatcher", i) for i in range(len(deployment.dispatchers))]
    return [*proxies, *dispatchers, ("web", 0)]


class _Child:
    def __init__(self, name: str, index: int, process: trio.Process) -> None:
        self.name = name
        self.index = index
        self.process = process

    @property
    def label(self) -> str:
        return self.name if self.name != "dispatcher" else f"dispatcher[{self.index}]"


async def _wait_ready(child: _Child) -> None:
    stdout = child.process.stdout
    assert stdout is not None
    buffer = b""
    with trio.fail_after(READY_TIMEOUT):
        while b"\n" not in buffer:
            chunk = await stdout.receive_some(1024)
            if not chunk:
                raise RuntimeError(f"{child.label} exited before it was ready")
            buffer += chunk
    if not buffer.startswith(b"ready "):
        raise RuntimeError(f"{child.label} said {buffer!r} instead of ready")


async def _start(deployment: Deployment, name: str, index: int) -> _Child:
    state = deployment.state_dir
    log_name = name if name != "dispatcher" else f"dispatcher{index}"
    log = open(state / "logs" / f"{log_name}.log", "ab")  # noqa: SIM115, ASYNC230 - handed to the child
    try:
        process = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-m",
                "starwrs.cli",
                "run",
                name,
                "--state",
                str(state),
                "--index",
                str(index),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
    finally:
        log.close()
    return _Child(name, index, process)


async def _stop(children: list[_Child]) -> None:
    with trio.CancelScope(shield=True):
        for child in reversed(children):
            if child.process.returncode is None:
                child.process.send_signal(signal.SIGTERM)
        with trio.move_on_after(5):
            for child in children:
                await child.process.wait()
        for child in children:
            if child.process.returncode is None:
                child.process.kill()
                await child.process.wait()


def _write_pids(deployment: Deployment, children: list[_Child]) -> None:
    pids = {c.label: c.process.pid for c in children}
    path = deployment.state_dir / "pids.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(pids, indent=2))
    temporary.replace(path)  # readers never see half a file


async def _keep_running(deployment: Deployment, children: list[_Child], slot: int) -> None:
    """Start ``children[slot]`` again each time it dies, with back-off."""
    delay: float | None = None
    while True:
        child = children[slot]
        started = trio.current_time()
        code = await child.process.wait()
        lived = trio.current_time() - started
        if child.process.stdout is not None:
            await child.process.stdout.aclose()
        delay = restart_delay(delay, lived)
        print(
            f"starwrs: {child.label} exited with status {code}; restarting in {delay:g} s",
            flush=True,
        )
        await trio.sleep(delay)
        fresh = await _start(deployment, child.name, child.index)
        children[slot] = fresh  # _stop() stops whichever process is current
        try:
            await _wait_ready(fresh)
        except (RuntimeError, trio.TooSlowError) as err:
            print(f"starwrs: {fresh.label} did not restart: {err}", flush=True)
            if fresh.process.returncode is None:
                fresh.process.kill()
            continue  # the next round waits for it to end and backs off further
        _write_pids(deployment, children)
        print(f"starwrs: {fresh.label} restarted pid={fresh.process.pid}", flush=True)


async def supervise(deployment: Deployment, *, restart: bool = True) -> int:
    """Steps 4-5; returns the exit status."""
    children: list[_Child] = []
    stopping = False
    try:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            for name, index in _plan(deployment):
                child = await _start(deployment, name, index)
                children.append(child)
                await _wait_ready(child)
                print(f"starwrs: {child.label} pid={child.process.pid}", flush=True)
            _write_pids(deployment, children)
            web = deployment.web
            print(f"starwrs: ready https://{web.host}:{web.port}", flush=True)

            async def report(child: _Child) -> None:
                code = await child.process.wait()
                if not stopping:
                    print(f"starwrs: {child.label} exited with status {code}", flush=True)

            async with trio.open_nursery() as nursery:
                for slot, child in enumerate(children):
                    if restart:
                        nursery.start_soon(_keep_running, deployment, children, slot)
                    else:
                        nursery.start_soon(report, child)
                async for signum in signals:
                    print(f"starwrs: stopping ({signal.Signals(signum).name})", flush=True)
                    stopping = True
                    nursery.cancel_scope.cancel()
                    break
    except (RuntimeError, trio.TooSlowError) as err:
        stopping = True
        print(
            f"starwrs: failed to start: {err} (logs in {deployment.state_dir / 'logs'})",
            file=sys.stderr,
        )
        await _stop(children)
        return 1
    await _stop(children)
    print("starwrs: stopped", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    """``starwrs serve``."""
    try:
        deployment = prepare(args)
    except (OSError, ValueError) as err:
        print(f"starwrs: cannot prepare {args.state}: {err}", file=sys.stderr)
        return 2
    if args.demo:
        creds = trio.run(load_demo_data, deployment.state_dir)
        print(f"starwrs: demo users and passwords in {creds}", flush=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return trio.run(partial(supervise, deployment, restart=args.restart))
