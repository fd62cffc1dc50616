"""The seed's own example messages, cleaned, as shipped in ``starwrs.fixtures.seed``.

``seed_text("07_ard.txt")`` returns the text of one fixture; :func:`seed_index`
returns ``fixtures/seed/index.json`` (what each fixture is and what parsing and
validating it must give).  Benchmarks, tests and the demo data use them, so the
seed's examples are the system's first customers.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["seed_index", "seed_text"]


def _folder() -> Any:
    return resources.files("starwrs.fixtures").joinpath("seed")


def seed_text(name: str) -> str:
    """Return the exact text of the fixture *name* (e.g. ``"07_ard.txt"``)."""
    return str(_folder().joinpath(name).read_text(encoding="utf-8"))


def seed_index() -> dict[str, Any]:
    """Return the parsed ``index.json`` of the seed fixtures."""
    data: dict[str, Any] = json.loads(_folder().joinpath("index.json").read_text("utf-8"))
    return data
