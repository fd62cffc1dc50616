"""The Message Center and the Report Viewer in Chromium against a real ``starwrs serve --demo``.

Issue 14: a City Summary saved and run (with ``starwrs client``, the user's own tool)
arrives while the Message Center is open -- found by its polling, counted as new --
and opens in the viewer from its data and metadata alone: the criteria, the grid
whose total line is the file's ``T`` line, sorting by two columns, a hidden and a
moved column, subtotals by another break column, the CSV export equal to what is
shown (and to an independent reading of the rules over the file, from
tests/web/test_js_viewer.py), the chart's marks and the map's regions, print, save
(the files as the inbox holds them); then acknowledged, kept longer, deleted -- each
checked with ``starwrs client``.  Another user never sees the item, not even by its
INBOXID; a report of 100,000 lines stays usable (only the rows in view are in the
page) and its download resumes after the connection drops mid-way; news, an image
and a run that failed are shown as what they are.  axe-core finds no WCAG 2.1 AA
violation on any screen and no page violates the Content-Security-Policy.

The items other than the City Summary are put into the inbox the way the Report
Manager and ``starwrs admin news`` put them: bulk puts with the deployment's own
certificate (:func:`starwrs.cli.bench_viewer.put_item`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from starwrs.cli.bench_viewer import put_item, synthetic_report
from starwrs.fixtures.demo import demo_logo
from starwrs.grammar import Group, Seq, serialize

from ..e2e.system import System, start
from ..web.test_js_viewer import reference_csv
from .helpers import (
    admin,
    axe_violations,
    checked_page,
    client_send,
    launched_chromium,
    run_cli,
    shots_dir,
)

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1280, "height": 800}
TIMEOUT = 15_000
#: a delivery through scheduler, arbitrator, DSS, Report Manager and inbox
DELIVERY = 90_000
expect.set_options(timeout=TIMEOUT)

#: the seed's City Summary, without the criteria the demo datamart matches nothing
#: for, with totals and State subtotals (tests/e2e/test_delivery.py's "Broad")
CITY_SUMMARY = (
    "ARD<USERID=jeanvnet2,ENTPID=00022924,STDRPTID=90,NAME={name},PRODUCT=S,"
    "CATEGORY=Analyze Traffic,THRESHOLD=<RECCOUNT=20>,"
    "SCHEDULE=A<START=199806020000,END=199807151200>,RANGETYPE=1,SCHEDTYPE=A,TIMEZONE=45,"
    "BILLING=INBOUND<<90000003,90000003><NA,NA><NA,NA>>INBOUND<<90000004,90000004><NA,NA>"
    "<NA,NA>>,SORTBY=<54D>,COLUMNS=<54~55~67~62~36~61~58~63~64~66~65>,ACTIVE=1,"
    "TOTALMODE=3,SUBTOTCOL=<55>,EMAIL=0,PAGE=0>"
)
#: the states (and DC) the map draws
US = {
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN",
    "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH",
    "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT",
    "VT", "VA", "WA", "WV", "WI", "WY",
}  # fmt: skip
#: the browser's settings: poll every second; print is recorded, not sent to a printer
INIT = """
localStorage.setItem("starwrs.inbox.poll", "1");
window.__printed = 0;
window.print = () => { window.__printed += 1; };
"""


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = start(tmp_path_factory.mktemp("state"), "--demo-calls", "20000")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shots_dir(tmp_path_factory.mktemp("shots"))


@pytest.fixture
def page(browser: Any, system: System) -> Iterator[Any]:
    with checked_page(
        browser, system.url, INIT, timeout=TIMEOUT, viewport=DESKTOP, accept_downloads=True
    ) as opened:
        yield opened


def message_center(page: Any, system: System, user: str) -> None:
    page.get_by_label("User ID").fill(user)
    page.get_by_label("Password").fill(system.passwords()[user])
    page.get_by_role("button", name="Log on").click()
    page.get_by_role("button", name="Message Center").click()
    expect(page.get_by_role("heading", name="Message Center", level=1)).to_be_visible()
    expect(page.locator(".inbox-panel .loading")).to_have_count(0)


def no_axe_violations(page: Any, screen: str) -> None:
    assert axe_violations(page) == [], screen


def item_row(page: Any, title: str) -> Any:
    return page.locator("tr", has=page.get_by_role("rowheader", name=re.compile(f"^{title}")))


def items(system: System, user: str, category: str = "R") -> dict[str, list[str]]:
    """title -> the L row (INBOXID, CATEGORY, TYPE, RPTTITLE, ..., ACK, EXPIRES)."""
    answer = client_send(system, user, f"L<ENTPID=00022924,USERID={user},CATEGORY={category}>").get(
        "ITEMS"
    )
    assert isinstance(answer, Group)
    found: dict[str, list[str]] = {}
    for member in answer.members:
        groups = member.value.parts if isinstance(member.value, Seq) else (member.value,)
        for group in groups:
            if isinstance(group, Group) and group.members:
                row = [str(m.value) for m in group.members]
                found[row[3]] = row
    return found


def fetched(system: System, user: str, inbox_id: str, part: str, out: Path) -> bytes:
    target = out / f"{inbox_id}-{part}"
    done = run_cli(
        "client", "--url", system.url, "--state", str(system.state), "--user", user,
        f"--password={system.passwords()[user]}", "send", f"F<INBOXID={inbox_id},PART={part}>",
        "--mech", "bulk", "--out", str(target),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return target.read_bytes()


def grid_rows(page: Any) -> list[list[str]]:
    """The grid's rows in the page (only those rendered), without the checkbox cell."""
    return page.evaluate(
        """() => [...document.querySelectorAll(".inbox-viewer .tabulator-table .tabulator-row")]
            .map((row) => [...row.querySelectorAll(".tabulator-cell")]
                .filter((cell) => cell.offsetParent !== null).slice(1)
                .map((cell) => cell.textContent))"""
    )


def total_row(page: Any) -> list[str]:
    return page.evaluate(
        """() => [...document.querySelectorAll(
                ".inbox-viewer .tabulator-calcs-bottom .tabulator-cell")]
            .filter((cell) => cell.offsetParent !== null).slice(1)
            .map((cell) => cell.textContent)"""
    )


def download(page: Any, button: str) -> Any:
    with page.expect_download() as info:
        page.get_by_role("button", name=button, exact=True).click()
    return info.value


# -- a report arrives and is read -------------------------------------------------------------


def test_a_report_arrives_and_is_read_from_its_metadata(
    page: Any, system: System, shots: Path, tmp_path: Path
) -> None:
    message_center(page, system, "jeanvnet2")
    expect(page.get_by_role("tab", name=re.compile("^Reports"))).to_have_attribute(
        "aria-selected", "true"
    )
    # saved and run while the Message Center is open: its polling finds the item
    saved = client_send(system, "jeanvnet2", CITY_SUMMARY.format(name="Viewer City Summary"))
    assert saved.get("ERROR") == "0"
    expect(page.locator(".poll-status")).to_contain_text("1 new item arrived", timeout=DELIVERY)
    expect(page.get_by_role("tab", name=re.compile("^Reports"))).to_contain_text("1 new")
    row = item_row(page, "Viewer City Summary")
    expect(row).to_contain_text("New")
    expect(row).to_contain_text("Unread")
    expect(row).to_contain_text("City Summary")
    no_axe_violations(page, "message center")
    page.screenshot(path=shots / "message-center.png")

    listed = items(system, "jeanvnet2")["Viewer City Summary"]
    inbox_id = listed[0]
    data = fetched(system, "jeanvnet2", inbox_id, "D", tmp_path)
    meta = fetched(system, "jeanvnet2", inbox_id, "M", tmp_path)
    lines = list(csv.reader(io.StringIO(data.decode(), newline="")))
    total = next(line for line in lines if line[0] == "T")
    details = [line for line in lines if line[0] == "D"]
    assert len(details) > 3  # the demo datamart has calls for the seed's period

    page.get_by_role("button", name="Open Viewer City Summary").click()
    viewer = page.locator(".inbox-viewer")
    expect(viewer.get_by_role("heading", name="Viewer City Summary", level=1)).to_be_visible()
    expect(viewer.locator(".viewer > [role=status]")).to_contain_text(
        "Downloaded and verified (SHA-256)"
    )
    criteria = viewer.locator(".criteria")
    expect(criteria).to_contain_text("06/02/1998 00:00 - 07/15/1998 12:00")
    expect(criteria).to_contain_text("Time zone")
    expect(criteria).to_contain_text("EDT")
    expect(criteria).to_contain_text("INBOUND 90000003")
    expect(viewer.locator(".tabulator-row").first).to_be_visible()

    # the total line is the file's T line, column for column; the lines are the file's
    every = [54, 55, 67, 62, 36, 61, 58, 63, 64, 66, 65]
    assert total_row(page) == ["Total", *total[1:]]
    file_order = reference_csv([(54, "desc")], 55, every, data.decode()).splitlines()
    assert [",".join(r) for r in grid_rows(page)[:10]] == [
        ",".join(next(csv.reader([line]))) for line in file_order[1:11]
    ]
    expect(viewer.locator(".grid-status")).to_contain_text(f"{len(details)} detail lines, ")
    expect(viewer.locator(".grid-status")).to_contain_text("by State (from the file), the total")

    # chart and map beside the grid (DEFAULT_GRAPH_MODE=1: a bar chart of Calls by City)
    expect(viewer.locator(".chart")).to_have_attribute("data-marks", str(len(details)))
    states = {line[2] for line in details} & US
    expect(viewer.locator(".map")).to_have_attribute("data-regions", str(len(states)))

    # sort by two columns, hide one column and move another, subtotal by City
    page.get_by_label("Sort by (key 1)").select_option(label="State")
    page.get_by_label("Order of key 1").select_option("asc")
    page.get_by_label("Then by (key 2)").select_option(label="Calls")
    page.get_by_label("Order of key 2").select_option("desc")
    expect(viewer.locator(".grid-status")).to_contain_text(
        "Sorted by State ascending, then Calls descending."
    )
    sorted_csv = reference_csv([(55, "asc"), (67, "desc")], 55, every, data.decode())
    assert [",".join(r) for r in grid_rows(page)[:8]] == [
        ",".join(next(csv.reader([line]))) for line in sorted_csv.splitlines()[1:9]
    ]
    viewer.locator("summary", has_text="Columns").click()
    page.get_by_label("Show % Calls").uncheck()
    page.get_by_role("button", name="Move Minutes left").click()
    expect(page.get_by_role("button", name="Move Minutes left")).to_be_focused()
    shown = [54, 55, 67, 36, 61, 58, 63, 64, 66, 65]  # % Calls hidden, Minutes before it
    headers = page.locator(".inbox-viewer .tabulator-header .tabulator-col:visible")
    expect(headers).to_have_text(
        [
            "",
            "Row",
            "City",
            "State",
            "Calls",
            "Minutes",
            "% Min",
            "Amount",
            "% Amt",
            "Avg Min/Call",
            "Avg Amt/Call",
            "Avg Amt/Min",
        ]
    )
    page.get_by_label("Subtotals").select_option(label="By City")
    expect(viewer.locator(".grid-status")).to_contain_text("subtotals by City, the total")
    keys = [(55, "asc"), (67, "desc")]
    expected = reference_csv(keys, 54, shown, data.decode())
    exported = download(page, "Export CSV")
    assert exported.suggested_filename == f"Viewer City Summary {inbox_id}.csv"
    text = Path(exported.path()).read_bytes().decode("utf-8")
    assert text == expected
    assert [",".join(r) for r in grid_rows(page)[:8]] == [
        ",".join(next(csv.reader([line]))) for line in text.splitlines()[1:9]
    ]
    assert total_row(page) == ["Total", *(total[1 + every.index(c)] for c in shown)]

    # the selection: two lines (their checkboxes) and one column, exported alone
    page.locator(".inbox-viewer .tabulator-table .tabulator-row input[type=checkbox]").nth(
        0
    ).check()
    page.locator(".inbox-viewer .tabulator-table .tabulator-row input[type=checkbox]").nth(
        2
    ).check()
    page.get_by_label("Select Calls").check()
    expect(viewer.locator(".grid-status")).to_contain_text("Selected: 2 lines, 1 column.")
    picked = Path(download(page, "Export selection").path()).read_bytes().decode("utf-8")
    rows = expected.splitlines()
    calls = rows[0].split(",").index("Calls")
    assert picked.splitlines() == [
        "Row,Calls",
        *(f"{r.split(',')[0]},{r.split(',')[calls]}" for r in (rows[1], rows[3])),
    ]

    page.get_by_role("button", name="Print").click()
    assert page.evaluate("window.__printed") == 1
    saved_zip = download(page, "Save files")
    with zipfile.ZipFile(saved_zip.path()) as archive:
        assert archive.read(f"Viewer City Summary {inbox_id}.csv") == data
        assert archive.read(f"Viewer City Summary {inbox_id}.mtd") == meta
    no_axe_violations(page, "viewer")
    page.screenshot(path=shots / "viewer.png", full_page=True)

    # opening acknowledged it; unread, kept for 10 days, deleted -- as the inbox says
    page.get_by_role("button", name="Back to the Message Center").click()
    expect(page.get_by_role("button", name="Open Viewer City Summary")).to_be_focused()
    expect(row).to_contain_text("Read")
    expect(row).not_to_contain_text("New")
    assert items(system, "jeanvnet2")["Viewer City Summary"][8] == "1"
    row.get_by_role("button", name="Mark unread: Viewer City Summary").click()
    expect(row).to_contain_text("Unread")
    assert items(system, "jeanvnet2")["Viewer City Summary"][8] == "0"
    row.get_by_role("button", name="Keep Viewer City Summary for…").click()
    dialog = page.get_by_role("dialog")
    no_axe_violations(page, "keep dialog")
    dialog.get_by_label(re.compile("^Days to keep it")).fill("10")
    dialog.get_by_role("button", name="Keep").click()
    expect(page.locator(".inbox-main [role=status]")).to_contain_text("is kept for 10 days")
    kept = items(system, "jeanvnet2")["Viewer City Summary"]
    # ten days from its arrival in the inbox (a minute or two after its request date)
    ttl = dt.datetime.strptime(kept[9], "%Y-%m-%d %H:%M") - dt.datetime.strptime(
        kept[5], "%Y-%m-%d %H:%M"
    )
    assert dt.timedelta(days=10) <= ttl <= dt.timedelta(days=10, minutes=5), kept
    assert kept[8] == "0"  # a new TTL leaves it unread
    row.get_by_role("button", name="Delete Viewer City Summary").click()
    expect(page.get_by_role("dialog")).to_contain_text("Delete “Viewer City Summary”?")
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(row).to_be_visible()
    row.get_by_role("button", name="Delete Viewer City Summary").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    assert "Viewer City Summary" not in items(system, "jeanvnet2")
    gone = client_send(system, "jeanvnet2", f"F<INBOXID={inbox_id}>")
    assert gone.get("ERROR") == "5100"


# -- another user ------------------------------------------------------------------------------


def test_another_user_never_sees_the_item(page: Any, system: System) -> None:
    data, meta = synthetic_report(50, seed=3, title="Private Calls")
    inbox_id = put_item(system.state, title="Private Calls", data=data, meta=meta)
    message_center(page, system, "dorod")
    expect(page.locator(".inbox-panel:not([hidden])")).not_to_contain_text("Private Calls")
    # not by its INBOXID either: the same answer as for an item that does not exist
    for text in (f"F<INBOXID={inbox_id}>", f"D<INBOXID={inbox_id}>"):
        answer = client_send(system, "dorod", text)
        assert answer.get("ERROR") in ("5100", "5125"), serialize(answer)
    refused = page.evaluate(
        """async (id) => {
            const { download } = await import("/js/viewer/bulk.js");
            try { await download(`F<INBOXID=${id}>`); return "fetched"; }
            catch (err) { return err.code; }
        }""",
        inbox_id,
    )
    assert refused == 5100
    assert "Private Calls" in items(system, "jeanvnet2")  # still there for its owner

    # dorod's own items, deleted all at once after a confirmation
    put_item(system.state, user="dorod", title="Dorod One", data=data, meta=meta)
    put_item(system.state, user="dorod", title="Dorod Two", data=data, meta=meta)
    page.get_by_role("button", name="Check for new items").click()
    expect(page.locator(".poll-status")).to_contain_text("2 new items arrived")
    page.get_by_role("button", name="Delete all items").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("All 2 items of your inbox")
    no_axe_violations(page, "delete all dialog")
    dialog.get_by_role("button", name="Delete all").click()
    expect(page.locator(".inbox-main [role=status]")).to_have_text("Every item is deleted.")
    assert items(system, "dorod") == {}
    assert "Private Calls" in items(system, "jeanvnet2")


def test_focus_stays_on_its_button_when_a_poll_redraws_the_list(page: Any, system: System) -> None:
    """New items redraw the list; the button a keyboard user is on must keep the focus."""
    data, meta = synthetic_report(20, seed=5, title="Focus Kept")
    put_item(system.state, user="dorod", title="Focus Kept", data=data, meta=meta)
    message_center(page, system, "dorod")
    keep = page.get_by_role("button", name="Keep Focus Kept for…")
    keep.focus()
    put_item(system.state, user="dorod", title="Focus Arrives", data=data, meta=meta)
    expect(page.get_by_role("button", name="Open Focus Arrives")).to_be_visible()  # polled
    expect(keep).to_be_focused()
    # and the one left on closing the viewer, while the item's read mark redraws its row
    page.get_by_role("button", name="Open Focus Arrives").click()
    page.get_by_role("button", name="Back to the Message Center").click()
    expect(page.get_by_role("button", name="Open Focus Arrives")).to_be_focused()
    put_item(system.state, user="dorod", title="Focus Third", data=data, meta=meta)
    expect(page.get_by_role("button", name="Open Focus Third")).to_be_visible()
    expect(page.get_by_role("button", name="Open Focus Arrives")).to_be_focused()


# -- a large report, and a dropped connection ---------------------------------------------------


def test_a_100000_line_report_resumes_after_a_dropped_connection(
    page: Any, system: System, tmp_path: Path
) -> None:
    data, meta = synthetic_report(100_000, seed=11, title="Every Call")
    inbox_id = put_item(system.state, title="Every Call", data=data, meta=meta)
    gets: list[tuple[str, int]] = []
    cut: list[int] = []

    def drop_first_data_get(route: Any) -> None:
        body = route.request.post_data_buffer or b""
        if len(body) < 24 or body[2] != 3:  # not a bulk transfer
            route.continue_()
            return
        get = msgpack.unpackb(body[24:])
        gets.append((get["resource"], get["offset"]))
        if cut or get["resource"] != f"F<INBOXID={inbox_id}>":
            route.continue_()
            return
        response = route.fetch()
        whole = response.body()
        cut.append(len(whole))
        # the first data frame and part of the second, then the connection is gone
        route.fulfill(response=response, body=whole[: 1024 * 1024 + 5000])

    message_center(page, system, "jeanvnet2")
    page.route("**/dispatch", drop_first_data_get)
    page.get_by_role("button", name="Open Every Call").click()
    viewer = page.locator(".inbox-viewer")
    expect(viewer.locator(".viewer > [role=status]")).to_contain_text(
        "Downloaded and verified (SHA-256), resumed once", timeout=60_000
    )
    assert len(cut) == 1
    assert cut[0] > 5 * 1024 * 1024
    assert (f"F<INBOXID={inbox_id}>", 1024 * 1024) in gets  # the resume: bytes held
    expect(viewer.locator(".grid-status")).to_contain_text(
        "100000 lines shown: 99999 detail lines, the total.", timeout=30_000
    )
    # only the lines in view are in the page
    assert page.locator(".inbox-viewer .tabulator-row").count() < 200
    total = data.decode().rstrip("\r\n").rsplit("\r\n", 1)[1].split(",")
    assert total_row(page) == ["Total", *total[1:]]

    # still usable: sorted by Minutes, descending, in a few seconds
    page.get_by_label("Sort by (key 1)").select_option(label="Minutes")
    page.get_by_label("Order of key 1").select_option("desc")
    expect(viewer.locator(".grid-status")).to_contain_text(
        "Sorted by Minutes descending, then Call Time ascending."
    )
    longest = max(float(line.split(",")[7]) for line in data.decode().splitlines()[1:-1])
    expect(viewer.locator(".tabulator-table .tabulator-row").first).to_contain_text(
        f"{longest:.1f}"
    )
    page.evaluate("document.querySelector('.inbox-viewer .tabulator-tableholder').scrollTop = 1e9")
    expect(viewer.locator(".tabulator-table .tabulator-row").last).to_contain_text("0.1")
    no_axe_violations(page, "viewer: 100,000 lines")


#: every cell's text and box (relative to its grid) in the header, the lines and the total
#: row of a grid: drawn by drawFirstScreen, or by Tabulator
CELLS = """(el) => {
  const at = el.getBoundingClientRect();
  const box = (cell) => {
    const r = cell.getBoundingClientRect();
    return [cell.textContent.trim(), Math.round(r.left - at.left), Math.round(r.top - at.top),
            Math.round(r.width), Math.round(r.height)];
  };
  const part = (selector) =>
    [...el.querySelectorAll(selector)].filter((c) => c.offsetParent !== null).map(box);
  return {
    header: part(".tabulator-header .tabulator-col"),
    lines: [...el.querySelectorAll(".tabulator-table .tabulator-row")].slice(0, 12).map((row) =>
      [[...row.classList].filter((c) => c.startsWith("line-")), ...[...row.children].map(box)]),
    total: part(".tabulator-calcs-bottom .tabulator-cell"),
  };
}"""

#: two grids of one spec in the page: one drawn by drawFirstScreen, one built by Tabulator
TWIN_GRIDS = """async () => {
  const { createGrid, drawFirstScreen } = await import("/js/viewer/grid.js");
  const columns = [
    { id: 1, field: "c1", label: "Call Date", numeric: false, width: 10 },
    { id: 54, field: "c54", label: "Originating City and State, as billed", numeric: false,
      width: 20 },
    { id: 36, field: "c36", label: "Minutes", numeric: true, width: 8 },
    { id: 58, field: "c58", label: "Amount", numeric: true, width: 7 },
  ];
  const lines = Array.from({ length: 60 }, (_, i) => ({
    _k: i, _t: i % 7 === 6 ? "S" : "D", c1: `1998-06-${String(1 + (i % 28)).padStart(2, "0")}`,
    c54: i % 7 === 6 ? "" : `CITY ${i}`, c36: (i * 1.7).toFixed(1), c58: (i * 0.31).toFixed(2),
  }));
  const total = { _k: "T", _t: "T", c1: "", c54: "", c36: "1234.5", c58: "567.89" };
  const spec = {
    columns, hidden: new Set(), lines, total, withTotal: true, selectedColumns: new Set(),
    sort: [{ id: 1, dir: "asc" }, { id: 36, dir: "desc" }], label: "twins",
    onHeader: () => {}, onMoved: () => {}, onSelection: () => {},
  };
  const place = () => {
    const el = document.createElement("div");
    el.className = "grid";
    el.style.width = "900px";
    document.querySelector("main").prepend(el);
    return el;
  };
  const drawn = place();
  drawFirstScreen(drawn, spec);
  const built = place();
  const grid = await createGrid(built, spec);
  grid.setSort(spec.sort);
  return [drawn, built];
}"""


def test_the_first_screen_is_drawn_as_the_grid_draws_it(page: Any, system: System) -> None:
    """The viewer draws a new grid's first screen before Tabulator is built (grid.js
    drawFirstScreen): the same header, lines and total row in the same places as the
    Tabulator grid that replaces it, so the swap does not move a pixel; in an open the
    drawn screen is shown, inert and hidden from assistive technology, then gone."""
    message_center(page, system, "jeanvnet2")
    grids = page.evaluate_handle(TWIN_GRIDS)
    drawn = page.evaluate(CELLS, grids.evaluate_handle("g => g[0]"))
    built = page.evaluate(CELLS, grids.evaluate_handle("g => g[1]"))
    assert len(drawn["lines"]) == 12
    assert drawn["lines"][6][0] == ["line-subtotal"]
    assert drawn["header"][4][0] == "Minutes"
    assert drawn == built
    page.evaluate("g => g.forEach((el) => el.remove())", grids)

    data, meta = synthetic_report(300, seed=5, title="First Screen")
    put_item(system.state, title="First Screen", data=data, meta=meta)
    expect(page.get_by_role("button", name="Open First Screen")).to_be_visible()  # polled
    page.evaluate(
        """() => {
          window.drawnFirst = [];
          new MutationObserver((changes) => {
            for (const change of changes) for (const node of change.addedNodes) {
              if (node.nodeType === 1 && node.inert && node.closest(".grid")) {
                window.drawnFirst.push([node.getAttribute("aria-hidden"),
                  node.querySelectorAll(".tabulator-table .tabulator-row").length]);
              }
            }
          }).observe(document.body, { childList: true, subtree: true });
        }"""
    )
    page.get_by_role("button", name="Open First Screen").click()
    viewer = page.locator(".inbox-viewer")
    expect(viewer.locator(".viewer > [role=status]")).to_contain_text("Downloaded and verified")
    assert page.evaluate("window.drawnFirst") == [["true", 24]]
    expect(viewer.locator(".grid [inert]")).to_have_count(0)
    expect(viewer.locator(".viewer[aria-busy]")).to_have_count(0)
    no_axe_violations(page, "viewer: after the first screen")


# -- news, an image, a failed run ------------------------------------------------------------


def test_news_images_and_failed_runs_are_shown_as_such(page: Any, system: System) -> None:
    news = admin(
        system, "news", "--user", "LynneLevy2", "--title", "Maintenance Sunday",
        "--text", "The reporting system is down for maintenance on Sunday 02:00-04:00 GMT.",
    )  # fmt: skip
    assert news.returncode == 0, news.stderr
    put_item(
        system.state, user="LynneLevy2", title="Network Map", data=demo_logo(), meta=None,
        category="F", report_type="News",
    )  # fmt: skip
    reason = (
        b"Area Code Summary\r\nThe report could not be produced.\r\n"
        b"Error 6706: no data in the period\r\nthe partition was being moved\r\n"
    )
    put_item(
        system.state, user="LynneLevy2", title="Area Code Summary", data=reason, meta=None,
        failed=True, report_type="Area Code Summary",
    )  # fmt: skip
    message_center(page, system, "LynneLevy2")
    failed = item_row(page, "Area Code Summary")
    expect(failed).to_contain_text("Could not be produced")
    expect(failed).to_contain_text("Error 6706: no data in the period")
    page.get_by_role("tab", name=re.compile("^News")).click()
    expect(page.get_by_role("tab", name=re.compile("^News"))).to_contain_text("(2)")
    no_axe_violations(page, "message center: news")

    page.get_by_role("button", name="Open Maintenance Sunday").click()
    expect(page.locator(".inbox-viewer .item-text")).to_have_text(
        "The reporting system is down for maintenance on Sunday 02:00-04:00 GMT."
    )
    no_axe_violations(page, "viewer: news")
    page.get_by_role("button", name="Back to the Message Center").click()
    page.get_by_role("button", name="Open Network Map").click()
    image = page.get_by_role("img", name="Network Map")
    expect(image).to_be_visible()
    assert page.evaluate("document.querySelector('.item-image').width") == 120
    page.get_by_role("button", name="Back to the Message Center").click()
    page.get_by_role("tab", name=re.compile("^Reports")).click()
    page.get_by_role("button", name="Open Area Code Summary").click()
    expect(page.locator(".inbox-viewer")).to_contain_text("Why the report could not be produced")
    expect(page.locator(".inbox-viewer .item-text")).to_contain_text(
        "the partition was being moved"
    )
