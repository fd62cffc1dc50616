// Unit tests of js/protocol/frames.js (node --test web/client/test/).

import test from "node:test";
import assert from "node:assert/strict";

import { RemoteProtocolError } from "../js/protocol/errors.js";
import {
  ConnectionClosed,
  Frame,
  FrameReader,
  FrameWriter,
  NEED_DATA,
  buildFrame,
  decodeFrame,
  encodeFrame,
} from "../js/protocol/frames.js";
import { Mechanism, makeHeader } from "../js/protocol/header.js";

function drain(reader) {
  const events = [];
  for (;;) {
    const event = reader.nextEvent();
    if (event === NEED_DATA) return events;
    events.push(event);
    if (event instanceof ConnectionClosed) return events;
  }
}

const STREAM = [
  buildFrame(Mechanism.SYNC, "RM", "GRTL<PRODUCT=V,DATATYPE=R,DATA CAT=P,IO=O>"),
  buildFrame(Mechanism.BULK, "INBX", new Uint8Array([0, 1, 2, 255]), { key: "9f2c", serial: 7n }),
  buildFrame(Mechanism.SYNC, "", ""),
];

function joined(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

test("build and decode one frame: the body of POST /dispatch", () => {
  const data = buildFrame(Mechanism.SYNC, "RM", "NAME=City Summary é");
  const frame = decodeFrame(data);
  assert.equal(frame.header.target, "RM");
  assert.equal(frame.header.key, "");
  assert.equal(frame.header.length, data.length);
  assert.equal(frame.text(), "NAME=City Summary é");
  assert.throws(() => decodeFrame(joined([data, new Uint8Array(1)])), (e) => e.code === 7009);
  assert.throws(() => decodeFrame(data.subarray(0, data.length - 1)), (e) => e.code === 7009);
});

test("any chunking gives the same frames: whole, byte by byte, uneven", () => {
  const stream = joined(STREAM);
  const expected = STREAM.map((f) => decodeFrame(f));
  for (const size of [stream.length, 1, 7, 24, 25]) {
    const reader = new FrameReader();
    const events = [];
    for (let i = 0; i < stream.length; i += size) {
      reader.receiveData(stream.subarray(i, i + size));
      events.push(...drain(reader));
    }
    reader.receiveData(new Uint8Array(0));
    events.push(...drain(reader));
    assert.equal(events.length, 4, `chunks of ${size}`);
    assert.ok(events[3] instanceof ConnectionClosed);
    events.slice(0, 3).forEach((frame, i) => {
      assert.ok(frame instanceof Frame);
      assert.deepEqual(frame.header.fields(), expected[i].header.fields());
      assert.deepEqual(frame.payload, expected[i].payload);
    });
    assert.ok(reader.nextEvent() instanceof ConnectionClosed, "closed forever after");
  }
});

test("a 4 GiB frame is refused from its first 24 bytes; errors are sticky", () => {
  const huge = makeHeader(Mechanism.BULK, "INBX", { payloadLength: 0xffffffff - 24 });
  const head = buildFrame(Mechanism.SYNC, "RM").slice();
  new DataView(head.buffer).setUint32(4, huge.length);
  const reader = new FrameReader();
  reader.receiveData(head);
  for (let i = 0; i < 2; i++) {
    assert.throws(() => reader.nextEvent(), (e) => e instanceof RemoteProtocolError && e.code === 7005);
  }
  assert.equal(reader.buffered, 24);
});

test("the stream ends inside a frame: 7009; data after the end: a caller bug", () => {
  const reader = new FrameReader();
  reader.receiveData(STREAM[0].subarray(0, 30));
  assert.equal(reader.nextEvent(), NEED_DATA);
  reader.receiveData(new Uint8Array(0));
  assert.throws(() => reader.nextEvent(), (e) => e.code === 7009);
  assert.throws(() => reader.receiveData(STREAM[1]), /after the end/);
});

test("the writer checks lengths and sizes, and refuses after close", () => {
  const header = makeHeader(Mechanism.SYNC, "RM", { payloadLength: 3 });
  const writer = new FrameWriter(100);
  assert.equal(writer.send(new Frame(header, new Uint8Array(3))).length, 27);
  assert.throws(() => writer.send(new Frame(header, new Uint8Array(2))), (e) => e.code === 7009);
  const big = makeHeader(Mechanism.SYNC, "RM", { payloadLength: 100 });
  assert.throws(() => writer.send(new Frame(big, new Uint8Array(100))), (e) => e.code === 7005);
  assert.equal(writer.send(new ConnectionClosed()).length, 0);
  assert.throws(() => writer.send(new Frame(header, new Uint8Array(3))), (e) => e.code === 7009);
  assert.deepEqual(encodeFrame(header, ["a", new Uint8Array([98, 99])]), encodeFrame(header, "abc"));
});
