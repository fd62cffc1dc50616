"""``starwrs datamart``: build and inspect the DSS datamart without a running system.

Usage::

    starwrs datamart generate [--state DIR] --calls N [--corps C ...] [--days D]
                              [--start YYYY-MM-DD] [--seed S] [--partition K]
    starwrs datamart demo [--state DIR] [--calls N]    # the demo datamart (serve --demo)
    starwrs datamart info [--state DIR]                # partitions, corps, calls

Theory of operation
-------------------
``generate`` draws priced calls (:mod:`starwrs.fixtures.datamart`) for the corps and
stores them through the same bulk load the harvest uses
(:func:`~starwrs.storage.datamart.store.load_calls`).  Without a running system it
writes straight into the partition files ``STATE/datamart/ods<k>.duckdb``; while
``starwrs serve`` runs on the state directory (it holds ``STATE/serve.lock``) each
partition's file belongs to its DSS, so the calls go to that DSS as bulk ``LOAD``
puts of Arrow IPC stream files, a million calls at most each
(:mod:`starwrs.fixtures.datamart_live`).  Corps default to every corp of the
deployment's order entry (``STATE/oe.db``, read only) and, without one, the demo
corps; a corp's billing ids and service locations come from there too.  Each corp
goes to its partition from ``STATE/datamart/partitions.json`` (see
:mod:`starwrs.storage.datamart.partitions`; ``--partition`` puts them all in one),
and the map records it.  The days are local days ``--start`` ..  ``--start + D - 1``
(default: the last D days).  ``demo`` and ``info`` read and write the files
themselves: with the system running they say the file is in use.  Every mistake is
one line on stderr and exit status 1 (2 for a bad option).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]

_CORP = re.compile(r"^[0-9A-Za-z]{1,8}$")
_MAX_CALLS = 2_000_000_000


def register(sub: Any) -> None:
    """Add the ``datamart`` sub-command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "datamart", help="generate or inspect the DSS datamart (priced calls)"
    )
    inner = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    gen = inner.add_parser("generate", help="generate priced calls into the partitions")
    gen.add_argument("--state", type=Path, default=Path("state"), help="state directory")
    gen.add_argument("--calls", type=int, required=True, help="how many calls in all")
    gen.add_argument("--corps", nargs="+", metavar="CORP", help="corp ids (default: all known)")
    gen.add_argument("--days", type=int, default=90, help="local days of calls (default 90)")
    gen.add_argument("--start", help="first day, YYYY-MM-DD (default: D days ago)")
    gen.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    gen.add_argument("--partition", type=int, help="put every corp into ODS<K>")
    gen.set_defaults(func=_generate)
    demo = inner.add_parser(
        "demo", help="the demo datamart: demo corps, June-July 1998 and the last 90 days"
    )
    demo.add_argument("--state", type=Path, default=Path("state"), help="state directory")
    demo.add_argument("--calls", type=int, default=None, help="how many calls (default 300000)")
    demo.set_defaults(func=_demo)
    info = inner.add_parser("info", help="partitions, corps and calls")
    info.add_argument("--state", type=Path, default=Path("state"), help="state directory")
    info.set_defaults(func=_info)


def _fail(message: str) -> int:
    print(f"starwrs datamart: {message}", file=sys.stderr)
    return 1


def order_entry_corps(state: Path) -> dict[str, Any]:
    """CorpSpecs of every corp in the deployment's order entry (``STATE/oe.db``), if any."""
    from starwrs.fixtures.datamart import CorpSpec, product_for

    path = state / "oe.db"
    if not path.exists():
        return {}
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT enterprise_id, enterprise_name, corporate_id, corporate_name, billing_id,"
            " billing_name, service_loc_id, serv_loc_name FROM billing_corp WHERE level = 4"
            " ORDER BY corporate_id, billing_id, service_loc_id"
        ).fetchall()
    except sqlite3.Error:
        return {}
    finally:
        con.close()
    corps: dict[str, tuple[str, str, str, dict[str, tuple[str, list[tuple[str, str]]]]]] = {}
    for entp, entp_name, corp, corp_name, bill, bill_name, loc, loc_name in rows:
        entry = corps.setdefault(corp, (entp, entp_name or "", corp_name or "", {}))
        entry[3].setdefault(bill, (bill_name or "", []))[1].append((loc, loc_name or ""))
    return {
        corp: CorpSpec(
            corp,
            name,
            entp,
            entp_name,
            tuple((b, bn, tuple(locs)) for b, (bn, locs) in bills.items()),
            product_for(corp, name),
        )
        for corp, (entp, entp_name, name, bills) in corps.items()
    }


def _options(args: argparse.Namespace) -> tuple[dt.date, str | None]:
    """(first day, error)."""
    if not 1 <= args.calls <= _MAX_CALLS:
        return dt.date.min, f"--calls must be between 1 and {_MAX_CALLS}, not {args.calls}"
    if not 1 <= args.days <= 3660:
        return dt.date.min, f"--days must be between 1 and 3660, not {args.days}"
    if args.partition is not None and not 1 <= args.partition <= 99:
        return dt.date.min, f"--partition must be between 1 and 99, not {args.partition}"
    for corp in args.corps or ():
        if not _CORP.match(corp):
            return dt.date.min, f"bad corp id {corp!r} (1-8 letters or digits)"
    if args.start is None:
        return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=args.days), None
    try:
        start = dt.date.fromisoformat(args.start)
    except ValueError:
        return dt.date.min, f"--start must be a date YYYY-MM-DD, not {args.start!r}"
    if not 1970 < start.year < 2100:
        return dt.date.min, f"--start must be between 1971 and 2099, not {args.start}"
    return start, None


def _generate(args: argparse.Namespace) -> int:
    start, error = _options(args)
    if error:
        return _fail(error)
    from starwrs.fixtures.datamart import corp_specs, demo_corp_specs, generate_into
    from starwrs.fixtures.datamart_live import LiveLoadError, generate_live, running_deployment

    state: Path = args.state
    if state.exists() and not state.is_dir():
        return _fail(f"{state} is not a directory")
    try:
        deployment = running_deployment(state)
    except LiveLoadError as err:
        return _fail(str(err))
    known = order_entry_corps(state)
    corp_ids = list(dict.fromkeys(args.corps or known or demo_corp_specs()))
    specs = corp_specs(corp_ids, known)
    what = f"{len(specs)} corp(s), {args.days} day(s) from {start}"
    options: dict[str, Any] = {
        "start": start,
        "days": args.days,
        "seed": args.seed,
        "partition": args.partition,
    }
    if deployment is not None:
        return _write(
            state,
            lambda: generate_live(state, deployment, specs, args.calls, **options),
            what,
            live=True,
        )
    return _write(state, lambda: generate_into(state, specs, args.calls, **options), what)


def _demo(args: argparse.Namespace) -> int:
    from starwrs.fixtures.datamart import DEMO_CALLS, demo_datamart

    calls = DEMO_CALLS if args.calls is None else args.calls
    if not 1 <= calls <= _MAX_CALLS:
        return _fail(f"--calls must be between 1 and {_MAX_CALLS}, not {calls}")
    return _write(args.state, lambda: demo_datamart(args.state, calls=calls), "the demo corps")


def _write(state: Path, work: Any, what: str, *, live: bool = False) -> int:
    from starwrs.fixtures.datamart_live import LiveLoadError
    from starwrs.storage.datamart.partitions import PartitionMapError
    from starwrs.storage.datamart.schema import DatamartSchemaError
    from starwrs.storage.datamart.store import LoadError, PartitionBusy

    try:
        result = work()
    except PartitionBusy as err:
        return _fail(f"{err}: stop the running system first (its DSS owns the partition)")
    except (PartitionMapError, DatamartSchemaError, LoadError, LiveLoadError) as err:
        return _fail(str(err))
    except OSError as err:
        return _fail(f"cannot write the datamart under {state}: {err.strerror or err}")
    if not result.total:
        print(f"starwrs datamart: {what} already have calls in {state / 'datamart'}; nothing to do")
        return 0
    parts = ", ".join(f"ODS{k} {n}" for k, n in sorted(result.calls.items()))
    rate = result.total / result.seconds if result.seconds else 0.0
    how = " through the running system" if live else ""
    print(
        f"starwrs datamart: {result.total} calls for {what} into {parts}{how}"
        f" in {result.seconds:.1f} s ({rate:,.0f} calls/s)"
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    from starwrs.storage.datamart.partitions import (
        PartitionMapError,
        partition_path,
        read_partition_map,
    )
    from starwrs.storage.datamart.store import PartitionBusy, open_partition

    try:
        pmap = read_partition_map(args.state)
    except PartitionMapError as err:
        return _fail(str(err))
    print(f"partitions: {pmap.partitions}")
    for k in range(1, pmap.partitions + 1):
        path = partition_path(args.state, k)
        if not path.exists():
            print(f"ODS{k}: {path} (empty)")
            continue
        try:
            con = open_partition(args.state, k, read_only=True)
        except PartitionBusy as err:
            print(f"ODS{k}: {err}")
            continue
        try:
            rows = con.execute(
                "SELECT corp_id, count(*), min(g.datetime), max(g.datetime) FROM perspective_base"
                " JOIN gmt g ON g.time_key = gmt_key GROUP BY corp_id ORDER BY corp_id"
            ).fetchall()
        finally:
            con.close()
        print(f"ODS{k}: {path}, {sum(r[1] for r in rows)} calls")
        for corp, count, first, last in rows:
            print(
                f"  corp {corp}: {count} calls, {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} GMT"
            )
    return 0
