"""The harvest's messages (seed 003's network path; starwrs's own).

Theory of operation
-------------------
A collector sends a batch of call records either as an e-mail to the harvest mailbox
or "over the network" (seed 003 claims 1, 5): as a bulk put through the public web
tier, logged on with its own credential -- a user of its enterprise entitled to the
``HARV`` application.  The put's data is the very message the e-mail path would have
sent (RFC 5322 headers, then the S/MIME body, signed then enveloped), so one intake
serves both paths and a batch sent one way is a replay the other way.

==========  ====================================================================
``CDRB``    bulk put resource: one sealed batch, ``CDRB<BATCH=id>`` (``BATCH``:
            the id the collector sealed into it, echoed in the answer so that the
            sender matches answer to batch; the sealed id is the one the harvest
            applies once)
``CDRA``    ``CDRA<ERROR=0,BATCH=id,RESULT=accepted|replayed,TEXT=…>``: the
            harvest has taken responsibility for the batch (its load may still be
            under way); ``ERROR=6103`` with ``RESULT=refused`` and the reason in
            ``TEXT`` refuses it for good (the audit trail has the same line);
            ``ERROR=6101`` asks the sender to try again later
==========  ====================================================================

Code rules are the Report Manager family's (:mod:`starwrs.grammar.typed`).
"""

from __future__ import annotations

from collections.abc import Mapping

from starwrs.grammar.codecs import Text
from starwrs.grammar.typed import TypedMessage, TypedResponse, param, typed

__all__ = ["HARV_MESSAGES", "CallBatch", "CallBatchAck"]

#: a batch id: 8-64 of [0-9A-Za-z._-] (the collector makes 32 hex digits)
_BATCH = Text(64)


@typed
class CallBatch(TypedMessage):
    """CDRB -- bulk put resource: one sealed batch of call records."""

    ACRONYM = "CDRB"
    batch: str | None = param("BATCH", _BATCH, default=None)


@typed
class CallBatchAck(TypedResponse):
    """CDRA -- the harvest's answer to one batch."""

    ACRONYM = "CDRA"
    batch: str | None = param("BATCH", _BATCH, default=None)
    result: str | None = param("RESULT", Text(20), default=None)
    text: str | None = param("TEXT", Text(400), default=None)


#: the harvest's messages (service HARV)
HARV_MESSAGES: Mapping[str, tuple[type[TypedMessage], ...]] = {
    cls.ACRONYM or "": (cls,) for cls in (CallBatch, CallBatchAck)
}
