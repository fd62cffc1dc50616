// The Report Requestor's messages: ARD from the screens' values, and what an error concerns.
//
// Theory of operation
// -------------------
// The customization screens (builder.js) keep one value per ARD parameter -- the
// "data location" of each control of the SRTD/SURD tree (``NAME``, ``THRESHOLD``,
// ``OACCESS``, ...) -- as metadata values (text, groups, tagged groups).  buildArd()
// puts them in Appendix A's order around what the requestor knows itself (user,
// enterprise, template, product, category, language, currency, ACTIVE) and leaves out
// what carries nothing, so the Report Manager fills in its defaults.
//
// An error answer carries only its code (``ARDA<ERROR=6113>``).  fieldOf() says which
// parameter it concerns: most Appendix E codes name one (6113 the title, 6705 the
// range type, 6602/6603 the schedule's dates ...); for the generic ones (6103, 6114,
// 6703, 7003) locate() re-checks the values against the catalogue's rules
// (grammar/catalogue_rm.py) to find the parameter that breaks one.  Neither needs the
// DOM: both are tested under Node (test/requestor.test.mjs).

import { Group, Member, Message, Tagged } from "../protocol/metadata.js";
import { isEmpty, items, text } from "../wire.js";

/** ARD parameters in Appendix A's order (the canonical order of the typed catalogue). */
export const ARD_ORDER = [
  "USERID", "ENTPID", "STDRPTID", "NAME", "PRODUCT", "CATEGORY", "THRESHOLD", "SCHEDULE",
  "RANGETYPE", "SCHEDTYPE", "TIMEZONE", "NDIALED", "BILLING", "CARDNO", "IDAC", "GEO",
  "IACCESS", "OACCESS", "IDISTRANGE", "IUSAGE", "ODISTRANGE", "OUSAGE", "SORTBY",
  "DESCRIPTION", "COLUMNS", "ACTIVE", "DURRANGE", "TOTALMODE", "SUBTOTCOL", "MMADDR",
  "MMTEXT", "PGT", "PGPIN", "PGTXT", "EMAIL", "PAGE", "LANG", "CURR",
];

/** parameters sent even when empty would be refused: the requestor always fills them */
const ALWAYS = new Set(["NAME", "EMAIL", "PAGE", "SCHEDTYPE", "TIMEZONE"]);

/** products whose reports StarODS fulfils: BILLING is required (catalogue_rm ODS_PRODUCTS) */
export const ODS_PRODUCTS = new Set(["V", "C", "S"]);

/**
 * The ARD for the screens' *values*.
 * @param {{user: string, entp: string, templateId: number|string, product: string,
 *          category: string, lang?: string, curr?: string, active: boolean,
 *          values: Map<string, any>}} spec
 * @returns {Message}
 */
export function buildArd({ user, entp, templateId, product, category, lang, curr, active, values }) {
  const own = new Map([
    ["USERID", user],
    ["ENTPID", entp],
    ["STDRPTID", String(templateId)],
    ["PRODUCT", product],
    ["CATEGORY", category],
    ["ACTIVE", active ? "1" : "0"],
  ]);
  if (lang) own.set("LANG", lang);
  if (curr) own.set("CURR", curr);
  const members = [];
  for (const key of ARD_ORDER) {
    const value = own.has(key) ? own.get(key) : values.get(key);
    if (value === undefined || value === null) continue;
    if (isEmpty(value) && !own.has(key) && !ALWAYS.has(key)) continue;
    members.push(new Member(key, value));
  }
  return new Message("ARD", members);
}

// -- schedules -------------------------------------------------------------------------

/** ``1998-06-02T00:00`` (a datetime-local value) -> ``199806020000``, or "" */
export function stamp(local) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(local ?? "");
  return m ? `${m[1]}${m[2]}${m[3]}${m[4]}${m[5]}` : "";
}

/** ``199806020000`` -> ``1998-06-02T00:00`` (a datetime-local value), or "" */
export function local(stampText) {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(stampText ?? "");
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}` : "";
}

/**
 * The SCHEDULE value: ``A<START=...,END=...,START=...,END=...>`` for ad hoc ranges,
 * the bare kind (H, D, W, M) for a recurring report.
 * @param {"A"|"H"|"D"|"W"|"M"} kind
 * @param {{start: string, end: string}[]} [ranges] datetime-local values
 */
export function scheduleValue(kind, ranges = []) {
  if (kind !== "A") return kind;
  const members = [];
  for (const { start, end } of ranges) {
    members.push(new Member("START", stamp(start)));
    members.push(new Member("END", stamp(end)));
  }
  return new Tagged("A", new Group(members));
}

/** Read a SCHEDULE value back: {kind, ranges: [{start, end}] (datetime-local values)}. */
export function readSchedule(value) {
  if (typeof value === "string" && /^[AHDWM]$/.test(value)) return { kind: value, ranges: [] };
  if (value instanceof Tagged) {
    const ranges = [];
    let start = null;
    for (const m of value.group.members) {
      if (m.key === "START") start = local(text(m.value));
      else if (m.key === "END") {
        ranges.push({ start: start ?? "", end: local(text(m.value)) });
        start = null;
      }
    }
    return { kind: value.tag, ranges };
  }
  return { kind: "", ranges: [] };
}

// -- which parameter an error concerns ------------------------------------------------

/** Appendix E codes that name one ARD parameter. */
const CODE_FIELDS = new Map([
  [6113, "NAME"], [6600, "NAME"], [6823, "NAME"], [6824, "NAME"],
  [6704, "CATEGORY"], [6803, "CATEGORY"], [6804, "CATEGORY"],
  [6705, "RANGETYPE"],
  [6602, "SCHEDULE"], [6603, "SCHEDULE"],
  [6601, "NDIALED"],
  [6811, "DESCRIPTION"], [6812, "DESCRIPTION"],
  [6813, "EMAIL"], [6814, "EMAIL"],
  [6825, "PAGE"], [6826, "PAGE"],
  [6833, "SCHEDTYPE"], [6834, "SCHEDTYPE"],
  [6827, "PRODUCT"], [6828, "PRODUCT"],
  [6835, "STDRPTID"], [6836, "STDRPTID"],
]);

/**
 * The ARD parameter an error code concerns, given the values that were sent.
 * @param {number} code
 * @param {Map<string, any>} values the screens' values
 * @param {string} product
 * @returns {string | null} null: the report as a whole
 */
export function fieldOf(code, values, product) {
  return CODE_FIELDS.get(code) ?? locate(code, values, product);
}

function columnsOf(values) {
  return items(values.get("COLUMNS") ?? "");
}

/** Re-check the catalogue's rules to find what a generic code (6103, 6114, 6703, 7003) is about. */
export function locate(code, values, product) {
  const get = (key) => values.get(key) ?? "";
  if (code === 6114 || code === 6703) {
    if (ODS_PRODUCTS.has(product) && isEmpty(get("BILLING"))) return "BILLING";
    if (product === "T" && isEmpty(get("NDIALED"))) return "NDIALED";
    const mode = text(get("TOTALMODE"));
    if ((mode === "1" || mode === "3") && isEmpty(get("SUBTOTCOL"))) return "SUBTOTCOL";
    if (text(get("SCHEDTYPE")) === "A" && isEmpty(get("RANGETYPE"))) return "RANGETYPE";
    return null;
  }
  if (code === 7003) return isEmpty(get("BILLING")) ? null : "BILLING";
  if (code !== 6103) return null;
  const schedule = readSchedule(get("SCHEDULE"));
  const adhoc = text(get("SCHEDTYPE")) === "A";
  if (schedule.kind && (schedule.kind === "A") !== adhoc) return "SCHEDULE";
  for (const { start, end } of schedule.ranges) {
    if (!stamp(start) || !stamp(end) || stamp(end) < stamp(start)) return "SCHEDULE";
  }
  const columns = columnsOf(values);
  for (const key of items(get("SORTBY"))) {
    if (!columns.includes(key.replace(/[AD]$/, ""))) return "SORTBY";
  }
  for (const column of items(get("SUBTOTCOL"))) {
    if (!columns.includes(column)) return "SUBTOTCOL";
  }
  const mail = text(get("MMADDR"));
  if (mail && !mail.includes("@")) return "MMADDR";
  const pin = text(get("PGPIN"));
  if (pin && !/^[0-9]{1,8}$/.test(pin)) return "PGPIN";
  const threshold = get("THRESHOLD");
  if (threshold instanceof Group) {
    for (const m of threshold.members) {
      if (m.key && !/^[0-9]{1,4}$/.test(text(m.value))) return "THRESHOLD";
    }
  }
  if (text(get("NAME")).length > 100) return "NAME";
  return null;
}
