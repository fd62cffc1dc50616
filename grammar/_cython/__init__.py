"""What ``import cython`` gives :mod:`starwrs.grammar.model` where Cython is absent.

Cython compiles ``model.py`` with ``@cython.cclass`` + ``@cython.dataclasses.dataclass``
into extension types whose instances cost a third as much to create; that is most
of what parsing an ARD builds.  Run as plain Python (``STARWRS_PURE=1``, or an
install without a C compiler) the same decorators must make ordinary frozen
dataclasses, slotted as the extension types are.  This package does that (Cython's
own ``Shadow`` module would too, but without slots), and is what the type checker
reads.  Only the names ``model.py`` uses are here.
"""

from __future__ import annotations

from typing import TypeVar

from starwrs.grammar._cython import dataclasses

__all__ = ["cclass", "compiled", "dataclasses"]

#: what ``cython.compiled`` says when the module runs as plain Python
compiled = False

T = TypeVar("T")


def cclass(cls: T) -> T:
    """Compiled: make *cls* an extension type.  Here: leave it as it is."""
    return cls
