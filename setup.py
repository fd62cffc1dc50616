"""Build hook: compile the grammar's hot modules with Cython, when it can.

Everything else about the package lives in pyproject.toml.  The five modules that
parse and validate every metadata message (``HOT`` below) are plain Python that
Cython compiles as it is -- there is no second source to keep in step.  A build
that cannot compile them (no C compiler, ``STARWRS_PURE=1`` set) installs the same
package without them, and the pure-Python modules run instead: slower, identical.

Beside the compiled modules the build writes ``_speedups.json``, the SHA-256 of
each source it compiled.  At import, :mod:`starwrs.grammar._speedups` loads a
compiled module only while its source still has that hash, so an edited checkout
never runs stale compiled code (``pip install -e .`` again to rebuild).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
#: the grammar modules compiled, in dependency order
HOT = ("model", "_build", "_scanner", "codecs", "typed")


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
        compiler_directives={"language_level": 3, "binding": True},
        quiet=True,
    )


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
        source = ROOT / "grammar" / f"{name}.py"
        self.built[name] = hashlib.sha256(source.read_bytes()).hexdigest()

    def _write_manifest(self) -> None:
        if not self.extensions:
            return
        target = Path(self.get_ext_fullpath(self.extensions[0].name)).parent
        target.mkdir(parents=True, exist_ok=True)
        manifest = target / "_speedups.json"
        manifest.write_text(json.dumps({"compiled": self.built}, indent=1, sort_keys=True) + "\n")


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
