"""``starwrs collector``: the customer-side ticket collector of seed 003 (its own process
and state directory; ``starwrs serve`` does not start it).

::

    starwrs collector init --state DIR --enterprise ENTPID --provider-cert FILE \\
        --to harvest@provider (--smtp HOST:PORT [--smtp-ca FILE] [--tls starttls|tls|none]
        [--smtp-user USER] | --url https://HOST:PORT --user USERID [--web-ca FILE])
        [--from ADDRESS] [--name NAME] [--tz ZONE] [--format auto|asterisk|cucm|avaya|mitel]
        [--batch-records N] [--batch-bytes N] [--no-compress] [--cert FILE] [--force]
    starwrs collector run --state DIR --watch FOLDER [--pattern GLOB] [--interval S]
    starwrs collector send --state DIR FILE... [--patience S] [--resend-refused]
    starwrs collector status --state DIR

``init`` makes the collector's key, self-signed certificate and certificate request
(give ``DIR/collector.pem`` to the provider: ``starwrs admin collector enroll``) and
writes the configuration (:mod:`starwrs.collector.config`): batches go by e-mail
(``--smtp``) or over the network (``--url``, the provider's web tier, logged on as
``--user`` with ``$STARWRS_COLLECTOR_PASSWORD``).  ``run`` watches a folder
(the PBX's CDR folder, e.g. ``/var/log/asterisk/cdr-csv``) and sends new records
until stopped; ``send`` sends what is new in the files named and waits up to
``--patience`` seconds for every batch to be taken; ``status`` shows the spool.  See
:mod:`starwrs.collector.service` for how nothing is lost or sent twice.

Exit status: 0 done; 1 something is refused or still waiting in the spool (it is kept
and sent again by the next ``run`` / ``send``); 2 a usage or configuration mistake.
Every mistake is one line on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

import trio

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``collector`` sub-command."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "collector", help="the customer-side call-record collector (seed 003)"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="make the collector's key and configuration")
    _state(init)
    init.add_argument("--enterprise", required=True, metavar="ENTPID")
    init.add_argument(
        "--provider-cert",
        required=True,
        type=Path,
        metavar="FILE",
        help="the provider's harvest certificate (batches are encrypted to it)",
    )
    init.add_argument("--to", required=True, metavar="ADDRESS", help="the harvest mailbox")
    init.add_argument(
        "--smtp",
        metavar="HOST:PORT",
        help="e-mail path: the SMTP relay (or the provider's harvest listener)",
    )
    init.add_argument(
        "--url",
        metavar="https://HOST:PORT",
        help="network path: the provider's web tier (instead of --smtp)",
    )
    init.add_argument(
        "--user",
        metavar="USERID",
        help="network path: the collector's logon (password: $STARWRS_COLLECTOR_PASSWORD)",
    )
    init.add_argument(
        "--web-ca",
        type=Path,
        metavar="FILE",
        help="network path: CA the web tier's certificate chains to (default: system)",
    )
    init.add_argument(
        "--smtp-ca",
        type=Path,
        metavar="FILE",
        help="CA the SMTP server's certificate chains to (default: system)",
    )
    init.add_argument("--tls", choices=("starttls", "tls", "none"), default="starttls")
    init.add_argument("--smtp-user", help="relay user (password: $STARWRS_COLLECTOR_SMTP_PASSWORD)")
    init.add_argument(
        "--from",
        dest="sender",
        metavar="ADDRESS",
        help="the address batches come from (default collector@HOSTNAME)",
    )
    init.add_argument("--name", help="the collector's name (default: this host's name)")
    init.add_argument("--tz", help="the PBX's IANA time zone (asterisk, avaya, mitel)")
    init.add_argument("--format", default="auto", help="the CDR format (default auto)")
    init.add_argument("--batch-records", type=int, default=5000, metavar="N")
    init.add_argument("--batch-bytes", type=int, default=4 * 1024 * 1024, metavar="N")
    init.add_argument(
        "--no-compress",
        dest="compress",
        action="store_false",
        help="send the records uncompressed (default: gzip inside the signature)",
    )
    init.add_argument(
        "--cert",
        type=Path,
        metavar="FILE",
        help="install the certificate the provider issued for collector.csr",
    )
    init.add_argument(
        "--force", action="store_true", help="configure again (the key and certificate are kept)"
    )
    init.set_defaults(func=_init)
    run = actions.add_parser("run", help="watch a folder and send new records until stopped")
    _state(run)
    run.add_argument("--watch", required=True, type=Path, metavar="FOLDER")
    run.add_argument("--pattern", default="*", help="file names to read (default *)")
    run.add_argument("--interval", type=float, default=10.0, help="seconds between looks")
    run.add_argument("--resend-refused", action="store_true")
    run.set_defaults(func=_run)
    send = actions.add_parser("send", help="send what is new in FILE... and wait for it")
    _state(send)
    send.add_argument("files", nargs="+", type=Path, metavar="FILE")
    send.add_argument(
        "--patience", type=float, default=60.0, help="seconds to keep trying (default 60)"
    )
    send.add_argument("--resend-refused", action="store_true")
    send.set_defaults(func=_send)
    status = actions.add_parser("status", help="what the spool holds")
    _state(status)
    status.set_defaults(func=_status)  # fmt: skip


def _state(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", type=Path, default=Path("collector"),
                        help="the collector's state directory (default ./collector)")  # fmt: skip


def _fail(message: str, status: int = 2) -> int:
    print(f"starwrs collector: {message}", file=sys.stderr)
    return status


def _init(args: argparse.Namespace) -> int:
    from starwrs.collector import config, identity

    state: Path = args.state
    host = socket.gethostname()
    cfg = config.Config(
        enterprise=args.enterprise,
        name=args.name or host,
        sender=args.sender or f"collector@{host if '.' in host else host + '.localdomain'}",
        to=args.to,
        smtp=args.smtp,
        tls=args.tls,
        smtp_user=args.smtp_user,
        format=args.format,
        timezone=args.tz,
        batch_records=args.batch_records,
        batch_bytes=args.batch_bytes,
        compress=args.compress,
        host=host,
        url=args.url,
        user=args.user,
    )
    try:
        cfg.check()
    except config.ConfigError as err:
        return _fail(str(err))
    try:
        provider = identity.load_certificate(args.provider_cert)
        for ca in (args.smtp_ca, args.web_ca):
            if ca is not None:
                identity.load_certificate(ca)
    except (OSError, ValueError) as err:
        return _fail(f"cannot read a certificate: {err}")
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not isinstance(provider.public_key(), rsa.RSAPublicKey):
        return _fail("the provider certificate must have an RSA key (S/MIME key transport)")
    if (state / config.CONFIG_FILE).exists() and not args.force:
        return _fail(f"{state} is already a collector (--force configures it again)")
    try:
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        made = not (state / config.KEY_FILE).exists()
        if made:
            key, cert, csr = identity.make_collector_identity(cfg.enterprise, cfg.name, cfg.sender)
            identity.write_key(state / config.KEY_FILE, key)
            identity.write_certificate(state / config.CERT_FILE, cert)
            from cryptography.hazmat.primitives import serialization

            identity.write_atomic(
                state / config.CSR_FILE, csr.public_bytes(serialization.Encoding.PEM)
            )
        if args.cert is not None:
            problem = _install_cert(state, args.cert)
            if problem:
                return _fail(problem)
        shutil.copyfile(args.provider_cert, state / config.PROVIDER_FILE)
        for ca, name in ((args.smtp_ca, config.SMTP_CA_FILE), (args.web_ca, config.WEB_CA_FILE)):
            if ca is not None:
                shutil.copyfile(ca, state / name)
            else:
                (state / name).unlink(missing_ok=True)
        cfg.save(state)
    except OSError as err:
        return _fail(f"cannot write {state}: {err.strerror or err}")
    cert = identity.load_certificate(state / config.CERT_FILE)
    print(f"starwrs collector: {'made' if made else 'kept'} the key of collector {cfg.name}"
          f" for enterprise {cfg.enterprise} in {state}")  # fmt: skip
    print(f"certificate {state / config.CERT_FILE} sha256 {identity.fingerprint(cert)}")
    print(f"the provider enrolls it: starwrs admin collector enroll {cfg.enterprise} "
          f"{state / config.CERT_FILE}")  # fmt: skip
    return 0


def _install_cert(state: Path, path: Path) -> str | None:
    """Install an issued certificate for the collector's key; what is wrong, or None."""
    from cryptography.hazmat.primitives import serialization
    from starwrs.collector import config, identity

    try:
        cert = identity.load_certificate(path)
        key = identity.load_key(state / config.KEY_FILE)
    except (OSError, ValueError) as err:
        return f"cannot read {path}: {err}"
    der = serialization.Encoding.DER
    info = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(der, info) != key.public_key().public_bytes(der, info):
        return f"{path} is not a certificate for this collector's key"
    identity.write_certificate(state / config.CERT_FILE, cert)
    return None


def _loaded(state: Path) -> Any:
    from starwrs.collector import config

    return config.load(state)


def _run(args: argparse.Namespace) -> int:
    from starwrs.collector.config import ConfigError
    from starwrs.collector.service import Collector, CollectorBusy, lock_collector
    from starwrs.collector.spool import open_spool

    if not args.interval > 0:
        return _fail("--interval must be a positive number of seconds")
    if not args.watch.is_dir():
        return _fail(f"--watch {args.watch} is not a folder")
    try:
        loaded = _loaded(args.state)
        lock_collector(args.state)
    except (ConfigError, CollectorBusy) as err:
        return _fail(str(err))

    async def main() -> None:
        async with open_spool(args.state) as spool:
            if args.resend_refused:
                await spool.resend_refused()
            collector = Collector(loaded, spool, say=_say)
            _say(
                f"watching {args.watch} ({args.pattern}) for enterprise {loaded.config.enterprise}"
            )
            await collector.run(args.watch, pattern=args.pattern, interval=args.interval)

    try:
        trio.run(main)
    except KeyboardInterrupt:
        return 0
    return 0


def _say(line: str) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{stamp} {line}", flush=True)


def _send(args: argparse.Namespace) -> int:
    from starwrs.collector.config import ConfigError
    from starwrs.collector.service import Collector, CollectorBusy, Round, lock_collector
    from starwrs.collector.spool import open_spool

    if not args.patience >= 0:
        return _fail("--patience must be 0 or more seconds")
    for path in args.files:
        if not path.is_file():
            return _fail(f"{path} is not a file")
    try:
        loaded = _loaded(args.state)
        lock_collector(args.state)
    except (ConfigError, CollectorBusy) as err:
        return _fail(str(err))

    async def main() -> tuple[Round, int]:
        async with open_spool(args.state) as spool:
            if args.resend_refused:
                await spool.resend_refused()
            await spool.retry_now()
            collector = Collector(loaded, spool, say=print)
            result = await collector.scan([p.resolve() for p in args.files], final=True)
            deadline = time.monotonic() + args.patience
            while True:
                await collector.send_due(result)
                left = await collector.pending()
                due = await spool.next_due()
                if not left or due is None:
                    return result, left
                wait = max(0.0, due - time.time())
                if time.monotonic() + wait > deadline:
                    return result, left
                await trio.sleep(wait)

    result, left = trio.run(main)
    for line in result.errors:
        print(line, file=sys.stderr)
    print(
        f"starwrs collector: {result.built} batch(es) of {result.records} record(s) built;"
        f" {result.acknowledged} acknowledged, {result.sent} sent to the relay,"
        f" {result.refused} refused; {left} waiting in the spool"
    )
    return 0 if not left and not result.refused else 1


def _status(args: argparse.Namespace) -> int:
    from starwrs.collector import identity
    from starwrs.collector.config import ConfigError
    from starwrs.collector.spool import open_spool

    try:
        loaded = _loaded(args.state)
    except ConfigError as err:
        return _fail(str(err))
    cfg = loaded.config

    async def main() -> None:
        async with open_spool(args.state) as spool:
            print(f"collector {cfg.name} for enterprise {cfg.enterprise}: {cfg.path},"
                  f" {cfg.destination}")  # fmt: skip
            print(f"certificate sha256 {identity.fingerprint(loaded.cert)}")
            print(f"batches: up to {cfg.batch_records} records or {cfg.batch_bytes} bytes,"
                  f" {'gzip' if cfg.compress else 'uncompressed'}")  # fmt: skip
            files = await spool.files()
            print(f"files: {len(files)}")
            for row in files:
                try:
                    stat = os.stat(row.path)
                    same = (stat.st_dev, stat.st_ino) == (row.device, row.inode)
                    unread = f", {stat.st_size - row.offset} byte(s) not yet read" if same else ""
                except OSError:
                    unread = ", no longer there"
                print(f"  {row.path}: {row.offset} byte(s), {row.line} line(s) read"
                      f" ({row.format or 'not yet read'}){unread}")  # fmt: skip
            counts = await spool.counts()
            order = ("built", "acknowledged", "sent", "refused")
            parts = [f"{state} {counts.get(state, (0, 0))[0]} ({counts.get(state, (0, 0))[1]}"
                     " records)" for state in order]  # fmt: skip
            print("batches: " + ", ".join(parts))
            for batch in await spool.batches(20):
                when = dt.datetime.fromtimestamp(batch.created, dt.UTC).strftime(
                    "%Y-%m-%d %H:%M:%S"
                )
                extra = batch.reply or batch.last_error or ""
                if batch.state == "built" and batch.next_attempt > time.time():
                    extra += f" (next try in {batch.next_attempt - time.time():.0f} s)"
                print(f"  {batch.batch_id} {batch.state:<12} {batch.records:>6} records"
                      f" {Path(batch.path).name} lines {batch.first_line}- {when}"
                      f" tries {batch.attempts} {extra}".rstrip())  # fmt: skip

    trio.run(main)
    return 0
