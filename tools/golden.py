"""Regenerate ``fixtures/seed/*.golden.json``: what ``starwrs parse`` gives for each fixture.

Usage: ``python tools/golden.py`` (then review the diff: a golden file changes only
when the parser's output is meant to change).  A fixture that parses gets its
canonical JSON tree and canonical text; one that does not gets its error line.
``tests/grammar/test_golden.py`` compares the parser with these files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from starwrs.grammar import MessageError, parse, serialize
from starwrs.grammar.jsonform import to_json

SEED = Path(__file__).resolve().parent.parent / "fixtures" / "seed"


def golden(text: str) -> dict[str, object]:
    """The golden record of one fixture's text."""
    try:
        message = parse(text)
    except MessageError as err:
        return {"error": err.to_json()}
    return {"canonical": serialize(message), "tree": to_json(message)}


def main() -> int:
    for path in sorted(SEED.glob("*.txt")):
        record = golden(path.read_text(encoding="utf-8"))
        out = path.with_name(path.name.removesuffix(".txt") + ".golden.json")
        out.write_text(json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
