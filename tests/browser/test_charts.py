"""The report viewer's charts and map in Debian's Chromium, under the real CSP.

Issue 14, items 3 and 4: a user logs on to a real ``starwrs serve --demo``; the page
imports ``/js/viewer/chart.js`` and ``/js/viewer/map.js`` as the viewer does and draws,
from known rows, a chart of each type (one and two y columns) and the map of the
United States by state and by area code.  Each drawing has the number of marks (SVG
paths of bars, points and arcs) or shaded states the rows call for -- counted in the
DOM as well as returned by the module; hovering a mark shows its values; axe-core
finds no WCAG 2.1 A/AA violation in the drawings; and the page's
Content-Security-Policy (no inline script or style, no ``eval``) is never violated:
the ``page`` fixture fails the test on any ``securitypolicyviolation`` event or page
error, and the console must hold no error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from ..e2e.system import System, start
from . import test_browser as shared
from .helpers import AXE_TAGS, csp_violations

pytestmark = pytest.mark.slow

# test_browser's Chromium and page (CSP recorder and axe-core injected; the page
# fails the test on a CSP violation or a page error), with this module's system
browser = shared.browser
page = shared.page
logged_on = shared.logged_on

COLUMNS = [
    {"id": "54", "label": "City", "type": "string", "decimals": 0},
    {"id": "55", "label": "State", "type": "string", "decimals": 0},
    {"id": "44", "label": "Area Code", "type": "string", "decimals": 0},
    {"id": "67", "label": "Calls", "type": "number", "decimals": 0},
    {"id": "36", "label": "Minutes", "type": "number", "decimals": 1},
    {"id": "DAY", "label": "Call Date", "type": "date", "decimals": 0},
]
ROWS = [
    {"54": "BOSTON", "55": "MA", "44": "617", "67": 120, "36": 410.5, "DAY": "2024-03-01"},
    {"54": "WORCESTER", "55": "MA", "44": "508", "67": 40, "36": 95.25, "DAY": "2024-03-02"},
    {"54": "NEW YORK", "55": "NY", "44": "212", "67": 300, "36": 1204.0, "DAY": "2024-03-03"},
    {"54": "AUSTIN", "55": "TX", "44": "512", "67": 75, "36": None, "DAY": "2024-03-04"},
    {"54": "TORONTO", "55": "ON", "44": "416", "67": 12, "36": 30.0, "DAY": "2024-03-05"},
    {"54": "SAN JUAN", "55": "PR", "44": "787", "67": 9, "36": 22.0, "DAY": "2024-03-06"},
    {"54": "NASSAU", "55": "", "44": "242", "67": 5, "36": 11.0, "DAY": "2024-03-07"},
]
#: type, ys -> marks: 7 rows, Minutes blank once; a pie draws the first y column
CHARTS = [
    ("bar", ["67"], 7),
    ("bar", ["67", "36"], 13),
    ("line", ["67", "36"], 13),
    ("point", ["36"], 6),
    ("pie", ["67", "36"], 7),
]
#: SVG elements Vega draws for a chart's marks (not axes, legends or the background)
MARK_PATHS = ", ".join(
    f"g.role-mark.mark-{kind} > path" for kind in ("rect", "symbol", "arc", "shape")
)

DRAW = """async ({columns, rows, charts, selector}) => {
  const { renderChart, chartTypes } = await import("/js/viewer/chart.js");
  const section = document.createElement("section");
  section.id = "viewer-test";
  section.setAttribute("aria-label", "Charts");
  document.querySelector("main").append(section);
  const drawn = [];
  for (const [type, ys] of charts) {
    const div = document.createElement("div");
    section.append(div);
    const result = await renderChart(div, { columns, rows, x: "54", ys, type });
    drawn.push({ marks: result.marks, dom: div.querySelectorAll(selector).length });
  }
  // destroy() removes a drawing; the next one replaces what the container holds
  const spare = document.createElement("div");
  section.append(spare);
  const first = await renderChart(spare, { columns, rows, x: "54", ys: ["67"], type: "bar" });
  first.destroy();
  const emptied = spare.childElementCount;
  await renderChart(spare, { columns, rows, x: "54", ys: ["67"], type: "pie" });
  const again = await renderChart(spare, { columns, rows, x: "54", ys: ["67"], type: "point" });
  const replaced = spare.querySelectorAll("svg").length;
  again.destroy();
  spare.remove();
  return { drawn, chartTypes, emptied, replaced };
}"""

MAP = """async ({columns, rows, geo}) => {
  const { renderMap } = await import("/js/viewer/map.js");
  let section = document.getElementById("viewer-test");
  if (!section) {
    section = document.createElement("section");
    section.id = "viewer-test";
    section.setAttribute("aria-label", "Maps");
    document.querySelector("main").append(section);
  }
  const div = document.createElement("div");
  div.id = `map-${geo}`;
  section.append(div);
  const byId = Object.fromEntries(columns.map((c) => [c.id, c]));
  const result = await renderMap(div, { rows, geoColumn: byId[geo], valueColumn: byId["67"] });
  const selector = "g.shaded_marks > path"; // the states drawn underneath are not counted
  return { regions: result.regions, shaded: div.querySelectorAll(selector).length };
}"""



@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    # the drawings use rows of their own: the smallest demo datamart will do
    running = start(tmp_path_factory.mktemp("state"), "--demo-calls", "1000")
    yield running
    running.stop()


AXE_IN = """async (tags) => {
  const r = await axe.run("#viewer-test", {runOnly: {type: "tag", values: tags}});
  return r.violations.map((v) => `${v.id}: ${v.help} -- ` +
      v.nodes.map((n) => n.target.join(" ")).join(", "));
}"""


def console_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def test_charts_render_every_type(page: Any, system: System) -> None:
    logged_on(page, system, "jeanvnet2")
    errors = console_errors(page)
    result = page.evaluate(
        DRAW,
        {
            "columns": COLUMNS,
            "rows": ROWS,
            "charts": [[t, ys] for t, ys, _ in CHARTS],
            "selector": MARK_PATHS,
        },
    )
    assert result["chartTypes"] == ["bar", "line", "pie", "point"]
    expected = [marks for _, _, marks in CHARTS]
    assert [d["marks"] for d in result["drawn"]] == expected
    assert [d["dom"] for d in result["drawn"]] == expected
    assert (result["emptied"], result["replaced"]) == (0, 1)
    # the drawing describes itself; each bar says what it is, and hovering it shows
    # the same in the tooltip
    charts = page.locator("#viewer-test .viewer-chart")
    assert charts.count() == len(CHARTS)
    assert charts.first.get_attribute("aria-label") == "Bar chart of Calls by City"
    bar = charts.first.locator(MARK_PATHS).nth(2)
    assert bar.get_attribute("aria-label") == "City: NEW YORK; Calls: 300"
    bar.hover()
    assert charts.first.get_attribute("title") == "City: NEW YORK\nCalls: 300"
    point = charts.nth(3).locator(MARK_PATHS).first
    assert point.get_attribute("aria-label") == "City: BOSTON; Minutes: 410.5"
    # the y axis of Minutes has its column's one decimal
    axis = page.locator("#viewer-test .viewer-chart").nth(3).locator("g.role-axis-label text")
    assert any(re.fullmatch(r"\d[\d,]*\.\d", t) for t in axis.all_text_contents())
    assert page.evaluate(AXE_IN, AXE_TAGS) == []
    assert csp_violations(page) == []
    assert errors == []


def test_map_by_state_and_by_area_code(page: Any, system: System) -> None:
    logged_on(page, system, "jeanvnet2")
    errors = console_errors(page)
    args = {"columns": COLUMNS, "rows": ROWS}
    # MA (2 rows), NY, TX: shaded; ON, PR and the blank are in the table, not on the map
    by_state = page.evaluate(MAP, {**args, "geo": "55"})
    assert by_state == {"regions": 3, "shaded": 3}
    # the same states from the area codes (242, the Bahamas, is no state)
    by_npa = page.evaluate(MAP, {**args, "geo": "44"})
    assert by_npa == {"regions": 3, "shaded": 3}
    state_map = page.locator("#map-55")
    massachusetts = state_map.locator("g.shaded_marks > path[aria-label*='Massachusetts']")
    assert massachusetts.get_attribute("aria-label") == "State: Massachusetts; Calls: 160"
    massachusetts.hover()
    drawing = state_map.locator(".viewer-map")
    assert drawing.get_attribute("title") == "State: Massachusetts\nCalls: 160"
    assert "3 states shaded" in (drawing.get_attribute("aria-label") or "")
    # the table alternative: every state with a value, largest first
    state_map.get_by_text("Calls by state, as a table").click()
    table = state_map.get_by_role("table")
    assert table.locator("tbody th").all_inner_texts() == [
        "New York",
        "Massachusetts",
        "Texas",
        "Ontario",
        "Puerto Rico",
    ]
    assert table.locator("tbody td").all_inner_texts() == ["300", "160", "75", "12", "9"]
    assert "1 row is not in a state" in state_map.inner_text()
    assert page.evaluate(AXE_IN, AXE_TAGS) == []
    assert csp_violations(page) == []
    assert errors == []
