"""The report viewer's chart and map modules (web/client/js/viewer/) in node.

Theory of operation
-------------------
The pure parts of ``chart.js``, ``map.js`` and ``geo.js`` run in node (one process per
test, the modules imported as the browser imports them, inputs and answers as JSON):

* ``stateOf``/``isNpa`` agree with ``tools/npa_states.py`` (which generates
  ``geo-data.js``; the file must be what the tool writes) and with the demo datamart:
  every area code :func:`starwrs.fixtures.datamart_geo.nanp` draws calls from maps to
  the state most of its exchanges are in;
* ``geoKindOf`` on the report columns of the templates (State, Area Code, Country,
  Country Code, City) and on unlabelled values, and where it must say no;
* ``chartSpec`` for every type and for random rows: the spec compiles with Vega-Lite,
  Vega runs it with vega-interpreter (no ``new Function``, as in the browser), and it
  draws one mark per number (a pie: per positive number of its first y column), with
  the columns' labels and decimals;
* ``mapSpec``/``aggregateByState`` over the real us-atlas states: sums per state,
  area codes counted for their state, the shaded count.

The browser side (the UMD scripts, the CSP, the SVG) is tests/browser/test_charts.py.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "web" / "client"
TOOL = ROOT / "tools" / "npa_states.py"
NODE_TIMEOUT = 120


def node(script: str, payload: Any = None) -> Any:
    """Run *script* (an ES module body; ``input`` is the payload) and return its
    ``answer``, both as JSON.  It runs in web/client, so vega etc. resolve."""
    found = shutil.which("node")
    if found is None:
        pytest.fail("the browser client's tests need Node.js 20 or later on PATH (`node`)")
    if not (CLIENT / "node_modules" / "vega-lite").is_dir():
        pytest.fail("web/client/node_modules is missing: run `npm ci --prefix web/client`")
    body = (
        'import { readFileSync } from "node:fs";\n'
        'const input = JSON.parse(readFileSync(0, "utf8"));\n'
        f"{script}\n"
        "process.stdout.write(JSON.stringify(answer));\n"
    )
    done = subprocess.run(
        [found, "--input-type=module", "-e", body],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=CLIENT,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def tool() -> Any:
    sys.path.insert(0, str(TOOL.parent))
    try:
        import npa_states  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(TOOL.parent))
    return npa_states


# -- geo.js --------------------------------------------------------------------------


def test_geo_data_is_what_the_tool_writes() -> None:
    assert tool().main(["--check"]) == 0


def test_state_of_every_area_code() -> None:
    states, other = tool().npa_states()
    codes = [str(n) for n in range(1000)] + ["", " 617 ", "6170", "61", "abc", "800", "555"]
    answer = node(
        'import { stateOf, isNpa } from "./js/viewer/geo.js";\n'
        "const answer = input.map((c) => [c, stateOf(c), isNpa(c), stateOf(Number(c) || -1)]);",
        codes,
    )
    for code, state, real, by_number in answer:
        text = code.strip()
        assert state == states.get(text), code
        assert real == (text in states or text in other), code
        assert by_number == (states.get(str(int(text))) if text.isdigit() else None), code
    assert (states["617"], states["787"], states["416"]) == ("MA", "PR", "ON")
    assert {"242", "345"} <= other.keys()
    assert "800" not in states
    assert "800" not in other


def test_every_demo_area_code_maps_to_its_state() -> None:
    from starwrs.fixtures.datamart_geo import nanp

    table = nanp()
    counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for npa, state in zip(table.npa.tolist(), table.state.tolist(), strict=True):
        counts[f"{npa:03d}"][table.states[state]] += 1
    expected = {npa: c.most_common(1)[0][0] for npa, c in counts.items()}
    answer = node(
        'import { stateOf } from "./js/viewer/geo.js";\n'
        "const answer = Object.fromEntries(input.map((c) => [c, stateOf(c)]));",
        sorted(expected),
    )
    assert answer == expected


GEO_CASES: list[tuple[dict[str, str], list[Any], str | None]] = [
    # the templates' geographic columns (proxies/rm/templates.py), with demo values
    ({"id": "55", "label": "State", "type": "string"}, ["MA", "NY", "ON", "PR", ""], "state"),
    ({"id": "44", "label": "Area Code", "type": "string"}, ["617", "212", "242"], "npa"),
    ({"id": "7", "label": "Country", "type": "string"}, ["MEXICO", "UNITED KINGDOM"], "country"),
    ({"id": "6", "label": "Country Code", "type": "string"}, ["52", "44", "81"], "country"),
    ({"id": "54", "label": "City", "type": "string"}, ["BOSTON", "AUSTIN", "NEWARK"], None),
    # a label alone (no values yet), and a label the values contradict
    ({"id": "55", "label": "Terminating State"}, [], "state"),
    ({"id": "x", "label": "State"}, ["OPEN", "CLOSED", "OPEN"], None),
    ({"id": "x", "label": "NPA", "type": "number"}, [617, 212, 305], "npa"),
    # values alone: text columns only, three distinct values of one kind
    ({"id": "x", "label": "Where", "type": "string"}, ["617", "212", "415"], "npa"),
    ({"id": "x", "label": "Where", "type": "string"}, ["ma", "Texas", "NY"], "state"),
    ({"id": "x", "label": "Where", "type": "string"}, ["Mexico", "Japan", "France"], "country"),
    ({"id": "x", "label": "Where", "type": "string"}, ["617", "212"], None),
    ({"id": "x", "label": "Where", "type": "string"}, ["617", "212", "800"], None),
    ({"id": "x", "label": "Where", "type": "string"}, ["MX", "JP", "FR"], None),
    ({"id": "x", "label": "Calls", "type": "number"}, [617, 212, 415], None),
    ({"id": "x", "label": "Statement Date", "type": "date"}, ["2024-01-01"], None),
]


def test_geo_kind_of_columns() -> None:
    answer = node(
        'import { geoKindOf } from "./js/viewer/geo.js";\n'
        "const answer = input.map(([column, values]) => geoKindOf(column, values));",
        [[column, values] for column, values, _ in GEO_CASES],
    )
    assert answer == [kind for _, _, kind in GEO_CASES]


def test_aggregate_by_state() -> None:
    rows = [
        {"g": "617", "v": 10},
        {"g": "508", "v": 2.5},
        {"g": "212", "v": None},
        {"g": "242", "v": 7},
        {"g": "800", "v": 1},
        {"g": "416", "v": 3},
        {"g": "", "v": 4},
    ]
    answer = node(
        'import { aggregateByState } from "./js/viewer/geo.js";\n'
        'const npa = aggregateByState(input, "g", "v", "npa");\n'
        'let error = ""; try { aggregateByState(input, "g", "v", "country"); }'
        " catch (err) { error = err.message; }\n"
        "const answer = { totals: [...npa.totals], unplaced: npa.unplaced, error };",
        rows,
    )
    assert answer["totals"] == [["MA", 12.5], ["ON", 3]]
    assert answer["unplaced"] == 3  # the Bahamas, toll free, blank (a blank value is skipped)
    assert answer["error"] == "the map shows states and area codes, not country"


# -- chart.js ----------------------------------------------------------------------------

COLUMNS = [
    {"id": "54", "label": "City", "type": "string", "decimals": 0},
    {"id": "67", "label": "Calls", "type": "number", "decimals": 0},
    {"id": "36", "label": "Minutes", "type": "number", "decimals": 1},
    {"id": "58", "label": "Amount", "type": "number", "decimals": 2},
    {"id": "D", "label": "Call Date", "type": "date", "decimals": 0},
]

RUN = """
import * as vega from "vega";
import * as vl from "vega-lite";
import { expressionInterpreter } from "vega-interpreter";
import { chartSpec, chartTypes, countMarks } from "./js/viewer/chart.js";

async function draw(spec) {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled, null, { ast: true }), {
    expr: expressionInterpreter,
    renderer: "none",
  });
  await view.runAsync();
  const marks = countMarks(view);
  view.finalize();
  return marks;
}
const answer = { chartTypes, cases: [] };
for (const c of input) {
  try {
    const spec = chartSpec(c);
    answer.cases.push({ spec, marks: await draw(spec) });
  } catch (err) {
    answer.cases.push({ error: err.message });
  }
}
"""


def expected_marks(case: dict[str, Any]) -> int:
    ys = case["ys"][:1] if case["type"] == "pie" else case["ys"]
    count = 0
    for row in case["rows"]:
        for y in ys:
            value = row.get(y)
            if isinstance(value, int | float) and (case["type"] != "pie" or value > 0):
                count += 1
    return count


def test_chart_spec_every_type() -> None:
    rows = [
        {"54": "BOSTON", "67": 1200, "36": 410.5, "58": 19.99, "D": "2024-03-01"},
        {"54": "AUSTIN", "67": 75, "36": None, "58": -2.5, "D": "2024-03-02"},
        {"54": "BOSTON", "67": 3, "36": 2.25, "58": 0, "D": "2024-03-04"},
    ]
    cases = [
        {"columns": COLUMNS, "rows": rows, "x": x, "ys": ys, "type": t}
        for t in ("bar", "line", "pie", "point")
        for x, ys in (("54", ["67"]), ("54", ["67", "36", "58"]), ("D", ["58"]), ("67", ["36"]))
    ]
    answer = node(RUN, cases)
    assert answer["chartTypes"] == ["bar", "line", "pie", "point"]
    for case, got in zip(cases, answer["cases"], strict=True):
        assert "error" not in got, (case["type"], case["x"], case["ys"], got)
        assert got["marks"] == expected_marks(case), (case["type"], case["x"], case["ys"])
    by = {
        (c["type"], c["x"], tuple(c["ys"])): g["spec"]
        for c, g in zip(cases, answer["cases"], strict=True)
    }
    bar = by[("bar", "54", ("67",))]
    assert bar["description"] == "Bar chart of Calls by City"
    assert bar["encoding"]["x"]["title"] == "City"
    assert bar["encoding"]["y"]["axis"]["format"] == ",.0f"
    values = bar["data"]["values"]
    # the rows' order; a repeated label is told apart; the values as the grid shows them
    assert [v["xText"] for v in values] == ["BOSTON", "AUSTIN", "BOSTON (2)"]
    assert values[0]["label"] == "City: BOSTON; Calls: 1,200"
    grouped = by[("bar", "54", ("67", "36", "58"))]
    assert grouped["encoding"]["xOffset"]["field"] == "series"
    assert grouped["encoding"]["color"]["sort"] == ["Calls", "Minutes", "Amount"]
    assert grouped["encoding"]["y"]["axis"]["format"] == ",.2f"
    assert [v["text"] for v in grouped["data"]["values"] if v["series"] == "Amount"] == [
        "19.99",
        "-2.50",
        "0.00",
    ]
    line = by[("line", "D", ("58",))]
    assert line["encoding"]["x"]["type"] == "temporal"
    assert line["data"]["values"][0]["x"] == 1709251200000  # 2024-03-01, UTC
    assert by[("point", "67", ("36",))]["encoding"]["x"]["type"] == "quantitative"
    pie = by[("pie", "54", ("67", "36", "58"))]
    assert (pie["mark"]["type"], pie["encoding"]["theta"]["field"]) == ("arc", "value")
    assert {v["series"] for v in pie["data"]["values"]} == {"Calls"}


def test_chart_spec_random_rows() -> None:
    rng = random.Random(14)
    cases = []
    for _ in range(40):
        rows = []
        for _ in range(rng.randint(0, 30)):
            row: dict[str, Any] = {"54": rng.choice(["A", "B", "C", "D", "", None])}
            for y in ("67", "36", "58"):
                row[y] = rng.choice([None, 0, -rng.random() * 100, rng.random() * 1e6, "n/a"])
            rows.append(row)
        ys = rng.sample(["67", "36", "58"], rng.randint(1, 3))
        kind = rng.choice(["bar", "line", "pie", "point"])
        cases.append({"columns": COLUMNS, "rows": rows, "x": "54", "ys": ys, "type": kind})
    answer = node(RUN, cases)
    for case, got in zip(cases, answer["cases"], strict=True):
        assert "error" not in got, got
        assert got["marks"] == expected_marks(case), case


def test_chart_spec_errors() -> None:
    base = {"columns": COLUMNS, "rows": [], "x": "54", "ys": ["67"], "type": "bar"}
    cases = [
        {**base, "type": "radar"},
        {**base, "x": "99"},
        {**base, "ys": ["67", "nope"]},
        {**base, "ys": []},
    ]
    answer = node(RUN, cases)
    assert [c.get("error") for c in answer["cases"]] == [
        'unknown chart type "radar": one of bar, line, pie, point',
        'the chart\'s x column "99" is not in the report',
        'the chart\'s y column "nope" is not in the report',
        "a chart needs at least one y column",
    ]


def test_format_and_dates() -> None:
    answer = node(
        'import { formatNumber, numberFormat, parseDay } from "./js/viewer/chart.js";\n'
        "const answer = [formatNumber(1234.5, 2), formatNumber(-0.25, 1), formatNumber(7, 0),"
        ' numberFormat(3), parseDay("2024-02-29"), parseDay("20240301"), parseDay("03/01/2024"),'
        ' parseDay("2023-02-29"), parseDay("soon")];',
    )
    leap = 1_709_164_800_000  # 2024-02-29 00:00 UTC
    day = 86_400_000
    assert answer == ["1,234.50", "-0.3", "7", ",.3f", leap, leap + day, leap + day, None, None]


# -- map.js ------------------------------------------------------------------------------


def test_map_spec_over_the_atlas() -> None:
    rows = [
        {"s": "MA", "a": "617", "v": 10},
        {"s": "Massachusetts", "a": "508", "v": 5},
        {"s": "TX", "a": "512", "v": 1.5},
        {"s": "PR", "a": "787", "v": 3},
        {"s": "ON", "a": "416", "v": 4},
        {"s": "", "a": "242", "v": 2},
    ]
    answer = node(
        'import topojson from "topojson-client";\n'
        'import { mapSpec } from "./js/viewer/map.js";\n'
        'import { aggregateByState } from "./js/viewer/geo.js";\n'
        'const topo = JSON.parse(readFileSync("node_modules/us-atlas/states-10m.json", "utf8"));\n'
        "const features = topojson.feature(topo, topo.objects.states).features;\n"
        "const answer = {};\n"
        'for (const [key, kind] of [["s", "state"], ["a", "npa"]]) {\n'
        '  const { totals } = aggregateByState(input, key, "v", kind);\n'
        "  const { spec, shaded } = mapSpec(features, totals,"
        ' { geoLabel: "State", valueLabel: "Calls", decimals: 1 });\n'
        "  answer[kind] = { shaded, base: spec.layer[0].data.values.length,"
        " labels: spec.layer[1].data.values.map((f) => f.properties.label),"
        " description: spec.description, totals: [...totals] };\n"
        "}",
        rows,
    )
    for kind in ("state", "npa"):
        got = answer[kind]
        assert got["base"] == 51  # the 50 states and DC (of 56 features: no territories)
        assert got["shaded"] == 2  # MA and TX; PR and Ontario are off the Albers USA map
        assert sorted(got["labels"]) == [
            "State: Massachusetts; Calls: 15.0",
            "State: Texas; Calls: 1.5",
        ]
        assert got["description"].endswith("Calls by State, 2 states shaded")
        assert dict(got["totals"]) == {"MA": 15, "TX": 1.5, "PR": 3, "ON": 4}
