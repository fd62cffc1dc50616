"""The deployment's own certificate authority and the TLS contexts built on it.

Theory of operation
-------------------
The seed's DMZ web server decrypts the customer's request and "re-encrypts" it
for the dispatcher, which does the same for the proxy (PROTOCOL.md section 1).
Here every one of those hops is TLS, and the internal ones are *mutual* TLS
with certificates from a CA that belongs to this deployment alone:

* :func:`ensure_pki` runs once at start (``starwrs serve``, before the server
  processes are spawned) and makes, in the state directory::

      ca.pem, ca-key.pem               the deployment CA (ECDSA P-256, 10 years)
      server.pem, server-key.pem       the web server's HTTPS certificate
                                       (localhost, 127.0.0.1, ::1 + given hosts)
      internal/<name>.pem, -key.pem    one per service: web, dispatcher, oe, rm,
                                       rs, inbox, dss, admin (DNS name = service
                                       name; serverAuth + clientAuth)

  Keys are written 0600 (the directory 0700), every file atomically (temp file
  + rename).  A second call reuses what is there; it re-issues a leaf that is
  missing, unreadable, not issued by the current CA, not matching its key,
  expiring within :data:`RENEW_BEFORE`, or (for the server certificate) missing
  a requested host name.  A CA that is missing or expiring is re-made, and with
  it every leaf -- clients then need the new ``ca.pem``.
* The web server may use an operator's certificate and key instead
  (``server_cert``/``server_key``); then no server certificate is generated.
* Identity on internal hops is the *service name*: a client connects with
  ``server_hostname=<peer service>`` (e.g. ``"dispatcher"``), so hostname
  checking proves which service answered wherever it runs; the server learns
  the client's service from its certificate (:func:`peer_service_name`).
* Every context is a stdlib :class:`ssl.SSLContext` (what :class:`trio.SSLStream`
  takes): TLS 1.2 minimum (1.3 preferred by OpenSSL), Mozilla's "intermediate"
  cipher list for TLS 1.2 (the TLS 1.3 suites are OpenSSL's defaults, which are
  the same list), no compression, no renegotiation.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA_LIFETIME",
    "LEAF_LIFETIME",
    "MOZILLA_INTERMEDIATE_CIPHERS",
    "RENEW_BEFORE",
    "SERVICE_NAMES",
    "Pki",
    "client_context_for_ca",
    "ensure_pki",
    "load_pki",
    "peer_service_name",
    "write_atomic",
    "write_certificate",
    "write_key",
]

#: The services that talk to each other over mutual TLS; ``admin`` is the
#: operator tools' client identity (order entry takes admin requests only from it).
SERVICE_NAMES: tuple[str, ...] = (
    "web",
    "dispatcher",
    "oe",
    "rm",
    "rs",
    "arbitrator",
    "inbox",
    "dss",
    "harvest",
    "admin",
)
#: Names the web server's certificate always covers.
DEFAULT_SERVER_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")

CA_LIFETIME = dt.timedelta(days=3650)
LEAF_LIFETIME = dt.timedelta(days=365)
#: A certificate with less than this left is replaced by :func:`ensure_pki`.
RENEW_BEFORE = dt.timedelta(days=30)
_BACKDATE = dt.timedelta(minutes=5)  # tolerate clocks a little behind ours

#: Mozilla server-side TLS "intermediate" configuration, TLS 1.2 cipher suites.
MOZILLA_INTERMEDIATE_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-CHACHA20-POLY1305",
    ]
)


# -- TLS contexts -------------------------------------------------------------------


def _harden(ctx: ssl.SSLContext) -> ssl.SSLContext:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(MOZILLA_INTERMEDIATE_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return ctx


def client_context_for_ca(ca_path: Path | str | None) -> ssl.SSLContext:
    """A client context that verifies the web server (CLI, tests, benchmarks).

    Args:
        ca_path: the deployment's ``ca.pem`` (or an operator's CA bundle);
            None trusts the system's default CAs.

    Returns:
        A TLS client context with hostname checking and ALPN ``http/1.1``.
    """
    ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    if ca_path is None:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        ctx.load_verify_locations(cafile=str(ca_path))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def peer_service_name(peercert: Mapping[str, Any] | None) -> str | None:
    """The service an internal peer's certificate names.

    Args:
        peercert: ``SSLStream.getpeercert()`` after the handshake.

    Returns:
        The certificate's only DNS name (e.g. ``"web"``), or None.
    """
    if not peercert:
        return None
    names = [value for kind, value in peercert.get("subjectAltName", ()) if kind == "DNS"]
    return names[0] if len(names) == 1 else None


@dataclass(frozen=True)
class Pki:
    """Where the deployment's certificates are, and the contexts made from them.

    Attributes:
        ca_cert: the CA certificate (``ca.pem``), the trust anchor of every hop.
        server_cert: the web server's certificate chain (PEM).
        server_key: its private key (PEM).
        internal: service name -> (certificate, key) for mutual TLS.
    """

    ca_cert: Path
    server_cert: Path
    server_key: Path
    internal: Mapping[str, tuple[Path, Path]]

    def _service(self, name: str) -> tuple[Path, Path]:
        try:
            return self.internal[name]
        except KeyError:
            raise ValueError(f"no internal certificate for service {name!r}") from None

    def web_server_context(self) -> ssl.SSLContext:
        """The public HTTPS context of the web server (no client certificates).

        Returns:
            A TLS server context offering ALPN ``http/1.1``.
        """
        ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
        ctx.load_cert_chain(str(self.server_cert), str(self.server_key))
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def internal_server_context(self, name: str) -> ssl.SSLContext:
        """The server side of an internal hop: requires a client certificate from the CA.

        Args:
            name: this service (its certificate is presented).

        Returns:
            A TLS server context with ``CERT_REQUIRED``.

        Raises:
            ValueError: no certificate for ``name``.
        """
        cert, key = self._service(name)
        ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
        ctx.load_cert_chain(str(cert), str(key))
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=str(self.ca_cert))
        return ctx

    def internal_client_context(self, name: str) -> ssl.SSLContext:
        """The client side of an internal hop: presents ``name``'s certificate and
        verifies the server against the CA.  Connect with
        ``server_hostname=<the peer's service name>``.

        Args:
            name: this service.

        Returns:
            A TLS client context.

        Raises:
            ValueError: no certificate for ``name``.
        """
        cert, key = self._service(name)
        ctx = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        ctx.load_verify_locations(cafile=str(self.ca_cert))
        ctx.load_cert_chain(str(cert), str(key))
        return ctx


# -- files --------------------------------------------------------------------------


def _paths(
    state_dir: Path,
    services: Iterable[str],
    server_cert: Path | str | None,
    server_key: Path | str | None,
) -> Pki:
    if (server_cert is None) != (server_key is None):
        raise ValueError("give both server_cert and server_key, or neither")
    internal = {
        name: (state_dir / "internal" / f"{name}.pem", state_dir / "internal" / f"{name}-key.pem")
        for name in services
    }
    return Pki(
        ca_cert=state_dir / "ca.pem",
        server_cert=Path(server_cert) if server_cert else state_dir / "server.pem",
        server_key=Path(server_key) if server_key else state_dir / "server-key.pem",
        internal=internal,
    )


def load_pki(
    state_dir: Path | str,
    *,
    services: Iterable[str] = SERVICE_NAMES,
    server_cert: Path | str | None = None,
    server_key: Path | str | None = None,
) -> Pki:
    """Find the files :func:`ensure_pki` made, without creating anything
    (for server processes started after it ran).

    Args:
        state_dir: the state directory.
        services: the services whose certificates are needed.
        server_cert: an operator's server certificate instead of ``server.pem``.
        server_key: its key.

    Returns:
        The :class:`Pki`.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: only one of ``server_cert``/``server_key`` given.
    """
    pki = _paths(Path(state_dir), services, server_cert, server_key)
    for path in [pki.ca_cert, pki.server_cert, pki.server_key]:
        if not path.is_file():
            raise FileNotFoundError(path)
    for cert, key in pki.internal.values():
        for path in (cert, key):
            if not path.is_file():
                raise FileNotFoundError(path)
    return pki


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write *path* whole or not at all: a temporary file in its folder (made 0700 when
    missing), fsync, rename.  Keys and certificates here and in the collector."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_key(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
    """Write a private key as unencrypted PKCS #8 PEM, mode 0600."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(path, pem, 0o600)


def write_certificate(path: Path, cert: x509.Certificate) -> None:
    """Write a certificate as PEM, mode 0644."""
    write_atomic(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _load_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, Any] | None:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if cert.public_key() != key.public_key():
        return None
    return cert, key


def _fresh(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now > RENEW_BEFORE


# -- issuing -------------------------------------------------------------------------


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "starwrs deployment"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _make_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    name = _name(f"starwrs CA {secrets.token_hex(4)}")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _san(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def _san_values(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    dns = ext.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
    return {*dns, *ips}


def _make_leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: list[str],
    usages: list[x509.ObjectIdentifier],
    now: dt.datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(min(now + LEAF_LIFETIME, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(_san(names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _ensure_leaf(
    cert_path: Path,
    key_path: Path,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    names: list[str],
    usages: list[x509.ObjectIdentifier],
    now: dt.datetime,
) -> None:
    pair = _load_pair(cert_path, key_path)
    if pair is not None:
        cert = pair[0]
        try:
            cert.verify_directly_issued_by(ca[0])
            issued_here = True
        except (ValueError, TypeError, InvalidSignature):
            issued_here = False
        if issued_here and _fresh(cert, now) and set(names) <= _san_values(cert):
            return
    cert, key = _make_leaf(ca[0], ca[1], names, usages, now)
    write_key(key_path, key)
    write_certificate(cert_path, cert)


def ensure_pki(
    state_dir: Path | str,
    *,
    hostnames: Iterable[str] = (),
    services: Iterable[str] = SERVICE_NAMES,
    server_cert: Path | str | None = None,
    server_key: Path | str | None = None,
    now: dt.datetime | None = None,
) -> Pki:
    """Create or refresh the deployment's CA and certificates (idempotent).

    Args:
        state_dir: the state directory (created 0700 if missing).
        hostnames: extra names (DNS or IP) for the web server's certificate,
            besides localhost, 127.0.0.1 and ::1.
        services: the services that get an internal certificate.
        server_cert: an operator's certificate chain for the web server; with
            ``server_key``, used as is and nothing is generated for it.
        server_key: the operator's key.
        now: the current time (tests); default: the system clock.

    Returns:
        The :class:`Pki`.

    Raises:
        ValueError: only one of ``server_cert``/``server_key`` given.
        OSError: the state directory cannot be written.
    """
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = now or dt.datetime.now(dt.UTC)
    pki = _paths(state, services, server_cert, server_key)
    ca_key_path = state / "ca-key.pem"

    pair = _load_pair(pki.ca_cert, ca_key_path)
    if pair is None or not _fresh(pair[0], now):
        ca_cert, ca_key = _make_ca(now)
        write_key(ca_key_path, ca_key)
        write_certificate(pki.ca_cert, ca_cert)
    else:
        ca_cert, ca_key = pair
    ca = (ca_cert, ca_key)

    if server_cert is None:
        names = list(dict.fromkeys([*hostnames, *DEFAULT_SERVER_NAMES]))
        _ensure_leaf(
            pki.server_cert, pki.server_key, ca, names, [ExtendedKeyUsageOID.SERVER_AUTH], now
        )
    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    for name, (cert_path, key_path) in pki.internal.items():
        _ensure_leaf(cert_path, key_path, ca, [name], both, now)
    return pki
