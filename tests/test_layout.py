"""The import direction of DESIGN.md's Layout holds for every module.

cli -> web / dispatcher / proxies / collector -> runtime / storage -> protocol -> grammar.
A module may import its own package and anything to its right, never to its left nor
a sibling on its own tier (a proxy never imports the dispatcher or the web server).
``fixtures`` (demo data and generators) may use proxies' stores, and is used only by
the cli and tests.  The harvest proxy reads batches with the collector's modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: package -> the starwrs packages it may import besides itself
ALLOWED: dict[str, set[str]] = {
    "grammar": set(),
    "protocol": {"grammar"},
    "runtime": {"protocol", "grammar"},
    "storage": {"protocol", "grammar", "runtime"},
    # the harvest reads what the collector sends with the collector's own batch format,
    # S/MIME and CDR readers (the collector never imports a proxy)
    "proxies": {"collector", "runtime", "storage", "protocol", "grammar"},
    "dispatcher": {"runtime", "storage", "protocol", "grammar"},
    "web": {"runtime", "storage", "protocol", "grammar"},
    "collector": {"runtime", "storage", "protocol", "grammar"},
    "fixtures": {"proxies", "runtime", "storage", "protocol", "grammar"},
    "cli": {
        "web",
        "dispatcher",
        "proxies",
        "collector",
        "fixtures",
        "runtime",
        "storage",
        "protocol",
        "grammar",
    },
}


def _imports(path: Path) -> set[str]:
    """The starwrs packages *path* imports (module level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "starwrs" and len(parts) > 1:
                found.add(parts[1])
    return found


def _modules() -> list[tuple[str, Path]]:
    return [
        (package, path)
        for package in ALLOWED
        if (ROOT / package).is_dir()
        for path in sorted((ROOT / package).rglob("*.py"))
    ]


@pytest.mark.parametrize(("package", "path"), _modules(), ids=lambda v: str(v))
def test_import_direction(package: str, path: Path) -> None:
    wrong = _imports(path) - ALLOWED[package] - {package}
    assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_the_table_covers_every_package() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - {"tests"}
    assert packages <= set(ALLOWED), packages - set(ALLOWED)
