// What a report's .mtd says (seed Appendix F; PROTOCOL.md section 6; no DOM).
//
// Theory of operation
// -------------------
// The Report Manager writes one ``<METADATA=<CRITERIA=<…>,…,METACOLUMN=<…>…>>`` per
// report file (proxies/rm/metadata.py); the viewer has nothing else to go on.
// readMetadata() turns the parsed message into a plain object, reading it the way
// starwrs.grammar.catalogue_metadata does where the seed's examples and table
// disagree: key case does not matter; SUBTOTAL_COLUMNS is SUBTOTCOL,
// DEFAULT_Y_COLUMN is DEFAULT_Y_COLUMNS, Timezone is Time_zone; id lists may be
// ``<54~55>``, ``<5,6>``, ``<54>`` or ``54``.  Missing optional parts get the
// catalogue's defaults.  Column data types: S (text) and C, I, N, D, L (numbers --
// the seed's own examples write amounts as C with two decimals); a cell that is not
// a plain decimal is shown as text whatever the type says.
//
// criteriaLines() gives the lines printed above the report: every CRITERIA member
// in its order, its key as a label (``Time_zone`` -> "Time zone"), its value as one
// line of text (lists joined with ", ", hierarchy entries such as
// ``INBOUND<<90000003,90000003><NA,NA><NA,NA>>`` as "INBOUND 90000003 90000003",
// a ``Total_…=<58,22.49>`` pair as its amount).

import { Group, Seq, TList, Tagged } from "../protocol/metadata.js";
import { items } from "../wire.js";

export const NUMERIC_TYPES = new Set(["C", "I", "N", "D", "L"]);
export const GRAPH_TYPES = Object.freeze({ 1: "bar", 2: "line", 3: "pie", 4: "point" });
export const TOTAL_MODES = Object.freeze({ 0: "none", 1: "subtotals", 2: "total", 3: "both" });

const ALIASES = { SUBTOTAL_COLUMNS: "SUBTOTCOL", DEFAULT_Y_COLUMN: "DEFAULT_Y_COLUMNS", TIMEZONE: "TIME_ZONE" };

/** A MetadataError: the file is not Appendix F metadata. */
export class MetadataError extends Error {
  constructor(message) {
    super(message);
    this.name = "MetadataError";
  }
}

function keyOf(key) {
  const upper = (key ?? "").toUpperCase();
  return ALIASES[upper] ?? upper;
}

/** Members of a group by canonical key (first wins), and the METACOLUMNs in order. */
function index(members) {
  const found = new Map();
  const columns = [];
  for (const m of members) {
    const key = keyOf(m.key);
    if (key === "METACOLUMN") columns.push(m.value);
    else if (key && !found.has(key)) found.set(key, m.value);
  }
  return { found, columns };
}

function plain(value) {
  if (typeof value === "string") return value.trim();
  if (value instanceof Group && value.members.length === 1 && value.members[0].key === null) {
    return plain(value.members[0].value);
  }
  return "";
}

function flag(value, fallback = false) {
  const t = plain(value);
  return t === "" ? fallback : t === "1";
}

function int(value, fallback = null) {
  const n = Number.parseInt(plain(value), 10);
  return Number.isFinite(n) ? n : fallback;
}

function ids(value) {
  if (value === null || value === undefined) return [];
  return items(value)
    .flatMap((v) => v.split(/[,~]/))
    .map((v) => Number.parseInt(v.trim(), 10))
    .filter((n) => Number.isFinite(n));
}

function sortKeys(value) {
  if (value === null || value === undefined) return [];
  return items(value)
    .map((v) => /^\s*(\d+)\s*([AD])?\s*$/i.exec(v))
    .filter(Boolean)
    .map((m) => ({ id: Number(m[1]), dir: (m[2] ?? "A").toUpperCase() === "D" ? "desc" : "asc" }));
}

/**
 * @typedef {{id: number, field: string, label: string, dataType: string, numeric: boolean,
 *            decimals: number | null, hideable: boolean, graphable: boolean, width: number,
 *            calculate: boolean, expression: string}} MetaColumn
 */

/**
 * Read a parsed .mtd message.
 * @param {import("../protocol/metadata.js").Message} message
 * @throws {MetadataError} no METADATA group, or no CRITERIA in it
 */
export function readMetadata(message) {
  const outer = message.members.find((m) => keyOf(m.key) === "METADATA");
  if (!outer || !(outer.value instanceof Group)) throw new MetadataError("the file has no METADATA=<…> group");
  const { found, columns } = index(outer.value.members);
  const criteria = found.get("CRITERIA");
  if (!(criteria instanceof Group)) throw new MetadataError("the metadata has no CRITERIA=<…>");
  const metaColumns = columns
    .filter((c) => c instanceof Group)
    .map((group) => {
      const f = index(group.members).found;
      const id = int(f.get("META_COLUMN_ID"));
      const dataType = plain(f.get("DATATYPE")).toUpperCase() || "S";
      return {
        id,
        field: `c${id}`,
        label: plain(f.get("COLUMN_LABEL")) || `Column ${id}`,
        dataType,
        numeric: NUMERIC_TYPES.has(dataType),
        decimals: int(f.get("DECIMAL")),
        hideable: flag(f.get("HIDEABLE"), true),
        graphable: flag(f.get("GRAPHABLE"), false),
        width: int(f.get("WIDTH"), 10),
        calculate: flag(f.get("CALCULATE")),
        expression: plain(f.get("CALCULATE_EXPRESSION")),
      };
    })
    .filter((c) => c.id !== null);
  const byId = new Map(metaColumns.map((c) => [c.id, c]));
  let order = ids(found.get("COLUMN_DISPLAY_ORDER")).filter((id) => byId.has(id));
  if (order.length === 0) order = metaColumns.map((c) => c.id);
  const mode = int(found.get("DEFAULT_GRAPH_MODE"), 0);
  const type = int(found.get("DEFAULT_GRAPH_TYPE"), 0);
  return {
    criteria: criteria.members,
    name: plain(criteria.get("Name") ?? criteria.members.find((m) => keyOf(m.key) === "NAME")?.value ?? ""),
    graph: {
      mode,
      type: GRAPH_TYPES[type] ?? null,
      x: flag(found.get("DEFINE_X_AXIS")) ? int(found.get("X_AXIS_COLUMN")) : null,
      ys: ids(found.get("DEFAULT_Y_COLUMNS")),
    },
    order: [...new Set(order)],
    storedOrder: ids(found.get("COLUMN_STORED_ORDER")),
    sortAllowed: flag(found.get("SORT_ALLOWED"), true),
    presorted: flag(found.get("PRESORTED")),
    presubtotaled: found.has("PRESUBTOTALED") ? flag(found.get("PRESUBTOTALED")) : null,
    totalMode: int(found.get("TOTALMODE"), 0),
    sortColumns: sortKeys(found.get("SORT_COLUMNS")).filter((k) => byId.has(k.id)),
    subtotalColumns: ids(found.get("SUBTOTCOL")).filter((id) => byId.has(id)),
    selectedSection: flag(found.get("SELECTED_SECTION")),
    columns: byId,
  };
}

// -- the criteria lines -------------------------------------------------------------------

function words(key) {
  return key.replace(/_/g, " ").replace(/\s+/g, " ").trim();
}

function isNa(text) {
  return text === "" || text.toUpperCase() === "NA";
}

/** One value as a line of text (see the module comment). */
export function valueText(value, columns = new Map()) {
  if (typeof value === "string") return value;
  if (value instanceof TList) return value.items.map((v) => valueText(v, columns)).join(", ");
  if (value instanceof Tagged) {
    const inner = valueText(value.group, columns);
    return inner ? `${value.tag} ${inner}` : value.tag;
  }
  if (value instanceof Seq) return value.parts.map((p) => valueText(p, columns)).filter(Boolean).join("; ");
  if (value instanceof Group) {
    const ms = value.members;
    // a total: <58,22.49> (column id, amount)
    if (
      ms.length === 2 &&
      ms.every((m) => m.key === null && typeof m.value === "string") &&
      /^\d+$/.test(ms[0].value) &&
      columns.has(Number(ms[0].value))
    ) {
      return ms[1].value;
    }
    const parts = ms.map((m) => {
      const text = valueText(m.value, columns);
      return m.key === null ? text : `${words(m.key)} ${text}`.trim();
    });
    return parts.filter((p) => !isNa(p)).join(value.members.every((m) => m.value instanceof Group) ? " " : ", ");
  }
  return "";
}

/** The amount of a ``Total_…=<58,22.49>`` pair, else null. */
function totalPair(value) {
  if (!(value instanceof Group) || value.members.length !== 2) return null;
  const [id, amount] = value.members;
  const plainPair = [id, amount].every((m) => m.key === null && typeof m.value === "string");
  return plainPair && /^\d+$/.test(id.value) ? amount.value : null;
}

/** The criteria lines: [{key, label, text}] in the file's order. */
export function criteriaLines(meta) {
  return meta.criteria
    .filter((m) => m.key !== null)
    .map((m) => {
      const total = /^total_/i.test(m.key) ? totalPair(m.value) : null;
      return { key: m.key, label: words(m.key), text: total ?? valueText(m.value, meta.columns) };
    });
}

