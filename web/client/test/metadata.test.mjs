// Unit tests of js/protocol/metadata.js (node --test web/client/test/).  The
// differential tests against Python are in tests/web/test_js_protocol.py.

import test from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";

import { ErrorCode, MessageError } from "../js/protocol/errors.js";
import {
  Group,
  Member,
  Message,
  Seq,
  TList,
  Tagged,
  dumps,
  equals,
  escape,
  fromJson,
  parse,
  serialize,
  toJson,
  unescape,
} from "../js/protocol/metadata.js";

const SEED = new URL("../../../fixtures/seed/", import.meta.url);

function errorOf(text, options) {
  try {
    parse(text, options);
  } catch (err) {
    assert.ok(err instanceof MessageError, String(err));
    return [err.code, err.offset];
  }
  assert.fail(`${JSON.stringify(text)} parsed`);
}

test("the README example: white space around tokens is not significant", () => {
  const message = parse("GRTL<PRODUCT=V, DATATYPE=R, DATA CAT=P, IO=O>");
  assert.equal(message.acronym, "GRTL");
  assert.equal(message.get("DATA CAT"), "P");
  assert.equal(serialize(message), "GRTL<PRODUCT=V,DATATYPE=R,DATA CAT=P,IO=O>");
});

test("every seed fixture parses to its golden JSON", () => {
  const names = readdirSync(SEED).filter((name) => name.endsWith(".txt"));
  assert.ok(names.length >= 12);
  for (const name of names) {
    const text = readFileSync(new URL(name, SEED), "utf8");
    const golden = JSON.parse(readFileSync(new URL(name.replace(/\.txt$/, ".golden.json"), SEED), "utf8"));
    if (golden.error) {
      assert.throws(() => parse(text), (err) => assert.deepEqual(err.toJSON(), golden.error) ?? true, name);
    } else {
      const message = parse(text);
      assert.deepEqual(toJson(message), golden.tree, name);
      assert.equal(serialize(message), golden.canonical, name);
      assert.ok(equals(fromJson(golden.tree), message), name);
    }
  }
});

test("the value shapes of PROTOCOL.md section 5", () => {
  const m = parse(
    "ARD<SCHEDULE=A<START=1,END=2>,COLUMNS=<54~55~67>,BILLING=INBOUND<<9,9><NA,NA>>INBOUND<<8,8>>," +
      "PGT=,X=<,>,Y=<a,b><c,d>,Z=<Lang=1,Curr=2345> DEFAULT_GRAPH_MODE=0,COLUMNS<44,36>>",
  );
  assert.ok(m.get("SCHEDULE") instanceof Tagged);
  assert.ok(m.get("COLUMNS") instanceof Group);
  assert.ok(m.get("COLUMNS").members[0].value instanceof TList);
  assert.ok(m.get("BILLING") instanceof Seq);
  assert.equal(m.get("PGT"), "");
  assert.deepEqual(m.get("X").members.map((x) => [x.key, x.value]), [[null, ""], [null, ""]]);
  assert.ok(m.get("Y") instanceof Seq);
  assert.equal(m.get("Z").get("Curr"), "2345"); // a member glued after the group follows
  assert.equal(m.get("DEFAULT_GRAPH_MODE"), "0");
  assert.equal(m.members.at(-1).key, null);
  assert.equal(m.members.at(-1).value.tag, "COLUMNS");
  assert.equal(serialize(parse(serialize(m))), serialize(m));
});

test("bodies with no acronym, the empty group and SOH separators", () => {
  assert.deepEqual(toJson(parse("<>")), { acronym: null, members: [] });
  assert.deepEqual(toJson(parse("< >")), { acronym: null, members: [] });
  assert.equal(serialize(parse("A<B=1\x01C=2>")), "A<B=1,C=2>");
  assert.equal(serialize(parse("<METADATA=<CRITERIA=<X=1>>>")), "<METADATA=<CRITERIA=<X=1>>>");
});

test("escaping: exactly what would not read back as itself", () => {
  assert.equal(escape("a,b<c>d=e~f\\g\x01h"), "a\\,b\\<c\\>d\\=e\\~f\\\\g\\\x01h");
  assert.equal(escape(" City Summary "), "\\ City Summary\\ ");
  assert.equal(escape("   "), "\\ \\ \\ ");
  assert.equal(escape("é✓"), "é✓");
  assert.equal(unescape("\\a\\,\\\\"), "a,\\");
  const tree = new Message("A", [new Member(" k=", new TList([" x ", new Tagged("t", new Group([]))]))]);
  assert.ok(equals(parse(serialize(tree)), tree));
});

test("bad input: the Appendix E code at the offset, in code points", () => {
  const cases = [
    ["", 6611, 0],
    [" \t\r\n", 6611, 0],
    ["A<B=1", 6612, 5],
    ["A<B=1>>", 6612, 5],
    [">", 6612, 0],
    ["A<B=\\>", 6612, 6],
    ["A<B=1> C", 6611, 7],
    ["A<K=v w=z>", 6611, 7],
    ["ABCDE<>", 6611, 4],
    ["ABC", 6611, 3],
    ["A<K=v\x02>", 6610, 5],
    ["A<K=\x00>", 6610, 4],
    ["A<K=v> \\", 6610, 7],
    ["<K=\u{1F600}\x02>", 6610, 4],
    ["\u{1F600}<>", 6611, 0],
    ["\u{1F600}\u{1F600}<", 6612, 3],
  ];
  for (const [text, code, offset] of cases) {
    assert.deepEqual(errorOf(text), [code, offset], JSON.stringify(text));
  }
});

test("limits: nesting 64 by default up to 100, length 4 MiB", () => {
  const nest = (n) => "<".repeat(n) + ">".repeat(n);
  assert.equal(serialize(parse(nest(64))), nest(64));
  assert.deepEqual(errorOf(nest(65)), [ErrorCode.INCORRECT_INPUT, 64]);
  assert.equal(serialize(parse(nest(100), { maxDepth: 100 })), nest(100));
  assert.throws(() => parse(nest(1), { maxDepth: 101 }), RangeError);
  assert.throws(() => parse(nest(1), { maxDepth: 0 }), RangeError);
  assert.deepEqual(errorOf("A<B=12345>", { maxLength: 9 }), [6611, 9]);
  assert.deepEqual(errorOf(`A<B=${"x".repeat(4 * 1024 * 1024)}>`), [6611, 4 * 1024 * 1024]);
  assert.deepEqual(errorOf(42), [6611, 0]);
});

test("trees are frozen and compare by value", () => {
  const m = parse("A<B=<c>,D=e~f>");
  assert.throws(() => {
    m.acronym = "X";
  }, TypeError);
  assert.throws(() => m.members.push(null), TypeError);
  assert.ok(equals(m, parse("A< B = <c> , D = e ~ f >")));
  assert.ok(!equals(m, parse("A<B=<c>,D=e~g>")));
  assert.equal(dumps(m), JSON.stringify(toJson(m)));
  assert.equal(
    dumps(parse("A<T<x>>")),
    '{"acronym":"A","members":[{"key":null,"value":{"group":[{"key":null,"value":"x"}],"tag":"T"}}]}',
  );
});

test("fromJson refuses what is not the documented shape", () => {
  for (const bad of [null, [], { acronym: 1, members: [] }, { acronym: null, members: [{ key: null }] }]) {
    assert.throws(() => fromJson(bad), (err) => err instanceof MessageError && err.code === 6611);
  }
});
