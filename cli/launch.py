"""Start a ``starwrs serve`` in a subprocess and wait for its ready line.

For the end-to-end tests and ``starwrs bench stack|rm``, which drive a real
deployment the way a user does.  :class:`Launched` keeps every line the supervisor
prints (``output``), the web URL, and stops everything with SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

__all__ = ["Launched", "launch"]

STARTUP_TIMEOUT = 120.0


class Launched:
    """A running ``starwrs serve`` subprocess."""

    def __init__(self, state: Path, process: subprocess.Popen[str]) -> None:
        self.state = state
        self.process = process
        self.output: list[str] = []
        self.url = ""
        self._ready = threading.Event()
        self._new_line = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._new_line:
                self.output.append(line.rstrip("\n"))
                self._new_line.notify_all()
            if line.startswith("starwrs: ready "):
                self.url = line.split()[-1]
                self._ready.set()
        self._ready.set()
        with self._new_line:
            self._new_line.notify_all()

    def wait_for_line(self, prefix: str, timeout: float) -> str:
        """Block until the supervisor has printed a line starting with *prefix*.

        Returns the first such line.

        Raises:
            TimeoutError: none within *timeout* seconds, or the output ended first.
        """

        def found() -> str | None:
            return next((line for line in self.output if line.startswith(prefix)), None)

        with self._new_line:
            self._new_line.wait_for(
                lambda: found() is not None or not self._reader.is_alive(), timeout
            )
            line = found()
        if line is None:
            raise TimeoutError(f"no line {prefix!r} within {timeout} s:\n" + "\n".join(self.output))
        return line

    @property
    def host(self) -> str:
        """The web server's host."""
        return self.url.split("//")[1].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        """The web server's port."""
        return int(self.url.rsplit(":", 1)[1])

    def logs(self) -> str:
        """The tail of every service log (for failure reports)."""
        folder = self.state / "logs"
        if not folder.exists():
            return ""
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(folder.glob("*.log"))
        )

    def stop(self) -> None:
        """SIGTERM the supervisor (it stops every service), then clean up."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(30)
        if self.process.stdout is not None:
            self.process.stdout.close()


#: calls in a test system's demo datamart (``serve`` makes 300,000 by default)
DEMO_CALLS = "20000"


def launch(state: Path, *extra: str, timeout: float = STARTUP_TIMEOUT) -> Launched:
    """Run ``starwrs serve --demo --port 0 --state STATE EXTRA...``; wait until ready.

    Raises:
        RuntimeError: it did not get ready in time (the message has its output and logs).
    """
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "starwrs.cli",
            "serve",
            "--demo",
            "--port",
            "0",
            "--state",
            str(state),
            # a small demo datamart keeps a test system's first start quick
            *(() if "--demo-calls" in extra else ("--demo-calls", DEMO_CALLS)),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    launched = Launched(state, process)
    if not launched._ready.wait(timeout) or not launched.url:
        launched.stop()
        raise RuntimeError(
            "starwrs serve did not get ready:\n"
            + "\n".join(launched.output)
            + "\n"
            + launched.logs()
        )
    return launched
