"""``starwrs bench parse``: metadata messages parsed (and validated) per second.

Each row measures starwrs on one seed message against a same-run baseline that
decodes *the same content* with a C-accelerated general decoder: ``json.loads`` of
the message's JSON form and ``msgpack.unpackb`` of the same structure packed.  The
rows:

* ``parse+validate <MSG>``  -- :func:`parse` then the typed catalogue (what a proxy
  does with every request), against ``json.loads``;
* ``parse <MSG>``           -- the fast scanner alone, against ``json.loads``;
* ``parse <MSG> (lark)``    -- the normative Lark LALR parser, against the scanner
  (shows where the ceiling was and why the scanner exists);
* ``parse+validate <MSG> vs msgpack`` -- against ``msgpack.unpackb``;
* ``parse+validate <MSG> (pure Python)`` -- the same in a child process with
  ``STARWRS_PURE=1`` (the grammar modules from source, not Cython-compiled),
  against the row above: what compiling the hot modules buys.  Only when this
  process runs them compiled (:func:`starwrs.grammar._speedups.status`);
* ``memory growth``         -- resident-set growth (KiB) after many parses against
  the growth after as many ``json.loads``; flat means no leak and no cache.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from functools import partial

import msgpack
from starwrs.cli.benchkit import Result, compare, rate
from starwrs.grammar import _speedups, parse
from starwrs.grammar.jsonform import to_json
from starwrs.grammar.parser import parse_lark
from starwrs.grammar.seed import seed_text

__all__ = ["context", "pure_child", "run"]


def _validator() -> Callable[[str], object]:
    from starwrs.grammar.catalogue import validate

    def parse_and_validate(text: str) -> object:
        return validate(parse(text))

    return parse_and_validate


def context() -> str:
    """One line saying which grammar modules run compiled (printed above the table)."""
    forms = _speedups.status()
    compiled = [name for name, form in forms.items() if form == "compiled"]
    if len(compiled) == len(forms):
        return f"grammar: {len(forms)} hot modules Cython-compiled"
    reasons = sorted({form for form in forms.values() if form != "compiled"})
    return f"grammar: {len(compiled)}/{len(forms)} hot modules compiled ({'; '.join(reasons)})"


def pure_child(name: str, seconds: float) -> None:
    """In a ``STARWRS_PURE=1`` child: print parse+validate msg/s of seed *name*."""
    check = _validator()
    print(rate(partial(check, seed_text(name)), seconds=seconds))


def _pure_rate(name: str, seconds: float) -> float | None:
    if any(form != "compiled" for form in _speedups.status().values()):
        return None  # this process already runs pure Python: the main rows say it
    code = f"from starwrs.cli.bench_grammar import pure_child; pure_child({name!r}, {seconds!r})"
    env = dict(os.environ, STARWRS_PURE="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def _maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run(quick: bool = False) -> list[Result]:
    """Run the parse benchmarks; *quick* shortens every window (for tests)."""
    seconds = 0.3 if quick else 2.0
    check = _validator()
    results: list[Result] = []
    for name in ("07_ard.txt", "01_grtl.txt"):
        text = seed_text(name)
        acronym = parse(text).acronym or "?"
        as_json = json.dumps(to_json(parse(text)))
        as_msgpack = msgpack.packb(to_json(parse(text)))
        json_rate = rate(partial(json.loads, as_json), seconds=seconds)
        msgpack_rate = rate(partial(msgpack.unpackb, as_msgpack), seconds=seconds)
        full = rate(partial(check, text), seconds=seconds)
        fast = rate(partial(parse, text), seconds=seconds)
        lark = rate(partial(parse_lark, text), seconds=seconds, batch=10)
        results += [
            compare(f"parse+validate {acronym}", full, "msg/s", "json.loads", json_rate),
            compare(f"parse {acronym}", fast, "msg/s", "json.loads", json_rate),
            compare(f"parse {acronym} (lark)", lark, "msg/s", f"parse {acronym}", fast),
            compare(
                f"parse+validate {acronym} vs msgpack",
                full,
                "msg/s",
                "msgpack.unpackb",
                msgpack_rate,
            ),
        ]
        pure = _pure_rate(name, seconds)
        if pure is not None:
            results.append(
                compare(
                    f"parse+validate {acronym} (pure Python)",
                    pure,
                    "msg/s",
                    f"parse+validate {acronym}",
                    full,
                )
            )
    # Memory: parse the ARD many times; the process must not grow.
    text = seed_text("07_ard.txt")
    as_json = json.dumps(to_json(parse(text)))
    count = 20_000 if quick else 1_000_000
    for _ in range(2000):  # warm up allocator pools
        parse(text)
        json.loads(as_json)
    before = _maxrss_kib()
    for _ in range(count):
        parse(text)
    parsed_growth = _maxrss_kib() - before
    before = _maxrss_kib()
    for _ in range(count):
        json.loads(as_json)
    json_growth = _maxrss_kib() - before
    results.append(
        Result(
            f"memory growth over {count} parses",
            float(parsed_growth),
            "KiB",
            "json.loads growth",
            float(json_growth),
            0.0 if not json_growth else round(parsed_growth / json_growth, 4),
        )
    )
    return results
