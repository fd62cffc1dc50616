// BILLING and GEO values: the hierarchy entries of an ARD (no DOM: tested under Node).
//
// Theory of operation
// -------------------
// The seed's ARD names hierarchy entries as tagged groups of (value, text) pairs glued
// together: ``BILLING=INBOUND<<90000003,90000003><NA,NA><NA,NA>>INBOUND<<...>>`` -- corp
// id, billing id, service location -- and ``GEO=GEO<<001,001 USA/WORLDZONE1><CO,CO>
// <NA,NA><NA,NA><NA,NA>>`` -- country, state, city, NPA, NXX; ``NA`` where a level is
// not chosen.  One entry is a Tagged value, several a Seq of them.  The pick lists
// give the trees: PL_HIER rows ``<level,corp,billing,location,name>`` (2 corp,
// 3 billing id, 4 service location) and PL_GEO rows ``<level,country,state,city,name>``.

import { Group, Member, Seq, Tagged } from "../protocol/metadata.js";
import { text } from "../wire.js";

const NA = "NA";

/** One entry: ``TAG<<a,a'><b,b'>...>`` of [value, text] pairs. */
export function entry(tag, pairs) {
  const groups = pairs.map(([a, b]) => new Group([new Member(null, a), new Member(null, b)]));
  return new Tagged(tag, new Group([new Member(null, groups.length === 1 ? groups[0] : new Seq(groups))]));
}

/** The value of several entries: "" (none), the entry, or their Seq. */
export function entriesValue(entries) {
  if (entries.length === 0) return "";
  return entries.length === 1 ? entries[0] : new Seq(entries);
}

/** The entries of a BILLING or GEO value: [{tag, pairs: [[value, text], ...]}]. */
export function readEntries(value) {
  const out = [];
  const parts = value instanceof Seq ? value.parts : [value];
  for (const part of parts) {
    if (!(part instanceof Tagged)) continue;
    const pairs = [];
    const take = (v) => {
      if (v instanceof Seq) v.parts.forEach(take);
      else if (v instanceof Group) {
        const keyless = v.members.filter((m) => m.key === null);
        if (keyless.some((m) => m.value instanceof Group || m.value instanceof Seq)) {
          keyless.forEach((m) => take(m.value));
        } else {
          pairs.push(keyless.map((m) => text(m.value)));
        }
      }
    };
    take(part.group);
    out.push({ tag: part.tag, pairs });
  }
  return out;
}

// -- the billing hierarchy ------------------------------------------------------------

/** PL_HIER rows -> [{key, label, level, children}] (corp -> billing id -> location). */
export function billingTree(rows) {
  const corps = [];
  const byKey = new Map();
  for (const [level, corp, billing, location, name] of rows) {
    const key = billingKey(corp, billing, location);
    const node = { key, level: Number(level), label: name ? `${idOf(corp, billing, location)} ${name}` : key, children: [] };
    byKey.set(key, node);
    if (node.level === 2) corps.push(node);
    else {
      const parent = byKey.get(node.level === 3 ? billingKey(corp, NA, NA) : billingKey(corp, billing, NA));
      (parent ? parent.children : corps).push(node);
    }
  }
  return corps;
}

function idOf(corp, billing, location) {
  if (location && location !== NA) return location;
  if (billing && billing !== NA) return billing;
  return corp;
}

/** ``corp|billing|location`` with NA for absent levels. */
export function billingKey(corp, billing = NA, location = NA) {
  return [corp || NA, billing || NA, location || NA].join("|");
}

/** The BILLING value for chosen keys (the seed's tag INBOUND, each id twice). */
export function billingValue(keys) {
  return entriesValue(keys.map((key) => entry("INBOUND", key.split("|").map((id) => [id, id]))));
}

/** The chosen keys of a BILLING value. */
export function billingKeys(value) {
  return readEntries(value).map(({ pairs }) => billingKey(...pairs.map((p) => p[0])));
}

// -- the geographic hierarchy -----------------------------------------------------------

/** ``country|state|city`` with NA for absent levels. */
export function geoKey(country, state = NA, city = NA) {
  return [country || NA, state || NA, city || NA].join("|");
}

/** PL_GEO rows -> [{key, label, level, children}] (country -> state -> city) and names. */
export function geoTree(rows) {
  const countries = [];
  const byKey = new Map();
  const names = new Map();
  for (const [level, country, state, city, name] of rows) {
    const key = geoKey(country, state, city);
    names.set(key, name);
    const node = { key, level, label: name, children: [] };
    byKey.set(key, node);
    if (level === "country") countries.push(node);
    else {
      const parent = byKey.get(level === "state" ? geoKey(country) : geoKey(country, state));
      (parent ? parent.children : countries).push(node);
    }
  }
  return { tree: countries, names };
}

/** The GEO value for chosen keys: country pair ``<001,001 NAME>``, others ``<X,X>``. */
export function geoValue(keys, names) {
  return entriesValue(
    keys.map((key) => {
      const [country, state, city] = key.split("|");
      const countryName = names.get(geoKey(country)) ?? "";
      const pairs = [
        [country, countryName ? `${country} ${countryName}` : country],
        [state, state],
        [city, city],
        [NA, NA],
        [NA, NA],
      ];
      return entry("GEO", pairs);
    }),
  );
}

/** The chosen keys of a GEO value. */
export function geoKeys(value) {
  return readEntries(value).map(({ pairs }) => geoKey(...pairs.slice(0, 3).map((p) => p[0])));
}
