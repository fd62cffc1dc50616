"""The deployment: where every process listens and the limits they share.

Theory of operation
-------------------
``starwrs serve`` writes one ``STATE/deployment.json`` before it starts any process,
and every process reads it: the web server's public address, each dispatcher's and
each proxy's internal address (the dispatcher's routing table), and the timeouts
and sizes of PROTOCOL.md.  Processes learn nothing from each other at run time, so
any one of them can be restarted alone.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["Address", "Deployment", "Limits", "free_port", "pid_alive", "process_label"]

#: target codes of the application proxies (PROTOCOL.md section 2), in start order
PROXY_TARGETS = ("OE", "RM", "RS", "INBX", "DSS")


@dataclass(frozen=True, slots=True)
class Address:
    """A host and TCP port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Limits:
    """Sizes and timeouts, with the defaults of PROTOCOL.md and issue 4."""

    #: largest frame a process accepts (7005 above)
    max_frame_size: int = 16 * 1024 * 1024
    #: largest non-bulk HTTP body (413 above)
    max_body: int = 1024 * 1024
    #: largest HTTP request head (431 above)
    max_header: int = 16 * 1024
    #: seconds a client has to send a whole request head (slow senders are cut off)
    head_timeout: float = 10.0
    #: seconds to wait for the rest of a frame once it has started (7009 after)
    read_timeout: float = 30.0
    #: on internal hops a frame must in fact arrive within this many seconds of its
    #: first byte plus one second per ``min_frame_rate`` bytes it declares (never
    #: more than ``read_timeout``): senders write whole frames (7009 after)
    frame_timeout: float = 5.0
    #: bytes per second a started frame must arrive at, beyond ``frame_timeout``
    min_frame_rate: int = 1024 * 1024
    #: seconds the dispatcher waits for a proxy's answer (7007 after)
    proxy_timeout: float = 30.0
    #: seconds to connect to a proxy before it counts as down (7006)
    connect_timeout: float = 5.0
    #: concurrent connections a listener serves; more wait in the backlog
    max_connections: int = 512
    #: of those, connections one client address (IPv6: one /64) may hold at the web
    #: server; more from it are closed at once
    max_connections_per_source: int = 128
    #: seconds a request body always has, however small (the floor of its deadline)
    body_timeout: float = 10.0
    #: bytes per second a request body must average: its deadline grows by
    #: size / rate over ``body_timeout``
    body_min_rate: int = 64 * 1024
    #: session idle timeout, seconds
    session_idle: float = 15 * 60
    #: session absolute lifetime, seconds
    session_absolute: float = 12 * 3600
    #: async results kept after completion, seconds
    ticket_ttl: float = 3600.0


@dataclass(frozen=True, slots=True)
class Deployment:
    """Every address and limit of one running system."""

    state_dir: Path
    web: Address
    dispatchers: tuple[Address, ...]
    proxies: dict[str, Address] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    #: optional operator-given certificate and key for the web server
    web_cert: str | None = None
    web_key: str | None = None
    #: process label (``web``, ``dispatcher0``, ``oe``, ``serve``, ...) -> its
    #: Prometheus metrics listener, always on loopback (:mod:`starwrs.runtime.metrics`)
    metrics: dict[str, Address] = field(default_factory=dict)
    #: service name -> log level name (``DEBUG``, ``INFO``, ...); a service not
    #: named logs at ``INFO`` (:func:`starwrs.runtime.logs.level_for`)
    log_levels: dict[str, str] = field(default_factory=dict)
    #: outgoing mail relay ``HOST:PORT`` for the inbox's notifications; None: the
    #: Maildir ``STATE/mail/`` (``starwrs serve --smtp``)
    smtp: str | None = None
    #: the e-mail-to-pager gateway: a page goes to this address, ``{pin}`` and
    #: ``{type}`` replaced by the pager's PIN and type
    pager_gateway: str = "{pin}@pager.invalid"
    #: where the harvest's SMTP listener takes collectors' batches (``--harvest-smtp``);
    #: None: no listener
    harvest_smtp: Address | None = None
    #: the mailbox batches must be addressed to (``--harvest-mailbox``)
    harvest_mailbox: str = "harvest@localhost"

    @property
    def path(self) -> Path:
        """Where this deployment is written."""
        return self.state_dir / "deployment.json"

    def save(self) -> None:
        """Write ``STATE/deployment.json`` atomically."""
        data: dict[str, Any] = {
            "web": asdict(self.web),
            "dispatchers": [asdict(a) for a in self.dispatchers],
            "proxies": {k: asdict(v) for k, v in self.proxies.items()},
            "limits": asdict(self.limits),
            "web_cert": self.web_cert,
            "web_key": self.web_key,
            "metrics": {k: asdict(v) for k, v in self.metrics.items()},
            "log_levels": dict(self.log_levels),
            "smtp": self.smtp,
            "pager_gateway": self.pager_gateway,
            "harvest_smtp": asdict(self.harvest_smtp) if self.harvest_smtp else None,
            "harvest_mailbox": self.harvest_mailbox,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, state_dir: Path) -> Deployment:
        """Read ``STATE/deployment.json``."""
        data = json.loads((state_dir / "deployment.json").read_text(encoding="utf-8"))
        known = {f.name for f in fields(Limits)}
        limits = Limits(**{k: v for k, v in data.get("limits", {}).items() if k in known})
        return cls(
            state_dir=state_dir,
            web=Address(**data["web"]),
            dispatchers=tuple(Address(**a) for a in data["dispatchers"]),
            proxies={k: Address(**v) for k, v in data["proxies"].items()},
            limits=limits,
            web_cert=data.get("web_cert"),
            web_key=data.get("web_key"),
            metrics={k: Address(**v) for k, v in data.get("metrics", {}).items()},
            log_levels=_log_levels(data.get("log_levels", {})),
            smtp=data.get("smtp"),
            pager_gateway=data.get("pager_gateway") or "{pin}@pager.invalid",
            harvest_smtp=Address(**data["harvest_smtp"]) if data.get("harvest_smtp") else None,
            harvest_mailbox=data.get("harvest_mailbox") or "harvest@localhost",
        )


def _log_levels(data: Any) -> dict[str, str]:
    """``log_levels`` as read from deployment.json, checked (ValueError if wrong)."""
    if not isinstance(data, dict):
        raise ValueError("log_levels must be an object of service -> level")  # noqa: TRY004
    levels = logging.getLevelNamesMapping()
    for service, level in data.items():
        if not isinstance(level, str) or level.upper() not in levels:
            raise ValueError(f"log_levels: {level!r} for {service!r} is not a log level")
    return {str(k): str(v).upper() for k, v in data.items()}


def process_label(name: str, index: int = 0) -> str:
    """The label of one process of a service: ``dispatcher0``, ``dss1`` (partition 1), ``oe``."""
    if name == "dispatcher":
        return f"dispatcher{index}"
    if name == "dss":
        return f"dss{index + 1}"
    return name


#: where :func:`free_port` looks: below Linux's default ephemeral range (32768-60999),
#: from which the kernel picks the local port of every outgoing connection and of
#: every ``bind(0)``
_PORT_RANGE = (20000, 32767)


#: how long a port claim holds (choosing to binding takes seconds, a minute under load)
_CLAIM_TTL = 300.0


def _reserve(port: int) -> bool:
    """Claim *port* for this process among starwrs processes on this machine.

    A claim is a file ``<tmp>/starwrs-ports-<uid>/<port>`` holding the claimer's pid,
    made with ``O_EXCL``; a claim whose process is gone, or older than
    :data:`_CLAIM_TTL` (by then the listener is bound, and the bind check protects the
    port), is taken over.  Only other starwrs processes respect it -- they are the ones
    that choose ports this way.
    """
    folder = Path(tempfile.gettempdir()) / f"starwrs-ports-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return True  # no place for claims: the bind check alone
    claim = folder / str(port)
    for _ in range(2):
        try:
            fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            try:
                owner = int(claim.read_text() or "0")
                fresh = time.time() - claim.stat().st_mtime < _CLAIM_TTL
            except (OSError, ValueError):
                owner, fresh = 0, False
            if fresh and owner == os.getpid():
                return False  # ours already: this process chose it for something else
            if fresh and pid_alive(owner):
                return False
            claim.unlink(missing_ok=True)  # a dead claimer's: take it over
            continue
        except OSError:
            return True
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def pid_alive(pid: int | None) -> bool:
    """Whether process *pid* exists (one we may not signal counts as alive)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ephemeral_floor() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return _PORT_RANGE[1] + 1


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free a moment ago (for internal listeners).

    The port is drawn at random outside the kernel's ephemeral range: a port that
    ``bind(0)`` hands out can be taken, before our listener binds it, by any outgoing
    connection on the machine (two deployments starting side by side did exactly that);
    a port below the range is taken only by another listener that chose it.  And it is
    *reserved* for this process's life (:func:`_reserve`): ``starwrs serve`` chooses
    every port of a deployment before its processes bind them, seconds later, and a
    second deployment starting meanwhile chose one of them too (seen in CI).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    low, high = _PORT_RANGE[0], min(_PORT_RANGE[1], _ephemeral_floor() - 1)
    rng = random.SystemRandom()
    for _ in range(200) if high > low else ():
        port = rng.randint(low, high)
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        if _reserve(port):
            return port
    with socket.socket(family, socket.SOCK_STREAM) as sock:  # fall back to the kernel
        sock.bind((host, 0))
        chosen: int = sock.getsockname()[1]
        return chosen
