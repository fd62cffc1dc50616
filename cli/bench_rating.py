"""``starwrs bench rating``: PBX records verified, decrypted, parsed, rated and loaded per
second, end to end, against loading the same calls unrated.

What runs
---------
The demo corps' calls (June-July 1998; 1 M, 100 k with ``--quick``, or
``STARWRS_BENCH_RATING_CALLS``) are written as each corp's PBX would write them -- an
Asterisk ``Master.csv`` (:func:`master_csv`: 17 fields with ``uniqueid``, every text
quoted, a caller name with quotes inside; extensions' outside digit ``9``, ``011``
abroad) -- cut into batches as the collector cuts them (50,000 records, or
``STARWRS_BENCH_RATING_BATCH``), and each batch is signed by the enterprise's collector
and encrypted to the harvest's certificate, an e-mail as the collector sends it.  Not
timed.  Then, per message, what the harvest does with it (:func:`harvest`):

* **verify, decrypt** -- :func:`~starwrs.collector.smime.decrypt` with the harvest's
  RSA-3072 key, :func:`~starwrs.collector.smime.verify_inner` against the enrolled
  certificate, :func:`~starwrs.collector.batch.parse`;
* **parse** -- :func:`~starwrs.proxies.harvest.intake.read_batch` (the readers,
  rejections with file and line, duplicate call ids);
* **rate** -- :func:`~starwrs.proxies.harvest.rating.rate_calls` from a real tariff
  store (:func:`bench_tariff`: about 270 lines);
* **load** -- the priced rows staged as the harvest stages them (an Arrow IPC file,
  fsync) and loaded as the DSS loads ``LOAD`` (:func:`~.export.load_ipc` with the batch
  id, one transaction) into a fresh partition file.

The baseline, in the same rounds: the generator's own priced rows of the same calls
(the unrated path: the demo generator prices its calls itself), cut into the same
batches, staged and loaded the same way into another fresh file.  Rows:

* ``rating end to end (verify..load)`` -- one message after the other, each step in turn;
* ``rating end to end, harvest || DSS`` -- the same with the load in a second process
  (spawned, its partition open, before the clock starts) while the harvest takes the
  next batch, as ``serve`` runs them: the harvest and the DSS are two processes, and
  with two collectors sending (the bench's two enterprises) they overlap so, at most two
  batches waiting; the DSS loads the batches waiting for it in one transaction, as its
  ``LOAD`` does (:func:`~.export.load_ipc_group`, group commit).  (Until 2026-12-03 the
  load ran in a second *thread* of the bench's process, so the two sides also shared
  one GIL, which ``serve``'s two processes do not.)  Its CPU figure is both processes';
* ``rating: harvest steps alone`` -- the records per second of the harvest's own steps (all but the
  load), from the same round.

Best of three rounds (one with ``--quick``); a process remembers places, clocks and
tariff lines from batch to batch (as the harvest does), so later rounds see them warm.
The time of each step per record is in the context line, and the CPU time per record
of each run (``time.process_time``: the process's every thread, so DuckDB's too), the
figure that depends least on what else runs on the machine.  Each run's time includes
closing its partition (the checkpoint of what the WAL still holds).  The SMTP session, the audit
trail's SQLite commits and the bulk put to the DSS process are not in these rows.
Target: 200,000 records/s end to end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing
import os
import queue
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starwrs.cli.benchkit import Result, compare
from starwrs.collector import batch as batches
from starwrs.collector import identity, smime
from starwrs.fixtures.datamart import CorpSpec, demo_corp_specs, generate_calls
from starwrs.proxies.harvest.intake import fsync_file, read_batch
from starwrs.proxies.harvest.rating import rate_calls
from starwrs.proxies.harvest.tariffs import PERIODS, TariffStore, parse_tariffs
from starwrs.storage.datamart import geography
from starwrs.storage.datamart import reference as ref
from starwrs.storage.datamart.export import load_ipc, load_ipc_group, write_ipc
from starwrs.storage.datamart.store import open_datamart

__all__ = ["bench_tariff", "context", "harvest", "master_csv", "pbx_calls", "run"]

START = dt.date(1998, 6, 1)
DAYS = 61
ZONE = "America/New_York"
STEPS = ("verify+decrypt", "parse", "rate", "stage", "load")
_ran: dict[str, str] = {}


def context() -> str:
    """What the benchmark ran on (printed above the table)."""
    return (
        f"bench rating: {_ran.get('calls', '?')} calls, {_ran.get('corps', '?')} corps, "
        f"{_ran.get('batches', '?')} batches of up to {_ran.get('batch', '?')} records "
        f"({_ran.get('mb', '?')} MB of e-mail), best of {_ran.get('rounds', '?')}, "
        f"duckdb {duckdb.__version__}, {os.cpu_count()} cores\n"
        f"  us per record, best round: {_ran.get('steps', '?')}\n"
        f"  CPU us per record (process, all threads; least of the rounds):"
        f" {_ran.get('cpu', '?')}"
    )


def _env(name: str, default: int, least: int) -> int:
    text = os.environ.get(name)
    return max(least, int(text)) if text else default


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
            f"+12125551000,4,{ZONE},9"
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


def master_csv(priced: pa.Table, *, first: int = 0) -> list[bytes]:
    """The generator's priced calls as Asterisk ``cdr_csv`` lines (``loguniqueid``):
    outbound from the caller's own number to ``9`` + the number dialled, inbound from
    the caller to an extension; each line with its ``\\n``."""
    calls = pbx_calls(priced)
    n = calls.num_rows
    inbound = pc.equal(calls.column("direction"), "inbound")
    seq = pa.array([f"{i:08x}" for i in range(first, first + n)])
    ext = pa.array([f"2{i % 1000:03d}" for i in range(first, first + n)])
    calling = calls.column("calling")
    dst = pc.if_else(inbound, ext, calls.column("called"))
    carrier = pc.binary_join_element_wise("PJSIP/carrier-", seq, "")
    station = pc.binary_join_element_wise("PJSIP/", ext, "-", seq, "")
    local = calls.column("start").cast(pa.timestamp("s", ZONE))
    billable = calls.column("billable")
    duration = calls.column("duration")
    answer = pc.add(local, pc.cast(pc.subtract(duration, billable), pa.duration("s")))
    end = pc.add(local, pc.cast(duration, pa.duration("s")))
    stamp = "%Y-%m-%d %H:%M:%S"
    epoch = pc.cast(calls.column("start").cast(pa.int64()), pa.string())
    numbers = pa.array([str(i % 97) for i in range(first, first + n)])
    parts = [
        '"',
        calls.column("account"),
        '","',
        calling,
        '","',
        dst,
        '","',
        pc.if_else(inbound, "from-trunk", "from-internal"),
        '","""Caller ',
        numbers,
        '"" <',
        calling,
        '>","',
        pc.if_else(inbound, carrier, station),
        '","',
        pc.if_else(inbound, station, carrier),
        '","Dial","',
        pc.if_else(
            inbound,
            pc.binary_join_element_wise("PJSIP/", ext, ",30", ""),
            pc.binary_join_element_wise("PJSIP/", dst, "@carrier,60,tT", ""),
        ),
        '","',
        pc.strftime(local, stamp),
        '","',
        pc.strftime(answer, stamp),
        '","',
        pc.strftime(end, stamp),
        '",',
        pc.cast(duration, pa.string()),
        ",",
        pc.cast(billable, pa.string()),
        ',"ANSWERED","DOCUMENTATION","',
        epoch,
        ".",
        seq,
        '"\n',
    ]
    arrays = [p if isinstance(p, pa.Array | pa.ChunkedArray) else pa.scalar(p) for p in parts]
    lines = pc.binary_join_element_wise(*arrays, "")
    return [line.encode() for line in lines.to_pylist()]


@dataclass
class Party:
    """An S/MIME identity."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclass
class Message:
    """One batch as the harvest receives it, and the same calls priced by the generator."""

    spec: CorpSpec
    mail: bytes
    records: int
    unrated: pa.Table
    signer: Party


@dataclass
class Steps:
    """Seconds per step of :func:`harvest`, and the records and priced calls seen."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STEPS, 0.0))
    records: int = 0
    priced: int = 0
    refused: int = 0


def take(
    message: Message, *, harvest_id: Party, collector: Party, state: Path, steps: Steps
) -> tuple[Path, str]:
    """What the harvest does with one message, up to the staged file: (it, the batch id)."""
    clock = time.perf_counter
    began = clock()
    assert isinstance(harvest_id.key, rsa.RSAPrivateKey)
    inner = smime.decrypt(message.mail, harvest_id.cert, harvest_id.key)
    opened = smime.verify_inner(inner, [collector.cert])
    batch = batches.parse(opened.content)
    parsed = clock()
    got = read_batch(batch)
    read = clock()
    rated = rate_calls(
        got.table,
        entp_id=message.spec.enterprise_id,
        corp_id=message.spec.corp_id,
        state_dir=state,
    )
    priced = clock()
    staged = state / f"{batch.batch_id}.arrows"
    write_ipc(staged, [rated.priced])
    fsync_file(staged)
    written = clock()
    for name, seconds in zip(
        STEPS[:4], (parsed - began, read - parsed, priced - read, written - priced), strict=True
    ):
        steps.seconds[name] += seconds
    steps.records += got.table.num_rows + len(got.quarantine)
    steps.priced += rated.priced.num_rows
    steps.refused += len(got.quarantine) + len(rated.rejected) + len(rated.skipped)
    return staged, batch.batch_id


def harvest(
    message: Message,
    *,
    harvest_id: Party,
    collector: Party,
    state: Path,
    partition: duckdb.DuckDBPyConnection,
    steps: Steps,
) -> None:
    """Take one message as the harvest and the DSS do (see the module docstring)."""
    staged, batch_id = take(
        message, harvest_id=harvest_id, collector=collector, state=state, steps=steps
    )
    began = time.perf_counter()
    load_ipc(partition, staged, batch=batch_id)
    staged.unlink()
    steps.seconds["load"] += time.perf_counter() - began


def _dss(path: str, waiting: Any, answers: Any) -> None:
    """The DSS side of :func:`_overlapped`, in a process of its own (as in ``serve``):
    load what waits in one transaction each time, until ``None``; then answer the
    first failure (or None), the rows loaded and the CPU seconds spent loading."""
    con = open_datamart(path)
    began = _cpu_of_process()
    answers.put("ready")
    failed: str | None = None
    rows = 0
    done = False
    while not done:
        items = [waiting.get()]
        with contextlib.suppress(queue.Empty):
            while True:
                items.append(waiting.get_nowait())
        done = None in items
        files = [(Path(item[0]), item[1]) for item in items if item is not None]
        try:
            outcomes = load_ipc_group(con, files) if files else []
            failed = failed or next((repr(o) for o in outcomes if isinstance(o, Exception)), None)
            rows += sum(o.rows for o in outcomes if not isinstance(o, Exception))
            for staged, _batch in files:
                staged.unlink()
        except BaseException as err:  # reported to the harvest side, which raises it
            failed = failed or repr(err)
    con.close()  # its final checkpoint is part of the load
    answers.put((failed, rows, _cpu_of_process() - began))


def _cpu_of_process() -> float:
    times = os.times()
    return times.user + times.system


def _overlapped(messages: list[Message], root: Path, harvest_id: Party) -> tuple[float, float]:
    """(Seconds, CPU seconds of the DSS process) for the messages with the DSS loading
    in a process of its own while the harvest takes the next (as their two processes
    do when two collectors send at once: at most two batches wait); the DSS loads the
    batches that wait together as its LOAD does (:func:`~.export.load_ipc_group`,
    one transaction).  The DSS process is started and has opened its partition before
    the clock starts."""
    spawn = multiprocessing.get_context("spawn")
    waiting = spawn.Queue(maxsize=2)
    answers = spawn.Queue()
    loader = spawn.Process(
        target=_dss, args=(str(root / "overlap.duckdb"), waiting, answers), name="bench-dss"
    )
    loader.start()
    try:
        if answers.get(timeout=120) != "ready":
            raise RuntimeError("the bench's DSS process did not start")
        began = time.perf_counter()
        steps = Steps()
        for message in messages:
            staged, batch_id = take(
                message, harvest_id=harvest_id, collector=message.signer, state=root, steps=steps
            )
            waiting.put((str(staged), batch_id))
        waiting.put(None)
        failed, rows, dss_cpu = answers.get()
        elapsed = time.perf_counter() - began
    finally:
        loader.join(timeout=60)
        if loader.is_alive():
            loader.kill()
    if failed:
        raise RuntimeError(f"the bench's DSS process failed: {failed}")
    if rows != steps.priced:
        raise RuntimeError(f"the bench's DSS process loaded {rows} of {steps.priced} rows")
    return elapsed, float(dss_cpu)


def _unrated(message: Message, state: Path, partition: duckdb.DuckDBPyConnection) -> None:
    staged = state / "unrated.arrows"
    write_ipc(staged, [message.unrated])
    fsync_file(staged)
    load_ipc(partition, staged, batch=batches.new_batch_id())
    staged.unlink()


def _messages(
    specs: list[CorpSpec], calls: int, size: int, parties: dict[str, Party], harvest_id: Party
) -> list[Message]:
    """The calls of *specs* as batch e-mails to *harvest_id*, each signed by its corp's
    party in *parties* (corp id -> party)."""
    by_id = {spec.corp_id: spec for spec in specs}
    out = []
    for priced in generate_calls(specs, calls, start=START, days=DAYS, seed=1):
        spec = by_id[str(priced.column("corp_id")[0])]
        signer = parties[spec.corp_id]
        for first in range(0, priced.num_rows, size):
            chunk = priced.slice(first, size)
            body = b"".join(master_csv(chunk, first=first))
            entity = batches.build(
                batches.Batch(
                    batch_id=batches.new_batch_id(),
                    enterprise=spec.enterprise_id,
                    format="asterisk",
                    records=chunk.num_rows,
                    body=body,
                    source="pbx1:/var/log/asterisk/cdr-csv/Master.csv",
                    first_line=first + 1,
                    timezone=ZONE,
                    collector="pbx1",
                ),
                compress=True,  # as the collector sends by default
            )
            enveloped = smime.seal(
                entity, cert=signer.cert, key=signer.key, recipient=harvest_id.cert
            )
            mail = smime.mail(
                enveloped, [("From", "pbx1@pbx.example"), ("To", "harvest@provider.example")]
            )
            out.append(Message(spec, mail, chunk.num_rows, chunk, signer))
    return out


@dataclass
class Round:
    """One round: seconds (wall) and CPU seconds of the process (every thread) per row."""

    base: float
    both: float
    steps: Steps
    overlapped: float
    cpu: dict[str, float]


def _round(messages: list[Message], root: Path, harvest_id: Party) -> Round:
    """The baseline, the end to end run, its steps and the overlapped run of a round."""
    for path in root.glob("*.duckdb*"):
        path.unlink()
    cpu: dict[str, float] = {}
    began, cpu0 = time.perf_counter(), time.process_time()
    con = open_datamart(root / "unrated.duckdb")
    for message in messages:
        _unrated(message, root, con)
    con.close()
    base = time.perf_counter() - began
    cpu["baseline"] = time.process_time() - cpu0
    steps = Steps()
    con = open_datamart(root / "rated.duckdb")
    began, cpu0 = time.perf_counter(), time.process_time()
    for message in messages:
        harvest(
            message,
            harvest_id=harvest_id,
            collector=message.signer,
            state=root,
            partition=con,
            steps=steps,
        )
    con.close()  # its final checkpoint is part of the load
    both = time.perf_counter() - began
    cpu["end to end"] = time.process_time() - cpu0
    cpu0 = time.process_time()
    overlapped, dss_cpu = _overlapped(messages, root, harvest_id)
    cpu["overlapped"] = time.process_time() - cpu0 + dss_cpu  # the harvest's and the DSS's
    return Round(base, both, steps, overlapped, cpu)


def run(quick: bool = False) -> list[Result]:
    """Measure and return the rows of ``starwrs bench rating``."""
    calls = _env("STARWRS_BENCH_RATING_CALLS", 100_000 if quick else 1_000_000, 1000)
    size = _env("STARWRS_BENCH_RATING_BATCH", 50_000, 100)
    rounds = 1 if quick else 3
    specs = sorted(demo_corp_specs().values(), key=lambda spec: spec.corp_id)
    hkey, hcert = identity.make_provider_identity("harvest@provider.example")
    harvest_id = Party(hkey, hcert)
    collectors = {}  # one per enterprise, signing for each of its corps
    for entp in sorted({spec.enterprise_id for spec in specs}):
        key, cert, _csr = identity.make_collector_identity(entp, "pbx1", "pbx1@pbx.example")
        collectors[entp] = Party(key, cert)
    parties = {spec.corp_id: collectors[spec.enterprise_id] for spec in specs}
    messages = _messages(specs, calls, size, parties, harvest_id)
    with tempfile.TemporaryDirectory(prefix="starwrs-bench-rating-") as tmp:
        root = Path(tmp)
        text = bench_tariff(specs)
        TariffStore.of(root).load(parse_tariffs(text), source="bench", data=text.encode())
        seen = [_round(messages, root, harvest_id) for _ in range(rounds)]
    base = min(r.base for r in seen)
    best = min(seen, key=lambda r: r.both)
    both, steps = best.both, best.steps
    records = sum(m.records for m in messages)
    _ran.update(
        calls=str(records),
        corps=str(len(specs)),
        rounds=str(rounds),
        batch=str(size),
        batches=str(len(messages)),
        priced=str(steps.priced),
        mb=f"{sum(len(m.mail) for m in messages) / 1e6:.0f}",
    )
    _ran["steps"] = (
        ", ".join(
            f"{name} {seconds / records * 1e6:.2f}" for name, seconds in steps.seconds.items()
        )
        + f" (priced {steps.priced:,} of {records:,})"
    )
    _ran["cpu"] = ", ".join(
        f"{name} {min(r.cpu[name] for r in seen) / records * 1e6:.2f}" for name in seen[0].cpu
    )
    overlapped = min(r.overlapped for r in seen)
    label = "load of the same calls unrated"
    return [
        compare(
            "rating end to end (verify..load)", records / both, "records/s", label, records / base
        ),
        compare(
            "rating end to end, harvest || DSS",
            records / overlapped,
            "records/s",
            label,
            records / base,
        ),
        compare(
            "rating: harvest steps alone",
            records / sum(v for k, v in steps.seconds.items() if k != "load"),
            "records/s",
            label,
            records / base,
        ),
    ]
