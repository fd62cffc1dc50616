"""Reports saved and run in the browser, read in the viewer, held to the datamart.

Issue 14, item 7: in Debian's Chromium against a real ``starwrs serve --demo``, a user
builds a City Summary (State subtotals and the report total) and a Longest Calls
(the report total) on the Report Requestor's screens and saves and runs each; both
arrive in the Message Center (its polling finds them), and each opens in the viewer
with a grid whose total row is the file's ``T`` line, cell for cell, and whose first
lines are the file's.  Then the system is stopped -- a DSS keeps its DuckDB partition
to itself while it runs -- and every line of each file, and the total row the grid
showed, are held to the independent oracle of tests/proxies/test_dss_sql.py (its
own plain SQL over every call, the report computed in Python) over the partition
the DSS read, as tests/e2e/test_delivery.py does for a report saved with
``starwrs client``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from starwrs.proxies.rm.templates import TEMPLATES
from starwrs.storage.datamart.partitions import partition_path, read_partition_map

from ..e2e.system import System, start
from ..proxies.test_dss_sql import _RAW, Mart, Request, oracle
from .helpers import axe_violations, checked_page, launched_chromium
from .test_browser import choose_category, field, open_requestor, tab
from .test_viewer import DELIVERY, INIT, fetched, grid_rows, item_row, items, total_row

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1280, "height": 800}
TIMEOUT = 15_000
expect.set_options(timeout=TIMEOUT)
T = dt.datetime
#: the screens' dates (New York wall clock, EDT: time zone 45) in GMT
PERIOD = ((T(1998, 6, 2, 4, 0), T(1998, 7, 15, 16, 0)),)
CORPS = ("90000003", "90000004")


@dataclass(frozen=True)
class Report:
    """A report built on the requestor's screens, and the request the oracle reads."""

    category: str
    template: str  # the button's "New report from …"
    name: str
    layout: Callable[[Any], None]  # the Layout screen's choices
    request: Request


def city_summary_layout(page: Any) -> None:
    field(page, "Maximum rows (record count)").fill("20")
    field(page, "Subtotals and report total").check()
    subtotals = page.locator("[role=tabpanel]:not([hidden])").get_by_role(
        "group", name="Subtotal columns"
    )
    subtotals.get_by_label("State", exact=True).check()


def longest_calls_layout(page: Any) -> None:
    expect(field(page, "Sort column 1")).to_have_value("36")
    expect(field(page, "Order of sort column 1")).to_have_value("D")
    field(page, "Maximum rows (record count)").fill("25")
    field(page, "Report total").check()


REPORTS = (
    Report(
        "Analyze Traffic",
        "City Summary (Outbound)",
        "Browser City Summary",
        city_summary_layout,
        Request(
            TEMPLATES[90],
            TEMPLATES[90].columns,
            billing=tuple((c,) for c in CORPS),
            sort=((54, "D"),),
            reccount=20,
            total_mode=3,
            subtotals=(55,),
            periods=PERIOD,
            offset=-4,
            entitled=CORPS,
        ),
    ),
    Report(
        "Financial",
        "Longest Calls (Outbound)",
        "Browser Longest Calls",
        longest_calls_layout,
        Request(
            TEMPLATES[1],
            TEMPLATES[1].columns,
            billing=tuple((c,) for c in CORPS),
            sort=((36, "D"),),
            reccount=25,
            total_mode=2,
            periods=PERIOD,
            offset=-4,
            entitled=CORPS,
        ),
    ),
)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = start(tmp_path_factory.mktemp("state"), "--demo-calls", "20000")
    yield running
    running.stop()  # again, if the test did not get that far


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any, system: System) -> Iterator[Any]:
    # INIT: the Message Center polls every second
    with checked_page(browser, system.url, INIT, timeout=TIMEOUT, viewport=DESKTOP) as opened:
        yield opened


def save_and_run(page: Any, report: Report) -> None:
    """Build *report* on the requestor's screens and press Save and Run."""
    choose_category(page, report.category)
    page.get_by_role("button", name=f"New report from {report.template}").click()
    expect(page.get_by_role("heading", name=f"New report: {report.template}")).to_be_visible()
    tab(page, "Report Name")
    field(page, "Report name").fill(report.name)
    tab(page, "Scheduled Execution")
    field(page, "Ad hoc: for the date ranges given").check()
    field(page, "Start of date range 1").fill("1998-06-02T00:00")
    field(page, "End of date range 1").fill("1998-07-15T12:00")
    field(page, "Range: from the start to the end of each date range").check()
    field(page, "Time zone").select_option("45")
    tab(page, "Layout")
    report.layout(page)
    tab(page, "Hierarchy")
    field(page, "90000003 Vision Headquarters").check()
    field(page, "90000004 Vision Field Offices").check()
    page.get_by_role("button", name="Save and Run").click()
    status = page.locator(".requestor-main [role=status]")
    expect(status).to_contain_text(f"“{report.name}” is saved as report")
    expect(status).to_contain_text("scheduled to run")


def test_reports_saved_in_the_requestor_arrive_and_equal_the_datamart(
    page: Any, system: System, tmp_path: Path
) -> None:
    page.get_by_label("User ID").fill("jeanvnet2")
    page.get_by_label("Password").fill(system.passwords()["jeanvnet2"])
    page.get_by_role("button", name="Log on").click()
    open_requestor(page)
    for report in REPORTS:
        save_and_run(page, report)

    # the Message Center lists them as they arrive (polling), and the viewer opens each
    page.get_by_role("button", name="Close Report Requestor").click()
    page.get_by_role("button", name="Message Center").click()
    expect(page.get_by_role("heading", name="Message Center", level=1)).to_be_visible()
    files: dict[str, list[list[str]]] = {}
    totals: dict[str, list[str]] = {}
    for report in REPORTS:
        row = item_row(page, report.name)
        expect(row).to_be_visible(timeout=DELIVERY)
        expect(row).to_contain_text("Unread")
        inbox_id = items(system, "jeanvnet2")[report.name][0]
        data = fetched(system, "jeanvnet2", inbox_id, "D", tmp_path)
        lines = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        files[report.name] = lines
        page.get_by_role("button", name=f"Open {report.name}").click()
        viewer = page.locator(".inbox-viewer")
        expect(viewer.get_by_role("heading", name=report.name, level=1)).to_be_visible()
        expect(viewer.locator(".viewer > [role=status]")).to_contain_text(
            "Downloaded and verified (SHA-256)"
        )
        expect(viewer.locator(".tabulator-table .tabulator-row").first).to_be_visible()
        (file_total,) = (line for line in lines if line[0] == "T")
        totals[report.name] = total_row(page)
        assert totals[report.name] == ["Total", *file_total[1:]], report.name
        # the grid's first lines are the file's (it is PRESORTED: shown as filed)
        shown = grid_rows(page)[:5]
        assert shown, report.name
        assert [cells[1:] for cells in shown] == [line[1:] for line in lines[1 : 1 + len(shown)]]
        assert axe_violations(page) == [], f"viewer: {report.name}"
        page.get_by_role("button", name="Back to the Message Center").click()
        expect(page.get_by_role("button", name=f"Open {report.name}")).to_be_focused()

    # the oracle reads the partition the DSS read: the system must let go of it first
    system.stop()
    table = read_partition_map(system.state)
    partition = table.partition_of(CORPS[0])  # the first BILLING corp routes a report
    con = duckdb.connect(str(partition_path(system.state, partition)), read_only=True)
    try:
        cursor = con.execute(_RAW)
        names = [d[0] for d in cursor.description]
        mart = Mart(con, [dict(zip(names, r, strict=True)) for r in cursor.fetchall()])
        for report in REPORTS:
            expected, _nrl = oracle(mart, report.request)
            assert files[report.name] == expected, report.name
            assert len(expected) > 3, report.name  # the seed's period has calls to report
            (oracle_total,) = (line for line in expected if line[0] == "T")
            assert totals[report.name] == ["Total", *oracle_total[1:]], report.name
    finally:
        con.close()
