"""The order entry proxy process (seed: StarOE server 280).

Theory of operation
-------------------
Order entry owns users, enterprises and entitlements (:mod:`.store`).  Its proxy
answers, through :mod:`starwrs.proxies.framework`:

* ``VU`` (Validate User) -- only for the dispatcher's own logon flow (no user
  behind the request): ``VUA<ERROR=0,USERID,ENTPID,TIMEZONE,LANG,CURR>``; a bad
  user id, a wrong password and a disabled user all get ``ERROR=6115`` for the same
  work; too many failures for one id from one ``SOURCE`` address (growing delays),
  or from one address across ids, get ``ERROR=7012`` (:mod:`.throttle`);
* ``GUA`` (Get User Application) -- for the dispatcher, or a user asking about
  themselves: ``GUAA<ERROR=0,USERID,APPS=<...>,PRODUCTS=<...>,CORPIDS=<...>>``;
  a disabled user's answer is ``ERROR=7003`` (entitled to nothing);
* ``UAPP`` / ``UENB`` -- admin requests, accepted only from a peer holding the
  deployment's ``admin`` certificate.  After the change is committed, order entry
  sends ``ENTC<USERID=...>`` to every dispatcher (docs/runtime.md), so the change
  applies from the next request;
* ``GUC`` (Get User Context) -- the caller's own profile, entitlements, defaults and
  the brand of their enterprise (:mod:`.brands`), for the browser's backplane;
  ``GBL`` -- that brand's logo (the web tier serves it as ``GET /brand/logo``).
  Every live session may send both (the dispatcher lets them through whatever the
  user's applications); each answers for the key's ``USERID@ENTPID`` only;
* ``SBR`` -- admin: set the brand an enterprise presents (``starwrs admin brand``);
  a bad value is 6103, an unknown enterprise 6115;
* ``GUN`` / ``GEU`` -- the inbox's (and the admin's): a user's notification
  defaults (e-mail, pager stored as ``TYPE:PIN``), an enterprise's enabled users
  (news; ``GEU`` also the harvest's); 6115 for an unknown user or enterprise, 7003 for
  anyone else.

Who may connect at all is the peer table's (:mod:`starwrs.runtime.peers`): the
``dispatcher``, ``admin`` (its admin messages only) and ``dss`` certificates; the
web server's, which lives in the DMZ, is refused with 7003 right after the TLS
handshake, so an empty key is never a stranger passing for the dispatcher.  ``VU``
is the dispatcher's alone and ``UAPP``/``UENB`` the admin's alone there too.
"""

from __future__ import annotations

import base64
import binascii
import logging
from pathlib import Path

import trio
from starwrs.grammar import Group, Member, Message, serialize
from starwrs.grammar.catalogue_oe import (
    GetBrandLogo,
    GetBrandLogoAck,
    GetEnterpriseUsers,
    GetEnterpriseUsersAck,
    GetNotifyDefaults,
    GetNotifyDefaultsAck,
    GetUserApplications,
    GetUserContext,
    GetUserContextAck,
    SetBrand,
    SetBrandAck,
    ValidateUser,
)
from starwrs.grammar.catalogue_session import SetApplications, SetEnabled
from starwrs.grammar.codecs import list_group
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.protocol import ProtocolError, Request
from starwrs.proxies.framework import Caller, Proxy, error_message, serve_proxy
from starwrs.proxies.oe.model import Entitlements, LogonOutcome, User
from starwrs.proxies.oe.store import OrderEntryStore, open_order_entry
from starwrs.runtime.channel import PeerGone, ReadTimeout, open_tls_channel
from starwrs.runtime.config import Deployment
from starwrs.runtime.pki import Pki, load_pki

__all__ = ["BAD_CREDENTIALS", "LOGON_THROTTLED", "make_oe_proxy", "serve_oe"]

log = logging.getLogger("starwrs.oe")

#: answer to a wrong user id, a wrong password or a disabled user (same for all)
BAD_CREDENTIALS = ErrorCode.IDS_NOT_CORRECT
#: too many failed logons for one account and source, or for one source (PROTOCOL.md's
#: 70xx extended)
LOGON_THROTTLED = ErrorCode.LOGON_THROTTLED


def _values(items: frozenset[str]) -> Group:
    return list_group(sorted(items))


def make_oe_proxy(store: OrderEntryStore, notify: Notifier | None = None) -> Proxy:
    """Build the order entry proxy over *store*; *notify* tells dispatchers of changes."""
    proxy = Proxy("OE")

    @proxy.handles("VU", "VUA")
    async def validate_user(caller: Caller, req: ValidateUser) -> Message:
        if not caller.internal:
            raise StarwrsError(ErrorCode.NOT_ENTITLED, "VU is the dispatcher's")
        result = await store.verify_user(req.user_id, req.password, req.source)
        if result.outcome is LogonOutcome.THROTTLED:
            return error_message("VUA", LOGON_THROTTLED)
        if result.outcome is not LogonOutcome.OK or result.user is None:
            return error_message("VUA", BAD_CREDENTIALS)
        user = result.user
        return Message(
            "VUA",
            (
                Member("ERROR", "0"),
                Member("USERID", user.user_id),
                Member("ENTPID", user.entp_id),
                Member("TIMEZONE", user.timezone),
                Member("LANG", user.lang),
                Member("CURR", user.curr),
            ),
        )

    @proxy.handles("GUA", "GUAA")
    async def get_user_applications(caller: Caller, req: GetUserApplications) -> Message:
        if not caller.internal and caller.user_id != req.user_id:
            raise StarwrsError(ErrorCode.RM_ID_ERROR, "a user may only ask about themselves")
        ent = await store.entitlements(req.user_id)
        if ent is None:
            return error_message("GUAA", BAD_CREDENTIALS)
        if not ent.enabled:
            return error_message("GUAA", ErrorCode.NOT_ENTITLED)
        return Message(
            "GUAA",
            (
                Member("ERROR", "0"),
                Member("USERID", ent.user_id),
                Member("APPS", _values(ent.applications)),
                Member("PRODUCTS", _values(ent.products)),
                Member("CORPIDS", _values(ent.corp_ids)),
            ),
        )

    @proxy.handles("UAPP", "UAPA")
    async def set_applications(caller: Caller, req: SetApplications) -> Message:
        _admin_only(caller)
        ent = await store.entitlements(req.user_id)
        if ent is None:
            return error_message("UAPA", ErrorCode.IDS_NOT_CORRECT)
        await store.set_entitlements(
            req.user_id,
            applications=req.apps,
            products=ent.products,
            corp_ids=ent.corp_ids,
            reports=ent.reports,
        )
        if notify is not None:
            await notify.entitlements_changed(req.user_id)
        return Message("UAPA", (Member("ERROR", "0"), Member("USERID", req.user_id)))

    @proxy.handles("UENB", "UENA")
    async def set_enabled(caller: Caller, req: SetEnabled) -> Message:
        _admin_only(caller)
        if await store.user(req.user_id) is None:
            return error_message("UENA", ErrorCode.IDS_NOT_CORRECT)
        await store.set_enabled(req.user_id, req.enabled)
        if notify is not None:
            await notify.entitlements_changed(req.user_id)
        return Message("UENA", (Member("ERROR", "0"), Member("USERID", req.user_id)))

    @proxy.handles("GUC", "GUCA")
    async def user_context(caller: Caller, req: GetUserContext) -> GetUserContextAck:
        user, ent = await _own_user(store, caller)
        brand = await store.brands.presented_by(user.entp_id)
        return GetUserContextAck(
            error=0,
            user_id=user.user_id,
            entp_id=user.entp_id,
            user_name=user.name or None,
            apps=tuple(sorted(ent.applications)),
            products=tuple(sorted(ent.products)),
            corp_ids=tuple(sorted(ent.corp_ids)),
            reports=tuple(f"{r.product}{r.data_cat}{r.data_type}" for r in sorted(ent.reports)),
            timezone=user.timezone,
            lang=user.lang,
            curr=user.curr,
            brand_id=brand.brand_id,
            brand_name=brand.name,
            color=brand.color,
            accent=brand.accent,
            legal=brand.legal or None,
            logo=brand.logo_sha256,
        )

    @proxy.handles("GBL", "GBLA")
    async def brand_logo(caller: Caller, req: GetBrandLogo) -> GetBrandLogoAck:
        user, _ent = await _own_user(store, caller)
        logo = await store.brands.logo(user.entp_id)
        if logo is None:
            raise StarwrsError(ErrorCode.RM_NO_RECORDS, "the brand has no logo")
        brand = await store.brands.presented_by(user.entp_id)
        return GetBrandLogoAck(
            error=0,
            brand_id=brand.brand_id,
            image_type=logo.image_type,
            sha256=logo.sha256,
            logo=base64.b64encode(logo.data).decode("ascii"),
        )

    @proxy.handles("SBR", "SBRA")
    async def set_brand(caller: Caller, req: SetBrand) -> SetBrandAck:
        _admin_only(caller)
        if req.reset:
            await store.brands.clear(req.entp_id)
            return SetBrandAck(error=0, entp_id=req.entp_id, brand_id=None)
        logo = None
        if req.logo is not None:
            try:
                logo = base64.b64decode(req.logo, validate=True)
            except (binascii.Error, ValueError):
                raise StarwrsError(ErrorCode.RM_PARAMETER_ERROR, "LOGO is not base64") from None
        brand = await store.brands.set_brand(
            req.entp_id,
            brand_id=req.brand_id,
            name=req.brand_name,
            color=req.color,
            accent=req.accent,
            legal=req.legal,
            logo=logo,
        )
        return SetBrandAck(error=0, entp_id=req.entp_id, brand_id=brand.brand_id)

    @proxy.handles("GUN", "GUNA")
    async def notify_defaults(caller: Caller, req: GetNotifyDefaults) -> GetNotifyDefaultsAck:
        _inbox_or_admin(caller)
        user = await store.user(req.user_id)
        if user is None:
            raise StarwrsError(ErrorCode.IDS_NOT_CORRECT, "unknown user")
        kind, _, pin = user.pager.rpartition(":")
        pin = pin.strip()
        return GetNotifyDefaultsAck(
            error=0,
            user_id=user.user_id,
            entp_id=user.entp_id,
            user_name=user.name or None,
            email=user.email or None,
            pager_type=(kind.strip() or "A")[:1] if pin else None,
            pager_pin=pin[:8] or None,
            enabled=user.enabled,
        )

    @proxy.handles("GEU", "GEUA")
    async def enterprise_users(caller: Caller, req: GetEnterpriseUsers) -> GetEnterpriseUsersAck:
        if caller.peer != "harvest":  # the harvest's news of rejected call records
            _inbox_or_admin(caller)
        if await store.enterprise_name(req.entp_id) is None:
            raise StarwrsError(ErrorCode.IDS_NOT_CORRECT, "unknown enterprise")
        # news is for people who can read it: not a collector's account, say
        users = await store.inbox_users(req.entp_id)
        return GetEnterpriseUsersAck(error=0, entp_id=req.entp_id, users=tuple(users))

    return proxy


async def _own_user(store: OrderEntryStore, caller: Caller) -> tuple[User, Entitlements]:
    """The caller's user and entitlements (GUC, GBL answer for the key's user only).

    Raises:
        StarwrsError: 6107 no user behind the request, or not the key's enterprise;
            7003 a disabled user.
    """
    if caller.user_id is None:
        raise StarwrsError(ErrorCode.RM_ID_ERROR, "a user context is asked for a user")
    user = await store.user(caller.user_id)
    ent = await store.entitlements(caller.user_id)
    if user is None or ent is None or user.entp_id != caller.entp_id:
        raise StarwrsError(ErrorCode.RM_ID_ERROR, "unknown user")
    if not user.enabled:
        raise StarwrsError(ErrorCode.NOT_ENTITLED, "user disabled")
    return user, ent


def _inbox_or_admin(caller: Caller) -> None:
    if caller.peer not in (None, "inbox", "admin") or not caller.internal:
        raise StarwrsError(ErrorCode.NOT_ENTITLED, "for the inbox's notifications only")


def _admin_only(caller: Caller) -> None:
    if caller.peer != "admin" or not caller.internal:
        raise StarwrsError(ErrorCode.NOT_ENTITLED, "admin requests need the admin certificate")


class Notifier:
    """Sends ``ENTC<USERID=...>`` to every dispatcher of the deployment."""

    def __init__(self, deployment: Deployment, pki: Pki) -> None:
        self.deployment = deployment
        self.context = pki.internal_client_context("oe")

    async def entitlements_changed(self, user_id: str) -> None:
        """Tell every dispatcher; a dispatcher that cannot be reached is logged."""
        payload = serialize(Message("ENTC", (Member("USERID", user_id),))).encode()
        async with trio.open_nursery() as nursery:
            for address in self.deployment.dispatchers:
                nursery.start_soon(self._tell, address.host, address.port, payload)

    async def _tell(self, host: str, port: int, payload: bytes) -> None:
        limits = self.deployment.limits
        try:
            channel = await open_tls_channel(
                host,
                port,
                self.context,
                server_hostname="dispatcher",
                connect_timeout=limits.connect_timeout,
                read_timeout=limits.proxy_timeout,
            )
            async with channel:
                await channel.send(Request("DSP", payload))
                await channel.receive()
        except (PeerGone, ReadTimeout, ProtocolError) as err:
            log.warning("could not tell dispatcher %s:%d of a change: %s", host, port, err)


async def serve_oe(
    deployment: Deployment,
    *,
    index: int = 0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the order entry proxy on ``deployment.proxies["OE"]`` until cancelled."""
    del index
    pki = load_pki(deployment.state_dir)
    async with open_order_entry(Path(deployment.state_dir) / "oe.db") as store:
        proxy = make_oe_proxy(store, Notifier(deployment, pki))
        async with trio.open_nursery() as nursery:
            await nursery.start(
                serve_proxy,
                proxy,
                deployment.proxies["OE"],
                pki.internal_server_context("oe"),
                deployment.limits,
            )
            task_status.started()
