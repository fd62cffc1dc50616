/**
 * The geographic view: a map of the United States shaded by a fact of the report.
 *
 * Theory of operation
 * -------------------
 * :func:`renderMap` sums the chosen fact per state (:func:`aggregateByState` in
 * ``geo.js``; area codes count for their state) and draws a choropleth with Vega-Lite:
 * the states of us-atlas (``states-10m.json``, read with topojson-client into GeoJSON
 * features, projected Albers USA) in grey underneath, and over them the states that
 * have a value, coloured by it.  The states are the 50 and DC -- the territories lie
 * outside the Albers USA projection, so they and Canada's provinces are listed in the
 * table but not drawn.  ``regions`` is the number of states shaded.
 *
 * The value is shown on hover (Vega's title tooltip: "State: Texas, Calls: 1,234"),
 * each shaded state carries the same text as its ARIA label, the SVG describes the
 * map, and a table of every state's value -- sorted by value, the values formatted
 * with the column's decimals -- follows it (in a ``<details>``, keyboard-operable), so
 * the map's content is available without the picture.
 *
 * The scripts come as in ``chart.js`` (the UMD builds, loaded on first use with
 * ``<script src>``, the CSP allows nothing else); topojson-client's UMD build defines
 * ``topojson``.  The atlas is fetched once per page.  :func:`mapSpec` is pure.
 */

import { embed, formatNumber, loadScript, numberFormat } from "./chart.js";
import { aggregateByState, geoKindOf, stateInfo, stateOfFips } from "./geo.js";

export const TOPOJSON_SCRIPT = "/vendor/topojson-client/dist/topojson-client.min.js";
export const ATLAS_URL = "/vendor/us-atlas/states-10m.json";

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
/** FIPS codes the Albers USA projection draws: the 50 states and DC */
const DRAWN = (fips) => Number(fips) <= 56;

let atlas = null;

async function loadTopojson() {
  if (!globalThis.topojson) await loadScript(TOPOJSON_SCRIPT);
  return globalThis.topojson;
}

/** The states and territories of us-atlas as GeoJSON features, fetched once. */
export function loadStates() {
  atlas ??= (async () => {
    const [topojson, response] = await Promise.all([
      loadTopojson(),
      fetch(ATLAS_URL, { credentials: "same-origin" }),
    ]);
    if (!response.ok) throw new Error(`could not load the map (${response.status})`);
    const topo = await response.json();
    return topojson.feature(topo, topo.objects.states).features;
  })().catch((err) => {
    atlas = null;
    throw err;
  });
  return atlas;
}

function columnLike(column) {
  return typeof column === "string" ? { id: column, label: column } : column;
}

/**
 * The Vega-Lite spec of the map.
 *
 * @param {object[]} features GeoJSON features of the states, `id` = FIPS code (those
 *     outside the Albers USA projection, the territories, are left out)
 * @param {Map<string, number>} totals state code -> value
 * @param {{geoLabel: string, valueLabel: string, decimals: number, width?: number}} labels
 * @returns {{spec: object, shaded: number}} the spec and how many states it shades
 */
export function mapSpec(features, totals, { geoLabel, valueLabel, decimals = 0, width }) {
  const base = [];
  const shaded = [];
  for (const feature of features) {
    const code = stateOfFips(feature.id);
    if (code === null || !DRAWN(feature.id)) continue;
    const name = stateInfo(code).name;
    const { id, geometry } = feature;
    base.push({ type: "Feature", id, geometry, properties: { name } });
    if (!totals.has(code)) continue;
    const value = totals.get(code);
    const text = formatNumber(value, decimals);
    shaded.push({
      type: "Feature",
      id,
      geometry,
      properties: { name, code, value, text, label: `State: ${name}; ${valueLabel}: ${text}` },
    });
  }
  const w = width ?? 640;
  const spec = {
    $schema: SCHEMA,
    description:
      `Map of the United States: ${valueLabel} by ${geoLabel}, ${shaded.length} states shaded`,
    width: w,
    height: Math.round(w * 0.62),
    projection: { type: "albersUsa" },
    config: { font: FONT, view: { stroke: null } },
    layer: [
      {
        name: "states",
        data: { values: base },
        mark: { type: "geoshape", fill: "#e4e4e7", stroke: "#fff", strokeWidth: 0.75, aria: false },
      },
      {
        name: "shaded",
        data: { values: shaded },
        mark: { type: "geoshape", stroke: "#fff", strokeWidth: 0.75, tooltip: true },
        encoding: {
          color: {
            field: "properties.value",
            type: "quantitative",
            title: valueLabel,
            scale: { scheme: "blues" },
            legend: { format: numberFormat(decimals) },
          },
          tooltip: [
            { field: "properties.name", type: "nominal", title: "State" },
            { field: "properties.text", type: "nominal", title: valueLabel },
          ],
          description: { field: "properties.label" },
        },
      },
    ],
  };
  return { spec, shaded: shaded.length };
}

function valueTable(totals, { geoLabel, valueLabel, decimals, unplaced }) {
  const details = document.createElement("details");
  details.className = "viewer-map-table";
  const summary = document.createElement("summary");
  summary.textContent = `${valueLabel} by state, as a table`;
  const table = document.createElement("table");
  const caption = document.createElement("caption");
  caption.textContent = `${valueLabel} by state (from ${geoLabel})`;
  const head = table.createTHead().insertRow();
  for (const title of ["State", valueLabel]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = title;
    head.append(th);
  }
  table.prepend(caption);
  const body = table.createTBody();
  const sorted = [...totals].sort((a, b) => b[1] - a[1]);
  for (const [code, value] of sorted) {
    const row = body.insertRow();
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = stateInfo(code)?.name ?? code;
    row.append(th);
    const td = row.insertCell();
    td.className = "number";
    td.textContent = formatNumber(value, decimals);
  }
  details.append(summary, table);
  if (unplaced > 0) {
    const note = document.createElement("p");
    const rows = unplaced === 1 ? "1 row is" : `${unplaced} rows are`;
    note.textContent = `${rows} not in a state (blank, another country or a non-geographic code) and not on the map.`;
    details.append(note);
  }
  return details;
}

/**
 * Draw the map of a report into *container* (its content is replaced).
 *
 * @param {HTMLElement} container
 * @param {object} options
 * @param {object[]} options.rows rows keyed by column id
 * @param {{id: string, label?: string, type?: string} | string} options.geoColumn the
 *     states or area codes (a column, or its id)
 * @param {{id: string, label?: string, decimals?: number} | string} options.valueColumn
 *     the fact that shades the states (summed per state)
 * @param {"state" | "npa"} [options.kind] how to read the geographic column (by
 *     default what :func:`geoKindOf` finds; a country column has no map)
 * @returns {Promise<{regions: number, destroy(): void}>} how many states are shaded
 */
export async function renderMap(container, { rows, geoColumn, valueColumn, kind }) {
  const geo = columnLike(geoColumn);
  const fact = columnLike(valueColumn);
  kind ??= geoKindOf(geo, rows.map((r) => r[geo.id]));
  const { totals, unplaced } = aggregateByState(rows, geo.id, fact.id, kind);
  const labels = {
    geoLabel: geo.label || geo.id,
    valueLabel: fact.label || fact.id,
    decimals: fact.decimals ?? 0,
    unplaced,
  };
  const features = await loadStates();
  const available = container.clientWidth || 0;
  const width = available > 0 ? Math.max(280, Math.min(960, available - 140)) : 640;
  const { spec, shaded } = mapSpec(features, totals, { ...labels, width });
  const drawn = await embed(container, spec, "viewer-map");
  drawn.host.after(valueTable(totals, labels));
  const table = drawn.host.nextElementSibling;
  return {
    regions: shaded,
    destroy() {
      drawn.destroy();
      table?.remove();
    },
  };
}
