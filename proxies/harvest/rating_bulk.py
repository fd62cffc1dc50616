"""Rating in bulk: the rules once per distinct value in DuckDB, spread to the calls by
integer gathers.

Theory of operation
-------------------
:func:`rate` computes exactly what the one rating statement
(:func:`~starwrs.proxies.harvest.rating_sql.rating_sql`, steps 1-7 of
:mod:`.rating`) computes, but splits it where its cost was.  That statement carried
every call's strings through some forty operators (hash joins, the ordering, the
result), about 12 us of CPU a call and 0.18 s of planning a batch.  Here every rule
that looks at a *value* -- the trunk's site, a number's E.164 form, a quarter-hour's
clock, a place, a day's profile, a tariff line -- is one small DuckDB statement over
the batch's distinct values of that kind (``rating_sql.BULK_STATEMENTS``, built from
the same SQL fragments as the reference statement), and what a *call* needs is
integer arithmetic over numpy arrays:

* the calls' numbers are dictionary-encoded once (with the sites' main numbers); a
  call's (number, site) pairs index the normalized numbers, a number indexes its place,
  a (site, quarter) its clock, a local day its profile, a (plan, far end, direction,
  usage, period) its tariff line -- each a gather, ``-1`` standing for SQL's NULL;
* the choices of the statement's CASEs (which number is the far end, toll free, usage,
  distance band, sub-usage, the verdict) are boolean masks in the statement's order,
  the charges the statement's integer formulas (checked for int64 overflow, which
  DuckDB raises);
* the priced rows come out in (GMT, row) order with every text column a dictionary
  array over the distinct values (numbers, places, codes): no string is copied per
  call, and ``load_calls`` takes dictionaries as they are.

``tests/proxies/test_rating_bulk.py`` holds :func:`rate` to the reference statement
on random batches, sites, numbers, clocks and tariffs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from starwrs.proxies.harvest import rating_arrays as ra
from starwrs.proxies.harvest.rating_sql import BULK_STATEMENTS, MAX_CENTS, MAX_SECONDS
from starwrs.proxies.harvest.rating_sql import TOLL_FREE_NPAS as _TOLL_FREE

__all__ = ["Bulk", "rate"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
#: runs one statement, the tables given registered first (and the tariff and geography
#: tables already): (sql, tables) -> result
Runner = Callable[[str, dict[str, pa.Table]], pa.Table]

_PERIODS = ("1", "2", "3", "4", "5", "6", "7")
_KEY_COLUMNS = ("plan_id", "far_key", "dir", "use_cd", "period")
_USES = ("1", "2", "3", "4", "5", "6", "7")
_RANGES_OUT = "ABCDEFGHI"


@dataclass(frozen=True)
class Bulk:
    """What :func:`rate` found: the priced rows (the reference statement's output
    columns, priced rows only, in its order) and the verdicts of the others."""

    priced: dict[str, pa.Array]
    rows: IntArray
    rejected: list[tuple[int, str]]
    skipped: list[tuple[int, str]]


def rate(
    calls: dict[str, Any],
    tables: dict[str, pa.Table],
    run: Runner,
    *,
    entp_id: str,
    corp_id: str,
    memo: dict[tuple[Any, ...], int] | None = None,
) -> Bulk:
    """Rate a batch (see the module docstring).

    Args:
        calls: ``n``, ``t_s`` (epoch seconds, int64) and ``t_ok`` (not null),
            ``seconds``, ``answered``, ``direction`` (the text, null allowed), ``trunk``,
            ``account`` (texts, null = ''), ``calling`` / ``called`` (as written, null
            allowed), ``numbers`` (the distinct number texts, the sites' mains last)
            and ``calling_i`` / ``called_i`` / ``dialled_i`` (indexes into them).
        tables: the tariff snapshot (``site_t`` with ``main_i``, ``prof_t``, ``rate_t``,
            ``lens_t``, ``plan_t``) and the geography tables.
        run: runs one statement.
        memo: the tariff lines found before for these tables' snapshot (key -> rate_no,
            -1: none), kept from batch to batch by the caller.
    """
    return _Rating(calls, tables, run, entp_id, corp_id, {} if memo is None else memo).price()


class _Rating:
    def __init__(
        self,
        calls: dict[str, Any],
        tables: dict[str, pa.Table],
        run: Runner,
        entp_id: str,
        corp_id: str,
        memo: dict[tuple[Any, ...], int],
    ) -> None:
        self.memo = memo
        self.c = calls
        self.n: int = calls["n"]
        self.tables = tables
        self._run = run
        self.entp_id, self.corp_id = entp_id, corp_id
        site_t = tables["site_t"]
        self.site_count = site_t.num_rows
        self.site_access = site_t.column("access_code").combine_chunks()
        self.main_i = ra.i64(site_t.column("main_i").to_numpy())

    def sql(self, name: str, **inputs: pa.Table) -> pa.Table:
        return self._run(BULK_STATEMENTS[name], inputs)

    # -- 1. site -------------------------------------------------------------------------

    def sites(self) -> IntArray:
        """Each call's site: the one whose ``TRUNK`` is the longest start of the call's
        trunk (``_trunk_sql``; a site's trunk is unique, so no tie)."""
        trunk = pc.dictionary_encode(self.c["trunk"])
        names = trunk.dictionary
        site_of = np.full(len(names), -1, dtype=np.int64)
        longest = np.full(len(names), -1, dtype=np.int64)
        for k, prefix in enumerate(self.tables["site_t"].column("trunk").to_pylist()):
            hit = ra.numpy(pc.starts_with(names, prefix), False) & (len(prefix) > longest)
            site_of[hit] = k
            longest[hit] = len(prefix)
        return site_of[ra.numpy(trunk.indices, 0).astype(np.int64)]

    # -- 2. numbers ----------------------------------------------------------------------

    def numbers(self, site: IntArray) -> None:
        """Per call the normalized row of its calling / called / dialled number and of
        its site's main number (-1: NULL), and the normalized numbers themselves (one
        row per distinct (number, site) pair)."""
        texts: pa.Array = self.c["numbers"]
        count = max(len(texts), 1)
        has_site = site >= 0
        per_call = [self.c[f"{k}_i"] for k in ("calling", "called", "dialled")]
        keys = [np.where(has_site, site * count + i, 0) for i in per_call]
        mains = np.arange(self.site_count) * count + self.main_i
        distinct, inverse = ra.dense(np.concatenate([*keys, mains]))
        x = texts.take(pa.array(distinct % count)) if len(texts) else pa.array([], pa.string())
        e, gk = self._normalize(x, distinct // count)
        row_of_pair = np.where(gk >= 0, np.arange(len(distinct)), -1)
        n = self.n
        rows = [np.where(has_site, row_of_pair[inverse[k * n : (k + 1) * n]], -1) for k in range(3)]
        self.calling, self.called, self.dialled = rows
        main_of_site = row_of_pair[inverse[3 * n :]]
        self.main = np.where(has_site, ra.pick(site, main_of_site, -1), -1)
        self.e = e
        self.gk = gk
        plus1 = ra.numpy(pc.starts_with(e, "+1"), False)
        self.plus1 = plus1
        npa = pc.utf8_slice_codeunits(e, 2, 5)
        self.toll_free_number = plus1 & ra.numpy(pc.is_in(npa, pa.array(list(_TOLL_FREE))), False)
        self.digits = pc.utf8_slice_codeunits(e, 1)  # far_e[2:]
        self.after_cc1 = pc.utf8_slice_codeunits(e, 2)  # e[3:]
        self.national = pc.if_else(pa.array(plus1), self.after_cc1, self.digits)

    def _normalize(self, x: pa.Array, pair_site: IntArray) -> tuple[pa.Array, IntArray]:
        """(E.164 or null, gk or -1) of each (number text, site) pair: the numbers that
        are ``+`` and digits by :func:`clean_numbers`, the others by the statement."""
        count = len(x)
        clean = ra.numpy(pc.match_substring_regex(x, r"^\+?[0-9]*$"), False)
        clean &= ra.numpy(pc.binary_length(x), 0).astype(np.int64) <= ra.WIDTH
        real = pair_site < self.site_count  # (a call with no site is keyed to site 0)
        clean &= real
        site_t = self.tables["site_t"]
        outside = site_t.column("outside").to_pylist()
        home = site_t.column("home_npa").to_pylist()
        positions: list[IntArray] = []
        found_e: list[pa.Array] = []
        found_gk: list[IntArray] = []
        for s in np.unique(pair_site[clean]).tolist():
            at = np.flatnonzero(clean & (pair_site == s))
            e, gk = ra.clean_numbers(x.take(pa.array(at)), outside[s] or "", home[s] or "")
            positions.append(at)
            found_e.append(e)
            found_gk.append(gk)
        rest = np.flatnonzero(~clean & real)
        if len(rest):
            got = self.sql(
                "numbers",
                pairs=pa.table(
                    {
                        "pos": pa.array(rest, pa.int64()),
                        "x": x.take(pa.array(rest)),
                        "site_no": pa.array(pair_site[rest], pa.int64()),
                    }
                ),
            )
            positions.append(ra.numpy(got.column("pos"), 0).astype(np.int64))
            found_e.append(got.column("e").combine_chunks().cast(pa.string()))
            found_gk.append(ra.numpy(got.column("gk"), -1).astype(np.int64))
        source = np.full(count, -1, dtype=np.int64)
        if positions:
            source[np.concatenate(positions)] = np.arange(sum(len(q) for q in positions))
            every_e = pa.concat_arrays(found_e)
            every_gk = np.concatenate(found_gk)
        else:
            every_e, every_gk = pa.array([], pa.string()), ra.i64([])
        e = (
            every_e.take(pa.array(np.where(source >= 0, source, 0), mask=source < 0))
            if len(every_e)
            else pa.nulls(count, pa.string())
        )
        gk = np.where(source >= 0, ra.pick(source, every_gk, -1), -1)
        gk = np.where(ra.numpy(pc.is_valid(e), False), gk, -1)
        return e, gk

    # -- 3. clocks -----------------------------------------------------------------------

    def clocks(self, site: IntArray) -> None:
        """Per call its quarter-hour's clock (offset, period, local day) in its site's
        zone: by the statement, once per (zone, quarter) a process meets."""
        t_s, t_ok = self.c["t_s"], self.c["t_ok"]
        known = (site >= 0) & t_ok
        zones = self.tables["site_t"].column("tz").to_pylist()
        zone_code = ra.i64([ra.zone_code(z) for z in zones])
        q = np.where(known, ra.tdiv(t_s, 900), 0)
        keys = np.where(
            known, ra.pick(site, zone_code, 0) * ra.QUARTERS + (q + ra.QUARTERS // 2), 0
        )
        distinct, inverse = np.unique(keys[known], return_inverse=True)
        rows, table = ra.CLOCKS.find(distinct)
        if (rows < 0).any() or table is None:
            missing = distinct[rows < 0]
            site_of_zone = {code: k for k, code in reversed(list(enumerate(zone_code.tolist())))}
            found = self.sql(
                "clocks",
                quarters_in=pa.table(
                    {
                        "site_no": pa.array(
                            [site_of_zone[c] for c in (missing // ra.QUARTERS).tolist()], pa.int64()
                        ),
                        "q": pa.array(missing % ra.QUARTERS - ra.QUARTERS // 2, pa.int64()),
                    }
                ),
            )
            got = ra.i64(
                zone_code[ra.numpy(found.column("site_no"), 0).astype(np.int64)]
            ) * ra.QUARTERS + (ra.numpy(found.column("q"), 0).astype(np.int64) + ra.QUARTERS // 2)
            found = found.select(["offset_s", "period", "local_date"])
            if found.num_rows:
                ra.CLOCKS.add(got, found)
                rows, table = ra.CLOCKS.find(distinct)
            else:
                table = found
        assert table is not None  # found, or the statement's (empty) answer
        clock = np.full(self.n, -1, dtype=np.int64)
        clock[known] = rows[inverse]
        self.offset = ra.pick(clock, ra.numpy(table.column("offset_s"), 0).astype(np.int64), 0)
        period = ra.numpy(pc.cast(table.column("period"), pa.int64()), 0).astype(np.int64)
        self.period = ra.pick(clock, period, 0)  # 1-7, 0 = NULL
        days = ra.numpy(table.column("local_date").cast(pa.int32()), 0).astype(np.int64)
        self.local_day = ra.pick(clock, days, -(2**40))

    # -- 4. places -----------------------------------------------------------------------

    def places(self) -> None:
        """Per number its place: by the statement, once per place a process meets (the
        geography tables do not change while it runs)."""
        gks = np.unique(self.gk[self.gk >= 0])
        rows, table = ra.PLACES.find(gks)
        if (rows < 0).any() or table is None:
            missing = gks[rows < 0]
            found = self.sql("places", gks=pa.table({"gk": pa.array(missing, pa.int64())}))
            if found.num_rows:
                ra.PLACES.add(ra.numpy(found.column("gk"), 0).astype(np.int64), found)
                rows, table = ra.PLACES.find(gks)
            else:
                table = found
        assert table is not None  # found, or the statement's (empty) answer
        geo = table.take(pa.array(rows))
        self.geo = geo
        place = np.searchsorted(gks, self.gk)
        self.place_of_number = np.where(self.gk >= 0, place, -1)
        self.g_nanp = ra.numpy(geo.column("nanp"), False)
        self.g_has_cc = ra.numpy(pc.is_valid(geo.column("cc")), False)
        self.g_cc52 = ra.numpy(pc.equal(geo.column("cc"), "52"), False)
        self.g_npa = ra.numpy(geo.column("npa"), -1).astype(np.int64)
        self.g_canada = ra.numpy(geo.column("canada"), False)
        self.g_terr_pos = ra.numpy(geo.column("terr_pos"), 0).astype(np.int64)
        self.g_city = self._ids(geo.column("city"))
        state = geo.column("state").combine_chunks()
        self.g_state = self._ids(state)
        band_t = self.tables["band_t"]
        states = ra.flat(pc.unique(band_t.column("o_state")))
        side = len(states)
        o = ra.i64(pc.index_in(band_t.column("o_state"), value_set=states).to_numpy())
        t = ra.i64(pc.index_in(band_t.column("t_state"), value_set=states).to_numpy())
        bands = np.zeros((side, side), dtype=np.int64)
        bands[o, t] = ra.numpy(band_t.column("band"), 0)
        at = ra.numpy(pc.index_in(state, value_set=states), -1).astype(np.int64)
        self.g_band_state = at  # the place's state in the band matrix (-1: none)
        self.bands = bands

    @staticmethod
    def _ids(values: pa.ChunkedArray | pa.Array) -> IntArray:
        """Dictionary indexes of a column, -1 for null (equal ids = equal values)."""
        encoded = pc.dictionary_encode(values)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        return ra.numpy(encoded.indices, -1).astype(np.int64)

    # -- the call -------------------------------------------------------------------------

    def price(self) -> Bulk:
        """Every step, then each CASE of the statement in its order."""
        n = self.n
        site = self.sites()
        self.numbers(site)
        self.clocks(site)
        self.places()
        direction = self.c["direction"]
        inbound = ra.numpy(pc.equal(direction, "inbound"), False)
        outbound = ra.numpy(pc.equal(direction, "outbound"), False)
        internal = ra.numpy(pc.equal(direction, "internal"), False)
        tf = self.toll_free_number
        dialled_tf = ra.pick(self.dialled, tf, False)
        called_tf = ra.pick(self.called, tf, False)
        toll_free = inbound & (dialled_tf | called_tf)
        calling, called, dialled, main = self.calling, self.called, self.dialled, self.main
        orig = np.where(inbound, calling, ra.first(calling, main))
        term = np.where(
            inbound & (toll_free | (called < 0)),
            main,
            np.where(inbound, called, ra.first(called, dialled)),
        )
        dial = np.where(inbound, ra.first(dialled, called, main), ra.first(dialled, called))
        tollfree_from = np.where(dialled_tf, dialled, called)
        og = ra.pick(orig, self.place_of_number, -1)
        tg = ra.pick(term, self.place_of_number, -1)
        has_o, has_t = og >= 0, tg >= 0
        o_nanp = ra.pick(og, self.g_nanp, False)
        t_nanp = ra.pick(tg, self.g_nanp, False)
        both = o_nanp & t_nanp
        canada = both & (ra.pick(og, self.g_canada, False) != ra.pick(tg, self.g_canada, False))
        same_npa = both & (ra.pick(og, self.g_npa, -1) == ra.pick(tg, self.g_npa, -1))
        o_state, t_state = ra.pick(og, self.g_state, -1), ra.pick(tg, self.g_state, -1)
        same_state = both & (o_state >= 0) & (o_state == t_state)
        o_city, t_city = ra.pick(og, self.g_city, -1), ra.pick(tg, self.g_city, -1)
        same_city = (o_city >= 0) & (o_city == t_city)
        far = np.where(inbound, orig, term)
        far_abroad = np.where(inbound, has_o & ~o_nanp, has_t & ~t_nanp)
        far_has_cc = np.where(
            inbound, ra.pick(og, self.g_has_cc, False), ra.pick(tg, self.g_has_cc, False)
        )
        o_cc_ok, t_cc_ok = ra.pick(og, self.g_has_cc, False), ra.pick(tg, self.g_has_cc, False)
        # usage (the statement's CASE, NULLs as not taken)
        use = np.full(n, 1, dtype=np.int64)
        for cond, code in (
            (same_state, 2),
            (same_npa, 4),
            (same_npa & same_city, 6),
            (canada, 3),
            (has_o & ~o_nanp, 7),
            (has_t & ~t_nanp, 3),
        ):  # reversed: the first WHEN wins
            use = np.where(cond, code, use)
        o_band, t_band = ra.pick(og, self.g_band_state, -1), ra.pick(tg, self.g_band_state, -1)
        state_band = np.where(
            (o_band >= 0) & (t_band >= 0),
            self.bands[np.clip(o_band, 0, None), np.clip(t_band, 0, None)],
            9,
        )
        band = np.where(
            (has_o & ~o_nanp) | (has_t & ~t_nanp),
            9,
            np.where(same_npa, 1, np.where(same_state, 2, state_band)),
        )
        # verdict0: the first that applies, as codes
        t_ok, answered = self.c["t_ok"], self.c["answered"]
        verdict = np.zeros(n, dtype=np.int64)  # 0: none
        known_direction = inbound | outbound | internal
        calling_blank = self._blank(self.c["calling"])
        rules = (
            (internal, 1),
            (~known_direction, 2),
            (~answered, 3),
            (~t_ok, 4),
            (site < 0, 5),
            ((far < 0) & inbound & calling_blank, 6),
            ((far < 0) & inbound, 7),
            (far < 0, 8),
            (~far_has_cc, 9),
            (~o_cc_ok | ~t_cc_ok, 10),
        )
        for cond, code in reversed(rules):
            verdict = np.where(cond, code, verdict)
        # 5. profile of the local day
        open_ = verdict == 0
        plan_code, product_code, discount, plans = self._profiles(open_)
        # 6. tariff line
        rate_no = self._rates(open_ & (plan_code >= 0), plan_code, plans, far, inbound, use)
        # 7. charges
        charge, self.plan_row = ra.charges(
            self.tables, plans, rate_no, plan_code, self.c["seconds"], discount, far_abroad
        )
        seconds = self.c["seconds"]
        late = np.where(
            plan_code < 0,
            11,
            np.where(
                rate_no < 0,
                12,
                np.where(
                    seconds > MAX_SECONDS,
                    13,
                    np.where(charge["amount"] + charge["tax"] > MAX_CENTS, 14, 0),
                ),
            ),
        )
        verdict = np.where(verdict == 0, late, verdict)
        rejected, skipped = self._verdicts(
            verdict, far, plans, plan_code, inbound, use, site, charge
        )
        ok = np.flatnonzero(verdict == 0)
        t_s = self.c["t_s"]
        order = ok[np.lexsort((ok, t_s[ok]))]
        return Bulk(
            self._output(
                order,
                site,
                inbound,
                toll_free,
                og,
                tg,
                orig,
                term,
                dial,
                tollfree_from,
                use,
                band,
                canada,
                both,
                product_code,
                plans,
                charge,
            ),
            order,
            rejected,
            skipped,
        )

    @staticmethod
    def _blank(raw: pa.Array) -> BoolArray:
        """``coalesce(trim(x), '') = ''`` (DuckDB's trim: blanks)."""
        return ra.numpy(pc.equal(pc.fill_null(pc.utf8_trim(raw, " "), ""), ""), True)

    def _profiles(self, open_: BoolArray) -> tuple[IntArray, IntArray, IntArray, pa.Table]:
        """Per call the profile active on its local day: the latest ``active_from`` not
        after it (the ASOF join of ``_DAYS_SQL``; a timeline's days are distinct)."""
        prof = self.tables["prof_t"]
        starts = ra.numpy(prof.column("active_from").cast(pa.int32()), 0).astype(np.int64)
        order = np.argsort(starts, kind="stable")
        plans = ra.flat(pc.unique(prof.column("plan_id")))
        products = ra.flat(pc.unique(prof.column("product")))
        plan_of = ra.numpy(pc.index_in(prof.column("plan_id"), value_set=plans), -1)[order]
        product_of = ra.numpy(pc.index_in(prof.column("product"), value_set=products), -1)[order]
        discount_of = ra.numpy(prof.column("discount_bp"), 0).astype(np.int64)[order]
        self.products = products
        at = np.searchsorted(starts[order], self.local_day, side="right") - 1
        hit = open_ & (at >= 0)
        plan = np.where(hit, ra.pick(at, plan_of.astype(np.int64), -1), -1)
        product = np.where(hit, ra.pick(at, product_of.astype(np.int64), -1), -1)
        discount = np.where(hit, ra.pick(at, discount_of, 0), 0)
        return plan, product, discount, pa.table({"plan_id": plans})

    def _rates(
        self,
        wanted: BoolArray,
        plan: IntArray,
        plans: pa.Table,
        far: IntArray,
        inbound: BoolArray,
        use: IntArray,
    ) -> IntArray:
        n = self.n
        rate_no = np.full(n, -1, dtype=np.int64)
        lens = self.tables["lens_t"].column("plen")
        if not len(lens) or not wanted.any():
            return rate_no
        longest = int(pc.max(lens).as_py())
        far_key = pc.utf8_slice_codeunits(self.digits, 0, longest)
        encoded = pc.dictionary_encode(far_key)
        key_of_number = ra.numpy(encoded.indices, 0).astype(np.int64)
        keys_n = len(encoded.dictionary)
        fk = ra.pick(far, key_of_number, 0)
        period = self.period
        key = (((plan * keys_n + fk) * 2 + inbound) * 8 + use) * 8 + period
        distinct, inverse = ra.dense(np.where(wanted, key, 0)[wanted])
        period_d, rest = distinct % 8, distinct // 8
        use_d, rest = rest % 8, rest // 8
        dir_d, rest = rest % 2, rest // 2
        fk_d, plan_d = rest % keys_n, rest // keys_n
        wanted_t = pa.table(
            {
                "wk": pa.array(np.arange(len(distinct)), pa.int64()),
                "plan_id": plans.column("plan_id").take(pa.array(plan_d)),
                "far_key": encoded.dictionary.take(pa.array(fk_d)),
                "dir": pa.array(np.where(dir_d == 1, "in", "out")),
                "use_cd": pa.array(use_d.astype(str)),
                "period": pa.array(period_d.astype(str)),
            }
        )
        # the match of a key is the snapshot's: remembered with it (``memo``)
        names = list(zip(*(wanted_t.column(c).to_pylist() for c in _KEY_COLUMNS), strict=True))
        best = np.full(len(distinct), -1, dtype=np.int64)
        unknown = []
        for k, name in enumerate(names):
            got = self.memo.get(name)
            if got is None:
                unknown.append(k)
            else:
                best[k] = got
        if unknown:
            found = self.sql("rates", wanted=wanted_t.take(pa.array(unknown)))
            for wk, no in zip(
                found.column("wk").to_pylist(), found.column("rate_no").to_pylist(), strict=True
            ):
                best[wk] = -1 if no is None else no
                self.memo[names[wk]] = best[wk]
        rate_no[wanted] = best[inverse]
        self.far_keys = encoded
        return rate_no

    def _verdicts(
        self,
        verdict: IntArray,
        far: IntArray,
        plans: pa.Table,
        plan: IntArray,
        inbound: BoolArray,
        use: IntArray,
        site: IntArray,
        charge: dict[str, IntArray],
    ) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        rejected: list[tuple[int, str]] = []
        skipped: list[tuple[int, str]] = []
        for code, text in ((1, "internal call (no carrier service)"), (3, "not answered")):
            skipped += [(int(r), text) for r in np.flatnonzero(verdict == code).tolist()]
        skipped.sort()
        bad = np.flatnonzero(verdict >= 2)
        bad = bad[verdict[bad] != 3]
        if not len(bad):
            return rejected, skipped
        entp, corp = self.entp_id, self.corp_id
        direction = self.c["direction"]
        trunk, calling, called = self.c["trunk"], self.c["calling"], self.c["called"]
        e = self.e
        plan_ids = plans.column("plan_id")
        for r in bad.tolist():
            code = int(verdict[r])
            if code == 2:
                d = direction[r].as_py()
                shown = "missing" if d is None else f"'{d}'"
                text = f"direction {shown} is not inbound, outbound or internal"
            elif code == 4:
                text = "the call has no start time"
            elif code == 5:
                text = (
                    f"no site of {entp}/{corp} takes trunk '{trunk[r].as_py()}'"
                    " (and none is for any trunk)"
                )
            elif code == 6:
                text = "the calling number is withheld"
            elif code == 7:
                text = f"calling number '{calling[r].as_py()}' is not E.164/NANP"
            elif code == 8:
                text = f"called number '{called[r].as_py() or ''}' is not E.164/NANP"
            elif code == 9:
                text = f"{e[int(far[r])].as_py()} has no known country calling code"
            elif code == 10:
                text = "the site's main number has no known country calling code"
            elif code == 11:
                text = f"no rating profile of {entp}/{corp} is active on {self._day(r)}"
            elif code == 12:
                text = (
                    f"no tariff of plan {plan_ids[int(plan[r])].as_py()} covers"
                    f" {e[int(far[r])].as_py()} ({'in' if inbound[r] else 'out'}bound,"
                    f" usage {int(use[r])}, period {int(self.period[r])}) on {self._day(r)}"
                )
            elif code == 13:
                text = (
                    f"billable time {int(self.c['seconds'][r])} s is more than the"
                    " datamart's 999999.9 minutes"
                )
            else:
                text = f"the charge {int(charge['amount'][r])} cents is more than money(7,2) holds"
            rejected.append((int(r), text))
        return rejected, skipped

    def _day(self, r: int) -> str:
        return (dt.date(1970, 1, 1) + dt.timedelta(days=int(self.local_day[r]))).isoformat()

    # -- the priced rows -------------------------------------------------------------------

    def _output(
        self,
        rows: IntArray,
        site: IntArray,
        inbound: BoolArray,
        toll_free: BoolArray,
        og: IntArray,
        tg: IntArray,
        orig: IntArray,
        term: IntArray,
        dial: IntArray,
        tollfree_from: IntArray,
        use: IntArray,
        band: IntArray,
        canada: BoolArray,
        both: BoolArray,
        product_code: IntArray,
        plans: pa.Table,
        charge: dict[str, IntArray],
    ) -> dict[str, pa.Array]:
        site_t, geo = self.tables["site_t"], self.geo
        s = site[rows]
        inb, tf = inbound[rows], toll_free[rows]
        site_4 = ra.pick(s, ra.numpy(pc.equal(self.site_access, "4"), False), False)
        out: dict[str, pa.Array] = {}
        t_s = self.c["t_s"][rows]
        out["rid"] = pa.array(rows, pa.int64())
        out["gmt_s"] = pa.array(t_s, pa.int64())
        out["lst_s"] = pa.array(t_s + self.offset[rows], pa.int64())
        out["billing_id"] = ra.over(s, site_t.column("billing_id").combine_chunks())
        out["service_loc_id"] = ra.over(s, site_t.column("service_loc_id").combine_chunks())
        products = self.products
        product = np.where(tf, len(products), product_code[rows])
        out["product"] = ra.labels(product, pa.concat_arrays([products, pa.array(["T"])]))
        site_codes = pc.dictionary_encode(self.site_access)
        site_code = ra.pick(s, ra.i64(site_codes.indices.to_numpy(zero_copy_only=False)), -1)
        labels = pa.concat_arrays([site_codes.dictionary, pa.array(["B", "10"])])
        k = len(site_codes.dictionary)
        access_code = np.where(
            ~inb, site_code, np.where(tf & site_4, k, np.where(tf, k + 1, site_code))
        )
        out["access_code"] = ra.labels(access_code, labels)
        out["in_out"] = ra.labels(inb.astype(np.int64), ["0", "1"])
        u = use[rows]
        out["use_cd"] = ra.labels(u - 1, list(_USES))
        o, t = og[rows], tg[rows]
        t_cc52 = ra.pick(t, self.g_cc52, False)
        t_nanp = ra.pick(t, self.g_nanp, False)
        terr_o = geo.column("terr").combine_chunks()
        o_pos, t_pos = ra.pick(o, self.g_terr_pos, 0), ra.pick(t, self.g_terr_pos, 0)
        territory = np.where(o_pos >= t_pos, o, t)  # the place whose territory counts
        terr_ids = self._ids(terr_o)
        terr = ra.pick(territory, terr_ids, -1)
        terr_labels = pc.dictionary_encode(terr_o).dictionary
        nterr = len(terr_labels)
        sub = np.where(
            ~t_nanp & t_cc52,
            nterr + 1,
            np.where(
                canada[rows],
                nterr + 2,
                np.where(both[rows] & (u == 1), np.where(terr >= 0, terr, nterr), nterr),
            ),
        )
        out["subusage"] = ra.labels(
            sub, pa.concat_arrays([terr_labels.cast(pa.string()), pa.array(["", "3", "1"])])
        )
        b = band[rows]
        out["range"] = ra.labels(
            np.where(inb, b - 1, 9 + b - 1), [str(i) for i in range(1, 10)] + list(_RANGES_OUT)
        )
        named = ("country_cd", "city", "state", "country_name")  # encoded once, both sides
        place = {c: ra.distinct_codes(geo.column(c).combine_chunks()) for c in named}
        for side, g in (("orig", o), ("term", t)):
            codes, dictionary = place["country_cd"]
            out[f"{side}_country_cd"] = ra.over(ra.pick(g, codes, -1), dictionary)
            for c in ("npa", "nxx", "routing_cd"):
                values = geo.column(c).combine_chunks()
                out[f"{side}_{c}"] = (
                    values.take(pa.array(np.where(g >= 0, g, 0), mask=g < 0))
                    if len(values)
                    else pa.nulls(len(g), pa.int16())
                )
            for c in ("city", "state", "country_name"):
                codes, dictionary = place[c]
                out[f"{side}_{c}"] = ra.over(ra.pick(g, codes, -1), dictionary)
        national = self.national
        out["orig_number"] = ra.over(orig[rows], national)
        out["term_number"] = ra.over(term[rows], national)
        out["dialed_number"] = ra.over(dial[rows], national)
        tfrom = np.where(tf, tollfree_from[rows], -1)
        tollfree_values = pc.fill_null(self.after_cc1, "")
        used, inverse = ra.dense(np.where(tfrom >= 0, tfrom, 0))
        small = pa.concat_arrays([tollfree_values.take(pa.array(used)), pa.array([""])])
        out["tollfree"] = pa.DictionaryArray.from_arrays(
            pa.array(np.where(tfrom >= 0, inverse, len(used)).astype(np.int32)), small
        )
        account = pc.dictionary_encode(self.c["account"])
        acc = ra.i64(account.indices.to_numpy(zero_copy_only=False))[rows]
        out["idacc"] = ra.labels(acc, pc.utf8_slice_codeunits(account.dictionary, 0, 16))
        axs = np.where(inb & tf & site_4, 0, np.where(~inb & site_4, 1, 2))
        out["axs_term_cd"] = ra.labels(axs, ["12", "21", "11"])
        plan_t = self.tables["plan_t"]
        out["currency_cd"] = ra.over(
            self.plan_row[rows], plan_t.column("currency").combine_chunks()
        )
        seconds = self.c["seconds"][rows]
        out["duration_tenths"] = pa.array(np.maximum(1, (seconds + 5) // 6))
        out["amount_cents"] = pa.array(charge["amount"][rows])
        out["net_cents"] = pa.array(charge["net"][rows])
        out["tax_cents"] = pa.array(charge["tax"][rows])
        out["intl_cents"] = pa.array(charge["intl"][rows])
        return out
