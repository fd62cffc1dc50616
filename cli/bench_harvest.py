"""``starwrs bench harvest``: PBX records per second through a real ``starwrs serve``,
e-mail in, calls in the datamart out, against the same batches through ``bench
rating``'s two-process pipeline in the same run.

What runs
---------
A ``starwrs serve --demo`` (a small demo datamart, :data:`~.launch.DEMO_CALLS` calls)
in a temporary state directory.  Not timed: ``starwrs admin tariff load`` of
:func:`~.bench_rating.bench_tariff`, one collector per demo corp (its key and
certificate, ``starwrs admin collector enroll ENTPID CERT --corp C``), and the demo
corps' calls (June-July 1998; 1 M, 100 k with ``--quick``, or
``STARWRS_BENCH_HARVEST_CALLS``) as Asterisk ``Master.csv`` batches of 50,000 records
(``STARWRS_BENCH_HARVEST_BATCH``), each signed by its corp's collector and encrypted
to the deployment's harvest certificate (``STATE/harvest/smime.pem``): the e-mails
``bench rating`` builds (:func:`~.bench_rating._messages`).

* ``harvest through serve`` -- two senders at once (two collectors; the harvest takes
  a message at a time per SMTP session, and answers 250 once its DSS has loaded it)
  send the batches, in order, with the collector's own SMTP client
  (:func:`~starwrs.collector.mailer.send_message`: a connection per batch, STARTTLS
  verified against the deployment CA).  The clock runs from the first connection to
  the last batch ``applied`` in the harvest's audit trail; every batch must be
  ``applied`` with all its calls accepted, or the run fails.  So the row has
  everything the rating rows leave out: SMTP and TLS, the audit trail's and the batch
  table's SQLite commits, the archive of each signed batch, the ``LOAD`` bulk put from
  the harvest to the corp's DSS process and the DSS's own transaction.
* the baseline, in the same rounds: the same e-mails through ``bench
  rating``'s ``harvest || DSS`` pipeline (:func:`~.bench_rating._overlapped`), the
  harvest's steps in this process and the load in a DSS process of its own.

Best of three rounds (one with ``--quick``); each round sends new batches (new ids),
so a deployment's partitions grow round by round.  The context line has the CPU time
per record of the deployment's processes in the best round (``/proc``: user + system,
each service apart) and of this process's senders.
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from starwrs.cli import bench_rating as rating
from starwrs.cli.benchkit import Result, compare
from starwrs.cli.launch import Launched, launch
from starwrs.collector import identity
from starwrs.collector.mailer import send_message
from starwrs.fixtures.datamart import CorpSpec, demo_corp_specs
from starwrs.proxies.harvest.tariffs import TariffStore, parse_tariffs

__all__ = ["context", "run"]

SENDERS = 2
_ran: dict[str, str] = {}


def context() -> str:
    """What the benchmark ran on (printed above the table)."""
    return (
        f"bench harvest: {_ran.get('calls', '?')} calls, {_ran.get('batches', '?')} batches of"
        f" up to {_ran.get('batch', '?')} records by e-mail, {SENDERS} senders, best of"
        f" {_ran.get('rounds', '?')}, {os.cpu_count()} cores\n"
        f"  CPU us per record through serve, best round: {_ran.get('cpu', '?')}"
    )


def _admin(state: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "starwrs.cli", "admin", "--state", str(state), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"starwrs admin {' '.join(args)}: {done.stderr.strip()}")


def _enrolled(state: Path, specs: list[CorpSpec]) -> dict[str, rating.Party]:
    """A collector per corp, enrolled at the deployment (corp id -> its identity)."""
    parties: dict[str, rating.Party] = {}
    for spec in specs:
        name = f"pbx{spec.corp_id}"
        key, cert, _csr = identity.make_collector_identity(
            spec.enterprise_id, name, f"{name}@pbx.example"
        )
        path = state.parent / f"{name}.pem"
        identity.write_certificate(path, cert)
        _admin(state, "collector", "enroll", spec.enterprise_id, str(path), "--corp", spec.corp_id)
        parties[spec.corp_id] = rating.Party(key, cert)
    return parties


def _harvest_party(state: Path) -> rating.Party:
    cert_path, key_path = state / "harvest" / "smime.pem", state / "harvest" / "smime-key.pem"
    key = identity.load_key(key_path)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError(f"{key_path} is not an RSA key")
    return rating.Party(key, identity.load_certificate(cert_path))


def _applied(state: Path) -> tuple[int, int]:
    """(batches applied, calls they accepted) in the harvest's audit trail."""
    con = sqlite3.connect(f"file:{state / 'harvest' / 'harvest.db'}?mode=ro", uri=True)
    try:
        row = con.execute(
            "SELECT count(*), coalesce(sum(accepted), 0) FROM audit WHERE result = 'applied'"
        ).fetchone()
    finally:
        con.close()
    return int(row[0]), int(row[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process *pid* so far (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _through_serve(
    served: Launched, messages: list[rating.Message], expected: tuple[int, int]
) -> tuple[float, dict[str, float]]:
    """(Seconds, CPU seconds per service) for *messages* sent by :data:`SENDERS` at once
    until the audit trail has every one applied; *expected* is (batches, calls)
    applied before plus these."""
    state = served.state
    deployment = json.loads((state / "deployment.json").read_text())
    host, port = deployment["harvest_smtp"]["host"], deployment["harvest_smtp"]["port"]
    mailbox = deployment["harvest_mailbox"]
    pids = {k: int(v) for k, v in json.loads((state / "pids.json").read_text()).items()}
    todo: queue.Queue[rating.Message] = queue.Queue()
    for message in messages:
        todo.put(message)
    failures: list[str] = []

    def sender() -> None:
        while True:
            try:
                message = todo.get_nowait()
            except queue.Empty:
                return
            try:
                reply = send_message(
                    host,
                    port,
                    sender=f"pbx{message.spec.corp_id}@pbx.example",
                    to=mailbox,
                    message=message.mail,
                    ca=state / "ca.pem",
                )
            except Exception as err:  # reported, the run fails
                failures.append(repr(err))
                return
            if not reply.ok:
                failures.append(f"{reply.code} {reply.text}")
                return

    cpu0 = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    began = time.perf_counter()
    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"the harvest did not take a batch: {failures[0]}")
    deadline = time.monotonic() + 300
    while _applied(state) != expected:  # a deferred load is applied in the background
        if time.monotonic() > deadline:
            raise RuntimeError(f"applied {_applied(state)}, expected {expected}")
        time.sleep(0.01)
    elapsed = time.perf_counter() - began
    return elapsed, {name: _cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}


def run(quick: bool = False) -> list[Result]:
    """Measure and return the rows of ``starwrs bench harvest``."""
    calls = rating._env("STARWRS_BENCH_HARVEST_CALLS", 100_000 if quick else 1_000_000, 1000)
    size = rating._env("STARWRS_BENCH_HARVEST_BATCH", 50_000, 100)
    rounds = 1 if quick else 3
    specs = sorted(demo_corp_specs().values(), key=lambda spec: spec.corp_id)
    with tempfile.TemporaryDirectory(prefix="starwrs-bench-harvest-") as tmp:
        root = Path(tmp)
        state, local = root / "state", root / "local"
        local.mkdir()
        served = launch(state)
        try:
            text = rating.bench_tariff(specs)
            (root / "tariffs.csv").write_text(text)
            _admin(state, "tariff", "load", str(root / "tariffs.csv"))
            TariffStore.of(local).load(parse_tariffs(text), source="bench", data=text.encode())
            parties = _enrolled(state, specs)
            harvest_id = _harvest_party(state)
            seen: list[tuple[float, float, dict[str, float], int]] = []
            batches = 0
            for _ in range(rounds):
                messages = rating._messages(specs, calls, size, parties, harvest_id)
                records = sum(m.records for m in messages)
                before = _applied(state)
                expected = (before[0] + len(messages), before[1] + records)
                wall, cpu = _through_serve(served, messages, expected)
                # the same e-mails: this pipeline loads into a fresh file of its own
                base, _dss_cpu = rating._overlapped(messages, local, harvest_id)
                for path in local.glob("*.duckdb*"):
                    path.unlink()
                seen.append((wall, base, cpu, records))
                batches = len(messages)
        finally:
            served.stop()
    wall, _base, cpu, records = min(seen, key=lambda r: r[0])
    base = min(r[1] for r in seen)
    busy = sorted(cpu.items(), key=lambda item: -item[1])
    _ran.update(
        calls=str(records),
        batches=str(batches),
        batch=str(size),
        rounds=str(rounds),
        cpu=f"all {sum(cpu.values()) / records * 1e6:.2f}: "
        + ", ".join(f"{name} {seconds / records * 1e6:.2f}" for name, seconds in busy[:4]),
    )
    return [
        compare(
            "harvest through serve (SMTP..DSS)",
            records / wall,
            "records/s",
            "bench rating harvest || DSS",
            records / base,
        )
    ]
