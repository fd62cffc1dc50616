// The chart and the map beside (or instead of) the grid: chart.js, map.js and geo.js.
//
// Theory of operation
// -------------------
// createGraphs() owns the chart pane of the viewer: the chart's controls (type, X
// axis among the dimension columns, values among the GRAPHABLE ones -- the view
// state starts from the metadata's graph defaults), the chart drawn by chart.js
// (Vega-Lite) from the detail lines in the order shown, and, when geo.js finds a
// column of states, NPAs or countries, a map of the United States shaded by a fact
// the user picks (map.js).  The three modules are imported when first needed; when
// one cannot be loaded or fails, the pane says so ("Charts are not available") and
// the grid is unaffected.  The chart's holder carries ``data-marks`` and the map's
// ``data-regions``: what was drawn, for people reading the page's source and tests.

import { h, replaceChildren } from "../dom.js";
import { chartColumns, chartRows } from "./report.js";
import { checkbox, labelledSelect, option } from "./ui.js";

const CHART_TYPES = { bar: "Bar", line: "Line", pie: "Pie", point: "Point" };

/**
 * @param {HTMLElement} pane
 * @param {{report: object, view: object, dims: object[], graphable: object[],
 *          lines: () => object[]}} spec *view* is the viewer's state (chartType, x, ys,
 *   mapValue are read and changed here); *lines* gives the lines in the order shown
 * @returns {{show(): void, render(): Promise<void>, destroy(): void}}
 */
export function createGraphs(pane, { report, view, dims, graphable, lines }) {
  // a figure: its label is allowed (and read) even while the chart is still being drawn
  const chartHolder = h("div", { class: "chart", role: "figure", "aria-label": "Chart" });
  const mapHolder = h("div", { class: "map" });
  const chartControls = h("div", { class: "chart-controls" });
  const mapBox = h("div", { class: "map-box", hidden: true });
  let chartHandle = null;
  let mapHandle = null;
  let geo = undefined; // undefined: not looked for yet; null: no geographic column

  function renderChartControls() {
    const type = labelledSelect(
      "Chart type",
      Object.entries(CHART_TYPES).map(([v, t]) => option(v, t, view.chartType === v)),
      (value) => {
        view.chartType = value;
        renderChart();
      },
    );
    const x = labelledSelect(
      "X axis",
      dims.map((c) => option(c.id, c.label, view.x === c.id)),
      (value) => {
        view.x = Number(value);
        renderChart();
      },
    );
    const ys = h(
      "fieldset",
      { class: "group y-columns" },
      h("legend", { text: "Values" }),
      graphable.map((c) =>
        checkbox(c.label, view.ys.includes(c.id), (on) => {
          view.ys = on ? [...view.ys, c.id] : view.ys.filter((id) => id !== c.id);
          renderChart();
        }),
      ),
    );
    replaceChildren(chartControls, type.field, x.field, ys);
  }

  async function renderChart() {
    chartHandle?.destroy();
    chartHandle = null;
    if (!view.ys.length || view.x === null) {
      replaceChildren(chartHolder, h("p", { class: "hint", text: "Choose at least one value to chart." }));
      delete chartHolder.dataset.marks;
      return;
    }
    let chart;
    try {
      chart = await import("./chart.js");
    } catch {
      replaceChildren(chartHolder, h("p", { class: "message notice", text: "Charts are not available." }));
      return;
    }
    const rows = chartRows(report, lines());
    chartHolder.replaceChildren();
    try {
      chartHandle = await chart.renderChart(chartHolder, {
        columns: chartColumns(report),
        rows,
        x: `c${view.x}`,
        ys: view.ys.map((id) => `c${id}`),
        type: view.chartType,
      });
      chartHolder.dataset.marks = String(chartHandle.marks);
    } catch (err) {
      replaceChildren(chartHolder, h("p", { class: "message notice", text: `Charts are not available: ${err.message}` }));
    }
    if (geo === undefined) await findGeo();
    if (geo) await renderMap();
  }

  async function findGeo() {
    geo = null;
    try {
      const { geoKindOf } = await import("./geo.js");
      const columns = chartColumns(report);
      for (const c of columns.filter((col) => col.type !== "number")) {
        const values = report.details.map((l) => l[c.id]);
        const kind = geoKindOf(c, values);
        if (kind) {
          geo = { column: c, kind };
          break;
        }
      }
    } catch {
      geo = null;
    }
    if (!geo || !graphable.length) {
      geo = null;
      return;
    }
    const value = labelledSelect(
      "Shade the map by",
      graphable.map((c) => option(c.id, c.label, view.mapValue === c.id)),
      (v) => {
        view.mapValue = Number(v);
        renderMap();
      },
    );
    replaceChildren(
      mapBox,
      h("h2", { text: `Map: ${geo.column.label}` }),
      value.field,
      mapHolder,
    );
    mapBox.hidden = false;
  }

  async function renderMap() {
    mapHandle?.destroy();
    mapHandle = null;
    try {
      const { renderMap: draw } = await import("./map.js");
      mapHolder.replaceChildren();
      mapHandle = await draw(mapHolder, {
        rows: chartRows(report, lines()),
        geoColumn: geo.column,
        valueColumn: chartColumns(report).find((c) => c.id === `c${view.mapValue}`),
      });
      mapHolder.dataset.regions = String(mapHandle.regions);
    } catch (err) {
      replaceChildren(mapHolder, h("p", { class: "message notice", text: `The map is not available: ${err.message}` }));
    }
  }

  replaceChildren(pane, h("h2", { text: "Chart" }), chartControls, chartHolder, mapBox);

  return {
    show() {
      renderChartControls();
      renderChart();
    },
    render: renderChart,
    destroy() {
      chartHandle?.destroy();
      mapHandle?.destroy();
    },
  };
}
