"""StarOE (order entry) requests named in seed 001's body text: logon and home page.

Theory of operation
-------------------
The seed names two StarOE messages without printing their format: the "Validate
User" message sent at logon (StarOE authenticates the user ID and password), and
the "Get User Application Request" that fetches the applications (services) the
user may use, which decide the buttons of the home page and the dispatcher's
first-level entitlement check.  Their wire forms are defined here, in the style
of Appendix A (acronym, ``KEY=value`` members, the answer starting with
``ERROR=``; an acknowledgement's acronym is the request's plus ``A``):

==========  ====================================================================
``VU``      Validate User: ``VU<USERID=jeanvnet2,PASSWORD=...,SOURCE=192.0.2.7>``;
            ``SOURCE`` (optional) is the logon's client address, which the web
            server put in the dispatcher's ``LON``: failed logons are throttled
            per account and address, and per address
``VUA``     its answer: ``VUA<ERROR=0,USERID=jeanvnet2,ENTPID=00022924,
            TIMEZONE=EST,LANG=1234,CURR=2345>`` -- the user's enterprise and the
            defaults the Report Requestor asks for first (time zone, language,
            currency)
``GUA``     Get User Applications: ``GUA<USERID=jeanvnet2>``
``GUAA``    its answer: ``GUAA<ERROR=0,USERID=jeanvnet2,APPS=<RM~INBX~OE>>`` --
            the application codes the user is entitled to (StarOE's codes, up to
            20 characters each; an empty list is written ``APPS=<>`` or left out)
==========  ====================================================================

A password is kept out of ``repr()`` and never echoed in an error message.

Code-assignment rules (Report Manager family defaults: USERID missing -> 6839,
empty -> 6840; PASSWORD missing -> 6114, empty -> 6703; too long -> 6103; ENTPID
not 8 characters -> 6706; unknown key -> 6610; unknown acronym -> 6104).  An
answer with ERROR other than 0 needs none of its other parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

from starwrs.grammar.catalogue_rm import ENTPID, user_id
from starwrs.grammar.codecs import Text, Values
from starwrs.grammar.errors import ErrorCode
from starwrs.grammar.typed import TypedMessage, TypedResponse, param, typed

#: longest ``SOURCE`` (a client IP address: IPv6 text is at most 45 characters)
SOURCE_MAX = 64

__all__ = [
    "MESSAGES",
    "SOURCE_MAX",
    "GetUserApplications",
    "GetUserApplicationsAck",
    "ValidateUser",
    "ValidateUserAck",
]


@typed
class ValidateUser(TypedMessage):
    """VU -- authenticate a user ID and password at logon."""

    ACRONYM = "VU"
    user_id: str = user_id()
    password: str = param("PASSWORD", Text(128), required=True, secret=True)
    source: str | None = param("SOURCE", Text(SOURCE_MAX), default=None)


@typed
class ValidateUserAck(TypedResponse):
    """VUA -- the user's enterprise and defaults (ERROR=0), or why logon failed."""

    ACRONYM = "VUA"
    user_id: str | None = param("USERID", Text(20), required=True, default=None)
    entp_id: str | None = param(
        "ENTPID", ENTPID, required=True, invalid=ErrorCode.ENTPID_LENGTH, default=None
    )
    timezone: str | None = param("TIMEZONE", Text(3), default=None)
    lang: str | None = param("LANG", Text(4), default=None)
    curr: str | None = param("CURR", Text(4), default=None)


@typed
class GetUserApplications(TypedMessage):
    """GUA -- the applications (services) a user is entitled to."""

    ACRONYM = "GUA"
    user_id: str = user_id()


@typed
class GetUserApplicationsAck(TypedResponse):
    """GUAA -- the user's application codes."""

    ACRONYM = "GUAA"
    user_id: str | None = param("USERID", Text(20), required=True, default=None)
    apps: tuple[str, ...] = param("APPS", Values(item_max=20), default=())


#: acronym -> the classes it can be
MESSAGES: Mapping[str, tuple[type[TypedMessage], ...]] = {
    cls.ACRONYM or "": (cls,)
    for cls in (ValidateUser, ValidateUserAck, GetUserApplications, GetUserApplicationsAck)
}
