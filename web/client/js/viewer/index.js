// The Report Viewer (seed 001: "the report viewer 215 interprets metadata"; Appendix F).
//
// Theory of operation
// -------------------
// openViewer() shows one inbox item inside the Message Center.  It fetches the item's
// data file and, for a report, its .mtd over bulk transfer (bulk.js: a progress bar,
// resumed after a dropped connection, sha256 checked), then decides from the bytes
// what it holds (files.js): an image is drawn on a canvas, a text (news, a failed
// run's reason, an invoice passed instead of report data) is shown as text, and a
// report file with its metadata becomes
//
// * the criteria above the grid (report name, description, level, options, dates,
//   time zone, totals: metadata.js criteriaLines);
// * the grid (grid.js) of the COLUMN_DISPLAY_ORDER columns with their labels, types,
//   decimals and widths, the file's S and T lines shown as subtotals and the total,
//   CALCULATE columns computed (report.js);
// * the spreadsheet functions: sort by any set of columns (the Sort fieldset, or
//   header clicks), subtotals by another break column, show / hide (HIDEABLE only),
//   move and select columns, select lines, export what is shown as CSV (or only the
//   selection), print, save the item's files;
// * a chart (chart.js, Vega-Lite) of the GRAPHABLE columns, beside the grid or
//   instead of it, starting from DEFAULT_GRAPH_MODE / TYPE, X_AXIS_COLUMN and
//   DEFAULT_Y_COLUMNS; and a map of the United States (map.js) when a column holds
//   states, NPAs or countries (geo.js).  Both are loaded when first needed; without
//   them the viewer says "Charts are not available" and the grid works on.
//
// The metadata and the data file are fetched at once (both gets in flight, one
// progress bar).  The report's screen -- criteria, controls -- is made from the
// metadata, hidden, while the data file is still coming.  The grid is made either
// ahead, empty, with its columns (a data file above GRID_AHEAD_BYTES, still coming
// long after), and filled when the file is in; or, for a smaller file, once, with
// its first screen of lines when the file is in -- building Tabulator empty and
// then filling it costs about twice building it once, and a small file arrives
// about when the metadata has been read (grid.js: the rest of the lines follow the
// first paint).  Then the screen is shown (prepareReport, then fill): for a grid
// built once, with its first screen drawn by grid.js before Tabulator is built (the
// same lines in the same places, some 20-30 ms sooner), and the viewer aria-busy
// until Tabulator has it.  What the user sees is what it was: the progress bar,
// then the whole report.  A data file that is not a report after all (a text, an
// image) replaces the hidden screen.
//
// Nothing about a particular report is written here: everything shown comes from
// the metadata and the file.  The view's state (column order, hidden and selected
// columns, sort, breaks, chart choices) lives in one object; every control changes it
// and calls render functions, one way.

import { announce, h, replaceChildren, uid } from "../dom.js";
import { codeMeaning } from "../protocol/errors.js";
import { parse } from "../protocol/metadata.js";
import { fetchResource, fileBase, sizeText } from "../inbox/items.js";
import { BulkError, download } from "./bulk.js";
import { kindOf, saveBytes, textOf, unzipFirst, zipFiles } from "./files.js";
import { createGrid, loadTabulator } from "./grid.js";
import { criteriaLines, readMetadata } from "./metadata.js";
import { createGraphs } from "./graphs.js";
import { arrange, buildReport, exportCsv, fileHasBreaks, shownColumns } from "./report.js";
import { checkbox, labelledSelect, option } from "./ui.js";


/**
 * A data file larger than this is still coming long after an empty grid is built
 * (~15 ms): its grid is built ahead, from the metadata, and filled when the file is
 * in.  A smaller one arrives about when the metadata has been read, and its grid is
 * built once, with its first screen of lines -- half the grid's work.
 */
export const GRID_AHEAD_BYTES = 1 << 20;

/** The reason a download failed, as a sentence. */
export function failureText(err) {
  if (err instanceof BulkError) {
    if (err.code === 0) return `The connection kept dropping: ${err.message}.`;
    const meaning = codeMeaning(err.code);
    return `The inbox could not send the file: ${meaning || err.message} (${err.code}).`;
  }
  return `The item could not be shown: ${err.message}`;
}

/**
 * Start fetching an item's halves with one progress bar: {data, meta} promises of
 * bulk.js downloads ({bytes, sha256, resumes}), the metadata first, then the data;
 * *meta* is null for an item without metadata (and fails the data with it).
 * @param {object} item from inbox/items.js
 * @param {{signal?: AbortSignal, onProgress?: (held: number, total: number) => void,
 *          relogon?: () => Promise<void>}} options
 */
export function fetchParts(item, { signal, onProgress = () => {}, relogon } = {}) {
  const parts = item.msize > 0 ? ["D", "M"] : ["D"];
  const held = new Map();
  const totals = new Map([
    ["D", item.fsize],
    ["M", item.msize],
  ]);
  const report = () => {
    let h0 = 0;
    let t0 = 0;
    for (const p of parts) {
      h0 += held.get(p) ?? 0;
      t0 += totals.get(p) ?? 0;
    }
    onProgress(h0, t0);
  };
  const get = (part) =>
    download(fetchResource(item.id, part), {
      signal,
      relogon,
      onProgress: (n, total) => {
        held.set(part, n);
        totals.set(part, total);
        report();
      },
    });
  if (parts.length === 1) return { data: get("D"), meta: null };
  const meta = get("M");
  return { data: get("D"), meta };
}

/**
 * Fetch an item's halves with one progress bar: {data, meta (bytes or null), resumes}.
 * @param {object} item from inbox/items.js
 * @param {{signal?: AbortSignal, onProgress?: (held: number, total: number) => void,
 *          relogon?: () => Promise<void>}} options
 */
export async function fetchItem(item, options = {}) {
  const parts = fetchParts(item, options);
  const results = await Promise.all([parts.data, parts.meta]);
  return {
    data: results[0].bytes,
    meta: results[1]?.bytes ?? null,
    resumes: results.reduce((n, r) => n + (r?.resumes ?? 0), 0),
  };
}

function progressBox() {
  const id = uid("progress");
  const bar = h("progress", { id, max: "1", value: "0" });
  const note = h("span", { class: "progress-note", text: "" });
  const label = h("label", { for: id, text: "Downloading" });
  const box = h("div", { class: "progress-box" }, label, bar, note);
  return {
    box,
    update(held, total, resumes) {
      bar.max = Math.max(total, 1);
      bar.value = Math.min(held, bar.max);
      const pct = total ? Math.floor((100 * held) / total) : 0;
      note.textContent = `${pct}% of ${sizeText(total)}${resumes ? ` (resumed ${resumes === 1 ? "once" : `${resumes} times`})` : ""}`;
    },
  };
}

/**
 * Open *item* in *container*.
 * @param {HTMLElement} container
 * @param {{item: object, services: object, onClose: () => void}} spec
 * @returns {{close(): void, ready: Promise<void>}}
 */
export function openViewer(container, { item, services, onClose }) {
  const aborter = new AbortController();
  const cleanups = [];
  const heading = h("h1", { tabindex: "-1", text: item.title || `Item ${item.id}` });
  const lead = h("p", {
    class: "lead",
    text: [item.reportType, item.requested ? `requested ${item.requested} GMT` : "", sizeText(item.fsize + item.msize)]
      .filter(Boolean)
      .join(" · "),
  });
  const progress = progressBox();
  const status = h("div", { class: "message", role: "status" });
  const alert = h("div", { class: "message error", role: "alert", hidden: true });
  const body = h("div", { class: "viewer-body" });
  const root = h(
    "div",
    { class: "viewer", "aria-busy": "true" },
    h(
      "div",
      { class: "app-toolbar" },
      h("button", { type: "button", class: "quiet", text: "Back to the Message Center", onclick: () => close() }),
    ),
    heading,
    lead,
    progress.box,
    status,
    alert,
    body,
  );
  replaceChildren(container, root);
  queueMicrotask(() => heading.focus());

  let closed = false;
  function close() {
    if (closed) return;
    closed = true;
    aborter.abort();
    for (const fn of cleanups.splice(0)) {
      try {
        fn();
      } catch {
        // a chart that fails to go away must not keep the viewer open
      }
    }
    root.remove();
    onClose?.();
  }

  const relogon = async () => {
    // the backplane logs on again (keeping the screen) when a message finds the session gone
    await services.send("INBX", `F<INBOXID=${item.id}>`);
  };

  let resumes = 0;
  if (item.msize > 0) loadTabulator().catch(() => {}); // meanwhile: it is needed next
  const files = { data: null, meta: null, resumes: 0 }; // filled in once both halves are in
  const common = { item, services, files, status, cleanups, signal: aborter.signal };
  const ready = (async () => {
    const parts = fetchParts(item, {
      signal: aborter.signal,
      relogon,
      onProgress: (held, total) => progress.update(held, total, resumes),
    });
    // the report's screen, made (hidden) from the metadata while the data is coming
    const early = parts.meta?.then((got) => {
      if (closed) return null;
      const emptyGrid = item.fsize > GRID_AHEAD_BYTES;
      return prepareReport(body, { ...common, emptyGrid, meta: readMetadata(parse(textOf(got.bytes))) });
    });
    early?.catch(() => {}); // a metadata that cannot be read is reported below, if it matters
    const discard = async () => {
      const view = await early?.catch(() => null);
      view?.discard();
    };
    try {
      const [data, meta] = await Promise.all([parts.data, parts.meta]);
      files.data = data.bytes;
      files.meta = meta?.bytes ?? null;
      files.resumes = data.resumes + (meta?.resumes ?? 0);
    } catch (err) {
      await discard();
      if (closed) return;
      root.removeAttribute("aria-busy");
      progress.box.hidden = true;
      alert.textContent = failureText(err);
      alert.hidden = false;
      return;
    }
    if (closed) return;
    resumes = files.resumes;
    progress.box.hidden = true;
    let data = files.data;
    let kind = kindOf(data);
    if (kind === "zip") {
      data = (await unzipFirst(data)).bytes;
      kind = kindOf(data);
    }
    const verified = `Downloaded and verified (SHA-256)${resumes ? `, resumed ${resumes === 1 ? "once" : `${resumes} times`}` : ""}.`;
    const text = kind === "image" ? "" : textOf(data);
    if (kind === "image") {
      await discard();
      await showImage(body, data, item);
    } else if (files.meta && text.startsWith("0,")) {
      const view = await early;
      if (closed || !view) return;
      let report;
      try {
        report = buildReport(text, view.meta);
      } catch (err) {
        view.discard();
        throw err;
      }
      await view.fill(report);
    } else {
      await discard();
      showText(body, text, item);
    }
    if (closed) return;
    root.removeAttribute("aria-busy");
    if (!status.textContent) status.textContent = verified;
    announce(`${item.title} is open. ${verified}`);
  })().catch((err) => {
    if (closed) return;
    root.removeAttribute("aria-busy");
    progress.box.hidden = true;
    alert.textContent = failureText(err);
    alert.hidden = false;
  });

  return { close, ready };
}

async function showImage(body, bytes, item) {
  // drawn on a canvas: no object URL, so the page's img-src 'self' policy holds
  const bitmap = await createImageBitmap(new Blob([bytes]));
  const canvas = h("canvas", { class: "item-image", role: "img", "aria-label": item.title || "Image" });
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  replaceChildren(body, h("figure", { class: "item-figure" }, canvas, h("figcaption", { text: item.title })));
}

function showText(body, text, item) {
  const label = item.category === "F" ? "News" : item.failed ? "Why the report could not be produced" : "Text";
  replaceChildren(
    body,
    h("h2", { text: label }),
    h("pre", { class: "item-text", tabindex: "0", "aria-label": `${label}: ${item.title}`, text }),
  );
}

// -- a report ------------------------------------------------------------------------------

/**
 * The report's screen from its metadata alone, hidden (the ``preparing`` class) until
 * fill() puts the file's lines into it and shows it; discard() takes it away (the
 * data file was not a report, or did not come).
 * @returns {Promise<{meta: object, fill(report: object): Promise<void>, discard(): void}>}
 */
async function prepareReport(body, { meta, item, services, files, status, cleanups, signal, emptyGrid }) {
  let report = null; // from fill()
  const byId = meta.columns;
  const shown = shownColumns(meta);
  const dims = shown.filter((c) => !c.numeric);
  const graphable = shown.filter((c) => c.graphable && c.numeric);
  const fileBreaks = meta.subtotalColumns.filter((id) => dims.some((c) => c.id === id));
  const view = {
    order: shown.map((c) => c.id),
    hidden: new Set(),
    selected: new Set(),
    sort: meta.sortColumns.filter((k) => shown.some((c) => c.id === k.id)),
    breaks: [], // fill(): the file's own subtotals, if it has them
    mode: meta.graph.mode && graphable.length && dims.length ? "both" : "grid",
    chartType: meta.graph.type ?? "bar",
    x: dims.some((c) => c.id === meta.graph.x) ? meta.graph.x : (dims[0]?.id ?? null),
    ys: meta.graph.ys.filter((id) => graphable.some((c) => c.id === id)),
    mapValue: graphable[0]?.id ?? null,
    selectedLines: 0,
  };
  if (!view.ys.length && graphable.length) view.ys = [graphable[0].id];
  let grid = null;
  let gridCleanup = null;
  let arranged = null;
  const base = fileBase(item);
  const label = (id) => byId.get(id)?.label ?? String(id);

  // criteria
  const lines = criteriaLines(meta).filter((l) => l.key.toUpperCase() !== "NAME");
  const criteria = h(
    "section",
    { class: "criteria card", "aria-label": "Report criteria" },
    h("h2", { text: meta.name || item.title }),
    h(
      "dl",
      { class: "facts" },
      lines.map((l) => [h("dt", { text: l.label }), h("dd", { text: l.text || "—" })]),
    ),
  );

  // controls
  const gridStatus = h("p", { class: "grid-status", role: "status" });
  const sortBox = h("fieldset", { class: "group sort-keys" });
  const breakSelect = labelledSelect("Subtotals", [], (value) => {
    view.breaks = value ? value.split(",").map(Number) : [];
    rearrange(`Subtotals ${view.breaks.length ? `by ${view.breaks.map(label).join(", ")}` : "off"}.`);
  });
  const columnsList = h("ul", { class: "column-list" });
  const exportSelection = h("button", { type: "button", text: "Export selection", disabled: true, onclick: () => doExport(true) });
  const actions = h(
    "div",
    { class: "actions" },
    h("button", { type: "button", class: "primary", text: "Export CSV", onclick: () => doExport(false) }),
    exportSelection,
    h("button", { type: "button", text: "Print", onclick: () => doPrint() }),
    h("button", { type: "button", text: "Save files", onclick: () => saveFiles(item, files) }),
  );
  const modeBox = h("fieldset", { class: "group view-mode" }, h("legend", { text: "Show" }));
  const modes = [
    ["grid", "Grid"],
    ["chart", "Chart"],
    ["both", "Grid and chart"],
  ];
  const modeName = uid("mode");
  for (const [value, text] of modes) {
    const id = uid("mode");
    modeBox.append(
      h(
        "div",
        { class: "choice" },
        h("input", {
          id,
          type: "radio",
          name: modeName,
          value,
          checked: view.mode === value || null,
          disabled: value !== "grid" && !(graphable.length && dims.length) ? true : null,
          onchange: () => {
            view.mode = value;
            layout();
          },
        }),
        h("label", { for: id, text }),
      ),
    );
  }
  const controls = h(
    "div",
    { class: "viewer-controls" },
    modeBox,
    sortBox,
    h("div", { class: "subtotal-box" }, breakSelect.field),
    h("details", { class: "columns-panel" }, h("summary", { text: "Columns" }), columnsList),
    actions,
  );

  const gridEl = h("div", { class: "grid" });
  const gridPane = h("section", { class: "grid-pane", "aria-label": "Report grid" }, gridStatus, gridEl);
  const chartPane = h("section", { class: "chart-pane", "aria-label": "Chart and map" });
  const panes = h("div", { class: "viewer-panes" }, gridPane, chartPane);
  body.classList.add("preparing");
  replaceChildren(body, criteria, controls, panes);

  function renderSort() {
    const keys = [...view.sort, null];
    replaceChildren(
      sortBox,
      h("legend", { text: "Sort" }),
      keys.map((key, i) => {
        const which = i === 0 ? "Sort by" : "Then by";
        const col = labelledSelect(
          `${which} (key ${i + 1})`,
          [option("", "—", !key), ...view.order.map((id) => option(id, label(id), key?.id === id))],
          (value) => {
            const next = view.sort.slice();
            if (!value) next.splice(i, 1);
            else next[i] = { id: Number(value), dir: key?.dir ?? "asc" };
            view.sort = next.filter((k, j) => k && next.findIndex((o) => o && o.id === k.id) === j);
            rearrange(sortText());
          },
        );
        const dir = labelledSelect(
          `Order of key ${i + 1}`,
          [option("asc", "Ascending", key?.dir !== "desc"), option("desc", "Descending", key?.dir === "desc")],
          (value) => {
            if (!key) return;
            view.sort = view.sort.map((k) => (k.id === key.id ? { ...k, dir: value } : k));
            rearrange(sortText());
          },
          { disabled: key ? null : true },
        );
        return h("div", { class: "sort-key" }, col.field, dir.field);
      }),
    );
    sortBox.disabled = !meta.sortAllowed;
  }

  function renderBreaks() {
    const opts = [option("", "No subtotals", !view.breaks.length)];
    if (fileBreaks.length && report.fileSubtotals.length) {
      opts.push(option(fileBreaks.join(","), `By ${fileBreaks.map(label).join(", ")} (as in the file)`, sameList(view.breaks, fileBreaks)));
    }
    for (const c of dims) {
      if (fileBreaks.length === 1 && fileBreaks[0] === c.id && report.fileSubtotals.length) continue;
      opts.push(option(c.id, `By ${c.label}`, sameList(view.breaks, [c.id])));
    }
    replaceChildren(breakSelect.select, opts);
  }

  function renderColumns() {
    replaceChildren(
      columnsList,
      view.order.map((id, i) => {
        const c = byId.get(id);
        return h(
          "li",
          null,
          h("span", { class: "column-name", text: c.label }),
          checkbox(`Show ${c.label}`, !view.hidden.has(id), (on) => {
            if (on) view.hidden.delete(id);
            else view.hidden.add(id);
            grid?.setColumns(view.order, view.hidden);
            updateStatus(`${c.label} ${on ? "shown" : "hidden"}.`);
          }, { disabled: c.hideable ? null : true }),
          checkbox(`Select ${c.label}`, view.selected.has(id), (on) => {
            if (on) view.selected.add(id);
            else view.selected.delete(id);
            selectionChanged();
          }),
          h("button", { type: "button", text: "Left", "aria-label": `Move ${c.label} left`, disabled: i === 0 || null, onclick: () => move(id, -1) }),
          h("button", { type: "button", text: "Right", "aria-label": `Move ${c.label} right`, disabled: i === view.order.length - 1 || null, onclick: () => move(id, 1) }),
        );
      }),
    );
  }

  function move(id, by) {
    const i = view.order.indexOf(id);
    const j = i + by;
    if (j < 0 || j >= view.order.length) return;
    const next = view.order.slice();
    [next[i], next[j]] = [next[j], next[i]];
    view.order = next;
    grid?.setColumns(view.order, view.hidden);
    renderColumns();
    renderSort();
    columnsList.querySelector(`[aria-label="Move ${CSS.escape(label(id))} ${by < 0 ? "left" : "right"}"]`)?.focus();
    updateStatus(`${label(id)} moved ${by < 0 ? "left" : "right"}.`);
  }

  function sortText() {
    if (!view.sort.length) return "Not sorted: the file's order.";
    return `Sorted by ${view.sort.map((k) => `${label(k.id)} ${k.dir === "desc" ? "descending" : "ascending"}`).join(", then ")}.`;
  }

  function updateStatus(change = "") {
    if (!report) return; // fill() says it first
    const details = report.details.length;
    const parts = [`${arranged.lines.length + (arranged.total ? 1 : 0)} lines shown: ${details} detail line${details === 1 ? "" : "s"}`];
    if (view.breaks.length) {
      parts.push(`${arranged.subtotals} subtotal${arranged.subtotals === 1 ? "" : "s"} by ${view.breaks.map(label).join(", ")}${arranged.fromFile ? " (from the file)" : ""}`);
    }
    if (arranged.total) parts.push("the total");
    const selection = view.selectedLines || view.selected.size ? ` Selected: ${view.selectedLines} line${view.selectedLines === 1 ? "" : "s"}, ${view.selected.size} column${view.selected.size === 1 ? "" : "s"}.` : "";
    gridStatus.textContent = `${parts.join(", ")}. ${sortText()}${selection}`;
    if (change) status.textContent = change;
  }

  function selectionChanged() {
    exportSelection.disabled = !(view.selectedLines || view.selected.size);
    grid?.setSelectedColumns(view.selected);
    renderColumns();
    updateStatus();
  }

  async function rearrange(change) {
    arranged = arrange(report, view);
    renderSort();
    renderBreaks();
    updateStatus(change);
    if (grid) {
      grid.setSort(view.sort);
      await grid.setLines(arranged.lines, arranged.total);
    }
    if (view.mode !== "grid") graphs?.render();
  }

  function visibleColumns() {
    return view.order.filter((id) => !view.hidden.has(id)).map((id) => byId.get(id));
  }

  function doExport(selectionOnly) {
    let columns = visibleColumns();
    let rows = [...arranged.lines, ...(arranged.total ? [arranged.total] : [])];
    let name = `${base}.csv`;
    if (selectionOnly) {
      if (view.selected.size) columns = view.order.filter((id) => view.selected.has(id)).map((id) => byId.get(id));
      const picked = grid?.selectedLines() ?? [];
      if (picked.length) rows = picked;
      name = `${base} selection.csv`;
    }
    saveBytes(new TextEncoder().encode(exportCsv(columns, rows)), name, "text/csv");
    status.textContent = `Exported ${rows.length} lines and ${columns.length} columns as ${name}.`;
  }

  function doPrint() {
    const columns = visibleColumns();
    const rows = [...arranged.lines, ...(arranged.total ? [arranged.total] : [])];
    const sheet = h(
      "div",
      { class: "print-view" },
      h("h1", { text: meta.name || item.title }),
      h("dl", null, lines.map((l) => [h("dt", { text: l.label }), h("dd", { text: l.text })])),
      h(
        "table",
        null,
        h("thead", null, h("tr", null, h("th", { text: "Row" }), columns.map((c) => h("th", { text: c.label })))),
        h(
          "tbody",
          null,
          rows.map((line) =>
            h(
              "tr",
              { class: line._t === "D" ? null : line._t === "S" ? "line-subtotal" : "line-total" },
              h("td", { text: line._t === "S" ? "Subtotal" : line._t === "T" ? "Total" : "" }),
              columns.map((c) => h("td", { class: c.numeric ? "num" : null, text: line[c.field] })),
            ),
          ),
        ),
      ),
    );
    document.body.append(sheet);
    document.body.classList.add("printing");
    try {
      window.print();
    } finally {
      document.body.classList.remove("printing");
      sheet.remove();
    }
    status.textContent = `Sent ${rows.length} lines to the printer.`;
  }

  let graphs = null; // fill(): they draw the file's lines

  function layout() {
    const before = gridPane.hidden;
    gridPane.hidden = view.mode === "chart";
    chartPane.hidden = view.mode === "grid";
    panes.classList.toggle("both", view.mode === "both");
    if (view.mode !== "grid") graphs?.show();
    if (grid && before && !gridPane.hidden) grid.table.redraw(); // it was drawn while hidden
  }

  renderSort();
  renderColumns();
  // the panes first, so that the grid is built at its final size (no second layout)
  gridPane.hidden = view.mode === "chart";
  chartPane.hidden = view.mode === "grid";
  panes.classList.toggle("both", view.mode === "both");

  const gridSpec = (lines, total, withTotal) => ({
    columns: shown,
    hidden: view.hidden,
    sort: view.sort,
    lines,
    total,
    withTotal,
    selectedColumns: view.selected,
    label: `${meta.name || item.title}: report lines`,
    onHeader: (id, how) => {
      if (how === "select") {
        if (view.selected.has(id)) view.selected.delete(id);
        else view.selected.add(id);
        selectionChanged();
        return;
      }
      if (!meta.sortAllowed) return; // SORT_ALLOWED=0: the file's order only
      const at = view.sort.findIndex((k) => k.id === id);
      if (how === "add") {
        view.sort = at >= 0 ? view.sort.map((k) => (k.id === id ? { ...k, dir: k.dir === "asc" ? "desc" : "asc" } : k)) : [...view.sort, { id, dir: "asc" }];
      } else {
        const dir = at === 0 && view.sort[0].dir === "asc" ? "desc" : "asc";
        view.sort = [{ id, dir }];
      }
      rearrange(sortText());
    },
    onMoved: (ids) => {
      view.order = [...ids, ...view.order.filter((id) => !ids.includes(id))];
      renderColumns();
      renderSort();
    },
    onSelection: (count) => {
      view.selectedLines = count;
      selectionChanged();
    },
  });

  let gridFailed = false;
  async function makeGrid(lines, total, withTotal, firstScreen = false, onFirstScreen = undefined) {
    try {
      const made = await createGrid(gridEl, { ...gridSpec(lines, total, withTotal), firstScreen, onFirstScreen });
      if (signal.aborted) {
        made.destroy();
        return;
      }
      grid = made;
      gridCleanup = () => made.destroy();
      cleanups.push(gridCleanup);
    } catch (err) {
      gridFailed = true;
      replaceChildren(
        gridEl,
        h("p", { class: "message error", role: "alert", text: `The grid could not be shown: ${err.message}. Install the client's parts with npm ci --prefix web/client.` }),
      );
    }
  }

  function dropGrid() {
    if (!grid) return;
    const i = cleanups.indexOf(gridCleanup);
    if (i >= 0) cleanups.splice(i, 1);
    grid.destroy();
    grid = null;
    replaceChildren(gridEl);
  }

  // an empty grid with the columns, and a total row if TOTALMODE gives the file one
  if (emptyGrid) await makeGrid([], null, meta.totalMode === 2 || meta.totalMode === 3);

  return {
    meta,
    /** Put *report*'s lines in (buildReport over the data file) and show the screen. */
    async fill(built) {
      report = built;
      view.breaks = fileHasBreaks(report, fileBreaks) ? fileBreaks : [];
      arranged = arrange(report, view);
      renderBreaks();
      updateStatus();
      graphs = createGraphs(chartPane, { report, view, dims, graphable, lines: () => arranged.lines });
      cleanups.push(() => graphs.destroy());
      if (grid && grid.withTotal !== Boolean(arranged.total)) dropGrid(); // not the announced total
      if (grid) await grid.setLines(arranged.lines, arranged.total, { firstScreen: true });
      else if (!gridFailed && !signal.aborted) {
        // the screen shows with the grid's first screen drawn, then Tabulator takes it over
        const show = () => body.classList.remove("preparing");
        await makeGrid(arranged.lines, arranged.total, Boolean(arranged.total), true, show);
      }
      if (signal.aborted) return;
      grid?.setSort(view.sort);
      body.classList.remove("preparing");
      layout();
    },
    discard() {
      dropGrid();
      body.classList.remove("preparing");
      replaceChildren(body);
    },
  };
}

function sameList(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Save an item's files: data and metadata in one zip archive, or the data alone. */
export function saveFiles(item, files) {
  const base = fileBase(item);
  if (!files.meta) {
    const ext = kindOf(files.data) === "zip" ? "zip" : kindOf(files.data) === "image" ? "img" : "txt";
    saveBytes(files.data, `${base}.${ext}`);
    return `${base}.${ext}`;
  }
  const dataName = kindOf(files.data) === "zip" ? `${base}.csv_zip` : `${base}.csv`;
  saveBytes(
    zipFiles([
      { name: dataName, bytes: files.data },
      { name: `${base}.mtd`, bytes: files.meta },
    ]),
    `${base}.zip`,
    "application/zip",
  );
  return `${base}.zip`;
}
