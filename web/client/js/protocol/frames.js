// Frames: build and parse them, and a streaming reader for any chunking
// (starwrs.protocol.frames, PROTOCOL.md section 2).
//
// Theory of operation
// -------------------
// A frame is the common header (header.js), the session key and the payload, length
// bytes in all.  The browser sends one frame as the body of POST /dispatch (klen 0:
// the web server fills the key in from the cookie) and gets one back, so buildFrame
// and decodeFrame cover the usual exchange.  FrameReader is the sans-IO reader for a
// stream of frames (a bulk response read from a ReadableStream), in the style of h11:
//
// 1. receiveData(chunk) adds bytes, in whatever pieces the transport delivered them;
//    receiveData(empty) marks the end of the stream.
// 2. nextEvent() answers NEED_DATA until 24 bytes are there, then sizes the frame
//    from those 24 bytes alone (checkPrefix: 7001, 7008, 7009, 7005 -- a frame that
//    declares 4 GiB costs 24 bytes of buffer, never more), and returns a Frame once
//    length bytes are buffered.  At the end of the stream it returns ConnectionClosed
//    at a frame boundary (forever after) or throws 7009 inside a frame.
// 3. Errors are sticky: once it has thrown, every later call throws the same code,
//    because a byte stream cannot be resynchronised after a lost frame boundary.
//
// Chunks are kept as they arrived and copied once, when a frame is taken out.

import { ErrorCode, LocalProtocolError, RemoteProtocolError } from "./errors.js";
import {
  DEFAULT_MAX_FRAME_SIZE,
  HEADER_SIZE,
  checkPrefix,
  makeHeader,
  packHeader,
  parseHeader,
} from "./header.js";

/** nextEvent() has no whole frame yet: feed it more bytes. */
export const NEED_DATA = Symbol("NEED_DATA");

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** One frame: its Header and its payload bytes. */
export class Frame {
  /**
   * @param {import("./header.js").Header} header
   * @param {Uint8Array} payload
   */
  constructor(header, payload) {
    this.header = header;
    this.payload = payload;
    Object.freeze(this);
  }

  /** The payload as text (a metadata message is UTF-8). @throws {TypeError} not UTF-8 */
  text() {
    return decoder.decode(this.payload);
  }
}

/** The stream ended at a frame boundary. */
export class ConnectionClosed {}

function asBytes(data) {
  if (typeof data === "string") return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("expected bytes (Uint8Array, ArrayBuffer) or text");
}

function concat(parts, size) {
  if (parts.length === 1 && parts[0].length === size) return parts[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Encode one frame; *payload* may be text (UTF-8), bytes, or a list of parts.
 * @param {import("./header.js").Header} header ``length`` must be 24 + key + payload size
 * @param {Uint8Array | string | Array<Uint8Array | string>} [payload]
 * @param {number} [maxFrameSize] largest total length allowed (the peer would refuse more)
 * @returns {Uint8Array}
 * @throws {LocalProtocolError} 7005 too large; 7009 inconsistent length or a bad field;
 *   7001/7008 as packHeader
 */
export function encodeFrame(header, payload = new Uint8Array(0), maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
  const parts = (Array.isArray(payload) ? payload : [payload]).map(asBytes);
  const size = parts.reduce((sum, p) => sum + p.length, 0);
  const expected = HEADER_SIZE + String(header.key).length + size;
  if (header.length !== expected) {
    throw new LocalProtocolError(
      ErrorCode.MALFORMED_FRAME,
      `header length ${header.length} but header, key and payload make ${expected}`,
    );
  }
  if (header.length > maxFrameSize) {
    throw new LocalProtocolError(
      ErrorCode.FRAME_TOO_LARGE,
      `frame of ${header.length} bytes, maximum ${maxFrameSize}`,
    );
  }
  const head = packHeader(header);
  return concat([head, ...parts], head.length + size);
}

/**
 * Build a request frame: the header is made to fit the payload.
 * @param {number} mech Mechanism.SYNC ...
 * @param {string} target ``RM``, ``INBX``, ``DSP`` ...
 * @param {Uint8Array | string} [payload] a metadata message (text is sent as UTF-8)
 * @param {{key?: string, serial?: bigint, status?: number, echo?: number,
 *          maxFrameSize?: number}} [options] key "" lets the web server use the cookie
 * @returns {Uint8Array}
 */
export function buildFrame(mech, target, payload = new Uint8Array(0), options = {}) {
  const { maxFrameSize = DEFAULT_MAX_FRAME_SIZE, ...fields } = options;
  const body = asBytes(payload);
  const header = makeHeader(mech, target, { ...fields, payloadLength: body.length });
  return encodeFrame(header, body, maxFrameSize);
}

/**
 * Decode bytes that must be exactly one frame (an HTTP response body).
 * @param {Uint8Array | ArrayBuffer} data
 * @param {number} [maxFrameSize]
 * @returns {Frame}
 * @throws {RemoteProtocolError} as a stream; 7009 also when *data* is not exactly
 *   the frame's length
 */
export function decodeFrame(data, maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
  const bytes = asBytes(data);
  const header = parseHeader(bytes, maxFrameSize);
  if (bytes.length !== header.length) {
    throw new RemoteProtocolError(
      ErrorCode.MALFORMED_FRAME,
      `${bytes.length} bytes for a frame of length ${header.length}`,
    );
  }
  return new Frame(header, bytes.slice(header.size));
}

/** chunks shorter than this are copied together, so a trickle is not a million arrays */
const COALESCE = 4096;

/** Received bytes not consumed yet: a queue of chunks (the first partly read) and a tail. */
class ReceiveBuffer {
  constructor() {
    this.chunks = [];
    this.first = 0; // index of the first chunk still held
    this.offset = 0; // bytes of chunks[first] already taken
    this.size = 0;
    this.tail = new Uint8Array(COALESCE);
    this.tailLength = 0;
  }

  append(bytes) {
    const n = bytes.length;
    if (!n) return;
    if (n < COALESCE) {
      if (this.tailLength + n > COALESCE) this.flushTail();
      this.tail.set(bytes, this.tailLength);
      this.tailLength += n;
    } else {
      this.flushTail();
      this.chunks.push(bytes); // held as is until read: do not reuse the array
    }
    this.size += n;
  }

  flushTail() {
    if (this.tailLength) {
      this.chunks.push(this.tail.slice(0, this.tailLength));
      this.tailLength = 0;
    }
  }

  /** A copy of the first *n* bytes (n <= size), consumed if *consume*. */
  read(n, consume) {
    this.flushTail();
    const parts = [];
    let need = n;
    let index = this.first;
    let offset = this.offset;
    while (need) {
      const chunk = this.chunks[index];
      const avail = chunk.length - offset;
      if (avail > need) {
        parts.push(chunk.subarray(offset, offset + need));
        offset += need;
        need = 0;
      } else {
        parts.push(chunk.subarray(offset));
        need -= avail;
        index++;
        offset = 0;
      }
    }
    if (consume) {
      for (let i = this.first; i < index; i++) this.chunks[i] = null;
      this.first = index;
      this.offset = offset;
      this.size -= n;
      if (this.first > 64 && this.first * 2 > this.chunks.length) {
        this.chunks = this.chunks.slice(this.first);
        this.first = 0;
      }
    }
    if (parts.length === 1) return parts[0].slice();
    const out = new Uint8Array(n);
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
}

/** Turns a byte stream into Frame events (sans-IO, any chunking). */
export class FrameReader {
  /** @param {number} [maxFrameSize] a larger declared length is refused with 7005 */
  constructor(maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
    this.maxFrameSize = maxFrameSize;
    this._buffer = new ReceiveBuffer();
    this._eof = false;
    this._head = 0; // 24 + klen of the frame being read; 0 until it is sized
    this._length = 0;
    this._error = null;
  }

  /** Bytes received and not yet returned in a frame. */
  get buffered() {
    return this._buffer.size;
  }

  /** True once receiveData(empty) marked the end of the stream. */
  get eof() {
    return this._eof;
  }

  /**
   * Add bytes from the transport; an empty chunk means the peer closed the stream.
   * @throws {Error} data after the end of the stream (a caller bug)
   */
  receiveData(data) {
    const bytes = asBytes(data);
    if (bytes.length) {
      if (this._eof) throw new Error("received data after the end of the stream");
      this._buffer.append(bytes);
    } else {
      this._eof = true;
    }
  }

  /**
   * The next whole frame, a ConnectionClosed, or NEED_DATA.
   * @returns {Frame | ConnectionClosed | typeof NEED_DATA}
   * @throws {RemoteProtocolError} 7001, 7005, 7008, 7009; sticky once thrown
   */
  nextEvent() {
    if (this._error !== null) {
      throw new RemoteProtocolError(this._error.code, this._error.message);
    }
    try {
      return this._nextEvent();
    } catch (err) {
      if (err instanceof RemoteProtocolError) this._error = err;
      throw err;
    }
  }

  _nextEvent() {
    const buffer = this._buffer;
    if (!this._head) {
      if (buffer.size < HEADER_SIZE) {
        if (!this._eof) return NEED_DATA;
        if (buffer.size) {
          throw new RemoteProtocolError(ErrorCode.MALFORMED_FRAME, "stream ended inside a frame header");
        }
        return new ConnectionClosed();
      }
      [this._head, this._length] = checkPrefix(buffer.read(HEADER_SIZE, false), this.maxFrameSize);
    }
    if (buffer.size < this._length) {
      if (!this._eof) return NEED_DATA;
      throw new RemoteProtocolError(
        ErrorCode.MALFORMED_FRAME,
        `stream ended after ${buffer.size} of ${this._length} bytes of a frame`,
      );
    }
    const head = buffer.read(this._head, true);
    const payload = buffer.read(this._length - this._head, true);
    this._head = 0;
    return new Frame(parseHeader(head, this.maxFrameSize), payload);
  }
}

/** Turns Frame events into bytes, checking each one. */
export class FrameWriter {
  /** @param {number} [maxFrameSize] largest total frame length this writer produces */
  constructor(maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
    this.maxFrameSize = maxFrameSize;
    this._closed = false;
  }

  /**
   * The bytes for *event* (empty for ConnectionClosed).
   * @throws {LocalProtocolError} an invalid frame, or a frame after ConnectionClosed (7009)
   */
  send(event) {
    if (this._closed) throw new LocalProtocolError(ErrorCode.MALFORMED_FRAME, "the stream is closed");
    if (event instanceof ConnectionClosed) {
      this._closed = true;
      return new Uint8Array(0);
    }
    return encodeFrame(event.header, event.payload, this.maxFrameSize);
  }
}
