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
//   right.  Cells are text nodes made here (never markup from the file).
// * The T line is the grid's bottom calculation row: always in view, whatever the
//   scroll position.
// * Header clicks: a click sorts by that column (again: the other direction), a
//   Shift+click adds it as the next sort key, a Ctrl/Cmd+click selects the column;
//   dragging a header moves the column.  Each is reported to the viewer
//   (onHeader / onMoved), which owns the state and calls back setLines /
//   setColumns.
// * Lines are selected with their checkbox or by clicking them (each click toggles
//   one; dragging over lines selects them all); onSelection hears the change.

import { rowLabel } from "./report.js";

const TABULATOR = "../../vendor/tabulator-tables/dist/js/tabulator_esm.min.mjs";

let loading = null;

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

/** Pixels for a WIDTH in characters (and at least the label). */
function pixels(column) {
  const chars = Math.max(column.width || 8, Math.min(column.label.length, 24), 4);
  return Math.round(chars * 8.5 + 26);
}

/**
 * Create the grid in *el*.
 * @param {HTMLElement} el
 * @param {{report: object, columns: object[], hidden: Set<number>, lines: object[],
 *          total: object | null, selectedColumns: Set<number>, label: string,
 *          onHeader: (id: number, how: "sort" | "add" | "select") => void,
 *          onMoved: (ids: number[]) => void, onSelection: (count: number) => void}} spec
 * @returns {Promise<object>} resolves once the table is built and shows the lines
 */
export async function createGrid(el, spec) {
  const Tabulator = await loadTabulator();
  const { report, onHeader, onMoved, onSelection } = spec;
  let selectedColumns = spec.selectedColumns;
  let total = spec.total;
  const byField = new Map(report.columns.map((c) => [c.field, c]));

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
    visible: !spec.hidden.has(column.id),
    cssClass: column.numeric ? "num" : "text",
    ...(total ? { bottomCalc: () => total?.[column.field] ?? "", bottomCalcFormatter: textCell } : {}),
  });
  const fixed = [
    {
      formatter: "rowSelection",
      titleFormatter: "rowSelection",
      titleFormatterParams: { rowRange: "active" },
      hozAlign: "center",
      headerSort: false,
      width: 44,
      resizable: false,
      field: "_sel",
    },
    {
      title: "Row",
      field: "_row",
      titleFormatter: () => document.createTextNode("Row"),
      formatter: (cell) => document.createTextNode(rowLabel(cell.getData())),
      headerSort: false,
      width: 92,
      ...(total ? { bottomCalc: () => "Total", bottomCalcFormatter: textCell } : {}),
    },
  ];

  const table = new Tabulator(el, {
    data: spec.lines,
    index: "_k",
    columns: [...fixed, ...spec.columns.map(definition)],
    height: spec.height ?? "min(65vh, 36rem)",
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

  const api = {
    table,
    /** Show *lines* (the arrangement changed): selection and scroll start again. */
    async setLines(lines, newTotal = total) {
      total = newTotal;
      await table.replaceData(lines);
      table.recalc();
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
        if (dir) title.dataset.sorted = `${dir === "descending" ? "▼" : "▲"}${keys.length > 1 ? at + 1 : ""}`;
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
      table.destroy();
    },
  };
  return api;
}
