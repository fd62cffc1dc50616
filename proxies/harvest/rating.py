"""Rating: a batch of PBX calls to priced datamart rows, set-based inside DuckDB.

Theory of operation
-------------------
:func:`rate_calls` takes the calls of one corp as an Arrow table with the columns of
:class:`~starwrs.collector.readers.model.Call` and returns :class:`Rated`: the priced
rows in :data:`~starwrs.storage.datamart.load.CALL_COLUMNS` form (``load_calls`` takes
them unchanged), the calls refused with a reason, and the calls that are not carrier
calls at all.  Python never loops over calls.  The rules are those of ONE statement
(:func:`.rating_sql.rating_sql` over the batch, the corp's tariff snapshot
(:meth:`~starwrs.proxies.harvest.tariffs.TariffStore.snapshot`) and the geography
tables (:mod:`starwrs.storage.datamart.geography`)), kept as the reference
(:func:`rate_calls_reference`); :func:`rate_calls` computes the same in bulk
(:mod:`.rating_bulk`): each rule once per *distinct* value in DuckDB (or numpy, where
it is a comparison), spread to the calls by integer gathers.  In this order:

1. **site** -- each distinct trunk to the corp's site whose ``TRUNK`` is its longest
   start (``*`` = any): billing id, service location, main number, access type, time
   zone, outside-line digits.
2. **numbers** to E.164 / NANP by the rule of
   :func:`~starwrs.collector.readers.model.normalize_number` (separators dropped;
   ``+``, ``011``, 11 and 10 digits, 7 digits in the main number's NPA; the outside
   digits dropped when the number is not valid with them).  The customer's end is the
   calling number of an outbound call (the site's main number when it is an
   extension) and the called number of an inbound one (likewise); the far end is the
   other.  An inbound call to a toll-free number (NPA 800, 833, 844, 855, 866, 877,
   888) is product T with that number in ``tollfree``.
3. **times** to GMT (``gmt``) and the site's wall clock (``lst``); the rate period is
   ``load.RATE_SQL`` of ``lst`` (holiday, weekend, day / evening / night), the tariff
   day is ``lst``'s date.  A call is rated wholly at the period it started in.
4. **geography** per distinct number prefix, not per call: NANP ``+1NPANXX`` to city
   and state (the geocoder's exchanges; an unknown exchange gets its NPA's state);
   elsewhere the country calling code and the longest known routing code (city).
   **Usage** as the generator draws it: far end abroad 3 INTERNATIONAL (sub-usage
   MEXICO-DOM to +52), caller abroad 7 800 INTL-INBOUND, US <-> Canada 3 + CANADIAN,
   same city 6, same NPA 4, same state 2, else 1 INTERSTATE (+ ALASKA, HAWAII, ...).
   **Range** from the distance between the state centres (same NPA: band 1, same
   state: band 2, abroad or unknown: band 9), ``1``-``9`` inbound, ``A``-``I`` outbound.
5. **profile** -- an ASOF join on the tariff day: the latest profile active that day.
6. **tariff** -- every rate line of the plan whose prefix starts the far end, whose
   direction, usage and period are the call's or ``*`` (one hash probe per distinct
   prefix length and distinct (far-end prefix, direction, usage, period) of the
   batch); the longest prefix wins, then a specific usage, period, direction.
7. **charges** in integers: billed seconds ``0`` for 0 s, else ``F`` up to ``F`` s,
   else ``F + ceil((s - F) / N) * N``; gross = rate x billed / 60 + connect fee, to the
   cent half up, at least the minimum; ``nosurcharge_amt`` = gross less the discount
   (half up); ``intl_surcharge`` when the far end is outside World Zone 1; ``amount``
   = that + surcharges; ``tax`` = amount x tax rate (half up), on top.  ``duration``
   is the billable time in minutes rounded up to the tenth (6 s) and at least 0.1
   (``schema``: "a call lasts at least 0.1 minute").

Each call ends as exactly one of: priced; **rejected** (its row index and why: no
site for its trunk, a far end that is not E.164 / NANP or has no country, no profile
active, no tariff covering it, a duration or charge the datamart cannot hold); or
**skipped** (internal calls and unanswered ones: no carrier service was used, nothing
is owed).  A call no tariff covers is never priced at 0.

Cost (2-core VM, ``starwrs bench rating``): the reference statement took about 0.18 s
per batch (binding and planning some forty operators) and 12 us of CPU per call; the
bulk rating about 3 us per call (a few numpy passes; the statements run once per new
value: a process remembers places, clocks and tariff lines), so a batch of a few
thousand calls costs what its calls cost.

Re-rating (:func:`rerate_priced`) runs steps 5-7 on rows already in the datamart (as
``XPRT`` exports them): the far end, usage and period come from the stored row, the
seconds from the stored ``duration`` (tenths of a minute, rounded up when rated), so a
call re-rates exactly under any increment whose ``F`` and ``N`` are multiples of 6 s
(``ceil(ceil(s / 6) * 6 / N) = ceil(s / N)``); under per-second billing it may be up to
5 s longer.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from starwrs.proxies.harvest import rating_bulk
from starwrs.proxies.harvest.rating_sql import TOLL_FREE_NPAS, rating_sql, rerating_sql
from starwrs.proxies.harvest.tariffs import Snapshot, TariffStore, store_path
from starwrs.storage.datamart import geography
from starwrs.storage.datamart import reference as ref
from starwrs.storage.datamart.load import CALL_COLUMNS

__all__ = [
    "CALL_INPUT_COLUMNS",
    "TOLL_FREE_NPAS",
    "Rated",
    "rate_calls",
    "rate_calls_reference",
    "rerate_priced",
]

#: the columns :func:`rate_calls` reads (those of ``collector.readers.model.Call``)
CALL_INPUT_COLUMNS = (
    "start", "duration", "billable", "answered", "calling", "called", "dialled",
    "direction", "account", "trunk", "call_id", "status",
)  # fmt: skip


@dataclass(frozen=True)
class Rated:
    """The outcome of rating one batch.

    Attributes:
        priced: the priced calls, :data:`CALL_COLUMNS` (a subset, the rest default),
            in GMT order; ``load_calls`` takes it as it is.
        rejected: ``(row index in the input, reason)`` of calls that cannot be priced.
        skipped: ``(row index, reason)`` of calls that are not charged at all
            (internal, not answered).
        rows: for each priced row, its row index in the input.
    """

    priced: pa.Table
    rejected: list[tuple[int, str]]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    rows: pa.Array = field(default_factory=lambda: pa.array([], pa.int64()))


# -- tables ----------------------------------------------------------------------------


@functools.cache
def _geo_tables() -> dict[str, pa.Table]:
    """The geography tables every rating registers (built once per process)."""
    subs = [code for code, _ in ref.SUBUSAGE]
    states = sorted(geography.STATE_CENTRES)
    terr = [geography.TERRITORY_SUBUSAGE.get(s) for s in states]
    lat = np.array([geography.STATE_CENTRES[s][0] for s in states])
    lon = np.array([geography.STATE_CENTRES[s][1] for s in states])
    miles = geography.distance_miles(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    highs = np.array([high for _low, high in ref.DISTANCE_BANDS], dtype=float)
    bands = np.searchsorted(highs, miles.ravel(), side="left").clip(0, 8) + 1
    exchanges = geography.nanp_exchanges()
    return {
        "nanp_t": exchanges.select(["npa", "nxx", "city", "state"]),
        "npa_t": geography.npa_states(),
        "cc_t": geography.country_codes(),
        "city_t": geography.foreign_cities().select(["prefix", "routing_cd", "city"]),
        "state_t": pa.table(
            {
                "state": pa.array(states),
                "canada": pa.array([s in geography.CANADA for s in states]),
                "terr": pa.array(terr, pa.string()),
                "terr_pos": pa.array([subs.index(t) if t else 0 for t in terr], pa.int32()),
            }
        ),
        "band_t": pa.table(
            {
                "o_state": pa.array(np.repeat(states, len(states)).tolist()),
                "t_state": pa.array(np.tile(states, len(states)).tolist()),
                "band": pa.array(bands.astype(np.int32)),
            }
        ),
    }


def _tariff_tables(snap: Snapshot) -> dict[str, pa.Table]:
    sites = snap.sites
    main = sites.column("main_number").to_pylist()
    home = [m[2:5] if m.startswith("+1") else "" for m in main]
    site_t = sites.append_column("home_npa", pa.array(home, pa.string())).append_column(
        "site_no", pa.array(np.arange(sites.num_rows), pa.int64())
    )
    rates = snap.rates.append_column(
        "rate_no", pa.array(np.arange(snap.rates.num_rows), pa.int64())
    )
    lens = sorted(set(rates.column("plen").to_pylist()))
    return {
        "site_t": site_t,
        "prof_t": snap.profiles,
        "rate_t": rates,
        "lens_t": pa.table({"plen": pa.array(lens, pa.int32())}),
        "plan_t": snap.plans,
    }


_stores: dict[Path, TariffStore] = {}
#: tariff stores kept open (least recently used dropped first)
_STORES_KEPT = 4
_stores_lock = threading.Lock()
_base: dict[str, duckdb.DuckDBPyConnection] = {}


def _store(state_dir: Path) -> TariffStore:
    path = store_path(state_dir).resolve()
    with _stores_lock:
        store = _stores.pop(path, None) or TariffStore.of(Path(state_dir))
        _stores[path] = store  # the most recent last
        while len(_stores) > _STORES_KEPT:
            # a store dropped takes its per-thread connections with it (a harvest has
            # one state directory; a test process has many and ran out of fds)
            del _stores[next(iter(_stores))]
        return store


def _cursor() -> duckdb.DuckDBPyConnection:
    """A cursor of the process's in-memory rating database (one per call: thread-safe)."""
    with _stores_lock:
        if "db" not in _base:
            con = duckdb.connect(":memory:")
            con.execute("SET TimeZone = 'UTC'")
            _base["db"] = con
        return _base["db"].cursor()


def _epoch_seconds(column: pa.ChunkedArray) -> pa.Array:
    """A timestamp column (UTC, or naive = UTC) as int64 seconds since 1970 (floor)."""
    arr = column.combine_chunks()
    if not pa.types.is_timestamp(arr.type):
        raise ValueError(f"calls column start must be a timestamp, not {arr.type}")
    per_second = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}[arr.type.unit]
    raw = arr.view(pa.int64()) if arr.type.tz is None else arr.cast(
        pa.timestamp(arr.type.unit)).view(pa.int64())  # fmt: skip
    return pc.floor(pc.divide(raw, per_second)).cast(pa.int64()) if per_second > 1 else raw


def _text(column: pa.ChunkedArray) -> pa.Array:
    arr = column.combine_chunks()
    if isinstance(arr.type, pa.DictionaryType):
        arr = arr.dictionary_decode()
    return pc.fill_null(arr.cast(pa.string()), "")


def _input(calls: pa.Table, mains: pa.Array) -> dict[str, pa.Table]:
    """``calls_in`` (the calls, ``t_s`` epoch seconds, ``rid``, and the numbers as indices
    into ``num_t``) and ``num_t`` (every distinct number text of the batch and of the
    sites' main numbers: normalized once each, joined back by integer)."""
    missing = [c for c in CALL_INPUT_COLUMNS if c not in calls.column_names]
    if missing:
        raise ValueError(f"calls lack column(s) {', '.join(missing)}")
    n = calls.num_rows
    numbers = [_text(calls.column(c)) for c in ("calling", "called", "dialled")]
    encoded = pc.dictionary_encode(pa.concat_arrays([*numbers, mains.cast(pa.string())]))
    indices = encoded.indices
    table = calls.select([c for c in CALL_INPUT_COLUMNS if c != "start"])
    table = table.append_column("t_s", _epoch_seconds(calls.column("start")))
    table = table.append_column("rid", pa.array(np.arange(n), pa.int64()))
    for k, name in enumerate(("calling_i", "called_i", "dialled_i")):
        table = table.append_column(name, indices.slice(k * n, n))
    num_t = pa.table(
        {"i": pa.array(np.arange(len(encoded.dictionary)), pa.int32()), "x": encoded.dictionary}
    )
    return {"calls_in": table, "num_t": num_t, "_main_i": pa.table({"i": indices.slice(3 * n)})}


def _decimal(units: pa.ChunkedArray | pa.Array, precision: int, scale: int) -> pa.Array:
    """An exact decimal32 column from integer units (cents, tenths)."""
    data = np.ascontiguousarray(
        pc.fill_null(units, 0).to_numpy(zero_copy_only=False), dtype=np.int32
    )
    return pa.Array.from_buffers(
        pa.decimal32(precision, scale), len(data), [None, pa.py_buffer(data)]
    )


def _run(sql: str, tables: dict[str, pa.Table], params: dict[str, Any]) -> pa.Table:
    cur = _cursor()
    try:
        for name, table in tables.items():
            cur.register(name, table)
        return cur.sql(sql, params=params).to_arrow_table()
    finally:
        cur.close()


def _split(out: pa.Table, entp_id: str, corp_id: str, columns: tuple[str, ...]) -> Rated:
    verdict = out.column("verdict")
    ok = pc.is_null(verdict)
    priced = out.filter(ok)
    bad = out.filter(pc.invert(ok)).select(["rid", "verdict"]).to_pydict()
    rejected: list[tuple[int, str]] = []
    skipped: list[tuple[int, str]] = []
    for rid, text in sorted(zip(bad["rid"], bad["verdict"], strict=True)):
        (rejected if text.startswith("R:") else skipped).append((int(rid), text[2:]))
    n = priced.num_rows
    fixed = {
        "gmt": priced.column("gmt_s").cast(pa.timestamp("s")),
        "lst": priced.column("lst_s").cast(pa.timestamp("s")),
        "enterprise_id": pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array([entp_id])
        ),
        "corp_id": pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array([corp_id])
        ),
        "duration": _decimal(priced.column("duration_tenths"), 7, 1),
        "amount": _decimal(priced.column("amount_cents"), 9, 2),
        "nosurcharge_amt": _decimal(priced.column("net_cents"), 9, 2),
        "tax": _decimal(priced.column("tax_cents"), 9, 2),
        "intl_surcharge": _decimal(priced.column("intl_cents"), 9, 2),
    }
    arrays = {
        name: fixed[name] if name in fixed else priced.column(name)
        for name in columns
        if name in fixed or name in priced.column_names
    }
    return Rated(pa.table(arrays), rejected, skipped, priced.column("rid").combine_chunks())


#: the CALL_COLUMNS rate_calls fills (the others take their defaults)
_OUTPUT = tuple(
    c
    for c in CALL_COLUMNS
    if c
    not in (
        "enterprise_name", "corporate_name", "billing_name", "serv_loc_name", "card_number",
        "vos_cd", "vos_detail", "pay_phone_cd", "line_speed", "evs_product_cd", "pricing_method",
        "product_time", "directory_assist", "ncr_ind", "cell_phone_cd", "conf_call_id",
        "cross_corp_ind", "non_cross_corp_id", "enhance_call_rto", "realtime_ani", "nct_id",
        "nct_call_log", "axs_term_ind", "bill_period", "ncr_surcharge",
        "realtime_ani_surcharge", "payphone_surcharge", "product_duration", "product_usage",
    )
)  # fmt: skip


def _raw_text(column: pa.ChunkedArray) -> pa.Array:
    """A text column as the statement's ``CAST(x AS VARCHAR)`` sees it (nulls kept)."""
    arr = column.combine_chunks()
    if isinstance(arr.type, pa.DictionaryType):
        arr = arr.dictionary_decode()
    return arr.cast(pa.string())


#: per tariff snapshot (by id, the snapshot kept so that the id stays its): its tables
#: and the tariff lines the bulk rating matched for it
_by_snapshot: dict[int, tuple[Snapshot, dict[str, pa.Table], dict[tuple[Any, ...], int]]] = {}
_SNAPSHOTS_KEPT = 64


def _snapshot_state(snap: Snapshot) -> tuple[dict[str, pa.Table], dict[tuple[Any, ...], int]]:
    with _stores_lock:
        kept = _by_snapshot.get(id(snap))
        if kept is None or kept[0] is not snap:
            if len(_by_snapshot) >= _SNAPSHOTS_KEPT:
                _by_snapshot.clear()
            kept = (snap, _tariff_tables(snap), {})
            _by_snapshot[id(snap)] = kept
        return dict(kept[1]), kept[2]


def _tables(snap: Snapshot, calls: pa.Table) -> tuple[dict[str, pa.Table], dict[str, pa.Table]]:
    tariff, _memo = _snapshot_state(snap)
    batch = _input(calls, tariff["site_t"].column("main_number").combine_chunks())
    main_i = batch.pop("_main_i").column("i")
    tariff["site_t"] = tariff["site_t"].append_column("main_i", main_i)
    return batch, {**_geo_tables(), **tariff}


def rate_calls(calls: pa.Table, *, entp_id: str, corp_id: str, state_dir: Path) -> Rated:
    """Price one corp's calls by its tariffs in ``STATE/harvest/tariffs.sqlite``.

    Args:
        calls: the columns of ``collector.readers.model.Call`` (:data:`CALL_INPUT_COLUMNS`;
            others ignored): ``start`` a timestamp (UTC; a naive one is taken as UTC),
            ``duration`` / ``billable`` integer seconds, ``answered`` bool, numbers and
            codes as strings, ``direction`` ``inbound`` / ``outbound`` / ``internal``.
        entp_id, corp_id: whose calls they are (the batch's sender).
        state_dir: the deployment's state directory.

    Returns:
        :class:`Rated`; every input row is in exactly one of priced, rejected, skipped.

    Raises:
        ValueError: *calls* lacks a column.
    """
    snap = _store(Path(state_dir)).snapshot(entp_id, corp_id)
    batch, tables = _tables(snap, calls)
    calls_in = batch["calls_in"]
    n = calls.num_rows
    t_s = calls_in.column("t_s").combine_chunks()
    inputs = {
        "n": n,
        "t_ok": np.asarray(t_s.is_valid().to_numpy(zero_copy_only=False), dtype=bool),
        "t_s": np.asarray(pc.fill_null(t_s, 0).to_numpy(), dtype=np.int64),
        "seconds": np.asarray(
            pc.fill_null(calls.column("billable").combine_chunks().cast(pa.int64()), 0).to_numpy(),
            dtype=np.int64,
        ),
        "answered": np.asarray(
            pc.fill_null(calls.column("answered").combine_chunks().cast(pa.bool_()), False)
            .to_numpy(zero_copy_only=False),
            dtype=bool,
        ),
        "direction": _raw_text(calls.column("direction")),
        "trunk": pc.fill_null(_raw_text(calls.column("trunk")), ""),
        "account": pc.fill_null(_raw_text(calls.column("account")), ""),
        "calling": _raw_text(calls.column("calling")),
        "called": _raw_text(calls.column("called")),
        "numbers": batch["num_t"].column("x").combine_chunks(),
        **{
            f"{k}_i": np.asarray(calls_in.column(f"{k}_i").to_numpy(), dtype=np.int64)
            for k in ("calling", "called", "dialled")
        },
    }
    cur = _cursor()
    try:
        registered = False

        def run(sql: str, more: dict[str, pa.Table]) -> pa.Table:
            nonlocal registered
            if not registered:  # only when a statement runs at all (memos mostly answer)
                for name, table in tables.items():
                    cur.register(name, table)
                registered = True
            for name, table in more.items():
                cur.register(name, table)
            return cur.sql(sql).to_arrow_table()

        memo = _snapshot_state(snap)[1]
        bulk = rating_bulk.rate(
            inputs, tables, run, entp_id=entp_id, corp_id=corp_id, memo=memo
        )
    finally:
        cur.close()
    return _assemble(bulk, entp_id, corp_id)


def _assemble(bulk: rating_bulk.Bulk, entp_id: str, corp_id: str) -> Rated:
    p = bulk.priced
    n = len(bulk.rows)
    fixed = {
        "gmt": p["gmt_s"].view(pa.timestamp("s")),
        "lst": p["lst_s"].view(pa.timestamp("s")),
        "enterprise_id": pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array([entp_id])
        ),
        "corp_id": pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array([corp_id])
        ),
        "duration": _decimal(p["duration_tenths"], 7, 1),
        "amount": _decimal(p["amount_cents"], 9, 2),
        "nosurcharge_amt": _decimal(p["net_cents"], 9, 2),
        "tax": _decimal(p["tax_cents"], 9, 2),
        "intl_surcharge": _decimal(p["intl_cents"], 9, 2),
    }
    arrays = {
        name: fixed[name] if name in fixed else p[name]
        for name in _OUTPUT
        if name in fixed or name in p
    }
    return Rated(pa.table(arrays), bulk.rejected, bulk.skipped, pa.array(bulk.rows, pa.int64()))


def rate_calls_reference(
    calls: pa.Table, *, entp_id: str, corp_id: str, state_dir: Path
) -> Rated:
    """:func:`rate_calls` by the one rating statement (:func:`.rating_sql.rating_sql`):
    the reference the bulk rating is held to (the same calls, prices, verdicts and
    order; text columns plain rather than dictionaries)."""
    snap = _store(Path(state_dir)).snapshot(entp_id, corp_id)
    batch, tables = _tables(snap, calls)
    out = _run(rating_sql(), {**batch, **tables}, {"entp": entp_id, "corp": corp_id})
    return _split(out, entp_id, corp_id, _OUTPUT)


# -- re-rating -------------------------------------------------------------------------


def _cents(table: pa.Table, name: str) -> npt.NDArray[np.int64]:
    if name not in table.column_names:
        return np.zeros(table.num_rows, dtype=np.int64)
    cents = pc.multiply(table.column(name).cast(pa.decimal128(12, 2)), 100)
    return np.asarray(pc.cast(cents, pa.int64()).to_numpy(), dtype=np.int64)


def rerate_priced(priced: pa.Table, *, entp_id: str, corp_id: str, state_dir: Path) -> Rated:
    """Price stored rows again (``XPRT``'s form) by the tariffs in force now.

    Only ``currency_cd`` and the money columns the tariff sets change
    (``nosurcharge_amt``, ``intl_surcharge``, ``amount``, ``tax``); the NCR, real-time
    ANI and payphone surcharges as stored are kept, in ``amount`` and under the tax.
    A row no tariff covers any more is in ``rejected``, not in ``priced``.
    """
    snap = _store(Path(state_dir)).snapshot(entp_id, corp_id)
    rid = pa.array(np.arange(priced.num_rows), pa.int64())
    other = sum(
        (
            _cents(priced, n)
            for n in ("ncr_surcharge", "realtime_ani_surcharge", "payphone_surcharge")
        ),
        np.zeros(priced.num_rows, dtype=np.int64),
    )
    stored = priced.select(
        ["in_out", "use_cd", "duration", "lst", "orig_country_cd", "term_country_cd",
         "orig_number", "term_number"]
    ).append_column("rid", rid).append_column("other_cents", pa.array(other))  # fmt: skip
    tables = {"stored": stored, **_tariff_tables(snap)}
    out = _run(rerating_sql(), tables, {"entp": entp_id, "corp": corp_id})
    ok = pc.is_null(out.column("verdict")).combine_chunks()
    bad = out.filter(pc.invert(ok)).select(["rid", "verdict"]).to_pydict()
    rejected = [(int(r), v[2:]) for r, v in zip(bad["rid"], bad["verdict"], strict=True)]
    good = out.filter(ok)
    keep = priced.filter(ok)
    replaced = {
        "currency_cd": good.column("currency_cd"),
        "amount": _decimal(good.column("amount_cents"), 9, 2),
        "nosurcharge_amt": _decimal(good.column("net_cents"), 9, 2),
        "tax": _decimal(good.column("tax_cents"), 9, 2),
        "intl_surcharge": _decimal(good.column("intl_cents"), 9, 2),
    }
    for name, column in replaced.items():
        if name in keep.column_names:
            keep = keep.set_column(keep.column_names.index(name), name, column)
        else:
            keep = keep.append_column(name, column)
    return Rated(keep, rejected, [], pc.filter(rid, ok))
