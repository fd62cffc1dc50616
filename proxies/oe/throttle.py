"""Failed-logon throttling: per (account, source) with growing delays, and per source.

Theory of operation
-------------------
A logon names an account (the user id as typed, known or not) and comes from a
*source*: the client's IP address, which the web server writes into the
dispatcher's ``LON`` and the dispatcher into ``VU`` (``SOURCE``, docs/runtime.md);
an IPv6 address counts as its /64 network (:func:`source_key`), a logon without
``SOURCE`` as the source ``""``.  Two limits apply, both from
:class:`~starwrs.proxies.oe.model.ThrottlePolicy`:

* **(account, source)** -- a few failures are free; after that every failure
  blocks the pair for a delay that doubles with each further failure (1 s, 2 s,
  4 s, ... up to ``max_delay``).  A success from the same source clears the pair.
  Keying by the pair means that guessing a password from one address never locks
  out the account's owner logging on from another.
* **source** -- failures across all accounts draw on a bucket that refills at a
  steady rate; an empty bucket blocks every logon from the source.  One try per
  account across many accounts (password spraying) is so limited too.

While blocked, the answer is 7012 and no password is checked (no argon2 work); it
is the same for known and unknown accounts.  An attempt is *charged* as a failure
before its password is checked and refunded when it succeeds, so concurrent
guesses cannot all slip through before the first failure is counted; an attempt
that is cancelled meanwhile stays charged.

Memory is bounded: both tables are dicts in the order of their last failure; an
entry is dropped once it no longer restricts anything (a pair ``forget_after``
seconds after its last failure, a source once its bucket is full again), and
beyond ``max_pairs`` / ``max_sources`` entries the oldest go first.  A flood of
logons for ever new unknown ids from one source therefore stops growing the
tables as soon as the source's bucket is empty.  The state lives in this process
only: a restart of order entry starts every pair and source afresh.

Time is ``trio.current_time`` (monotonic; tests use ``autojump_clock``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import trio
from starwrs.proxies.oe.model import ThrottlePolicy

__all__ = ["LogonThrottle", "source_key"]

#: how much of an IPv6 address names one subscriber
_IPV6_PREFIX = 64
#: longest account key kept (USERID is at most 20 characters on the wire)
_ACCOUNT_MAX = 64


def source_key(source: str | None) -> str:
    """The throttle key of a ``SOURCE``: IPv4 as is, IPv6 its /64, anything else as given."""
    text = (source or "").strip()
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return text[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, _IPV6_PREFIX), strict=False))
    return str(address)


class _Pair:
    __slots__ = ("blocked_until", "failures", "last")

    def __init__(self, now: float) -> None:
        self.failures = 0
        self.blocked_until = now
        self.last = now


class _Bucket:
    __slots__ = ("last", "level")

    def __init__(self, level: float, now: float) -> None:
        self.level = level
        self.last = now


class LogonThrottle:
    """The two throttle tables of order entry.

    Args:
        policy: the limits (default :class:`ThrottlePolicy`).
        clock: monotonic seconds (default ``trio.current_time``).
    """

    def __init__(
        self, policy: ThrottlePolicy | None = None, clock: Callable[[], float] | None = None
    ) -> None:
        self.policy = policy or ThrottlePolicy()
        self.clock = clock or trio.current_time
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._sources: dict[str, _Bucket] = {}

    # -- sizes (tests, metrics) ------------------------------------------------------

    @property
    def pairs(self) -> int:
        """(account, source) pairs remembered."""
        return len(self._pairs)

    @property
    def sources(self) -> int:
        """Sources remembered."""
        return len(self._sources)

    # -- decisions ---------------------------------------------------------------------

    def retry_after(self, account: str, source: str) -> float:
        """Seconds until a logon of *account* from *source* is looked at again (0: now).

        Args:
            account: the user id as typed.
            source: a :func:`source_key`.
        """
        now = self.clock()
        self._expire(now)
        wait = 0.0
        bucket = self._sources.get(source)
        if bucket is not None:
            level = self._level(bucket, now)
            if level < 1:
                wait = (1 - level) / max(self.policy.source_rate, 1e-9)
        pair = self._pairs.get((account[:_ACCOUNT_MAX], source))
        if pair is not None:
            wait = max(wait, pair.blocked_until - now)
        return max(0.0, wait)

    def charge(self, account: str, source: str) -> None:
        """Count an attempt as a failure (before its password is checked)."""
        policy = self.policy
        now = self.clock()
        key = (account[:_ACCOUNT_MAX], source)
        pair = self._pairs.pop(key, None) or _Pair(now)
        pair.failures += 1
        pair.last = now
        over = pair.failures - policy.free_failures
        if over > 0:
            delay = min(policy.max_delay, policy.first_delay * 2.0 ** min(over - 1, 64))
            pair.blocked_until = max(pair.blocked_until, now + delay)
        self._pairs[key] = pair  # to the end: the most recent failure
        bucket = self._sources.pop(source, None)
        level = policy.source_burst if bucket is None else self._level(bucket, now)
        bucket = _Bucket(level - 1, now)
        self._sources[source] = bucket
        self._bound()

    def succeeded(self, account: str, source: str) -> None:
        """Refund a charged attempt whose password was right: the pair starts afresh."""
        self._pairs.pop((account[:_ACCOUNT_MAX], source), None)
        bucket = self._sources.pop(source, None)
        if bucket is not None:
            now = self.clock()
            level = min(float(self.policy.source_burst), self._level(bucket, now) + 1)
            self._sources[source] = _Bucket(level, now)

    # -- housekeeping ----------------------------------------------------------------

    def _level(self, bucket: _Bucket, now: float) -> float:
        policy = self.policy
        refill = (now - bucket.last) * policy.source_rate
        return min(float(policy.source_burst), bucket.level + refill)

    def _expire(self, now: float) -> None:
        """Drop entries that no longer restrict anything (oldest first, so it is cheap)."""
        forget = self.policy.forget_after
        pairs = self._pairs
        while pairs:
            key = next(iter(pairs))
            pair = pairs[key]
            if pair.last + forget > now or pair.blocked_until > now:
                break
            del pairs[key]
        sources = self._sources
        while sources:
            source = next(iter(sources))
            if self._level(sources[source], now) < self.policy.source_burst:
                break
            del sources[source]

    def _bound(self) -> None:
        self._expire(self.clock())
        while len(self._pairs) > max(1, self.policy.max_pairs):
            del self._pairs[next(iter(self._pairs))]
        while len(self._sources) > max(1, self.policy.max_sources):
            del self._sources[next(iter(self._sources))]
