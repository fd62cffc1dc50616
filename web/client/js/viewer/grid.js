// The report grid: Tabulator (vendored, pinned in package-lock.json) over arranged lines.
//
// Theory of operation
// -------------------
// The grid shows what report.js arranged; it does no sorting or subtotalling of its
// own (header sorting is off), so the order on screen is the order the export
// writes.  Tabulator renders only the rows in view (virtual rendering), so a report
// of 100,000 lines scrolls as smoothly as one of 30.
//
// * Columns: a row-selection checkbox and a "Row" column (Subtotal / Total, so a
//   line's kind is text, not only colour) at the left, then one column per
//   METACOLUMN with its label, its WIDTH (characters) as pixels, numbers aligned
//   right.  Cells are text nodes made here (never markup from the file).  A column
//   is resized by the edge of its header (cells carry no resize handles: fewer
//   elements for every line drawn).
// * The T line is the grid's bottom calculation row: always in view, whatever the
//   scroll position.  Its cells are the T line's, as written: Tabulator computes
//   nothing over the lines (only the Row column has a calculation, "Total"), so a
//   large report is not read cell by cell to draw it.  Whether there is such a row
//   is fixed when the grid is made (*withTotal*): the viewer makes the grid from the
//   metadata while the data file is still coming, and makes it again in the rare
//   case the file's T line is not what the metadata's TOTALMODE announced.
// * Header clicks: a click sorts by that column (again: the other direction), a
//   Shift+click adds it as the next sort key, a Ctrl/Cmd+click selects the column;
//   dragging a header moves the column.  Each is reported to the viewer
//   (onHeader / onMoved), which owns the state and calls back setLines /
//   setColumns.
// * Lines are selected with their checkbox or by clicking them (each click toggles
//   one; dragging over lines selects them all); onSelection hears the change.
// * createGrid(el, {..., firstScreen: true}) and setLines(lines, total,
//   {firstScreen: true}) -- the viewer's first fill, into a new or an empty grid -- put
//   the first FIRST_SCREEN lines in and resolves once they are drawn; all the lines
//   follow right after the next paint (Tabulator makes a row object for every line,
//   which for a large report costs more than drawing the screen).  Lines selected
//   meanwhile stay selected; a later setLines waits for it and wins.
// * A new grid's first screen is drawn before Tabulator is built (createGrid with
//   firstScreen and onFirstScreen): drawFirstScreen puts the header, the lines a screen
//   holds and the total row into *el* as plain elements in Tabulator's own structure
//   and classes, so its stylesheet and ours draw them as the grid looks, and
//   onFirstScreen shows the screen; after that paint Tabulator is built (some 20-30 ms
//   for any report: its column set-up and first render, mostly forced layouts), and
//   its build empties *el* and draws the same lines in one task, so no frame shows
//   neither.  The drawn screen is inert and hidden from assistive technology (the
//   viewer is aria-busy until the grid is built); a click on it in those milliseconds
//   does nothing.

import { rowLabel } from "./report.js";

const TABULATOR = "../../vendor/tabulator-tables/dist/js/tabulator_esm.min.mjs";

let loading = null;

/** lines put into the grid first (setLines with firstScreen): more than a screen holds */
export const FIRST_SCREEN = 100;

/** The grid's height unless the caller gives one. */
const GRID_HEIGHT = "min(65vh, 36rem)";

/** Pixels of the two fixed columns at the left: the row checkbox and "Row". */
const SELECT_WIDTH = 44;
const ROW_WIDTH = 92;

/** Resolves after the next paint (rAF, then a task); in a hidden page, after a moment. */
function afterPaint() {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 250);
    requestAnimationFrame(() =>
      setTimeout(() => {
        clearTimeout(timer);
        resolve();
      }, 0),
    );
  });
}

/** The Tabulator class (loaded on first use); rejects when it is not installed. */
export function loadTabulator() {
  loading ??= import(TABULATOR).then((m) => m.TabulatorFull);
  loading.catch(() => {
    loading = null;
  });
  return loading;
}

function textCell(cell) {
  return document.createTextNode(cell.getValue() ?? "");
}

/** The header's mark of a column sorted as *keys* say ("▲1", "▼"), or "". */
function sortMark(keys, id) {
  const at = keys.findIndex((k) => k.id === id);
  if (at < 0) return "";
  return `${keys[at].dir === "desc" ? "▼" : "▲"}${keys.length > 1 ? at + 1 : ""}`;
}

/** Lines drawn by drawFirstScreen: what the grid shows at its 36rem (16 lines of 36 px), and more. */
export const DRAWN_LINES = 24;

function div(className, text) {
  const el = document.createElement("div");
  el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function box() {
  const input = document.createElement("input");
  input.type = "checkbox";
  input.tabIndex = -1;
  return input;
}

/**
 * Draw the grid's first screen into *el* as plain elements (see the module comment):
 * the header with the sort marks of *sort*, the first DRAWN_LINES of *lines*, and the
 * total row when *withTotal*.  Tabulator's build replaces them.
 * @param {HTMLElement} el
 * @param {{columns: object[], hidden: Set<number>, lines: object[], total: object | null,
 *          withTotal: boolean, sort?: {id: number, dir: string}[], height?: string}} spec
 */
export function drawFirstScreen(el, spec) {
  const shown = spec.columns.filter((c) => !spec.hidden.has(c.id));
  const sort = spec.sort ?? [];
  const cellsOf = (values) => {
    const cells = [div("tabulator-cell"), div("tabulator-cell", values.row)];
    cells[0].style.textAlign = "center";
    if (values.box) cells[0].append(box());
    shown.forEach((column, i) => {
      const cell = div(`tabulator-cell ${column.numeric ? "num" : "text"}`, values.cells[i]);
      cell.style.textAlign = column.numeric ? "right" : "left";
      cells.push(cell);
    });
    [SELECT_WIDTH, ROW_WIDTH, ...shown.map(pixels)].forEach((width, i) => {
      cells[i].style.width = `${width}px`;
    });
    return cells;
  };
  const headers = div("tabulator-headers");
  const titles = [
    { width: SELECT_WIDTH, title: null },
    { width: ROW_WIDTH, title: "Row" },
    ...shown.map((c) => ({ width: pixels(c), title: c.label, align: c.numeric ? "right" : "left", mark: sortMark(sort, c.id) })),
  ];
  for (const { width, title, align, mark } of titles) {
    const name = div("tabulator-col-title", title ?? undefined);
    if (title === null) name.append(box());
    if (align) name.style.textAlign = align;
    if (mark) name.dataset.sorted = mark;
    const holder = div("tabulator-col-title-holder");
    holder.append(name);
    const content = div("tabulator-col-content");
    content.append(holder);
    const col = div("tabulator-col");
    col.style.width = `${width}px`;
    col.append(content);
    headers.append(col);
  }
  const contents = div("tabulator-header-contents");
  contents.append(headers);
  const header = div("tabulator-header");
  header.append(contents);
  const table = div("tabulator-table");
  const rows = spec.lines.slice(0, DRAWN_LINES).map((line, n) => {
    const row = div(`tabulator-row tabulator-selectable ${n % 2 ? "tabulator-row-even" : "tabulator-row-odd"}`);
    if (line._t === "S") row.classList.add("line-subtotal");
    row.append(...cellsOf({ box: true, row: rowLabel(line), cells: shown.map((c) => line[c.field] ?? "") }));
    return row;
  });
  table.append(...rows);
  const holder = div("tabulator-tableholder");
  holder.style.flex = "1 1 0";
  holder.append(table);
  const frame = div("");
  frame.style.cssText = "display: flex; flex-direction: column; height: 100%;";
  frame.append(header, holder);
  let calcs = null;
  if (spec.withTotal) {
    calcs = div("tabulator-row tabulator-unselectable tabulator-calcs tabulator-calcs-bottom");
    calcs.append(...cellsOf({ box: false, row: "Total", cells: shown.map((c) => spec.total?.[c.field] ?? "") }));
    const sums = div("tabulator-calcs-holder");
    sums.append(calcs);
    const footer = div("tabulator-footer");
    footer.append(sums, div("tabulator-footer-contents")); // as Tabulator's (its CSS counts them)
    frame.append(footer);
  }
  frame.inert = true;
  frame.setAttribute("aria-hidden", "true");
  el.classList.add("tabulator");
  el.style.height = spec.height ?? GRID_HEIGHT;
  el.replaceChildren(frame);
  // heights as Tabulator sets them: every header column as tall as the header row, every
  // cell of a line as tall as its tallest (read in one layout, of this element alone:
  // it is its own layout root; then written)
  const groups = calcs ? [rows, [calcs]] : [rows];
  const tall = Math.max(...[...headers.children].map((c) => Math.ceil(c.getBoundingClientRect().height)));
  const heights = groups.map((group) =>
    group.length ? Math.max(...[...group[0].children].map((c) => c.offsetHeight)) : 0,
  );
  headers.style.height = `${tall}px`;
  for (const col of headers.children) col.style.height = `${tall}px`;
  groups.forEach((group, i) => {
    for (const row of group) for (const cell of row.children) cell.style.height = `${heights[i]}px`;
  });
}

/** Pixels for a WIDTH in characters (and at least the label). */
function pixels(column) {
  const chars = Math.max(column.width || 8, Math.min(column.label.length, 24), 4);
  return Math.round(chars * 8.5 + 26);
}

/**
 * Create the grid in *el*.
 * @param {HTMLElement} el
 * @param {{columns: object[], hidden: Set<number>, lines: object[],
 *          total: object | null, withTotal?: boolean, selectedColumns: Set<number>,
 *          label: string, onHeader: (id: number, how: "sort" | "add" | "select") => void,
 *          onMoved: (ids: number[]) => void, onSelection: (count: number) => void}} spec
 *   *withTotal* (default: whether *total* is given) -- the grid has a total row;
 *   *firstScreen* -- the viewer's first fill (see setLines); with *onFirstScreen* too,
 *   the first screen is drawn (drawFirstScreen, the header marked as *sort* says) and
 *   onFirstScreen called to show it before Tabulator is built
 * @returns {Promise<object>} resolves once the table is built and shows the lines
 */
export async function createGrid(el, spec) {
  const Tabulator = await loadTabulator();
  const { onHeader, onMoved, onSelection } = spec;
  let selectedColumns = spec.selectedColumns;
  let total = spec.total ?? null;
  const withTotal = spec.withTotal ?? Boolean(total);
  if (spec.firstScreen && spec.onFirstScreen && spec.lines.length) {
    drawFirstScreen(el, { ...spec, withTotal });
    spec.onFirstScreen();
    await afterPaint();
  }
  const byField = new Map(spec.columns.map((c) => [c.field, c]));

  const dataCell = (cell) => {
    const field = cell.getField();
    const column = byField.get(field);
    cell.getElement().classList.toggle("col-selected", column ? selectedColumns.has(column.id) : false);
    return textCell(cell);
  };
  const definition = (column) => ({
    title: column.label,
    field: column.field,
    titleFormatter: () => document.createTextNode(column.label),
    formatter: dataCell,
    width: pixels(column),
    hozAlign: column.numeric ? "right" : "left",
    headerHozAlign: column.numeric ? "right" : "left",
    headerSort: false,
    resizable: "header", // a handle on the header only, not on every cell drawn
    visible: !spec.hidden.has(column.id),
    cssClass: column.numeric ? "num" : "text",
    // the T line's cell, whatever Tabulator would compute (it computes nothing here)
    ...(withTotal ? { bottomCalcFormatter: () => document.createTextNode(total?.[column.field] ?? "") } : {}),
  });
  const fixed = [
    {
      formatter: "rowSelection",
      titleFormatter: "rowSelection",
      titleFormatterParams: { rowRange: "active" },
      hozAlign: "center",
      headerSort: false,
      width: SELECT_WIDTH,
      resizable: false,
      field: "_sel",
    },
    {
      title: "Row",
      field: "_row",
      titleFormatter: () => document.createTextNode("Row"),
      formatter: (cell) => document.createTextNode(rowLabel(cell.getData())),
      headerSort: false,
      resizable: "header",
      width: ROW_WIDTH,
      ...(withTotal ? { bottomCalc: () => "Total", bottomCalcFormatter: textCell } : {}),
    },
  ];

  const early = spec.firstScreen && spec.lines.length > FIRST_SCREEN;
  const table = new Tabulator(el, {
    data: early ? spec.lines.slice(0, FIRST_SCREEN) : spec.lines,
    index: "_k",
    columns: [...fixed, ...spec.columns.map(definition)],
    height: spec.height ?? GRID_HEIGHT,
    layout: "fitData",
    renderVertical: "virtual",
    renderVerticalBuffer: 200, // px beyond the view: half the first render's work
    movableColumns: true,
    selectableRows: true,
    columnCalcs: "table",
    placeholder: "No lines to show.",
    rowFormatter: (row) => {
      const type = row.getData()._t;
      const element = row.getElement();
      element.classList.toggle("line-subtotal", type === "S");
      element.classList.toggle("line-total", type === "T");
    },
  });

  await new Promise((resolve) => table.on("tableBuilt", resolve));
  el.setAttribute("aria-label", spec.label);
  // a focusable <div> may not sit between a grid and its rows (ARIA); the rows'
  // checkboxes are what the keyboard reaches, and Page Up / Down work from them
  el.querySelector(".tabulator-tableholder")?.removeAttribute("tabindex");

  table.on("headerClick", (event, column) => {
    const meta = byField.get(column.getField());
    if (!meta) return;
    const how = event.ctrlKey || event.metaKey ? "select" : event.shiftKey ? "add" : "sort";
    onHeader(meta.id, how);
  });
  table.on("columnMoved", () => {
    const ids = table
      .getColumns()
      .map((c) => byField.get(c.getField()))
      .filter(Boolean)
      .map((c) => c.id);
    onMoved(ids);
  });
  table.on("rowSelectionChanged", (data) => onSelection(data.length));

  let version = 0; // of setLines: a pending rest of the lines is dropped for a newer call
  let rest = Promise.resolve(); // the rest of a first-screen fill, still to come
  let destroyed = false;
  const loadRest = async (lines, mine) => {
    await afterPaint();
    if (destroyed || version !== mine) return;
    const selected = table.getSelectedData().map((line) => line._k);
    await table.replaceData(lines);
    if (selected.length) table.selectRow(selected);
  };
  if (early) rest = loadRest(spec.lines, version).catch(() => {});
  const api = {
    table,
    /** Whether the grid has a total row (see createGrid). */
    withTotal,
    /**
     * Show *lines* (the arrangement changed): selection and scroll start again.
     * *firstScreen*: resolve once the first FIRST_SCREEN lines are drawn, the rest
     * coming after the next paint (see the module comment).
     */
    async setLines(lines, newTotal = total, { firstScreen = false } = {}) {
      const mine = ++version;
      await rest;
      if (destroyed || version !== mine) return;
      total = newTotal;
      // the total row is drawn again as the data is replaced ("data-refreshed")
      if (firstScreen && lines.length > FIRST_SCREEN) {
        await table.replaceData(lines.slice(0, FIRST_SCREEN));
        rest = loadRest(lines, mine).catch(() => {});
        return;
      }
      await table.replaceData(lines);
    },
    /** Put the columns in *ids* order, showing those not in *hidden*. */
    setColumns(ids, hidden) {
      let previous = "_row";
      for (const id of ids) {
        const field = `c${id}`;
        const column = table.getColumn(field);
        if (!column) continue;
        table.moveColumn(field, previous, true);
        if (hidden.has(id)) column.hide();
        else column.show();
        previous = field;
      }
    },
    /** Say on the headers how the lines are sorted (aria-sort on the first key, a mark on each). */
    setSort(keys) {
      for (const [field, column] of byField) {
        const element = table.getColumn(field)?.getElement();
        if (!element) continue;
        const at = keys.findIndex((k) => k.id === column.id);
        const dir = at >= 0 ? (keys[at].dir === "desc" ? "descending" : "ascending") : null;
        if (at === 0) element.setAttribute("aria-sort", dir);
        else element.removeAttribute("aria-sort");
        const title = element.querySelector(".tabulator-col-title");
        if (!title) continue;
        const mark = sortMark(keys, column.id);
        if (mark) title.dataset.sorted = mark;
        else delete title.dataset.sorted;
      }
    },
    /** Mark the columns in *ids* as selected. */
    setSelectedColumns(ids) {
      selectedColumns = ids;
      for (const [field, column] of byField) {
        table.getColumn(field)?.getElement().classList.toggle("col-selected", ids.has(column.id));
      }
      table.redraw(true);
    },
    /** The selected lines, in the order shown. */
    selectedLines() {
      const rows = table.getSelectedRows();
      return rows.sort((a, b) => a.getPosition() - b.getPosition()).map((r) => r.getData());
    },
    destroy() {
      destroyed = true;
      table.destroy();
    },
  };
  return api;
}
