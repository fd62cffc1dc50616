"""Which grammar modules run compiled, and the guard that keeps stale ones out.

Theory of operation
-------------------
The install compiles the modules that parse and validate every message
(:data:`HOT`) with Cython, from the very ``.py`` files beside them (``setup.py``),
and records each source's SHA-256 in ``_speedups.json``.  A compiled module sits
next to its source under the same name, so Python would load it even after the
source was edited -- a developer would then be testing code that is not there.
Importing :mod:`starwrs.grammar` runs :func:`install` first: for every hot module
whose compiled form must not be used, it puts a finder in front of the import
system that loads the ``.py`` source instead.  A compiled module is used only when

* ``STARWRS_PURE`` is not set (set it to any non-empty value to run pure Python),
* the manifest names it, and
* its source file (and its ``.pxd`` type declarations, if any) still has the hash
  the manifest recorded.

Either form behaves the same (the whole test suite runs on both); the compiled
one parses and validates about twice as fast.  :func:`status` tells which form
each module runs in; ``starwrs bench parse`` prints it.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["HOT", "decide", "install", "source_digest", "status"]

#: the modules the build compiles, in dependency order (setup.py reads this)
HOT = ("model", "_build", "_scanner", "codecs", "typed")
PACKAGE = "starwrs.grammar"
MANIFEST = "_speedups.json"

#: module -> why it runs from source (filled by install); absent: compiled
_PURE_REASONS: dict[str, str] = {}


def source_digest(folder: Path, name: str) -> str:
    """SHA-256 of what compiling hot module *name* reads: its ``.py`` and its ``.pxd``.

    The ``.pxd`` (Cython type declarations, optional) changes the compiled code too,
    so editing either makes the compiled module stale.  ``setup.py`` records these.
    """
    digest = hashlib.sha256((folder / f"{name}.py").read_bytes())
    declarations = folder / f"{name}.pxd"
    if declarations.exists():
        digest.update(b"\0pxd\0" + declarations.read_bytes())
    return digest.hexdigest()


def decide(folder: Path, environ: os._Environ[str] | dict[str, str]) -> dict[str, str | None]:
    """For each hot module in *folder*: None to use its compiled form, else why not.

    A pure function of the files and the environment (the tests call it on made-up
    folders).
    """
    if environ.get("STARWRS_PURE"):
        return {name: "STARWRS_PURE is set" for name in HOT}
    try:
        recorded = json.loads((folder / MANIFEST).read_text()).get("compiled", {})
    except (OSError, ValueError, AttributeError):
        recorded = {}
    out: dict[str, str | None] = {}
    for name in HOT:
        binaries = [folder / f"{name}{suffix}" for suffix in importlib.machinery.EXTENSION_SUFFIXES]
        if not any(path.exists() for path in binaries):
            out[name] = "not compiled by this install"
            continue
        try:
            digest = source_digest(folder, name)
        except OSError:
            digest = None
        if name not in recorded:
            out[name] = "not in the build's manifest"
        elif digest is not None and recorded[name] != digest:
            out[name] = "source changed since the build (pip install -e . rebuilds it)"
        else:
            out[name] = None
    return out


class _FromSource(importlib.abc.MetaPathFinder):
    """Load the listed modules from their ``.py`` files, never a compiled file."""

    def __init__(self, sources: dict[str, Path]) -> None:
        self.sources = sources

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.sources.get(fullname)
        if source is None:
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def install(package_path: Sequence[str]) -> None:
    """Decide for every hot module and route the ones that must not run compiled."""
    if any(isinstance(finder, _FromSource) for finder in sys.meta_path):
        return
    folder = Path(next(iter(package_path)))
    sources: dict[str, Path] = {}
    for name, reason in decide(folder, os.environ).items():
        if reason is not None:
            _PURE_REASONS[name] = reason
            if (folder / f"{name}.py").exists():
                sources[f"{PACKAGE}.{name}"] = folder / f"{name}.py"
    if sources:
        sys.meta_path.insert(0, _FromSource(sources))


def status() -> dict[str, str]:
    """Each hot module's form as imported: ``compiled``, or ``pure: <why>``."""
    out: dict[str, str] = {}
    for name in HOT:
        module = sys.modules.get(f"{PACKAGE}.{name}")
        compiled = module is not None and not str(getattr(module, "__file__", "")).endswith(".py")
        out[name] = "compiled" if compiled else f"pure: {_PURE_REASONS.get(name, 'not loaded')}"
    return out
