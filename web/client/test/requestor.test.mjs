// The Report Requestor's DOM-free modules: ARD building, schedules, hierarchies, and
// which field an error code concerns (js/requestor/ard.js, hierarchy.js, js/wire.js).
//
// The seed's own ARD (fixtures/seed/07_ard.txt) is rebuilt from the values the
// screens hold and must come out as its canonical text; the report lists and node
// trees of SRTL / SRTD read the way the Report Manager writes them.

import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { Group, Member, Message, parse, serialize } from "../js/protocol/metadata.js";
import { buildArd, fieldOf, local, readSchedule, scheduleValue, stamp } from "../js/requestor/ard.js";
import {
  billingKeys,
  billingTree,
  billingValue,
  geoKeys,
  geoTree,
  geoValue,
} from "../js/requestor/hierarchy.js";
import { categories, items, list, nodes, rows, text } from "../js/wire.js";
import { contrast, readable, textOn } from "../js/brand.js";

const seedPath = fileURLToPath(new URL("../../../fixtures/seed/07_ard.txt", import.meta.url));
const SEED = parse(readFileSync(seedPath, "utf8"));

function seedValues() {
  const values = new Map();
  for (const m of SEED.members) values.set(m.key, m.value);
  return values;
}

test("the seed's ARD comes out of the screens' values as its canonical text", () => {
  const values = seedValues();
  const ard = buildArd({
    user: "jeanvnet2",
    entp: "00022924",
    templateId: 90,
    product: "S",
    category: "Analyze Traffic",
    lang: "1234",
    curr: "2345",
    active: true,
    values,
  });
  assert.equal(serialize(ard), serialize(SEED));
});

test("empty values are left out, the ones the catalogue requires are kept", () => {
  const values = new Map([
    ["NAME", ""],
    ["DESCRIPTION", ""],
    ["SCHEDTYPE", "A"],
    ["TIMEZONE", "45"],
    ["EMAIL", "0"],
    ["PAGE", "0"],
    ["OACCESS", list([])],
  ]);
  const ard = buildArd({ user: "u", entp: "00022924", templateId: 1, product: "V", category: "Financial", active: false, values });
  assert.equal(
    serialize(ard),
    "ARD<USERID=u,ENTPID=00022924,STDRPTID=1,NAME=,PRODUCT=V,CATEGORY=Financial,SCHEDTYPE=A,TIMEZONE=45,ACTIVE=0,EMAIL=0,PAGE=0>",
  );
});

test("schedules: datetime-local values and YYYYMMDDhhmm stamps", () => {
  assert.equal(stamp("1998-06-02T00:00"), "199806020000");
  assert.equal(local("199807151200"), "1998-07-15T12:00");
  const adhoc = scheduleValue("A", [
    { start: "1998-06-02T00:00", end: "1998-07-15T12:00" },
    { start: "1998-08-01T00:00", end: "1998-08-31T23:59" },
  ]);
  const message = serialize(new Message("X", [new Member("S", adhoc)]));
  assert.equal(message, "X<S=A<START=199806020000,END=199807151200,START=199808010000,END=199808312359>>");
  assert.deepEqual(readSchedule(adhoc).ranges[1], { start: "1998-08-01T00:00", end: "1998-08-31T23:59" });
  assert.equal(scheduleValue("W"), "W");
  assert.deepEqual(readSchedule("M"), { kind: "M", ranges: [] });
});

test("billing and geographic entries read and write the seed's form", () => {
  const billing = SEED.get("BILLING");
  assert.deepEqual(billingKeys(billing), ["90000003|NA|NA", "90000004|NA|NA"]);
  assert.equal(
    serialize(new Message("X", [new Member("B", billingValue(billingKeys(billing)))])),
    serialize(new Message("X", [new Member("B", billing)])),
  );
  const geoRows = rows(parse("X<G=<<country,001,NA,NA,USA/WORLDZONE1><state,001,CO,NA,COLORADO><city,001,CO,DENVER,DENVER>>>").get("G"));
  const { tree, names } = geoTree(geoRows);
  assert.equal(tree[0].children[0].children[0].label, "DENVER");
  const geo = SEED.get("GEO");
  assert.deepEqual(geoKeys(geo), ["001|NA|NA", "001|CO|NA"]);
  assert.equal(
    serialize(new Message("X", [new Member("G", geoValue(geoKeys(geo), names))])),
    serialize(new Message("X", [new Member("G", geo)])),
  );
  const hier = rows(
    parse("X<H=<<2,90000003,NA,NA,HQ><3,90000003,Y3000001,NA,Invoices><4,90000003,Y3000001,N3100001,Site>>>").get("H"),
  );
  const corps = billingTree(hier);
  assert.equal(corps[0].label, "90000003 HQ");
  assert.equal(corps[0].children[0].children[0].key, "90000003|Y3000001|N3100001");
});

test("report lists and node trees read as the Report Manager writes them", () => {
  const srtl = parse(
    "SRTL<ERROR=0,REPORTS=<Financial=<Longest Calls,1,Outbound>,<Most Expensive Calls,3,Outbound>>,<Marketing=<State Summary,16,Outbound>>>",
  );
  assert.deepEqual(categories(srtl), [
    { description: "Financial", rows: [["Longest Calls", "1", "Outbound"], ["Most Expensive Calls", "3", "Outbound"]] },
    { description: "Marketing", rows: [["State Summary", "16", "Outbound"]] },
  ]);
  const srtd = parse(
    "SRTD<ERROR=0,ID=90,NODE1=<1,General,SCR_GENERAL>,NODE2=<2,Report Name,SCR_NAME,<TXT_NAME,City Summary,NAME>>,NODE10=<1,Layout,SCR_LAYOUT,<LST_COLUMNS,<54~55>,COLUMNS>,<TXT_THRESHOLD,<RECCOUNT=500>,THRESHOLD>,<TXT_SCHEDULE,,SCHEDULE>>>",
  );
  const tree = nodes(srtd);
  assert.deepEqual(tree.map((n) => [n.level, n.label, n.screen]), [
    [1, "General", "SCR_GENERAL"],
    [2, "Report Name", "SCR_NAME"],
    [1, "Layout", "SCR_LAYOUT"],
  ]);
  assert.equal(text(tree[1].controls[0].value), "City Summary");
  assert.deepEqual(items(tree[2].controls[0].value), ["54", "55"]);
  assert.ok(tree[2].controls[1].value instanceof Group);
  assert.equal(tree[2].controls[2].value, "");
  assert.deepEqual(rows(parse("GPLA<ERROR=0,PL_ACCESS=<<1,SHARED>>>").get("PL_ACCESS")), [["1", "SHARED"]]);
});

test("an error code is shown next to the parameter it concerns", () => {
  const values = seedValues();
  assert.equal(fieldOf(6113, values, "S"), "NAME");
  assert.equal(fieldOf(6705, values, "S"), "RANGETYPE");
  assert.equal(fieldOf(6602, values, "S"), "SCHEDULE");
  const noBilling = new Map(values);
  noBilling.set("BILLING", "");
  assert.equal(fieldOf(6114, noBilling, "S"), "BILLING");
  const badSort = new Map(values);
  badSort.set("SORTBY", list(["44D"]));
  assert.equal(fieldOf(6103, badSort, "S"), "SORTBY");
  const subtotals = new Map(values);
  subtotals.set("TOTALMODE", "1");
  assert.equal(fieldOf(6114, subtotals, "S"), "SUBTOTCOL");
  assert.equal(fieldOf(6103, values, "S"), null); // nothing to point at: the report as a whole
  assert.equal(fieldOf(6101, values, "S"), null);
});

test("brand colours stay readable whatever a reseller picks", () => {
  assert.equal(textOn("#0b5f5a"), "#ffffff");
  assert.equal(textOn("#fde68a"), "#111111");
  for (const colour of ["#ffff00", "#b3541e", "#9a3412", "#e0e0e0"]) {
    assert.ok(contrast(readable(colour), "#ffffff") >= 4.5, colour);
  }
  assert.equal(readable("#9a3412"), "#9a3412"); // already readable: unchanged
});

test("the empty and one-item lists are canonical", () => {
  const x = (v) => serialize(new Message("X", [new Member("L", v)]));
  assert.equal(x(list([])), "X<L=<>>");
  assert.equal(x(list(["4"])), "X<L=<4>>");
  assert.equal(x(list(["4", "1"])), "X<L=<4~1>>");
});
