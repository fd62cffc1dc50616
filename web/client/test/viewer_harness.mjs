// The viewer's conformance harness: JSON-lines requests on stdin, one JSON line answered each.
//
// Theory of operation
// -------------------
// tests/web/test_js_viewer.py starts one `node viewer_harness.mjs --stdio` and asks it
// what Hypothesis generated; the Python side asks starwrs.proxies.dss.expr, msgpack
// and its own reading of the report rules the same questions.  Requests:
//
//   {"op": "expr", "text": T, "cases": [{"row": {id: text|null}, "totals": {...},
//    "decimals": D}]}
//       -> {"refs": [[Cn ids], [CTn ids]], "results": [{"value": "c e"|null,
//           "fixed": text|null|{"range_error": true}}]}
//        | {"error": {"message": M, "offset": N}}
//   {"op": "msgpack_encode", "value": V}   (bytes as {"$bin": hex})  -> {"hex": H}
//   {"op": "msgpack_decode", "hex": H}     -> {"value": V} | {"error": M}
//   {"op": "report", "csv": T, "mtd": T, "sort": [[id, "asc"|"desc"]], "breaks": [ids],
//    "columns": [ids]|null}
//       -> {"csv": exported text, "subtotals": n, "from_file": bool}
//   {"op": "batch", "requests": [request...]} -> {"answers": [answer...]}
//
// Anything thrown that is not an expected error is {"crash": text}.  Run by
// `node --test` (every file under test/), this file checks its own handler.

import { createInterface } from "node:readline";
import test from "node:test";
import assert from "node:assert/strict";

import { parse } from "../js/protocol/metadata.js";
import { ExpressionError, compileExpression, parseExpression, quantize, references } from "../js/viewer/expr.js";
import { MsgpackError, decode, encode } from "../js/viewer/msgpack.js";
import { readMetadata } from "../js/viewer/metadata.js";
import { arrange, buildReport, exportCsv } from "../js/viewer/report.js";

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function unhex(text) {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function valueIn(v) {
  if (v && typeof v === "object" && !Array.isArray(v)) {
    if (typeof v.$bin === "string") return unhex(v.$bin);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, valueIn(x)]));
  }
  if (Array.isArray(v)) return v.map(valueIn);
  return v;
}

function valueOut(v) {
  if (v instanceof Uint8Array) return { $bin: hex(v) };
  if (typeof v === "bigint") return { $int: String(v) };
  if (Array.isArray(v)) return v.map(valueOut);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, valueOut(x)]));
  return v;
}

function ids(obj) {
  return new Map(Object.entries(obj ?? {}).map(([k, v]) => [Number(k), v]));
}

export function handle(request) {
  switch (request.op) {
    case "expr": {
      let tree;
      try {
        tree = parseExpression(request.text);
      } catch (err) {
        if (err instanceof ExpressionError) return { error: { message: err.reason, offset: err.offset } };
        throw err;
      }
      const fn = compileExpression(tree);
      const refs = references(tree);
      return {
        refs: [[...refs.columns].sort((a, b) => a - b), [...refs.totals].sort((a, b) => a - b)],
        results: (request.cases ?? []).map(({ row, totals, decimals }) => {
          const value = fn(ids(row), ids(totals));
          if (value === null) return { value: null, fixed: null };
          let fixed;
          try {
            fixed = quantize(value, decimals).toFixed();
          } catch (err) {
            if (!(err instanceof RangeError)) throw err;
            fixed = { range_error: true };
          }
          return { value: value.normalized(), fixed };
        }),
      };
    }
    case "msgpack_encode":
      return { hex: hex(encode(valueIn(request.value))) };
    case "msgpack_decode":
      try {
        return { value: valueOut(decode(unhex(request.hex))) };
      } catch (err) {
        if (err instanceof MsgpackError) return { error: err.message };
        throw err;
      }
    case "report": {
      const meta = readMetadata(parse(request.mtd));
      const report = buildReport(request.csv, meta);
      const sort = (request.sort ?? []).map(([id, dir]) => ({ id, dir }));
      const arranged = arrange(report, { sort, breaks: request.breaks ?? [] });
      const columns = request.columns ? request.columns.map((id) => meta.columns.get(id)) : report.columns;
      const lines = [...arranged.lines, ...(arranged.total ? [arranged.total] : [])];
      return { csv: exportCsv(columns, lines), subtotals: arranged.subtotals, from_file: arranged.fromFile };
    }
    case "batch":
      return { answers: request.requests.map(answer) };
    default:
      return { crash: `unknown op ${request.op}` };
  }
}

function answer(request) {
  try {
    return handle(request);
  } catch (err) {
    return { crash: `${err?.stack ?? err}` };
  }
}

if (process.argv.includes("--stdio")) {
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    process.stdout.write(`${JSON.stringify(answer(JSON.parse(line)))}\n`);
  });
} else {
  test("the harness answers each op", () => {
    assert.deepEqual(handle({ op: "expr", text: "( C36 / CT36 ) * 100", cases: [{ row: { 36: "12.5" }, totals: { 36: "50" }, decimals: 1 }] }), {
      refs: [[36], [36]],
      results: [{ value: "25e0", fixed: "25.0" }],
    });
    assert.deepEqual(handle({ op: "expr", text: "C1 +" }), {
      error: { message: "expected a number, Cn, CTn or '(', found end of expression", offset: 4 },
    });
    assert.equal(handle({ op: "msgpack_encode", value: { op: "get", resource: "F<INBOXID=1>", offset: 0 } }).hex.slice(0, 2), "83");
    assert.deepEqual(handle({ op: "msgpack_decode", hex: "81a3616263c403010203" }), { value: { abc: { $bin: "010203" } } });
    assert.ok("error" in handle({ op: "msgpack_decode", hex: "81a361" }));
    assert.ok("crash" in answer({ op: "nope" }));
  });
}
