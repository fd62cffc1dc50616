# ruff: noqa: S608 -- SQL text is built from our own table and column names only; values
# travel as parameters or as registered Arrow tables
"""The SQL of rating and re-rating (:mod:`starwrs.proxies.harvest.rating` runs it).

Theory of operation
-------------------
Two statements, built once per process from our own names (values are parameters
``$entp``, ``$corp`` or registered Arrow tables), sharing the pricing CTEs
:data:`PRICE_SQL` (profile, tariff match, charges, verdict).  What costs per call is
kept to a few operations; everything that depends on a value rather than on the call
is computed once per *distinct* value and joined back:

* numbers are normalized once per distinct (site, number as written): one RE2
  ``regexp_extract`` (:data:`NUMBER_PATTERN`, the rule of
  ``collector.readers.model.normalize_number``; a second one without the site's
  outside digits when the first fails), cleaning only what is not already digits;
* the clock once per distinct (site, quarter of an hour of GMT): every time zone
  offset of the tz database changes on a quarter-hour of UTC, so the offset, the rate
  period and the local day are those of the quarter's start; ``lst`` = ``gmt`` +
  offset, as epoch seconds;
* geography once per distinct number prefix (``+1NPANXX``, or ``+`` and six digits);
* the tariff by one hash probe per call and distinct prefix length of the plan.

The rating statement is the reference; the bulk rating (:mod:`.rating_bulk`) runs
:data:`BULK_STATEMENTS`, one per kind of distinct value, built from the same fragments
(``_norm_ctes``, ``_geo_ctes``, ``_quarters_sql``, ``_MATCH_SQL``, ...).

Tables: ``calls_in`` (``rid``, ``t_s`` epoch seconds, and the Call columns),
``site_t``, ``prof_t``, ``rate_t``, ``lens_t``, ``plan_t`` (the tariff snapshot),
``nanp_t``, ``npa_t``, ``cc_t``, ``city_t``, ``state_t``, ``band_t`` (geography);
re-rating reads ``stored`` instead of ``calls_in`` and the geography.
"""

from __future__ import annotations

import functools

from starwrs.storage.datamart import reference as ref
from starwrs.storage.datamart.load import RATE_SQL

__all__ = [
    "BULK_STATEMENTS",
    "MAX_CENTS",
    "MAX_SECONDS",
    "NUMBER_PATTERN",
    "TOLL_FREE_NPAS",
    "rating_sql",
    "rerating_sql",
]

#: NANP toll-free area codes (the seed names 800 and 888)
TOLL_FREE_NPAS = ("800", "833", "844", "855", "866", "877", "888")
#: the most billable seconds ``duration`` DECIMAL(7,1) minutes holds
MAX_SECONDS = 9_999_999 * 6
#: money(7,2) in cents
MAX_CENTS = 999_999_999
#: a cleaned number's forms, one group each: ``+1`` NANP, ``+`` elsewhere, ``011``
#: international, (1) NPA NXX XXXX, 7-digit local (``normalize_number``'s order)
NUMBER_PATTERN = (
    r"^(?:\+1([2-9][0-9]{2}[2-9][0-9]{6})|\+([02-9][0-9]{7,14})|011([02-9][0-9]{6,14})"
    r"|1?([2-9][0-9]{2}[2-9][0-9]{6})|([2-9][0-9]{6}))$"
)
_GROUPS = "['n', 'e', 'i', 'd', 'l']"
_TOLL_FREE = ", ".join(f"'{npa}'" for npa in TOLL_FREE_NPAS)


def _e164_of(m: str) -> str:
    return (
        f"CASE WHEN {m}.n <> '' THEN '+1' || {m}.n WHEN {m}.e <> '' THEN '+' || {m}.e"
        f" WHEN {m}.i <> '' THEN '+' || {m}.i WHEN {m}.d <> '' THEN '+1' || {m}.d"
        f" WHEN {m}.l <> '' AND home_npa <> '' THEN '+1' || home_npa || {m}.l END"
    )


#: the tariff match: ``wanted`` (plan_id, far_key, dir, use_cd, period) in, ``best``
#: (the same and the winning ``rate_no``) out
_MATCH_SQL = """probes AS (
    SELECT w.*, l.plen, w.far_key[1:l.plen] AS probe
      FROM wanted w JOIN lens_t l ON l.plen <= length(w.far_key)),
candidates AS (
    SELECT c.plan_id, c.far_key, c.dir, c.use_cd, c.period, r.rate_no,
           r.plen * 8 + (r.use_cd <> '*')::INTEGER * 4 + (r.period <> '*')::INTEGER * 2
           + (r.direction <> '*')::INTEGER AS score
      FROM probes c JOIN rate_t r
        ON r.plan_id = c.plan_id AND r.plen = c.plen AND r.prefix = c.probe
     WHERE r.direction IN (c.dir, '*') AND r.use_cd IN (c.use_cd, '*')
       AND r.period IN (c.period, '*')),
best AS (
    SELECT plan_id, far_key, dir, use_cd, period, arg_max(rate_no, score) AS rate_no
      FROM candidates GROUP BY ALL)"""

#: the profile of each local day: ``{days}`` (local_date) in
_DAYS_SQL = """SELECT d.local_date, p.plan_id, p.product AS profile_product, p.discount_bp
      FROM {days} d
      ASOF LEFT JOIN prof_t p ON d.local_date >= p.active_from"""

#: steps 5-7, shared by rating and re-rating: ``classified`` in, ``judged`` out
PRICE_SQL = f"""
days AS (
    {_DAYS_SQL.format(days="(SELECT DISTINCT local_date FROM classified"
                           " WHERE local_date IS NOT NULL)")}),
profiled AS (
    SELECT c.*, d.plan_id, d.profile_product, d.discount_bp
      FROM classified c LEFT JOIN days d ON d.local_date = c.local_date),
keyed AS (
    SELECT *, far_digits[1:(SELECT max(plen) FROM lens_t)] AS far_key FROM profiled),
wanted AS (
    SELECT DISTINCT plan_id, far_key, dir, use_cd, period FROM keyed
     WHERE plan_id IS NOT NULL AND far_key IS NOT NULL),
{_MATCH_SQL},
billed AS (
    SELECT c.*, r.rate_micro, r.connect_micro, r.minimum_cents, r.rate_no,
           pl.currency, pl.tax_ppm, pl.intl_cents,
           CASE WHEN c.seconds <= 0 THEN 0 WHEN c.seconds <= r.first_s THEN r.first_s
                ELSE r.first_s + (c.seconds - r.first_s + r.next_s - 1) // r.next_s * r.next_s
           END AS billed_s
      FROM keyed c LEFT JOIN best b
        ON b.plan_id = c.plan_id AND b.far_key = c.far_key AND b.dir = c.dir
       AND b.use_cd = c.use_cd AND b.period = c.period
      LEFT JOIN rate_t r ON r.rate_no = b.rate_no
      LEFT JOIN plan_t pl ON pl.plan_id = c.plan_id),
gross AS (
    SELECT *, greatest((rate_micro * billed_s + connect_micro * 60 + 300000) // 600000,
                       minimum_cents) AS gross_cents
      FROM billed),
net AS (
    SELECT *, gross_cents - (gross_cents * discount_bp + 5000) // 10000 AS net_cents,
           CASE WHEN far_abroad THEN intl_cents ELSE 0 END AS intl_s
      FROM gross),
charged AS (
    SELECT *, net_cents + intl_s + other_cents AS amount_cents,
           ((net_cents + intl_s + other_cents) * tax_ppm + 500000) // 1000000 AS tax_cents
      FROM net),
judged AS (
    SELECT *, coalesce(verdict0, CASE
        WHEN plan_id IS NULL THEN
             'R:no rating profile of ' || $entp || '/' || $corp || ' is active on '
             || CAST(local_date AS VARCHAR)
        WHEN rate_no IS NULL THEN
             'R:no tariff of plan ' || plan_id || ' covers ' || far_e || ' (' || dir
             || 'bound, usage ' || use_cd || ', period ' || period || ') on '
             || CAST(local_date AS VARCHAR)
        WHEN seconds > {MAX_SECONDS} THEN
             'R:billable time ' || seconds || ' s is more than the datamart''s 999999.9 minutes'
        WHEN amount_cents + tax_cents > {MAX_CENTS} THEN
             'R:the charge ' || amount_cents || ' cents is more than money(7,2) holds'
        END) AS verdict
      FROM charged)
"""

_CLEAN = (
    "CASE WHEN regexp_full_match(n.x, '\\+?[0-9]*') THEN n.x"
    " ELSE translate(trim(n.x, ' \t\n\r\x0b\x0c'), ' -.()/\t', '') END"
)


def _geo_cols(alias: str, side: str) -> str:
    cols = ("nanp", "npa", "nxx", "cc", "country_cd", "country_name", "city", "state", "routing_cd")
    return ", ".join(f"{alias}.{c} AS {side}_{c}" for c in cols)


def _trunk_sql(trunks: str) -> str:
    """Each distinct trunk of *trunks* (a relation of ``trunk``) to the site whose
    ``TRUNK`` is its longest start."""
    return f"""SELECT t.trunk, arg_max(s.site_no, length(s.trunk)) AS site_no
      FROM {trunks} t JOIN site_t s ON starts_with(t.trunk, s.trunk)
     GROUP BY t.trunk"""


def _norm_ctes(key: str, source: str) -> str:
    """``norm0`` .. ``norm``: each row of *source* (its number text ``n.x``, the site's
    ``s.outside`` and ``s.home_npa``) keyed *key*, to its E.164 form ``e`` and place
    key ``gk`` (only the numbers that normalize)."""
    m2 = f"regexp_extract(t[length(outside) + 1:], '{NUMBER_PATTERN}', {_GROUPS})"
    return f"""norm0 AS (
    SELECT {key} AS k, {_CLEAN} AS t, s.outside, s.home_npa
      FROM {source}),
norm1 AS (SELECT *, regexp_extract(t, '{NUMBER_PATTERN}', {_GROUPS}) AS m FROM norm0),
norm2 AS (SELECT *, {_e164_of("m")} AS e1 FROM norm1),
norm3 AS (
    SELECT *, CASE WHEN e1 IS NULL AND outside <> '' AND starts_with(t, outside) THEN {m2} END
              AS m2
      FROM norm2),
norm4 AS (SELECT k, coalesce(e1, {_e164_of("m2")}) AS e FROM norm3),
norm AS MATERIALIZED (
    SELECT k, e,
           CASE WHEN e[1:2] = '+1' THEN 1000000000 + TRY_CAST(e[3:8] AS BIGINT)
                ELSE 2000000000 + TRY_CAST(e[2:7] AS BIGINT) END AS gk
      FROM norm4 WHERE e IS NOT NULL)"""


def _quarters_sql(quarters: str) -> str:
    """Each (site_no, q) of *quarters*: the zone's offset and wall clock at the start of
    quarter-hour *q* of GMT."""
    return f"""SELECT q.site_no, q.q,
           epoch(timezone(s.tz, to_timestamp(q.q * 900)))::BIGINT - q.q * 900 AS offset_s,
           timezone(s.tz, to_timestamp(q.q * 900)) AS local_start
      FROM {quarters} q JOIN site_t s USING (site_no)"""


#: of a ``quarters`` row: its offset, rate period and local day
_CLOCK_COLUMNS = (
    f"offset_s, {RATE_SQL.format(d='local_start')} AS period,"
    " CAST(local_start AS DATE) AS local_date"
)


def _geo_ctes(source: str) -> str:
    """``g1`` .. ``geo``: the place of each distinct ``gk`` of *source*."""
    return f"""g1 AS (
    SELECT gk, gk < 2000000000 AS nanp,
           CASE WHEN gk < 2000000000 THEN CAST(gk // 1000 % 1000 AS SMALLINT) END AS npa,
           CASE WHEN gk < 2000000000 THEN CAST(gk % 1000 AS SMALLINT) END AS nxx,
           CAST(gk - 2000000000 AS VARCHAR) AS digits
      FROM {source}),
g2 AS (
    SELECT g1.*, coalesce(k1.cc, k2.cc, k3.cc) AS cc, coalesce(k1.name, k2.name, k3.name) AS cname
      FROM g1 LEFT JOIN cc_t k1 ON NOT g1.nanp AND k1.cc = g1.digits[1:1]
      LEFT JOIN cc_t k2 ON NOT g1.nanp AND k2.cc = g1.digits[1:2]
      LEFT JOIN cc_t k3 ON NOT g1.nanp AND k3.cc = g1.digits[1:3]),
geo AS MATERIALIZED (
    SELECT g2.gk, g2.nanp, g2.npa, g2.nxx, CASE WHEN g2.nanp THEN '1' ELSE g2.cc END AS cc,
           CASE WHEN g2.nanp THEN '{ref.NANP_COUNTRY_CD}' ELSE lpad(g2.cc, 3, '0') END
               AS country_cd,
           CASE WHEN g2.nanp THEN '{ref.NANP_COUNTRY_NAME}' ELSE g2.cname END AS country_name,
           CASE WHEN g2.nanp THEN coalesce(x.city, s.city)
                ELSE coalesce(f3.city, f2.city, f1.city) END AS city,
           CASE WHEN g2.nanp THEN coalesce(x.state, s.state) END AS state,
           CASE WHEN NOT g2.nanp THEN coalesce(f3.routing_cd, f2.routing_cd, f1.routing_cd) END
               AS routing_cd,
           st.canada, st.terr, st.terr_pos
      FROM g2 LEFT JOIN nanp_t x ON x.npa = g2.npa AND x.nxx = g2.nxx
      LEFT JOIN npa_t s ON s.npa = g2.npa
      LEFT JOIN city_t f1 ON f1.prefix = g2.digits[1:length(g2.cc) + 1]
      LEFT JOIN city_t f2 ON f2.prefix = g2.digits[1:length(g2.cc) + 2]
      LEFT JOIN city_t f3 ON f3.prefix = g2.digits[1:length(g2.cc) + 3]
      LEFT JOIN state_t st ON st.state = coalesce(x.state, s.state))"""


@functools.cache
def rating_sql() -> str:
    """The rating statement (see the module docstring): the reference the bulk
    rating (:mod:`.rating_bulk`) is held to, in one statement."""
    return f"""
WITH
c0 AS (
    SELECT rid, t_s, coalesce(billable, 0) AS seconds, coalesce(answered, false) AS answered,
           CAST(direction AS VARCHAR) AS direction, coalesce(CAST(trunk AS VARCHAR), '') AS trunk,
           coalesce(CAST(account AS VARCHAR), '') AS account, CAST(calling AS VARCHAR) AS calling,
           CAST(called AS VARCHAR) AS called, calling_i, called_i, dialled_i
      FROM calls_in),
trunk_site AS (
    {_trunk_sql("(SELECT DISTINCT trunk FROM c0)")}),
c1 AS (SELECT c0.*, ts.site_no FROM c0 LEFT JOIN trunk_site ts USING (trunk)),
{_norm_ctes("n.i::BIGINT * 1024 + s.site_no", "num_t n CROSS JOIN site_t s")},
quarters AS (
    {_quarters_sql("(SELECT DISTINCT site_no, t_s // 900 AS q FROM c1"
                   " WHERE site_no IS NOT NULL AND t_s IS NOT NULL)")}),
clock AS MATERIALIZED (
    SELECT site_no * 1000000000 + q AS sq, {_CLOCK_COLUMNS}
      FROM quarters),
c2 AS (
    SELECT c1.rid, c1.t_s, c1.seconds, c1.answered, c1.direction, c1.trunk, c1.account,
           c1.calling AS calling_raw, c1.called AS called_raw, c1.site_no,
           s.billing_id, s.service_loc_id, s.access_code AS site_access,
           mn.e AS main_e, mn.gk AS main_gk,
           a.e AS calling_e, a.gk AS calling_gk, b.e AS called_e, b.gk AS called_gk,
           d.e AS dialled_e, d.gk AS dialled_gk,
           c1.direction = 'inbound' AS inbound,
           k.offset_s, k.period, k.local_date
      FROM c1 LEFT JOIN site_t s USING (site_no)
      LEFT JOIN norm mn ON mn.k = s.main_i::BIGINT * 1024 + c1.site_no
      LEFT JOIN norm a ON a.k = c1.calling_i::BIGINT * 1024 + c1.site_no
      LEFT JOIN norm b ON b.k = c1.called_i::BIGINT * 1024 + c1.site_no
      LEFT JOIN norm d ON d.k = c1.dialled_i::BIGINT * 1024 + c1.site_no
      LEFT JOIN clock k ON k.sq = c1.site_no * 1000000000 + c1.t_s // 900),
c3 AS (
    SELECT *,
           inbound AND (dialled_e[3:5] IN ({_TOLL_FREE}) AND dialled_e[1:2] = '+1'
                        OR called_e[3:5] IN ({_TOLL_FREE}) AND called_e[1:2] = '+1') AS toll_free
      FROM c2),
c4 AS (
    SELECT *,
           CASE WHEN dialled_e[1:2] = '+1' AND dialled_e[3:5] IN ({_TOLL_FREE})
                THEN dialled_e[3:] ELSE called_e[3:] END AS tollfree_raw,
           CASE WHEN inbound THEN calling_e ELSE coalesce(calling_e, main_e) END AS orig_e,
           CASE WHEN inbound THEN calling_gk WHEN calling_e IS NULL THEN main_gk
                ELSE calling_gk END AS o_gk,
           CASE WHEN inbound AND (toll_free OR called_e IS NULL) THEN main_e
                WHEN inbound THEN called_e ELSE coalesce(called_e, dialled_e) END AS term_e,
           CASE WHEN inbound AND (toll_free OR called_e IS NULL) THEN main_gk
                WHEN inbound THEN called_gk WHEN called_e IS NULL THEN dialled_gk
                ELSE called_gk END AS t_gk,
           CASE WHEN inbound THEN coalesce(dialled_e, called_e, main_e)
                ELSE coalesce(dialled_e, called_e) END AS dial_e
      FROM c3),
{_geo_ctes("(SELECT DISTINCT gk FROM norm)")},  -- every number's place: c4 is read once
c5 AS (
    SELECT c.*, {_geo_cols("og", "o")}, {_geo_cols("tg", "t")},
           coalesce(og.canada, false) AS o_canada, coalesce(tg.canada, false) AS t_canada,
           CASE WHEN coalesce(og.terr_pos, 0) >= coalesce(tg.terr_pos, 0) THEN og.terr
                ELSE tg.terr END AS territory,
           bd.band AS state_band
      FROM c4 c LEFT JOIN geo og ON og.gk = c.o_gk LEFT JOIN geo tg ON tg.gk = c.t_gk
      LEFT JOIN band_t bd ON bd.o_state = og.state AND bd.t_state = tg.state),
c6 AS (
    SELECT *,
           o_nanp AND t_nanp AND o_canada <> t_canada AS canada,
           o_nanp AND t_nanp AND o_npa = t_npa AS same_npa,
           o_nanp AND t_nanp AND o_state = t_state AS same_state,
           CASE WHEN inbound THEN orig_e ELSE term_e END AS far_e,
           CASE WHEN inbound THEN NOT o_nanp ELSE NOT t_nanp END AS far_abroad,
           CASE WHEN inbound THEN o_cc ELSE t_cc END AS far_cc
      FROM c5),
classified AS (
    SELECT *,
           far_e[2:] AS far_digits,
           CASE WHEN inbound THEN 'in' ELSE 'out' END AS dir,
           CASE WHEN NOT t_nanp THEN '3' WHEN NOT o_nanp THEN '7' WHEN canada THEN '3'
                WHEN same_npa AND o_city = t_city THEN '6' WHEN same_npa THEN '4'
                WHEN same_state THEN '2' ELSE '1' END AS use_cd,
           CASE WHEN NOT o_nanp OR NOT t_nanp THEN 9 WHEN same_npa THEN 1 WHEN same_state THEN 2
                ELSE coalesce(state_band, 9) END AS band,
           0 AS other_cents,
           CASE
             WHEN direction = 'internal' THEN 'S:internal call (no carrier service)'
             WHEN direction IS NULL OR direction NOT IN ('inbound', 'outbound') THEN
                  'R:direction ' || coalesce('''' || direction || '''', 'missing')
                  || ' is not inbound, outbound or internal'
             WHEN NOT answered THEN 'S:not answered'
             WHEN t_s IS NULL THEN 'R:the call has no start time'
             WHEN site_no IS NULL THEN
                  'R:no site of ' || $entp || '/' || $corp || ' takes trunk '''
                  || trunk || ''' (and none is for any trunk)'
             WHEN far_e IS NULL AND inbound AND coalesce(trim(calling_raw), '') = '' THEN
                  'R:the calling number is withheld'
             WHEN far_e IS NULL AND inbound THEN
                  'R:calling number ''' || calling_raw || ''' is not E.164/NANP'
             WHEN far_e IS NULL THEN
                  'R:called number ''' || coalesce(called_raw, '') || ''' is not E.164/NANP'
             WHEN far_cc IS NULL THEN 'R:' || far_e || ' has no known country calling code'
             WHEN o_cc IS NULL OR t_cc IS NULL THEN
                  'R:the site''s main number has no known country calling code'
           END AS verdict0
      FROM c6),
{PRICE_SQL}
SELECT rid, verdict, t_s AS gmt_s, t_s + offset_s AS lst_s, billing_id, service_loc_id,
       CASE WHEN toll_free THEN 'T' ELSE profile_product END AS product,
       CASE WHEN NOT inbound THEN site_access
            WHEN toll_free AND site_access = '4' THEN 'B'
            WHEN toll_free THEN '10' ELSE site_access END AS access_code,
       CASE WHEN inbound THEN '1' ELSE '0' END AS in_out,
       use_cd,
       CASE WHEN NOT t_nanp AND t_cc = '52' THEN '3' WHEN canada THEN '1'
            WHEN o_nanp AND t_nanp AND use_cd = '1' THEN coalesce(territory, '')
            ELSE '' END AS subusage,
       CASE WHEN inbound THEN CAST(band AS VARCHAR) ELSE ('ABCDEFGHI')[band] END AS range,
       o_country_cd AS orig_country_cd, o_npa AS orig_npa, o_nxx AS orig_nxx,
       o_routing_cd AS orig_routing_cd, o_city AS orig_city, o_state AS orig_state,
       o_country_name AS orig_country_name,
       t_country_cd AS term_country_cd, t_npa AS term_npa, t_nxx AS term_nxx,
       t_routing_cd AS term_routing_cd, t_city AS term_city, t_state AS term_state,
       t_country_name AS term_country_name,
       CASE WHEN o_nanp THEN orig_e[3:] ELSE orig_e[2:] END AS orig_number,
       CASE WHEN t_nanp THEN term_e[3:] ELSE term_e[2:] END AS term_number,
       CASE WHEN dial_e[1:2] = '+1' THEN dial_e[3:] ELSE dial_e[2:] END AS dialed_number,
       CASE WHEN toll_free THEN tollfree_raw ELSE '' END AS tollfree,
       left(account, 16) AS idacc,
       CASE WHEN inbound AND toll_free AND site_access = '4' THEN '12'
            WHEN NOT inbound AND site_access = '4' THEN '21' ELSE '11' END AS axs_term_cd,
       currency AS currency_cd,
       greatest(1, (seconds + 5) // 6) AS duration_tenths,
       amount_cents, net_cents, tax_cents, intl_s AS intl_cents
  FROM judged
 ORDER BY t_s NULLS LAST, rid
"""


@functools.cache
def rerating_sql() -> str:
    """Steps 5-7 over stored rows (``stored``: ``rid``, ``other_cents`` and the
    ``in_out``, ``use_cd``, ``duration``, ``lst``, country and number columns)."""
    far = "CASE WHEN in_out = '1' THEN {o} ELSE {t} END"
    country = far.format(o="orig_country_cd", t="term_country_cd")
    number = far.format(o="orig_number", t="term_number")
    return f"""
WITH
stored0 AS (
    SELECT rid, in_out = '1' AS inbound, CASE WHEN in_out = '1' THEN 'in' ELSE 'out' END AS dir,
           CAST(use_cd AS VARCHAR) AS use_cd, CAST(duration * 10 AS BIGINT) * 6 AS seconds,
           CAST(lst AS DATE) AS local_date, {RATE_SQL.format(d="lst")} AS period,
           CAST({country} AS VARCHAR) <> '{ref.NANP_COUNTRY_CD}' AS far_abroad,
           '+' || CASE WHEN CAST({country} AS VARCHAR) = '{ref.NANP_COUNTRY_CD}' THEN '1'
                       ELSE '' END || CAST({number} AS VARCHAR) AS far_e,
           other_cents, CAST(NULL AS VARCHAR) AS verdict0
      FROM stored),
classified AS (SELECT *, far_e[2:] AS far_digits FROM stored0),
{PRICE_SQL}
SELECT rid, verdict, currency AS currency_cd, amount_cents, net_cents, tax_cents,
       intl_s AS intl_cents
  FROM judged ORDER BY rid
"""


# -- the bulk rating's statements: one per kind of distinct value ------------------------

#: the statements of :mod:`.rating_bulk`, by what they compute; each reads one small
#: registered table of distinct values (and the tariff and geography tables):
#:
#: * ``trunks``: ``trunks_in`` (trunk) -> trunk, site_no;
#: * ``numbers``: ``pairs`` (pos, x, site_no) -> pos, e, gk (numbers that normalize);
#: * ``places``: ``gks`` (gk) -> the place of each, ordered by gk;
#: * ``clocks``: ``quarters_in`` (site_no, q) -> site_no, q, offset_s, period, local_date;
#: * ``days``: ``dates_in`` (local_date) -> local_date, plan_id, profile_product,
#:   discount_bp;
#: * ``rates``: ``wanted`` (wk, plan_id, far_key, dir, use_cd, period) -> wk, rate_no.
BULK_STATEMENTS: dict[str, str] = {
    "trunks": _trunk_sql("trunks_in"),
    "numbers": f"""WITH {_norm_ctes("n.pos", "pairs n JOIN site_t s USING (site_no)")}
SELECT k AS pos, e, gk FROM norm""",
    "places": f"""WITH {_geo_ctes("gks")}
SELECT gk, nanp, npa, nxx, cc, country_cd, country_name, city, state, routing_cd, canada,
       terr, terr_pos
  FROM geo ORDER BY gk""",
    "clocks": f"""WITH quarters AS ({_quarters_sql("quarters_in")})
SELECT site_no, q, {_CLOCK_COLUMNS} FROM quarters""",
    "days": _DAYS_SQL.format(days="dates_in"),
    "rates": f"""WITH {_MATCH_SQL}
SELECT w.wk, b.rate_no
  FROM wanted w LEFT JOIN best b
    ON b.plan_id = w.plan_id AND b.far_key = w.far_key AND b.dir = w.dir
   AND b.use_cd = w.use_cd AND b.period = w.period""",
}
