/**
 * Charts of a report: bar, line, pie and point, with Vega-Lite, under the page's CSP.
 *
 * Theory of operation
 * -------------------
 * :func:`chartSpec` turns a report's columns and rows into a Vega-Lite spec, and is
 * pure (tested in node).  The rows are reshaped first, in JavaScript: one datum per
 * (row, y column) -- ``x``, ``series`` (the y column's label), ``value`` -- with the
 * texts the viewer shows already formatted (``xText``; ``text``: the value with its
 * column's DECIMAL, the grid's formatting), so the spec needs no expression of its
 * own and several y columns are simply coloured series (grouped bars, one line or one
 * point shape per series).  A datum whose value is blank or not a number is not
 * drawn (a pie draws only positive values); repeated x labels get " (2)", " (3)" so
 * no two bars share a place.  Dates are read as calendar days in UTC.  A pie shows
 * the first y column.  Axis labels use the columns' decimals (d3-format ``,.Nf``),
 * tooltips and the marks' ARIA labels show the x label and each value.
 *
 * :func:`renderChart` draws the spec with vega-embed into an SVG (countable and
 * readable by screen readers: Vega gives each mark an ``aria-label``).
 *
 * **The Content-Security-Policy** (``default-src 'self'``: no inline script or style,
 * no ``eval``) shapes how Vega is loaded and run:
 *
 * - Vega compiles its expressions to code at run time (what the CSP forbids as
 *   ``eval``) unless it is given vega-interpreter; that package ships only as an ES
 *   module importing ``vega-util`` by bare name, which a browser resolves only through
 *   an import map -- and an import map can only be inline script.  But the UMD build
 *   of vega-embed bundles the interpreter and uses it when asked for ``ast: true``.
 *   So :func:`loadVega` loads the UMD builds of vega, vega-lite and vega-embed (served
 *   from ``/vendor/`` as they are in ``node_modules``, pinned by package-lock) with
 *   ``<script src>`` elements -- same-origin scripts, which the policy allows -- once,
 *   in order, on first use; they define ``vega``, ``vegaLite`` and ``vegaEmbed``.
 * - vega-embed's own stylesheet and its actions menu, and vega-tooltip's injected
 *   ``<style>``, are inline style: they are off (``defaultStyle: false``,
 *   ``actions: false``, ``tooltip: false``).  Tooltips are then Vega's built-in ones,
 *   the ``title`` of the drawing -- the browser's own tooltip, no markup.
 *
 * The count returned is read from Vega's scenegraph: the items of the chart's marks
 * (rects, symbols, arcs -- a line chart's points), not of its axes or legends.
 */

/** the chart types (the metadata's DEFAULT_GRAPH_TYPE names them) */
export const chartTypes = Object.freeze(["bar", "line", "pie", "point"]);

/** the UMD builds and the globals they define, in load order (each needs the ones before) */
export const VEGA_SCRIPTS = Object.freeze([
  ["/vendor/vega/build/vega.min.js", "vega"],
  ["/vendor/vega-lite/build/vega-lite.min.js", "vegaLite"],
  ["/vendor/vega-embed/build/vega-embed.min.js", "vegaEmbed"],
]);

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";
const MARK_TYPES = new Set(["rect", "symbol", "arc", "shape"]);
const DEFAULT_WIDTH = 560;
const DEFAULT_HEIGHT = 300;
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";

// -- formatting -----------------------------------------------------------------------

const formatters = new Map();

/** *value* with *decimals* decimals and thousands separators, as the grid shows it. */
export function formatNumber(value, decimals = 0) {
  const d = Math.max(0, Math.min(20, Number.isInteger(decimals) ? decimals : 0));
  let f = formatters.get(d);
  if (!f) {
    f = new Intl.NumberFormat("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
    formatters.set(d, f);
  }
  return f.format(value);
}

/** d3-format specifier for a column's numbers (axis labels, legends). */
export function numberFormat(decimals = 0) {
  return `,.${Math.max(0, Number.isInteger(decimals) ? decimals : 0)}f`;
}

const ISO_DAY = /^(\d{4})-?(\d{2})-?(\d{2})(?:[T ].*)?$/;
const US_DAY = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/;

/** A date cell ("2024-03-05", "20240305", "03/05/2024", a Date) as UTC ms, or null. */
export function parseDay(value) {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.getTime();
  const t = String(value ?? "").trim();
  let m = ISO_DAY.exec(t);
  let y;
  let mo;
  let d;
  if (m) [, y, mo, d] = m;
  else if ((m = US_DAY.exec(t))) [, mo, d, y] = m;
  else return null;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d));
  const back = new Date(ms);
  return back.getUTCMonth() === Number(mo) - 1 && back.getUTCDate() === Number(d) ? ms : null;
}

function cellText(value, column) {
  if (value === null || value === undefined) return "";
  if (column.type === "number" && typeof value === "number") {
    return formatNumber(value, column.decimals);
  }
  return String(value);
}

// -- the spec ---------------------------------------------------------------------------

function columnOf(columns, id, role) {
  const found = columns.find((c) => c.id === id);
  if (!found) {
    throw new Error(`the chart's ${role} column ${JSON.stringify(id)} is not in the report`);
  }
  return found;
}

function labelOf(column) {
  return column.label || column.id;
}

/**
 * How the x column is laid out: "ordinal" (categories, in the rows' order),
 * "quantitative" (a number line) or "temporal" (days).
 */
function xScale(type, xColumn, rows) {
  if (type === "bar" || type === "pie") return "ordinal";
  if (xColumn.type === "number") {
    return rows.every((r) => typeof r[xColumn.id] === "number" || r[xColumn.id] == null)
      ? "quantitative"
      : "ordinal";
  }
  if (xColumn.type === "date") {
    return rows.every((r) => r[xColumn.id] == null || parseDay(r[xColumn.id]) !== null)
      ? "temporal"
      : "ordinal";
  }
  return "ordinal";
}

/**
 * The chart's data, one datum per (row, y column) with a number: `{x, xText, series,
 * value, text, label}` (`label`: "City: BOSTON; Calls: 1,234", the mark's ARIA label).
 * Exported for the tests.
 */
export function chartData({ columns, rows, x, ys, type }) {
  const xColumn = columnOf(columns, x, "x");
  const yColumns = ys.map((id) => columnOf(columns, id, "y"));
  const layout = xScale(type, xColumn, rows);
  const used = new Map();
  const data = [];
  for (const row of rows) {
    const raw = row[x];
    let xText = cellText(raw, xColumn);
    let xValue;
    if (layout === "quantitative") xValue = raw;
    else if (layout === "temporal") xValue = parseDay(raw);
    else {
      const n = (used.get(xText) ?? 0) + 1;
      used.set(xText, n);
      if (n > 1) xText = `${xText} (${n})`;
      xValue = xText;
    }
    if (xValue === null || xValue === undefined) continue;
    for (const column of type === "pie" ? yColumns.slice(0, 1) : yColumns) {
      const value = row[column.id];
      if (typeof value !== "number" || !Number.isFinite(value)) continue;
      if (type === "pie" && value <= 0) continue;
      const text = formatNumber(value, column.decimals);
      data.push({
        x: xValue,
        xText,
        series: labelOf(column),
        value,
        text,
        label: `${labelOf(xColumn)}: ${xText}; ${labelOf(column)}: ${text}`,
      });
    }
  }
  return { data, layout, xColumn, yColumns };
}

/**
 * The Vega-Lite spec of a chart.
 *
 * @param {object} options
 * @param {{id: string, label: string, type: string, decimals?: number}[]} options.columns
 * @param {object[]} options.rows rows keyed by column id (numbers are numbers)
 * @param {string} options.x the x column's id (a pie's slices)
 * @param {string[]} options.ys the y columns' ids (a pie uses the first)
 * @param {"bar"|"line"|"pie"|"point"} options.type
 * @param {number} [options.width]
 * @param {number} [options.height]
 * @returns {object} a Vega-Lite spec (its data inline)
 */
export function chartSpec({ columns, rows, x, ys, type, width, height }) {
  if (!chartTypes.includes(type)) {
    throw new Error(`unknown chart type ${JSON.stringify(type)}: one of ${chartTypes.join(", ")}`);
  }
  if (!Array.isArray(ys) || ys.length === 0) throw new Error("a chart needs at least one y column");
  const { data, layout, xColumn, yColumns } = chartData({ columns, rows, x, ys, type });
  const shown = type === "pie" ? yColumns.slice(0, 1) : yColumns;
  const xLabel = labelOf(xColumn);
  const yLabel = shown.map(labelOf).join(", ");
  const decimals = Math.max(...shown.map((c) => c.decimals ?? 0));
  const several = shown.length > 1;
  const seriesOrder = shown.map(labelOf);
  const tooltip = [
    { field: "xText", type: "nominal", title: xLabel },
    ...(several ? [{ field: "series", type: "nominal", title: "Series" }] : []),
    { field: "text", type: "nominal", title: several ? "Value" : yLabel },
  ];
  const valueEnc = {
    field: "value",
    type: "quantitative",
    title: yLabel,
    // whole numbers (decimals 0): no tick between two integers, or the labels repeat
    axis: decimals > 0 ? { format: numberFormat(decimals) } : { format: numberFormat(0), tickMinStep: 1 },
  };
  const seriesEnc = {
    field: "series",
    type: "nominal",
    title: "Series",
    sort: seriesOrder,
  };
  const description = `${type[0].toUpperCase()}${type.slice(1)} chart of ${yLabel} by ${xLabel}`;
  const spec = {
    $schema: SCHEMA,
    description,
    width: width ?? DEFAULT_WIDTH,
    height: height ?? DEFAULT_HEIGHT,
    data: { values: data },
    config: {
      font: FONT,
      view: { stroke: null },
      axis: { labelLimit: 160, titleFontSize: 12, labelFontSize: 11 },
      legend: { labelLimit: 200 },
    },
  };
  if (type === "pie") {
    data.forEach((d, i) => {
      d.index = i; // the slices go round in the rows' order
    });
    spec.mark = { type: "arc", tooltip: true, stroke: "#fff", strokeWidth: 1 };
    spec.encoding = {
      theta: { field: "value", type: "quantitative", stack: true },
      color: { field: "xText", type: "nominal", title: xLabel, sort: null },
      order: { field: "index", type: "quantitative" },
      tooltip,
      description: { field: "label" },
    };
    spec.width = Math.min(spec.width, spec.height);
    return spec;
  }
  let xEnc;
  if (layout === "quantitative") {
    xEnc = {
      field: "x",
      type: "quantitative",
      title: xLabel,
      axis: (xColumn.decimals ?? 0) > 0
        ? { format: numberFormat(xColumn.decimals) }
        : { format: numberFormat(0), tickMinStep: 1 },
      scale: { zero: false },
    };
  } else if (layout === "temporal") {
    xEnc = { field: "x", type: "temporal", title: xLabel, timeUnit: "utcyearmonthdate" };
  } else {
    xEnc = { field: "x", type: "ordinal", title: xLabel, sort: null, axis: { labelAngle: -40 } };
  }
  spec.encoding = { x: xEnc, y: valueEnc, tooltip, description: { field: "label" } };
  if (several) spec.encoding.color = seriesEnc;
  if (type === "bar") {
    spec.mark = { type: "bar", tooltip: true };
    if (several) spec.encoding.xOffset = { field: "series", type: "nominal", sort: seriesOrder };
  } else if (type === "line") {
    spec.mark = { type: "line", point: { filled: true, size: 40 }, tooltip: true };
  } else {
    spec.mark = { type: "point", filled: true, size: 60, tooltip: true };
    if (several) spec.encoding.shape = seriesEnc;
  }
  return spec;
}

// -- loading Vega ---------------------------------------------------------------------

let loading = null;

/** Load a same-origin classic script with a `<script src>` element (what the CSP allows). */
export function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.async = false;
    script.addEventListener("load", () => resolve(), { once: true });
    script.addEventListener("error", () => reject(new Error(`could not load ${src}`)), {
      once: true,
    });
    document.head.append(script);
  });
}

/** vega-embed, once its UMD scripts (and Vega's, Vega-Lite's) are loaded. */
export function loadVega() {
  if (globalThis.vegaEmbed) return Promise.resolve(globalThis.vegaEmbed);
  loading ??= (async () => {
    for (const [src, name] of VEGA_SCRIPTS) if (!globalThis[name]) await loadScript(src);
    if (!globalThis.vegaEmbed) throw new Error("vega-embed did not load");
    return globalThis.vegaEmbed;
  })().catch((err) => {
    loading = null; // a failed load may be retried
    throw err;
  });
  return loading;
}

/** vega-embed options that keep to the page's Content-Security-Policy */
export const EMBED_OPTIONS = Object.freeze({
  mode: "vega-lite",
  renderer: "svg",
  actions: false,
  ast: true, // expressions by vega-embed's bundled interpreter, never compiled to code
  defaultStyle: false, // no <style> element
  tooltip: false, // Vega's own title tooltip; vega-tooltip would inject a <style>
  logLevel: 1, // warnings only (to the console)
});

/** How many mark items (not axes, legends or the view's background) Vega drew. */
export function countMarks(view) {
  let n = 0;
  const walk = (mark) => {
    if (mark.marktype === "group") {
      for (const group of mark.items ?? []) for (const child of group.items ?? []) walk(child);
    } else if (mark.role === "mark" && MARK_TYPES.has(mark.marktype)) {
      n += mark.items?.length ?? 0;
    }
  };
  walk(view.scenegraph().root);
  return n;
}

/**
 * Draw *spec* with vega-embed into a new element replacing *container*'s content.
 *
 * @returns {Promise<{view: object, host: HTMLElement, destroy(): void}>}
 */
export async function embed(container, spec, className) {
  const vegaEmbed = await loadVega();
  const host = document.createElement("div");
  host.className = className;
  container.replaceChildren(host);
  const result = await vegaEmbed(host, spec, EMBED_OPTIONS);
  let done = false;
  return {
    view: result.view,
    host,
    destroy() {
      if (done) return;
      done = true;
      result.finalize();
      host.remove();
    },
  };
}

function widthFor(container) {
  const available = container.clientWidth || 0;
  return available > 0 ? Math.max(240, Math.min(1200, available - 160)) : DEFAULT_WIDTH;
}

/**
 * Draw a chart of a report into *container* (its content is replaced).
 *
 * @param {HTMLElement} container
 * @param {{columns: object[], rows: object[], x: string, ys: string[], type: string}} options
 *     as for :func:`chartSpec`
 * @returns {Promise<{marks: number, destroy(): void}>} the number of marks drawn
 *     (bars, points -- a line's points -- or arcs) and a function that removes it
 */
export async function renderChart(container, { columns, rows, x, ys, type }) {
  const spec = chartSpec({ columns, rows, x, ys, type, width: widthFor(container) });
  const drawn = await embed(container, spec, "viewer-chart");
  return { marks: countMarks(drawn.view), destroy: drawn.destroy };
}
