"""Order entry's records: what :mod:`starwrs.proxies.oe.store` returns.

Theory of operation
-------------------
Plain frozen dataclasses, no I/O: the store builds them from rows, the OE proxy
turns them into metadata messages, the web server and dispatcher keep
:class:`Entitlements` (JSON round trip via ``to_json``/``from_json``).  The
names follow the seed: Appendix H "Billing Corp" columns for
:class:`BillingCorpRow`, Appendix A codes for products (V, C, S, T, H), data
categories (P priced, U unpriced) and data types (R reports, D call detail).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "PRODUCTS",
    "BillingCorpRow",
    "BillingNode",
    "CorpNode",
    "Entitlements",
    "GeoNode",
    "LogonOutcome",
    "LogonResult",
    "PickItem",
    "ReportEntitlement",
    "ServiceLocation",
    "ThrottlePolicy",
    "User",
]

#: Product ids of Appendix A: Vnet, CVNS, Vision, Toll Free, Broadband.
PRODUCTS = ("V", "C", "S", "T", "H")


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How failed logons are throttled (:mod:`starwrs.proxies.oe.throttle`).

    Per (account, source): ``free_failures`` failures cost nothing more; after
    that each failure blocks the pair for ``first_delay`` seconds, doubling with
    every further failure up to ``max_delay``.  A pair with no failure for
    ``forget_after`` seconds starts afresh.  Per source, across accounts: a bucket
    of ``source_burst`` failures, refilled at ``source_rate`` per second; an empty
    bucket blocks the source's logons.  At most ``max_pairs`` pairs and
    ``max_sources`` sources are remembered (the oldest are forgotten first).
    """

    free_failures: int = 3
    first_delay: float = 1.0
    max_delay: float = 300.0
    forget_after: float = 3600.0
    source_burst: int = 30
    source_rate: float = 0.2
    max_pairs: int = 100_000
    max_sources: int = 50_000


class LogonOutcome(StrEnum):
    """What :meth:`OrderEntryStore.verify_user` decided.  Unknown user and wrong
    password are both ``INVALID``; the web server should answer ``DISABLED`` and
    ``THROTTLED`` the same way as ``INVALID`` too, unless it wants to tell."""

    OK = "ok"
    INVALID = "invalid"
    DISABLED = "disabled"
    THROTTLED = "throttled"


@dataclass(frozen=True, slots=True)
class User:
    """A StarOE user (no password material).

    Attributes:
        user_id: ``USERID`` (Char 20).
        entp_id: ``ENTPID`` (Char 8).
        name: display name.
        email: default e-mail for notifications.
        pager: default pager.
        timezone: pick-list code of the default time zone.
        lang: pick-list code of the default language.
        curr: pick-list code of the default currency.
        enabled: may log on.
    """

    user_id: str
    entp_id: str
    name: str
    email: str
    pager: str
    timezone: str
    lang: str
    curr: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class LogonResult:
    """Outcome of a logon attempt; ``user`` only when ``OK``."""

    outcome: LogonOutcome
    user: User | None = None


@dataclass(frozen=True, slots=True, order=True)
class ReportEntitlement:
    """May report on ``product`` data of category ``data_cat`` (P priced, U
    unpriced) and type ``data_type`` (R reports, D call detail)."""

    product: str
    data_cat: str
    data_type: str = "R"


@dataclass(frozen=True, slots=True)
class Entitlements:
    """Everything the dispatcher and Report Manager check for one user.

    Attributes:
        user_id: the user.
        entp_id: the user's enterprise.
        enabled: the user may log on (a disabled user may use nothing).
        applications: frame targets the user may reach (``RM``, ``INBX``, ...).
        products: product ids (V, C, S, T, H).
        corp_ids: corp ids the user may report on.
        reports: report entitlements.
    """

    user_id: str
    entp_id: str
    enabled: bool
    applications: frozenset[str]
    products: frozenset[str]
    corp_ids: frozenset[str]
    reports: frozenset[ReportEntitlement]

    @property
    def data_cats(self) -> frozenset[str]:
        """Data categories (P, U) of any report entitlement."""
        return frozenset(r.data_cat for r in self.reports)

    def may_use(self, target: str) -> bool:
        """Whether the user may send frames to ``target`` (space padding ignored)."""
        return self.enabled and target.strip().upper() in self.applications

    def allows_report(self, product: str, data_cat: str, data_type: str = "R") -> bool:
        """Whether a report of this kind is entitled; ``data_cat`` B = either."""
        cats = ("P", "U") if data_cat == "B" else (data_cat,)
        return self.enabled and any(
            ReportEntitlement(product, c, data_type) in self.reports for c in cats
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (logon answer, the dispatcher's cache)."""
        return {
            "user_id": self.user_id,
            "entp_id": self.entp_id,
            "enabled": self.enabled,
            "applications": sorted(self.applications),
            "products": sorted(self.products),
            "corp_ids": sorted(self.corp_ids),
            "reports": [[r.product, r.data_cat, r.data_type] for r in sorted(self.reports)],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entitlements:
        """Inverse of :meth:`to_json`."""
        return cls(
            user_id=data["user_id"],
            entp_id=data["entp_id"],
            enabled=bool(data["enabled"]),
            applications=frozenset(data["applications"]),
            products=frozenset(data["products"]),
            corp_ids=frozenset(data["corp_ids"]),
            reports=frozenset(ReportEntitlement(*r) for r in data["reports"]),
        )


@dataclass(frozen=True, slots=True)
class BillingCorpRow:
    """One row of Appendix H "Billing Corp" (level 2 corp, 3 billing id, 4 service location)."""

    entp_corp_bill_serv_combo: str
    level: int
    enterprise_id: str
    corporate_id: str
    billing_id: str | None
    service_loc_id: str | None
    enterprise_name: str
    corporate_name: str
    billing_name: str | None
    serv_loc_name: str | None


@dataclass(frozen=True, slots=True)
class ServiceLocation:
    """A service location (physical location of a subscribed service)."""

    service_loc_id: str
    name: str


@dataclass(frozen=True, slots=True)
class BillingNode:
    """A billing id (invoice recipient) with its service locations."""

    billing_id: str
    name: str
    locations: tuple[ServiceLocation, ...]


@dataclass(frozen=True, slots=True)
class CorpNode:
    """A corp id (customer) with its billing ids."""

    corp_id: str
    name: str
    billing: tuple[BillingNode, ...]


@dataclass(frozen=True, slots=True)
class PickItem:
    """One pick-list entry.

    Attributes:
        kind: ACCESS, TIMEZONE, DURATION, RANGE, USAGE, LANG or CURR.
        code: what a request carries (``OACCESS=<4~1>``, ``TIMEZONE=45``).
        description: what the user sees.
        io: I or O when only for inbound or outbound; None for both.
        value: TIMEZONE abbreviation, CURR ISO 4217 code.
        low: DURATION/RANGE lower bound; TIMEZONE offset from GMT in minutes.
        high: DURATION/RANGE upper bound.
    """

    kind: str
    code: str
    description: str
    io: str | None
    value: str | None
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class GeoNode:
    """A node of the geographic hierarchy with its children."""

    key: str
    level: str
    code: str
    name: str
    children: tuple[GeoNode, ...] = ()
