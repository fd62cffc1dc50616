"""Password hashing for order entry: argon2id off the trio loop.

Theory of operation
-------------------
Passwords are stored as argon2id hashes in argon2's PHC string form
(``$argon2id$v=19$m=19456,t=2,p=1$salt$hash``), so the parameters travel with
each hash and :meth:`PasswordChecker.needs_rehash` can tell when they changed.
The default parameters are OWASP's minimum for argon2id (m=19 MiB, t=2, p=1);
tests pass a cheap :class:`argon2.PasswordHasher`.  Hashing and verifying are
CPU work of tens of milliseconds, so both run in a worker thread
(``trio.to_thread``; argon2-cffi releases the GIL).

Each hash or check takes ``memory_cost`` (19 MiB) while it runs, in its own
thread; with trio's default of 40 worker threads a flood of logons held 40 of
them at once, ~800 MB, most of which the threads' malloc arenas kept afterwards
(order entry measured 676 MB-1 GB).  So at most :data:`MAX_CONCURRENT` hashes run
at once (more would not finish sooner on this many cores); further logons wait
for a turn in trio, which costs a task, not 19 MiB.

:meth:`PasswordChecker.check_or_dummy` checks an unknown user's password
against a dummy hash made with the same parameters, so "no such user" costs
the same time as "wrong password".  The dummy is made once (concurrent first
logons wait for it rather than each making one).
"""

from __future__ import annotations

import os
import secrets

import argon2
import trio
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["MAX_CONCURRENT", "PasswordChecker", "default_hasher"]

#: argon2 computations at once: one per core, at most 4
MAX_CONCURRENT = max(1, min(4, os.cpu_count() or 1))


def default_hasher() -> argon2.PasswordHasher:
    """argon2id at OWASP's minimum: m=19 MiB, t=2, p=1, 16-byte salt, 32-byte hash."""
    return argon2.PasswordHasher(
        time_cost=2,
        memory_cost=19 * 1024,
        parallelism=1,
        hash_len=32,
        salt_len=16,
        type=argon2.Type.ID,
    )


class PasswordChecker:
    """Hash and check passwords with one set of argon2 parameters.

    Args:
        hasher: the argon2 hasher (default :func:`default_hasher`).
        concurrency: argon2 computations at once (default :data:`MAX_CONCURRENT`).
    """

    def __init__(
        self, hasher: argon2.PasswordHasher | None = None, *, concurrency: int = MAX_CONCURRENT
    ) -> None:
        self.hasher = hasher or default_hasher()
        self.limiter = trio.CapacityLimiter(max(1, concurrency))
        self._dummy: str | None = None
        self._dummy_lock = trio.Lock()

    async def hash(self, password: str) -> str:
        """The PHC-format hash of a password (new random salt each time)."""
        return await trio.to_thread.run_sync(self.hasher.hash, password, limiter=self.limiter)

    def _matches(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def check(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches ``stored`` (False for a malformed hash)."""
        return await trio.to_thread.run_sync(
            self._matches, stored, password, limiter=self.limiter
        )

    async def check_or_dummy(self, stored: str | None, password: str) -> bool:
        """Like :meth:`check`; with ``stored=None`` (unknown user) it does the same
        work against a dummy hash and returns False."""
        if stored is None:
            await self.check(await self._dummy_hash(), password)
            return False
        return await self.check(stored, password)

    async def warm(self) -> None:
        """Make the dummy hash now, so that no logon pays for it."""
        await self._dummy_hash()

    async def _dummy_hash(self) -> str:
        if self._dummy is None:
            async with self._dummy_lock:
                if self._dummy is None:
                    self._dummy = await self.hash(secrets.token_urlsafe(16))
        return self._dummy

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than the current ones."""
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True
