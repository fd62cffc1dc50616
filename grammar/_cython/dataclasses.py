"""``cython.dataclasses`` for plain Python: the standard library's dataclass, slotted."""

from __future__ import annotations

import dataclasses as _stdlib
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

__all__ = ["dataclass"]

T = TypeVar("T")


@dataclass_transform(frozen_default=False)
def dataclass(*, frozen: bool = False) -> Callable[[type[T]], type[T]]:
    """Compiled: an extension-type dataclass.  Here: a slotted ``dataclasses.dataclass``.

    ``slots=True`` gives what the extension type has: no ``__dict__``, and the
    ``__getstate__``/``__setstate__`` that let ``copy`` and ``pickle`` rebuild a
    frozen instance.  A frozen class also gets a faster ``__init__`` (see
    :func:`_slot_init`).
    """

    def wrap(cls: type[T]) -> type[T]:
        new = _stdlib.dataclass(frozen=frozen, slots=True)(cls)
        if frozen:
            _slot_init(new)
        return new

    return wrap


def _slot_init(cls: type[Any]) -> None:
    """Give frozen dataclass *cls* an ``__init__`` that fills its slots directly.

    The generated one assigns through ``object.__setattr__`` per field, which is
    most of what building a parse tree costs in plain Python; the slot
    descriptors' own setters do the same thing without the lookup.  Same
    signature, same behaviour (no field here has a default or a post-init hook).
    """
    fields = _stdlib.fields(cls)
    if any(
        f.default is not _stdlib.MISSING or f.default_factory is not _stdlib.MISSING for f in fields
    ) or hasattr(cls, "__post_init__"):
        return  # keep the generated one
    names = [f.name for f in fields]
    setters = {f"_set_{name}": vars(cls)[name].__set__ for name in names}
    lines = [f"def __init__(self, {', '.join(names)}):"]
    lines += [f"    _set_{name}(self, {name})" for name in names] or ["    pass"]
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), setters, namespace)  # noqa: S102 - built from field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init
