"""The collector's state directory: its configuration, identity and provider certificate.

Theory of operation
-------------------
``starwrs collector init`` writes, in the collector's own state directory (never the
provider's)::

    collector.json        the configuration below
    collector-key.pem     the signing key (0600)
    collector.pem         its self-signed certificate: give it to the provider, who
                          enrolls it (``starwrs admin collector enroll ENTPID CERT``)
    collector.csr         the same as a certificate request, for a provider that
                          prefers to issue the certificate
    provider.pem          the provider's certificate: batches are encrypted to it
    smtp-ca.pem           (optional) the CA that the SMTP server's TLS certificate
                          must chain to; without it the system's trust store
    web-ca.pem            (optional, the network path) the same for the provider's
                          web tier
    spool.db              the spool (:mod:`starwrs.collector.spool`)

:class:`Config` is ``collector.json``; :func:`load` reads the directory and checks
everything once, so a mistake is one line before anything is read or sent.

A collector sends by one of two paths: **e-mail** (``smtp``: the relay, or the
harvest's own listener) or **the network** (``url``: the provider's web tier, with
``user``, the collector's own logon -- :mod:`starwrs.collector.network`).  The batch
is the same sealed e-mail either way (``to`` is its recipient).  Passwords come from
the environment, never from a file of ours: ``STARWRS_COLLECTOR_SMTP_PASSWORD`` for
a relay that wants one, ``STARWRS_COLLECTOR_PASSWORD`` for the web logon.
"""

from __future__ import annotations

import json
import os
import re
import zoneinfo
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starwrs.collector import identity
from starwrs.collector.readers import FORMATS

__all__ = ["CONFIG_FILE", "Config", "ConfigError", "Loaded", "load", "parse_hostport"]

CONFIG_FILE = "collector.json"
KEY_FILE = "collector-key.pem"
CERT_FILE = "collector.pem"
CSR_FILE = "collector.csr"
PROVIDER_FILE = "provider.pem"
SMTP_CA_FILE = "smtp-ca.pem"
WEB_CA_FILE = "web-ca.pem"
PASSWORD_ENV = "STARWRS_COLLECTOR_SMTP_PASSWORD"  # noqa: S105 - a variable name
WEB_PASSWORD_ENV = "STARWRS_COLLECTOR_PASSWORD"  # noqa: S105 - a variable name
_USER = re.compile(r"^[0-9A-Za-z._-]{1,20}$")

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
_ENTP = re.compile(r"^[0-9A-Za-z]{1,12}$")
TLS_MODES = ("starttls", "tls", "none")


class ConfigError(Exception):
    """The state directory or an option is not usable (one line)."""


def parse_hostport(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too).

    Raises:
        ConfigError: not that.
    """
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{text!r} is not HOST:PORT (e.g. smtp.example.com:587)")
    return host, int(port)


@dataclass(frozen=True, slots=True)
class Config:
    """``collector.json``."""

    enterprise: str
    name: str
    sender: str  # MAIL FROM and From:
    to: str  # the provider's harvest mailbox
    smtp: str | None = None  # HOST:PORT of the relay (or of the harvest itself)
    tls: str = "starttls"
    smtp_user: str | None = None
    format: str = "auto"
    timezone: str | None = None
    batch_records: int = 5000
    batch_bytes: int = 4 * 1024 * 1024
    compress: bool = True  # gzip the records inside the signature (...cdr-batch+gzip)
    host: str = "-"
    url: str | None = None  # https://HOST:PORT of the provider's web tier
    user: str | None = None  # the collector's logon there

    @property
    def path(self) -> str:
        """``network`` or ``e-mail``: how batches go."""
        return "network" if self.url else "e-mail"

    @property
    def destination(self) -> str:
        """Where batches go, for people."""
        if self.url:
            return f"{self.url} as {self.user}"
        return f"{self.to} via {self.smtp} ({self.tls})"

    def check(self) -> None:
        """Raises ConfigError for a value that cannot work."""
        if not _ENTP.match(self.enterprise):
            raise ConfigError(f"enterprise {self.enterprise!r} is not 1-12 letters or digits")
        if not self.name or len(self.name) > 64 or not self.name.isprintable():
            raise ConfigError("a collector name is 1-64 printable characters")
        for what, address in (("--from", self.sender), ("--to", self.to)):
            if not _ADDRESS.match(address) or not address.isascii():
                raise ConfigError(f"{what} {address!r} is not an e-mail address")
        if self.url is None:
            if self.smtp is None:
                raise ConfigError("give --smtp HOST:PORT (e-mail) or --url https://... (network)")
            parse_hostport(self.smtp)
        else:
            parts = urlsplit(self.url)
            try:
                parts.port  # noqa: B018 - raises for a bad port
            except ValueError:
                raise ConfigError(f"--url {self.url!r} has a bad port") from None
            if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
                raise ConfigError(f"--url {self.url!r} is not https://HOST[:PORT]")
            if self.user is None or not _USER.match(self.user):
                raise ConfigError("the network path needs --user USERID (1-20 of [0-9A-Za-z._-])")
            if self.smtp is not None:
                parse_hostport(self.smtp)
        if self.tls not in TLS_MODES:
            raise ConfigError(f"--tls must be one of {', '.join(TLS_MODES)}")
        if self.format != "auto" and self.format not in FORMATS:
            raise ConfigError(f"--format must be auto or one of {', '.join(FORMATS)}")
        if self.timezone is not None:
            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ConfigError(f"--tz {self.timezone!r} is not an IANA time zone") from None
        if not 1 <= self.batch_records <= 1_000_000:
            raise ConfigError("--batch-records must be between 1 and 1000000")
        if not 1024 <= self.batch_bytes <= 64 * 1024 * 1024:
            raise ConfigError("--batch-bytes must be between 1 KiB and 64 MiB")
        if not isinstance(self.compress, bool):
            raise ConfigError("compress must be true or false")

    def save(self, state: Path) -> None:
        """Write ``collector.json`` atomically."""
        data = json.dumps(asdict(self), indent=2, sort_keys=True).encode()
        identity.write_atomic(state / CONFIG_FILE, data, 0o600)


@dataclass(frozen=True, slots=True)
class Loaded:
    """A collector state directory, read and checked."""

    state: Path
    config: Config
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    provider: x509.Certificate
    smtp_ca: Path | None
    web_ca: Path | None = None

    @property
    def password(self) -> str | None:
        """The SMTP password from the environment, if any."""
        return os.environ.get(PASSWORD_ENV)

    @property
    def web_password(self) -> str | None:
        """The web logon's password from the environment, if any."""
        return os.environ.get(WEB_PASSWORD_ENV)


def load(state: Path) -> Loaded:
    """Read and check a collector state directory.

    Raises:
        ConfigError: not initialised, or something in it is unusable.
    """
    path = state / CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{state} is not a collector state directory (run starwrs collector init)"
        ) from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from None
    known = {f.name for f in fields(Config)}
    if not isinstance(data, dict) or not {"enterprise", "name", "sender", "to"} <= set(data):
        raise ConfigError(f"{path} is missing settings; run starwrs collector init again")
    try:
        config = Config(**{k: v for k, v in data.items() if k in known})
    except TypeError as err:
        raise ConfigError(f"{path}: {err}") from None
    config.check()
    try:
        key = identity.load_key(state / KEY_FILE)
        cert = identity.load_certificate(state / CERT_FILE)
        provider = identity.load_certificate(state / PROVIDER_FILE)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read the collector's keys in {state}: {err}") from None
    if not isinstance(provider.public_key(), rsa.RSAPublicKey):
        raise ConfigError("the provider certificate must have an RSA key (S/MIME key transport)")
    smtp_ca, web_ca = state / SMTP_CA_FILE, state / WEB_CA_FILE
    return Loaded(
        state,
        config,
        key,
        cert,
        provider,
        smtp_ca if smtp_ca.exists() else None,
        web_ca if web_ca.exists() else None,
    )
