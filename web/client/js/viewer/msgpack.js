// The msgpack subset of the control payloads (PROTOCOL.md section 3; starwrs.protocol.control).
//
// Theory of operation
// -------------------
// Bulk transfers carry msgpack maps: the client sends ``{"op": "get", "resource":
// text, "offset": n}`` and reads data frames ``{"transfer", "offset", "total",
// "data": bin[, "done": true, "sha256": hex]}``.  encode() writes maps, text, bytes,
// booleans, nil and non-negative integers up to 2**53 - 1 in the shortest form, as
// Python's msgpack.packb does, so the bytes are the ones the server's tests know;
// decode() reads every msgpack type except extensions and floats are read too (the
// server never sends them).  A payload that is not exactly one well-formed value is
// a MsgpackError -- never a partial result.  Binary values are views into the
// payload, not copies (a data frame's 1 MiB is copied once, into the file buffer).

/** A payload that is not one well-formed msgpack value of the supported types. */
export class MsgpackError extends Error {
  constructor(message) {
    super(message);
    this.name = "MsgpackError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

class Writer {
  constructor() {
    this.parts = [];
    this.size = 0;
  }

  bytes(...values) {
    const part = Uint8Array.from(values);
    this.parts.push(part);
    this.size += part.length;
  }

  raw(part) {
    this.parts.push(part);
    this.size += part.length;
  }

  uint(prefix, n, width) {
    const out = new Uint8Array(1 + width);
    out[0] = prefix;
    let v = BigInt(n);
    for (let i = width; i >= 1; i--) {
      out[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    this.raw(out);
  }

  result() {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
}

function write(w, value) {
  if (value === null || value === undefined) {
    w.bytes(0xc0);
  } else if (value === true || value === false) {
    w.bytes(value ? 0xc3 : 0xc2);
  } else if (typeof value === "number" || typeof value === "bigint") {
    if (typeof value === "number" && !Number.isSafeInteger(value)) {
      throw new MsgpackError(`only integers are encoded, not ${value}`);
    }
    const n = BigInt(value);
    if (n < 0n) throw new MsgpackError("only non-negative integers are encoded");
    if (n < 0x80n) w.bytes(Number(n));
    else if (n < 0x100n) w.uint(0xcc, n, 1);
    else if (n < 0x10000n) w.uint(0xcd, n, 2);
    else if (n < 0x100000000n) w.uint(0xce, n, 4);
    else if (n < 0x10000000000000000n) w.uint(0xcf, n, 8);
    else throw new MsgpackError("integer larger than 64 bits");
  } else if (typeof value === "string") {
    const bytes = encoder.encode(value);
    const n = bytes.length;
    if (n < 32) w.bytes(0xa0 | n);
    else if (n < 0x100) w.uint(0xd9, n, 1);
    else if (n < 0x10000) w.uint(0xda, n, 2);
    else w.uint(0xdb, n, 4);
    w.raw(bytes);
  } else if (value instanceof Uint8Array) {
    const n = value.length;
    if (n < 0x100) w.uint(0xc4, n, 1);
    else if (n < 0x10000) w.uint(0xc5, n, 2);
    else w.uint(0xc6, n, 4);
    w.raw(value);
  } else if (Array.isArray(value)) {
    const n = value.length;
    if (n < 16) w.bytes(0x90 | n);
    else if (n < 0x10000) w.uint(0xdc, n, 2);
    else w.uint(0xdd, n, 4);
    for (const item of value) write(w, item);
  } else if (typeof value === "object") {
    const entries = Object.entries(value);
    const n = entries.length;
    if (n < 16) w.bytes(0x80 | n);
    else if (n < 0x10000) w.uint(0xde, n, 2);
    else w.uint(0xdf, n, 4);
    for (const [key, item] of entries) {
      write(w, key);
      write(w, item);
    }
  } else {
    throw new MsgpackError(`cannot encode a ${typeof value}`);
  }
}

/**
 * Encode *value* (maps as plain objects, in their key order).
 * @returns {Uint8Array}
 */
export function encode(value) {
  const w = new Writer();
  write(w, value);
  return w.result();
}

/** deepest nesting decode() follows (control payloads nest one level) */
const MAX_DEPTH = 16;

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.at = 0;
  }

  need(n) {
    if (this.at + n > this.bytes.length) {
      throw new MsgpackError(`truncated: ${n} more bytes needed at offset ${this.at}`);
    }
  }

  u8() {
    this.need(1);
    return this.bytes[this.at++];
  }

  uint(width) {
    this.need(width);
    let n = 0n;
    for (let i = 0; i < width; i++) n = (n << 8n) | BigInt(this.bytes[this.at + i]);
    this.at += width;
    return n;
  }

  int(width) {
    const n = this.uint(width);
    const bits = BigInt(width * 8);
    return n >= 1n << (bits - 1n) ? n - (1n << bits) : n;
  }

  take(n) {
    this.need(n);
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
}

function number(n) {
  if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) return n;
  return Number(n);
}

function read(r, depth) {
  if (depth > MAX_DEPTH) throw new MsgpackError("nested too deep");
  const b = r.u8();
  if (b <= 0x7f) return b;
  if (b >= 0xe0) return b - 0x100;
  if ((b & 0xe0) === 0xa0) return text(r, b & 0x1f);
  if ((b & 0xf0) === 0x80) return map(r, b & 0x0f, depth);
  if ((b & 0xf0) === 0x90) return array(r, b & 0x0f, depth);
  switch (b) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      return r.take(Number(r.uint(1)));
    case 0xc5:
      return r.take(Number(r.uint(2)));
    case 0xc6:
      return r.take(Number(r.uint(4)));
    case 0xca: {
      r.need(4);
      const v = r.view.getFloat32(r.at);
      r.at += 4;
      return v;
    }
    case 0xcb: {
      r.need(8);
      const v = r.view.getFloat64(r.at);
      r.at += 8;
      return v;
    }
    case 0xcc:
      return number(r.uint(1));
    case 0xcd:
      return number(r.uint(2));
    case 0xce:
      return number(r.uint(4));
    case 0xcf:
      return number(r.uint(8));
    case 0xd0:
      return number(r.int(1));
    case 0xd1:
      return number(r.int(2));
    case 0xd2:
      return number(r.int(4));
    case 0xd3:
      return number(r.int(8));
    case 0xd9:
      return text(r, Number(r.uint(1)));
    case 0xda:
      return text(r, Number(r.uint(2)));
    case 0xdb:
      return text(r, Number(r.uint(4)));
    case 0xdc:
      return array(r, Number(r.uint(2)), depth);
    case 0xdd:
      return array(r, Number(r.uint(4)), depth);
    case 0xde:
      return map(r, Number(r.uint(2)), depth);
    case 0xdf:
      return map(r, Number(r.uint(4)), depth);
    default:
      throw new MsgpackError(`unsupported msgpack type 0x${b.toString(16)} at offset ${r.at - 1}`);
  }
}

function text(r, n) {
  try {
    return decoder.decode(r.take(n));
  } catch (err) {
    if (err instanceof MsgpackError) throw err;
    throw new MsgpackError("a string is not UTF-8");
  }
}

function array(r, n, depth) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(read(r, depth + 1));
  return out;
}

function map(r, n, depth) {
  const out = Object.create(null);
  for (let i = 0; i < n; i++) {
    const key = read(r, depth + 1);
    if (typeof key !== "string") throw new MsgpackError("a map key is not a string");
    if (key in out) throw new MsgpackError(`duplicate map key ${JSON.stringify(key)}`);
    out[key] = read(r, depth + 1);
  }
  return out;
}

/**
 * Decode exactly one value from *bytes*.
 * @param {Uint8Array} bytes
 * @throws {MsgpackError} malformed, truncated, trailing bytes, or an extension type
 */
export function decode(bytes) {
  const r = new Reader(bytes);
  const value = read(r, 0);
  if (r.at !== bytes.length) {
    throw new MsgpackError(`${bytes.length - r.at} bytes after the value`);
  }
  return value;
}
