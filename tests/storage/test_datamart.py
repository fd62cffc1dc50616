"""The datamart schema (PROTOCOL.md section 8), its migrations, the partition map and
the bulk load: keys, dimension rows, order by corp, errors, row-group skipping."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starwrs.storage.datamart import reference as ref
from starwrs.storage.datamart.load import RATE_SQL
from starwrs.storage.datamart.partitions import (
    PartitionMap,
    PartitionMapError,
    default_partition,
    partition_path,
    read_partition_map,
    write_partition_map,
)
from starwrs.storage.datamart.schema import (
    DIMENSIONS,
    SCHEMA_VERSION,
    DatamartSchemaError,
    migrate,
    schema_version,
)
from starwrs.storage.datamart.store import (
    LoadError,
    PartitionBusy,
    compact,
    load_calls,
    open_datamart,
    open_partition,
)


def scaled(examples: int) -> int:
    """As tests/conftest.py: full size under the ``ci`` Hypothesis profile."""
    return examples if settings.default.derandomize else max(20, examples // 10)


#: PROTOCOL.md section 8's dimension names, verbatim
SECTION_8 = [
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
]

#: every Appendix H perspective_base column, under this schema's names
FACT = [
    "billing_corp_key",
    "gmt_key",
    "lst_key",
    "product_key",
    "access_type_key",
    "orig_geo_key",
    "report_geo_key",
    "term_geo_key",
    "tollfree_key",
    "idacc_key",
    "card_key",
    "vos_key",
    "usage_key",
    "pay_phone_cd",
    "line_speed",
    "dialed_number",
    "term_number",
    "orig_number",
    "report_number",
    "evs_product_cd",
    "pricing_method",
    "product_time",
    "directory_assist",
    "range",
    "ncr_ind",
    "cell_phone_cd",
    "conf_call_id",
    "cross_corp_ind",
    "non_cross_corp_id",
    "enhance_call_rto",
    "realtime_ani",
    "nct_id",
    "nct_call_log",
    "duration",
    "currency_cd",
    "amount",
    "nosurcharge_amt",
    "tax",
    "ncr_surcharge",
    "intl_surcharge",
    "realtime_ani_surcharge",
    "payphone_surcharge",
    "product_duration",
    "product_usage",
    "axs_term_ind",
    "bill_period",
    "axs_term_cd",
]

REQUEST = [
    "request_id",
    "msg_desc",
    "unique_fname",
    "report_dir",
    "format_dir",
    "inbox_dir",
    "inbox_fname",
    "inbox_fsize",
    "entpid",
    "userid",
    "stdrptid",
    "userptid",
    "compress",
    "threshold",
    "subtotal",
    "totalmode",
    "nrl_totals",
    "format_columns",
    "sort_columns",
    "error_code",
    "error_desc",
    "rpmgr_columns",
]


@pytest.fixture
def con(tmp_path: Path) -> Any:
    connection = open_partition(tmp_path, 1)
    yield connection
    connection.close()


def columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_catalog = current_database() AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return dict(rows)


def calls(
    n: int, *, corps: tuple[str, ...] = ("90000003",), seed: int = 0, **over: Any
) -> dict[str, Any]:
    """A small hand-made batch of priced calls (natural form, dict of numpy arrays)."""
    rng = np.random.default_rng(seed)
    corp = np.array(corps)[rng.integers(0, len(corps), n)]
    inbound = rng.random(n) < 0.3
    abroad = ~inbound & (rng.random(n) < 0.1)
    gmt = np.datetime64("1998-06-01T00:00:00") + rng.integers(0, 61 * 86400, n).astype(
        "timedelta64[s]"
    )
    npa = rng.choice([719, 212, 303], n)
    batch: dict[str, Any] = {
        "enterprise_id": np.full(n, "00022924"),
        "corp_id": corp,
        "billing_id": np.char.add("Y", rng.choice(["3000001", "3000002"], n)),
        "service_loc_id": np.char.add("N", rng.choice(["3100001", "3100002"], n)),
        "corporate_name": np.char.add("Corp ", corp),
        "gmt": gmt,
        "lst": gmt - np.timedelta64(6, "h"),
        "product": np.where(inbound, "T", "S"),
        "access_code": np.where(inbound, "B", "4"),
        "in_out": np.where(inbound, "1", "0"),
        "use_cd": np.full(n, "1"),
        "range": np.where(inbound, "3", "C"),
        "orig_country_cd": np.full(n, "001"),
        "orig_npa": npa,
        "orig_nxx": np.full(n, 535),
        "orig_city": np.full(n, "SOMEWHERE"),
        "orig_state": np.full(n, "CO"),
        "term_country_cd": np.where(abroad, "044", "001"),
        "term_npa": np.where(abroad, None, 212),
        "term_nxx": np.where(abroad, None, 478),
        "term_city": np.full(n, "NEW YORK"),
        "term_state": np.full(n, "NY"),
        "orig_number": npa * 10_000_000 + 5_355_100,
        "term_number": np.where(abroad, 442071234567, 2124786783),
        "dialed_number": np.where(inbound, 8007243624, 2124786783),
        "tollfree": np.where(inbound, "8007243624", ""),
        "idacc": np.where(rng.random(n) < 0.5, "MARKETING", ""),
        "duration": rng.integers(1, 600, n) / 10,
        "amount": rng.integers(1, 10_000, n) / 100,
    }
    batch.update(over)
    return batch


# -- schema ------------------------------------------------------------------------------


def test_every_table_of_section_8_exists(con: duckdb.DuckDBPyConnection) -> None:
    tables = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_catalog = current_database()"
        ).fetchall()
    }
    assert tuple(SECTION_8) == DIMENSIONS
    assert len(SECTION_8) == 27
    assert (
        set(SECTION_8) | {"perspective_base", "request", "req_status", "schema_version"} == tables
    )


def test_fact_columns_and_types(con: duckdb.DuckDBPyConnection) -> None:
    fact = columns(con, "perspective_base")
    assert set(FACT) <= set(fact)
    assert fact["duration"] == fact["product_duration"] == "DECIMAL(7,1)"
    for money in ("amount", "nosurcharge_amt", "tax", "ncr_surcharge", "intl_surcharge",
                  "realtime_ani_surcharge", "payphone_surcharge", "product_usage"):  # fmt: skip
        assert fact[money] == "DECIMAL(9,2)", money
    assert next(iter(fact)) == "corp_id"  # ours: the sort key


def test_dimension_columns_of_section_8(con: duckdb.DuckDBPyConnection) -> None:
    for table in ("gmt", "lst"):
        assert {"time_key", "datetime", "year", "month", "week", "day_of_month", "day_of_week",
                "hour", "minute", "rate"} <= set(columns(con, table))  # fmt: skip
        assert columns(con, table)["datetime"] == "TIMESTAMP"
    assert "in_out" in columns(con, "access_type")
    hierarchy = {"enterprise_id", "corporate_id", "billing_id", "service_loc_id"}
    names = {"enterprise_name", "corporate_name", "billing_name", "serv_loc_name"}
    assert hierarchy | names <= set(columns(con, "billing_corp"))
    for table in ("orig_geo", "term_geo", "report_geo"):
        assert {
            "geo_key",
            "country_cd",
            "npa",
            "nxx",
            "city_name",
            "state_cd",
            "country_name",
        } <= set(columns(con, table))
    assert set(REQUEST) == set(columns(con, "request"))
    assert list(columns(con, "req_status")) == ["request_id", "status", "priority", "starttime"]


def test_reference_rows_are_the_seeds(con: duckdb.DuckDBPyConnection) -> None:
    access = con.execute("SELECT access_code, access_value, in_out FROM access_type").fetchall()
    codes = {c for c, _v, _io in access}
    assert codes == {str(n) for n in range(1, 11)} | set("ABCD")
    assert ("2", "DIAL-1", "0") in access
    assert ("B", "800 DEDICATED LINE", "1") in access
    assert not [
        a for a in access if a[1] and a[1].startswith("800 ") and a[2] == "0" and a[0] != "5"
    ]
    assert con.execute(
        "SELECT unique_access_value FROM access_type WHERE access_code = '2' AND in_out = '0'"
    ).fetchone() == ("DIAL-10",)
    usage = dict(con.execute("SELECT DISTINCT use_cd, use_desc FROM usage").fetchall())
    assert usage == dict(ref.USAGE)
    assert usage["7"] == "800 INTL-INBOUND"
    assert {r[0] for r in con.execute("SELECT range FROM range WHERE in_out = '1'").fetchall()} == {
        str(n) for n in range(1, 10)
    }
    assert con.execute(
        "SELECT pay_phone_description FROM pay_phone WHERE pay_phone_cd = 'P'"
    ).fetchone() == ("Payphone",)
    assert con.execute("SELECT vos_cd_desc FROM vos WHERE vos_cd = 'P' LIMIT 1").fetchone() == (
        "PER TO PER",
    )
    assert con.execute("SELECT ncr_ind_desc FROM ncr WHERE ncr_ind = 'A'").fetchone() == (
        "INTERSWITCH DTO",
    )
    assert con.execute(
        "SELECT cell_phone_desc FROM cell_phone WHERE cell_phone_cd = 'R'"
    ).fetchone() == ("ROAMED CALL",)
    assert con.execute("SELECT currency_desc FROM currency WHERE currency_cd = 'USA'").fetchone()
    assert con.execute(
        "SELECT range_value FROM duration_range ORDER BY low_end LIMIT 1"
    ).fetchone() == ("0.0 to 0.1",)
    assert con.execute(
        "SELECT range_value FROM amount_range ORDER BY low_end LIMIT 1"
    ).fetchone() == ("0.00 to 0.10",)
    assert con.execute(
        "SELECT access_term_value FROM access_term WHERE acc_term_cd = '12'"
    ).fetchone() == ("S->D",)


def test_migrations_are_idempotent(tmp_path: Path) -> None:
    first = open_partition(tmp_path, 2)
    counts = {t: first.execute(f"SELECT count(*) FROM {t}").fetchone() for t in DIMENSIONS}
    assert migrate(first) == SCHEMA_VERSION == schema_version(first)
    first.close()
    again = open_partition(tmp_path, 2)
    assert schema_version(again) == SCHEMA_VERSION
    assert {t: again.execute(f"SELECT count(*) FROM {t}").fetchone() for t in DIMENSIONS} == counts
    again.execute("UPDATE schema_version SET version = version + 1")
    again.close()
    with pytest.raises(DatamartSchemaError, match="newer"):
        open_partition(tmp_path, 2)


def test_the_code_columns_compare_like_text(con: duckdb.DuckDBPyConnection) -> None:
    load_calls(con, calls(50))
    assert con.execute(
        "SELECT count(*) FROM perspective_base WHERE range = ?", ["Z"]
    ).fetchone() == (0,)
    inbound = con.execute(
        "SELECT count(*) FROM perspective_base WHERE range IN (?, ?)", ["3", "9"]
    ).fetchone()
    joined = con.execute(
        "SELECT count(*) FROM perspective_base p JOIN range r ON r.range = p.range"
        " WHERE r.in_out = '1'"
    ).fetchone()
    assert inbound == joined


# -- partitions ---------------------------------------------------------------------------


def test_partition_map_round_trip_and_default(tmp_path: Path) -> None:
    assert read_partition_map(tmp_path) == PartitionMap(2, {})
    assert {default_partition(c, 2) for c in ("90000003", "90000004")} == {1, 2}
    assert default_partition("CORPX", 3) in {1, 2, 3}
    pmap = PartitionMap()
    pmap.assign("90000003", 1)
    pmap.assign("91000001", 3)
    write_partition_map(tmp_path, pmap)
    again = read_partition_map(tmp_path)
    assert again == PartitionMap(3, {"90000003": 1, "91000001": 3})
    assert again.partition_of("90000003") == 1
    assert partition_path(tmp_path, 2) == tmp_path / "datamart" / "ods2.duckdb"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"partitions": 0}',
        '{"partitions": 2, "corps": {"1": 3}}',
        '{"partitions": true}',
    ],
)
def test_a_bad_partition_map_is_one_clear_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "datamart").mkdir()
    (tmp_path / "datamart" / "partitions.json").write_text(text)
    with pytest.raises(PartitionMapError) as info:
        read_partition_map(tmp_path)
    assert "\n" not in str(info.value)


def test_a_partition_held_by_another_process_is_busy(tmp_path: Path) -> None:
    open_partition(tmp_path, 1).close()
    path = partition_path(tmp_path, 1)
    code = (
        f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('ready', flush=True);"
        " sys.stdin.read()"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdin is not None
        assert holder.stdout is not None
        try:
            assert holder.stdout.readline().strip() == "ready"
            with pytest.raises(PartitionBusy, match="in use"):
                open_partition(tmp_path, 1)
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)


# -- the load -----------------------------------------------------------------------------


def test_load_resolves_every_key_and_adds_dimension_rows(con: duckdb.DuckDBPyConnection) -> None:
    batch = calls(400, corps=("90000003", "90000004"))
    result = load_calls(con, batch)
    assert result.rows == 400
    assert result.dimension_rows > 0
    joined = con.execute(
        """SELECT count(*), sum(p.amount) FROM perspective_base p
           JOIN billing_corp b USING (billing_corp_key) JOIN gmt g ON g.time_key = p.gmt_key
           JOIN lst l ON l.time_key = p.lst_key JOIN product USING (product_key)
           JOIN access_type USING (access_type_key) JOIN orig_geo o ON o.geo_key = p.orig_geo_key
           JOIN term_geo t ON t.geo_key = p.term_geo_key
           JOIN report_geo r ON r.geo_key = p.report_geo_key
           JOIN tollfree USING (tollfree_key) JOIN idacc USING (idacc_key)
           JOIN card USING (card_key)
           JOIN vos USING (vos_key) JOIN usage USING (usage_key) JOIN pay_phone USING (pay_phone_cd)
           JOIN data_stream USING (line_speed) JOIN range USING (range)
           JOIN currency USING (currency_cd)
           JOIN access_term a ON a.acc_term_cd = p.axs_term_cd
           WHERE b.corporate_id = p.corp_id"""
    ).fetchone()
    assert joined == (
        400,
        Decimal(str(round(float(np.sum(batch["amount"])), 2))).quantize(Decimal("0.01")),
    )
    # inbound calls report the caller, outbound the called number
    assert con.execute(
        "SELECT count(*) FROM perspective_base JOIN access_type USING (access_type_key)"
        " WHERE report_number <> CASE WHEN in_out = '1' THEN orig_number ELSE term_number END"
    ).fetchone() == (0,)
    assert con.execute(
        "SELECT count(*) FROM perspective_base p JOIN tollfree USING (tollfree_key)"
        " JOIN access_type USING (access_type_key) WHERE in_out = '1' AND tollfree <> '8007243624'"
    ).fetchone() == (0,)
    # a second load of the same calls adds facts, no dimension rows
    again = load_calls(con, batch)
    assert again.rows == 400
    assert again.dimension_rows == 0


def test_time_rows_follow_the_seed(con: duckdb.DuckDBPyConnection) -> None:
    gmt = np.array(["1998-01-01T00:01:30"], dtype="datetime64[s]")
    load_calls(con, calls(1, gmt=gmt, lst=gmt))
    row = con.execute(
        "SELECT time_key, time_description, year, month, week, day_of_month, day_of_week, hour,"
        " minute, rate, datetime FROM gmt"
    ).fetchone()
    assert row == (
        (dt.datetime(1998, 1, 1, 0, 1) - dt.datetime(1970, 1, 1)) // dt.timedelta(minutes=1),
        "Thursday, January 1, 1998 00:01", "1998", "January", 1, 1, "Thursday", 0, 1, "7",
        dt.datetime(1998, 1, 1, 0, 1),
    )  # fmt: skip
    assert con.execute("SELECT bill_period FROM perspective_base").fetchone() == (198,)


def test_a_densely_used_day_gets_all_its_minutes(con: duckdb.DuckDBPyConnection) -> None:
    from starwrs.storage.datamart.load import DENSE_DAY_MINUTES

    day = np.datetime64("1998-06-03T00:00:00")
    dense = day + (np.arange(DENSE_DAY_MINUTES) * 60 + 7).astype("timedelta64[s]")
    sparse = np.array(["1998-06-05T10:15:00", "1998-06-05T23:59:59"], dtype="datetime64[s]")
    gmt = np.concatenate([dense, sparse])
    first = load_calls(con, calls(len(gmt), gmt=gmt, lst=gmt))
    per_day = dict(
        con.execute("SELECT CAST(datetime AS DATE), count(*) FROM gmt GROUP BY 1").fetchall()
    )
    assert per_day == {dt.date(1998, 6, 3): 1440, dt.date(1998, 6, 5): 2}
    assert con.execute(
        "SELECT time_description, rate FROM gmt WHERE datetime = TIMESTAMP '1998-06-03 23:59'"
    ).fetchone() == ("Wednesday, June 3, 1998 23:59", "3")
    # the day's other minutes are there: a later load of them adds no time rows
    late = np.array(["1998-06-03T23:30:00"], dtype="datetime64[s]")
    again = load_calls(con, calls(1, gmt=late, lst=late))
    assert con.execute("SELECT count(*) FROM gmt").fetchone() == (1442,)
    assert first.dimension_rows > again.dimension_rows
    assert con.execute(
        "SELECT count(*) FROM perspective_base p JOIN gmt g ON g.time_key = p.gmt_key"
    ).fetchone() == (len(gmt) + 1,)


def test_geo_rows_and_keys(con: duckdb.DuckDBPyConnection) -> None:
    load_calls(con, calls(200, term_routing_cd=np.full(200, 20)))
    place = con.execute(
        "SELECT geo_key, npa, nxx, city_name, state_cd, level FROM orig_geo WHERE npa = '719'"
    ).fetchone()
    assert place == (1_719_535, "719", "535", "SOMEWHERE", "CO", 5)
    abroad = con.execute(
        "SELECT geo_key, country_cd, npa, routing_cd, level FROM term_geo WHERE country_cd = '044'"
    ).fetchone()
    assert abroad == (44_000_020, "044", None, 20, 3)


def test_load_is_ordered_by_corp(con: duckdb.DuckDBPyConnection) -> None:
    load_calls(con, calls(3000, corps=("90000004", "90000003", "91000001")))
    load_calls(con, calls(1000, corps=("90000001",), seed=2))
    stored = [
        r[0] for r in con.execute("SELECT corp_id FROM perspective_base ORDER BY rowid").fetchall()
    ]
    first = stored[:3000]
    assert first == sorted(first)
    assert stored[3000:] == ["90000001"] * 1000
    keys = con.execute(
        "SELECT corp_id, gmt_key FROM perspective_base ORDER BY rowid LIMIT 3000"
    ).fetchall()
    assert keys == sorted(keys)
    assert compact(con) == 4000
    stored = [
        r[0] for r in con.execute("SELECT corp_id FROM perspective_base ORDER BY rowid").fetchall()
    ]
    assert stored == sorted(stored)


def test_a_customer_report_reads_only_its_row_groups(tmp_path: Path) -> None:
    con = open_datamart(tmp_path / "rg.duckdb", row_group_size=2048)
    for n, corp in enumerate(("90000001", "90000002", "90000003", "90000004")):
        load_calls(con, calls(8192, corps=(corp,), seed=n))
    con.execute("CHECKPOINT")
    profile = tmp_path / "profile.json"
    con.execute("PRAGMA enable_profiling = 'json'")
    con.execute(f"PRAGMA profiling_output = '{profile}'")
    count = con.execute(
        "SELECT count(*), sum(amount) FROM perspective_base WHERE corp_id = ?", ["90000003"]
    ).fetchone()
    con.execute("PRAGMA disable_profiling")
    assert count is not None
    assert count[0] == 8192
    scans: list[tuple[int, int]] = []

    def walk(node: dict[str, Any]) -> None:
        if "total_row_groups_to_scan" in node and node.get("total_row_groups_to_scan"):
            scans.append((node["row_groups_scanned"], node["total_row_groups_to_scan"]))
        for child in node.get("children", []):
            walk(child)

    for op in json.loads(profile.read_text())["operator"]:
        walk(op)
    assert scans, "no table scan in the profile"
    scanned, total = scans[0]
    assert total >= 16
    assert scanned <= total // 4 + 1
    con.close()


def test_bad_batches_are_refused_and_nothing_is_written(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(LoadError, match="lack column"):
        load_calls(con, {k: v for k, v in calls(5).items() if k != "amount"})
    with pytest.raises(LoadError, match="range code 'Z'"):
        load_calls(con, calls(5, range=np.full(5, "Z")))
    with pytest.raises(LoadError, match="access type"):
        load_calls(con, calls(5, access_code=np.full(5, "99")))
    with pytest.raises(LoadError, match="inbound only"):
        load_calls(con, calls(5, access_code=np.full(5, "B"), in_out=np.full(5, "0")))
    with pytest.raises(LoadError, match="product"):
        load_calls(con, calls(5, product=np.full(5, "X")))
    with pytest.raises(LoadError, match="schema"):
        load_calls(con, calls(5, amount=np.full(5, 1e12)))
    assert con.execute("SELECT count(*) FROM perspective_base").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM billing_corp").fetchone() == (0,)
    assert load_calls(con, {k: v[:0] for k, v in calls(5).items()}).rows == 0


@settings(max_examples=scaled(40))
@given(
    n=st.integers(1, 300),
    corps=st.lists(
        st.sampled_from(["90000001", "90000003", "91000002", "X7"]),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    seed=st.integers(0, 2**16),
    arrow=st.booleans(),
)
def test_any_batch_loads_whole_and_sorted(n: int, corps: list[str], seed: int, arrow: bool) -> None:
    con = duckdb.connect()  # in memory: the same schema, no file per example
    migrate(con)
    batch = calls(n, corps=tuple(corps), seed=seed)
    cents = int(np.round(batch["amount"] * 100).sum())
    data: Any = pa.table(batch) if arrow else batch
    assert load_calls(con, data).rows == n
    total, count = con.execute(
        "SELECT sum(amount), count(DISTINCT billing_corp_key) FROM perspective_base"
    ).fetchone() or (0, 0)
    assert int(total * 100) == cents
    assert count == len(
        {
            (c, b, s)
            for c, b, s in zip(
                batch["corp_id"], batch["billing_id"], batch["service_loc_id"], strict=True
            )
        }
    )
    keys = con.execute("SELECT corp_id, gmt_key FROM perspective_base ORDER BY rowid").fetchall()
    assert keys == sorted(keys)
    con.close()


@settings(max_examples=scaled(200))
@given(st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2090, 12, 31)))
def test_rate_periods_follow_the_documented_rule(when: dt.datetime) -> None:
    (rate,) = duckdb.execute(
        f"SELECT {RATE_SQL.format(d='d')} FROM (SELECT ?::TIMESTAMP AS d)", [when]
    ).fetchone() or ("",)
    if (when.month, when.day) in ref.HOLIDAYS:
        assert rate == "7"
    elif when.weekday() >= 5:
        assert rate == "4"
    else:
        assert rate == ("1" if 8 <= when.hour <= 16 else "2" if 17 <= when.hour <= 22 else "3")
