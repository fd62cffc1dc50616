"""The operational messages of the ODS partitions and the arbitrator (starwrs's own).

Theory of operation
-------------------
The seed's DSS is driven by Talarian messages and inspected by its operators through
its ``request`` and ``req_status`` tables; it prints no message for either.
starwrs makes them messages like every other, so an operator tool (``starwrs
report``, ``starwrs admin datamart move``) and a test reach a partition the way the
servers reach each other (docs/runtime.md, "The datamart's servers"):

==========  ====================================================================
``RQS``     a request's progress: ``RQS<REQUESTID=7>`` (service DSS)
``RQSA``    ``RQSA<ERROR=0,REQUESTID=7,STATUS=format_success,HISTORY=<…>,
            ERRCODE=,ERRDESC=,FILE=r7.csv,FSIZE=1234,SHA256=…,NRL=NRL<…>>``
``RPT``     bulk get resource: the finished report file ``RPT<REQUESTID=7>``
``RPTA``    the answer acronym of a refused ``RPT``
``LOAD``    bulk put resource: priced calls as an Arrow IPC stream, ``LOAD<CORP=…>``
            (``BATCH=id``: loaded once per id, a repeat answers the first load's ROWS)
``LODA``    ``LODA<ERROR=0,ROWS=n>``
``XPRT``    bulk get resource: one corp's calls as an Arrow IPC stream; ``FROM``/``TO``
            (GMT minutes since 1970, ``gmt_key``; TO excluded) limit it to a period
``XPTA``    the answer acronym of a refused ``XPRT``
``RRAT``    bulk put resource, admin: re-priced calls replacing a corp's calls of a
            period, ``RRAT<CORP=…,FROM=…,TO=…,ROWS=n,CHECK=c>`` (ROWS and CHECK: what
            the period held when it was exported, else 6103 and nothing changes)
``RRTA``    ``RRTA<ERROR=0,ROWS=n,REPORTS=<<USERID,ENTPID,REQUESTID,TITLE,RANGES>…>>``:
            the delivered reports of the corp's enterprise that cover the corp (their
            BILLING names it) and whose period meets it
``PURG``    ``PURG<CORP=…>``: delete a corp's calls (after it moved away)
``PRGA``    ``PRGA<ERROR=0,ROWS=n>``
``MOVE``    admin, to the arbitrator: ``MOVE<CORP=90000003,ODS=2>``
``MOVA``    ``MOVA<ERROR=0,CORP=…,FROM=1,TO=2,ROWS=n>``
``WHER``    which partition holds a corp: ``WHER<CORP=…>`` (arbitrator)
``WHRA``    ``WHRA<ERROR=0,CORP=…,ODS=1>``
==========  ====================================================================

Code rules are the Report Manager family's (:mod:`starwrs.grammar.typed`); an
unknown REQUESTID is 6115 and a corp no partition holds 6115 as well.
"""

from __future__ import annotations

from collections.abc import Mapping

from starwrs.grammar.codecs import Id, Int, Text
from starwrs.grammar.typed import TypedMessage, TypedResponse, param, typed

__all__ = ["ARB_MESSAGES", "CHECK_MODULUS", "DSS_OPS_MESSAGES"]

#: a corp id (the seed's are 8 digits; other deployments may use up to 12 characters)
_CORP = Text(12)


@typed
class RequestStatus(TypedMessage):
    """RQS -- where a report request stands."""

    ACRONYM = "RQS"
    request_id: int = param("REQUESTID", Id(), required=True)


@typed
class RequestStatusAck(TypedResponse):
    """RQSA -- its latest status, history, error, file and NRL."""

    ACRONYM = "RQSA"
    request_id: int | None = param("REQUESTID", Id(), default=None)
    status: str | None = param("STATUS", Text(20), default=None)


@typed
class ReportFile(TypedMessage):
    """RPT -- bulk get resource: the report file a request produced."""

    ACRONYM = "RPT"
    request_id: int = param("REQUESTID", Id(), required=True)


@typed
class LoadCalls(TypedMessage):
    """LOAD -- bulk put resource: priced calls (Arrow IPC) into this partition."""

    ACRONYM = "LOAD"
    corp_id: str | None = param("CORP", _CORP, default=None)
    #: the harvest's batch id: a batch loaded before is not loaded again (exactly once)
    batch: str | None = param("BATCH", Text(64), default=None)


@typed
class LoadCallsAck(TypedResponse):
    """LODA -- rows loaded."""

    ACRONYM = "LODA"
    rows: int | None = param("ROWS", Int(0, 10**12), default=None)


@typed
class ExportCalls(TypedMessage):
    """XPRT -- bulk get resource: one corp's calls, as LOAD takes them."""

    ACRONYM = "XPRT"
    corp_id: str = param("CORP", _CORP, required=True)
    since: int | None = param("FROM", Int(0, 2**31 - 1), default=None)
    until: int | None = param("TO", Int(0, 2**31 - 1), default=None)


_MINUTE = Int(0, 2**31 - 1)
#: RRAT's CHECK: the sum of the period's gmt_key values modulo this prime
CHECK_MODULUS = 999_999_999_989


@typed
class RerateCalls(TypedMessage):
    """RRAT -- bulk put resource: a period of a corp's calls, priced again."""

    ACRONYM = "RRAT"
    corp_id: str = param("CORP", _CORP, required=True)
    since: int = param("FROM", _MINUTE, required=True)
    until: int = param("TO", _MINUTE, required=True)
    rows: int = param("ROWS", Int(0, 10**12), required=True)
    checksum: int = param("CHECK", Int(0, CHECK_MODULUS), required=True)


@typed
class RerateCallsAck(TypedResponse):
    """RRTA -- rows replaced, and the delivered reports that met the period."""

    ACRONYM = "RRTA"
    rows: int | None = param("ROWS", Int(0, 10**12), default=None)


@typed
class PurgeCalls(TypedMessage):
    """PURG -- delete one corp's calls from this partition."""

    ACRONYM = "PURG"
    corp_id: str = param("CORP", _CORP, required=True)


@typed
class PurgeCallsAck(TypedResponse):
    """PRGA -- rows deleted."""

    ACRONYM = "PRGA"
    rows: int | None = param("ROWS", Int(0, 10**12), default=None)


@typed
class MoveCorp(TypedMessage):
    """MOVE -- admin: move a corp's calls to another partition."""

    ACRONYM = "MOVE"
    corp_id: str = param("CORP", _CORP, required=True)
    partition: int = param("ODS", Int(1, 99), required=True)


@typed
class MoveCorpAck(TypedResponse):
    """MOVA -- done."""

    ACRONYM = "MOVA"
    corp_id: str | None = param("CORP", _CORP, default=None)


@typed
class WhereCorp(TypedMessage):
    """WHER -- which partition holds a corp."""

    ACRONYM = "WHER"
    corp_id: str = param("CORP", _CORP, required=True)


@typed
class WhereCorpAck(TypedResponse):
    """WHRA -- the partition."""

    ACRONYM = "WHRA"
    partition: int | None = param("ODS", Int(1, 99), default=None)


def _index(*classes: type[TypedMessage]) -> Mapping[str, tuple[type[TypedMessage], ...]]:
    return {cls.ACRONYM or "": (cls,) for cls in classes}


#: a partition's operational messages (service DSS)
DSS_OPS_MESSAGES = _index(
    RequestStatus,
    RequestStatusAck,
    ReportFile,
    LoadCalls,
    LoadCallsAck,
    ExportCalls,
    PurgeCalls,
    PurgeCallsAck,
    RerateCalls,
    RerateCallsAck,
)
#: the arbitrator's messages (service ARB)
ARB_MESSAGES = _index(MoveCorp, MoveCorpAck, WhereCorp, WhereCorpAck)
