// The metadata message tree, as starwrs.grammar.model: what parse() returns and
// serialize() takes.
//
// Theory of operation
// -------------------
// A message is an optional acronym and one bracketed body: an ordered list of
// Member.  A member has an optional key (``DATA CAT`` in ``DATA CAT=P``) and a value:
//
// * a string  -- text, escapes already removed (``City Summary Outbound``);
// * Group     -- ``<...>``, a nested list of members;
// * Tagged    -- text glued to a group: ``A<START=...,END=...>``, ``COLUMNS<44,36>``;
// * Seq       -- pieces glued with no separator: ``<a,b><c,d>``, ``INBOUND<<..>>INBOUND<<..>>``
//                (each piece a Group or Tagged; text only last);
// * TList     -- ``~``-separated items: ``54~55~67``.
//
// The invariants parse() keeps and serialize() relies on: a key is null or non-empty
// text, a tag non-empty text; a Seq has at least two parts, none a Seq or TList, text
// only as the last; a TList has at least two items, none a TList; a group is never
// exactly one keyless empty member (``<>`` is the empty group).  Every object and
// list is frozen; equals() compares trees by value, as Python's ``==`` does.

function frozenList(items) {
  return Object.freeze(Array.from(items));
}

function firstValue(members, key, fallback) {
  for (const member of members) {
    if (member.key === key) return member.value;
  }
  return fallback;
}

/** ``<m1,m2,...>``: an ordered, frozen list of members. */
export class Group {
  /** @param {Iterable<Member>} members */
  constructor(members) {
    this.members = frozenList(members);
    Object.freeze(this);
  }

  /** The value of the first member named *key* (case-sensitive), else *fallback*. */
  get(key, fallback = null) {
    return firstValue(this.members, key, fallback);
  }
}

/** Text glued to a group: ``SCHEDULE=A<START=...>`` has tag ``A``. */
export class Tagged {
  /**
   * @param {string} tag
   * @param {Group} group
   */
  constructor(tag, group) {
    this.tag = tag;
    this.group = group;
    Object.freeze(this);
  }
}

/** Glued pieces with no separator between them (``<a,b><c,d>``). */
export class Seq {
  /** @param {Iterable<Group | Tagged | string>} parts */
  constructor(parts) {
    this.parts = frozenList(parts);
    Object.freeze(this);
  }
}

/** A ``~``-separated list (``54~55~67``). */
export class TList {
  /** @param {Iterable<string | Group | Tagged | Seq>} items */
  constructor(items) {
    this.items = frozenList(items);
    Object.freeze(this);
  }
}

/** ``KEY=value``, or a keyless ``value`` (``key === null``). */
export class Member {
  /**
   * @param {string | null} key
   * @param {string | Group | Tagged | Seq | TList} value
   */
  constructor(key, value) {
    this.key = key;
    this.value = value;
    Object.freeze(this);
  }
}

/** A whole message: ``GRTL<PRODUCT=V,...>``; ``acronym`` is null for a bare body. */
export class Message {
  /**
   * @param {string | null} acronym
   * @param {Iterable<Member>} members
   */
  constructor(acronym, members) {
    this.acronym = acronym;
    this.members = frozenList(members);
    Object.freeze(this);
  }

  /** The body as a Group (handy for recursive code). */
  get body() {
    return new Group(this.members);
  }

  /** The value of the first top-level member named *key*, else *fallback*. */
  get(key, fallback = null) {
    return firstValue(this.members, key, fallback);
  }
}

/**
 * Structural equality of two trees or values (what Python's ``==`` does).
 * @returns {boolean}
 */
export function equals(a, b) {
  if (a === b) return true;
  if (typeof a === "string" || typeof b === "string" || a === null || b === null) return false;
  if (a.constructor !== b.constructor) return false;
  if (a instanceof Message) return a.acronym === b.acronym && sameList(a.members, b.members);
  if (a instanceof Member) return a.key === b.key && equals(a.value, b.value);
  if (a instanceof Group) return sameList(a.members, b.members);
  if (a instanceof Tagged) return a.tag === b.tag && equals(a.group, b.group);
  if (a instanceof Seq) return sameList(a.parts, b.parts);
  if (a instanceof TList) return sameList(a.items, b.items);
  return false;
}

function sameList(xs, ys) {
  if (xs.length !== ys.length) return false;
  for (let i = 0; i < xs.length; i++) {
    if (!equals(xs[i], ys[i])) return false;
  }
  return true;
}
