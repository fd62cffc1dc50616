"""``starwrs bench NAME [--json] [--quick]``: run one benchmark family."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from starwrs.cli.benchkit import Result

#: benchmark name -> "module:function" returning list[Result]; imported lazily
BENCHES: dict[str, str] = {
    "parse": "starwrs.cli.bench_grammar:run",
    "header": "starwrs.cli.bench_protocol:run_header",
    "frames": "starwrs.cli.bench_protocol:run_frames",
    "stack": "starwrs.cli.bench_stack:run",
    "rm": "starwrs.cli.bench_rm:run",
    "delivery": "starwrs.cli.bench_delivery:run",
    "load": "starwrs.cli.bench_datamart:run",
    "report": "starwrs.cli.bench_report:run",
    "viewer": "starwrs.cli.bench_viewer:run",
    "rating": "starwrs.cli.bench_rating:run",
    "harvest": "starwrs.cli.bench_harvest:run",
}


def register(sub: Any) -> None:
    """Add the ``bench`` sub-command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "bench", help="measure speed against a same-run baseline"
    )
    parser.add_argument("name", choices=sorted(BENCHES), help="which benchmark")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--quick", action="store_true", help="short run (for tests)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the named benchmark and print its results."""
    module_name, func_name = BENCHES[args.name].split(":")
    module = importlib.import_module(module_name)
    results: list[Result] = getattr(module, func_name)(quick=args.quick)
    # a bench module may say what it ran on (``context()``): above the table, or on
    # stderr beside the JSON lines
    context = getattr(module, "context", None)
    note = context() if context is not None else None
    if args.json:
        if note:
            print(note, file=sys.stderr)
        for result in results:
            print(json.dumps(result.to_json()), flush=True)
        return 0
    if note:
        print(note)
    print(
        f"{'name':<34} {'value':>14} {'unit':<10} {'baseline':<26} {'base value':>14} {'ratio':>7}"
    )
    for r in results:
        print(
            f"{r.name:<34} {r.value:>14.1f} {r.unit:<10} {r.baseline_name:<26} "
            f"{r.baseline_value:>14.1f} {r.ratio:>7.3f}"
        )
    return 0
