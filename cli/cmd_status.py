"""``starwrs status [--state DIR] [--json]``: every service of a deployment at a glance.

For each process of ``STATE/deployment.json`` (and the supervisor itself) it prints
the pid from ``pids.json``, the address it serves, its state and a few figures from
its Prometheus endpoint (:mod:`starwrs.runtime.metrics`): transactions answered, how
many were errors, restarts, resident memory.  State is ``up`` when the process is
alive and its port accepts a connection, ``down`` when the process is gone,
``unreachable`` when it lives but does not answer.  Exit 0 when everything is up,
1 when something is not, 2 when there is no deployment in ``STATE``.

**Parked messages.**  Every outbox of the delivery path (``rm.db``, ``rs.db``,
``arbitrator.db``, ``dss/ods<k>/outbox.db``, ``inbox/inbox.db``) is read, read-only,
for the messages it parked as failed -- kept, never dropped: each is listed under its
service with its subject, key, age, attempts and last error (in ``--json``, the
service's ``parked`` list).  They do not change the exit status: the services are up.
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from starwrs.runtime.config import Address, Deployment, pid_alive, process_label
from starwrs.runtime.services import instance_of
from starwrs.runtime.statelock import LOCK_FILE

#: seconds to wait for a port or a metrics endpoint
PROBE_TIMEOUT = 2.0
#: parked messages listed per service (the oldest; the count says how many in all)
PARKED_SHOWN = 20


def register(sub: Any) -> None:
    """Add the ``status`` sub-command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "status", help="every service of a deployment: pid, address, state, key metrics"
    )
    parser.add_argument("--state", type=Path, default=Path("state"), help="state directory")
    parser.add_argument("--json", action="store_true", help="one JSON object per service")
    parser.set_defaults(func=run)


def _accepts(address: Address) -> bool:
    try:
        with socket.create_connection((address.host, address.port), timeout=PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def scrape(address: Address) -> dict[str, float]:
    """A few figures from one metrics endpoint ({} when it cannot be read)."""
    url = f"http://{address.host}:{address.port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as answer:
            text = answer.read().decode("utf-8")
    except (OSError, ValueError):
        return {}
    figures = {"requests": 0.0, "errors": 0.0, "restarts": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "starwrs_requests_total":
                figures["requests"] += sample.value
                if sample.labels.get("status") not in ("0", "1"):
                    figures["errors"] += sample.value
            elif sample.name == "starwrs_restarts_total":
                figures["restarts"] += sample.value
            elif sample.name == "starwrs_active_sessions":
                figures["sessions"] = sample.value
            elif sample.name == "process_resident_memory_bytes":
                figures["rss_mb"] = round(sample.value / 2**20, 1)
    return figures


def _rows(
    deployment: Deployment, pids: dict[str, int], serve_pid: int | None
) -> list[dict[str, Any]]:
    """(label, name in pids.json, address) for the supervisor and every service."""
    services: list[tuple[str, str, Address | None]] = [("serve", "serve", None)]
    for target, proxy_address in deployment.proxies.items():
        label = process_label(*instance_of(target))
        services.append((label, label, proxy_address))
    services += [
        (process_label("dispatcher", i), f"dispatcher[{i}]", at)
        for i, at in enumerate(deployment.dispatchers)
    ]
    services.append(("web", "web", deployment.web))
    rows = []
    for label, name, address in services:
        pid = serve_pid if label == "serve" else pids.get(name)
        alive = pid_alive(pid)
        if not alive:
            state = "down"
        elif address is None or _accepts(address):
            state = "up"
        else:
            state = "unreachable"
        metrics = deployment.metrics.get(label)
        row: dict[str, Any] = {
            "service": name,
            "pid": pid,
            "address": str(address) if address else "-",
            "state": state,
        }
        if alive and metrics is not None:
            row.update(scrape(metrics))
        rows.append(row)
    return rows


def outbox_files(state: Path) -> dict[str, Path]:
    """The outbox database of each process of the delivery path, by process label."""
    files = {
        "rm": state / "rm.db",
        "rs": state / "rs.db",
        "arbitrator": state / "arbitrator.db",
        "inbox": state / "inbox" / "inbox.db",
    }
    for path in sorted((state / "dss").glob("ods*/outbox.db")):
        number = path.parent.name[len("ods") :]
        if number.isdigit():
            files[f"dss{int(number)}"] = path
    return files


def parked_messages(state: Path, now: float | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every service's parked messages, oldest first (read-only; a missing file: none).

    Each is ``{"subject", "key", "age_s", "attempts", "last_error"}``; at most
    :data:`PARKED_SHOWN` per service, with ``{"more": n}`` last when there are more.
    """
    now = time.time() if now is None else now
    found: dict[str, list[dict[str, Any]]] = {}
    for service, path in outbox_files(state).items():
        if not path.is_file():
            continue
        try:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=PROBE_TIMEOUT)
        except sqlite3.Error:
            continue
        try:
            rows = con.execute(
                "SELECT subject, key, created, attempts, last_error FROM outbox"
                " WHERE state = 'failed' ORDER BY id LIMIT ?",
                (PARKED_SHOWN + 1,),
            ).fetchall()
            total = len(rows)
            if total > PARKED_SHOWN:
                (total,) = con.execute(
                    "SELECT count(*) FROM outbox WHERE state = 'failed'"
                ).fetchone()
        except sqlite3.Error:  # not (yet) an outbox, or busy past the timeout
            continue
        finally:
            con.close()
        listed: list[dict[str, Any]] = [
            {
                "subject": subject,
                "key": key,
                "age_s": round(max(0.0, now - created), 1),
                "attempts": attempts,
                "last_error": last_error or "",
            }
            for subject, key, created, attempts, last_error in rows[:PARKED_SHOWN]
        ]
        if total > PARKED_SHOWN:
            listed.append({"more": total - PARKED_SHOWN})
        found[service] = listed
    return found


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _print_parked(parked: dict[str, list[dict[str, Any]]]) -> None:
    if not any(parked.values()):
        return
    print()
    print("PARKED MESSAGES (failed for good; kept, never dropped)")
    print(f"{'SERVICE':<14} {'SUBJECT':<18} {'KEY':<20} {'AGE':>6} {'ATTEMPTS':>8}  LAST ERROR")
    for service, messages in parked.items():
        for m in messages:
            if "more" in m:
                print(f"{service:<14} ... and {m['more']:,} more")
                continue
            error = " ".join(str(m["last_error"]).split())
            error = error if len(error) <= 70 else error[:67] + "..."
            print(
                f"{service:<14} {m['subject']:<18} {m['key']:<20} {_age(m['age_s']):>6} "
                f"{m['attempts']:>8}  {error}"
            )


def _serve_pid(state: Path) -> int | None:
    try:
        text = (state / LOCK_FILE).read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def run(args: argparse.Namespace) -> int:
    """Print the status table; exit 0 when every service is up."""
    state: Path = args.state.resolve()
    try:
        deployment = Deployment.load(state)
    except (OSError, ValueError, KeyError, TypeError):
        print(
            f"starwrs status: no deployment in {state} (start one: starwrs serve)", file=sys.stderr
        )
        return 2
    try:
        pids: dict[str, int] = json.loads((state / "pids.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pids = {}
    rows = _rows(deployment, pids, _serve_pid(state))
    parked = parked_messages(state)
    for row in rows:
        if row["service"] in parked:
            row["parked"] = parked[row["service"]]
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
    else:
        print(
            f"{'SERVICE':<14} {'PID':>7}  {'ADDRESS':<22} {'STATE':<12} "
            f"{'REQUESTS':>9} {'ERRORS':>7} {'RESTARTS':>8} {'RSS MB':>7}"
        )
        for row in rows:
            print(
                f"{row['service']:<14} {row['pid'] or '-':>7}  {row['address']:<22} "
                f"{row['state']:<12} {_n(row.get('requests')):>9} {_n(row.get('errors')):>7} "
                f"{_n(row.get('restarts')):>8} {row.get('rss_mb', '-'):>7}"
            )
        _print_parked(parked)
    return 0 if all(row["state"] == "up" for row in rows) else 1


def _n(value: float | None) -> str:
    return "-" if value is None else f"{int(value):,}"
