"""The datamart's star schema (seed 001 Figure 9, Appendices H and I) in DuckDB.

Theory of operation
-------------------
Each ODS partition is one DuckDB file, ``STATE/datamart/ods<k>.duckdb`` (PROTOCOL.md
section 8).  :func:`migrate` brings a connection's file to the current schema: a
``schema_version`` table holds one row, the number of migration scripts applied; each
pending script of :data:`MIGRATIONS` runs in its own transaction together with the
version bump, so a crash leaves the file at a whole version.  A file newer than the
code is refused.  Running :func:`migrate` again changes nothing.  DuckDB allows one
read-write process per file, so there is no race between processes to guard against.

Names are Appendix H's, lower case.  Where Appendix H's OCR is garbled the obvious name
is used: ``0xx`` -> ``tollfree`` (an identifier cannot start with a digit; so
``0xx_key`` -> ``tollfree_key``), ``ldacc``/``ldaac`` -> ``idacc``, ``lno_speed`` ->
``line_speed``, ``pricing method`` -> ``pricing_method``, ``axs-term-ind`` ->
``axs_term_ind``, ``nrc_surcharge`` -> ``ncr_surcharge`` (it is the NCR surcharge),
``realtime_and_surcharge`` -> ``realtime_ani_surcharge``.  Types: ``char(n)`` ->
``VARCHAR`` (widths are not enforced), ``money(7,2)`` -> ``DECIMAL(9,2)``, durations
``DECIMAL(7,1)`` minutes, ``serial`` keys -> ``INTEGER``.  The fact's fixed code
columns (``range``, ``pay_phone_cd``, ... see :data:`CODE_TYPES`) are DuckDB ENUMs
whose values are exactly their dimension's codes (sorted, so they sort as text): one
byte a row, a load with an unknown code fails, and they compare, join, ``IN (?, ...)``
and cast like VARCHAR -- comparing with a value that is not a code is simply false (no
error).  A new code needs a migration.  Blank codes are ``''`` and have their own
dimension row, so every code column joins (see ``reference.py``).  Codes and
descriptions come from :mod:`starwrs.storage.datamart.reference`.

The fact table
~~~~~~~~~~~~~~
``perspective_base``: one row per call (the seed's grain).  Key columns
``billing_corp_key``, ``gmt_key``, ``lst_key``, ``product_key``, ``access_type_key``,
``orig_geo_key``, ``term_geo_key``, ``report_geo_key``, ``tollfree_key``,
``idacc_key``, ``card_key``, ``vos_key``, ``usage_key``; code columns that are their
dimension's key: ``pay_phone_cd``, ``line_speed`` (``data_stream``),
``evs_product_cd``, ``directory_assist``, ``range``, ``ncr_ind``, ``cell_phone_cd``,
``conf_call_id``, ``cross_corp_ind`` (``cross_corp.cross_corp_id``), ``nct_id``,
``currency_cd``, ``axs_term_cd`` (``access_term.acc_term_cd``); numbers
``dialed_number``, ``orig_number``, ``term_number``, ``report_number`` (digits in
international form without prefix: ten in World Zone 1, country code + national
number abroad; VARCHAR stored uncompressed, like the seed's char(10)); other
attributes ``pricing_method``, ``product_time`` (TIME), ``non_cross_corp_id``,
``enhance_call_rto``, ``realtime_ani``, ``nct_call_log``, ``axs_term_ind``,
``bill_period`` (SMALLINT, the seed's MMYY: 698 = June 1998); facts ``duration``,
``product_duration`` (DECIMAL(7,1) minutes), ``amount``, ``nosurcharge_amt``, ``tax``,
``ncr_surcharge``, ``intl_surcharge``, ``realtime_ani_surcharge``,
``payphone_surcharge``, ``product_usage`` (DECIMAL(9,2)).  ``amount`` =
``nosurcharge_amt`` + the four surcharges; ``tax`` is on top.

Ours: ``corp_id`` (VARCHAR, = ``billing_corp.corporate_id`` of the row), the first
column.  Every load inserts its rows sorted by (``corp_id``, ``gmt_key``), so a corp's
rows sit in few row groups and DuckDB's per-row-group min/max (zonemap) skips every
other group for ``WHERE corp_id = ?`` / ``IN (...)``: **a report's SQL always filters
``perspective_base.corp_id``**, besides joining ``billing_corp`` for the lower levels.
:func:`starwrs.storage.datamart.store.compact` re-sorts the whole table after many
small loads.  The fact table has no primary key or index (loads are appends).

Direction: ``access_type.in_out`` is ``'1'`` for an inbound call (toll free, charged to
the called corp) and ``'0'`` for outbound.  ``report_number``/``report_geo_key`` are the
far end from the customer's side: the caller (``orig``) of an inbound call, the called
number (``term``) of an outbound one (the seed's example: an 800 call from 719-535-5100
reports 7195355100).

The dimensions (key first)
~~~~~~~~~~~~~~~~~~~~~~~~~~
* ``access_type`` (``access_type_key`` SMALLINT = ordinal 1-14 of the code, +100 for
  inbound): ``unique_access_value`` (value + in_out, the seed's ``DIAL-10``), ``level``,
  ``access_code`` (1-10, A-D), ``access_value``, ``av_long_desc``, ``in_out``.
* ``access_term`` (``acc_term_cd`` 11/12/21/22): ``access_term_value`` (S->S ...), ``level``.
* ``billing_corp`` (``billing_corp_key`` INTEGER, assigned by the load): one row per
  service location (``level`` 4) holding its whole hierarchy: ``entp_corp_bill_serv_combo``
  (UNIQUE, ``enterprise_corp_billing_serviceloc`` as the seed's example),
  ``enterprise_id``, ``corporate_id``, ``billing_id``, ``service_loc_id``,
  ``enterprise_name``, ``corporate_name``, ``billing_name``, ``serv_loc_name``,
  ``serv_corp_name`` (``MCI``).
* ``tollfree`` (``tollfree_key``; 0 = not a toll-free call): ``tollfree`` (the 800/888
  number, UNIQUE), ``level``.
* ``card`` (``card_key``; 0 = no card): ``card_number`` (UNIQUE), ``level``,
  ``starcad_code``, ``translation``.
* ``idacc`` (``idacc_key``; 0 = none): ``idacc_description`` (UNIQUE, ``corp_id_idacc``),
  ``level``, ``idacc`` (the code the customer dialled, e.g. ``MARKETING``); ours
  ``corporate_id`` (ID/accounting codes are per corp).
* ``data_stream`` (``line_speed``; '' = voice), ``level``.
* ``pay_phone`` (``pay_phone_cd`` P or ''): ``pay_phone_description``, ``level``.
* ``gmt`` and ``lst`` (``time_key`` = minutes since 1970-01-01 00:00 of ``datetime``,
  so the key is computed, never looked up): one row per minute that has calls, in GMT
  resp. the switch's local wall time: ``time_description`` ("Thursday, January 1, 1998
  00:01"), ``current_ind`` (Y), ``resolution`` (minute), ``sequence`` (minute of the
  day, 1-1440), ``seq_in_year`` (minute of the year, from 1), ``year`` ('1998'),
  ``month`` ('January'), ``week`` (1-54, weeks start on Sunday), ``rate`` (rate period,
  see ``reference.RATE_PERIODS``), ``day_of_month``, ``day_of_week`` ('Thursday'),
  ``hour``, ``minute``, ``datetime`` (TIMESTAMP); ours: ``month_no`` (1-12), ``dow_no``
  (ISO, 1 = Monday .. 7 = Sunday), ``date`` (DATE).
* ``product`` (``product_key`` '0010' ...): ``product_name``, ``level``, ``product_abv``
  (the ARD's PRODUCT letter V/S/C/T/H).
* ``orig_geo``, ``term_geo``, ``report_geo`` (``geo_key`` INTEGER = country code *
  1 000 000 + NPA * 1000 + NXX for North America, country code * 1 000 000 + routing
  code elsewhere; computed, never looked up): ``geo_description``, ``level`` (5 = an
  NPA-NXX, 3 = a foreign city, 1 = a country), ``country_cd`` ('001' = World Zone 1,
  '044' ...), ``npa``, ``nxx``, ``routing_cd``, ``trunk``, ``switch``, ``city_name``,
  ``state_cd``, ``country_name``.  North American rows carry the ``phonenumbers``
  geocoder's city and state (upper case).
* ``usage`` (``usage_key`` SMALLINT = use_cd * 100 + sub-usage ordinal): ``use_cd``
  (1-7), ``use_desc``, ``subusage`` ('' or 1-9/A/B/C/G/L/V), ``subusage_desc``, ``level``.
* ``evs_product`` (``evs_product_cd`` '' or 30-41): ``evs_product_desc``, ``level``.
* ``directory_assist`` (``directory_assist`` Y/N): ``dir_assist_desc``, ``level``.
* ``range`` (``range`` 1-9 inbound, A-I outbound): ``range_desc``, ``level``; ours
  ``in_out``, ``low_miles``, ``high_miles``.
* ``ncr`` (``ncr_ind`` '', 1-5, A, B): ``ncr_ind_desc``, ``level``.
* ``cell_phone`` (``cell_phone_cd``): ``cell_phone_desc``, ``level``.
* ``vos`` (``vos_key`` SMALLINT; 0 = not operator services): ``vos_cd``, ``vos_cd_desc``,
  ``vos_detail``, ``vos_detail_desc``, ``level``.
* ``conf_call`` (``conf_call_id``): ``conf_call_desc``, ``level``.
* ``cross_corp`` (``cross_corp_id``): ``cross_corp_desc``, ``level``.
* ``currency`` (``currency_cd`` 'USA' ...): ``currency_desc``, ``level``.
* ``nct`` (``nct_id``; '' = not a transfer): ``nct_desc``, ``level``.
* ``amount_range`` (ours: ``amount_range_cd`` '1'-'8') and ``duration_range`` (ours:
  ``duration_range_cd`` '1'-'8', order entry's DURRANGE codes): ``low_end``,
  ``high_end``, ``range_value`` ('0.0 to 0.1'), ``level``; a call is in a band when
  ``low_end < value <= high_end`` (durations and amounts are never 0: a call lasts at
  least 0.1 minute, the billing increment, so "0.0 to 0.1" holds the shortest calls).
  No fact column points at them: join on the value.

Appendix I
~~~~~~~~~~
``request`` (``request_id`` INTEGER PRIMARY KEY and the seed's columns ``msg_desc``,
``unique_fname``, ``report_dir``, ``format_dir``, ``inbox_dir``, ``inbox_fname``,
``inbox_fsize``, ``entpid``, ``userid``, ``stdrptid``, ``userptid``, ``compress``,
``threshold``, ``subtotal``, ``totalmode``, ``nrl_totals``, ``format_columns``,
``sort_columns``, ``error_code``, ``error_desc``, ``rpmgr_columns``) and ``req_status``
(``request_id``, ``status``, ``priority``, ``starttime`` TIMESTAMP; one row per step, so
a request's history is its rows ordered by ``starttime``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import duckdb
from starwrs.storage.datamart import reference as ref

__all__ = [
    "CODE_TYPES",
    "DIMENSIONS",
    "FACT_COLUMNS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "DatamartSchemaError",
    "migrate",
    "schema_version",
]


class DatamartSchemaError(Exception):
    """The file's schema cannot be brought to the version the code expects."""


#: The 27 dimension tables of Figure 9 (PROTOCOL.md section 8 order).
DIMENSIONS: tuple[str, ...] = (
    "access_type",
    "access_term",
    "billing_corp",
    "tollfree",
    "card",
    "idacc",
    "data_stream",
    "pay_phone",
    "gmt",
    "lst",
    "product",
    "orig_geo",
    "term_geo",
    "report_geo",
    "usage",
    "evs_product",
    "directory_assist",
    "range",
    "ncr",
    "cell_phone",
    "vos",
    "conf_call",
    "cross_corp",
    "currency",
    "nct",
    "amount_range",
    "duration_range",
)

#: Telephone numbers: text (the seed's char(10)), stored uncompressed -- they are nearly
#: all distinct, so compression would cost a load three times the time for little gain.
_NUMBER = "VARCHAR USING COMPRESSION uncompressed"

#: perspective_base's columns and types, in table order.
FACT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("corp_id", "VARCHAR NOT NULL"),
    ("billing_corp_key", "INTEGER NOT NULL"),
    ("gmt_key", "INTEGER NOT NULL"),
    ("lst_key", "INTEGER NOT NULL"),
    ("product_key", "code_product NOT NULL"),
    ("access_type_key", "SMALLINT NOT NULL"),
    ("orig_geo_key", "INTEGER NOT NULL"),
    ("report_geo_key", "INTEGER NOT NULL"),
    ("term_geo_key", "INTEGER NOT NULL"),
    ("tollfree_key", "INTEGER NOT NULL"),
    ("idacc_key", "INTEGER NOT NULL"),
    ("card_key", "INTEGER NOT NULL"),
    ("vos_key", "SMALLINT NOT NULL"),
    ("usage_key", "SMALLINT NOT NULL"),
    ("pay_phone_cd", "code_pay_phone NOT NULL"),
    ("line_speed", "code_data_stream NOT NULL"),
    ("dialed_number", _NUMBER),
    ("term_number", _NUMBER),
    ("orig_number", _NUMBER),
    ("report_number", _NUMBER),
    ("evs_product_cd", "code_evs_product NOT NULL"),
    ("pricing_method", "code_pricing_method"),
    ("product_time", "TIME"),
    ("directory_assist", "code_directory_assist NOT NULL"),
    ("range", "code_range NOT NULL"),
    ("ncr_ind", "code_ncr NOT NULL"),
    ("cell_phone_cd", "code_cell_phone NOT NULL"),
    ("conf_call_id", "code_conf_call NOT NULL"),
    ("cross_corp_ind", "code_cross_corp NOT NULL"),
    ("non_cross_corp_id", "VARCHAR"),
    ("enhance_call_rto", "VARCHAR"),
    ("realtime_ani", "VARCHAR"),
    ("nct_id", "VARCHAR NOT NULL"),
    ("nct_call_log", "code_nct_call_log"),
    ("duration", "DECIMAL(7,1) NOT NULL"),
    ("currency_cd", "code_currency NOT NULL"),
    ("amount", "DECIMAL(9,2) NOT NULL"),
    ("nosurcharge_amt", "DECIMAL(9,2) NOT NULL"),
    ("tax", "DECIMAL(9,2) NOT NULL"),
    ("ncr_surcharge", "DECIMAL(9,2) NOT NULL"),
    ("intl_surcharge", "DECIMAL(9,2) NOT NULL"),
    ("realtime_ani_surcharge", "DECIMAL(9,2) NOT NULL"),
    ("payphone_surcharge", "DECIMAL(9,2) NOT NULL"),
    ("product_duration", "DECIMAL(7,1) NOT NULL"),
    ("product_usage", "DECIMAL(9,2) NOT NULL"),
    ("axs_term_ind", "code_access_term"),
    ("bill_period", "SMALLINT NOT NULL"),
    ("axs_term_cd", "code_access_term NOT NULL"),
)


def _lit(value: object) -> str:
    """An SQL literal of one of our own constants (never of customer input)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("'", "''")
    return f"'{text}'"


#: ENUM types of the fact's code columns: name -> values (sorted, so that ORDER BY on
#: a code column sorts as text).  Each holds exactly its dimension's codes.
CODE_TYPES: dict[str, tuple[str, ...]] = {
    name: tuple(sorted(values))
    for name, values in {
        "code_product": [k for k, _n, _a in ref.PRODUCTS],
        "code_pay_phone": [c for c, _ in ref.PAY_PHONE],
        "code_data_stream": list(ref.LINE_SPEEDS),
        "code_evs_product": [c for c, _ in ref.EVS_PRODUCTS],
        "code_pricing_method": list(ref.PRICING_METHODS),
        "code_directory_assist": [c for c, _ in ref.DIRECTORY_ASSIST],
        "code_range": [str(n) for n in range(1, 10)] + list("ABCDEFGHI"),
        "code_ncr": [c for c, _ in ref.NCR],
        "code_cell_phone": [c for c, _ in ref.CELL_PHONE],
        "code_conf_call": [c for c, _ in ref.CONF_CALL],
        "code_cross_corp": [c for c, _ in ref.CROSS_CORP],
        "code_nct_call_log": list(ref.NCT_CALL_LOGS),
        "code_currency": [c for c, _ in ref.CURRENCIES],
        "code_access_term": [c for c, _ in ref.ACCESS_TERMS],
    }.items()
}

_TIME_COLUMNS = """
    time_key         INTEGER PRIMARY KEY,
    time_description VARCHAR NOT NULL,
    current_ind      VARCHAR NOT NULL,
    resolution       VARCHAR NOT NULL,
    sequence         SMALLINT NOT NULL,
    seq_in_year      INTEGER NOT NULL,
    year             VARCHAR NOT NULL,
    month            VARCHAR NOT NULL,
    week             SMALLINT NOT NULL,
    rate             VARCHAR NOT NULL,
    day_of_month     SMALLINT NOT NULL,
    day_of_week      VARCHAR NOT NULL,
    hour             SMALLINT NOT NULL,
    minute           SMALLINT NOT NULL,
    datetime         TIMESTAMP NOT NULL,
    month_no         SMALLINT NOT NULL,
    dow_no           SMALLINT NOT NULL,
    date             DATE NOT NULL
"""

_GEO_COLUMNS = """
    geo_key         INTEGER PRIMARY KEY,
    geo_description VARCHAR NOT NULL,
    level           SMALLINT NOT NULL,
    country_cd      VARCHAR,
    npa             VARCHAR,
    nxx             VARCHAR,
    routing_cd      SMALLINT,
    trunk           VARCHAR,
    switch          VARCHAR,
    city_name       VARCHAR,
    state_cd        VARCHAR,
    country_name    VARCHAR
"""


def _code_table(name: str, key: str, desc: str) -> str:
    return (
        f"CREATE TABLE {name} ({key} VARCHAR PRIMARY KEY, {desc} VARCHAR NOT NULL, "
        "level SMALLINT NOT NULL);\n"
    )


_DDL_1 = (
    "".join(
        f"CREATE TYPE {name} AS ENUM ({', '.join(_lit(v) for v in values)});\n"
        for name, values in CODE_TYPES.items()
    )
    + "CREATE TABLE perspective_base (\n    "
    + ",\n    ".join(f"{name} {kind}" for name, kind in FACT_COLUMNS)
    + "\n);\n"
    + """
CREATE TABLE access_type (
    access_type_key     SMALLINT PRIMARY KEY,
    unique_access_value VARCHAR,
    level               SMALLINT NOT NULL,
    access_code         VARCHAR NOT NULL,
    access_value        VARCHAR,
    av_long_desc        VARCHAR,
    in_out              VARCHAR NOT NULL CHECK (in_out IN ('0', '1'))
);
CREATE TABLE access_term (
    acc_term_cd       VARCHAR PRIMARY KEY,
    access_term_value VARCHAR,
    level             SMALLINT NOT NULL
);
CREATE TABLE billing_corp (
    billing_corp_key          INTEGER PRIMARY KEY,
    entp_corp_bill_serv_combo VARCHAR NOT NULL UNIQUE,
    level                     SMALLINT NOT NULL,
    enterprise_id             VARCHAR NOT NULL,
    corporate_id              VARCHAR NOT NULL,
    billing_id                VARCHAR,
    service_loc_id            VARCHAR,
    enterprise_name           VARCHAR,
    corporate_name            VARCHAR,
    billing_name              VARCHAR,
    serv_loc_name             VARCHAR,
    serv_corp_name            VARCHAR
);
CREATE TABLE tollfree (
    tollfree_key INTEGER PRIMARY KEY,
    tollfree     VARCHAR NOT NULL UNIQUE,
    level        SMALLINT NOT NULL
);
CREATE TABLE card (
    card_key     INTEGER PRIMARY KEY,
    card_number  VARCHAR NOT NULL UNIQUE,
    level        SMALLINT NOT NULL,
    starcad_code VARCHAR,
    translation  VARCHAR
);
CREATE TABLE idacc (
    idacc_key         INTEGER PRIMARY KEY,
    idacc_description VARCHAR NOT NULL UNIQUE,
    level             SMALLINT NOT NULL,
    idacc             VARCHAR NOT NULL,
    corporate_id      VARCHAR NOT NULL
);
CREATE TABLE data_stream (line_speed VARCHAR PRIMARY KEY, level SMALLINT NOT NULL);
CREATE TABLE pay_phone (
    pay_phone_cd          VARCHAR PRIMARY KEY,
    pay_phone_description VARCHAR NOT NULL,
    level                 SMALLINT NOT NULL
);
"""
    + f"CREATE TABLE gmt ({_TIME_COLUMNS});\nCREATE TABLE lst ({_TIME_COLUMNS});\n"
    + """
CREATE TABLE product (
    product_key  VARCHAR PRIMARY KEY,
    product_name VARCHAR NOT NULL,
    level        SMALLINT NOT NULL,
    product_abv  VARCHAR NOT NULL UNIQUE
);
"""
    + "".join(
        f"CREATE TABLE {t} ({_GEO_COLUMNS});\n" for t in ("orig_geo", "term_geo", "report_geo")
    )
    + """
CREATE TABLE usage (
    usage_key     SMALLINT PRIMARY KEY,
    use_cd        VARCHAR NOT NULL,
    use_desc      VARCHAR NOT NULL,
    subusage      VARCHAR NOT NULL,
    subusage_desc VARCHAR NOT NULL,
    level         SMALLINT NOT NULL
);
"""
    + _code_table("evs_product", "evs_product_cd", "evs_product_desc")
    + _code_table("directory_assist", "directory_assist", "dir_assist_desc")
    + """
CREATE TABLE range (
    range      VARCHAR PRIMARY KEY,
    range_desc VARCHAR NOT NULL,
    level      SMALLINT NOT NULL,
    in_out     VARCHAR NOT NULL,
    low_miles  INTEGER NOT NULL,
    high_miles INTEGER NOT NULL
);
"""
    + _code_table("ncr", "ncr_ind", "ncr_ind_desc")
    + _code_table("cell_phone", "cell_phone_cd", "cell_phone_desc")
    + """
CREATE TABLE vos (
    vos_key         SMALLINT PRIMARY KEY,
    vos_cd          VARCHAR NOT NULL,
    vos_cd_desc     VARCHAR NOT NULL,
    vos_detail      VARCHAR NOT NULL,
    vos_detail_desc VARCHAR NOT NULL,
    level           SMALLINT NOT NULL
);
"""
    + _code_table("conf_call", "conf_call_id", "conf_call_desc")
    + _code_table("cross_corp", "cross_corp_id", "cross_corp_desc")
    + _code_table("currency", "currency_cd", "currency_desc")
    + _code_table("nct", "nct_id", "nct_desc")
    + """
CREATE TABLE amount_range (
    amount_range_cd VARCHAR PRIMARY KEY,
    low_end         DECIMAL(9,2) NOT NULL,
    high_end        DECIMAL(9,2) NOT NULL,
    range_value     VARCHAR NOT NULL,
    level           SMALLINT NOT NULL
);
CREATE TABLE duration_range (
    duration_range_cd VARCHAR PRIMARY KEY,
    low_end           DECIMAL(7,1) NOT NULL,
    high_end          DECIMAL(7,1) NOT NULL,
    range_value       VARCHAR NOT NULL,
    level             SMALLINT NOT NULL
);
CREATE TABLE request (
    request_id     INTEGER PRIMARY KEY,
    msg_desc       VARCHAR,
    unique_fname   VARCHAR,
    report_dir     VARCHAR,
    format_dir     VARCHAR,
    inbox_dir      VARCHAR,
    inbox_fname    VARCHAR,
    inbox_fsize    INTEGER,
    entpid         VARCHAR,
    userid         VARCHAR,
    stdrptid       INTEGER,
    userptid       VARCHAR,
    compress       VARCHAR,
    threshold      INTEGER,
    subtotal       VARCHAR,
    totalmode      VARCHAR,
    nrl_totals     VARCHAR,
    format_columns VARCHAR,
    sort_columns   VARCHAR,
    error_code     INTEGER,
    error_desc     VARCHAR,
    rpmgr_columns  VARCHAR
);
CREATE TABLE req_status (
    request_id INTEGER NOT NULL,
    status     VARCHAR NOT NULL,
    priority   VARCHAR,
    starttime  TIMESTAMP NOT NULL
);
CREATE INDEX req_status_request ON req_status (request_id);
"""
)


def _insert(table: str, rows: Iterable[Sequence[object]]) -> str:
    values = ",\n    ".join("(" + ", ".join(_lit(v) for v in row) + ")" for row in rows)
    return f"INSERT INTO {table} VALUES\n    {values};\n"


def _reference_rows() -> str:
    access: list[tuple[object, ...]] = []
    for n, (code, value, inbound_only) in enumerate(ref.ACCESS_TYPES, start=1):
        for in_out in ("1",) if inbound_only else ("0", "1"):
            unique = (value or code) + in_out
            key = n + (100 if in_out == "1" else 0)
            access.append((key, unique, 1, code, value, None, in_out))
    usage = [
        (ref.usage_key(u, s), u, udesc, s, sdesc, 1)
        for u, udesc in ref.USAGE
        for s, sdesc in ref.SUBUSAGE
    ]
    ranges: list[tuple[object, ...]] = []
    for n, (low, high) in enumerate(ref.DISTANCE_BANDS, start=1):
        label = f"{low} TO {high} MILES" if high < 99999 else f"{low}+ MILES"
        for in_out in ("1", "0"):
            ranges.append((ref.range_code(n, in_out), label, 1, in_out, low, high))
    vos: list[tuple[object, ...]] = [(0, "", ref.VOS_CODES[0][1], "", "", 1)]
    for i, (cd, cd_desc) in enumerate(ref.VOS_CODES[1:], start=1):
        for j, (detail, detail_desc) in enumerate(ref.VOS_DETAILS):
            vos.append((i * 100 + j, cd, cd_desc, detail, detail_desc, 1))
    script = _insert("access_type", access)
    script += _insert("access_term", [(c, v, 1) for c, v in ref.ACCESS_TERMS])
    script += _insert("tollfree", [(0, "", 1)])
    script += _insert("card", [(0, "", 1, None, None)])
    script += _insert("idacc", [(0, "", 1, "", "")])
    script += _insert("data_stream", [(s, 1) for s in ref.LINE_SPEEDS])
    script += _insert("pay_phone", [(c, d, 1) for c, d in ref.PAY_PHONE])
    script += _insert("product", [(k, n, 1, a) for k, n, a in ref.PRODUCTS])
    script += _insert("usage", usage)
    script += _insert("evs_product", [(c, d, 1) for c, d in ref.EVS_PRODUCTS])
    script += _insert("directory_assist", [(c, d, 1) for c, d in ref.DIRECTORY_ASSIST])
    script += _insert("range", ranges)
    script += _insert("ncr", [(c, d, 1) for c, d in ref.NCR])
    script += _insert("cell_phone", [(c, d, 1) for c, d in ref.CELL_PHONE])
    script += _insert("vos", vos)
    script += _insert("conf_call", [(c, d, 1) for c, d in ref.CONF_CALL])
    script += _insert("cross_corp", [(c, d, 1) for c, d in ref.CROSS_CORP])
    script += _insert("currency", [(c, d, 1) for c, d in ref.CURRENCIES])
    script += _insert("nct", [(c, d, 1) for c, d in ref.NCT])
    script += _insert(
        "amount_range",
        [(c, lo, hi, f"{lo:.2f} to {hi:.2f}", 1) for c, lo, hi in ref.AMOUNT_RANGES],
    )
    script += _insert(
        "duration_range",
        [(c, lo, hi, f"{lo:.1f} to {hi:.1f}", 1) for c, lo, hi in ref.DURATION_RANGES],
    )
    return script


#: Migration scripts; script n (1-based) brings the schema to version n.
MIGRATIONS: tuple[str, ...] = (_DDL_1 + _reference_rows(),)
#: The version this code writes and reads.
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The file's schema version (0 for a new, empty file)."""
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database()"
        " AND table_schema = 'main' AND table_name = 'schema_version'"
    ).fetchone()
    if not found or not found[0]:
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply every pending migration, each in its own transaction.

    Returns:
        The schema version now (:data:`SCHEMA_VERSION`).

    Raises:
        DatamartSchemaError: the file is newer than this code, or a script failed
            (the file stays at the version before it).
    """
    version = schema_version(con)
    if version > SCHEMA_VERSION:
        raise DatamartSchemaError(
            f"datamart schema version {version} is newer than this program's {SCHEMA_VERSION}"
        )
    for n in range(version + 1, SCHEMA_VERSION + 1):
        con.execute("BEGIN TRANSACTION")
        try:
            if n == 1:
                con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                con.execute("INSERT INTO schema_version VALUES (0)")
            con.execute(MIGRATIONS[n - 1])
            con.execute("UPDATE schema_version SET version = ?", [n])
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise DatamartSchemaError(f"datamart migration {n} failed: {exc}") from exc
    return SCHEMA_VERSION
