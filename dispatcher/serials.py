"""Serial numbers unique across every dispatcher process (docs/runtime.md "Serials").

Theory of operation
-------------------
Seed 001 (Fig. 15(a)): the header's serial is "dispatcher-assigned ... unique
across all dispatcher processes and needs to be coordinated across processes".
The coordination is done once per start, not per frame: a dispatcher takes a
*boot id* from the sessions database (``dispatcher_boots``, AUTOINCREMENT, never
reused) and numbers its frames ``boot_id << 40 | counter``, counter from 1.  Two
dispatchers sharing the state directory, or one restarted, never share a boot
id, so they never share a serial; and no serial is 0 ("not assigned yet").

2**40 serials per boot is 35 years at 1000 frames a second; should a counter run
out, :meth:`SerialSource.next` takes a new boot id and carries on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

__all__ = ["COUNTER_BITS", "MAX_BOOT_ID", "SerialSource"]

#: low bits of a serial: the counter within one boot
COUNTER_BITS = 40
_COUNTER_MAX = (1 << COUNTER_BITS) - 1
#: a serial is 64 bits, so a boot id has the remaining 24
MAX_BOOT_ID = (1 << (64 - COUNTER_BITS)) - 1


class SerialSource:
    """Hands out serials for one dispatcher process.

    Args:
        boot_id: this start's boot id (1..:data:`MAX_BOOT_ID`).
        renew: coroutine function returning a fresh boot id, for when the counter
            runs out.
        counter: the last counter value used (tests start near the end).

    Raises:
        ValueError: a boot id out of range.
    """

    def __init__(
        self, boot_id: int, renew: Callable[[], Awaitable[int]], *, counter: int = 0
    ) -> None:
        self._check(boot_id)
        self.boot_id = boot_id
        self._renew = renew
        self._counter = counter
        self._lock = trio.Lock()

    @staticmethod
    def _check(boot_id: int) -> None:
        if not 1 <= boot_id <= MAX_BOOT_ID:
            raise ValueError(f"boot id {boot_id} outside 1..{MAX_BOOT_ID}")

    async def next(self) -> int:
        """The next serial: ``boot_id << 40 | counter``, never 0, never repeated."""
        while self._counter >= _COUNTER_MAX:
            async with self._lock:
                if self._counter >= _COUNTER_MAX:
                    boot_id = await self._renew()
                    self._check(boot_id)
                    self.boot_id, self._counter = boot_id, 0
        self._counter += 1
        return self.boot_id << COUNTER_BITS | self._counter
