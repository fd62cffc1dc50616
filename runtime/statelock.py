"""One deployment per state directory.

Theory of operation
-------------------
``starwrs serve`` takes an exclusive ``flock`` on ``STATE/serve.lock`` before it
writes anything, and hands the locked descriptor to every service it starts
(``pass_fds``).  An flock belongs to the open file description, so the lock is held
as long as *any* process of the deployment lives -- a supervisor killed with -9
leaves its services running, and a second ``serve`` must still refuse.  The file
holds the pid of the ``serve`` that took it, for the refusal message only; the
lock itself, not the file's presence, decides (a stale file from a crash is
harmless).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["LOCK_FILE", "StateBusy", "lock_state"]

LOCK_FILE = "serve.lock"


class StateBusy(Exception):
    """Another deployment holds the state directory."""


def lock_state(state: Path) -> int:
    """Lock *state* for this deployment; return the descriptor to keep open.

    Raises:
        StateBusy: another ``starwrs serve`` (or one of its services) holds it.
        OSError: the directory cannot be created or the lock file opened.
    """
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise StateBusy(
            f"{state} is in use by another starwrs serve (pid {holder}); "
            "stop it first or choose another --state"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    os.set_inheritable(fd, True)
    return fd
