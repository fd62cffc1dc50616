"""Tariffs: the plans calls are priced by, who is rated by which plan, the CSV file an
operator loads them from, and their store ``STATE/harvest/tariffs.sqlite``.

Theory of operation
-------------------
Seed 001 Figure 8 prices call records "at tariff" before they reach the datamarts;
seed 003's usage profile "includes call cost information" (claims 7, 11, 15).  A
**plan** is a tariff: per destination prefix, direction, usage (Appendix H ``Usage``
code) and rate period (``reference.RATE_PERIODS``, from the switch's local time) a
rate per minute and a connect fee, billed in increments ``F/N`` (the first *F*
seconds, then every *N* seconds started: ``60/60``, ``30/6``, ``6/6``), with a minimum
charge, the tax, and a surcharge per international call (the seed's money columns
``nosurcharge_amt``, ``intl_surcharge``, ``tax``, ``amount``).  A **rating profile**
says from which local day an enterprise (or one of its corps) is rated by which plan,
as which product, with which discount.  A **site** is a PBX of a corp: which billing id
and service location its calls belong to, its main number (the customer's end of a
call from or to an extension), access type, time zone and outside-line digits.

The tariff file (UTF-8 CSV)
~~~~~~~~~~~~~~~~~~~~~~~~~~~
One record per line (quotes as in CSV, a record never spans lines); blank lines and
lines whose first character is ``#`` are ignored; blanks around fields are dropped.
The first field says what the line is; ``[..]`` fields may be left out::

    plan,PLAN,NAME,CURRENCY,INCREMENT,MINIMUM,TAX_PERCENT,INTL_SURCHARGE
    rate,PLAN,DIRECTION,USAGE,PERIOD,PREFIX,RATE_PER_MINUTE,CONNECT_FEE[,INCREMENT[,MINIMUM]]
    profile,ENTPID,CORP,PLAN,ACTIVE_FROM,PRODUCT,DISCOUNT_PERCENT
    site,ENTPID,CORP,TRUNK,BILLING_ID,SERVICE_LOC_ID,MAIN_NUMBER,ACCESS,TIME_ZONE,OUTSIDE_DIGITS

* ``PLAN`` 1-16 of ``A-Z a-z 0-9 _ -``; ``NAME`` up to 60 characters; ``CURRENCY`` a
  ``currency_cd`` (USA, CAN, GBR, MEX, EUR).
* ``INCREMENT`` ``F/N`` seconds, each 1-3600; ``MINIMUM`` and ``INTL_SURCHARGE`` money
  (at most 2 decimals); ``TAX_PERCENT`` 0-100 (at most 4 decimals), on the amount
  including surcharges.  A ``rate`` line may override the plan's increment and minimum.
* ``DIRECTION`` ``out``, ``in`` or ``*``; ``USAGE`` a ``use_cd`` 1-7 or ``*``;
  ``PERIOD`` 1, 2, 3, 4, 7 or ``*``; ``PREFIX`` ``+`` and 0-15 digits (``+`` alone:
  every number) matched against the far end -- the called number of an outbound call,
  the caller of an inbound one -- in E.164.  ``RATE_PER_MINUTE`` and ``CONNECT_FEE``
  money below 10000 with at most 6 decimals.
* ``ENTPID`` 8 characters; ``CORP`` a corp id (1-12 letters or digits) or ``*`` (every
  corp of the enterprise without a profile of its own); ``ACTIVE_FROM`` YYYY-MM-DD;
  ``PRODUCT`` V, S, C or H (inbound toll-free calls are product T); ``DISCOUNT_PERCENT``
  0-100, at most 2 decimals.
* ``TRUNK`` the start of the trunk / channel names the site's calls use (``*``: any);
  ``BILLING_ID`` and ``SERVICE_LOC_ID`` 1-20 characters; ``MAIN_NUMBER`` E.164
  (``+12125551000``); ``ACCESS`` an outbound ``access_code`` (1-9; 4 = dedicated);
  ``TIME_ZONE`` an IANA zone; ``OUTSIDE_DIGITS`` the digits the PBX's users dial for
  an outside line (``9``), or empty.

Each bad line is one :class:`TariffError` problem ``FILE:LINE: what is wrong``; every
line is checked, so one run lists them all.  Keys must be unique: a plan; a rate's
(plan, direction, usage, period, prefix); a profile's (enterprise, corp, day); a
site's (enterprise, corp, trunk).  Every ``rate`` names a plan of the same file;
every profile's plan is in the file or already stored.

Loading (:meth:`TariffStore.load`) is one transaction: each plan of the file replaces
the stored plan of that name with all its rates; an enterprise with profile lines gets
exactly those profiles, one with site lines exactly those sites; everything else stays.
A generation number goes up with every load and a ``loads`` row records the file's
SHA-256 and counts.

The store: SQLite, not DuckDB
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
``STATE/harvest/tariffs.sqlite`` is read by the ``harvest`` process (every batch it
rates), written by ``starwrs admin tariff load`` (another process, while the harvest
runs) and read by ``starwrs admin rerate``.  DuckDB allows one read-write process per
file and no reader beside it; SQLite in WAL mode lets a loader commit while readers
keep reading their snapshot, and its own file locks (``BEGIN IMMEDIATE``, a busy
timeout) order two loaders -- so no process needs to own the file and loading needs
no running service.  The tables are small (a plan is hundreds to thousands of
lines): :meth:`TariffStore.snapshot` reads what one corp needs into Arrow tables,
cached per generation, and the rating itself runs in DuckDB
(:mod:`starwrs.proxies.harvest.rating`).  The store is synchronous stdlib ``sqlite3``:
rating runs on worker threads, and the CLI has no event loop to share.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
import sqlite3
import threading
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow as pa
from starwrs.storage.datamart import reference as ref

__all__ = [
    "PERIODS",
    "LoadSummary",
    "Plan",
    "Profile",
    "Rate",
    "Site",
    "Snapshot",
    "TariffError",
    "TariffFile",
    "TariffStore",
    "parse_tariffs",
    "store_path",
]

#: the rate periods a tariff may name (``reference.RATE_PERIODS`` minus the reserved)
PERIODS = ("1", "2", "3", "4", "7")
_USAGES = tuple(code for code, _ in ref.USAGE)
_CURRENCIES = tuple(code for code, _ in ref.CURRENCIES)
_OUT_ACCESS = tuple(code for code, value, inbound in ref.ACCESS_TYPES if not inbound and value)
_PRODUCTS = ("V", "S", "C", "H")
_PLAN_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
_ENTP = re.compile(r"[A-Za-z0-9]{8}")
_CORP = re.compile(r"[A-Za-z0-9]{1,12}")
_IDENT = re.compile(r"[A-Za-z0-9_.-]{1,20}")
_PREFIX = re.compile(r"\+[0-9]{0,15}")
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
_NANP = re.compile(r"\+1[2-9][0-9]{2}[2-9][0-9]{6}")
_INCREMENT = re.compile(r"([0-9]{1,4})/([0-9]{1,4})")
_MONEY = re.compile(r"[0-9]{1,9}(?:\.[0-9]+)?")
#: money(7,2): the most a money column holds, in cents
MAX_CENTS = 999_999_999

#: the fields of each record kind (after the kind), and how many may be left out
_FIELDS: dict[str, tuple[tuple[str, ...], int]] = {
    "plan": (
        ("PLAN", "NAME", "CURRENCY", "INCREMENT", "MINIMUM", "TAX_PERCENT", "INTL_SURCHARGE"),
        0,
    ),
    "rate": (
        ("PLAN", "DIRECTION", "USAGE", "PERIOD", "PREFIX", "RATE_PER_MINUTE", "CONNECT_FEE",
         "INCREMENT", "MINIMUM"),
        2,
    ),
    "profile": (("ENTPID", "CORP", "PLAN", "ACTIVE_FROM", "PRODUCT", "DISCOUNT_PERCENT"), 0),
    "site": (
        ("ENTPID", "CORP", "TRUNK", "BILLING_ID", "SERVICE_LOC_ID", "MAIN_NUMBER", "ACCESS",
         "TIME_ZONE", "OUTSIDE_DIGITS"),
        0,
    ),
}  # fmt: skip


class TariffError(Exception):
    """A tariff file that cannot be loaded: one problem per bad line, in file order."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems[0] if problems else "bad tariff file")
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class Plan:
    """A tariff plan's own terms (money in cents, tax in millionths)."""

    plan_id: str
    name: str
    currency: str
    first_s: int
    next_s: int
    minimum_cents: int
    tax_ppm: int
    intl_cents: int


@dataclass(frozen=True, slots=True)
class Rate:
    """One rate line: what it matches and what it costs (money in micro-dollars per
    minute / per call, increments and minimum already resolved from the plan)."""

    plan_id: str
    direction: str  # 'out', 'in' or '*'
    use_cd: str  # '1'-'7' or '*'
    period: str  # PERIODS or '*'
    prefix: str  # digits after '+', possibly empty
    rate_micro: int
    connect_micro: int
    first_s: int
    next_s: int
    minimum_cents: int


@dataclass(frozen=True, slots=True)
class Profile:
    """From *active_from* (a local day) the corp (``*``: any) is rated by *plan_id*."""

    entp_id: str
    corp_id: str
    active_from: dt.date
    plan_id: str
    product: str
    discount_bp: int  # basis points (1/100 of a percent)


@dataclass(frozen=True, slots=True)
class Site:
    """A PBX of a corp: where its calls belong and how its numbers are read."""

    entp_id: str
    corp_id: str
    trunk: str  # '' = any trunk
    billing_id: str
    service_loc_id: str
    main_number: str  # E.164
    access_code: str
    tz: str
    outside: str


@dataclass(frozen=True, slots=True)
class TariffFile:
    """A parsed tariff file."""

    plans: tuple[Plan, ...]
    rates: tuple[Rate, ...]
    profiles: tuple[Profile, ...]
    sites: tuple[Site, ...]
    #: source line of each profile (for errors found against the store)
    profile_lines: tuple[int, ...] = ()


# -- parsing ---------------------------------------------------------------------------


class _Bad(Exception):
    """One problem of the line being parsed."""


def _money(text: str, what: str, decimals: int, scale: int) -> int:
    """*text* (a non-negative decimal of at most *decimals* places) times *scale*."""
    if not _MONEY.fullmatch(text):
        raise _Bad(f"{what} must be a non-negative amount such as 0.25, not {text!r}")
    value = Decimal(text)
    if -value.as_tuple().exponent > decimals:  # type: ignore[operator]
        raise _Bad(f"{what} has more than {decimals} decimals: {text}")
    return int(value * scale)


def _rate_money(text: str, what: str) -> int:
    """A rate or fee in micro-dollars: at most 6 decimals and below 10,000."""
    value = _money(text, what, 6, 1_000_000)
    if value >= 10_000 * 1_000_000:
        raise _Bad(f"{what} must be below 10000, not {text}")
    return value


def _percent(text: str, what: str, decimals: int, scale: int) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _Bad(f"{what} must be a percentage 0-100, not {text!r}") from None
    if not value.is_finite() or not 0 <= value <= 100:
        raise _Bad(f"{what} must be a percentage 0-100, not {text!r}")
    if -value.as_tuple().exponent > decimals:  # type: ignore[operator]
        raise _Bad(f"{what} has more than {decimals} decimals: {text}")
    return int(value * scale)


def _increment(text: str) -> tuple[int, int]:
    found = _INCREMENT.fullmatch(text)
    if not found or not all(1 <= int(g) <= 3600 for g in found.groups()):
        raise _Bad(f"INCREMENT must be F/N seconds, each 1-3600 (60/60, 30/6), not {text!r}")
    return int(found.group(1)), int(found.group(2))


def _choice(text: str, what: str, allowed: tuple[str, ...]) -> str:
    if text not in allowed:
        raise _Bad(f"{what} must be one of {', '.join(allowed)}, not {text!r}")
    return text


def _match(pattern: re.Pattern[str], text: str, what: str, rule: str) -> str:
    if not pattern.fullmatch(text):
        raise _Bad(f"{what} must be {rule}, not {text!r}")
    return text


def _plan(f: list[str]) -> Plan:
    plan_id = _match(_PLAN_ID, f[0], "PLAN", "1-16 letters, digits, _ or -")
    if not f[1] or len(f[1]) > 60 or not f[1].isprintable():
        raise _Bad("NAME must be 1-60 printable characters")
    first, step = _increment(f[3])
    return Plan(
        plan_id,
        f[1],
        _choice(f[2], "CURRENCY", _CURRENCIES),
        first,
        step,
        _money(f[4], "MINIMUM", 2, 100),
        _percent(f[5], "TAX_PERCENT", 4, 10_000),
        _money(f[6], "INTL_SURCHARGE", 2, 100),
    )


def _rate(f: list[str], plans: dict[str, Plan]) -> Rate:
    plan = plans.get(f[0])
    if plan is None:
        raise _Bad(f"rate of plan {f[0]!r}, which no earlier plan line of this file defines")
    prefix = _match(_PREFIX, f[4], "PREFIX", "+ and 0-15 digits (+44, +1212, +)")
    first, step = _increment(f[7]) if len(f) > 7 and f[7] else (plan.first_s, plan.next_s)
    minimum = _money(f[8], "MINIMUM", 2, 100) if len(f) > 8 and f[8] else plan.minimum_cents
    return Rate(
        plan.plan_id,
        _choice(f[1], "DIRECTION", ("out", "in", "*")),
        _choice(f[2], "USAGE", (*_USAGES, "*")),
        _choice(f[3], "PERIOD", (*PERIODS, "*")),
        prefix[1:],
        _rate_money(f[5], "RATE_PER_MINUTE"),
        _rate_money(f[6], "CONNECT_FEE"),
        first,
        step,
        minimum,
    )


def _profile(f: list[str]) -> Profile:
    entp = _match(_ENTP, f[0], "ENTPID", "8 letters or digits")
    corp = f[1] if f[1] == "*" else _match(_CORP, f[1], "CORP", "1-12 letters or digits or *")
    plan = _match(_PLAN_ID, f[2], "PLAN", "1-16 letters, digits, _ or -")
    try:
        day = dt.date.fromisoformat(f[3]) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", f[3]) else None
    except ValueError:
        day = None
    if day is None:
        raise _Bad(f"ACTIVE_FROM must be a day YYYY-MM-DD, not {f[3]!r}")
    product = _choice(f[4], "PRODUCT", _PRODUCTS)
    return Profile(entp, corp, day, plan, product, _percent(f[5], "DISCOUNT_PERCENT", 2, 100))


def _site(f: list[str]) -> Site:
    entp = _match(_ENTP, f[0], "ENTPID", "8 letters or digits")
    corp = _match(_CORP, f[1], "CORP", "1-12 letters or digits")
    trunk = "" if f[2] == "*" else f[2]
    if len(trunk) > 80 or not trunk.isprintable():
        raise _Bad("TRUNK must be * or up to 80 printable characters")
    billing = _match(_IDENT, f[3], "BILLING_ID", "1-20 letters, digits, _ . or -")
    location = _match(_IDENT, f[4], "SERVICE_LOC_ID", "1-20 letters, digits, _ . or -")
    main = _match(_E164, f[5], "MAIN_NUMBER", "an E.164 number such as +12125551000")
    if main.startswith("+1") and not _NANP.fullmatch(main):
        raise _Bad(f"MAIN_NUMBER {main} is not a North American number (+1 NPA NXX XXXX)")
    access = _choice(f[6], "ACCESS", _OUT_ACCESS)
    try:
        zoneinfo.ZoneInfo(f[7])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _Bad(
            f"TIME_ZONE must be an IANA zone such as America/New_York, not {f[7]!r}"
        ) from None
    outside = _match(re.compile(r"[0-9]{0,4}"), f[8], "OUTSIDE_DIGITS", "0-4 digits")
    return Site(entp, corp, trunk, billing, location, main, access, f[7], outside)


class _Records:
    """The records of a file so far, by key (duplicates are a problem of the line)."""

    def __init__(self) -> None:
        self.plans: dict[str, Plan] = {}
        self.plan_lines: dict[str, int] = {}
        self.rates: dict[tuple[str, str, str, str, str], Rate] = {}
        self.profiles: dict[tuple[str, str, dt.date], tuple[Profile, int]] = {}
        self.sites: dict[tuple[str, str, str], Site] = {}

    def add(self, kind: str, given: list[str], number: int) -> None:
        """Parse one line's fields (after the kind) and keep the record.

        Raises:
            _Bad: what is wrong with the line.
        """
        if kind == "plan":
            plan = _plan(given)
            if plan.plan_id in self.plans:
                line = self.plan_lines[plan.plan_id]
                raise _Bad(f"plan {plan.plan_id} is defined twice (line {line})")
            self.plans[plan.plan_id] = plan
            self.plan_lines[plan.plan_id] = number
        elif kind == "rate":
            rate = _rate(given, self.plans)
            key = (rate.plan_id, rate.direction, rate.use_cd, rate.period, rate.prefix)
            if key in self.rates:
                raise _Bad(
                    f"a second rate for plan {key[0]} {key[1]} usage {key[2]}"
                    f" period {key[3]} prefix +{key[4]}"
                )
            self.rates[key] = rate
        elif kind == "profile":
            profile = _profile(given)
            pkey = (profile.entp_id, profile.corp_id, profile.active_from)
            if pkey in self.profiles:
                raise _Bad(f"a second profile for {pkey[0]}/{pkey[1]} from {pkey[2]}")
            self.profiles[pkey] = (profile, number)
        else:
            site = _site(given)
            skey = (site.entp_id, site.corp_id, site.trunk)
            if skey in self.sites:
                raise _Bad(f"a second site for {skey[0]}/{skey[1]} trunk {given[2]!r}")
            self.sites[skey] = site


def parse_tariffs(text: str, *, name: str = "-") -> TariffFile:
    """Parse a tariff file (the format above).

    Raises:
        TariffError: with one ``NAME:LINE: problem`` per bad line.
    """
    problems: list[str] = []
    parsed = _Records()
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            fields = [f.strip() for f in next(csv.reader([line], strict=True))]
        except csv.Error as err:
            problems.append(f"{name}:{number}: not a CSV record: {err}")
            continue
        kind = fields[0].lower()
        if kind not in _FIELDS:
            problems.append(
                f"{name}:{number}: unknown record {fields[0]!r} (plan, rate, profile or site)"
            )
            continue
        names, optional = _FIELDS[kind]
        given = fields[1:]
        if not len(names) - optional <= len(given) <= len(names):
            want = f"{len(names) - optional}-{len(names)}" if optional else str(len(names))
            problems.append(
                f"{name}:{number}: a {kind} line has {want} fields after {kind!r}"
                f" ({','.join(names)}), this one {len(given)}"
            )
            continue
        try:
            parsed.add(kind, given, number)
        except _Bad as bad:
            problems.append(f"{name}:{number}: {bad}")
    if problems:
        raise TariffError(problems)
    return TariffFile(
        tuple(parsed.plans.values()),
        tuple(parsed.rates.values()),
        tuple(p for p, _n in parsed.profiles.values()),
        tuple(parsed.sites.values()),
        tuple(n for _p, n in parsed.profiles.values()),
    )


# -- the store -------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (generation INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS plans (
    plan_id TEXT PRIMARY KEY, name TEXT NOT NULL, currency TEXT NOT NULL,
    first_s INTEGER NOT NULL, next_s INTEGER NOT NULL, minimum_cents INTEGER NOT NULL,
    tax_ppm INTEGER NOT NULL, intl_cents INTEGER NOT NULL, load_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rates (
    plan_id TEXT NOT NULL REFERENCES plans (plan_id) ON DELETE CASCADE,
    direction TEXT NOT NULL, use_cd TEXT NOT NULL, period TEXT NOT NULL, prefix TEXT NOT NULL,
    rate_micro INTEGER NOT NULL, connect_micro INTEGER NOT NULL, first_s INTEGER NOT NULL,
    next_s INTEGER NOT NULL, minimum_cents INTEGER NOT NULL,
    PRIMARY KEY (plan_id, direction, use_cd, period, prefix));
CREATE TABLE IF NOT EXISTS profiles (
    entp_id TEXT NOT NULL, corp_id TEXT NOT NULL, active_from TEXT NOT NULL,
    plan_id TEXT NOT NULL REFERENCES plans (plan_id), product TEXT NOT NULL,
    discount_bp INTEGER NOT NULL, load_id INTEGER NOT NULL,
    PRIMARY KEY (entp_id, corp_id, active_from));
CREATE TABLE IF NOT EXISTS sites (
    entp_id TEXT NOT NULL, corp_id TEXT NOT NULL, trunk TEXT NOT NULL,
    billing_id TEXT NOT NULL, service_loc_id TEXT NOT NULL, main_number TEXT NOT NULL,
    access_code TEXT NOT NULL, tz TEXT NOT NULL, outside TEXT NOT NULL, load_id INTEGER NOT NULL,
    PRIMARY KEY (entp_id, corp_id, trunk));
CREATE TABLE IF NOT EXISTS loads (
    load_id INTEGER PRIMARY KEY, loaded_at TEXT NOT NULL, source TEXT NOT NULL,
    sha256 TEXT NOT NULL, plans INTEGER NOT NULL, rates INTEGER NOT NULL,
    profiles INTEGER NOT NULL, sites INTEGER NOT NULL);
"""


def store_path(state_dir: Path) -> Path:
    """``STATE/harvest/tariffs.sqlite``."""
    return Path(state_dir) / "harvest" / "tariffs.sqlite"


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """What one :meth:`TariffStore.load` stored."""

    load_id: int
    generation: int
    plans: int
    rates: int
    profiles: int
    sites: int
    enterprises: tuple[str, ...]


@dataclass(frozen=True)
class Snapshot:
    """What rating one corp needs, as Arrow tables (see :meth:`TariffStore.snapshot`)."""

    generation: int
    sites: pa.Table  # trunk, billing_id, service_loc_id, main_number, access_code, tz, outside
    profiles: pa.Table  # active_from (date32), plan_id, product, discount_bp -- effective timeline
    rates: pa.Table  # the rates of the plans the profiles name, plus plen
    plans: pa.Table  # plan_id, currency, tax_ppm, intl_cents


class TariffStore:
    """The tariff store of a state directory (created on first use).

    Thread-safe: each thread gets a connection of its own.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._cache: dict[tuple[str, str], Snapshot] = {}
        self._cache_lock = threading.Lock()
        con = self._connect()
        with con:
            con.executescript(_SCHEMA)
            if con.execute("SELECT count(*) FROM meta").fetchone() == (0,):
                con.execute("INSERT INTO meta VALUES (0)")

    @classmethod
    def of(cls, state_dir: Path) -> TariffStore:
        """The store ``STATE/harvest/tariffs.sqlite`` (its folder made, mode 0700)."""
        path = store_path(state_dir)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(path)

    def _connect(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA foreign_keys=ON")
            con.execute("PRAGMA synchronous=FULL")
            self._local.con = con
        return con

    def close(self) -> None:
        """Close this thread's connection."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    def generation(self) -> int:
        row = self._connect().execute("SELECT generation FROM meta").fetchone()
        return int(row[0]) if row else 0

    def load(self, tariffs: TariffFile, *, source: str, data: bytes) -> LoadSummary:
        """Store *tariffs* in one transaction (replacing rules in the module docstring).

        Raises:
            TariffError: a profile names a plan neither the file nor the store has.
        """
        con = self._connect()
        # plans are replaced, never deleted: what is stored now stays for the transaction
        known = {r[0] for r in con.execute("SELECT plan_id FROM plans")}
        known |= {p.plan_id for p in tariffs.plans}
        lines = tariffs.profile_lines or (0,) * len(tariffs.profiles)
        missing = [
            f"{source}:{line}: profile of {p.entp_id}/{p.corp_id} names plan {p.plan_id!r},"
            " which neither this file nor the store has"
            for p, line in zip(tariffs.profiles, lines, strict=True)
            if p.plan_id not in known
        ]
        if missing:
            raise TariffError(missing)
        con.execute("BEGIN IMMEDIATE")
        try:
            when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            load_id = con.execute(
                "INSERT INTO loads (loaded_at, source, sha256, plans, rates, profiles, sites)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING load_id",
                (when, source, hashlib.sha256(data).hexdigest(), len(tariffs.plans),
                 len(tariffs.rates), len(tariffs.profiles), len(tariffs.sites)),
            ).fetchone()[0]  # fmt: skip
            self._store_plans(con, tariffs, load_id)
            entps = sorted(
                {p.entp_id for p in tariffs.profiles} | {s.entp_id for s in tariffs.sites}
            )
            for entp in sorted({p.entp_id for p in tariffs.profiles}):
                con.execute("DELETE FROM profiles WHERE entp_id = ?", (entp,))
            con.executemany(
                "INSERT INTO profiles VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(p.entp_id, p.corp_id, p.active_from.isoformat(), p.plan_id, p.product,
                  p.discount_bp, load_id) for p in tariffs.profiles],
            )  # fmt: skip
            for entp in sorted({s.entp_id for s in tariffs.sites}):
                con.execute("DELETE FROM sites WHERE entp_id = ?", (entp,))
            con.executemany(
                "INSERT INTO sites VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(s.entp_id, s.corp_id, s.trunk, s.billing_id, s.service_loc_id, s.main_number,
                  s.access_code, s.tz, s.outside, load_id) for s in tariffs.sites],
            )  # fmt: skip
            con.execute("UPDATE meta SET generation = generation + 1")
            generation = int(con.execute("SELECT generation FROM meta").fetchone()[0])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return LoadSummary(
            int(load_id), generation, len(tariffs.plans), len(tariffs.rates),
            len(tariffs.profiles), len(tariffs.sites), tuple(entps),
        )  # fmt: skip

    @staticmethod
    def _store_plans(con: sqlite3.Connection, tariffs: TariffFile, load_id: int) -> None:
        for plan in tariffs.plans:
            con.execute("DELETE FROM rates WHERE plan_id = ?", (plan.plan_id,))
            con.execute(
                "INSERT INTO plans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (plan_id) DO"
                " UPDATE SET name = excluded.name, currency = excluded.currency,"
                " first_s = excluded.first_s, next_s = excluded.next_s,"
                " minimum_cents = excluded.minimum_cents, tax_ppm = excluded.tax_ppm,"
                " intl_cents = excluded.intl_cents, load_id = excluded.load_id",
                (plan.plan_id, plan.name, plan.currency, plan.first_s, plan.next_s,
                 plan.minimum_cents, plan.tax_ppm, plan.intl_cents, load_id),
            )  # fmt: skip
        con.executemany(
            "INSERT INTO rates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r.plan_id, r.direction, r.use_cd, r.period, r.prefix, r.rate_micro,
              r.connect_micro, r.first_s, r.next_s, r.minimum_cents) for r in tariffs.rates],
        )  # fmt: skip

    def snapshot(self, entp_id: str, corp_id: str) -> Snapshot:
        """The sites, effective profile timeline, rates and plans for one corp.

        Profiles: the corp's own from the first day one is active; before that the
        enterprise's ``*`` profiles -- one timeline, latest ``active_from`` wins.
        Cached until the next load (one ``SELECT generation`` per call).
        """
        generation = self.generation()
        key = (entp_id, corp_id)
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached is not None and cached.generation == generation:
            return cached
        con = self._connect()
        con.execute("BEGIN")  # one snapshot of all four tables
        try:
            generation = int(con.execute("SELECT generation FROM meta").fetchone()[0])
            sites = con.execute(
                "SELECT trunk, billing_id, service_loc_id, main_number, access_code, tz, outside"
                " FROM sites WHERE entp_id = ? AND corp_id = ? ORDER BY trunk",
                (entp_id, corp_id),
            ).fetchall()
            rows = con.execute(
                "SELECT corp_id, active_from, plan_id, product, discount_bp FROM profiles"
                " WHERE entp_id = ? AND corp_id IN (?, '*') ORDER BY active_from",
                (entp_id, corp_id),
            ).fetchall()
            own = [r for r in rows if r[0] == corp_id]
            start = own[0][1] if own else None
            timeline = own + [r for r in rows if r[0] == "*" and (start is None or r[1] < start)]
            timeline.sort(key=lambda r: r[1])
            # the plans of every profile of the corp or its enterprise (a superset of the
            # timeline's: a few more rows, and no SQL built from values)
            rates = con.execute(
                "SELECT plan_id, direction, use_cd, period, prefix, rate_micro, connect_micro,"
                " first_s, next_s, minimum_cents FROM rates WHERE plan_id IN (SELECT plan_id"
                " FROM profiles WHERE entp_id = ? AND corp_id IN (?, '*'))",
                (entp_id, corp_id),
            ).fetchall()
            plans = con.execute(
                "SELECT plan_id, currency, tax_ppm, intl_cents FROM plans WHERE plan_id IN"
                " (SELECT plan_id FROM profiles WHERE entp_id = ? AND corp_id IN (?, '*'))",
                (entp_id, corp_id),
            ).fetchall()
        finally:
            con.execute("COMMIT")
        snap = Snapshot(
            generation,
            _table(sites, _SITE_COLUMNS),
            pa.table(
                {
                    "active_from": pa.array(
                        [dt.date.fromisoformat(r[1]) for r in timeline], pa.date32()
                    ),
                    "plan_id": pa.array([r[2] for r in timeline], pa.string()),
                    "product": pa.array([r[3] for r in timeline], pa.string()),
                    "discount_bp": pa.array([r[4] for r in timeline], pa.int64()),
                }
            ),
            _rates_table(rates),
            _table(plans, ("plan_id", "currency", "tax_ppm", "intl_cents")),
        )
        with self._cache_lock:
            self._cache[key] = snap
        return snap


_SITE_COLUMNS = (
    "trunk", "billing_id", "service_loc_id", "main_number", "access_code", "tz", "outside",
)  # fmt: skip
_INTS = frozenset({"tax_ppm", "intl_cents", "rate_micro", "connect_micro", "first_s", "next_s",
                   "minimum_cents"})  # fmt: skip


def _table(rows: list[tuple[object, ...]], names: tuple[str, ...]) -> pa.Table:
    """*rows* (tuples in *names* order) as a table: money and seconds int64, text string."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    return pa.table(
        {
            n: pa.array(list(c), pa.int64() if n in _INTS else pa.string())
            for n, c in zip(names, columns, strict=True)
        }
    )


def _rates_table(rows: list[tuple[object, ...]]) -> pa.Table:
    names = ("plan_id", "direction", "use_cd", "period", "prefix", "rate_micro",
             "connect_micro", "first_s", "next_s", "minimum_cents")  # fmt: skip
    table = _table(rows, names)
    plen = pa.array([len(str(p)) for p in table.column("prefix").to_pylist()], pa.int32())
    return table.append_column("plen", plen)
