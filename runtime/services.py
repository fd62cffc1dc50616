"""Which services make up a deployment, and where each one's entry point lives.

A service entry point is ``async def f(deployment, *, index=0, task_status)``: it
binds its listener, calls ``task_status.started()``, and serves until cancelled
(docs/runtime.md).  Proxies map a frame target (``OE``) to a service name (``oe``).
A *partitioned* service runs one process per ODS partition: the DSS of partition
``k`` is process index ``k - 1`` with target ``DSS<k>`` (:func:`proxy_targets`).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = [
    "PARTITIONED",
    "PROXIES",
    "SERVICES",
    "entry_point",
    "installed_proxies",
    "installed_services",
    "instance_of",
    "proxy_targets",
]

#: service name -> "module:function"
SERVICES: dict[str, str] = {
    "web": "starwrs.web.server:serve_web",
    "dispatcher": "starwrs.dispatcher.server:serve_dispatcher",
    "oe": "starwrs.proxies.oe.server:serve_oe",
    "rm": "starwrs.proxies.rm.server:serve_rm",
    "rs": "starwrs.proxies.rs.server:serve_rs",
    "inbox": "starwrs.proxies.inbox.server:serve_inbox",
    "dss": "starwrs.proxies.dss.server:serve_dss",
    "arbitrator": "starwrs.proxies.arbitrator.server:serve_arbitrator",
    "harvest": "starwrs.proxies.harvest.server:serve_harvest",
}

#: frame target -> proxy service name, in start order
PROXIES: dict[str, str] = {
    "OE": "oe",
    "RM": "rm",
    "RS": "rs",
    "INBX": "inbox",
    "DSS": "dss",
    "ARB": "arbitrator",
    "HARV": "harvest",
}
#: services with one process per ODS partition
PARTITIONED: frozenset[str] = frozenset({"dss"})


def entry_point(name: str) -> Callable[..., Awaitable[Any]]:
    """Import and return the entry point of service *name*.

    Raises:
        KeyError: no such service.
        ModuleNotFoundError: the service is not built (yet).
    """
    module_name, func_name = SERVICES[name].split(":")
    func: Callable[..., Awaitable[Any]] = getattr(importlib.import_module(module_name), func_name)
    return func


def installed_proxies() -> dict[str, str]:
    """The proxies whose code exists in this installation (target -> service)."""
    found: dict[str, str] = {}
    for target, name in PROXIES.items():
        try:
            entry_point(name)
        except ModuleNotFoundError:
            continue
        found[target] = name
    return found


def installed_services() -> list[str]:
    """The services whose code exists in this installation, sorted."""
    found = []
    for name in SERVICES:
        try:
            entry_point(name)
        except ModuleNotFoundError:
            continue
        found.append(name)
    return sorted(found)


def proxy_targets(partitions: int) -> list[str]:
    """The frame target of every proxy process, in start order (``DSS1``, ``DSS2``...)."""
    targets: list[str] = []
    for target, name in installed_proxies().items():
        if name in PARTITIONED:
            targets += [f"{target}{k}" for k in range(1, partitions + 1)]
        else:
            targets.append(target)
    return targets


def instance_of(target: str) -> tuple[str, int]:
    """The (service, process index) serving frame *target*: ``DSS2`` -> ``("dss", 1)``.

    Raises:
        KeyError: no service serves *target*.
    """
    if target in PROXIES:
        return PROXIES[target], 0
    stem = target.rstrip("0123456789")
    number = target[len(stem) :]
    name = PROXIES.get(stem)
    if name in PARTITIONED and number and int(number) >= 1:
        return name, int(number) - 1
    raise KeyError(target)
