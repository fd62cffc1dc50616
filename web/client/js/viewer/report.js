// A report file read through its metadata: rows, subtotals, sorting, export (no DOM).
//
// Theory of operation
// -------------------
// The file (PROTOCOL.md section 6) is RFC 4180 CSV: line 1 the column ids, ``0`` (the
// row type) first; then ``D`` detail, ``S`` subtotal and ``T`` total lines.
// buildReport() keeps every cell as the text the file has -- what the grid shows and
// the export writes, so the numbers on screen, in the export and in the file are the
// same -- and shows the columns of COLUMN_DISPLAY_ORDER only, with their METACOLUMN
// labels, types, decimals, widths and flags.  A column with CALCULATE=1 is computed
// here for every line (CALCULATE_EXPRESSION, with Cn from the line and CTn from the
// T line) in the shared expression language (expr.js); others are taken as written.
// In the common case (no quoted cell) a line is split into its cells only when one
// of them is first read: the grid draws the lines in view, so a large report is not
// cut into cells before it is shown.  A line's row type (its first cell) is checked
// as it is read, as before; its fields read the same either way.
//
// arrange(report, {sort, breaks}) gives the lines in the order the grid shows them:
//
// * sort: keys [{id, dir}] -- numbers by value, text by code unit, empty cells last
//   (the SQL's NULLS LAST), the file's order breaking ties (stable);
// * breaks: the break (subtotal) columns, outermost first, or [] for none.  Detail
//   lines are grouped by them -- groups ascending, or in the direction a sort key
//   gives that column, empty last -- each group followed by its subtotal line, the
//   sort applying inside the groups (the layout the DSS writes: proxies/dss/sql.py).
//   When the breaks are the file's own SUBTOTCOL the file's S lines are used; for
//   other breaks the viewer makes them: every numeric column the sum of its group's
//   detail lines as written (exact decimals), except columns with an expression,
//   computed from the subtotal's own values and the report total, each rounded to
//   the column's DECIMAL digits, half away from zero -- the formatter's rules, so a
//   subtotal by the file's own break column made here differs from the file's only
//   where the file's details were rounded.  As the DSS does, the deepest level is
//   left out when its breaks cover every dimension column and each of its groups is
//   one line (the subtotals would repeat the lines);
// * the T line is the file's (always shown last); without one, CTn reads the sums
//   of the detail lines;
// * a PRESORTED file asked for in its own order (its SORT_COLUMNS, and its own
//   subtotals or, without S lines, none) is shown exactly as filed, with no sorting.
//
// exportCsv() writes what is shown: the visible columns in their order, a "Row"
// column first (empty, Subtotal, Total), the lines in the order shown, each cell
// exactly as displayed.

import { Dec, add, compileExpression, parseExpression, quantize } from "./expr.js";

/** Parse RFC 4180 text into rows of cells (\r\n or \n line ends; quotes as RFC 4180). */
export function parseCsv(text) {
  if (!text.includes('"')) {
    // the common case: no quoted cell, so every comma and line end is structural
    const lines = text.split(/\r?\n|\r/);
    if (lines.length && lines[lines.length - 1] === "") lines.pop();
    return lines.map((line) => line.split(","));
  }
  const out = [];
  let row = [];
  let i = 0;
  const n = text.length;
  if (n === 0) return out;
  for (;;) {
    let cell;
    if (text.charCodeAt(i) === 34) {
      // quoted: "" is a quote
      let j = i + 1;
      let buf = "";
      for (;;) {
        const q = text.indexOf('"', j);
        if (q === -1) throw new SyntaxError("a quoted cell is never closed");
        buf += text.slice(j, q);
        if (text.charCodeAt(q + 1) === 34) {
          buf += '"';
          j = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      cell = buf;
    } else {
      let j = i;
      while (j < n) {
        const c = text.charCodeAt(j);
        if (c === 44 || c === 10 || c === 13) break;
        j++;
      }
      cell = text.slice(i, j);
      i = j;
    }
    row.push(cell);
    if (i >= n) {
      out.push(row);
      return out;
    }
    const c = text.charCodeAt(i);
    if (c === 44) {
      i++;
    } else if (c === 13 || c === 10) {
      i += c === 13 && text.charCodeAt(i + 1) === 10 ? 2 : 1;
      out.push(row);
      row = [];
      if (i >= n) return out;
    } else {
      throw new SyntaxError(`unexpected character after a quoted cell at ${i}`);
    }
  }
}

const ROW_TYPES = new Set(["D", "S", "T"]);

/** The report file does not have the shape PROTOCOL.md section 6 gives it. */
export class ReportError extends Error {
  constructor(message) {
    super(message);
    this.name = "ReportError";
  }
}

function decimalsOf(column) {
  if (column.decimals !== null && column.decimals !== undefined) return column.decimals;
  return column.dataType === "I" || column.dataType === "L" ? 0 : 2;
}

/** A computed value as the file would write it ("" when empty). */
export function formatValue(value, column) {
  return value === null ? "" : quantize(value, decimalsOf(column)).toFixed();
}

/** The columns a report shows: COLUMN_DISPLAY_ORDER's, each with its METACOLUMN. */
export function shownColumns(meta) {
  return meta.order.map((id) => meta.columns.get(id)).filter(Boolean);
}

/**
 * The class of a file's lines when cells are split on first use: every field is a
 * getter (on the prototype) reading cell *i* of the line's text, and a setter that
 * gives the line a value of its own (a calculated column).
 * @param {[string, number][]} fields field name -> cell index (-1: not in the file)
 */
function lazyLines(fields) {
  class Line {
    constructor(type, k, text) {
      this._t = type;
      this._k = k;
      this._text = text;
      this._cells = null;
    }
  }
  for (const [field, i] of fields) {
    Object.defineProperty(Line.prototype, field, {
      enumerable: true,
      configurable: true,
      get() {
        if (i < 0) return "";
        this._cells ??= this._text.split(",");
        return this._cells[i] ?? "";
      },
      set(value) {
        Object.defineProperty(this, field, { value, writable: true, enumerable: true, configurable: true });
      },
    });
  }
  return Line;
}

/**
 * Read *text* (the data file) as *meta* (readMetadata) describes it.
 * @returns {{meta: object, columns: object[], lines: object[], details: object[],
 *            fileSubtotals: object[], total: object | null, dims: number[]}}
 *   every line is ``{_t: "D"|"S"|"T", _k: file line number, c<id>: text, …}``
 */
export function buildReport(text, meta) {
  // the common case (no quoted cell): every comma and line end is structural, so a
  // line is cut into cells only when a cell is read (lazyLines)
  const fast = !text.includes('"');
  const rawLines = fast ? text.split(text.includes("\r\n") ? "\r\n" : /\r?\n|\r/) : null;
  const table = fast ? null : parseCsv(text);
  const count = fast ? rawLines.length : table.length;
  const header = count ? (fast ? rawLines[0].split(",") : table[0]) : [];
  if (header[0] !== "0") {
    throw new ReportError("the first line of a report file holds the column ids, 0 first");
  }
  const ids = header.map((v) => Number.parseInt(v, 10));
  const at = new Map(ids.map((id, i) => [id, i]).filter(([id, i]) => i > 0 && Number.isFinite(id)));
  const columns = shownColumns(meta);
  // every line has the same fields in the same order (one object shape): the shown
  // columns, then the file's other columns (expressions may read them)
  const shownIds = new Set(columns.map((c) => c.id));
  const fields = [
    ...columns.map((c) => [c.field, at.get(c.id) ?? -1]),
    ...[...at].filter(([id]) => !shownIds.has(id)).map(([id, i]) => [`c${id}`, i]),
  ];
  const lines = [];
  const details = [];
  const fileSubtotals = [];
  let total = null;
  const Line = fast ? lazyLines(fields) : null;
  for (let n = 1; n < count; n++) {
    let line;
    if (fast) {
      const raw = rawLines[n];
      if (raw === "") continue;
      const comma = raw.indexOf(",");
      const type = comma < 0 ? raw : raw.slice(0, comma);
      if (!ROW_TYPES.has(type)) throw new ReportError(`line ${n + 1}: row type ${JSON.stringify(type)}`);
      line = new Line(type, n, raw);
    } else {
      const cells = table[n];
      if (cells.length === 1 && cells[0] === "") continue;
      const type = cells[0];
      if (!ROW_TYPES.has(type)) throw new ReportError(`line ${n + 1}: row type ${JSON.stringify(type)}`);
      line = { _t: type, _k: n };
      for (const [field, i] of fields) line[field] = i < 0 ? "" : (cells[i] ?? "");
    }
    lines.push(line);
    if (line._t === "D") details.push(line);
    else if (line._t === "S") fileSubtotals.push(line);
    else total ??= line;
  }
  const report = {
    meta,
    columns,
    lines,
    details,
    fileSubtotals,
    total,
    dims: columns.filter((c) => !c.numeric).map((c) => c.id),
  };
  const calculated = columns.filter((c) => c.calculate && c.expression);
  if (calculated.length) {
    const totals = totalsOf(report);
    for (const column of calculated) {
      const fn = compileExpression(parseExpression(column.expression));
      const ctValues = report.total ? valuesOf(report.total) : totals;
      for (const line of lines) {
        line[column.field] = formatValue(fn(valuesOf(line), ctValues), column);
      }
    }
  }
  return report;
}

/** A line's values for an expression: column id -> text (Cn reads them as decimals). */
function valuesOf(line) {
  const out = new Map();
  // for...in: a file's line has its fields as getters of its class (lazyLines)
  for (const key in line) {
    if (key.charCodeAt(0) === 99) out.set(Number(key.slice(1)), line[key]);
  }
  return out;
}

function dec(text) {
  return text === "" || text === undefined ? null : Dec.parse(text);
}

const PLAIN = /^(-?)(\d+)(?:\.(\d+))?$/;

/**
 * Sum a numeric column over *lines*, exactly (null when no line has a value).  The
 * cells are plain decimals: while the running sum stays a safe integer of units of
 * the smallest place seen, it is kept as a JS number; beyond that, as Dec.
 */
function sum(lines, field) {
  let units = 0;
  let scale = 0;
  let big = null;
  let seen = false;
  for (const line of lines) {
    const text = line[field];
    if (text === "" || text === undefined) continue;
    seen = true;
    if (big === null) {
      const m = PLAIN.exec(text);
      const places = m ? (m[3] ?? "").length : 99;
      if (m && places <= 12 && m[2].length + places <= 15) {
        const wider = Math.max(scale, places);
        const before = units * 10 ** (wider - scale);
        const n = Number(m[2] + (m[3] ?? "")) * 10 ** (wider - places);
        const next = m[1] ? before - n : before + n;
        if (Number.isSafeInteger(before) && Number.isSafeInteger(n) && Number.isSafeInteger(next)) {
          units = next;
          scale = wider;
          continue;
        }
      }
      big = new Dec(BigInt(units), -scale); // units is still exact here
    }
    const v = dec(text);
    if (v !== null) big = add(big, v);
  }
  if (!seen) return null;
  return big ?? new Dec(BigInt(units), -scale);
}

/** The values CTn reads: the T line's, else the sums of the detail lines. */
function totalsOf(report) {
  if (report.total) return valuesOf(report.total);
  return valuesOf(makeLine(report, report.details, "T", [], new Map()));
}

/** A subtotal (or total) line over *group*: *breaks* keep their value. */
function makeLine(report, group, type, breaks, totals) {
  const line = { _t: type, _k: -1 };
  const keep = new Set(breaks);
  const derived = [];
  for (const column of report.columns) {
    if (!column.numeric) {
      line[column.field] = keep.has(column.id) && group.length ? group[0][column.field] : "";
    } else if (column.expression) {
      derived.push(column);
    } else {
      const v = sum(group, column.field);
      line[column.field] = v === null ? "" : formatValue(v, column);
    }
  }
  for (const column of derived) {
    const fn = compileExpression(parseExpression(column.expression));
    line[column.field] = formatValue(fn(valuesOf(line), totals), column);
  }
  return line;
}

// -- ordering ----------------------------------------------------------------------------

function keyFn(report, id) {
  const column = report.meta.columns.get(id);
  const field = `c${id}`;
  if (column?.numeric) {
    return (line) => {
      const t = line[field];
      if (t === "" || t === undefined) return null;
      const n = Number(t);
      return Number.isNaN(n) ? null : n;
    };
  }
  return (line) => {
    const t = line[field];
    return t === "" || t === undefined ? null : t;
  };
}

function compareKeys(a, b) {
  if (a === b) return 0;
  if (a === null) return 1; // empty last, whatever the direction
  if (b === null) return -1;
  return a < b ? -1 : 1;
}

/** Sort *lines* (a new array) by *keys* [{id, dir}]: precomputed keys, stable. */
export function sortLines(report, lines, keys) {
  if (!keys.length) return [...lines];
  const fns = keys.map((k) => keyFn(report, k.id));
  const signs = keys.map((k) => (k.dir === "desc" ? -1 : 1));
  const values = keys.map((_k, j) => lines.map((line) => fns[j](line)));
  const order = lines.map((_l, i) => i);
  order.sort((x, y) => {
    for (let j = 0; j < keys.length; j++) {
      const a = values[j][x];
      const b = values[j][y];
      if (a === b) continue;
      if (a === null) return 1;
      if (b === null) return -1;
      return (a < b ? -1 : 1) * signs[j];
    }
    return x - y;
  });
  return order.map((i) => lines[i]);
}

function sameKeys(a, b) {
  return a.length === b.length && a.every((k, i) => k.id === b[i].id && k.dir === b[i].dir);
}

function sameBreaks(a, b) {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

/** Whether the file's S lines serve *breaks* (its own SUBTOTCOL, and it has S lines). */
export function fileHasBreaks(report, breaks) {
  return breaks.length > 0 && sameBreaks(breaks, report.meta.subtotalColumns) && report.fileSubtotals.length > 0;
}

/**
 * The lines in display order (see the module comment).
 * @param {object} report from buildReport
 * @param {{sort?: {id: number, dir: string}[], breaks?: number[]}} view
 * @returns {{lines: object[], total: object | null, subtotals: number, fromFile: boolean}}
 */
export function arrange(report, { sort = [], breaks = [] } = {}) {
  const meta = report.meta;
  const asFiled = report.fileSubtotals.length ? fileHasBreaks(report, breaks) : !breaks.length;
  if (meta.presorted && asFiled && sameKeys(sort, meta.sortColumns)) {
    // PRESORTED: the file is in this order already (the DSS sorted and subtotalled it)
    return {
      lines: report.lines.filter((l) => l._t !== "T"),
      total: report.total,
      subtotals: report.fileSubtotals.length,
      fromFile: report.fileSubtotals.length > 0,
    };
  }
  const inner = sort.filter((k) => !breaks.includes(k.id));
  if (!breaks.length) {
    return { lines: sortLines(report, report.details, sort), total: report.total, subtotals: 0, fromFile: false };
  }
  const fromFile = fileHasBreaks(report, breaks);
  const totals = totalsOf(report);
  const fileS = new Map();
  if (fromFile) {
    for (const line of report.fileSubtotals) {
      // an S line's level: how many of the breaks carry a value ... the last non-empty one
      let level = 0;
      for (let j = 0; j < breaks.length; j++) if (line[`c${breaks[j]}`] !== "") level = j + 1;
      const key = breaks.slice(0, Math.max(level, 1)).map((id) => line[`c${id}`]).join("\u0000");
      fileS.set(`${Math.max(level, 1)}:${key}`, line);
    }
  }
  const skipDeepest = report.dims.length > 0 && report.dims.every((id) => breaks.includes(id));
  const dirOf = new Map(sort.map((k) => [k.id, k.dir]));
  const out = [];
  let subtotals = 0;
  const walk = (lines, depth, prefix) => {
    if (depth === breaks.length) {
      out.push(...sortLines(report, lines, inner));
      return;
    }
    const id = breaks[depth];
    const fn = keyFn(report, id);
    const groups = new Map();
    for (const line of lines) {
      const k = fn(line);
      const list = groups.get(k);
      if (list) list.push(line);
      else groups.set(k, [line]);
    }
    const sign = dirOf.get(id) === "desc" ? -1 : 1;
    const singles = [...groups.values()].every((g) => g.length === 1);
    const keys = [...groups.keys()].sort((a, b) => {
      if (a === null || b === null) return compareKeys(a, b);
      return compareKeys(a, b) * sign;
    });
    for (const k of keys) {
      const group = groups.get(k);
      const path = [...prefix, group[0][`c${id}`]];
      walk(group, depth + 1, path);
      if (depth + 1 === breaks.length && skipDeepest && singles) continue;
      const level = depth + 1;
      const file = fileS.get(`${level}:${path.join("\u0000")}`);
      out.push(file ?? makeLine(report, group, "S", breaks.slice(0, level), totals));
      subtotals += 1;
    }
  };
  walk(report.details, 0, []);
  return { lines: out, total: report.total, subtotals, fromFile };
}

// -- export ---------------------------------------------------------------------------------

/** The "Row" cell of a line: "" for details, "Subtotal", "Total". */
export function rowLabel(line) {
  return line._t === "S" ? "Subtotal" : line._t === "T" ? "Total" : "";
}

function csvCell(text) {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * CSV (RFC 4180, \r\n) of what is shown.
 * @param {object[]} columns the visible columns, in their order
 * @param {object[]} lines the lines in the order shown (the T line last, if shown)
 */
export function exportCsv(columns, lines) {
  const out = [["Row", ...columns.map((c) => c.label)].map(csvCell).join(",")];
  for (const line of lines) {
    out.push([rowLabel(line), ...columns.map((c) => line[c.field] ?? "")].map(csvCell).join(","));
  }
  return `${out.join("\r\n")}\r\n`;
}

/** Rows for charts and maps: the detail lines, numbers as JS numbers (null when empty). */
export function chartRows(report, lines = report.details) {
  const numeric = report.columns.filter((c) => c.numeric);
  return lines
    .filter((l) => l._t === "D")
    .map((line) => {
      const row = {};
      for (const column of report.columns) row[column.field] = line[column.field];
      for (const column of numeric) {
        const t = line[column.field];
        const n = t === "" ? null : Number(t);
        row[column.field] = Number.isNaN(n) ? null : n;
      }
      return row;
    });
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** The chart API's column descriptions: [{id, label, type, decimals}]. */
export function chartColumns(report) {
  return report.columns.map((c) => {
    let type = c.numeric ? "number" : "string";
    if (!c.numeric && report.details.length && report.details.every((l) => l[c.field] === "" || DATE.test(l[c.field]))) {
      type = "date";
    }
    return { id: c.field, label: c.label, type, decimals: c.decimals ?? 0 };
  });
}
