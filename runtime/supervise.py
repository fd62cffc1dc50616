"""Service supervision: start every service as its own OS process and keep it running.

Theory of operation
-------------------
:func:`supervise` starts the proxies, then the dispatchers, then the web server, each
as ``python -m starwrs.cli run NAME`` with its log in ``STATE/logs/NAME.log``, waiting
for each one's ``ready`` line; then it prints ``starwrs: ready https://HOST:PORT`` and
watches them: a service that dies is reported and started again on its own port after
a back-off (1 s, doubling to 30 s while it keeps dying within a minute of starting;
:func:`restart_delay`), with ``pids.json`` rewritten; meanwhile the rest keep serving
and the dispatcher answers 7006 for it.  ``restart=False`` only reports.  SIGINT or
SIGTERM stops them all (SIGTERM, then SIGKILL after 5 s).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import trio
from starwrs.runtime.config import Deployment, process_label
from starwrs.runtime.metrics import RESTARTS, serve_metrics
from starwrs.runtime.services import instance_of

__all__ = ["restart_delay", "supervise"]

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


def _plan(deployment: Deployment) -> list[tuple[str, int]]:
    proxies = [instance_of(target) for target in deployment.proxies]
    dispatchers = [("dispatcher", i) for i in range(len(deployment.dispatchers))]
    return [*proxies, *dispatchers, ("web", 0)]


class _Child:
    def __init__(self, name: str, index: int, process: trio.Process, log_path: Path) -> None:
        self.log_path = log_path
        self.name = name
        self.index = index
        self.process = process

    @property
    def label(self) -> str:
        if self.name == "dispatcher":
            return f"dispatcher[{self.index}]"
        return process_label(self.name, self.index)

    def last_words(self) -> str:
        """``: <the last line of its log>``, or nothing when the log is empty."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(0, log.seek(0, 2) - 4096))
                lines = log.read().decode("utf-8", "replace").strip().splitlines()
        except OSError:
            return ""
        return f": {lines[-1].strip()}" if lines else ""


async def _wait_ready(child: _Child) -> None:
    stdout = child.process.stdout
    assert stdout is not None
    buffer = b""
    with trio.fail_after(READY_TIMEOUT):
        while b"\n" not in buffer:
            chunk = await stdout.receive_some(1024)
            if not chunk:
                raise RuntimeError(f"{child.label} exited before it was ready{child.last_words()}")
            buffer += chunk
    if not buffer.startswith(b"ready "):
        raise RuntimeError(f"{child.label} said {buffer!r} instead of ready")


async def _start(
    deployment: Deployment, name: str, index: int, inherit: tuple[int, ...] = ()
) -> _Child:
    state = deployment.state_dir
    log_name = process_label(name, index)
    log_path = state / "logs" / f"{log_name}.log"
    log = open(log_path, "ab")  # noqa: SIM115, ASYNC230 - handed to the child
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
            pass_fds=inherit,
        )
    finally:
        log.close()
    return _Child(name, index, process, log_path)


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


async def _keep_running(
    deployment: Deployment, children: list[_Child], slot: int, inherit: tuple[int, ...]
) -> None:
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
        RESTARTS.labels(child.name).inc()
        print(
            f"starwrs: {child.label} exited with status {code}; restarting in {delay:g} s",
            flush=True,
        )
        await trio.sleep(delay)
        fresh = await _start(deployment, child.name, child.index, inherit)
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


async def supervise(
    deployment: Deployment, *, restart: bool = True, inherit: tuple[int, ...] = ()
) -> int:
    """Start every service, keep them running until a signal; return the exit status.

    *inherit* are descriptors every service keeps open (the state lock,
    :mod:`starwrs.runtime.statelock`).
    """
    children: list[_Child] = []
    stopping = False
    try:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            for name, index in _plan(deployment):
                child = await _start(deployment, name, index, inherit)
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
                own_metrics = deployment.metrics.get("serve")
                if own_metrics is not None:
                    await nursery.start(serve_metrics, own_metrics)
                for slot, child in enumerate(children):
                    if restart:
                        nursery.start_soon(_keep_running, deployment, children, slot, inherit)
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
