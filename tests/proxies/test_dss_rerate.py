"""The DSS side of ``starwrs admin rerate``: ``replace_period`` swaps a period of a corp's
calls in one guarded, idempotent transaction; the delivered reports that met it are found."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from starwrs.fixtures.datamart import demo_corp_specs, generate_calls
from starwrs.grammar.catalogue_ods import CHECK_MODULUS
from starwrs.proxies.dss import requests as queue
from starwrs.proxies.dss.server import _delivered_reports
from starwrs.proxies.rm.templates import TEMPLATES
from starwrs.storage.datamart.export import (
    export_calls,
    period_tally,
    replace_period,
    write_ipc,
)
from starwrs.storage.datamart.load import LoadError
from starwrs.storage.datamart.store import load_calls, open_datamart

from .test_dss_sql import Request

CORP = "90000003"
JUNE = (dt.date(1998, 6, 1) - dt.date(1970, 1, 1)).days * 1440
JULY = JUNE + 30 * 1440


@pytest.fixture
def mart(tmp_path: Path):  # type: ignore[no-untyped-def]
    con = open_datamart(tmp_path / "ods1.duckdb")
    specs = [demo_corp_specs()[CORP], demo_corp_specs()["90000004"]]
    for batch in generate_calls(specs, 4000, start=dt.date(1998, 5, 25), days=14, seed=3):
        load_calls(con, batch)
    yield con
    con.close()


def _june(table: pa.Table) -> pa.Table:
    minutes = pc.divide(pc.cast(table.column("gmt").cast(pa.timestamp("s")), pa.int64()), 60)
    return table.filter(pc.and_(pc.greater_equal(minutes, JUNE), pc.less(minutes, JULY)))


def test_replace_period_is_guarded_and_idempotent(mart, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before = export_calls(mart, CORP)
    june = _june(before)
    tally = period_tally(mart, CORP, JUNE, JULY, CHECK_MODULUS)
    assert tally[0] == june.num_rows > 0
    doubled = june.set_column(
        june.column_names.index("amount"), "amount", pc.multiply(june.column("amount"), 2)
    )
    path = tmp_path / "rerated.arrows"
    write_ipc(path, [doubled])
    for _ in range(2):  # the same file again: the same calls
        rows = replace_period(mart, path, CORP, JUNE, JULY, expect=tally, modulus=CHECK_MODULUS)
        assert rows == june.num_rows
        after = export_calls(mart, CORP)
        assert after.num_rows == before.num_rows
        assert sum(v for v in _june(after).column("amount").to_pylist()) == 2 * sum(
            june.column("amount").to_pylist()
        )
    other = export_calls(mart, "90000004")
    assert other.num_rows > 0  # the other corp untouched

    with pytest.raises(LoadError, match="changed since they were exported"):
        replace_period(mart, path, CORP, JUNE, JULY, expect=(tally[0] + 1, tally[1]),
                       modulus=CHECK_MODULUS)  # fmt: skip
    outside = tmp_path / "outside.arrows"
    write_ipc(outside, [before])
    with pytest.raises(LoadError, match="not all inside the period"):
        replace_period(mart, outside, CORP, JUNE, JULY, expect=tally, modulus=CHECK_MODULUS)
    assert export_calls(mart, CORP).num_rows == before.num_rows


def test_the_delivered_reports_that_met_the_period(mart) -> None:  # type: ignore[no-untyped-def]
    template = TEMPLATES[90]
    T = dt.datetime
    cases = {
        1: ((T(1998, 6, 2), T(1998, 6, 3)), "ftp_success"),  # met, delivered
        2: ((T(1998, 5, 1), T(1998, 5, 31, 23, 59)), "ftp_success"),  # before the period
        3: ((T(1998, 6, 5), T(1998, 6, 6)), "format_success"),  # not delivered
        4: ((T(1998, 5, 30), T(1998, 6, 1, 0, 10)), "NRL_sent"),  # overlaps its start
    }
    for rid, (period, status) in cases.items():
        text = Request(template, template.columns, periods=(period,)).text()
        queue.enqueue(mart, rid, 5, text.replace("REQUESTID=1,", f"REQUESTID={rid},"))
        queue.record(mart, rid, status)
    found = _delivered_reports(mart, CORP, JUNE, JULY)
    assert [(r[0], r[1], r[2], r[3]) for r in found] == [
        ("jeanvnet2", "00022924", "1", template.title),
        ("jeanvnet2", "00022924", "4", template.title),
    ]
    start = (dt.datetime(1998, 6, 2) - dt.datetime(1970, 1, 1)).days * 1440
    assert found[0][4] == f"{start}-{start + 1440}"
    assert _delivered_reports(mart, "nobody", JUNE, JULY) == []
