"""Reseller branding in order entry: brands, and which enterprise presents which.

Theory of operation
-------------------
Seed 002 claim 92: a reseller of the enterprise's communications services brands
them as its own, and the backplane of every application presents "one or more
company brands" -- the reseller's to the reseller's customers.  Order entry keeps
the brands (table ``brands``, migration 3 of :mod:`.store`): an id, a name, two
colours (``color`` for the masthead, ``accent`` for links and focus), a short legal
line and an optional logo (the image bytes, their type and SHA-256).  An
enterprise presents at most one brand (``enterprises.brand_id``); several
enterprises may present the same brand (a reseller's customers); an enterprise
without one presents :data:`HOUSE_BRAND`.

Every value is checked with :func:`starwrs.grammar.catalogue_oe.brand_problem`
before it is stored (the same rules ``starwrs admin brand`` and the web tier
apply), so nothing a brand holds can become markup or script: names and legal
lines are printable text, colours ``#rrggbb``, logos raster images only.

All SQL of brands is in this module; :class:`BrandStore` works on the order entry
store's connection (``OrderEntryStore.brands``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from starwrs.grammar.catalogue_oe import brand_problem, logo_type
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.storage.sqlite import Row, Store

__all__ = ["HOUSE_BRAND", "Brand", "BrandStore", "Logo"]


@dataclass(frozen=True, slots=True)
class Brand:
    """A brand as the backplane presents it (no logo bytes).

    Attributes:
        brand_id: the brand's id (``blueline``).
        name: what the masthead says (``BlueLine Telecom``).
        color: the masthead colour, ``#rrggbb``.
        accent: links, focus and selection, ``#rrggbb``.
        legal: the short legal line at the foot of every page.
        logo_type: the logo's image type, or None without a logo.
        logo_sha256: the logo's SHA-256 (hex), or None.
    """

    brand_id: str
    name: str
    color: str
    accent: str
    legal: str = ""
    logo_type: str | None = None
    logo_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Logo:
    """A brand's logo: its bytes, image type and SHA-256."""

    data: bytes
    image_type: str
    sha256: str


#: what an enterprise without a brand of its own presents
HOUSE_BRAND = Brand(
    "starwrs",
    "starwrs",
    "#1f4e79",
    "#b3541e",
    "starwrs secure web reporting. Call detail data is confidential to your enterprise.",
)


def _brand(row: Row) -> Brand:
    return Brand(
        row["brand_id"],
        row["name"],
        row["color"],
        row["accent"],
        row["legal"],
        row["logo_type"],
        row["logo_sha256"],
    )


def _bad(reason: str) -> StarwrsError:
    return StarwrsError(ErrorCode.RM_PARAMETER_ERROR, reason)


class BrandStore:
    """Brands on order entry's store (migration 3 of :mod:`.store`).

    Args:
        db: order entry's open store.
        clock: wall-clock seconds (the ``updated`` column).
    """

    def __init__(self, db: Store, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def presented_by(self, entp_id: str) -> Brand:
        """The brand enterprise *entp_id* presents (:data:`HOUSE_BRAND` without one)."""
        row = await self.db.fetchone(
            "SELECT b.* FROM enterprises e JOIN brands b ON b.brand_id = e.brand_id"
            " WHERE e.entp_id = ?",
            (entp_id,),
        )
        return HOUSE_BRAND if row is None else _brand(row)

    async def logo(self, entp_id: str) -> Logo | None:
        """The logo of the brand *entp_id* presents, or None (no brand, or no logo)."""
        row = await self.db.fetchone(
            "SELECT b.logo, b.logo_type, b.logo_sha256 FROM enterprises e"
            " JOIN brands b ON b.brand_id = e.brand_id"
            " WHERE e.entp_id = ? AND b.logo IS NOT NULL",
            (entp_id,),
        )
        if row is None:
            return None
        return Logo(bytes(row["logo"]), row["logo_type"], row["logo_sha256"])

    async def get(self, brand_id: str) -> Brand | None:
        """A brand by id, or None."""
        row = await self.db.fetchone("SELECT * FROM brands WHERE brand_id = ?", (brand_id,))
        return None if row is None else _brand(row)

    async def enterprises_of(self, brand_id: str) -> list[str]:
        """The enterprises presenting *brand_id*, sorted."""
        rows = await self.db.fetchall(
            "SELECT entp_id FROM enterprises WHERE brand_id = ? ORDER BY entp_id", (brand_id,)
        )
        return [r["entp_id"] for r in rows]

    async def set_brand(
        self,
        entp_id: str,
        *,
        brand_id: str | None = None,
        name: str | None = None,
        color: str | None = None,
        accent: str | None = None,
        legal: str | None = None,
        logo: bytes | None = None,
    ) -> Brand:
        """Create or change the brand *entp_id* presents, and make it present it.

        The brand changed is *brand_id* when given (created when new, so that
        several enterprises can present one brand), else the one the enterprise
        presents now, else a new brand named after the enterprise id.  Values not
        given keep what the brand had; a new brand takes the house brand's.

        Returns:
            The brand as stored.

        Raises:
            StarwrsError: 6115 unknown enterprise; 6103 a value breaking
                :func:`~starwrs.grammar.catalogue_oe.brand_problem`.
        """
        problem = brand_problem(
            brand_id=brand_id, name=name, color=color, accent=accent, legal=legal, logo=logo
        )
        if problem is not None:
            raise _bad(problem)
        async with self.db.transaction() as tx:
            entp = await tx.fetchone(
                "SELECT brand_id FROM enterprises WHERE entp_id = ?", (entp_id,)
            )
            if entp is None:
                raise StarwrsError(ErrorCode.IDS_NOT_CORRECT, f"unknown enterprise {entp_id}")
            chosen = brand_id or entp["brand_id"] or entp_id
            row = await tx.fetchone("SELECT * FROM brands WHERE brand_id = ?", (chosen,))
            current = (
                replace(HOUSE_BRAND, brand_id=chosen, name=name or chosen)
                if row is None
                else _brand(row)
            )
            brand = Brand(
                chosen,
                name if name is not None else current.name,
                color if color is not None else current.color,
                accent if accent is not None else current.accent,
                legal if legal is not None else current.legal,
                current.logo_type,
                current.logo_sha256,
            )
            await tx.execute(
                "INSERT INTO brands (brand_id, name, color, accent, legal, updated)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (brand_id) DO UPDATE SET"
                " name = excluded.name, color = excluded.color, accent = excluded.accent,"
                " legal = excluded.legal, updated = excluded.updated",
                (brand.brand_id, brand.name, brand.color, brand.accent, brand.legal, self.clock()),
            )
            if logo is not None:
                kind = logo_type(logo)
                digest = hashlib.sha256(logo).hexdigest()
                await tx.execute(
                    "UPDATE brands SET logo = ?, logo_type = ?, logo_sha256 = ?"
                    " WHERE brand_id = ?",
                    (logo, kind, digest, brand.brand_id),
                )
                brand = replace(brand, logo_type=kind, logo_sha256=digest)
            await tx.execute(
                "UPDATE enterprises SET brand_id = ? WHERE entp_id = ?", (brand.brand_id, entp_id)
            )
        return brand

    async def clear(self, entp_id: str) -> None:
        """Make *entp_id* present the house brand again (the brand itself stays).

        Raises:
            StarwrsError: 6115 unknown enterprise.
        """
        result = await self.db.execute(
            "UPDATE enterprises SET brand_id = NULL WHERE entp_id = ?", (entp_id,)
        )
        if result.rowcount != 1:
            raise StarwrsError(ErrorCode.IDS_NOT_CORRECT, f"unknown enterprise {entp_id}")
