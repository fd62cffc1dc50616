"""The exceptions of the frame and mechanism layer.

Theory of operation
-------------------
Everything :mod:`starwrs.protocol` rejects is a :class:`ProtocolError`, a
:class:`~starwrs.grammar.errors.StarwrsError` carrying the status code of
PROTOCOL.md section 4 that goes into the answer's header ``status`` (7001 version
mismatch, 7005 frame too large, 7008 unknown mechanism, 7009 malformed or
truncated frame, 7010 unknown or expired ticket, 7011 checksum mismatch, ...).

As in h11, the direction of the fault is part of the type:

* :class:`RemoteProtocolError` -- the *peer* broke the protocol (bytes that are not
  a frame, an event the state machine does not allow).  A server answers it with
  ``Response(status=err.code)`` and closes.
* :class:`LocalProtocolError` -- *we* tried to send something the protocol does not
  allow; a bug in the caller, never the peer's fault.

Both leave the connection's state machine in ``ERROR``.
"""

from __future__ import annotations

from starwrs.grammar.errors import ErrorCode, StarwrsError

__all__ = ["ErrorCode", "LocalProtocolError", "ProtocolError", "RemoteProtocolError"]


class ProtocolError(StarwrsError):
    """A frame, payload or mechanism step that breaks PROTOCOL.md sections 2-4.

    Attributes:
        code: the :class:`~starwrs.grammar.errors.ErrorCode` for the answer's ``status``.
        message: what went wrong, for logs (no secrets).
    """


class RemoteProtocolError(ProtocolError):
    """The peer sent something PROTOCOL.md does not allow; answer with ``code``."""


class LocalProtocolError(ProtocolError):
    """We tried to send something PROTOCOL.md does not allow (a caller bug)."""
