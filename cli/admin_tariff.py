"""``starwrs admin tariff load FILE``: load tariff plans, rating profiles and sites.

::

    starwrs admin --state DIR tariff load tariffs.csv
    starwrs admin --state DIR tariff show [ENTPID]

``load`` checks the whole file first (:func:`starwrs.proxies.harvest.tariffs.parse_tariffs`:
one line ``FILE:LINE: problem`` per bad line, nothing stored) and then writes it into
``STATE/harvest/tariffs.sqlite`` in one transaction.  The store is SQLite in WAL mode
and belongs to no process (see :mod:`starwrs.proxies.harvest.tariffs`): this command
writes the file directly, whether or not ``starwrs serve`` and its harvest run, and the
harvest rates every batch it takes after the commit by the new tariffs (it reads the
store's generation number per batch).  Calls already in the datamart keep their
prices until ``starwrs admin rerate``.  ``show`` prints the stored plans, profiles and
sites (one enterprise's with ENTPID).

Exit 0 when loaded; 1 when the file is refused (one problem: one line on stderr; several:
one line each, at most 20, and a line counting them); 2 for a usage mistake, an unreadable file, no
deployment in ``--state`` or a store that cannot be written.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path
from typing import Any

from starwrs.proxies.harvest.tariffs import TariffError, TariffStore, parse_tariffs, store_path
from starwrs.runtime.config import Deployment

__all__ = ["register"]

#: problems printed at most; the rest are counted
MAX_PROBLEMS = 20
#: the largest tariff file accepted
MAX_FILE_BYTES = 64 * 1024 * 1024


def register(actions: Any) -> None:
    """Add ``tariff load|show`` and ``rerate`` (cli/admin_rerate.py) to ``starwrs admin``."""
    from starwrs.cli import admin_rerate

    admin_rerate.register(actions)
    tariff = actions.add_parser("tariff", help="load or show the harvest's tariffs")
    steps = tariff.add_subparsers(dest="tariff_action", required=True)
    load = steps.add_parser("load", help="load a tariff file (plans, profiles, sites)")
    load.add_argument("file", type=Path, help="the tariff CSV file (- for stdin)")
    show = steps.add_parser("show", help="print the stored tariffs")
    show.add_argument("entp", nargs="?", metavar="ENTPID", help="only this enterprise")
    for parser in (load, show):
        parser.set_defaults(func=run)


def _fail(text: str, status: int) -> int:
    print(f"starwrs admin tariff: {text}", file=sys.stderr)
    return status


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _read(path: Path) -> tuple[bytes, str]:
    if str(path) == "-":
        return sys.stdin.buffer.read(MAX_FILE_BYTES + 1), "-"
    with path.open("rb") as f:
        return f.read(MAX_FILE_BYTES + 1), path.name


def _load(state: Path, file: Path) -> int:
    try:
        data, name = _read(file)
    except OSError as err:
        return _fail(f"cannot read {file}: {err.strerror or err}", 2)
    if len(data) > MAX_FILE_BYTES:
        return _fail(f"{file} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB", 2)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        return _fail(f"{name}:{line}: not UTF-8 text (byte {err.start})", 1)
    try:
        tariffs = parse_tariffs(text, name=name)
        summary = TariffStore.of(state).load(tariffs, source=name, data=data)
    except TariffError as err:
        problems = err.problems
        if len(problems) == 1:
            print(f"starwrs admin tariff load: {problems[0]} (nothing loaded)", file=sys.stderr)
            return 1
        for problem in problems[:MAX_PROBLEMS]:
            print(f"starwrs admin tariff load: {problem}", file=sys.stderr)
        rest = f", {len(problems) - MAX_PROBLEMS} not shown" if len(problems) > MAX_PROBLEMS else ""
        print(
            f"starwrs admin tariff load: {len(problems)} problems{rest}; nothing loaded",
            file=sys.stderr,
        )
        return 1
    except (sqlite3.Error, OSError) as err:
        return _fail(f"cannot write the tariff store {store_path(state)}: {err}", 2)
    entps = ", ".join(summary.enterprises) or "none"
    counts = ", ".join(
        _count(n, word)
        for n, word in ((summary.plans, "plan"), (summary.rates, "rate"),
                        (summary.profiles, "profile"), (summary.sites, "site"))
    )  # fmt: skip
    print(f"loaded {name}: {counts} (enterprises: {entps}); tariff generation {summary.generation}")
    return 0


def _show(state: Path, entp: str | None) -> int:
    path = store_path(state)
    if not path.exists():
        return _fail(f"no tariffs loaded yet ({path} does not exist)", 1)
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            plans = con.execute(
                "SELECT p.plan_id, p.name, p.currency, p.first_s, p.next_s, count(r.plan_id)"
                " FROM plans p LEFT JOIN rates r USING (plan_id) GROUP BY p.plan_id"
                " ORDER BY p.plan_id"
            ).fetchall()
            where, params = ("WHERE entp_id = ?", (entp,)) if entp else ("", ())
            profiles = con.execute(
                f"SELECT entp_id, corp_id, active_from, plan_id, product, discount_bp"  # noqa: S608
                f" FROM profiles {where} ORDER BY entp_id, corp_id, active_from",
                params,
            ).fetchall()
            sites = con.execute(
                f"SELECT entp_id, corp_id, trunk, billing_id, service_loc_id, main_number, tz"  # noqa: S608
                f" FROM sites {where} ORDER BY entp_id, corp_id, trunk",
                params,
            ).fetchall()
        finally:
            con.close()
    except sqlite3.Error as err:
        return _fail(f"cannot read the tariff store {path}: {err}", 2)
    for plan_id, name, currency, first, step, rates in plans:
        print(f"plan {plan_id}: {name} ({currency}, {first}/{step}, {rates} rates)")
    for entp_id, corp, day, plan_id, product, discount in profiles:
        print(f"profile {entp_id}/{corp} from {day}: plan {plan_id}, product {product},"
              f" discount {discount / 100:g}%")  # fmt: skip
    for entp_id, corp, trunk, billing, location, main, tz in sites:
        print(f"site {entp_id}/{corp} trunk {trunk or '*'}: {billing}/{location}, {main}, {tz}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one ``admin tariff`` action."""
    state = args.state.resolve()
    try:
        Deployment.load(state)
    except (OSError, KeyError, ValueError, TypeError):
        return _fail(f"no deployment in {args.state} (run starwrs serve there first)", 2)
    if args.tariff_action == "load":
        return _load(state, args.file)
    return _show(state, args.entp)
