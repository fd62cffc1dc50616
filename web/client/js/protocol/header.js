// The common header of every frame (PROTOCOL.md section 2), as starwrs.protocol.header.
//
// Theory of operation
// -------------------
// Every frame starts with a 24-byte fixed part, big-endian:
//
//     version echo mech klen | length | serial | status | target
//        1     1    1    1   |   4    |   8    |   4    |   4     = 24 bytes
//
// followed by klen bytes of session key, then the payload; length counts the whole
// frame.  A Header is the fixed part plus the key (klen is implied by the key); the
// serial is a BigInt (it is 64 bits), the other numbers are Numbers, mech is 0-3
// (Mechanism.SYNC ...), target is the name without its space padding.
//
// packHeader and parseHeader are each other's inverse and check what section 2 asks,
// with the codes and in the order of the Python module, so a header either side
// refuses is refused here with the same code: 7001 version, 7008 mechanism, 7009
// length shorter than header and key / short buffer / bad target or key, 7005 length
// above the receiver's maximum (default 16 MiB).  checkPrefix sizes a frame from its
// first 24 bytes alone, before anything else is buffered.  Packing refuses with
// LocalProtocolError (our mistake), parsing with RemoteProtocolError (the peer's).
//
// Legal values: target 0-4 visible ASCII characters (! .. ~), left-justified and
// space padded on the wire; key 0-255 visible ASCII characters.
//
// Text form (headerToText / headerFromText), through the metadata syntax:
// HDR<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=87,SERIAL=4294967297,STATUS=0,TARGET=RM,KEY=9f2c>
// and the JSON shape the CLI prints (headerToDict / headerFromDict; serial a BigInt).

import { ErrorCode, LocalProtocolError, MessageError, RemoteProtocolError } from "./errors.js";
import { Member, Message, parse, serialize } from "./metadata.js";

/** Size of the fixed part in bytes. */
export const HEADER_SIZE = 24;
/** The protocol version this code speaks; anything else is answered with 7001. */
export const VERSION = 1;
/** Largest frame accepted unless configured otherwise (7005 above it). */
export const DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024;
/** ``length`` is a 32-bit field. */
export const MAX_FRAME_LENGTH = 0xffffffff;
/** ``klen`` is an 8-bit field. */
export const MAX_KEY_LENGTH = 0xff;

/** The header's ``mech`` byte (PROTOCOL.md section 3). */
export const Mechanism = Object.freeze({ SYNC: 0, ASYNC: 1, POLL: 2, BULK: 3 });
/** Mechanism names by number. */
export const MECHANISM_NAMES = Object.freeze(["SYNC", "ASYNC", "POLL", "BULK"]);

const U8 = 0xffn;
const U32 = 0xffffffffn;
const U64 = 0xffffffffffffffffn;

/** A decoded common header: the 24-byte fixed part plus the session key. */
export class Header {
  /**
   * @param {{version?: number, echo?: number, mech: number, length: number,
   *          serial?: bigint, status?: number, target: string, key?: string}} fields
   *   not checked here; packHeader / headerToText check them
   */
  constructor({ version = VERSION, echo = 0, mech, length, serial = 0n, status = 0, target, key = "" }) {
    this.version = version;
    this.echo = echo;
    this.mech = mech;
    this.length = length;
    this.serial = serial;
    this.status = status;
    this.target = target;
    this.key = key;
    Object.freeze(this);
  }

  /** Bytes this header takes on the wire: 24 + the key's length. */
  get size() {
    return HEADER_SIZE + this.key.length;
  }

  /** Bytes of payload that follow the header: length - 24 - the key's length. */
  get payloadLength() {
    return this.length - HEADER_SIZE - this.key.length;
  }

  /** A copy with some fields changed (Python's ``_replace``). */
  replace(changes) {
    return new Header({ ...this.fields(), ...changes });
  }

  /** The eight fields as a plain object. */
  fields() {
    const { version, echo, mech, length, serial, status, target, key } = this;
    return { version, echo, mech, length, serial, status, target, key };
  }
}

/**
 * Build a Header, computing ``length`` from the key and payload sizes.
 * @param {number} mech the transport mechanism (0-3)
 * @param {string} target target proxy name, 0-4 visible ASCII characters
 * @param {{key?: string, payloadLength?: number, serial?: bigint, status?: number, echo?: number}} [options]
 * @returns {Header} (not yet checked; packHeader checks it)
 */
export function makeHeader(mech, target, { key = "", payloadLength = 0, serial = 0n, status = 0, echo = 0 } = {}) {
  const length = HEADER_SIZE + key.length + payloadLength;
  return new Header({ version: VERSION, echo, mech, length, serial: BigInt(serial), status, target, key });
}

// -- checks shared by every direction --------------------------------------------------

function isVisibleText(s) {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

function isVisibleBytes(bytes) {
  for (const b of bytes) {
    if (b < 0x21 || b > 0x7e) return false;
  }
  return true;
}

function asciiText(bytes) {
  return String.fromCharCode(...bytes);
}

function isInteger(value) {
  return typeof value === "bigint" || Number.isInteger(value);
}

function describe(value) {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}`;
  try {
    return String(JSON.stringify(value));
  } catch {
    return String(value);
  }
}

function checkInt(name, value, top, ErrorType) {
  if (!isInteger(value) || BigInt(value) < 0n || BigInt(value) > top) {
    throw new ErrorType(ErrorCode.MALFORMED_FRAME, `${name} must be an integer 0..${top}`);
  }
  return value;
}

/** Raise the first size/identity error of section 2, in the order a peer sees them. */
function checkSizes(version, mech, klen, length, maxFrameSize, ErrorType) {
  if (version !== VERSION) {
    throw new ErrorType(ErrorCode.VERSION_MISMATCH, `version ${version}, this peer speaks ${VERSION}`);
  }
  if (!(mech >= 0 && mech <= 3)) {
    throw new ErrorType(ErrorCode.UNKNOWN_MECHANISM, `unknown mechanism ${mech}`);
  }
  if (length < HEADER_SIZE + klen) {
    throw new ErrorType(
      ErrorCode.MALFORMED_FRAME,
      `length ${length} shorter than header and key (${HEADER_SIZE + klen})`,
    );
  }
  if (maxFrameSize !== null && length > maxFrameSize) {
    throw new ErrorType(ErrorCode.FRAME_TOO_LARGE, `frame of ${length} bytes, maximum ${maxFrameSize}`);
  }
}

function toBytes(view) {
  if (view instanceof Uint8Array) return view;
  if (view instanceof ArrayBuffer) return new Uint8Array(view);
  if (ArrayBuffer.isView(view)) return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  throw new TypeError("expected a Uint8Array, an ArrayBuffer or a DataView");
}

/**
 * Size a frame from its first 24 bytes, before anything else is buffered.
 * @param {Uint8Array} view at least the 24-byte fixed part
 * @param {number | null} [maxFrameSize] largest total frame length accepted
 * @returns {[number, number]} [24 + klen, the total frame length]
 * @throws {RemoteProtocolError} 7001, 7008, 7009 (also fewer than 24 bytes), 7005
 */
export function checkPrefix(view, maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
  const bytes = toBytes(view);
  if (bytes.length < HEADER_SIZE) {
    throw new RemoteProtocolError(ErrorCode.MALFORMED_FRAME, "truncated header");
  }
  const data = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  const klen = bytes[3];
  const length = data.getUint32(4);
  checkSizes(bytes[0], bytes[2], klen, length, maxFrameSize, RemoteProtocolError);
  return [HEADER_SIZE + klen, length];
}

/**
 * Decode the header (fixed part and key) at the start of *view*; the rest is ignored.
 * @param {Uint8Array | ArrayBuffer} view
 * @param {number | null} [maxFrameSize] largest total frame length accepted (7005 above)
 * @returns {Header}
 * @throws {RemoteProtocolError} 7001, 7005, 7008 or 7009
 */
export function parseHeader(view, maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
  const bytes = toBytes(view);
  if (bytes.length < HEADER_SIZE) {
    throw new RemoteProtocolError(ErrorCode.MALFORMED_FRAME, "truncated header");
  }
  const data = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  const [version, echo, mech, klen] = bytes;
  const length = data.getUint32(4);
  checkSizes(version, mech, klen, length, maxFrameSize, RemoteProtocolError);
  if (bytes.length < HEADER_SIZE + klen) {
    throw new RemoteProtocolError(ErrorCode.MALFORMED_FRAME, "truncated session key");
  }
  let targetEnd = 24;
  while (targetEnd > 20 && bytes[targetEnd - 1] === 0x20) targetEnd--;
  const rawTarget = bytes.subarray(20, targetEnd);
  if (!isVisibleBytes(rawTarget)) {
    throw new RemoteProtocolError(
      ErrorCode.MALFORMED_FRAME,
      `target ${JSON.stringify(asciiText(bytes.subarray(20, 24)))} is not visible ASCII, left-justified and space padded`,
    );
  }
  const rawKey = bytes.subarray(HEADER_SIZE, HEADER_SIZE + klen);
  if (!isVisibleBytes(rawKey)) {
    throw new RemoteProtocolError(ErrorCode.MALFORMED_FRAME, "session key is not visible ASCII");
  }
  return new Header({
    version,
    echo,
    mech,
    length,
    serial: data.getBigUint64(8),
    status: data.getUint32(16),
    target: asciiText(rawTarget),
    key: asciiText(rawKey),
  });
}

function keyBytes(key, ErrorType) {
  if (typeof key !== "string") {
    throw new ErrorType(ErrorCode.MALFORMED_FRAME, "session key must be text");
  }
  if (!isVisibleText(key)) {
    throw new ErrorType(ErrorCode.MALFORMED_FRAME, "session key is not visible ASCII");
  }
  if (key.length > MAX_KEY_LENGTH) {
    throw new ErrorType(ErrorCode.MALFORMED_FRAME, `session key longer than ${MAX_KEY_LENGTH}`);
  }
  return key;
}

function targetText(target, ErrorType) {
  if (typeof target !== "string") {
    throw new ErrorType(ErrorCode.MALFORMED_FRAME, "target must be text");
  }
  if (target.length > 4 || !isVisibleText(target)) {
    throw new ErrorType(
      ErrorCode.MALFORMED_FRAME,
      `target ${JSON.stringify(target)} is not 0-4 visible ASCII characters`,
    );
  }
  return target;
}

/** Every check of packing, in the Python order; returns the key and target. */
function checkFields(header, ErrorType) {
  const { version, echo, mech, length, serial, status, target, key } = header;
  checkInt("version", version, U8, ErrorType);
  if (!isInteger(mech)) {
    throw new ErrorType(ErrorCode.UNKNOWN_MECHANISM, `unknown mechanism ${describe(mech)}`);
  }
  const rawKey = keyBytes(key, ErrorType);
  checkInt("length", length, U32, ErrorType);
  checkSizes(Number(version), Number(mech), rawKey.length, Number(length), null, ErrorType);
  checkInt("echo", echo, U8, ErrorType);
  checkInt("serial", serial, U64, ErrorType);
  checkInt("status", status, U32, ErrorType);
  return [rawKey, targetText(target, ErrorType)];
}

/**
 * Encode *header* as the 24 + klen bytes that start its frame.
 * @param {Header} header ``length`` must already count the payload
 * @returns {Uint8Array}
 * @throws {LocalProtocolError} 7001 version, 7008 mechanism, 7009 any other field
 */
export function packHeader(header) {
  const [key, target] = checkFields(header, LocalProtocolError);
  const out = new Uint8Array(HEADER_SIZE + key.length);
  const data = new DataView(out.buffer);
  out[0] = Number(header.version);
  out[1] = Number(header.echo);
  out[2] = Number(header.mech);
  out[3] = key.length;
  data.setUint32(4, Number(header.length));
  data.setBigUint64(8, BigInt(header.serial));
  data.setUint32(16, Number(header.status));
  for (let i = 0; i < 4; i++) out[20 + i] = i < target.length ? target.charCodeAt(i) : 0x20;
  for (let i = 0; i < key.length; i++) out[HEADER_SIZE + i] = key.charCodeAt(i);
  return out;
}

/** Run every check of packHeader (and the size limit), then normalise the numbers. */
function checked(header, maxFrameSize, ErrorType) {
  checkFields(header, ErrorType);
  if (maxFrameSize !== null && Number(header.length) > maxFrameSize) {
    throw new ErrorType(
      ErrorCode.FRAME_TOO_LARGE,
      `frame of ${header.length} bytes, maximum ${maxFrameSize}`,
    );
  }
  return new Header({
    version: Number(header.version),
    echo: Number(header.echo),
    mech: Number(header.mech),
    length: Number(header.length),
    serial: BigInt(header.serial),
    status: Number(header.status),
    target: header.target,
    key: header.key,
  });
}

// -- text form and JSON shape ----------------------------------------------------------

const TEXT_KEYS = ["VERSION", "ECHO", "MECH", "LENGTH", "SERIAL", "STATUS", "TARGET", "KEY"];
const INT_FIELDS = { version: U8, echo: U8, length: U32, serial: U64, status: U32 };
const FIELDS = ["version", "echo", "mech", "length", "serial", "status", "target", "key"];

function mechanism(value, ErrorType) {
  if (typeof value === "number" || typeof value === "bigint") {
    if (isInteger(value) && value >= 0 && value <= 3) return Number(value);
  } else if (typeof value === "string") {
    if (Object.hasOwn(Mechanism, value)) return Mechanism[value];
    if (/^[0-9]{1,3}$/.test(value) && Number(value) <= 3) return Number(value);
  }
  throw new ErrorType(
    ErrorCode.UNKNOWN_MECHANISM,
    `unknown mechanism ${describe(value)} (SYNC, ASYNC, POLL, BULK or 0-3)`,
  );
}

/**
 * Render *header* in the metadata syntax: ``HDR<VERSION=1,...,KEY=...>``.
 * @param {Header} header a legal header
 * @returns {string} the canonical text form
 * @throws {LocalProtocolError} the header is not legal (see packHeader)
 */
export function headerToText(header) {
  const h = checked(header, null, LocalProtocolError);
  const values = [
    String(h.version),
    String(h.echo),
    MECHANISM_NAMES[h.mech],
    String(h.length),
    String(h.serial),
    String(h.status),
    h.target,
    h.key,
  ];
  return serialize(new Message("HDR", TEXT_KEYS.map((k, i) => new Member(k, values[i]))));
}

/**
 * Parse the text form back to a header.  Members in any order, each exactly once;
 * numbers plain decimal; MECH a name or 0-3; TARGET without its padding.
 * @param {string} text
 * @param {number | null} [maxFrameSize] largest LENGTH accepted (null: the 32-bit limit)
 * @returns {Header}
 * @throws {RemoteProtocolError} 7009 not a header (with the grammar's offset), 7001, 7005, 7008
 */
export function headerFromText(text, maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
  let message;
  try {
    message = parse(text);
  } catch (err) {
    if (!(err instanceof MessageError)) throw err;
    throw new RemoteProtocolError(
      ErrorCode.MALFORMED_FRAME,
      `header text: ${err.message} (offset ${err.offset})`,
    );
  }
  if (message.acronym !== "HDR") {
    throw new RemoteProtocolError(ErrorCode.MALFORMED_FRAME, "header text must start HDR<");
  }
  const fields = {};
  for (const member of message.members) {
    const name = member.key;
    if (name === null || !TEXT_KEYS.includes(name)) {
      throw new RemoteProtocolError(ErrorCode.MALFORMED_FRAME, `unknown header member ${describe(name)}`);
    }
    const field = name.toLowerCase();
    if (Object.hasOwn(fields, field)) {
      throw new RemoteProtocolError(ErrorCode.MALFORMED_FRAME, `${name} given twice`);
    }
    if (typeof member.value !== "string") {
      throw new RemoteProtocolError(ErrorCode.MALFORMED_FRAME, `${name} must be plain text`);
    }
    fields[field] = member.value;
  }
  const missing = TEXT_KEYS.filter((k) => !Object.hasOwn(fields, k.toLowerCase()));
  if (missing.length) {
    throw new RemoteProtocolError(ErrorCode.MALFORMED_FRAME, `header text lacks ${missing.join(", ")}`);
  }
  for (const name of Object.keys(INT_FIELDS)) {
    const value = fields[name];
    if (!/^[0-9]{1,20}$/.test(value)) {
      throw new RemoteProtocolError(ErrorCode.MALFORMED_FRAME, `${name.toUpperCase()} must be a decimal number`);
    }
    fields[name] = BigInt(value);
  }
  return fromFields(fields, maxFrameSize);
}

function fromFields(fields, maxFrameSize) {
  const E = RemoteProtocolError;
  const version = checkInt("version", fields.version, U8, E);
  if (Number(version) !== VERSION) {
    throw new E(ErrorCode.VERSION_MISMATCH, `version ${version}, this peer speaks ${VERSION}`);
  }
  const mech = mechanism(fields.mech, E);
  const header = new Header({
    version: Number(version),
    echo: checkInt("echo", fields.echo, U8, E),
    mech,
    length: checkInt("length", fields.length, U32, E),
    serial: checkInt("serial", fields.serial, U64, E),
    status: checkInt("status", fields.status, U32, E),
    target: fields.target,
    key: fields.key,
  });
  return checked(header, maxFrameSize, E);
}

/**
 * The JSON shape of a header (mech by name), as ``starwrs header decode`` prints it.
 * ``serial`` is a BigInt: write it with ``String(serial)`` where JSON needs text.
 */
export function headerToDict(header) {
  return {
    version: header.version,
    echo: header.echo,
    mech: MECHANISM_NAMES[header.mech],
    length: header.length,
    serial: header.serial,
    status: header.status,
    target: header.target,
    key: header.key,
  };
}

/**
 * Build a header from its JSON shape (the inverse of headerToDict).  ``mech`` and
 * ``target`` are required; version defaults to 1, echo/serial/status to 0, key to ""
 * and length to the header's own size.  Integers are Numbers or BigInts.
 * @throws {RemoteProtocolError} 7009 wrong shape or types, 7001, 7005 or 7008
 */
export function headerFromDict(obj, maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
  const E = RemoteProtocolError;
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw new E(ErrorCode.MALFORMED_FRAME, "a header is a JSON object");
  }
  const unknown = Object.keys(obj).filter((k) => !FIELDS.includes(k)).sort();
  if (unknown.length) {
    throw new E(ErrorCode.MALFORMED_FRAME, `unknown header field(s): ${unknown.join(", ")}`);
  }
  for (const required of ["mech", "target"]) {
    if (!Object.hasOwn(obj, required)) {
      throw new E(ErrorCode.MALFORMED_FRAME, `header lacks '${required}'`);
    }
  }
  const get = (name, fallback) => (Object.hasOwn(obj, name) ? obj[name] : fallback);
  const key = get("key", "");
  const fields = {
    version: get("version", VERSION),
    echo: get("echo", 0),
    mech: obj.mech,
    length: get("length", HEADER_SIZE + (typeof key === "string" ? key.length : 0)),
    serial: get("serial", 0n),
    status: get("status", 0),
    target: obj.target,
    key,
  };
  for (const name of Object.keys(INT_FIELDS)) {
    if (typeof fields[name] === "boolean") {
      throw new E(ErrorCode.MALFORMED_FRAME, `${name} must be an integer`);
    }
  }
  return fromFields(fields, maxFrameSize);
}
