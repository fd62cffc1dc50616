// The browser's side of the web tier: POST /logon, /logoff and /dispatch.
//
// Theory of operation
// -------------------
// The session key lives in the HttpOnly cookie __Host-starwrs_session, which page
// scripts never see: fetch sends it (same origin), the web server puts it into the
// frame.  So a request here is one frame with an empty key, built with
// protocol/frames.js around a metadata message serialized by protocol/metadata.js,
// and the answer is one frame whose payload is parsed back into a Message.
//
// Failures are typed so that callers can react without reading status codes:
//
// * SessionEnded -- HTTP 401 (error 7004 or no cookie): the session is gone;
// * LogonRefused -- /logon said no: kind "invalid" (401, 6115: wrong user id or
//   password, or a disabled user -- the server answers all three alike), "throttled"
//   (429, with retryAfter seconds), "unavailable" (502/504), "rejected" (anything else);
// * HttpFailure  -- any other HTTP-level answer (403, 413, 5xx) or no answer at all.
//
// A frame that comes back with a non-zero status is not an exception: dispatch()
// returns {status, message} and the caller decides (an error answer is
// ``ARDA<ERROR=6113>`` or, from the dispatcher, ``<ERROR=7003,REASON=...>``).

import { Mechanism } from "./protocol/header.js";
import { buildFrame, decodeFrame } from "./protocol/frames.js";
import { Message, parse, serialize } from "./protocol/metadata.js";

const FRAME_TYPE = "application/x-starwrs-frame";

/** The session is gone (HTTP 401): log on again. */
export class SessionEnded extends Error {
  constructor(message = "no valid session") {
    super(message);
    this.name = "SessionEnded";
  }
}

/** /logon refused: ``kind`` is invalid, throttled, unavailable or rejected. */
export class LogonRefused extends Error {
  constructor(kind, message, retryAfter = 0) {
    super(message);
    this.name = "LogonRefused";
    this.kind = kind;
    this.retryAfter = retryAfter;
  }
}

/** An HTTP-level failure other than 401, or no answer at all (status 0). */
export class HttpFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "HttpFailure";
    this.status = status;
    this.code = code;
  }
}

async function jsonOf(response) {
  try {
    return await response.json();
  } catch {
    return {};
  }
}

async function post(path, init) {
  try {
    return await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      redirect: "error",
      ...init,
    });
  } catch (err) {
    throw new HttpFailure(0, 0, `the server cannot be reached (${err.message})`);
  }
}

/**
 * Log on.  Resolves with the server's JSON (user, enterprise, applications,
 * entitlements, timezone, lang, curr, session limits); the cookie is set by the answer.
 * @param {string} user
 * @param {string} password
 * @throws {LogonRefused | HttpFailure}
 */
export async function logon(user, password) {
  const response = await post("/logon", {
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user, password }),
  });
  const body = await jsonOf(response);
  if (response.ok) return body;
  const text = typeof body.message === "string" ? body.message : response.statusText;
  if (response.status === 401) throw new LogonRefused("invalid", text);
  if (response.status === 429) {
    const wait = Number.parseInt(response.headers.get("Retry-After") ?? "60", 10);
    throw new LogonRefused("throttled", text, Number.isFinite(wait) ? wait : 60);
  }
  if (response.status === 502 || response.status === 504) {
    throw new LogonRefused("unavailable", text);
  }
  throw new LogonRefused("rejected", text);
}

/** Log off (the cookie is cleared by the answer).  Never throws for a gone session. */
export async function logoff() {
  const response = await post("/logoff", {});
  if (!response.ok && response.status !== 401) {
    const body = await jsonOf(response);
    throw new HttpFailure(response.status, body.error ?? response.status, body.message ?? "");
  }
}

/**
 * Send one metadata message synchronously and return the answer.
 * @param {string} target ``RM``, ``OE``, ``INBX`` ...
 * @param {Message | string} message
 * @returns {Promise<{status: number, message: Message | null, text: string}>}
 *   ``message`` is null when the answer payload is not a metadata message
 * @throws {SessionEnded | HttpFailure}
 */
export async function dispatch(target, message) {
  const text = typeof message === "string" ? message : serialize(message);
  const response = await post("/dispatch", {
    headers: { "Content-Type": FRAME_TYPE },
    body: buildFrame(Mechanism.SYNC, target, text),
  });
  if (response.status === 401) throw new SessionEnded();
  const type = (response.headers.get("Content-Type") ?? "").split(";")[0].trim();
  if (!response.ok || type !== FRAME_TYPE) {
    const body = await jsonOf(response);
    throw new HttpFailure(
      response.status,
      body.error ?? response.status,
      typeof body.message === "string" ? body.message : `HTTP ${response.status}`,
    );
  }
  const frame = decodeFrame(new Uint8Array(await response.arrayBuffer()));
  let answerText = "";
  let parsed = null;
  try {
    answerText = frame.text();
    parsed = parse(answerText);
  } catch {
    parsed = null;
  }
  return { status: frame.header.status, message: parsed, text: answerText };
}

/**
 * Start a bulk transfer (mechanism 3): POST one request frame whose payload is the
 * msgpack control map (a get), and return the answer's body as a byte stream of
 * frames, read as it arrives (the web tier streams the data frames; a body cut
 * short means the connection dropped: resume with a new get).  viewer/bulk.js
 * reads it.
 * @param {string} target ``INBX`` ...
 * @param {Uint8Array} payload the msgpack control map
 * @param {{signal?: AbortSignal}} [options] aborting closes the connection (a cancel)
 * @returns {Promise<ReadableStream<Uint8Array>>}
 * @throws {SessionEnded | HttpFailure}
 */
export async function openBulk(target, payload, { signal } = {}) {
  const response = await post("/dispatch", {
    headers: { "Content-Type": FRAME_TYPE },
    body: buildFrame(Mechanism.BULK, target, payload),
    signal,
  });
  if (response.status === 401) throw new SessionEnded();
  const type = (response.headers.get("Content-Type") ?? "").split(";")[0].trim();
  if (!response.ok || type !== FRAME_TYPE || !response.body) {
    const body = await jsonOf(response);
    throw new HttpFailure(
      response.status,
      body.error ?? response.status,
      typeof body.message === "string" ? body.message : `HTTP ${response.status}`,
    );
  }
  return response.body;
}
