// Bulk downloads in the browser: F<INBOXID=n[,PART=M]> over mechanism 3, resumed and checked.
//
// Theory of operation
// -------------------
// PROTOCOL.md section 3: a get is one frame whose payload is the msgpack map
// ``{"op": "get", "resource": "F<INBOXID=n,PART=M>", "offset": k}``; the web tier
// answers with a stream of data frames ``{"transfer", "offset", "total", "data"}``,
// the last with ``"done": true`` and the sha256 of the whole resource, or with one
// error frame (a non-zero status, its payload the inbox's ``Z<REQ=F,ERROR=…>``).
// download() runs that exchange with transport.openBulk and a FrameReader:
//
// * every data frame must continue exactly where the bytes held end and name the
//   same total; its data goes into one buffer of ``total`` bytes, and onProgress
//   hears (held, total) after each frame;
// * a stream that ends before the ``done`` frame -- the connection dropped, the body
//   cut short inside or between frames, a network error -- is resumed: a new get
//   with ``offset`` = bytes held, at most MAX_RESUMES times in a row without
//   progress, after a short pause that grows each time;
// * the whole resource is hashed with crypto.subtle once it is complete; a digest
//   other than the server's is 7011 (the bytes are thrown away, and fetched once
//   more from the start before giving up);
// * a session that ended (HTTP 401) is handed to *relogon* (the backplane asks the
//   user to log on again, keeping the screen) and the get is sent again from the
//   bytes held;
// * aborting *signal* closes the connection, which cancels the transfer at the server.
//
// Errors are BulkError with a code: the inbox's (5100 not found, 5166 no metadata,
// 5104/5108 unreadable), 7011 checksum, 7009 a stream that breaks the protocol
// (an offset out of place, a frame that is not a data frame), 0 no connection.

import { ProtocolError } from "../protocol/errors.js";
import { ConnectionClosed, FrameReader, NEED_DATA } from "../protocol/frames.js";
import { parse } from "../protocol/metadata.js";
import { HttpFailure, SessionEnded, openBulk } from "../transport.js";
import { MsgpackError, decode, encode } from "./msgpack.js";

/** drops resumed in a row (without a byte of progress) before giving up */
export const MAX_RESUMES = 5;
/** first pause before a resume, milliseconds (doubles each time) */
const PAUSE_MS = 150;

/** A download that could not be completed: ``code`` says why. */
export class BulkError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "BulkError";
    this.code = code;
  }
}

/** The stream ended before the last frame: resume. */
class Dropped extends Error {}

/** Lowercase hex SHA-256 of *bytes* (crypto.subtle: HTTPS pages and Node). */
export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The control payload of a get of *resource* from *offset*. */
export function getPayload(resource, offset) {
  return encode({ op: "get", resource, offset });
}

function errorAnswer(frame) {
  let code = frame.header.status;
  let reason = "";
  try {
    const message = parse(frame.text());
    const error = Number.parseInt(String(message.get("ERROR") ?? ""), 10);
    if (Number.isFinite(error) && error) code = error;
    const why = message.get("REASON");
    if (typeof why === "string") reason = why;
  } catch {
    // not a metadata message: the header's status says it all
  }
  return new BulkError(code, reason || `the server answered ${code}`);
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new DOMException("aborted", "AbortError"));
      },
      { once: true },
    );
  });
}

/**
 * Download *resource* (``F<INBOXID=n>`` or ``F<INBOXID=n,PART=M>``) from *target*.
 * @param {string} resource
 * @param {{target?: string, signal?: AbortSignal,
 *          onProgress?: (held: number, total: number) => void,
 *          relogon?: () => Promise<void>, open?: typeof openBulk}} [options]
 *   *open* replaces transport.openBulk (tests)
 * @returns {Promise<{bytes: Uint8Array, sha256: string, resumes: number}>}
 * @throws {BulkError | SessionEnded | DOMException} AbortError when *signal* aborts
 */
export async function download(resource, options = {}) {
  const { target = "INBX", signal, onProgress = () => {}, relogon, open = openBulk } = options;
  let buffer = null;
  let total = -1;
  let held = 0;
  let sha = "";
  let drops = 0;
  let resumes = 0;
  let checksumRetried = false;

  const restart = () => {
    buffer = null;
    total = -1;
    held = 0;
    sha = "";
  };

  const take = (frame) => {
    if (frame.header.status !== 0 || frame.header.mech !== 3) throw errorAnswer(frame);
    let data;
    try {
      data = decode(frame.payload);
    } catch (err) {
      if (err instanceof MsgpackError) throw new BulkError(7009, `a data frame is not msgpack: ${err.message}`);
      throw err;
    }
    const { offset, total: size, data: chunk, done } = data ?? {};
    if (!Number.isSafeInteger(size) || !Number.isSafeInteger(offset) || !(chunk instanceof Uint8Array)) {
      throw new BulkError(7009, "a data frame without offset, total and data");
    }
    if (total === -1) {
      total = size;
      buffer = new Uint8Array(total);
    } else if (size !== total) {
      return "changed";
    }
    if (offset !== held || offset + chunk.length > total) {
      throw new BulkError(7009, `data at ${offset}+${chunk.length} while ${held} of ${total} bytes are held`);
    }
    buffer.set(chunk, held);
    held += chunk.length;
    onProgress(held, total);
    if (done === true) {
      if (held !== total || typeof data.sha256 !== "string") {
        throw new BulkError(7009, `the last frame leaves ${held} of ${total} bytes`);
      }
      sha = data.sha256;
      return "done";
    }
    return chunk.length ? "more" : "empty";
  };

  for (;;) {
    if (signal?.aborted) throw new DOMException("aborted", "AbortError");
    const from = held;
    let outcome;
    try {
      outcome = await attempt(open, target, resource, from, signal, take);
    } catch (err) {
      if (err instanceof SessionEnded && relogon) {
        await relogon();
        continue;
      }
      if (err instanceof Dropped) {
        if (signal?.aborted) throw new DOMException("aborted", "AbortError");
        drops = held > from ? 1 : drops + 1;
        if (drops > MAX_RESUMES) {
          throw new BulkError(0, `the connection dropped ${drops} times without progress`);
        }
        resumes += 1;
        await sleep(PAUSE_MS * 2 ** (drops - 1), signal);
        continue;
      }
      throw err;
    }
    if (outcome === "changed") {
      restart();
      continue;
    }
    const digest = await sha256Hex(buffer);
    if (digest === sha) return { bytes: buffer, sha256: digest, resumes };
    if (checksumRetried) {
      throw new BulkError(7011, `checksum mismatch: the server said ${sha}, the bytes hash to ${digest}`);
    }
    checksumRetried = true;
    restart();
  }
}

async function attempt(open, target, resource, offset, signal, take) {
  let stream;
  try {
    stream = await open(target, getPayload(resource, offset), { signal });
  } catch (err) {
    if (err instanceof HttpFailure && err.status === 0 && !signal?.aborted) throw new Dropped();
    if (err instanceof HttpFailure && signal?.aborted) throw new DOMException("aborted", "AbortError");
    if (err instanceof HttpFailure) throw new BulkError(err.code || err.status, err.message);
    throw err;
  }
  const reader = stream.getReader();
  const frames = new FrameReader();
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (signal?.aborted) throw new DOMException("aborted", "AbortError");
        throw new Dropped(String(err));
      }
      frames.receiveData(chunk.done ? new Uint8Array(0) : chunk.value);
      for (;;) {
        let event;
        try {
          event = frames.nextEvent();
        } catch (err) {
          if (err instanceof ProtocolError && frames.eof) throw new Dropped(err.message);
          if (err instanceof ProtocolError) throw new BulkError(err.code, err.message);
          throw err;
        }
        if (event === NEED_DATA) break;
        if (event instanceof ConnectionClosed) throw new Dropped("the stream ended before the last frame");
        const outcome = take(event);
        if (outcome === "done" || outcome === "changed") return outcome;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
