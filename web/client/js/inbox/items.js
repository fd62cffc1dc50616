// The inbox's items as the Message Center shows them (no DOM: tested under Node).
//
// Theory of operation
// -------------------
// The inbox answers ``L<ENTPID,USERID,CATEGORY[,INBOXID]>`` with
// ``Z<REQ=L,ERROR=0,INBOXID=<latest>,TTL=…,ITEMS=<<INBOXID,CATEGORY,TYPE,RPTTITLE,
// RPTCATEGORY,RQSTDT,FSIZE,MSIZE,ACK,EXPIRES>…>>`` (PROTOCOL.md section 6,
// docs/runtime.md "The inbox"); itemsOf() turns the rows into objects.  The other
// messages the Message Center sends are built here too (U acknowledge / TTL,
// D one / all, F fetch), so their shapes are tested without a browser.
//
// * Order (seed 001: "sorted by type ... and then by report type, report name, date,
//   and time"): TYPE, RPTCATEGORY, RPTTITLE ascending (case-insensitive), then the
//   request date and time newest first -- the seed names no direction, and the
//   newest run of a report is the one a user looks for.  Ties: the higher INBOXID
//   (the later arrival) first.
// * An item of category R or D whose metadata size is 0 is one the fulfilling server
//   could not produce (ERRFLAG=1): its data file is the reason, as text.
// * Times are GMT, as the inbox writes them (``YYYY-MM-DD HH:MM``).

import { Member, Message } from "../protocol/metadata.js";
import { rows, text } from "../wire.js";

/** Tabs of the Message Center (seed: reports, call detail, news). */
export const CATEGORIES = Object.freeze([
  { code: "R", name: "Reports" },
  { code: "D", name: "Call detail" },
  { code: "F", name: "News" },
]);

/**
 * @typedef {{id: number, category: string, type: string, title: string,
 *            reportType: string, requested: string, fsize: number, msize: number,
 *            ack: boolean, expires: string, failed: boolean}} Item
 */

function int(value) {
  const n = Number.parseInt(value ?? "", 10);
  return Number.isFinite(n) ? n : 0;
}

/**
 * The items and the latest INBOXID of an L answer.
 * @param {Message} message
 * @returns {{items: Item[], latest: number, ttl: number}}
 */
export function itemsOf(message) {
  const items = rows(message.get("ITEMS")).map((cells) => {
    const [id, category, type, title, reportType, requested, fsize, msize, ack, expires] = cells;
    const item = {
      id: int(id),
      category: category ?? "",
      type: type ?? "",
      title: title ?? "",
      reportType: reportType ?? "",
      requested: requested ?? "",
      fsize: int(fsize),
      msize: int(msize),
      ack: ack === "1",
      expires: expires ?? "",
    };
    item.failed = item.category !== "F" && item.msize === 0;
    return item;
  });
  return { items: items.filter((i) => i.id > 0), latest: int(text(message.get("INBOXID"))), ttl: int(text(message.get("TTL"))) };
}

const fold = (s) => s.toLocaleLowerCase("en");

/** The seed's order (see the module comment). */
export function compareItems(a, b) {
  for (const key of ["type", "reportType", "title"]) {
    const x = fold(a[key]);
    const y = fold(b[key]);
    if (x !== y) return x < y ? -1 : 1;
  }
  if (a.requested !== b.requested) return a.requested < b.requested ? 1 : -1;
  return b.id - a.id;
}

/** *items* in the seed's order (a new array). */
export function sortItems(items) {
  return [...items].sort(compareItems);
}

/** ``1864`` -> "1.8 KB", ``2_500_000`` -> "2.4 MB" (binary units, one decimal). */
export function sizeText(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** Milliseconds of a ``YYYY-MM-DD HH:MM`` GMT stamp, or NaN. */
export function stampMillis(stamp) {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2})$/.exec(stamp ?? "");
  if (!m) return Number.NaN;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
}

/** "in 45 days" / "in 3 hours" / "today" / "expired" from *expires* (GMT) and *now*. */
export function ttlText(expires, now = Date.now()) {
  const at = stampMillis(expires);
  if (!Number.isFinite(at)) return "";
  const left = at - now;
  if (left <= 0) return "expired";
  const days = Math.round(left / 86_400_000);
  if (days >= 2) return `in ${days} days`;
  const hours = Math.max(1, Math.round(left / 3_600_000));
  return `in ${hours} hour${hours === 1 ? "" : "s"}`;
}

/** Days from the item's arrival (*requested*) to *expires*: its TTL as U sets it. */
export function ttlDays(item) {
  const from = stampMillis(item.requested);
  const to = stampMillis(item.expires);
  if (!Number.isFinite(from) || !Number.isFinite(to)) return 45;
  return Math.max(1, Math.round((to - from) / 86_400_000));
}

function message(acronym, fields) {
  return new Message(
    acronym,
    Object.entries(fields)
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => new Member(k, String(v))),
  );
}

/** ``L<ENTPID,USERID,CATEGORY[,INBOXID]>`` */
export function listMessage(user, entp, category, after = 0) {
  return message("L", { ENTPID: entp, USERID: user, CATEGORY: category, INBOXID: after > 0 ? after : null });
}

/** ``U<ENTPID,USERID,INBOXID,ACK[,TTL]>`` (ACK always given: U's default is 1). */
export function updateMessage(user, entp, id, { ack, ttl } = {}) {
  return message("U", { ENTPID: entp, USERID: user, INBOXID: id, TTL: ttl ?? null, ACK: ack ? 1 : 0 });
}

/** ``D<INBOXID=n>`` */
export function deleteMessage(id) {
  return message("D", { INBOXID: id });
}

/** ``D<USERID,ENTPID>``: every item of the user. */
export function deleteAllMessage(user, entp) {
  return message("D", { USERID: user, ENTPID: entp });
}

/** The bulk resource of an item's half: ``F<INBOXID=n>`` or ``F<INBOXID=n,PART=M>``. */
export function fetchResource(id, part = "D") {
  return part === "M" ? `F<INBOXID=${id},PART=M>` : `F<INBOXID=${id}>`;
}

/** A file name for an item's saved files: its title, made safe, and the INBOXID. */
export function fileBase(item) {
  const safe = item.title.replace(/[^A-Za-z0-9._ -]+/g, "_").replace(/\s+/g, " ").trim().slice(0, 80);
  return `${safe || "item"} ${item.id}`;
}
