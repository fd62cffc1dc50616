// The Message Center's and Report Viewer's DOM-free modules under Node (node --test test/).

import test from "node:test";
import assert from "node:assert/strict";

import { buildFrame } from "../js/protocol/frames.js";
import { Mechanism } from "../js/protocol/header.js";
import { parse, serialize } from "../js/protocol/metadata.js";
import {
  compareItems,
  deleteAllMessage,
  deleteMessage,
  fetchResource,
  fileBase,
  itemsOf,
  listMessage,
  sizeText,
  sortItems,
  ttlDays,
  ttlText,
  updateMessage,
} from "../js/inbox/items.js";
import { BulkError, download, sha256Hex } from "../js/viewer/bulk.js";
import { Dec, divide, evaluate, parseExpression, quantize } from "../js/viewer/expr.js";
import { crc32, kindOf, unzipFirst, zipFiles } from "../js/viewer/files.js";
import { criteriaLines, readMetadata } from "../js/viewer/metadata.js";
import { decode, encode } from "../js/viewer/msgpack.js";
import { arrange, buildReport, chartColumns, chartRows, exportCsv, parseCsv } from "../js/viewer/report.js";

const MTD =
  "<METADATA=<CRITERIA=<Name=Broad,Total_Amount=<58,22.49>,Description=By city,Report_Level=INBOUND<<90000003,90000003><NA,NA><NA,NA>>," +
  "Options=,Dates=<06/02/1998 00:00 - 07/15/1998 12:00>,Time_zone=EDT>,DEFAULT_GRAPH_MODE=1,DEFAULT_GRAPH_TYPE=1,DEFINE_X_AXIS=1," +
  "X_AXIS_COLUMN=54,DEFAULT_Y_COLUMNS=<67>,COLUMN_DISPLAY_ORDER=<54~55~67~62~36~64>,SORT_ALLOWED=1,PRESORTED=1,PRESUBTOTALED=1," +
  "TOTALMODE=3,SORT_COLUMNS=<54D>,SUBTOTCOL=<55>,SELECTED_SECTION=0," +
  "METACOLUMN=<META_COLUMN_ID=54,COLUMN_LABEL=City,DATATYPE=S,DECIMAL=0,HIDEABLE=1,GRAPHABLE=0,WIDTH=20,CALCULATE=0,CALCULATE_EXPRESSION=>," +
  "METACOLUMN=<META_COLUMN_ID=55,COLUMN_LABEL=State,DATATYPE=S,DECIMAL=0,HIDEABLE=1,GRAPHABLE=0,WIDTH=6,CALCULATE=0,CALCULATE_EXPRESSION=>," +
  "METACOLUMN=<META_COLUMN_ID=67,COLUMN_LABEL=Calls,DATATYPE=I,DECIMAL=0,HIDEABLE=0,GRAPHABLE=1,WIDTH=7,CALCULATE=0,CALCULATE_EXPRESSION=>," +
  "METACOLUMN=<META_COLUMN_ID=62,COLUMN_LABEL=% Calls,DATATYPE=N,DECIMAL=1,HIDEABLE=1,GRAPHABLE=1,WIDTH=7,CALCULATE=0,CALCULATE_EXPRESSION=( C67 / CT67 ) * 100>," +
  "METACOLUMN=<META_COLUMN_ID=36,COLUMN_LABEL=Minutes,DATATYPE=N,DECIMAL=1,HIDEABLE=1,GRAPHABLE=1,WIDTH=8,CALCULATE=0,CALCULATE_EXPRESSION=>," +
  "METACOLUMN=<META_COLUMN_ID=64,COLUMN_LABEL=Avg Min/Call,DATATYPE=N,DECIMAL=2,HIDEABLE=1,GRAPHABLE=1,WIDTH=12,CALCULATE=1,CALCULATE_EXPRESSION=C36 / C67>>>";
const CSV = [
  "0,54,55,67,62,36,64",
  "D,WINDSOR,CA,1,20.0,0.9,",
  "D,WHITTIER,CA,2,40.0,14.9,",
  "S,,CA,3,60.0,15.8,",
  '"D","YORK, OLD",NE,2,40.0,0.6,',
  "S,,NE,2,40.0,0.6,",
  "T,,,5,100.0,16.4,",
  "",
].join("\r\n");

test("a report file read through its metadata", () => {
  const meta = readMetadata(parse(MTD));
  assert.deepEqual(meta.order, [54, 55, 67, 62, 36, 64]);
  assert.deepEqual(meta.sortColumns, [{ id: 54, dir: "desc" }]);
  assert.deepEqual(meta.subtotalColumns, [55]);
  assert.equal(meta.columns.get(67).hideable, false);
  assert.deepEqual(meta.graph, { mode: 1, type: "bar", x: 54, ys: [67] });
  const lines = Object.fromEntries(criteriaLines(meta).map((l) => [l.label, l.text]));
  assert.equal(lines["Total Amount"], "22.49");
  assert.equal(lines["Report Level"], "INBOUND 90000003, 90000003");
  assert.equal(lines["Time zone"], "EDT");
  assert.equal(lines.Options, "");

  const report = buildReport(CSV, meta);
  assert.equal(report.details.length, 3);
  assert.equal(report.total.c67, "5");
  // CALCULATE=1: computed for every line, rounded to DECIMAL half away from zero
  assert.deepEqual(report.lines.map((l) => l.c64), ["0.90", "7.45", "5.27", "0.30", "0.30", "3.28"]);
  assert.equal(report.details[2].c54, "YORK, OLD");

  const file = arrange(report, { sort: meta.sortColumns, breaks: [55] });
  assert.equal(file.fromFile, true);
  assert.deepEqual(file.lines.map((l) => `${l._t}${l.c54}`), ["DWINDSOR", "DWHITTIER", "S", "DYORK, OLD", "S"]);

  const byCalls = arrange(report, { sort: [{ id: 67, dir: "desc" }, { id: 54, dir: "asc" }] });
  assert.deepEqual(byCalls.lines.map((l) => l.c54), ["WHITTIER", "YORK, OLD", "WINDSOR"]);

  // subtotals by another break column, made here: sums and the expressions
  const byCity = arrange(report, { sort: [{ id: 54, dir: "asc" }], breaks: [54] });
  assert.equal(byCity.fromFile, false);
  assert.equal(byCity.subtotals, 3);
  const s = byCity.lines.filter((l) => l._t === "S");
  assert.deepEqual(s.map((l) => [l.c54, l.c55, l.c67, l.c62, l.c36, l.c64]), [
    ["WHITTIER", "", "2", "40.0", "14.9", "7.45"],
    ["WINDSOR", "", "1", "20.0", "0.9", "0.90"],
    ["YORK, OLD", "", "2", "40.0", "0.6", "0.30"],
  ]);

  const csv = exportCsv([meta.columns.get(55), meta.columns.get(54)], [...byCalls.lines, byCalls.total]);
  assert.equal(csv, 'Row,State,City\r\n,CA,WHITTIER\r\n,NE,"YORK, OLD"\r\n,CA,WINDSOR\r\nTotal,,\r\n');

  const cols = chartColumns(report);
  assert.deepEqual(cols[2], { id: "c67", label: "Calls", type: "number", decimals: 0 });
  assert.deepEqual(chartRows(report)[0], { c54: "WINDSOR", c55: "CA", c67: 1, c62: 20, c36: 0.9, c64: 0.9 });
});

test("empty cells sort last in either direction", () => {
  const meta = readMetadata(parse(MTD));
  const report = buildReport("0,54,55,67\r\nD,A,,1\r\nD,B,CA,\r\nD,C,AZ,3\r\n", meta);
  const order = (sort) => arrange(report, { sort }).lines.map((l) => l.c54).join("");
  assert.equal(order([{ id: 55, dir: "asc" }]), "CBA");
  assert.equal(order([{ id: 55, dir: "desc" }]), "BCA");
  assert.equal(order([{ id: 67, dir: "desc" }]), "CAB");
  const grouped = arrange(report, { breaks: [55] });
  assert.deepEqual(grouped.lines.map((l) => `${l._t}${l.c55}`), ["DAZ", "SAZ", "DCA", "SCA", "D", "S"]);
});

test("RFC 4180 cells", () => {
  assert.deepEqual(parseCsv('a,"b,""c"""\r\n,\n"x\r\ny"'), [["a", 'b,"c"'], ["", ""], ["x\r\ny"]]);
  assert.deepEqual(parseCsv("0,1\r\n"), [["0", "1"]]);
  assert.throws(() => parseCsv('"open'), SyntaxError);
});

test("expressions: the docstring's examples", () => {
  const v = (text, row = {}, totals = {}) => evaluate(parseExpression(text), row, totals);
  assert.equal(v("( C36 / CT36 ) * 100", { 36: "12.5" }, { 36: "50" }).normalized(), "25e0");
  assert.equal(v("C58 / C67", { 58: "1", 67: "0" }), null);
  assert.equal(v("-C1 - -2", { 1: "5" }).normalized(), "-3e0");
  assert.equal(v("1 - 2 - 3").normalized(), "-4e0");
  assert.equal(v("8 / 4 / 2").normalized(), "1e0");
  assert.equal(v("C1 + 1", {}), null);
  assert.equal(divide(Dec.parse("2"), Dec.parse("3")).toFixed(), `0.${"6".repeat(59)}7`);
  assert.equal(quantize(Dec.parse("2.345"), 2).toFixed(), "2.35");
  assert.equal(quantize(Dec.parse("-2.345"), 2).toFixed(), "-2.35");
  assert.equal(quantize(Dec.parse("-0.004"), 2).toFixed(), "0.00");
  assert.equal(quantize(Dec.parse("12"), 0).toFixed(), "12");
  assert.throws(() => parseExpression("c36"), /unexpected character 'c' at offset 0/);
  assert.throws(() => parseExpression("(C1"), /expected '\)' at offset 3/);
  assert.throws(() => parseExpression("1 2"), /unexpected '2' at offset 2/);
  assert.throws(() => parseExpression("-".repeat(33) + "1"), /nested more than 32 deep at offset 32/);
});

test("msgpack: the get payload and data frames", () => {
  const get = encode({ op: "get", resource: "F<INBOXID=7,PART=M>", offset: 300 });
  assert.equal(Buffer.from(get).toString("hex"), "83a26f70a3676574a87265736f75726365b3463c494e424f5849443d372c504152543d4d3ea66f6666736574cd012c");
  const frame = encode({ transfer: 1, offset: 0, total: 3, data: new Uint8Array([1, 2, 3]), done: true, sha256: "ab" });
  const back = decode(frame);
  assert.deepEqual([...back.data], [1, 2, 3]);
  assert.equal(back.done, true);
  assert.throws(() => decode(new Uint8Array([0x81, 0xa1])), /truncated/);
  assert.throws(() => decode(new Uint8Array([0xc0, 0xc0])), /after the value/);
});

function dataFrame(offset, total, bytes, last = null) {
  const map = { transfer: 1, offset, total, data: bytes };
  if (last) Object.assign(map, { done: true, sha256: last });
  return buildFrame(Mechanism.BULK, "INBX", encode(map));
}

function streamOf(chunks, { fail = false } = {}) {
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(c);
      if (fail) controller.error(new TypeError("network error"));
      else controller.close();
    },
  });
}

test("a bulk download resumes where the stream broke and checks the sha256", async () => {
  const file = new TextEncoder().encode("0,54\r\nD,ALPHA\r\nD,BETA\r\n");
  const sha = await sha256Hex(file);
  const first = dataFrame(0, file.length, file.subarray(0, 10));
  const asked = [];
  const open = async (target, payload) => {
    const get = decode(payload);
    asked.push(get.offset);
    if (asked.length === 1) return streamOf([first, dataFrame(10, file.length, file.subarray(10, 12)).subarray(0, 20)]);
    if (asked.length === 2) return streamOf([], { fail: true });
    return streamOf([dataFrame(get.offset, file.length, file.subarray(get.offset), sha)]);
  };
  const progress = [];
  const got = await download("F<INBOXID=1>", { open, onProgress: (held) => progress.push(held) });
  assert.deepEqual(asked, [0, 10, 10]);
  assert.deepEqual([...got.bytes], [...file]);
  assert.equal(got.resumes, 2);
  assert.deepEqual(progress, [10, file.length]);

  const wrong = async () => streamOf([dataFrame(0, file.length, file, "0".repeat(64))]);
  await assert.rejects(download("F<INBOXID=1>", { open: wrong }), (err) => err instanceof BulkError && err.code === 7011);

  const refused = async () => streamOf([buildFrame(Mechanism.BULK, "INBX", "Z<REQ=F,ERROR=5100>", { status: 5100 })]);
  await assert.rejects(download("F<INBOXID=9>", { open: refused }), (err) => err instanceof BulkError && err.code === 5100);
});

test("inbox items: the L answer, the seed's order, the messages", () => {
  const answer = parse(
    "Z<REQ=L,ERROR=0,INBOXID=9,TTL=45,ITEMS=<<9,R,priced,Broad,City Summary,2026-03-01 10:00,1864,2439,0,2026-04-15 10:00>" +
      "<8,R,priced,Broad,City Summary,2026-03-02 10:00,10,0,1,2026-04-16 10:00><7,R,priced,Area,Area Code Summary,2026-03-01 09:00,5,5,0,2026-04-15 09:00>>>",
  );
  const { items, latest } = itemsOf(answer);
  assert.equal(latest, 9);
  assert.deepEqual(sortItems(items).map((i) => i.id), [7, 8, 9]);
  assert.equal(items[1].failed, true);
  assert.equal(items[0].ack, false);
  assert.equal(compareItems(items[0], items[0]), 0);
  assert.deepEqual(itemsOf(parse("Z<REQ=L,ERROR=0,INBOXID=3,TTL=45,ITEMS=<>>")).items, []);
  assert.equal(ttlDays(items[0]), 45);
  assert.equal(ttlText("2026-04-15 10:00", Date.UTC(2026, 2, 1, 10, 0)), "in 45 days");
  assert.equal(ttlText("2026-03-01 12:00", Date.UTC(2026, 2, 1, 10, 0)), "in 2 hours");
  assert.equal(ttlText("2026-03-01 09:00", Date.UTC(2026, 2, 1, 10, 0)), "expired");
  assert.equal(sizeText(1864 + 2439), "4.2 KB");
  assert.equal(serialize(listMessage("u1", "00022924", "R")), "L<ENTPID=00022924,USERID=u1,CATEGORY=R>");
  assert.equal(serialize(listMessage("u1", "00022924", "F", 12)), "L<ENTPID=00022924,USERID=u1,CATEGORY=F,INBOXID=12>");
  assert.equal(serialize(updateMessage("u1", "e", 4, { ack: false, ttl: 10 })), "U<ENTPID=e,USERID=u1,INBOXID=4,TTL=10,ACK=0>");
  assert.equal(serialize(deleteMessage(4)), "D<INBOXID=4>");
  assert.equal(serialize(deleteAllMessage("u1", "e")), "D<USERID=u1,ENTPID=e>");
  assert.equal(fetchResource(4, "M"), "F<INBOXID=4,PART=M>");
  assert.equal(fileBase({ id: 4, title: "City / Summary: <x>" }), "City _ Summary_ _x_ 4");
});

test("zip archives in and out; file kinds", async () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  const data = new TextEncoder().encode("0,54\r\n");
  const zip = zipFiles([{ name: "r.csv", bytes: data }, { name: "r.mtd", bytes: new Uint8Array([60]) }], new Date(2026, 0, 2, 3, 4, 6));
  assert.equal(kindOf(zip), "zip");
  const first = await unzipFirst(zip);
  assert.equal(first.name, "r.csv");
  assert.deepEqual([...first.bytes], [...data]);
  assert.equal(kindOf(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0])), "image");
  assert.equal(kindOf(data), "text");
});
