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

:meth:`PasswordChecker.check_or_dummy` checks an unknown user's password
against a dummy hash made with the same parameters, so "no such user" costs
the same time as "wrong password".
"""

from __future__ import annotations

import secrets

import argon2
import trio
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["PasswordChecker", "default_hasher"]


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
    """

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self.hasher = hasher or default_hasher()
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        """The PHC-format hash of a password (new random salt each time)."""
        return await trio.to_thread.run_sync(self.hasher.hash, password)

    def _matches(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def check(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches ``stored`` (False for a malformed hash)."""
        return await trio.to_thread.run_sync(self._matches, stored, password)

    async def check_or_dummy(self, stored: str | None, password: str) -> bool:
        """Like :meth:`check`; with ``stored=None`` (unknown user) it does the same
        work against a dummy hash and returns False."""
        if stored is None:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_urlsafe(16))
            await self.check(self._dummy, password)
            return False
        return await self.check(stored, password)

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than the current ones."""
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True
