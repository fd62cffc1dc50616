"""Run mypy (strict) over the installed namespace ``starwrs``.

The repository's top-level folders are mapped onto ``starwrs.*`` by setuptools; an
editable install reaches them through an import hook that mypy cannot follow.  So
this script lays out ``build/typecheck/starwrs/<pkg>`` as symlinks to the folders
and points mypy at it.  Usage: ``python tools/typecheck.py`` (exit status = mypy's).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _packages() -> dict[str, str]:
    """starwrs sub-package -> folder, from pyproject's ``package-dir`` (one source)."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        mapping = tomllib.load(file)["tool"]["setuptools"]["package-dir"]
    return {name.removeprefix("starwrs."): folder for name, folder in mapping.items()}


def main() -> int:
    stage = ROOT / "build" / "typecheck" / "starwrs"
    stage.mkdir(parents=True, exist_ok=True)
    for name, folder in _packages().items():
        link = stage / name
        if not link.is_symlink():
            if link.exists():
                link.unlink()
            link.symlink_to(ROOT / folder, target_is_directory=True)
    env = dict(os.environ, MYPYPATH=str(stage.parent))
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
    cmd += ["-p", "starwrs"]
    return subprocess.call(cmd, cwd=stage.parent, env=env)


if __name__ == "__main__":
    sys.exit(main())
