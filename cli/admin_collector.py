"""``starwrs admin collector``: which collectors the harvest takes batches from.

::

    starwrs admin --state DIR collector enroll ENTPID CERT [--corp CORP] [--out FILE]
    starwrs admin --state DIR collector revoke FINGERPRINT|CERT [--reason TEXT]
    starwrs admin --state DIR collector list [ENTPID]
    starwrs admin --state DIR collector audit [--last N] [--batch ID]
    starwrs admin --state DIR collector provider-cert      # the certificate to encrypt to

``enroll`` pins a collector's certificate (``collector.pem`` from ``starwrs collector
init``) to an enterprise and the corp its calls are loaded for: the harvest verifies
every batch against the enrolled certificates and loads it into that corp's partition.
``--corp`` may be left out when the enterprise has one corp in order entry.  CERT may
also be the collector's certificate *request* (``collector.csr``): the deployment CA
then issues the certificate (written to ``--out``, to be installed with ``starwrs
collector init --force --cert FILE``) and that is enrolled.  ``revoke`` takes a
fingerprint (or its first 8+ hex digits) or the certificate; a revoked collector's
batches are refused as such (its row stays, for the audit trail).  Both write the
harvest's store ``STATE/harvest/harvest.db`` directly, so they work whether or not the
system is running; the next message sees the change.

``provider-cert`` prints the harvest's S/MIME certificate (made on first use, issued by
the deployment CA) for the collectors' ``--provider-cert``, with where the harvest
listens.  Exit 0 done; 1 nothing matched; 2 a usage mistake.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import trio

__all__ = ["register"]

_ENTP = re.compile(r"[A-Za-z0-9]{1,12}")
_HEX = re.compile(r"[0-9a-fA-F:]{8,95}")


def register(actions: Any) -> None:
    """Add ``collector enroll|revoke|list|audit|provider-cert`` to ``starwrs admin``."""
    parser = actions.add_parser("collector", help="enroll or revoke a customer's CDR collector")
    steps = parser.add_subparsers(dest="collector_action", required=True)
    enroll = steps.add_parser("enroll", help="trust a collector's certificate for an enterprise")
    enroll.add_argument("entp", metavar="ENTPID", type=_entp)
    enroll.add_argument("cert", metavar="CERT", type=Path, help="collector.pem (or .csr)")
    enroll.add_argument("--corp", type=_entp, help="the corp its calls belong to")
    enroll.add_argument("--out", type=Path, help="where a certificate issued for a CSR goes")
    revoke = steps.add_parser("revoke", help="stop taking a collector's batches")
    revoke.add_argument("which", metavar="FINGERPRINT|CERT")
    revoke.add_argument("--reason", default="revoked by the operator")
    listing = steps.add_parser("list", help="enrolled collectors")
    listing.add_argument("entp", metavar="ENTPID", nargs="?", type=_entp)
    audit = steps.add_parser("audit", help="the harvest's audit trail")
    audit.add_argument("--last", type=int, default=20, metavar="N")
    audit.add_argument("--batch", metavar="ID")
    steps.add_parser("provider-cert", help="print the harvest's S/MIME certificate")
    for sub in (enroll, revoke, listing, audit, steps.choices["provider-cert"]):
        sub.set_defaults(func=run)


def _entp(text: str) -> str:
    if not _ENTP.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an id (1-12 letters or digits)")
    return text


def _fail(message: str, status: int = 2) -> int:
    print(f"starwrs admin collector: {message}", file=sys.stderr)
    return status


def _corps(state: Path, entp: str) -> list[str] | None:
    """The enterprise's corps in order entry (None: no order entry to ask)."""
    path = state / "oe.db"
    if not path.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = con.execute(
                "SELECT corp_id FROM corps WHERE entp_id = ? ORDER BY corp_id", (entp,)
            ).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return [r[0] for r in rows]


def _mailbox(state: Path) -> tuple[str, str]:
    from starwrs.runtime.config import Deployment

    try:
        deployment = Deployment.load(state.resolve())
    except (OSError, KeyError, ValueError, TypeError):
        return "harvest@localhost", "(not yet started)"
    where = str(deployment.harvest_smtp) if deployment.harvest_smtp else "(no listener)"
    return deployment.harvest_mailbox, where


def _issue(state: Path, data: bytes) -> Any:
    """A certificate for the collector's CSR, issued by the deployment CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID
    from starwrs.collector.identity import COLLECTOR_LIFETIME, load_certificate

    csr = x509.load_pem_x509_csr(data)
    if not csr.is_signature_valid:
        raise ValueError("the certificate request's signature does not verify")
    ca = load_certificate(state / "ca.pem")
    ca_key = serialization.load_pem_private_key((state / "ca-key.pem").read_bytes(), None)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + COLLECTOR_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
    )
    for ext in csr.extensions:
        if isinstance(ext.value, x509.SubjectAlternativeName):
            builder = builder.add_extension(ext.value, ext.critical)
    return builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]


def run(args: argparse.Namespace) -> int:
    """Dispatch ``starwrs admin collector ...``."""
    state: Path = args.state
    if not state.is_dir():
        return _fail(f"{state} is not a state directory")
    action = args.collector_action
    if action == "provider-cert":
        return _provider_cert(state)
    if action == "enroll":
        try:
            args.cert_data = args.cert.read_bytes()
        except OSError as err:
            return _fail(f"cannot read {args.cert}: {err.strerror or err}")
    if action == "revoke":
        from starwrs.collector.identity import fingerprint, load_certificates

        path = Path(args.which)
        if path.is_file():
            try:
                args.which = fingerprint(load_certificates(path.read_bytes())[0])
            except (OSError, ValueError) as err:
                return _fail(f"{path} is not a certificate: {err}")
        elif not _HEX.fullmatch(args.which):
            return _fail(f"{args.which!r} is neither a certificate file nor a fingerprint")
    return trio.run(_run, state, args)


def _provider_cert(state: Path) -> int:
    from cryptography.hazmat.primitives import serialization
    from starwrs.collector.identity import fingerprint
    from starwrs.proxies.harvest.server import ensure_identity, identity_paths

    mailbox, where = _mailbox(state)
    try:
        cert, _key = ensure_identity(state, mailbox)
    except (OSError, ValueError) as err:
        return _fail(f"cannot make the harvest's certificate: {err}")
    print(cert.public_bytes(serialization.Encoding.PEM).decode(), end="")
    print(f"# {identity_paths(state)[0]} sha256 {fingerprint(cert)}", file=sys.stderr)
    print(f"# collectors send to {mailbox} at {where} (STARTTLS)", file=sys.stderr)
    return 0


async def _run(state: Path, args: argparse.Namespace) -> int:
    from starwrs.proxies.harvest.store import open_harvest_store

    async with open_harvest_store(state) as store:
        if args.collector_action == "enroll":
            return await _enroll(state, store, args)
        if args.collector_action == "revoke":
            return await _revoke(store, args)
        if args.collector_action == "list":
            return await _list(store, args)
        return await _audit(store, args)


async def _enroll(state: Path, store: Any, args: argparse.Namespace) -> int:
    from starwrs.collector.identity import load_certificates, write_certificate

    data: bytes = args.cert_data
    corps = _corps(state, args.entp)
    if corps is not None and not corps:
        return _fail(f"enterprise {args.entp} is not in order entry", 1)
    corp = args.corp
    if corp is None:
        if corps is None or len(corps) != 1:
            known = f" (its corps: {', '.join(corps)})" if corps else ""
            return _fail(f"give --corp: which corp's calls does this collector send{known}")
        corp = corps[0]
    elif corps is not None and corp not in corps:
        return _fail(f"corp {corp} is not a corp of enterprise {args.entp}", 1)
    try:
        if b"CERTIFICATE REQUEST" in data:
            cert = _issue(state, data)
            out: Path = args.out or args.cert.with_suffix(".pem")
            write_certificate(out, cert)
            print(f"issued {out} (install it: starwrs collector init --force --cert {out})")
        else:
            cert = load_certificates(data)[0]
    except (OSError, ValueError) as err:
        return _fail(f"{args.cert} is not a certificate or request: {err}")
    fp = await store.enroll(args.entp, corp, cert)
    mailbox, where = _mailbox(state)
    print(f"enrolled {cert.subject.rfc4514_string()} sha256 {fp} for enterprise {args.entp}"
          f" corp {corp}")  # fmt: skip
    print(f"it sends to {mailbox} at {where}; provider certificate: "
          "starwrs admin collector provider-cert")  # fmt: skip
    return 0


async def _revoke(store: Any, args: argparse.Namespace) -> int:
    which: str = args.which
    count = await store.revoke(which.replace(":", "").lower(), args.reason)
    if not count:
        return _fail(f"no enrolled, unrevoked collector matches {which}", 1)
    print(f"revoked {count} collector(s) matching {which[:16]}")
    return 0


async def _list(store: Any, args: argparse.Namespace) -> int:
    for row in await store.collectors(args.entp):
        when = dt.datetime.fromtimestamp(row.enrolled, dt.UTC).strftime("%Y-%m-%d")
        state = "enrolled" if row.revoked is None else f"revoked ({row.revoked_reason})"
        print(f"{row.entp_id} {row.corp_id} {row.fingerprint[:16]} {row.subject} {when} {state}")
    return 0


async def _audit(store: Any, args: argparse.Namespace) -> int:
    rows = await store.audit_rows(max(1, args.last), batch_id=args.batch)
    for row in reversed(rows) if args.batch is None else rows:
        when = dt.datetime.fromtimestamp(row["received"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        counts = ""
        if row["accepted"] is not None:
            counts = f" {row['accepted']} accepted, {row['rejected']} rejected"
        print(
            f"#{row['id']} {when} {row['result']}{counts} batch {row['batch_id'] or '-'}"
            f" from {row['signer_subject'] or row['mail_from'] or '-'}"
            f" digest {row['digest_alg'] or '-'}:{(row['digest'] or '-')[:16]}"
            f" size {row['size']}{': ' + row['reason'] if row['reason'] else ''}"
        )
    return 0
