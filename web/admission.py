"""Which connections the web server takes on: a global cap and a share per client address.

Theory of operation
-------------------
The web server serves at most ``limits.max_connections`` connections at once; when
they are all taken, further connections wait in the listen backlog.  That cap alone
lets one client lock everyone out: 600 connections that handshake slowly, or send
their body a byte at a time, hold every slot while a normal client's TLS handshake
times out in the backlog.  So each *source* -- the client's IP address, or for IPv6
its /64 network, which one subscriber usually owns whole -- may hold at most
``limits.max_connections_per_source`` of the slots (:class:`Admission`).  A
connection beyond its source's share is accepted and closed at once (a reset: no
TLS, no HTTP answer, no ``TIME_WAIT`` left here), so the accept loop keeps
accepting, and handshaking, for every other source while one source's slots are held.

How long a held slot lasts is bounded elsewhere: the TLS handshake and the request
head by ``head_timeout``, the body by a deadline that grows with its size
(:mod:`.http_server`).

:func:`source_of` names the source of a socket; :func:`client_address` the exact
address, which the web server tells the dispatcher in a logon (``LON``'s
``SOURCE``, docs/runtime.md) so that order entry can throttle by it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct

import trio

__all__ = ["Admission", "client_address", "source_of"]

#: how much of an IPv6 address names one subscriber
_IPV6_PREFIX = 64
#: SO_LINGER on, 0 s: close() resets the connection instead of a FIN + TIME_WAIT
_RESET = struct.pack("ii", 1, 0)


def client_address(stream: trio.abc.Stream) -> str:
    """The peer's IP address as text (IPv4-mapped IPv6 as IPv4), or "" if unknown."""
    sock = getattr(stream, "socket", None)
    if sock is None:
        return ""
    try:
        peer = sock.getpeername()
    except OSError:
        return ""
    if not isinstance(peer, tuple) or not peer:
        return ""
    try:
        address = ipaddress.ip_address(str(peer[0]).partition("%")[0])
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def source_of(address: str) -> str:
    """The share key of an address: IPv4 as is, IPv6 its /64 network."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((parsed, _IPV6_PREFIX), strict=False)
        return str(network)
    return address


class Admission:
    """Counts the connections each source holds and refuses those over its share.

    Args:
        per_source: connections one source may hold at once (at least 1).
    """

    def __init__(self, per_source: int) -> None:
        self.per_source = max(1, per_source)
        self._held: dict[str, int] = {}
        #: connections refused because their source held its share
        self.refused = 0

    @property
    def held(self) -> int:
        """Connections admitted and not yet released."""
        return sum(self._held.values())

    def holding(self, source: str) -> int:
        """Connections *source* holds now."""
        return self._held.get(source, 0)

    def admit(self, source: str) -> bool:
        """Count a new connection of *source*; False (nothing counted) when over its share."""
        count = self._held.get(source, 0)
        if count >= self.per_source:
            self.refused += 1
            return False
        self._held[source] = count + 1
        return True

    def release(self, source: str) -> None:
        """A connection :meth:`admit` counted has ended."""
        count = self._held.get(source, 0) - 1
        if count > 0:
            self._held[source] = count
        else:
            self._held.pop(source, None)

    @staticmethod
    def reset(stream: trio.SocketStream) -> None:
        """Close a refused connection at once with a reset (no await needed)."""
        sock = stream.socket
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        sock.close()
