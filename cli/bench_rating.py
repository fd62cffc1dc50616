"""``starwrs bench rating``: PBX calls rated and loaded per second, against loading the
same calls already priced.

Rows (the demo corps, June-July 1998; 1 M calls, 100 k with ``--quick``, or
``STARWRS_BENCH_RATING_CALLS``; best of three rounds, one with ``--quick``):

* ``rating: rate_calls + load_calls`` -- the end-to-end harvest step in-process: each
  batch of calls (Call columns, as the collector's readers yield them) priced by
  :func:`~starwrs.proxies.harvest.rating.rate_calls` from a real tariff store and
  loaded by :func:`~starwrs.storage.datamart.store.load_calls` into a scratch
  partition, up to the file closed;
* ``rating: rate_calls alone`` -- the same batches priced, nothing stored.

The baseline of both, measured in the same rounds: ``load_calls`` of the generator's
own priced rows for the same calls (the unrated path: the demo generator prices its
calls itself) into another scratch partition.  The calls are the generator's, turned
back into what a PBX writes (:func:`pbx_calls`: extensions' outside digit ``9``,
``011`` abroad, toll-free DNIS on inbound calls), so rating sees every usage and
country the datamart holds.  The tariff (:func:`bench_tariff`): per enterprise one
profile; one plan with a rate per usage and period in World Zone 1, one per country
calling code (215), a few city prefixes, inbound rates -- about 270 lines.  Target:
200,000 records/s end to end.  Decrypting and verifying the batch (the harvest's
other steps) are not in these rows.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from starwrs.cli.benchkit import Result, compare
from starwrs.fixtures.datamart import CorpSpec, demo_corp_specs, generate_calls
from starwrs.proxies.harvest.rating import rate_calls
from starwrs.proxies.harvest.tariffs import PERIODS, TariffStore, parse_tariffs
from starwrs.storage.datamart import geography
from starwrs.storage.datamart import reference as ref
from starwrs.storage.datamart.store import load_calls, open_datamart

__all__ = ["bench_tariff", "context", "pbx_calls", "run"]

START = dt.date(1998, 6, 1)
DAYS = 61
_ran: dict[str, str] = {}


def context() -> str:
    """What the benchmark ran on (printed above the table)."""
    return (
        f"bench rating: {_ran.get('calls', '?')} calls, {_ran.get('corps', '?')} corps, "
        f"{_ran.get('batches', '?')} batches, best of {_ran.get('rounds', '?')}, "
        f"duckdb {duckdb.__version__}, {os.cpu_count()} cores"
    )


def _calls(quick: bool) -> int:
    text = os.environ.get("STARWRS_BENCH_RATING_CALLS")
    if text:
        return max(1000, int(text))
    return 100_000 if quick else 1_000_000


def bench_tariff(specs: list[CorpSpec]) -> str:
    """A tariff file rating every call of *specs*' corps (see the module docstring)."""
    lines = ["plan,BENCH,Bench plan,USA,30/6,0.00,3.0,0.10"]
    for use, _desc in ref.USAGE:
        for n, period in enumerate(PERIODS):
            rate = 0.05 + 0.01 * int(use) - 0.005 * n
            lines.append(f"rate,BENCH,out,{use},{period},+1,{rate:.4f},0")
    for cc in geography.country_codes().column("cc").to_pylist():
        if cc != "1":
            lines.append(f"rate,BENCH,out,*,*,+{cc},{0.2 + int(cc) % 97 / 100:.4f},0.05")
    for prefix in ("+4420", "+331", "+4930", "+5255", "+8133"):
        lines.append(f"rate,BENCH,out,*,*,{prefix},0.1800,0.05,60/60,0.25")
    lines += ["rate,BENCH,in,*,*,+,0.0450,0", "rate,BENCH,in,*,4,+1,0.0300,0"]
    for spec in specs:
        product = "V" if spec.product == "T" else spec.product  # outbound calls of a toll-free corp
        lines.append(f"profile,{spec.enterprise_id},{spec.corp_id},BENCH,1998-01-01,{product},8")
        billing, _name, locations = spec.billing[0]
        lines.append(
            f"site,{spec.enterprise_id},{spec.corp_id},*,{billing},{locations[0][0]},"
            "+12125551000,4,America/New_York,9"
        )
    return "\n".join(lines) + "\n"


def pbx_calls(priced: pa.Table) -> pa.Table:
    """The generator's priced calls as a PBX would have written them (Call columns)."""
    n = priced.num_rows
    inbound = pc.equal(priced.column("in_out").cast(pa.string()), "1")
    orig_abroad = pc.not_equal(priced.column("orig_country_cd").cast(pa.string()), "001")
    term_abroad = pc.not_equal(priced.column("term_country_cd").cast(pa.string()), "001")
    orig = priced.column("orig_number").cast(pa.string())
    term = priced.column("term_number").cast(pa.string())
    tollfree = priced.column("tollfree").cast(pa.string())
    calling = pc.if_else(orig_abroad, pc.binary_join_element_wise("+", orig, ""), orig)
    out_called = pc.binary_join_element_wise(pc.if_else(term_abroad, "9011", "91"), term, "")
    called = pc.if_else(inbound, pc.if_else(pc.equal(tollfree, ""), term, tollfree), out_called)
    tenths = pc.multiply(priced.column("duration").cast(pa.decimal128(9, 1)), 10)
    billable = pc.multiply(pc.cast(tenths, pa.int64()), 6)
    blank = pa.array([""] * n, pa.string())
    return pa.table(
        {
            "start": priced.column("gmt").cast(pa.timestamp("s", "UTC")),
            "duration": pc.add(billable, 12),
            "billable": billable,
            "answered": pa.array(np.ones(n, dtype=bool)),
            "calling": calling,
            "called": called,
            "dialled": called,
            "direction": pc.if_else(inbound, "inbound", "outbound"),
            "account": priced.column("idacc").cast(pa.string()),
            "trunk": pa.array(["SIP/carrier"] * n, pa.string()),
            "call_id": blank,
            "status": blank,
            "source": pa.array(["asterisk"] * n, pa.string()),
            "file": pa.array(["Master.csv"] * n, pa.string()),
            "line": pa.array(np.arange(1, n + 1)),
        }
    )


def _once(
    root: Path, batches: list[tuple[CorpSpec, pa.Table, pa.Table]]
) -> tuple[float, float, float, int]:
    """(baseline load, rate + load, rate alone) seconds and the calls priced."""
    began = time.perf_counter()
    con = open_datamart(root / "unrated.duckdb")
    for _spec, priced, _calls in batches:
        load_calls(con, priced)
    con.close()
    base = time.perf_counter() - began
    began = time.perf_counter()
    for spec, _priced, calls in batches:
        rate_calls(calls, entp_id=spec.enterprise_id, corp_id=spec.corp_id, state_dir=root)
    alone = time.perf_counter() - began
    began = time.perf_counter()
    con = open_datamart(root / "rated.duckdb")
    priced_rows = 0
    for spec, _priced, calls in batches:
        rated = rate_calls(calls, entp_id=spec.enterprise_id, corp_id=spec.corp_id, state_dir=root)
        priced_rows += rated.priced.num_rows
        load_calls(con, rated.priced)
    con.close()
    both = time.perf_counter() - began
    for path in root.glob("*.duckdb*"):
        path.unlink()
    return base, both, alone, priced_rows


def run(quick: bool = False) -> list[Result]:
    """Measure and return the rows of ``starwrs bench rating``."""
    calls = _calls(quick)
    rounds = 1 if quick else 3
    specs = sorted(demo_corp_specs().values(), key=lambda spec: spec.corp_id)
    by_id = {spec.corp_id: spec for spec in specs}
    batches = []
    for priced in generate_calls(specs, calls, start=START, days=DAYS, seed=1):
        spec = by_id[str(priced.column("corp_id")[0])]
        batches.append((spec, priced, pbx_calls(priced)))
    _ran.update(calls=str(calls), corps=str(len(specs)), rounds=str(rounds))
    _ran["batches"] = str(len(batches))
    with tempfile.TemporaryDirectory(prefix="starwrs-bench-rating-") as tmp:
        root = Path(tmp)
        text = bench_tariff(specs)
        TariffStore.of(root).load(parse_tariffs(text), source="bench", data=text.encode())
        first = batches[0]
        rate_calls(
            first[2], entp_id=first[0].enterprise_id, corp_id=first[0].corp_id, state_dir=root
        )  # geography tables, tariff snapshot: once per process
        rounds_seen = [_once(root, batches) for _ in range(rounds)]
    base, both, alone = (min(r[i] for r in rounds_seen) for i in range(3))
    priced_rows = rounds_seen[0][3]
    _ran["priced"] = str(priced_rows)
    label = "load_calls of the priced rows"
    return [
        compare("rating: rate_calls + load_calls", calls / both, "records/s", label, calls / base),
        compare("rating: rate_calls alone", calls / alone, "records/s", label, calls / base),
    ]
