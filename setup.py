"""Build hook: compile the grammar's hot modules with Cython, when it can.

Everything else about the package lives in pyproject.toml.  The five modules that
parse and validate every metadata message (``HOT`` below) are plain Python that
Cython compiles as it is -- there is no second source to keep in step.  A build
that cannot compile them (no C compiler, ``STARWRS_PURE=1`` set) installs the same
package without them, and the pure-Python modules run instead: slower, identical.

Beside the compiled modules the build writes ``_speedups.json``, the SHA-256 of
each source it compiled (the ``.py`` and its optional ``.pxd`` of Cython type
declarations).  At import, :mod:`starwrs.grammar._speedups` loads a
compiled module only while its source still has that hash, so an edited checkout
never runs stale compiled code (``pip install -e .`` again to rebuild).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def _extensions() -> list[Extension]:
    if os.environ.get("STARWRS_PURE"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    modules = [Extension(f"starwrs.grammar.{name}", [f"grammar/{name}.py"]) for name in HOT]
    return cythonize(  # type: ignore[no-any-return]
        modules,
        build_dir="build/cython",
        include_path=[_stage_declarations()],
        compiler_directives={"language_level": 3, "binding": True},
        quiet=True,
    )


def _load_speedups() -> Any:
    """grammar/_speedups.py, loaded by path (the package is not importable yet)."""
    path = ROOT / "grammar" / "_speedups.py"
    spec = importlib.util.spec_from_file_location("_starwrs_speedups", path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stage_declarations() -> str:
    """Put the ``grammar/*.pxd`` type declarations where Cython looks for them.

    Cython finds the augmenting ``.pxd`` of ``starwrs.grammar.X`` as
    ``starwrs/grammar/X.pxd`` on its include path; the repository keeps it beside
    ``grammar/X.py`` (the top-level folders *are* the package, see pyproject.toml).
    """
    stage = ROOT / "build" / "cython" / "include"
    target = stage / "starwrs" / "grammar"
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.pxd"):
        old.unlink()
    for declaration in (ROOT / "grammar").glob("*.pxd"):
        (target / declaration.name).write_bytes(declaration.read_bytes())
    return str(stage)


#: which modules to compile and how their sources are hashed: one definition,
#: shared with the import-time guard
SPEEDUPS = _load_speedups()
HOT: tuple[str, ...] = SPEEDUPS.HOT


class OptionalBuildExt(build_ext):
    """Compile what can be compiled; a failure leaves the pure-Python modules in charge."""

    def run(self) -> None:
        self.built: dict[str, str] = {}
        try:
            super().run()
        except Exception as err:  # no compiler at all: say so, install pure Python
            print(f"starwrs: grammar speedups not built ({err}); using pure Python")
        self._write_manifest()

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as err:
            print(f"starwrs: {ext.name} not compiled ({err}); using pure Python")
            return
        name = ext.name.rsplit(".", 1)[1]
        self.built[name] = SPEEDUPS.source_digest(ROOT / "grammar", name)

    def _write_manifest(self) -> None:
        if not self.extensions:
            return
        target = Path(self.get_ext_fullpath(self.extensions[0].name)).parent
        target.mkdir(parents=True, exist_ok=True)
        manifest = target / "_speedups.json"
        manifest.write_text(json.dumps({"compiled": self.built}, indent=1, sort_keys=True) + "\n")


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
