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

The backplane's user context and the reseller's brand (seed 001: the backplane
"obtains a COUser user context object" holding "user profile, applications and
their entitlements"; seed 002 claim 92: a backplane class that manages "one or
more company brands", so a reseller presents the services as its own):

==========  ====================================================================
``GUC``     Get User Context: ``GUC<>`` -- for the caller (the frame key's
            ``USERID@ENTPID``); every live session may send it, whatever its
            applications (the dispatcher lets it through, docs/runtime.md)
``GUCA``    ``GUCA<ERROR=0,USERID=...,ENTPID=...,USERNAME=...,APPS=<RM~INBX>,
            PRODUCTS=<S~V>,CORPIDS=<...>,REPORTS=<SPR~VPR>,TIMEZONE=45,LANG=1234,
            CURR=2345,BRANDID=...,BRANDNAME=...,COLOR=#1f4e79,ACCENT=#b3541e,
            LEGAL=...,LOGO=<sha256 of the logo, absent without one>>``;
            ``REPORTS`` are the report entitlements, product + data category +
            data type (``SPR``: Vision, priced, reports)
``GBL``     Get Brand Logo: ``GBL<>`` -- the logo of the caller's brand (the web
            tier serves it as ``GET /brand/logo``; every live session may send it)
``GBLA``    ``GBLA<ERROR=0,BRANDID=...,TYPE=image/png,SHA256=...,LOGO=<base64>>``;
            6109 when the brand has no logo
``SBR``     admin: set the brand an enterprise presents ``SBR<ENTPID=10324488,
            BRANDID=blueline,BRANDNAME=...,COLOR=#...,ACCENT=#...,LEGAL=...,
            LOGO=<base64>>`` (absent fields keep their value; ``RESET=1``: the
            enterprise presents the house brand again)
``SBRA``    ``SBRA<ERROR=0,ENTPID=...,BRANDID=...>``
==========  ====================================================================

The inbox's notifications (seed 001 Appendix E 5183/5184: the inbox obtains "default
email/paging info" from StarOE); both are reserved to the ``inbox`` and ``admin``
certificates (docs/runtime.md "The inbox"):

==========  ====================================================================
``GUN``     Get User Notification defaults: ``GUN<USERID=jeanvnet2>``
``GUNA``    ``GUNA<ERROR=0,USERID=...,ENTPID=...,USERNAME=...,EMAIL=...,PGT=A,
            PGPIN=5550123,ENABLED=1>`` (``PGT``/``PGPIN`` from the user's pager,
            stored as ``TYPE:PIN``; absent when the user has none)
``GEU``     Get Enterprise Users: ``GEU<ENTPID=00022924>`` (news to an enterprise)
``GEUA``    ``GEUA<ERROR=0,ENTPID=...,USERS=<jeanvnet2~dorod>>`` -- its enabled users
==========  ====================================================================

Brand values are checked by :func:`brand_problem` and :func:`logo_type` (the
order entry proxy answers 6103 for a bad one; ``starwrs admin brand`` and the web
tier check the same rules): a name and legal line of printable characters, colours
``#rrggbb``, a logo that is a PNG, JPEG, GIF or WebP image (never SVG, which can
carry script) of at most :data:`MAX_LOGO_BYTES`.  The browser writes names and
legal lines with ``textContent`` and colours only as CSS custom properties.

A password is kept out of ``repr()`` and never echoed in an error message.

Code-assignment rules (Report Manager family defaults: USERID missing -> 6839,
empty -> 6840; PASSWORD missing -> 6114, empty -> 6703; too long -> 6103; ENTPID
not 8 characters -> 6706; unknown key -> 6610; unknown acronym -> 6104).  An
answer with ERROR other than 0 needs none of its other parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from starwrs.grammar.catalogue_rm import ENTPID, entp_id, user_id
from starwrs.grammar.codecs import Flag, Text, Values
from starwrs.grammar.errors import ErrorCode
from starwrs.grammar.typed import TypedMessage, TypedResponse, param, typed

#: longest ``SOURCE`` (a client IP address: IPv6 text is at most 45 characters)
SOURCE_MAX = 64

#: image types a brand logo may have: raster only (an SVG can carry script)
LOGO_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
#: largest brand logo, bytes
MAX_LOGO_BYTES = 64 * 1024
#: longest brand name and legal line, and brand id
BRAND_NAME_MAX = 60
BRAND_LEGAL_MAX = 200
BRAND_ID_MAX = 20

_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")
_BRAND_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

__all__ = [
    "BRAND_ID_MAX",
    "BRAND_LEGAL_MAX",
    "BRAND_NAME_MAX",
    "LOGO_TYPES",
    "MAX_LOGO_BYTES",
    "MESSAGES",
    "SOURCE_MAX",
    "GetBrandLogo",
    "GetBrandLogoAck",
    "GetUserApplications",
    "GetUserApplicationsAck",
    "GetUserContext",
    "GetUserContextAck",
    "SetBrand",
    "SetBrandAck",
    "ValidateUser",
    "ValidateUserAck",
    "brand_problem",
    "logo_type",
]


def logo_type(data: bytes) -> str | None:
    """The image type of *data* from its signature (one of :data:`LOGO_TYPES`), or None.

    Only the signature is read: the bytes are served with this type and
    ``X-Content-Type-Options: nosniff``, so a browser never guesses another one.
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _printable(text: str) -> bool:
    return all(ch.isprintable() for ch in text)


def brand_problem(
    *,
    brand_id: str | None = None,
    name: str | None = None,
    color: str | None = None,
    accent: str | None = None,
    legal: str | None = None,
    logo: bytes | None = None,
) -> str | None:
    """What is wrong with the given brand values (None when nothing is).

    Args:
        brand_id: 1-20 letters, digits, ``_``, ``.``, ``-`` (starting with a letter or digit).
        name: 1-60 printable characters.
        color: ``#rrggbb``.
        accent: ``#rrggbb``.
        legal: up to 200 printable characters.
        logo: a PNG, JPEG, GIF or WebP image of at most :data:`MAX_LOGO_BYTES` bytes.
    """
    if brand_id is not None and not (
        len(brand_id) <= BRAND_ID_MAX and _BRAND_ID.fullmatch(brand_id)
    ):
        return f"brand id must be 1-{BRAND_ID_MAX} letters, digits, '_', '.' or '-'"
    if name is not None and not (0 < len(name) <= BRAND_NAME_MAX and _printable(name)):
        return f"brand name must be 1-{BRAND_NAME_MAX} printable characters"
    for label, value in (("colour", color), ("accent colour", accent)):
        if value is not None and not _COLOR.fullmatch(value):
            return f"{label} must be #rrggbb (got {value[:20]!r})"
    if legal is not None and not (len(legal) <= BRAND_LEGAL_MAX and _printable(legal)):
        return f"legal line must be at most {BRAND_LEGAL_MAX} printable characters"
    if logo is not None:
        if len(logo) > MAX_LOGO_BYTES:
            return f"logo is {len(logo)} bytes; at most {MAX_LOGO_BYTES} are accepted"
        if logo_type(logo) is None:
            return "logo must be a PNG, JPEG, GIF or WebP image (SVG is not accepted)"
    return None


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


@typed
class GetUserContext(TypedMessage):
    """GUC -- the caller's user context: profile, entitlements, defaults and brand."""

    ACRONYM = "GUC"


@typed
class GetUserContextAck(TypedResponse):
    """GUCA -- what the backplane keeps for the session (seed: the COUser object)."""

    ACRONYM = "GUCA"
    user_id: str | None = param("USERID", Text(20), required=True, default=None)
    entp_id: str | None = param(
        "ENTPID", ENTPID, required=True, invalid=ErrorCode.ENTPID_LENGTH, default=None
    )
    user_name: str | None = param("USERNAME", Text(100), default=None)
    apps: tuple[str, ...] = param("APPS", Values(item_max=20), default=())
    products: tuple[str, ...] = param("PRODUCTS", Values(item_max=1), default=())
    corp_ids: tuple[str, ...] = param("CORPIDS", Values(item_max=8), default=())
    reports: tuple[str, ...] = param("REPORTS", Values(item_max=3), default=())
    timezone: str | None = param("TIMEZONE", Text(3), default=None)
    lang: str | None = param("LANG", Text(4), default=None)
    curr: str | None = param("CURR", Text(4), default=None)
    brand_id: str | None = param("BRANDID", Text(BRAND_ID_MAX), default=None)
    brand_name: str | None = param("BRANDNAME", Text(BRAND_NAME_MAX), default=None)
    color: str | None = param("COLOR", Text(7), default=None)
    accent: str | None = param("ACCENT", Text(7), default=None)
    legal: str | None = param("LEGAL", Text(BRAND_LEGAL_MAX), default=None)
    logo: str | None = param("LOGO", Text(64), default=None)


@typed
class GetBrandLogo(TypedMessage):
    """GBL -- the logo of the caller's brand."""

    ACRONYM = "GBL"


@typed
class GetBrandLogoAck(TypedResponse):
    """GBLA -- the logo, base64, with its image type and SHA-256."""

    ACRONYM = "GBLA"
    brand_id: str | None = param("BRANDID", Text(BRAND_ID_MAX), default=None)
    image_type: str | None = param("TYPE", Text(20), required=True, default=None)
    sha256: str | None = param("SHA256", Text(64), required=True, default=None)
    logo: str | None = param("LOGO", Text(), required=True, default=None)


@typed
class SetBrand(TypedMessage):
    """SBR -- admin: the brand an enterprise presents (absent fields keep their value)."""

    ACRONYM = "SBR"
    entp_id: str = entp_id()
    brand_id: str | None = param("BRANDID", Text(BRAND_ID_MAX), default=None)
    brand_name: str | None = param("BRANDNAME", Text(BRAND_NAME_MAX), default=None)
    color: str | None = param("COLOR", Text(7), default=None)
    accent: str | None = param("ACCENT", Text(7), default=None)
    legal: str | None = param("LEGAL", Text(BRAND_LEGAL_MAX), default=None)
    logo: str | None = param("LOGO", Text(), default=None)
    reset: bool = param("RESET", Flag(), default=False)


@typed
class SetBrandAck(TypedResponse):
    """SBRA -- done: the brand the enterprise presents now."""

    ACRONYM = "SBRA"
    entp_id: str | None = param("ENTPID", Text(8), default=None)
    brand_id: str | None = param("BRANDID", Text(BRAND_ID_MAX), default=None)


@typed
class GetNotifyDefaults(TypedMessage):
    """GUN -- a user's default e-mail and pager, for the inbox's notifications."""

    ACRONYM = "GUN"
    user_id: str = user_id()


@typed
class GetNotifyDefaultsAck(TypedResponse):
    """GUNA -- the user's enterprise, name, e-mail and pager."""

    ACRONYM = "GUNA"
    user_id: str | None = param("USERID", Text(20), required=True, default=None)
    entp_id: str | None = param(
        "ENTPID", ENTPID, required=True, invalid=ErrorCode.ENTPID_LENGTH, default=None
    )
    user_name: str | None = param("USERNAME", Text(100), default=None)
    email: str | None = param("EMAIL", Text(75), default=None)
    pager_type: str | None = param("PGT", Text(1), default=None)
    pager_pin: str | None = param("PGPIN", Text(8), default=None)
    enabled: bool = param("ENABLED", Flag(), default=True)


@typed
class GetEnterpriseUsers(TypedMessage):
    """GEU -- the enabled users of an enterprise who have an inbox (news sent to it)."""

    ACRONYM = "GEU"
    entp_id: str = entp_id()


@typed
class GetEnterpriseUsersAck(TypedResponse):
    """GEUA -- the ids of the enterprise's enabled users who have an inbox."""

    ACRONYM = "GEUA"
    entp_id: str | None = param("ENTPID", Text(8), default=None)
    users: tuple[str, ...] = param("USERS", Values(item_max=20), default=())


#: acronym -> the classes it can be
MESSAGES: Mapping[str, tuple[type[TypedMessage], ...]] = {
    cls.ACRONYM or "": (cls,)
    for cls in (
        ValidateUser,
        ValidateUserAck,
        GetUserApplications,
        GetUserApplicationsAck,
        GetUserContext,
        GetUserContextAck,
        GetBrandLogo,
        GetBrandLogoAck,
        SetBrand,
        SetBrandAck,
        GetNotifyDefaults,
        GetNotifyDefaultsAck,
        GetEnterpriseUsers,
        GetEnterpriseUsersAck,
    )
}
