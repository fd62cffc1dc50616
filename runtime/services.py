"""Which services make up a deployment, and where each one's entry point lives.

A service entry point is ``async def f(deployment, *, index=0, task_status)``: it
binds its listener, calls ``task_status.started()``, and serves until cancelled
(docs/runtime.md).  Proxies map a frame target (``OE``) to a service name (``oe``).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["PROXIES", "SERVICES", "entry_point", "installed_proxies", "installed_services"]

#: service name -> "module:function"
SERVICES: dict[str, str] = {
    "web": "starwrs.web.server:serve_web",
    "dispatcher": "starwrs.dispatcher.server:serve_dispatcher",
    "oe": "starwrs.proxies.oe.server:serve_oe",
    "rm": "starwrs.proxies.rm.server:serve_rm",
    "rs": "starwrs.proxies.rs.server:serve_rs",
    "inbox": "starwrs.proxies.inbox.server:serve_inbox",
    "dss": "starwrs.proxies.dss.server:serve_dss",
}

#: frame target -> proxy service name, in start order
PROXIES: dict[str, str] = {"OE": "oe", "RM": "rm", "RS": "rs", "INBX": "inbox", "DSS": "dss"}


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
