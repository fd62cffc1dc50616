// Reading and writing the values of Appendix A messages (no DOM: tested under Node).
//
// Theory of operation
// -------------------
// protocol/metadata.js gives the tree; this module knows the shapes the Report
// Manager and order entry use inside it, the way starwrs.grammar.codecs does:
//
// * text(v)      -- a plain value ("" for anything else);
// * items(v)     -- a list: ``a``, ``a~b``, ``<a~b>``, ``<a,b>`` -> ["a", "b"];
// * list(xs)     -- the canonical list value: ``<>``, ``<a>``, ``<a~b~c>``;
// * rows(v)      -- pick-list rows ``<<1,DIAL-1><2,CARD>>`` -> [["1","DIAL-1"], ...];
// * categories(m)-- SRTL / SURL report lists: [{description, rows: [[cells]...]}];
// * nodes(m)     -- SRTD / SURD trees: [{level, label, screen, controls: [{id, value, location}]}];
// * errorOf(m)   -- the ERROR= code of an answer (0 when absent).

import { Group, Member, Seq, TList, Tagged } from "./protocol/metadata.js";

/** The text of a plain value, else "". */
export function text(value) {
  return typeof value === "string" ? value : "";
}

/** The items of a list value (empty items dropped). */
export function items(value) {
  const out = [];
  const add = (v) => {
    if (typeof v === "string") {
      if (v !== "") out.push(v);
    } else if (v instanceof TList) {
      v.items.forEach(add);
    } else if (v instanceof Group) {
      for (const m of v.members) if (m.key === null) add(m.value);
    }
  };
  add(value);
  return out;
}

/** The canonical list value of *values*: ``<>``, ``<a>`` or ``<a~b>``. */
export function list(values) {
  const xs = values.filter((v) => v !== "");
  if (xs.length === 0) return new Group([]);
  return new Group([new Member(null, xs.length === 1 ? xs[0] : new TList(xs))]);
}

function cells(group) {
  return group.members.filter((m) => m.key === null).map((m) => text(m.value));
}

/** Rows of a pick list or report list value: ``<<a,b><c,d>>`` -> [["a","b"],["c","d"]]. */
export function rows(value) {
  const out = [];
  const take = (v) => {
    if (v instanceof Group) {
      const inner = v.members.filter((m) => m.key === null);
      const nested = inner.length > 0 && inner.every((m) => m.value instanceof Group || m.value instanceof Seq);
      if (nested) inner.forEach((m) => take(m.value));
      else out.push(cells(v));
    } else if (v instanceof Seq) {
      v.parts.forEach(take);
    }
  };
  take(value);
  return out;
}

/** The ERROR= code of an answer message (0 when it has none). */
export function errorOf(message) {
  const value = message ? message.get("ERROR") : null;
  const n = Number.parseInt(text(value), 10);
  return Number.isFinite(n) ? n : 0;
}

/**
 * The report lists of SRTL and SURL: the first category is REPORTS=, every further
 * one a keyless group at the top level; each is ``Description=<row>`` then ``<row>``s.
 * @returns {{description: string, rows: string[][]}[]}
 */
export function categories(message) {
  const groups = [];
  let seen = false;
  for (const m of message.members) {
    if (m.key === "REPORTS") {
      seen = true;
      if (m.value instanceof Group) groups.push(m.value);
    } else if (seen && m.key === null && m.value instanceof Group) {
      groups.push(m.value);
    }
  }
  return groups
    .filter((g) => g.members.length > 0 && g.members[0].key !== null)
    .map((g) => {
      const [first, ...rest] = g.members;
      const rowsOf = [first.value, ...rest.filter((m) => m.key === null).map((m) => m.value)];
      return {
        description: first.key,
        rows: rowsOf.filter((v) => v instanceof Group).map(cells),
      };
    });
}

/**
 * The report-builder tree of SRTD / SURD: ``NODEn=<level,label,screen,<ctrl,value,loc>...>``.
 * @returns {{level: number, label: string, screen: string,
 *            controls: {id: string, value: any, location: string}[]}[]}
 */
export function nodes(message) {
  const found = [];
  for (const m of message.members) {
    const match = m.key && /^NODE(\d+)$/.exec(m.key);
    if (!match || !(m.value instanceof Group)) continue;
    const keyless = m.value.members.filter((x) => x.key === null);
    const [level, label, screen, ...rest] = keyless;
    found.push({
      n: Number(match[1]),
      level: Number.parseInt(text(level?.value), 10) || 1,
      label: text(label?.value),
      screen: text(screen?.value),
      controls: rest
        .filter((x) => x.value instanceof Group)
        .map((x) => {
          const parts = x.value.members;
          return {
            id: text(parts[0]?.value),
            value: parts[1] ? parts[1].value : "",
            location: text(parts[2]?.value),
          };
        })
        .filter((c) => c.id !== ""),
    });
  }
  return found.sort((a, b) => a.n - b.n);
}

/** True for a value that carries nothing (``""`` or ``<>``). */
export function isEmpty(value) {
  return value === "" || value === null || value === undefined || (value instanceof Group && value.members.length === 0);
}

/** A pick-list token such as ``PL_ACCESS`` (a control's field value naming its choices). */
export function pickListToken(value) {
  return typeof value === "string" && /^PL_[A-Z]+$/.test(value) ? value : null;
}

export { Group, Member, Seq, TList, Tagged };
