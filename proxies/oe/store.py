"""Order entry (the seed's StarOE) data: users, enterprises, billing, entitlements, pick lists.

Theory of operation
-------------------
StarOE is "the repository of user pick lists and user reporting entitlements"
(seed 001).  This module is its database, one SQLite file (``STATE/oe.db``)
opened through :func:`starwrs.storage.sqlite.open_store` with :data:`MIGRATIONS`;
every SQL statement of order entry is here.

* **Billing hierarchy** (Appendix H "Billing Corp"): enterprise (8 chars) ->
  corp id -> billing id -> service location, each with a name.  The
  ``billing_corp`` view flattens it the way Appendix H prints it, one row per
  node with its ``level`` and ``entp_corp_bill_serv_combo``
  (``00000001_99999999_Y0000001_N0000001``; absent parts empty).
* **Users** (``USERID`` Char(20)) belong to one enterprise, can be disabled and
  carry their defaults (time zone, language, currency, notification addresses);
  passwords are argon2id hashes (:mod:`~starwrs.proxies.oe.passwords`).
* **Logon** (:meth:`OrderEntryStore.verify_user`, the seed's "Validate User"):
  unknown user and wrong password cost the same and answer the same.  Failures
  are throttled (:mod:`~starwrs.proxies.oe.throttle`) per (id *as typed*, known or
  not, and source address), with growing delays, and per source address across
  ids; while throttled, no password is checked.  The throttle lives in memory,
  bounded; migration 2 drops the table of failures that migration 1 made.
* **Entitlements** (the seed's "Get User Application" and report
  entitlements): the applications a user may reach (frame targets ``OE``,
  ``RM``, ``RS``, ``INBX``, ``DSS``), products (V, C, S, T, H), the corp ids of
  their enterprise they may report on, and report entitlements (product x data
  category P/U x data type R/D).  :class:`Entitlements` is what the dispatcher
  caches at logon.
* **Brands** (migration 3, :mod:`~starwrs.proxies.oe.brands`): the reseller
  brands and the one each enterprise presents (``OrderEntryStore.brands``).
* **Pick lists** are one table with a ``kind`` (ACCESS, TIMEZONE, DURATION,
  RANGE, USAGE, LANG, CURR) plus the ``geo`` tree; reference values come from
  :mod:`starwrs.proxies.oe.reference` and are upserted at every open.

Time comes from an injectable ``clock`` (timestamps of rows); the throttle uses
trio's monotonic clock, so its tests run on ``autojump_clock``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import argon2
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.proxies.oe import reference
from starwrs.proxies.oe.brands import BrandStore
from starwrs.proxies.oe.model import (
    PRODUCTS,
    BillingCorpRow,
    BillingNode,
    CorpNode,
    Entitlements,
    GeoNode,
    LogonOutcome,
    LogonResult,
    PickItem,
    ReportEntitlement,
    ServiceLocation,
    ThrottlePolicy,
    User,
)
from starwrs.proxies.oe.passwords import PasswordChecker
from starwrs.proxies.oe.throttle import LogonThrottle, source_key
from starwrs.storage.sqlite import Params, Row, Store, open_store

__all__ = ["MIGRATIONS", "Clock", "OrderEntryStore", "open_order_entry"]

MIGRATIONS: list[str] = [
    # 1: enterprises, billing hierarchy, users, entitlements, pick lists
    """
    CREATE TABLE enterprises (
        entp_id TEXT PRIMARY KEY CHECK (length(entp_id) = 8),
        name    TEXT NOT NULL DEFAULT ''
    ) WITHOUT ROWID;

    CREATE TABLE corps (
        corp_id TEXT PRIMARY KEY CHECK (length(corp_id) BETWEEN 1 AND 8),
        entp_id TEXT NOT NULL REFERENCES enterprises ON DELETE CASCADE,
        name    TEXT NOT NULL DEFAULT ''
    ) WITHOUT ROWID;
    CREATE INDEX corps_entp ON corps (entp_id);

    CREATE TABLE billing_ids (
        corp_id    TEXT NOT NULL REFERENCES corps ON DELETE CASCADE,
        billing_id TEXT NOT NULL CHECK (length(billing_id) BETWEEN 1 AND 8),
        name       TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (corp_id, billing_id)
    ) WITHOUT ROWID;

    CREATE TABLE service_locations (
        corp_id        TEXT NOT NULL,
        billing_id     TEXT NOT NULL,
        service_loc_id TEXT NOT NULL CHECK (length(service_loc_id) BETWEEN 1 AND 8),
        name           TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (corp_id, billing_id, service_loc_id),
        FOREIGN KEY (corp_id, billing_id) REFERENCES billing_ids ON DELETE CASCADE
    ) WITHOUT ROWID;

    -- Appendix H "Billing Corp", one row per node (2 corp, 3 billing id, 4 location)
    CREATE VIEW billing_corp AS
    SELECT enterprise_id || '_' || corporate_id || '_' || coalesce(billing_id, '')
           || '_' || coalesce(service_loc_id, '') AS entp_corp_bill_serv_combo,
           level, enterprise_id, corporate_id, billing_id, service_loc_id,
           enterprise_name, corporate_name, billing_name, serv_loc_name
    FROM (
        SELECT 2 AS level, e.entp_id AS enterprise_id, c.corp_id AS corporate_id,
               NULL AS billing_id, NULL AS service_loc_id, e.name AS enterprise_name,
               c.name AS corporate_name, NULL AS billing_name, NULL AS serv_loc_name
          FROM corps c JOIN enterprises e ON e.entp_id = c.entp_id
        UNION ALL
        SELECT 3, e.entp_id, c.corp_id, b.billing_id, NULL, e.name, c.name, b.name, NULL
          FROM billing_ids b JOIN corps c ON c.corp_id = b.corp_id
          JOIN enterprises e ON e.entp_id = c.entp_id
        UNION ALL
        SELECT 4, e.entp_id, c.corp_id, s.billing_id, s.service_loc_id, e.name, c.name,
               b.name, s.name
          FROM service_locations s
          JOIN billing_ids b ON b.corp_id = s.corp_id AND b.billing_id = s.billing_id
          JOIN corps c ON c.corp_id = s.corp_id
          JOIN enterprises e ON e.entp_id = c.entp_id
    );

    CREATE TABLE users (
        user_id       TEXT PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 20),
        entp_id       TEXT NOT NULL REFERENCES enterprises ON DELETE CASCADE,
        name          TEXT NOT NULL DEFAULT '',
        email         TEXT NOT NULL DEFAULT '',
        pager         TEXT NOT NULL DEFAULT '',
        timezone      TEXT NOT NULL DEFAULT '45',
        lang          TEXT NOT NULL DEFAULT '1234',
        curr          TEXT NOT NULL DEFAULT '2345',
        enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
        password_hash TEXT NOT NULL,
        created       REAL NOT NULL,
        updated       REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX users_entp ON users (entp_id);

    -- no foreign key: ids that do not exist are throttled like those that do
    CREATE TABLE logon_failures (user_id TEXT NOT NULL, at REAL NOT NULL);
    CREATE INDEX logon_failures_user ON logon_failures (user_id, at);
    CREATE INDEX logon_failures_at ON logon_failures (at);

    CREATE TABLE applications (
        app  TEXT PRIMARY KEY CHECK (length(app) BETWEEN 1 AND 4),
        name TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE user_applications (
        user_id TEXT NOT NULL REFERENCES users ON DELETE CASCADE,
        app     TEXT NOT NULL REFERENCES applications,
        PRIMARY KEY (user_id, app)
    ) WITHOUT ROWID;

    CREATE TABLE user_products (
        user_id TEXT NOT NULL REFERENCES users ON DELETE CASCADE,
        product TEXT NOT NULL CHECK (product IN ('V', 'C', 'S', 'T', 'H')),
        PRIMARY KEY (user_id, product)
    ) WITHOUT ROWID;

    CREATE TABLE user_corps (
        user_id TEXT NOT NULL REFERENCES users ON DELETE CASCADE,
        corp_id TEXT NOT NULL REFERENCES corps ON DELETE CASCADE,
        PRIMARY KEY (user_id, corp_id)
    ) WITHOUT ROWID;
    CREATE TRIGGER user_corps_own_enterprise BEFORE INSERT ON user_corps
    WHEN (SELECT entp_id FROM corps WHERE corp_id = new.corp_id)
         IS NOT (SELECT entp_id FROM users WHERE user_id = new.user_id)
    BEGIN
        SELECT RAISE(ABORT, 'corp id of another enterprise');
    END;

    CREATE TABLE user_reports (
        user_id   TEXT NOT NULL REFERENCES users ON DELETE CASCADE,
        product   TEXT NOT NULL CHECK (product IN ('V', 'C', 'S', 'T', 'H')),
        data_cat  TEXT NOT NULL CHECK (data_cat IN ('P', 'U')),
        data_type TEXT NOT NULL CHECK (data_type IN ('R', 'D')),
        PRIMARY KEY (user_id, product, data_cat, data_type)
    ) WITHOUT ROWID;

    CREATE TABLE pick_lists (
        kind        TEXT NOT NULL,
        code        TEXT NOT NULL,
        description TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        io          TEXT CHECK (io IN ('I', 'O')),  -- NULL: both directions
        value       TEXT,
        low         REAL,
        high        REAL,
        PRIMARY KEY (kind, code)
    ) WITHOUT ROWID;

    CREATE TABLE geo (
        geo_key    TEXT PRIMARY KEY,               -- path: 001/CO/DENVER
        parent_key TEXT REFERENCES geo ON DELETE CASCADE,
        level      TEXT NOT NULL CHECK (level IN ('country', 'state', 'city')),
        code       TEXT NOT NULL,
        name       TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX geo_parent ON geo (parent_key);
    """,
    # 2: failed logons are throttled in memory (proxies/oe/throttle.py)
    """
    DROP TABLE IF EXISTS logon_failures;
    """,
    # 3: reseller brands, and the brand each enterprise presents (proxies/oe/brands.py)
    """
    CREATE TABLE brands (
        brand_id    TEXT PRIMARY KEY CHECK (length(brand_id) BETWEEN 1 AND 20),
        name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
        color       TEXT NOT NULL CHECK (color GLOB '#[0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f]'
                                         || '[0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f]'),
        accent      TEXT NOT NULL CHECK (accent GLOB '#[0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f]'
                                          || '[0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f]'),
        legal       TEXT NOT NULL DEFAULT '' CHECK (length(legal) <= 200),
        logo        BLOB CHECK (logo IS NULL OR length(logo) <= 65536),
        logo_type   TEXT CHECK (logo_type IN ('image/png', 'image/jpeg', 'image/gif',
                                              'image/webp')),
        logo_sha256 TEXT,
        updated     REAL NOT NULL
    ) WITHOUT ROWID;
    ALTER TABLE enterprises ADD COLUMN brand_id TEXT REFERENCES brands ON DELETE SET NULL;
    CREATE INDEX enterprises_brand ON enterprises (brand_id);
    """,
]

#: Clock: seconds since the epoch.
Clock = Callable[[], float]


def _ids_error(message: str) -> StarwrsError:
    return StarwrsError(ErrorCode.IDS_NOT_CORRECT, message)


def _check_entp(entp_id: str) -> None:
    if len(entp_id) != 8:
        raise StarwrsError(
            ErrorCode.ENTPID_LENGTH, f"enterprise id must be 8 characters: {entp_id!r}"
        )


def _check_id(kind: str, value: str, limit: int) -> None:
    if not 1 <= len(value) <= limit:
        raise _ids_error(f"{kind} must be 1-{limit} characters: {value!r}")


def _user(row: Row) -> User:
    return User(
        user_id=row["user_id"],
        entp_id=row["entp_id"],
        name=row["name"],
        email=row["email"],
        pager=row["pager"],
        timezone=row["timezone"],
        lang=row["lang"],
        curr=row["curr"],
        enabled=bool(row["enabled"]),
    )


_ENTITLEMENTS_SQL = """
SELECT 'U', entp_id, enabled, NULL FROM users WHERE user_id = :u
UNION ALL SELECT 'A', app, NULL, NULL FROM user_applications WHERE user_id = :u
UNION ALL SELECT 'P', product, NULL, NULL FROM user_products WHERE user_id = :u
UNION ALL SELECT 'C', corp_id, NULL, NULL FROM user_corps WHERE user_id = :u
UNION ALL SELECT 'R', product, data_cat, data_type FROM user_reports WHERE user_id = :u
"""


async def _entitlements(
    fetchall: Callable[[str, Params], Awaitable[list[Row]]], user_id: str
) -> Entitlements | None:
    rows = await fetchall(_ENTITLEMENTS_SQL, {"u": user_id})
    # one pass over the rows (this runs for every GUA the dispatcher sends)
    user: Row | None = None
    values: dict[str, list[str]] = {"A": [], "P": [], "C": []}
    reports: list[ReportEntitlement] = []
    for row in rows:
        tag = row[0]
        if tag == "R":
            reports.append(ReportEntitlement(row[1], row[2], row[3]))
        elif tag == "U":
            if user is None:
                user = row
        else:
            values[tag].append(row[1])
    if user is None:
        return None
    return Entitlements(
        user_id=user_id,
        entp_id=user[1],
        enabled=bool(user[2]),
        applications=frozenset(values["A"]),
        products=frozenset(values["P"]),
        corp_ids=frozenset(values["C"]),
        reports=frozenset(reports),
    )


class OrderEntryStore:
    """Order entry's data, on a store opened with :data:`MIGRATIONS`
    (see :func:`open_order_entry`).

    Args:
        db: the open store.
        hasher: argon2 parameters (default OWASP's; tests pass cheap ones).
        clock: wall-clock seconds (row timestamps).
        throttle: failed-logon limits.
    """

    def __init__(
        self,
        db: Store,
        *,
        hasher: argon2.PasswordHasher | None = None,
        clock: Clock = time.time,
        throttle: ThrottlePolicy | None = None,
    ) -> None:
        self.db = db
        self.passwords = PasswordChecker(hasher)
        self.clock = clock
        self.throttle = LogonThrottle(throttle or ThrottlePolicy())
        #: reseller brands (:mod:`~starwrs.proxies.oe.brands`)
        self.brands = BrandStore(db, clock)

    # -- reference data -------------------------------------------------------------

    async def install_reference_data(self) -> None:
        """Upsert the applications, static pick lists and geography of
        :mod:`~starwrs.proxies.oe.reference` (idempotent)."""
        async with self.db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO applications (app, name) VALUES (?, ?)"
                " ON CONFLICT (app) DO UPDATE SET name = excluded.name",
                reference.APPLICATIONS,
            )
            await tx.executemany(
                "INSERT INTO pick_lists (kind, code, description, seq, io, value, low, high)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, code) DO UPDATE SET"
                " description = excluded.description, seq = excluded.seq, io = excluded.io,"
                " value = excluded.value, low = excluded.low, high = excluded.high",
                [
                    (i.kind, i.code, i.description, n, i.io, i.value, i.low, i.high)
                    for n, i in enumerate(reference.PICK_LISTS)
                ],
            )
            await tx.executemany(
                "INSERT INTO geo (geo_key, parent_key, level, code, name) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (geo_key) DO UPDATE SET level = excluded.level,"
                " code = excluded.code, name = excluded.name",
                [
                    (g.key, g.key.rpartition("/")[0] or None, g.level, g.code, g.name)
                    for g in reference.GEO
                ],
            )

    # -- enterprises and the billing hierarchy -----------------------------------------

    async def add_enterprise(self, entp_id: str, name: str = "") -> None:
        """Create or rename an enterprise.

        Raises:
            StarwrsError: :data:`ErrorCode.ENTPID_LENGTH` unless 8 characters.
        """
        _check_entp(entp_id)
        await self.db.execute(
            "INSERT INTO enterprises (entp_id, name) VALUES (?, ?)"
            " ON CONFLICT (entp_id) DO UPDATE SET name = excluded.name",
            (entp_id, name),
        )

    async def add_corp(self, entp_id: str, corp_id: str, name: str = "") -> None:
        """Create or rename a corp id of an enterprise.

        Raises:
            StarwrsError: :data:`ErrorCode.IDS_NOT_CORRECT` for a bad id, an unknown
                enterprise, or a corp id that belongs to another enterprise.
        """
        _check_entp(entp_id)
        _check_id("corp id", corp_id, 8)
        async with self.db.transaction() as tx:
            if await tx.fetchone("SELECT 1 FROM enterprises WHERE entp_id = ?", (entp_id,)) is None:
                raise _ids_error(f"unknown enterprise {entp_id}")
            row = await tx.fetchone("SELECT entp_id FROM corps WHERE corp_id = ?", (corp_id,))
            if row is not None and row["entp_id"] != entp_id:
                raise _ids_error(f"corp id {corp_id} belongs to another enterprise")
            await tx.execute(
                "INSERT INTO corps (corp_id, entp_id, name) VALUES (?, ?, ?)"
                " ON CONFLICT (corp_id) DO UPDATE SET name = excluded.name",
                (corp_id, entp_id, name),
            )

    async def add_billing_id(self, corp_id: str, billing_id: str, name: str = "") -> None:
        """Create or rename a billing id (invoice recipient) under a corp id.

        Raises:
            StarwrsError: :data:`ErrorCode.IDS_NOT_CORRECT` for a bad id or unknown corp id.
        """
        _check_id("billing id", billing_id, 8)
        await self._insert_node(
            "INSERT INTO billing_ids (corp_id, billing_id, name) VALUES (?, ?, ?)"
            " ON CONFLICT (corp_id, billing_id) DO UPDATE SET name = excluded.name",
            (corp_id, billing_id, name),
        )

    async def add_service_location(
        self, corp_id: str, billing_id: str, service_loc_id: str, name: str = ""
    ) -> None:
        """Create or rename a service location under a billing id.

        Raises:
            StarwrsError: :data:`ErrorCode.IDS_NOT_CORRECT` for a bad id or unknown parent.
        """
        _check_id("service location id", service_loc_id, 8)
        await self._insert_node(
            "INSERT INTO service_locations (corp_id, billing_id, service_loc_id, name)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (corp_id, billing_id, service_loc_id)"
            " DO UPDATE SET name = excluded.name",
            (corp_id, billing_id, service_loc_id, name),
        )

    async def _insert_node(self, sql: str, params: tuple[str, ...]) -> None:
        try:
            await self.db.execute(sql, params)
        except sqlite3.IntegrityError as err:
            raise _ids_error(f"unknown parent for {params[:-1]}") from err

    async def enterprise_name(self, entp_id: str) -> str | None:
        """The enterprise's name, or None if it does not exist."""
        row = await self.db.fetchone("SELECT name FROM enterprises WHERE entp_id = ?", (entp_id,))
        return None if row is None else str(row["name"])

    async def corp_ids(self, entp_id: str) -> list[str]:
        """The enterprise's corp ids, sorted."""
        rows = await self.db.fetchall(
            "SELECT corp_id FROM corps WHERE entp_id = ? ORDER BY corp_id", (entp_id,)
        )
        return [r["corp_id"] for r in rows]

    async def billing_corp_rows(
        self, entp_id: str, corp_ids: Iterable[str] | None = None
    ) -> list[BillingCorpRow]:
        """Appendix H "Billing Corp" rows of an enterprise, in hierarchy order.

        Args:
            entp_id: the enterprise.
            corp_ids: only these corp ids (a user's entitlement); None = all.

        Returns:
            Level 2 (corp), 3 (billing id) and 4 (service location) rows.
        """
        rows = await self.db.fetchall(
            "SELECT * FROM billing_corp WHERE enterprise_id = ?"
            " ORDER BY corporate_id, coalesce(billing_id, ''), coalesce(service_loc_id, '')",
            (entp_id,),
        )
        wanted = None if corp_ids is None else set(corp_ids)
        return [
            BillingCorpRow(*r)  # the view's columns are the record's fields, in order
            for r in rows
            if wanted is None or r["corporate_id"] in wanted
        ]

    async def billing_hierarchy(
        self, entp_id: str, corp_ids: Iterable[str] | None = None
    ) -> list[CorpNode]:
        """The billing hierarchy (``PL_HIER``) as a tree: corp -> billing -> location.

        Args:
            entp_id: the enterprise.
            corp_ids: only these corp ids; None = all.

        Returns:
            One :class:`CorpNode` per corp id, sorted by id.
        """
        corps: dict[str, tuple[str, dict[str, tuple[str, list[ServiceLocation]]]]] = {}
        for r in await self.billing_corp_rows(entp_id, corp_ids):
            if r.level == 2:
                corps[r.corporate_id] = (r.corporate_name, {})
            elif r.level == 3 and r.billing_id is not None:
                corps[r.corporate_id][1][r.billing_id] = (r.billing_name or "", [])
            elif r.billing_id is not None and r.service_loc_id is not None:
                loc = ServiceLocation(r.service_loc_id, r.serv_loc_name or "")
                corps[r.corporate_id][1][r.billing_id][1].append(loc)
        return [
            CorpNode(
                corp_id,
                name,
                tuple(BillingNode(b, bname, tuple(locs)) for b, (bname, locs) in bills.items()),
            )
            for corp_id, (name, bills) in corps.items()
        ]

    # -- users and passwords -------------------------------------------------------------

    async def add_user(
        self,
        user_id: str,
        entp_id: str,
        password: str,
        *,
        name: str = "",
        email: str = "",
        pager: str = "",
        timezone: str = "45",
        lang: str = "1234",
        curr: str = "2345",
        enabled: bool = True,
    ) -> User:
        """Create a user, or update every field of an existing one (password included).

        Args:
            user_id: ``USERID``, 1-20 characters.
            entp_id: an existing enterprise.
            password: the clear-text password (only its hash is kept).
            name: display name.
            email: default notification e-mail.
            pager: default pager.
            timezone: pick-list code (default 45, Eastern).
            lang: pick-list code (default 1234, American English).
            curr: pick-list code (default 2345, American Dollar).
            enabled: may log on.

        Returns:
            The :class:`User`.

        Raises:
            StarwrsError: :data:`ErrorCode.IDS_NOT_CORRECT` for a bad user id or an
                unknown enterprise; :data:`ErrorCode.ENTPID_LENGTH` for a bad enterprise id.
        """
        _check_id("user id", user_id, 20)
        _check_entp(entp_id)
        hashed = await self.passwords.hash(password)
        now = self.clock()
        async with self.db.transaction() as tx:
            if await tx.fetchone("SELECT 1 FROM enterprises WHERE entp_id = ?", (entp_id,)) is None:
                raise _ids_error(f"unknown enterprise {entp_id}")
            await tx.execute(
                "INSERT INTO users (user_id, entp_id, name, email, pager, timezone, lang, curr,"
                " enabled, password_hash, created, updated)"
                " VALUES (:user_id, :entp_id, :name, :email, :pager, :timezone, :lang, :curr,"
                " :enabled, :hash, :now, :now)"
                " ON CONFLICT (user_id) DO UPDATE SET entp_id = excluded.entp_id,"
                " name = excluded.name, email = excluded.email, pager = excluded.pager,"
                " timezone = excluded.timezone, lang = excluded.lang, curr = excluded.curr,"
                " enabled = excluded.enabled, password_hash = excluded.password_hash,"
                " updated = excluded.updated",
                {
                    "user_id": user_id, "entp_id": entp_id, "name": name, "email": email,
                    "pager": pager, "timezone": timezone, "lang": lang, "curr": curr,
                    "enabled": int(enabled), "hash": hashed, "now": now,
                },
            )  # fmt: skip
            row = await tx.fetchone("SELECT * FROM users WHERE user_id = ?", (user_id,))
        assert row is not None
        return _user(row)

    async def user(self, user_id: str) -> User | None:
        """The user, or None."""
        row = await self.db.point_fetchone("SELECT * FROM users WHERE user_id = ?", (user_id,))
        return None if row is None else _user(row)

    async def users(self, entp_id: str) -> list[User]:
        """The enterprise's users, sorted by id."""
        rows = await self.db.fetchall(
            "SELECT * FROM users WHERE entp_id = ? ORDER BY user_id", (entp_id,)
        )
        return [_user(r) for r in rows]

    async def inbox_users(self, entp_id: str) -> list[str]:
        """The enterprise's enabled users who have an inbox (``INBX``), sorted by id."""
        rows = await self.db.fetchall(
            "SELECT u.user_id FROM users u JOIN user_applications a USING (user_id)"
            " WHERE u.entp_id = ? AND a.app = 'INBX' AND u.enabled = 1 ORDER BY u.user_id",
            (entp_id,),
        )
        return [r[0] for r in rows]

    async def set_password(self, user_id: str, password: str) -> None:
        """Replace a user's password.

        Raises:
            StarwrsError: :data:`ErrorCode.IDS_NOT_CORRECT` for an unknown user.
        """
        hashed = await self.passwords.hash(password)
        await self._update_user(user_id, "password_hash = ?", (hashed,))

    async def set_enabled(self, user_id: str, enabled: bool) -> None:
        """Enable or disable a user (the caller also ends a disabled user's sessions).

        Raises:
            StarwrsError: :data:`ErrorCode.IDS_NOT_CORRECT` for an unknown user.
        """
        await self._update_user(user_id, "enabled = ?", (int(enabled),))

    async def _update_user(self, user_id: str, assignment: str, params: tuple[Any, ...]) -> None:
        result = await self.db.execute(
            f"UPDATE users SET {assignment}, updated = ? WHERE user_id = ?",  # noqa: S608
            (*params, self.clock(), user_id),
        )
        if result.rowcount != 1:
            raise _ids_error(f"unknown user {user_id}")

    def retry_after(self, user_id: str, source: str | None = None) -> float:
        """Seconds until a logon of *user_id* from *source* is looked at again (0: now)."""
        return self.throttle.retry_after(user_id, source_key(source))

    async def verify_user(
        self, user_id: str, password: str, source: str | None = None
    ) -> LogonResult:
        """Check a logon (the seed's "Validate User").

        Unknown user and wrong password give the same result for the same work
        (a dummy hash is checked for unknown ids).  The attempt is throttled per
        (id as typed, source) and per source (:mod:`~starwrs.proxies.oe.throttle`):
        charged as a failure before the password is checked, refunded on success.
        A disabled user's right password stays charged (its answer is a failure's).

        Args:
            user_id: the id as typed.
            password: the password as typed.
            source: the client's address (``VU``'s ``SOURCE``); None: an internal caller.

        Returns:
            A :class:`LogonResult`: ``OK`` with the user, ``INVALID``, ``DISABLED``
            (right password, disabled user) or ``THROTTLED``.
        """
        key = source_key(source)
        if self.throttle.retry_after(user_id, key) > 0:
            return LogonResult(LogonOutcome.THROTTLED)
        self.throttle.charge(user_id, key)
        row = await self.db.point_fetchone("SELECT * FROM users WHERE user_id = ?", (user_id,))
        stored = None if row is None else str(row["password_hash"])
        matches = await self.passwords.check_or_dummy(stored, password)
        if row is None or stored is None or not matches:
            return LogonResult(LogonOutcome.INVALID)
        if not row["enabled"]:
            return LogonResult(LogonOutcome.DISABLED)
        self.throttle.succeeded(user_id, key)
        if self.passwords.needs_rehash(stored):
            await self.set_password(user_id, password)
        return LogonResult(LogonOutcome.OK, _user(row))

    # -- entitlements ------------------------------------------------------------------

    async def set_entitlements(
        self,
        user_id: str,
        *,
        applications: Iterable[str] = (),
        products: Iterable[str] = (),
        corp_ids: Iterable[str] = (),
        reports: Iterable[ReportEntitlement] = (),
    ) -> Entitlements:
        """Replace all of a user's entitlements in one transaction.

        Args:
            user_id: an existing user.
            applications: frame targets (must be known applications).
            products: product ids.
            corp_ids: corp ids of the user's own enterprise.
            reports: report entitlements.

        Returns:
            The new :class:`Entitlements`.

        Raises:
            StarwrsError: :data:`ErrorCode.IDS_NOT_CORRECT` for an unknown user,
                application, product or corp id, or a corp id of another enterprise.
        """
        apps = sorted({a.strip().upper() for a in applications})
        prods = sorted(set(products))
        corps = sorted(set(corp_ids))
        reps = sorted(set(reports))
        for p in [*prods, *(r.product for r in reps)]:
            if p not in PRODUCTS:
                raise _ids_error(f"unknown product {p!r}")
        try:
            async with self.db.transaction() as tx:
                for table in ("user_applications", "user_products", "user_corps", "user_reports"):
                    await tx.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))  # noqa: S608
                await tx.executemany(
                    "INSERT INTO user_applications (user_id, app) VALUES (?, ?)",
                    [(user_id, a) for a in apps],
                )
                await tx.executemany(
                    "INSERT INTO user_products (user_id, product) VALUES (?, ?)",
                    [(user_id, p) for p in prods],
                )
                await tx.executemany(
                    "INSERT INTO user_corps (user_id, corp_id) VALUES (?, ?)",
                    [(user_id, c) for c in corps],
                )
                await tx.executemany(
                    "INSERT INTO user_reports (user_id, product, data_cat, data_type)"
                    " VALUES (?, ?, ?, ?)",
                    [(user_id, r.product, r.data_cat, r.data_type) for r in reps],
                )
                entitlements = await _entitlements(tx.fetchall, user_id)
                if entitlements is None:
                    raise _ids_error(f"unknown user {user_id}")
        except sqlite3.IntegrityError as err:  # unknown user/application/corp, bad category
            raise _ids_error(f"bad entitlement for {user_id}: {err}") from err
        return entitlements

    async def entitlements(self, user_id: str) -> Entitlements | None:
        """A user's entitlements (None for an unknown user), read in one statement.

        The dispatcher may call this on every request: it is an indexed point read
        (stdlib ``sqlite3`` on the trio thread, no thread hop) and never waits for
        writers.
        """
        return await _entitlements(self.db.point_fetchall, user_id)

    async def user_applications(self, user_id: str) -> list[tuple[str, str]]:
        """The seed's "Get User Application": ``(target, name)`` the user may use."""
        rows = await self.db.fetchall(
            "SELECT a.app, a.name FROM user_applications u JOIN applications a ON a.app = u.app"
            " WHERE u.user_id = ? ORDER BY a.app",
            (user_id,),
        )
        return [(r["app"], r["name"]) for r in rows]

    # -- pick lists ---------------------------------------------------------------------

    async def pick_list(self, kind: str, *, io: str | None = None) -> list[PickItem]:
        """Entries of one static pick list.

        Args:
            kind: ACCESS, TIMEZONE, DURATION, RANGE, USAGE, LANG or CURR (a ``PL_``
                prefix, as in ``GPL<PL_ACCESS,...>``, is accepted).
            io: I or O keeps the entries for that direction (and for both); None: all.

        Returns:
            The entries in display order (empty for an unknown kind).
        """
        kind = kind.upper().removeprefix("PL_")
        rows = await self.db.fetchall(
            "SELECT * FROM pick_lists WHERE kind = :kind"
            " AND (:io IS NULL OR io IS NULL OR io = :io) ORDER BY seq",
            {"kind": kind, "io": io},
        )
        return [
            PickItem(
                r["kind"], r["code"], r["description"], r["io"], r["value"], r["low"], r["high"]
            )
            for r in rows
        ]

    async def geo_hierarchy(self) -> list[GeoNode]:
        """The geographic hierarchy (``PL_GEO``): countries with states with cities."""
        rows = await self.db.fetchall("SELECT * FROM geo ORDER BY geo_key")
        children: dict[str | None, list[Row]] = {}
        for r in rows:
            children.setdefault(r["parent_key"], []).append(r)

        def build(parent: str | None) -> tuple[GeoNode, ...]:
            return tuple(
                GeoNode(r["geo_key"], r["level"], r["code"], r["name"], build(r["geo_key"]))
                for r in children.get(parent, [])
            )

        return list(build(None))


@asynccontextmanager
async def open_order_entry(
    path: Path | str,
    *,
    hasher: argon2.PasswordHasher | None = None,
    clock: Clock = time.time,
    throttle: ThrottlePolicy | None = None,
) -> AsyncIterator[OrderEntryStore]:
    """Open order entry's database (creating, migrating, refreshing reference data).

    Args:
        path: the SQLite file, e.g. ``STATE/oe.db``.
        hasher: password hasher (default OWASP argon2id).
        clock: wall-clock seconds (row timestamps).
        throttle: failed-logon limits.

    Yields:
        The :class:`OrderEntryStore`.
    """
    async with open_store(path, MIGRATIONS) as db:
        store = OrderEntryStore(db, hasher=hasher, clock=clock, throttle=throttle)
        await store.install_reference_data()
        await store.passwords.warm()  # the first unknown id costs what any logon costs
        yield store
