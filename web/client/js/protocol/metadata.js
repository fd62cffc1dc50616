// Metadata messages in the browser: the tree, the parser, the serializer, the JSON form.
//
// Theory of operation
// -------------------
// This is starwrs.grammar (PROTOCOL.md section 5) in plain JavaScript, held to the
// Python package by tests/web/test_js_protocol.py: the same tree (model.js, exported
// from here too), the same canonical text, the same JSON shape, and for bad input the
// same Appendix E code at the same offset.  grammar/metadata.lark is the definition; this module follows the Lark
// parser that reads it (LALR, contextual lexer), not the Python fast scanner, because
// the Lark path is the one that decides every error.
//
// parse() runs in two passes, as grammar/_lark.py does:
//
// 1. checkLimits: too long (6611 at maxLength), empty or white space only (6611 at
//    0), unbalanced brackets counted over the whole input with escapes skipped (6612
//    at the '>' that closed the body while input went on, at a stray '>', or at the
//    end for a '<' never closed), nested deeper than maxDepth (6611 at that '<').
// 2. A recursive descent over the grammar whose lexer, like Lark's contextual lexer,
//    only looks for the tokens the parser can take next.  That matters for KEY
//    (text followed by '='): it is a token only where a member may start -- after
//    '<', after a separator, and after a group inside a value (the "_chain" rules:
//    `<a> B=1`).  Elsewhere the same characters lex as TEXT and the '=' is the error.
//    The first token the grammar cannot take is the error, at its start: 6610 if the
//    character there is a raw control character or a '\' that ends the input, else
//    6611 (end of input is 6611 at the length).  In this grammar the LALR tables add
//    no spurious look-ahead except after the message body, where any token is an
//    error at its start anyway, so the first unacceptable token is exactly where Lark
//    stops.
//
// Offsets are in code points, as Python counts them; the scanner works on UTF-16
// code units (no structural character is ever a surrogate) and converts an offset
// only when it reports one.  Messages for limit and bracket errors are Python's word
// for word; for syntax errors they say the same thing but may quote differently.
//
// No eval, no Function constructor, no regular expression on the hot path that could
// backtrack: every pass is linear in the input.

import { ErrorCode, MessageError } from "./errors.js";
import { Group, Member, Message, Seq, TList, Tagged } from "./model.js";

export { Group, Member, Message, Seq, TList, Tagged, equals } from "./model.js";

/** deepest bracket nesting accepted by default (the seed's deepest message nests 5) */
export const DEFAULT_MAX_DEPTH = 64;
/** the largest maxDepth a caller may ask for (as starwrs.grammar.parser) */
export const MAX_DEPTH_CEILING = 100;
/** longest message accepted by default, in characters (code points) */
export const DEFAULT_MAX_LENGTH = 4 * 1024 * 1024;

// -- text escaping (starwrs.grammar._text) ---------------------------------------------

const NEEDS_ESCAPE = /[<>=,~\\\x00-\x08\x0b\x0c\x0e-\x1f]/;
const NEEDS_ESCAPE_ALL = /[<>=,~\\\x00-\x08\x0b\x0c\x0e-\x1f]/g;
const ESCAPE_SEQ = /\\([\s\S])/g;

function isWs(c) {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** Return *raw* with every ``\x`` escape replaced by ``x``. */
export function unescape(raw) {
  return raw.includes("\\") ? raw.replace(ESCAPE_SEQ, "$1") : raw;
}

/**
 * The canonical wire spelling of *text*: ``, < > = ~ \ SOH`` and the raw C0 controls
 * escaped, and white space at the start or end of the value (it would be lost).
 * @param {string} text
 * @returns {string}
 */
export function escape(text) {
  const n = text.length;
  if (!n) return text;
  if (!isWs(text.charCodeAt(0)) && !isWs(text.charCodeAt(n - 1))) {
    return NEEDS_ESCAPE.test(text) ? text.replace(NEEDS_ESCAPE_ALL, "\\$&") : text;
  }
  let start = 0;
  while (start < n && isWs(text.charCodeAt(start))) start++;
  if (start === n) return escapeEach(text);
  let stop = n;
  while (isWs(text.charCodeAt(stop - 1))) stop--;
  return (
    escapeEach(text.slice(0, start)) +
    text.slice(start, stop).replace(NEEDS_ESCAPE_ALL, "\\$&") +
    escapeEach(text.slice(stop))
  );
}

function escapeEach(ws) {
  let out = "";
  for (const ch of ws) out += "\\" + ch;
  return out;
}

// -- serializer (starwrs.grammar.serializer) -------------------------------------------

/**
 * The canonical wire text of *message*: no optional white space, ``,`` separators.
 * @param {Message} message
 * @returns {string}
 */
export function serialize(message) {
  const out = [message.acronym ?? ""];
  writeMembers(message.members, out);
  return out.join("");
}

/** The canonical wire text of one value (no key). */
export function serializeValue(value) {
  const out = [];
  writeValue(value, out);
  return out.join("");
}

function writeMembers(members, out) {
  out.push("<");
  for (let i = 0; i < members.length; i++) {
    if (i) out.push(",");
    const member = members[i];
    if (member.key !== null) out.push(escape(member.key), "=");
    writeValue(member.value, out);
  }
  out.push(">");
}

function writeValue(value, out) {
  if (typeof value === "string") {
    out.push(escape(value));
  } else if (value instanceof Group) {
    writeMembers(value.members, out);
  } else if (value instanceof Tagged) {
    out.push(escape(value.tag));
    writeMembers(value.group.members, out);
  } else if (value instanceof Seq) {
    for (const part of value.parts) writeValue(part, out);
  } else if (value instanceof TList) {
    for (let i = 0; i < value.items.length; i++) {
      if (i) out.push("~");
      writeValue(value.items[i], out);
    }
  } else {
    throw new TypeError(`not a message value: ${String(value)}`);
  }
}

// -- JSON form (starwrs.grammar.jsonform) ----------------------------------------------

/**
 * The stable JSON shape of a message: ``{"acronym", "members": [{"key", "value"}]}``
 * where a value is text, ``{"group"}``, ``{"tag", "group"}``, ``{"seq"}`` or ``{"list"}``.
 * Objects are built with their keys in sorted order, so ``JSON.stringify`` of the
 * result is the canonical JSON that ``starwrs parse`` prints.
 */
export function toJson(message) {
  return { acronym: message.acronym, members: membersJson(message.members) };
}

/** Canonical JSON text (sorted keys, no optional white space), as Python's dumps. */
export function dumps(message) {
  return JSON.stringify(toJson(message));
}

function membersJson(members) {
  return members.map((m) => ({ key: m.key, value: valueJson(m.value) }));
}

function valueJson(value) {
  if (typeof value === "string") return value;
  if (value instanceof Group) return { group: membersJson(value.members) };
  if (value instanceof Tagged) return { group: membersJson(value.group.members), tag: value.tag };
  if (value instanceof Seq) return { seq: value.parts.map(valueJson) };
  return { list: value.items.map(valueJson) };
}

function isPlainObject(data) {
  return data !== null && typeof data === "object" && !Array.isArray(data);
}

function hasExactly(data, keys) {
  const own = Object.keys(data);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(data, k));
}

function shape(message) {
  return new MessageError(ErrorCode.INCORRECT_INPUT, `bad JSON message shape: ${message}`, 0);
}

/**
 * Build a tree from its JSON shape, checking it.
 * @throws {MessageError} 6611 when *data* is not the documented shape
 */
export function fromJson(data) {
  if (!isPlainObject(data) || !hasExactly(data, ["acronym", "members"])) {
    throw shape("a message is {'acronym': ..., 'members': [...]}");
  }
  const acronym = data.acronym;
  if (acronym !== null && typeof acronym !== "string") {
    throw shape("'acronym' must be text or null");
  }
  return new Message(acronym, membersFromJson(data.members));
}

function membersFromJson(data) {
  if (!Array.isArray(data)) throw shape("'members' must be a list");
  return data.map((item) => {
    if (!isPlainObject(item) || !hasExactly(item, ["key", "value"])) {
      throw shape("a member is {'key': ..., 'value': ...}");
    }
    if (item.key !== null && typeof item.key !== "string") {
      throw shape("'key' must be text or null");
    }
    return new Member(item.key, valueFromJson(item.value));
  });
}

function valueFromJson(data) {
  if (typeof data === "string") return data;
  if (isPlainObject(data)) {
    if (hasExactly(data, ["group"])) return new Group(membersFromJson(data.group));
    if (hasExactly(data, ["tag", "group"]) && typeof data.tag === "string") {
      return new Tagged(data.tag, new Group(membersFromJson(data.group)));
    }
    if (hasExactly(data, ["seq"]) && Array.isArray(data.seq)) {
      const parts = data.seq.map(valueFromJson);
      if (parts.some((p) => p instanceof Seq || p instanceof TList)) {
        throw shape("a 'seq' holds groups, tagged groups and text");
      }
      return new Seq(parts);
    }
    if (hasExactly(data, ["list"]) && Array.isArray(data.list)) {
      const items = data.list.map(valueFromJson);
      if (items.some((i) => i instanceof TList)) throw shape("a 'list' cannot hold a list");
      return new TList(items);
    }
  }
  throw shape(`not a value: ${String(JSON.stringify(data)).slice(0, 60)}`);
}

// -- parser (starwrs.grammar.parser, grammar/_lark.py) ---------------------------------

// tokens, as bits so a set of acceptable tokens is one number
const END = 1;
const ACRONYM = 2;
const LT = 4;
const GT = 8;
const KEY = 16;
const TEXT = 32;
const TILDE = 64;
const SEP = 128;

/** what a member may start with: '<' ',' or a group inside a value may be followed by */
const MEMBER_START = KEY | LT | GT | TEXT | TILDE | SEP;
/** what may follow a key, text or '~' (no KEY: `K=v w=` lexes `v w` as text) */
const VALUE_GOES_ON = LT | GT | TEXT | TILDE | SEP;

const LABELS = [
  [ACRONYM, "a message acronym"],
  [LT, "'<'"],
  [GT, "'>'"],
  [KEY, "KEY="],
  [TEXT, "text"],
  [TILDE, "'~'"],
  [SEP, "',' or SOH"],
  [END, "end of input"],
];

/**
 * Parse one metadata message.
 *
 * @param {string} text the message, e.g. ``GRTL<PRODUCT=V,DATATYPE=R,DATA CAT=P,IO=O>``
 * @param {{maxDepth?: number, maxLength?: number}} [options] limits, as in Python
 * @returns {Message}
 * @throws {MessageError} 6610, 6611 or 6612 with the code-point offset where it went wrong
 * @throws {RangeError} maxDepth outside 1..MAX_DEPTH_CEILING (a programming error)
 */
export function parse(text, { maxDepth = DEFAULT_MAX_DEPTH, maxLength = DEFAULT_MAX_LENGTH } = {}) {
  if (!Number.isInteger(maxDepth) || maxDepth < 1 || maxDepth > MAX_DEPTH_CEILING) {
    throw new RangeError(`maxDepth must be 1 to ${MAX_DEPTH_CEILING}, not ${maxDepth}`);
  }
  if (typeof text !== "string") {
    throw new MessageError(ErrorCode.INCORRECT_INPUT, "input is not text", 0);
  }
  checkLimits(text, maxDepth, maxLength);
  return new Parser(text).message();
}

/** Code points in ``text.slice(0, index)`` (Python's offset for a UTF-16 index). */
function codePointOffset(text, index) {
  let pairs = 0;
  for (let i = 0; i < index - 1; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        pairs++;
        i++;
      }
    }
  }
  return index - pairs;
}

function codePointLength(text) {
  return codePointOffset(text, text.length);
}

/**
 * Reject empty, oversized, unbalanced and too deeply nested input (grammar/_lark.py).
 * @throws {MessageError} 6611 (empty, too long, too deep) or 6612 (unbalanced)
 */
export function checkLimits(text, maxDepth = DEFAULT_MAX_DEPTH, maxLength = DEFAULT_MAX_LENGTH) {
  const n = text.length;
  if (n > maxLength) {
    const length = codePointLength(text);
    if (length > maxLength) {
      throw new MessageError(
        ErrorCode.INCORRECT_INPUT,
        `message is ${length} characters long; the limit is ${maxLength}`,
        maxLength,
      );
    }
  }
  let blank = true;
  for (let i = 0; i < n; i++) {
    if (!isWs(text.charCodeAt(i))) {
      blank = false;
      break;
    }
  }
  if (blank) throw new MessageError(ErrorCode.INCORRECT_INPUT, "empty input string", 0);
  let depth = 0;
  let deepestAt = -1;
  let closedAt = -1; // where depth first came back to 0
  const opened = [];
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) {
      i++; // the escaped character (a trailing '\' escapes nothing)
    } else if (c === 0x3c) {
      opened.push(i);
      depth++;
      if (depth > maxDepth && deepestAt < 0) deepestAt = i;
    } else if (c === 0x3e) {
      if (depth === 0) {
        if (closedAt >= 0) {
          throw new MessageError(
            ErrorCode.UNBALANCED_BRACKETS,
            "unbalanced brackets: the message body closes here but the input goes on",
            codePointOffset(text, closedAt),
          );
        }
        throw new MessageError(
          ErrorCode.UNBALANCED_BRACKETS,
          "unbalanced brackets: '>' with no matching '<'",
          codePointOffset(text, i),
        );
      }
      opened.pop();
      depth--;
      if (depth === 0 && closedAt < 0) closedAt = i;
    }
  }
  if (depth) {
    throw new MessageError(
      ErrorCode.UNBALANCED_BRACKETS,
      `unbalanced brackets: ${depth} '<' never closed ` +
        `(the innermost opened at offset ${codePointOffset(text, opened[opened.length - 1])})`,
      codePointLength(text),
    );
  }
  if (deepestAt >= 0) {
    throw new MessageError(
      ErrorCode.INCORRECT_INPUT,
      `brackets nested deeper than ${maxDepth}`,
      codePointOffset(text, deepestAt),
    );
  }
}

/** A character that may never appear raw: the C0 controls but TAB, LF, CR and SOH. */
function isControl(c) {
  return c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d && c !== 0x01;
}

function isLetter(c) {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

// what Python's repr() escapes: everything str.isprintable() refuses (but the space)
const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

/** Python's repr() of a string, for error messages that read the same in both. */
function pyRepr(s) {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let body = "";
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (ch === "\\") body += "\\\\";
    else if (ch === quote) body += "\\" + quote;
    else if (ch === "\t") body += "\\t";
    else if (ch === "\n") body += "\\n";
    else if (ch === "\r") body += "\\r";
    else if (ch === " " || !NOT_PRINTABLE.test(ch)) body += ch;
    else if (c < 0x100) body += "\\x" + c.toString(16).padStart(2, "0");
    else if (c < 0x10000) body += "\\u" + c.toString(16).padStart(4, "0");
    else body += "\\U" + c.toString(16).padStart(8, "0");
  }
  return quote + body + quote;
}

class Parser {
  constructor(text) {
    this.text = text;
    this.n = text.length;
    // the token last read by lex(): its kind, where it ends, its text (KEY, TEXT, ACRONYM)
    this.kind = END;
    this.end = 0;
    this.raw = "";
  }

  skipWs(p) {
    const text = this.text;
    while (p < this.n && isWs(text.charCodeAt(p))) p++;
    return p;
  }

  /**
   * Read the token at *p* (white space already skipped) among the kinds in *allow*,
   * as Lark's contextual lexer does; anything else is the error, at *p*.
   */
  lex(p, allow) {
    const text = this.text;
    const n = this.n;
    let kind = 0;
    if (p >= n) {
      kind = END;
      this.end = p;
    } else {
      const c = text.charCodeAt(p);
      if (c === 0x3c) kind = LT;
      else if (c === 0x3e) kind = GT;
      else if (c === 0x7e) kind = TILDE;
      else if (c === 0x2c || c === 0x01) kind = SEP;
      if (kind) {
        this.end = p + 1;
      } else if (allow & ACRONYM) {
        let q = p;
        while (q < n && q - p < 4 && isLetter(text.charCodeAt(q))) q++;
        if (q > p) {
          kind = ACRONYM;
          this.end = q;
          this.raw = text.slice(p, q);
        }
      } else if (allow & (KEY | TEXT) && c !== 0x3d && !isControl(c) && !(c === 0x5c && p === n - 1)) {
        // a run of text units; it ends at a structural character or a raw control
        let q = p;
        let last = p; // end of the last unit that is not white space
        while (q < n) {
          const d = text.charCodeAt(q);
          if (d === 0x5c) {
            if (q + 1 >= n) break;
            q += 2;
            last = q;
          } else if (d === 0x3c || d === 0x3e || d === 0x3d || d === 0x2c || d === 0x7e) {
            break;
          } else if (d < 0x20 && !isWs(d)) {
            break;
          } else {
            q++;
            if (!isWs(d)) last = q;
          }
        }
        this.raw = text.slice(p, last);
        if (allow & KEY && q < n && text.charCodeAt(q) === 0x3d) {
          kind = KEY;
          this.end = q + 1;
        } else {
          kind = TEXT;
          this.end = last;
        }
      }
    }
    if (!(kind & allow)) this.fail(p, allow);
    this.kind = kind;
  }

  /**
   * Throw the error for *p*, where the token the grammar cannot take starts.  The
   * message says what Lark's would: the token any terminal would read there (or the
   * character, if none would) and what the parser could have taken instead.
   */
  fail(p, allow) {
    const text = this.text;
    const n = this.n;
    const offset = codePointOffset(text, p);
    if (p >= n) {
      const expected = labels(allow);
      throw new MessageError(ErrorCode.INCORRECT_INPUT, `unexpected end of input; expected ${expected}`, offset);
    }
    const c = text.charCodeAt(p);
    if (isControl(c) || (c === 0x5c && p === n - 1)) {
      const what = c === 0x5c ? "a '\\' with nothing to escape" : `control character ${pyRepr(text[p])}`;
      throw new MessageError(ErrorCode.UNKNOWN_TOKEN, `unknown token: ${what}`, offset);
    }
    // after the message body Lark's lexer still reads every token, and the parser
    // then wants the end; a character no token starts with is refused by the lexer
    const lexable = allow === END ? MEMBER_START : allow;
    if (c === 0x3d) {
      const found = pyRepr("=");
      throw new MessageError(ErrorCode.INCORRECT_INPUT, `unexpected ${found}; expected ${labels(lexable)}`, offset);
    }
    this.lex(p, MEMBER_START); // what any terminal reads at p (it cannot fail here)
    const found = pyRepr(text.slice(p, this.end));
    throw new MessageError(ErrorCode.INCORRECT_INPUT, `unexpected ${found}; expected ${labels(allow)}`, offset);
  }

  message() {
    let p = this.skipWs(0);
    this.lex(p, ACRONYM | LT);
    let acronym = null;
    if (this.kind === ACRONYM) {
      acronym = this.raw;
      p = this.skipWs(this.end);
      this.lex(p, LT);
    }
    const members = this.group(p);
    this.lex(this.skipWs(this.end), END);
    return new Message(acronym, members);
  }

  /**
   * Read the group whose '<' is at *p*; return its members, with this.end just past
   * its '>'.  Brackets are balanced and nesting bounded (checkLimits ran first).
   */
  group(p) {
    const members = [];
    let q = p + 1;
    for (;;) {
      // a member starts: KEY=, a value, or nothing
      this.lex(this.skipWs(q), MEMBER_START);
      let key = null;
      if (this.kind === KEY) {
        key = unescape(this.raw);
        this.lex(this.skipWs(this.end), VALUE_GOES_ON);
      }
      // the value, and the keyed members glued after it (`<a> B=1`)
      for (;;) {
        let items = null;
        let pieces = [];
        let tag = null;
        for (;;) {
          const kind = this.kind;
          let allow = VALUE_GOES_ON;
          if (kind === TEXT) {
            tag = unescape(this.raw);
          } else if (kind === LT) {
            const group = new Group(this.group(this.end - 1));
            pieces.push(tag === null ? group : new Tagged(tag, group));
            tag = null;
            allow = MEMBER_START;
          } else if (kind === TILDE) {
            if (tag !== null) pieces.push(tag);
            tag = null;
            (items ??= []).push(itemValue(pieces));
            pieces = [];
          } else {
            break; // ',' '>' or a glued KEY=
          }
          this.lex(this.skipWs(this.end), allow);
        }
        if (tag !== null) pieces.push(tag);
        let value = itemValue(pieces);
        if (items !== null) {
          items.push(value);
          value = new TList(items);
        }
        members.push(new Member(key, value));
        if (this.kind !== KEY) break;
        key = unescape(this.raw);
        this.lex(this.skipWs(this.end), VALUE_GOES_ON);
      }
      if (this.kind === GT) {
        // `<>` and `< >` are one empty member: that is the empty group
        if (members.length === 1 && members[0].key === null && members[0].value === "") return [];
        return members;
      }
      q = this.end; // ','
    }
  }
}

function labels(allow) {
  return LABELS.filter(([bit]) => allow & bit)
    .map(([, label]) => label)
    .sort()
    .join(", ");
}

function itemValue(pieces) {
  if (!pieces.length) return "";
  if (pieces.length === 1) return pieces[0];
  return new Seq(pieces);
}
