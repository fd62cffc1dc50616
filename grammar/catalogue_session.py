"""Messages of the dispatcher itself (target ``DSP``) and order entry's admin requests.

Theory of operation
-------------------
The seed's web server keeps a cookie jar and its dispatcher caches entitlements
fetched from StarOE at logon, but the seed prints no message for either.  starwrs
makes session handling messages like every other (docs/runtime.md):

==========  ====================================================================
``LON``     logon: ``LON<USERID=jeanvnet2,PASSWORD=...,SOURCE=192.0.2.7>`` (target
            DSP); ``SOURCE``, optional, is the client's IP address, set only by the
            web server (order entry throttles failed logons by it)
``LONA``    ``LONA<ERROR=0,SESSION=...,USERID=...,ENTPID=...,APPS=<RM~INBX>,
            PRODUCTS=<V~S>,CORPIDS=<...>,TIMEZONE=EST,LANG=1234,CURR=2345>``;
            ERROR=6115 for a bad user or password, 7012 when throttled
``LOFF``    logoff: ``LOFF<>`` (the session is the frame's key)
``LOFA``    ``LOFA<ERROR=0>``
``ENTC``    entitlements changed: ``ENTC<USERID=...>`` (OE -> every dispatcher)
``ENTA``   ``ENTA<ERROR=0>``
``UAPP``    admin, to OE: set a user's applications ``UAPP<USERID=...,APPS=<RM~INBX>>``
``UAPA``   ``UAPA<ERROR=0,USERID=...>``
``UENB``    admin, to OE: enable/disable a user ``UENB<USERID=...,ENABLED=0>``
``UENA``   ``UENA<ERROR=0,USERID=...>``
==========  ====================================================================

Code rules are the Report Manager family's (:mod:`starwrs.grammar.typed`): USERID
missing 6839, empty 6840; PASSWORD missing 6114, empty 6703; malformed 6103.
"""

from __future__ import annotations

from collections.abc import Mapping

from starwrs.grammar.catalogue_oe import SOURCE_MAX
from starwrs.grammar.catalogue_rm import ENTPID, user_id
from starwrs.grammar.codecs import Flag, Text, Values
from starwrs.grammar.errors import ErrorCode
from starwrs.grammar.typed import TypedMessage, TypedResponse, param, typed

__all__ = [
    "DSP_MESSAGES",
    "OE_ADMIN_MESSAGES",
    "SOURCE_MAX",
    "EntitlementsChanged",
    "EntitlementsChangedAck",
    "Logoff",
    "LogoffAck",
    "Logon",
    "LogonAck",
    "SetApplications",
    "SetApplicationsAck",
    "SetEnabled",
    "SetEnabledAck",
]


@typed
class Logon(TypedMessage):
    """LON -- start a session (answered by the dispatcher after asking OE)."""

    ACRONYM = "LON"
    user_id: str = user_id()
    password: str = param("PASSWORD", Text(128), required=True, secret=True)
    source: str | None = param("SOURCE", Text(SOURCE_MAX), default=None)


@typed
class LogonAck(TypedResponse):
    """LONA -- the new session key and what the user may do."""

    ACRONYM = "LONA"
    session: str | None = param("SESSION", Text(128), required=True, secret=True, default=None)
    user_id: str | None = param("USERID", Text(20), required=True, default=None)
    entp_id: str | None = param(
        "ENTPID", ENTPID, required=True, invalid=ErrorCode.ENTPID_LENGTH, default=None
    )
    apps: tuple[str, ...] = param("APPS", Values(item_max=20), default=())
    products: tuple[str, ...] = param("PRODUCTS", Values(item_max=1), default=())
    corp_ids: tuple[str, ...] = param("CORPIDS", Values(item_max=8), default=())
    timezone: str | None = param("TIMEZONE", Text(3), default=None)
    lang: str | None = param("LANG", Text(4), default=None)
    curr: str | None = param("CURR", Text(4), default=None)


@typed
class Logoff(TypedMessage):
    """LOFF -- end the session named by the frame's key."""

    ACRONYM = "LOFF"


@typed
class LogoffAck(TypedResponse):
    """LOFA -- the session is gone."""

    ACRONYM = "LOFA"


@typed
class EntitlementsChanged(TypedMessage):
    """ENTC -- order entry tells a dispatcher to drop a user's cached entitlements."""

    ACRONYM = "ENTC"
    user_id: str = user_id()


@typed
class EntitlementsChangedAck(TypedResponse):
    """ENTA -- done."""

    ACRONYM = "ENTA"


@typed
class SetApplications(TypedMessage):
    """UAPP -- admin: replace the applications a user is entitled to."""

    ACRONYM = "UAPP"
    user_id: str = user_id()
    apps: tuple[str, ...] = param("APPS", Values(item_max=20), default=())


@typed
class SetApplicationsAck(TypedResponse):
    """UAPA -- done."""

    ACRONYM = "UAPA"
    user_id: str | None = param("USERID", Text(20), default=None)


@typed
class SetEnabled(TypedMessage):
    """UENB -- admin: enable (1) or disable (0) a user."""

    ACRONYM = "UENB"
    user_id: str = user_id()
    enabled: bool = param("ENABLED", Flag(), required=True)


@typed
class SetEnabledAck(TypedResponse):
    """UENA -- done."""

    ACRONYM = "UENA"
    user_id: str | None = param("USERID", Text(20), default=None)


def _index(*classes: type[TypedMessage]) -> Mapping[str, tuple[type[TypedMessage], ...]]:
    return {cls.ACRONYM or "": (cls,) for cls in classes}


#: the dispatcher's own messages (service DSP)
DSP_MESSAGES = _index(
    Logon, LogonAck, Logoff, LogoffAck, EntitlementsChanged, EntitlementsChangedAck
)
#: order entry's admin messages (service OE)
OE_ADMIN_MESSAGES = _index(SetApplications, SetApplicationsAck, SetEnabled, SetEnabledAck)
