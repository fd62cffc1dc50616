"""``cython.dataclasses`` for plain Python: the standard library's dataclass."""

from __future__ import annotations

import dataclasses as _stdlib
from collections.abc import Callable
from typing import TypeVar, dataclass_transform

__all__ = ["dataclass"]

T = TypeVar("T")


@dataclass_transform(frozen_default=False)
def dataclass(*, frozen: bool = False) -> Callable[[type[T]], type[T]]:
    """Compiled: an extension-type dataclass.  Here: a slotted ``dataclasses.dataclass``.

    ``slots=True`` gives what the extension type has: no ``__dict__``, and the
    ``__getstate__``/``__setstate__`` that let ``copy`` and ``pickle`` rebuild a
    frozen instance.
    """
    return _stdlib.dataclass(frozen=frozen, slots=True)
