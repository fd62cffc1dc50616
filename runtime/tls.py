"""TLS for trio with OpenSSL doing the socket I/O itself: a lean ``trio.abc.Stream``.

Theory of operation
-------------------
:class:`trio.SSLStream` runs OpenSSL over memory BIOs: every read or write goes
through its ``_retry`` loop, two conflict detectors, a lock, the transport
stream's own send and receive, and a copy into and out of the BIOs.  For the
small frames of the hot path that machinery costs more than the cryptography:
a bare trio TLS echo server spends ~180 µs of CPU per request and answer with
``trio.SSLStream`` and ~95 µs with :class:`TlsStream` on the same machine.

:class:`TlsStream` wraps a non-blocking :class:`ssl.SSLSocket` instead, so
OpenSSL reads and writes the socket directly, and waits with trio's own
``wait_readable``/``wait_writable`` only when OpenSSL says it must
(``SSLWantReadError``/``SSLWantWriteError``).  It keeps ``trio.SSLStream``'s
contract where the services rely on it:

* errors: an ``ssl.SSLError`` or ``OSError`` (a reset, a ragged EOF -- an EOF
  without ``close_notify`` is an error, as with ``https_compatible=False``) is
  :class:`trio.BrokenResourceError` with the original as its cause; using a
  closed stream is :class:`trio.ClosedResourceError`; two tasks sending (or
  receiving) at once is :class:`trio.BusyResourceError`.  A clean
  ``close_notify`` ends the stream: ``receive_some`` returns ``b""``.
* checkpoints: every call can be cancelled before it starts, and a receive
  always yields to other tasks, as the ``trio.abc.Stream`` contract says; a send
  that finds room in the socket does not yield (the next step of every exchange
  is a receive, which does) -- a trip through trio's scheduler per send is a
  measurable part of a small frame's cost.  An OpenSSL call itself never blocks
  and is never interrupted half way, so cancelling a wait loses nothing.
* deadlines: :meth:`TlsStream.send_all_by` bounds only the *wait* for a full
  socket, so the common send pays for no cancel scope at all.
* :meth:`TlsStream.aclose` sends ``close_notify`` (without waiting for the
  peer's) and closes the socket; when the caller is already cancelled
  (``trio.aclose_forcefully``) it closes at once with no ``close_notify``, so a
  peer can tell a response that was cut short.  :meth:`close_now` is the
  synchronous form for a connection no task is using.
* :meth:`TlsStream.getpeercert` after the handshake, for :mod:`.peers`.
* **session resumption** on the client side: a stream remembers its TLS session
  when it closes (:data:`_SESSIONS`, per client context, server name and address) and the
  next connection to that name offers it.  A full mutual handshake with the
  deployment's P-256 certificates costs ~5 ms of CPU (both sides, OpenSSL 3.0), a
  resumed one ~2.5 ms: every link that is one exchange long (bulk transfers,
  tickets) pays it.  The server's certificate and the client's stay what the full
  handshake proved (OpenSSL keeps them in the session), so the peer table holds;
  a server that does not know the ticket (another process, a restart) simply runs
  a full handshake.

OpenSSL writes its own alerts (a TLS 1.1 client hears ``protocol_version``).
Only a connected :class:`trio.SocketStream` can be wrapped this way;
:func:`wrap_tls` falls back to ``trio.SSLStream`` for any other transport (the
tests' in-memory streams).
"""

from __future__ import annotations

import contextlib
import math
import socket
import ssl
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeGuard

import trio
from trio.lowlevel import (
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    notify_closing,
    wait_readable,
    wait_writable,
)

__all__ = ["AnyTls", "TlsListener", "TlsStream", "close_now", "is_tls", "wrap_tls"]

#: bytes asked of OpenSSL per read when the caller names no size
DEFAULT_RECEIVE_SIZE = 64 * 1024

#: client context -> server name and address -> the last resumable session (module doc)
_SESSIONS: weakref.WeakKeyDictionary[ssl.SSLContext, dict[str, ssl.SSLSession]] = (
    weakref.WeakKeyDictionary()
)


def _session_name(sock: socket.socket, server_hostname: str) -> str:
    """The name a client session is kept under: each server process has its own
    ticket key, so two dispatchers (one certificate name) are two entries."""
    try:
        return f"{server_hostname}@{sock.getpeername()!r}"
    except OSError:
        return server_hostname


class TlsStream(trio.abc.Stream):
    """A TLS connection over a non-blocking :class:`ssl.SSLSocket` (see the module doc).

    Build it with :meth:`wrap`; the handshake is :meth:`do_handshake` (or happens
    at the first send or receive).
    """

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self._sock = sock
        self._handshaken = False
        self._session_kept = False
        self._closed = False
        self._sending = False
        self._receiving = False

    @classmethod
    def wrap(
        cls,
        transport: trio.SocketStream,
        context: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
    ) -> TlsStream:
        """Take over *transport*'s socket (the ``SocketStream`` is unusable afterwards)."""
        raw = socket.socket(fileno=transport.socket.detach())
        raw.setblocking(False)  # OpenSSL then reports WANT_READ/WANT_WRITE, never waits
        session = None
        if not server_side and server_hostname is not None:
            session = _SESSIONS.get(context, {}).get(_session_name(raw, server_hostname))
        try:
            sock = context.wrap_socket(
                raw,
                server_side=server_side,
                server_hostname=server_hostname,
                do_handshake_on_connect=False,
                suppress_ragged_eofs=False,
                session=session,
            )
        except BaseException:
            raw.close()
            raise
        return cls(sock)

    def _remember_session(self) -> None:
        """Keep a client stream's resumable session for the next connection."""
        sock = self._sock
        if self._session_kept or sock.server_side or not self._handshaken:
            return
        self._session_kept = True  # once: reading the session is not free
        if sock.server_hostname is None:
            return
        with contextlib.suppress(ValueError, OSError, AttributeError):
            session = sock.session
            if session is not None and session.has_ticket:
                name = _session_name(sock, sock.server_hostname)
                _SESSIONS.setdefault(sock.context, {})[name] = session

    @property
    def socket(self) -> ssl.SSLSocket:
        """The underlying socket (for its addresses and options)."""
        return self._sock

    def getpeercert(self, binary_form: bool = False) -> Any:
        """The peer's certificate, as :meth:`ssl.SSLSocket.getpeercert` gives it."""
        return self._sock.getpeercert(binary_form)

    def _broken(self, err: BaseException) -> trio.BrokenResourceError:
        return trio.BrokenResourceError(f"TLS connection broken: {err.__class__.__name__}")

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the TLS stream is closed")

    async def do_handshake(self) -> None:
        """Run the TLS handshake (once; later calls return at once).

        Raises:
            trio.BrokenResourceError: it failed (OpenSSL sent its alert).
        """
        self._check_open()
        await checkpoint_if_cancelled()
        if self._handshaken:
            await cancel_shielded_checkpoint()
            return
        sock = self._sock
        while True:
            try:
                sock.do_handshake()
            except ssl.SSLWantReadError:
                await wait_readable(sock)
            except ssl.SSLWantWriteError:
                await wait_writable(sock)
            except (ssl.SSLError, OSError, ValueError) as err:
                raise self._broken(err) from err
            else:
                self._handshaken = True
                await cancel_shielded_checkpoint()
                return
            self._check_open()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Up to *max_bytes* of decrypted data; ``b""`` once the peer sent ``close_notify``.

        Raises:
            trio.BrokenResourceError: the connection broke (or ended without
                ``close_notify``).
            trio.ClosedResourceError: the stream was closed.
            trio.BusyResourceError: another task is receiving.
        """
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving on this TLS stream")
        self._check_open()
        if not self._handshaken:
            await self.do_handshake()
        else:
            await checkpoint_if_cancelled()
        size = DEFAULT_RECEIVE_SIZE if max_bytes is None else max_bytes
        if size < 1:
            raise ValueError("max_bytes must be >= 1")
        sock = self._sock
        self._receiving = True
        try:
            try:
                data = sock.recv(size)
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLError, OSError, ValueError) as err:
                raise self._broken(err) from err
            else:
                await cancel_shielded_checkpoint()
                return data
            while True:
                await wait_readable(sock)
                self._check_open()
                try:
                    return sock.recv(size)
                except ssl.SSLWantReadError:
                    continue
                except ssl.SSLWantWriteError:  # pragma: no cover - no renegotiation
                    await wait_writable(sock)
                except (ssl.SSLError, OSError, ValueError) as err:
                    raise self._broken(err) from err
        finally:
            self._receiving = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt and send all of *data* (OpenSSL splits it into records of 16 KiB).

        A send that does not have to wait for the socket is a cancellation point
        but yields to no other task (see :meth:`send_all_by`).

        Raises:
            trio.BrokenResourceError: the connection broke.
            trio.ClosedResourceError: the stream was closed.
            trio.BusyResourceError: another task is sending.
        """
        await self.send_all_by(data, math.inf)

    async def send_all_by(self, data: bytes | bytearray | memoryview, deadline: float) -> None:
        """:meth:`send_all`, waiting for the socket at most until *deadline*
        (``trio.current_time()`` value).

        The deadline costs a cancel scope only when the socket is full and the
        send must wait -- almost never for a frame or a response.  A send that does
        not wait does not yield to other tasks: every exchange's next step is a
        receive, which does.

        Raises:
            trio.TooSlowError: the peer read nothing until *deadline* (the stream
                is then unusable: part of *data* may have gone out).
            trio.BrokenResourceError: the connection broke.
            trio.ClosedResourceError: the stream was closed.
            trio.BusyResourceError: another task is sending.
        """
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this TLS stream")
        self._check_open()
        if not self._handshaken:
            await self.do_handshake()
        else:
            await checkpoint_if_cancelled()
        sock = self._sock
        self._sending = True
        try:
            view = memoryview(data)
            while view:
                try:
                    sent = sock.send(view)
                except ssl.SSLWantWriteError:
                    # OpenSSL keeps what it encrypted; the same bytes are offered again
                    await self._wait(wait_writable, deadline)
                    continue
                except ssl.SSLWantReadError:  # pragma: no cover - no renegotiation
                    await self._wait(wait_readable, deadline)
                    continue
                except (ssl.SSLError, OSError, ValueError) as err:
                    raise self._broken(err) from err
                view = view[sent:]
        finally:
            self._sending = False

    async def _wait(
        self, wait: Callable[[ssl.SSLSocket], Awaitable[None]], deadline: float
    ) -> None:
        """Wait for the socket (``wait_readable``/``wait_writable``) until *deadline*."""
        if deadline == math.inf:
            await wait(self._sock)
        else:
            with trio.CancelScope(deadline=deadline) as scope:
                await wait(self._sock)
            if scope.cancelled_caught:
                raise trio.TooSlowError
        self._check_open()

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the socket can take more bytes."""
        self._check_open()
        await wait_writable(self._sock)

    def close_now(self) -> None:
        """Close the socket at once, no ``close_notify`` (no task may be using it)."""
        if not self._closed:
            self._closed = True
            self._remember_session()
            notify_closing(self._sock)
            self._sock.close()

    async def aclose(self) -> None:
        """Send ``close_notify`` (not waiting for the peer's) and close the socket.

        Already cancelled (``trio.aclose_forcefully``): close at once, no ``close_notify``.
        """
        if self._closed:
            await checkpoint()
            return
        try:
            await checkpoint_if_cancelled()
        except BaseException:
            self.close_now()
            raise
        if self._handshaken and not self._sending:
            self._remember_session()  # before unwrap() ends the TLS layer
            with contextlib.suppress(ssl.SSLError, OSError, ValueError):
                self._sock.unwrap()  # writes close_notify; the peer's is not awaited
        self.close_now()
        await cancel_shielded_checkpoint()


#: either kind of TLS stream (both have ``do_handshake`` and ``getpeercert``)
AnyTls = TlsStream | trio.SSLStream[Any]


class TlsListener(trio.abc.Listener[AnyTls]):
    """Accepts TCP connections from a ``trio.SocketListener`` and wraps each in TLS.

    The handshake is not done here: the connection's own task does it (with its
    own deadline), so one slow client never holds up ``accept``.
    """

    def __init__(self, listener: trio.SocketListener, context: ssl.SSLContext) -> None:
        self.transport_listener = listener
        self.context = context

    async def accept(self) -> AnyTls:
        """The next connection, wrapped (handshake not yet done).

        A connection that cannot even be wrapped (reset at once) is closed and
        the next one accepted: only the listening socket's own errors propagate.
        """
        while True:
            transport = await self.transport_listener.accept()
            try:
                return wrap_tls(transport, self.context, server_side=True)
            except (OSError, ssl.SSLError, ValueError):
                await trio.aclose_forcefully(transport)

    async def aclose(self) -> None:
        """Close the listening socket."""
        await self.transport_listener.aclose()


def wrap_tls(
    transport: trio.abc.Stream,
    context: ssl.SSLContext,
    *,
    server_side: bool = False,
    server_hostname: str | None = None,
) -> AnyTls:
    """A :class:`TlsStream` over a ``trio.SocketStream``; ``trio.SSLStream`` over anything else.

    ``trio.SSLStream`` is built with ``https_compatible=False`` (a ragged EOF is
    an error), as :class:`TlsStream` behaves.
    """
    if isinstance(transport, trio.SocketStream):
        return TlsStream.wrap(
            transport, context, server_side=server_side, server_hostname=server_hostname
        )
    return trio.SSLStream(
        transport,
        context,
        server_side=server_side,
        server_hostname=server_hostname,
        https_compatible=False,
    )


def is_tls(stream: object) -> TypeGuard[AnyTls]:
    """True for a TLS stream of either kind (:class:`TlsStream`, ``trio.SSLStream``)."""
    return isinstance(stream, TlsStream | trio.SSLStream)


def close_now(stream: trio.abc.Stream) -> None:
    """Close an idle TLS stream's socket synchronously (no task may be using it)."""
    if isinstance(stream, TlsStream):
        stream.close_now()
    elif isinstance(stream, trio.SSLStream) and isinstance(
        stream.transport_stream, trio.SocketStream
    ):
        stream.transport_stream.socket.close()
