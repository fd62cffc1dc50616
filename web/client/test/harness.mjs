// The conformance harness: JSON-lines requests on stdin, one JSON line answered each.
//
// Theory of operation
// -------------------
// tests/web/test_js_protocol.py starts one `node harness.mjs --stdio` per test module
// and sends it what Hypothesis generated; the Python side compares the answers with
// starwrs.grammar and starwrs.protocol.  In a request, an integer that may not fit a
// double (a serial) is {"$int": "decimal"}; in an answer a serial is decimal text.
// Bytes travel as hex.  Requests:
//
//   {"op": "parse", "text": T, "max_depth"?: N, "max_length"?: N}
//       -> {"tree": JSON form, "canonical": text} | {"error": {error, message, offset}}
//   {"op": "serialize", "tree": JSON form}
//       -> {"text": canonical text} | {"error": {...}}
//   {"op": "header_decode", "hex": H, "max_frame_size"?: N | null}
//       -> {"header": dict, "text": text form, "hex": re-packed} | {"code": C, "message": M}
//   {"op": "header_encode", "header": fields}            (packHeader of those fields)
//       -> {"hex": H} | {"code", "message"}
//   {"op": "header_text", "header": fields}              (headerToText)
//       -> {"text": T} | {"code", "message"}
//   {"op": "header_text", "text": T, "max_frame_size"?}  (headerFromText)
//       -> {"header": dict, "hex": H} | {"code", "message"}
//   {"op": "header_dict", "header": obj, "max_frame_size"?} (headerFromDict)
//       -> {"header": dict, "hex": H} | {"code", "message"}
//   {"op": "frames", "chunks": [H...], "eof": bool, "max_frame_size"?}
//       -> {"events": [{"header", "payload"} | "closed" | ["error", C]]}
//   {"op": "codes"} -> {"codes": {NAME: code}, "meanings": {code: text}}
//   {"op": "batch", "requests": [request...]} -> {"answers": [answer...]}
//
// A RangeError (a limit out of range: a caller's mistake) is {"range_error": text}.
//
// Anything the modules throw that is not one of their coded errors is answered as
// {"crash": text}, which every test treats as a failure.  Run by `node --test`
// (which runs every file under test/) this file tests its own request handler.

import { createInterface } from "node:readline";
import test from "node:test";
import assert from "node:assert/strict";

import { ErrorCode, MessageError, ProtocolError, codeMeaning } from "../js/protocol/errors.js";
import {
  Header,
  headerFromDict,
  headerFromText,
  headerToDict,
  headerToText,
  packHeader,
  parseHeader,
} from "../js/protocol/header.js";
import { ConnectionClosed, FrameReader, NEED_DATA } from "../js/protocol/frames.js";
import { fromJson, parse, serialize, toJson } from "../js/protocol/metadata.js";

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function unhex(text) {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Request integers that may exceed 2**53 come as {"$int": "decimal"}: a BigInt. */
function fieldsIn(obj) {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return obj;
  const out = { ...obj };
  for (const [name, value] of Object.entries(out)) {
    if (value !== null && typeof value === "object" && typeof value.$int === "string") {
      out[name] = BigInt(value.$int);
    }
  }
  return out;
}

function dictOut(header) {
  const dict = headerToDict(header);
  return { ...dict, serial: String(dict.serial) };
}

function headerAnswer(header) {
  return { header: dictOut(header), hex: hex(packHeader(header)) };
}

function maxFrameSize(request) {
  return Object.hasOwn(request, "max_frame_size") ? request.max_frame_size : undefined;
}

const OPS = {
  batch(request) {
    return { answers: request.requests.map(answer) };
  },
  codes() {
    return { codes: ErrorCode, meanings: Object.fromEntries(Object.values(ErrorCode).map((c) => [c, codeMeaning(c)])) };
  },
  parse(request) {
    const options = {};
    if (request.max_depth !== undefined) options.maxDepth = request.max_depth;
    if (request.max_length !== undefined) options.maxLength = request.max_length;
    const message = parse(request.text, options);
    return { tree: toJson(message), canonical: serialize(message) };
  },
  serialize(request) {
    return { text: serialize(fromJson(request.tree)) };
  },
  header_decode(request) {
    const header = parseHeader(unhex(request.hex), maxFrameSize(request));
    return { ...headerAnswer(header), text: headerToText(header) };
  },
  header_encode(request) {
    return { hex: hex(packHeader(new Header(fieldsIn(request.header)))) };
  },
  header_text(request) {
    if (Object.hasOwn(request, "text")) {
      return headerAnswer(headerFromText(request.text, maxFrameSize(request)));
    }
    return { text: headerToText(new Header(fieldsIn(request.header))) };
  },
  header_dict(request) {
    return headerAnswer(headerFromDict(fieldsIn(request.header), maxFrameSize(request)));
  },
  frames(request) {
    const reader = new FrameReader(request.max_frame_size ?? undefined);
    const events = [];
    const chunks = request.chunks.map(unhex);
    if (request.eof) chunks.push(new Uint8Array(0));
    try {
      for (const chunk of chunks) {
        reader.receiveData(chunk);
        for (;;) {
          const event = reader.nextEvent();
          if (event === NEED_DATA) break;
          if (event instanceof ConnectionClosed) {
            events.push("closed");
            return { events };
          }
          events.push({ header: dictOut(event.header), payload: hex(event.payload) });
        }
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      events.push(["error", err.code]);
    }
    return { events };
  },
};

/**
 * Answer one request object (see the module comment).
 * @param {object} request
 * @returns {object}
 */
export function answer(request) {
  const op = OPS[request.op];
  if (!op) return { crash: `unknown op ${JSON.stringify(request.op)}` };
  try {
    return op(request);
  } catch (err) {
    if (err instanceof MessageError) return { error: err.toJSON() };
    if (err instanceof ProtocolError) return { code: err.code, message: err.message };
    if (err instanceof RangeError) return { range_error: err.message };
    return { crash: String(err && err.stack ? err.stack : err) };
  }
}

async function serve() {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let reply;
    try {
      reply = answer(JSON.parse(line));
    } catch (err) {
      reply = { crash: String(err) };
    }
    process.stdout.write(JSON.stringify(reply) + "\n");
  }
}

if (process.argv.includes("--stdio")) {
  await serve();
} else {
  test("the harness answers every op", () => {
    assert.deepEqual(answer({ op: "parse", text: "A<B=c>" }), {
      tree: { acronym: "A", members: [{ key: "B", value: "c" }] },
      canonical: "A<B=c>",
    });
    assert.equal(answer({ op: "parse", text: "A<" }).error.error, 6612);
    assert.deepEqual(answer({ op: "serialize", tree: { acronym: null, members: [] } }), { text: "<>" });
    const serial = { $int: "18446744073709551615" };
    const fields = { version: 1, echo: 0, mech: 0, length: 24, serial, status: 0, target: "RM", key: "" };
    const { hex: bytes } = answer({ op: "header_encode", header: fields });
    assert.equal(bytes.length, 48);
    assert.equal(answer({ op: "header_decode", hex: bytes }).header.serial, "18446744073709551615");
    const { text } = answer({ op: "header_text", header: fields });
    assert.equal(answer({ op: "header_text", text }).hex, bytes);
    assert.equal(answer({ op: "header_dict", header: { mech: "SYNC", target: "RM" } }).hex.length, 48);
    assert.deepEqual(answer({ op: "frames", chunks: [bytes], eof: true }).events.at(-1), "closed");
    assert.equal(answer({ op: "header_decode", hex: "02" + bytes.slice(2) }).code, 7001);
    assert.ok(answer({ op: "nope" }).crash);
  });
}
