// Unit tests of js/protocol/header.js (node --test web/client/test/).

import test from "node:test";
import assert from "node:assert/strict";

import { LocalProtocolError, RemoteProtocolError } from "../js/protocol/errors.js";
import {
  DEFAULT_MAX_FRAME_SIZE,
  Header,
  Mechanism,
  checkPrefix,
  headerFromDict,
  headerFromText,
  headerToDict,
  headerToText,
  makeHeader,
  packHeader,
  parseHeader,
} from "../js/protocol/header.js";

function bytes(hex) {
  return Uint8Array.from(hex.match(/../g), (b) => parseInt(b, 16));
}

/** the example of PROTOCOL.md section 2 */
const EXAMPLE = bytes("01000004" + "00000057" + "0000000100000001" + "00000000" + "524d2020" + "39663263");
const EXAMPLE_TEXT = "HDR<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=87,SERIAL=4294967297,STATUS=0,TARGET=RM,KEY=9f2c>";

/** a fixed part with the given fields (klen and key appended by the caller) */
function fixed({ version = 1, echo = 0, mech = 0, klen = 0, length = 24, target = "RM  " } = {}) {
  const out = new Uint8Array(24);
  const view = new DataView(out.buffer);
  out.set([version, echo, mech, klen]);
  view.setUint32(4, length);
  for (let i = 0; i < 4; i++) out[20 + i] = target.charCodeAt(i);
  return out;
}

function codeOf(fn) {
  try {
    fn();
  } catch (err) {
    return [err.constructor.name, err.code];
  }
  assert.fail("no error");
}

test("the example of section 2 decodes, encodes and renders", () => {
  const header = parseHeader(EXAMPLE);
  assert.deepEqual(header.fields(), {
    version: 1,
    echo: 0,
    mech: Mechanism.SYNC,
    length: 87,
    serial: 4294967297n,
    status: 0,
    target: "RM",
    key: "9f2c",
  });
  assert.equal(header.size, 28);
  assert.equal(header.payloadLength, 59);
  assert.deepEqual(packHeader(header), EXAMPLE);
  assert.equal(headerToText(header), EXAMPLE_TEXT);
  assert.deepEqual(packHeader(headerFromText(EXAMPLE_TEXT)), EXAMPLE);
  assert.deepEqual(packHeader(headerFromDict(headerToDict(header))), EXAMPLE);
  assert.deepEqual(checkPrefix(EXAMPLE), [28, 87]);
});

test("serials use all 64 bits", () => {
  const header = makeHeader(Mechanism.POLL, "INBX", { serial: 0xffffffffffffffffn, key: "k" });
  const decoded = parseHeader(packHeader(header));
  assert.equal(decoded.serial, 18446744073709551615n);
  assert.equal(headerFromText(headerToText(header)).serial, 18446744073709551615n);
});

test("bad bytes are refused with the code of section 2", () => {
  const cases = [
    [new Uint8Array(0), 7009],
    [EXAMPLE.subarray(0, 23), 7009],
    [EXAMPLE.subarray(0, 27), 7009],
    [fixed({ version: 2 }), 7001],
    [fixed({ version: 2, mech: 9 }), 7001],
    [fixed({ mech: 4 }), 7008],
    [fixed({ length: 23 }), 7009],
    [fixed({ length: DEFAULT_MAX_FRAME_SIZE + 1 }), 7005],
    [fixed({ length: 0xffffffff }), 7005],
    [fixed({ target: " RM " }), 7009],
    [fixed({ target: "R M " }), 7009],
    [fixed({ target: "RM\n " }), 7009],
    [Uint8Array.from([...fixed({ klen: 2, length: 26 }), 0x61, 0x20]), 7009],
  ];
  for (const [data, code] of cases) {
    assert.deepEqual(codeOf(() => parseHeader(data)), ["RemoteProtocolError", code]);
  }
  assert.deepEqual(codeOf(() => checkPrefix(fixed({ length: 0xffffffff }))), ["RemoteProtocolError", 7005]);
  assert.equal(parseHeader(fixed({ length: 0xffffffff }), 0xffffffff).length, 0xffffffff);
  assert.equal(parseHeader(fixed({ target: "    " })).target, "");
});

test("bad fields are refused when packing, as our own mistake", () => {
  const base = parseHeader(EXAMPLE);
  const cases = [
    [{ version: 2 }, 7001],
    [{ mech: 4 }, 7008],
    [{ mech: "SYNC" }, 7008],
    [{ length: 27 }, 7009],
    [{ length: 2 ** 32 }, 7009],
    [{ echo: 256 }, 7009],
    [{ serial: 2n ** 64n }, 7009],
    [{ serial: -1n }, 7009],
    [{ target: "TOOLONG" }, 7009],
    [{ target: "é" }, 7009],
    [{ key: "x".repeat(256) }, 7009],
    [{ key: "a b" }, 7009],
    [{ key: null }, 7009],
  ];
  for (const [change, code] of cases) {
    assert.deepEqual(codeOf(() => packHeader(base.replace(change))), ["LocalProtocolError", code], Object.keys(change)[0]);
  }
  assert.ok(new LocalProtocolError(7009, "x") instanceof Error);
});

test("the text form: any order, mechanism numbers, the same codes", () => {
  const reordered = "HDR<KEY=9f2c,TARGET=RM,STATUS=0,SERIAL=4294967297,LENGTH=87,MECH=0,ECHO=0,VERSION=1>";
  assert.deepEqual(packHeader(headerFromText(reordered)), EXAMPLE);
  const text = (mech, length = 24) =>
    `HDR<VERSION=1,ECHO=0,MECH=${mech},LENGTH=${length},SERIAL=0,STATUS=0,TARGET=RM,KEY=>`;
  assert.equal(headerFromText(text("BULK")).mech, Mechanism.BULK);
  assert.equal(headerFromText(text("003")).mech, 3);
  for (const [bad, code] of [
    ["HDR<VERSION=1", 7009],
    [text("FAST"), 7008],
    [text("7"), 7008],
    [text("SYNC", "-4"), 7009],
    [text("SYNC", "23"), 7009],
    [text("SYNC", "99999999"), 7005],
    [text("SYNC").replace("VERSION=1", "VERSION=2"), 7001],
    [text("SYNC").replace("KEY=", "X=1,KEY="), 7009],
  ]) {
    assert.deepEqual(codeOf(() => headerFromText(bad)), ["RemoteProtocolError", code], bad);
  }
  assert.ok(codeOf(() => headerFromText("HDR<")) && new RemoteProtocolError(1, "") instanceof Error);
});

test("headers are frozen values", () => {
  const header = new Header({ mech: 0, length: 24, target: "RM" });
  assert.throws(() => {
    header.length = 1;
  }, TypeError);
  assert.equal(header.replace({ target: "OE" }).target, "OE");
  assert.equal(header.serial, 0n);
});
