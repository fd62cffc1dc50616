// The derived-column expression language in the browser (port of proxies/dss/expr.py).
//
// Theory of operation
// -------------------
// CALCULATE_EXPRESSION (Appendix F) holds equations such as ``( C36 / CT36 ) * 100``;
// the DSS formatter evaluates them for the report file and the viewer evaluates the
// same text for the rows it makes (subtotals by another break column, CALCULATE=1
// columns).  proxies/dss/expr.py is the definition; this module implements exactly
// what its docstring says, never with eval, and tests/web/test_js_viewer.py holds the
// two to the same trees, values, roundings and error offsets on generated input:
//
//     expression := term   { ("+" | "-") term }       left-associative
//     term       := unary  { ("*" | "/") unary }      binds tighter
//     unary      := "-" unary | primary
//     primary    := NUMBER | COLUMN | TOTAL | "(" expression ")"
//     NUMBER     := DIGIT{1,30} [ "." DIGIT{1,30} ]     no sign, no exponent
//     COLUMN     := "C" DIGIT{1,10}     TOTAL := "CT" DIGIT{1,10}
//
// White space is space and tab; at most 200 characters and 32 levels of
// parentheses / unary minus.  A syntax error is an ExpressionError with the 0-based
// offset (in code points, as Python counts) and Python's message.
//
// Numbers are exact decimals (Dec: a BigInt coefficient and a power-of-ten exponent),
// with Python's context: every operation keeps 60 significant digits, rounding half
// to even (+, -, * and unary minus are exact unless a result needs more than 60
// digits; / is rounded); literals and row values are taken as written.  An empty
// operand (null) or a zero divisor makes the result null.  quantize() rounds for
// display, half away from zero, and never gives "-0".

export const PRECISION = 60;
export const MAX_LENGTH = 200;
export const MAX_DEPTH = 32;

/** An equation that breaks the grammar: ``offset`` is where. */
export class ExpressionError extends Error {
  constructor(message, offset) {
    super(`${message} at offset ${offset}`);
    this.name = "ExpressionError";
    this.reason = message;
    this.offset = offset;
  }
}

// -- exact decimals ------------------------------------------------------------------

const TEN = 10n;
const POW = [1n];
function pow10(n) {
  while (POW.length <= n) POW.push(POW[POW.length - 1] * TEN);
  return POW[n];
}

function digits(n) {
  return (n < 0n ? -n : n).toString().length;
}

/** value = c * 10**e */
export class Dec {
  /**
   * @param {bigint} c
   * @param {number} e
   */
  constructor(c, e) {
    this.c = c;
    this.e = e;
  }

  /** A plain decimal ``-?\d+(\.\d+)?`` as written (no rounding); null if not one. */
  static parse(text) {
    const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
    if (!m) return null;
    const frac = m[3] ?? "";
    const c = BigInt(m[2] + frac);
    return new Dec(m[1] ? -c : c, -frac.length);
  }

  isZero() {
    return this.c === 0n;
  }

  /** The value as a JS number (for charts and sorting). */
  toNumber() {
    return Number(`${this.c}e${this.e}`);
  }

  /** ``c`` without trailing zeros and its exponent: ``"125e-1"``; zero is ``"0e0"``. */
  normalized() {
    if (this.c === 0n) return "0e0";
    let c = this.c;
    let e = this.e;
    while (c % TEN === 0n) {
      c /= TEN;
      e += 1;
    }
    return `${c}e${e}`;
  }

  /** Python's ``format(value, "f")``. */
  toFixed() {
    const neg = this.c < 0n;
    let s = (neg ? -this.c : this.c).toString();
    if (this.e >= 0) {
      s += "0".repeat(this.e);
    } else {
      const places = -this.e;
      if (s.length <= places) s = "0".repeat(places - s.length + 1) + s;
      s = `${s.slice(0, s.length - places)}.${s.slice(s.length - places)}`;
    }
    return neg ? `-${s}` : s;
  }
}

/** Round c * 10**e to PRECISION significant digits, half to even (Python's _fix). */
function fix(c, e) {
  const n = digits(c);
  if (n <= PRECISION) return new Dec(c, e);
  return new Dec(...roundAway(c, e, n - PRECISION, false, "even"));
}

/**
 * Drop *k* digits of c (k >= 1); *sticky*: non-zero digits were dropped before.
 * mode "even" (half to even) or "up" (half away from zero).
 */
function roundAway(c, e, k, sticky, mode) {
  const neg = c < 0n;
  const a = neg ? -c : c;
  const unit = pow10(k);
  let q = a / unit;
  const r = a % unit;
  const twice = 2n * r;
  let up;
  if (twice > unit || (twice === unit && sticky)) up = true;
  else if (twice === unit) up = mode === "up" || q % 2n === 1n;
  else up = false;
  if (up) q += 1n;
  let exp = e + k;
  if (mode === "even" && digits(q) > PRECISION) {
    q /= TEN; // 10**60 -> 10**59: the same value, one digit fewer
    exp += 1;
  }
  return [neg ? -q : q, exp];
}

function align(a, b) {
  const e = Math.min(a.e, b.e);
  return [a.c * pow10(a.e - e), b.c * pow10(b.e - e), e];
}

export function add(a, b) {
  const [x, y, e] = align(a, b);
  return fix(x + y, e);
}

export function subtract(a, b) {
  const [x, y, e] = align(a, b);
  return fix(x - y, e);
}

export function multiply(a, b) {
  return fix(a.c * b.c, a.e + b.e);
}

export function minus(a) {
  return fix(-a.c, a.e);
}

/** a / b rounded to PRECISION significant digits, half to even (b not zero). */
export function divide(a, b) {
  if (a.c === 0n) return new Dec(0n, a.e - b.e);
  const neg = a.c < 0n !== b.c < 0n;
  const x = a.c < 0n ? -a.c : a.c;
  const y = b.c < 0n ? -b.c : b.c;
  // scale so that the integer quotient has at least PRECISION + 1 digits
  const s = PRECISION + 1 + digits(y) - digits(x);
  const num = s > 0 ? x * pow10(s) : x;
  const den = s < 0 ? y * pow10(-s) : y;
  const q = num / den;
  const sticky = num % den !== 0n;
  const k = digits(q) - PRECISION;
  let [c, e] = k > 0 ? roundAway(q, a.e - b.e - s, k, sticky, "even") : [q, a.e - b.e - s];
  if (neg) c = -c;
  return new Dec(c, e);
}

/**
 * *value* rounded to *decimals* digits after the point, half away from zero; a zero
 * result is positive.  Throws RangeError where Python's quantize raises (a result
 * of more than PRECISION digits).
 */
export function quantize(value, decimals) {
  let c = value.c;
  let e = value.e;
  const target = -decimals;
  if (e > target) {
    c *= pow10(e - target);
    e = target;
  } else if (e < target) {
    [c, e] = roundAway(c, e, target - e, false, "up");
  }
  if (digits(c) > PRECISION) throw new RangeError("quantize result has too many digits");
  return new Dec(c === 0n ? 0n : c, e);
}

// -- tokens and parser ------------------------------------------------------------------

function isDigit(ch) {
  return ch >= "0" && ch <= "9";
}

function isAlnum(ch) {
  return isDigit(ch) || (ch >= "A" && ch <= "Z") || (ch >= "a" && ch <= "z");
}

function runOf(text, pos, test) {
  let end = pos;
  while (end < text.length && test(text[end])) end++;
  return end - pos;
}

/** The token that _TOKEN matches at *pos*: [kind, text, id?] or null. */
function match(text, pos) {
  const ch = text[pos];
  if (ch === " " || ch === "\t") {
    return ["ws", text.slice(pos, pos + runOf(text, pos, (c) => c === " " || c === "\t"))];
  }
  if (isDigit(ch)) {
    const d = runOf(text, pos, isDigit);
    if (d > 30) return null;
    const after = text[pos + d];
    if (after === undefined || (after !== "." && !isDigit(after))) return ["num", text.slice(pos, pos + d)];
    // after === "."
    const f = runOf(text, pos + d + 1, isDigit);
    const next = text[pos + d + 1 + f];
    if (f >= 1 && f <= 30 && (next === undefined || (next !== "." && !isDigit(next)))) {
      return ["num", text.slice(pos, pos + d + 1 + f)];
    }
    return null;
  }
  if (ch === "C") {
    for (const ref of text[pos + 1] === "T" ? ["CT", "C"] : ["C"]) {
      const at = pos + ref.length;
      const n = runOf(text, at, isDigit);
      const next = text[at + n];
      if (n >= 1 && n <= 10 && (next === undefined || !isAlnum(next))) {
        return [ref, text.slice(pos, at + n), text.slice(at, at + n)];
      }
    }
    return null;
  }
  if ("-+*/()".includes(ch)) return ["op", ch];
  return null;
}

/** Python's repr() of a string (enough for messages: ASCII exactly). */
export function pyRepr(s) {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = "";
  for (const ch of s) {
    const code = ch.codePointAt(0);
    if (ch === quote || ch === "\\") out += `\\${ch}`;
    else if (ch === "\t") out += "\\t";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else if (code >= 0x80 && code < 0xa0) out += `\\x${code.toString(16)}`;
    else out += ch;
  }
  return quote + out + quote;
}

/** Code-point offset of UTF-16 index *i* in *text*. */
function cp(text, i) {
  let n = 0;
  for (let j = 0; j < i; j++) {
    const c = text.charCodeAt(j);
    if (c >= 0xd800 && c <= 0xdbff && j + 1 < i) j++;
    n++;
  }
  return n;
}

function tokenize(text) {
  const out = [];
  let pos = 0;
  while (pos < text.length) {
    const m = match(text, pos);
    if (m === null) {
      const ch = String.fromCodePoint(text.codePointAt(pos));
      throw new ExpressionError(`unexpected character ${pyRepr(ch)}`, cp(text, pos));
    }
    if (m[0] !== "ws") out.push({ kind: m[0], text: m[0] === "C" || m[0] === "CT" ? m[2] : m[1], pos });
    pos += m[1].length;
  }
  out.push({ kind: "end", text: "", pos: text.length });
  return out;
}

class Parser {
  constructor(text) {
    this.text = text;
    this.tokens = tokenize(text);
    this.i = 0;
    this.depth = 0;
  }

  peek() {
    return this.tokens[this.i];
  }

  take() {
    return this.tokens[this.i++];
  }

  near(pos) {
    const m = match(this.text, pos);
    return m ? m[1] : this.text.slice(pos, pos + 1);
  }

  fail(message, pos) {
    return new ExpressionError(message, cp(this.text, pos));
  }

  expression() {
    let node = this.term();
    while (this.peek().kind === "op" && "+-".includes(this.peek().text)) {
      const op = this.take().text;
      node = { op, left: node, right: this.term() };
    }
    return node;
  }

  term() {
    let node = this.unary();
    while (this.peek().kind === "op" && "*/".includes(this.peek().text)) {
      const op = this.take().text;
      node = { op, left: node, right: this.unary() };
    }
    return node;
  }

  nest(pos) {
    this.depth += 1;
    if (this.depth > MAX_DEPTH) throw this.fail(`nested more than ${MAX_DEPTH} deep`, pos);
  }

  unary() {
    const token = this.peek();
    if (token.kind === "op" && token.text === "-") {
      this.take();
      this.nest(token.pos);
      const node = { neg: this.unary() };
      this.depth -= 1;
      return node;
    }
    return this.primary();
  }

  primary() {
    const token = this.take();
    if (token.kind === "num") return { num: token.text };
    if (token.kind === "C") return { column: Number(token.text) };
    if (token.kind === "CT") return { total: Number(token.text) };
    if (token.kind === "op" && token.text === "(") {
      this.nest(token.pos);
      const node = this.expression();
      this.depth -= 1;
      const closing = this.take();
      if (!(closing.kind === "op" && closing.text === ")")) throw this.fail("expected ')'", closing.pos);
      return node;
    }
    const what = token.kind === "end" ? "end of expression" : pyRepr(this.near(token.pos));
    throw this.fail(`expected a number, Cn, CTn or '(', found ${what}`, token.pos);
  }
}

const cache = new Map();

/**
 * Parse an equation into its tree: ``{num}``, ``{column}``, ``{total}``, ``{neg}`` or
 * ``{op, left, right}`` (frozen plain objects; the same text gives the same tree).
 * @throws {ExpressionError}
 */
export function parseExpression(text) {
  const hit = cache.get(text);
  if (hit) return hit;
  if ([...text].length > MAX_LENGTH) {
    throw new ExpressionError(`longer than ${MAX_LENGTH} characters`, MAX_LENGTH);
  }
  const parser = new Parser(text);
  const node = parser.expression();
  const rest = parser.peek();
  if (rest.kind !== "end") throw parser.fail(`unexpected ${pyRepr(parser.near(rest.pos))}`, rest.pos);
  if (cache.size > 1024) cache.clear();
  cache.set(text, node);
  return node;
}

/** The column ids an expression reads: {columns: Set, totals: Set}. */
export function references(node) {
  const columns = new Set();
  const totals = new Set();
  const walk = (n) => {
    if ("column" in n) columns.add(n.column);
    else if ("total" in n) totals.add(n.total);
    else if ("neg" in n) walk(n.neg);
    else if ("op" in n) {
      walk(n.left);
      walk(n.right);
    }
  };
  walk(node);
  return { columns, totals };
}

function value(v) {
  if (v === null || v === undefined) return null;
  if (v instanceof Dec) return v;
  if (typeof v === "string") return v === "" ? null : Dec.parse(v);
  if (typeof v === "bigint") return new Dec(v, 0);
  if (typeof v === "number" && Number.isSafeInteger(v)) return new Dec(BigInt(v), 0);
  return null;
}

/**
 * *node* as a function (row, totals) -> Dec | null, where row and totals map a column
 * id to a Dec, a plain decimal string, an integer, or null / "" / absent (empty).
 * Either may be a Map or a plain object.
 */
export function compileExpression(node) {
  if ("num" in node) {
    const constant = Dec.parse(node.num);
    return () => constant;
  }
  if ("column" in node || "total" in node) {
    const id = node.column ?? node.total;
    const pick = "column" in node ? (row) => row : (_row, totals) => totals;
    return (row, totals) => {
      const source = pick(row, totals);
      return value(source instanceof Map ? source.get(id) : source?.[id]);
    };
  }
  if ("neg" in node) {
    const inner = compileExpression(node.neg);
    return (row, totals) => {
      const v = inner(row, totals);
      return v === null ? null : minus(v);
    };
  }
  const left = compileExpression(node.left);
  const right = compileExpression(node.right);
  if (node.op === "/") {
    return (row, totals) => {
      const a = left(row, totals);
      const b = right(row, totals);
      return a === null || b === null || b.isZero() ? null : divide(a, b);
    };
  }
  const op = { "+": add, "-": subtract, "*": multiply }[node.op];
  return (row, totals) => {
    const a = left(row, totals);
    const b = right(row, totals);
    return a === null || b === null ? null : op(a, b);
  };
}

/** Evaluate *node* for one row (see compileExpression). */
export function evaluate(node, row, totals = {}) {
  return compileExpression(node)(row, totals);
}
