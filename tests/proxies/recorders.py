"""A stand-in receiver of msgpack envelopes: records them, refuses while 'down'.

Used where a test needs the *next* server on a delivery path to be observable
(RM's outbox to the scheduler, the scheduler's to the arbitrator): the server under
test is real, its peer is this recorder behind a real proxy listener.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import trio
from starwrs.proxies.framework import Caller

#: seconds a test waits for envelopes to arrive (a bound, not a sleep)
PATIENCE = 30


@dataclass
class EnvelopeRecorder:
    """Records the envelopes *peer* delivers and answers ``reply(envelope)``."""

    peer: str
    reply: Callable[[dict[str, Any]], dict[str, Any]]
    seen: list[dict[str, Any]] = field(default_factory=list)
    changed: trio.Event = field(default_factory=trio.Event)
    down: bool = False

    async def receive(self, caller: Caller, envelope: dict[str, Any]) -> tuple[int, bytes]:
        assert caller.peer == self.peer
        if self.down:
            return 7006, b"<ERROR=7006>"
        self.seen.append(envelope)
        self.changed.set()
        self.changed = trio.Event()
        return 0, msgpack.packb(self.reply(envelope))

    async def until(self, count: int) -> None:
        with trio.fail_after(PATIENCE):
            while len(self.seen) < count:
                await self.changed.wait()
