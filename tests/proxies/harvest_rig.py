"""A harvest in one trio nursery for the harvest tests: the real SMTP listener on loopback
(STARTTLS with a deployment certificate), the real store, rating and the datamart's
own load (``load_ipc`` with a batch id, what the DSS runs for ``LOAD``) into the
partition file -- everything but the DSS process, which the e2e test adds.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from starwrs.collector import batch as batches
from starwrs.collector import identity, mailer, smime
from starwrs.proxies.harvest.intake import Harvest, LoadFailed
from starwrs.proxies.harvest.smtp import serve_smtp, server_tls
from starwrs.proxies.harvest.store import HarvestStore, open_harvest_store
from starwrs.proxies.harvest.tariffs import TariffStore, parse_tariffs
from starwrs.runtime.config import Address
from starwrs.runtime.pki import ensure_pki
from starwrs.storage.datamart.export import load_ipc
from starwrs.storage.datamart.partitions import read_partition_map
from starwrs.storage.datamart.store import open_partition
from starwrs.storage.outbox import Outbox

ENTP = "00022924"
CORP = "90000003"
OTHER_ENTP = "10324488"
OTHER_CORP = "91000001"
MAILBOX = "harvest@localhost"
NY = "America/New_York"

TARIFFS = f"""# the harvest tests' tariffs
plan,STD,Standard,USA,60/60,0.00,0,0.00
rate,STD,*,*,*,+1,0.05,0
profile,{ENTP},{CORP},STD,2020-01-01,V,0
site,{ENTP},{CORP},*,Y3000001,N3100001,+12125551000,4,{NY},9
profile,{OTHER_ENTP},{OTHER_CORP},STD,2020-01-01,V,0
site,{OTHER_ENTP},{OTHER_CORP},*,Y1000001,N1100001,+13125551000,4,America/Chicago,9
"""


def load_tariffs(state: Path) -> None:
    TariffStore.of(state).load(parse_tariffs(TARIFFS, name="t.csv"), source="t.csv", data=b"t")


def asterisk_line(i: int, *, dst: str = "917185550123", bill: int = 120, day: int = 5) -> bytes:
    """An answered outbound call from extension 2001 (Master.csv, 16 fields)."""
    minute, hour = i % 60, 8 + (i // 60) % 10
    start = f"2024-03-{day:02d} {hour:02d}:{minute:02d}:00"
    answer = f"2024-03-{day:02d} {hour:02d}:{minute:02d}:07"
    end = f"2024-03-{day:02d} {hour:02d}:{minute:02d}:59"
    return (
        f'"","2001","{dst}","from-internal","""Alice"" <2001>","PJSIP/2001-{i:08d}",'
        f'"PJSIP/trunk-{i:08d}","Dial","PJSIP/{dst}@trunk,60","{start}","{answer}","{end}",'
        f'127,{bill},"ANSWERED","DOCUMENTATION"\n'
    ).encode()


def master_csv(n: int, *, bad: tuple[int, ...] = (), first: int = 0) -> bytes:
    """*n* records; the ones at the indexes in *bad* are not readable."""
    return b"".join(
        b'"broken","record"\n' if i in bad else asterisk_line(first + i) for i in range(n)
    )


@dataclass(frozen=True)
class Party:
    """A key and certificate."""

    key: Any
    cert: x509.Certificate


@dataclass(frozen=True)
class Keys:
    """The test's S/MIME identities."""

    harvest: Party  # RSA: batches are encrypted to it
    other_harvest: Party  # another provider (wrongly addressed)
    collector: Party  # enrolled for ENTP / CORP
    stranger: Party  # never enrolled
    rsa_signer: Party  # an RSA collector (openssl-made batches), enrolled for ENTP


def make_keys() -> Keys:
    def collector(name: str) -> Party:
        key, cert, _csr = identity.make_collector_identity(ENTP, name, f"{name}@pbx.example")
        return Party(key, cert)

    hkey, hcert = identity.make_provider_identity(MAILBOX, key_size=2048)
    okey, ocert = identity.make_provider_identity("other@localhost", key_size=2048)
    rkey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _k, template, _c = identity.make_collector_identity(ENTP, "rsa", "rsa@pbx.example")
    rcert = (
        x509.CertificateBuilder()
        .subject_name(template.subject)
        .issuer_name(template.subject)
        .public_key(rkey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(template.not_valid_before_utc)
        .not_valid_after(template.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(rkey, hashes.SHA256())
    )
    return Keys(
        Party(hkey, hcert),
        Party(okey, ocert),
        collector("pbx1"),
        collector("intruder"),
        Party(rkey, rcert),
    )


def entity(
    body: bytes,
    *,
    batch_id: str | None = None,
    enterprise: str = ENTP,
    records: int | None = None,
    first_line: int = 1,
    compress: bool = False,
) -> bytes:
    """A batch entity of Asterisk records (gzip'd when *compress*, as the collector
    sends by default)."""
    return batches.build(
        batches.Batch(
            batch_id=batch_id or batches.new_batch_id(),
            enterprise=enterprise,
            format="asterisk",
            records=batches.count_records(body) if records is None else records,
            body=body,
            source="pbx1:/var/log/asterisk/cdr-csv/Master.csv",
            first_line=first_line,
            timezone=NY,
        ),
        compress=compress,
    )


def seal(content: bytes, signer: Party, recipient: x509.Certificate) -> bytes:
    """A whole e-mail: *content* signed by *signer*, encrypted to *recipient*."""
    enveloped = smime.seal(content, cert=signer.cert, key=signer.key, recipient=recipient)
    return mail(enveloped)


def mail(enveloped: bytes) -> bytes:
    return smime.mail(
        enveloped,
        [("From", "pbx1@pbx.example"), ("To", MAILBOX), ("Subject", "starwrs call records")],
    )


class LocalLoader:
    """The DSS's load, in this process: ``load_ipc(..., batch=)`` on the partition file."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.cons: dict[int, duckdb.DuckDBPyConnection] = {}
        self.lock = threading.Lock()
        self.fail = 0  # the next *fail* loads raise LoadFailed
        self.lose_answer = 0  # the next *lose_answer* loads load, then raise LoadFailed
        self.calls = 0

    def con(self, partition: int) -> duckdb.DuckDBPyConnection:
        with self.lock:
            if partition not in self.cons:
                self.cons[partition] = open_partition(self.state, partition)
            return self.cons[partition]

    async def load(self, partition: int, corp_id: str, batch_id: str, path: Path) -> int:
        del corp_id
        self.calls += 1
        if self.fail:
            self.fail -= 1
            raise LoadFailed("the DSS is down (test)")
        con = self.con(partition)

        def run() -> int:
            cur = con.cursor()
            try:
                return load_ipc(cur, path, batch=batch_id).rows
            finally:
                cur.close()

        rows = await trio.to_thread.run_sync(run)
        if self.lose_answer:
            self.lose_answer -= 1
            raise LoadFailed("the answer was lost (test)")
        return rows

    def rows(self, corp: str = CORP) -> int:
        partition = read_partition_map(self.state).partition_of(corp)
        (count,) = self.con(partition).execute(
            "SELECT count(*) FROM perspective_base WHERE corp_id = ?", [corp]
        ).fetchone() or (0,)
        return int(count)

    def close(self) -> None:
        for con in self.cons.values():
            con.close()


@dataclass
class Rig:
    state: Path
    harvest: Harvest
    store: HarvestStore
    loader: LocalLoader
    port: int
    keys: Keys
    outbox: Outbox
    ca: Path = field(init=False)

    def __post_init__(self) -> None:
        self.ca = self.state / "ca.pem"

    async def send(
        self, message: bytes, *, to: str = MAILBOX, tls: str = "starttls"
    ) -> mailer.Reply:
        """Send *message* over real SMTP (smtplib on a thread)."""
        return await trio.to_thread.run_sync(
            partial(
                mailer.send_message,
                "127.0.0.1",
                self.port,
                sender="pbx1@pbx.example",
                to=to,
                message=message,
                tls=tls,
                ca=self.ca,
                timeout=30,
            )
        )

    async def audit(self) -> list[dict[str, Any]]:
        rows = await self.store.store.fetchall("SELECT * FROM audit ORDER BY id")
        return [dict(row) for row in rows]

    async def last(self) -> dict[str, Any]:
        return (await self.audit())[-1]


@asynccontextmanager
async def running_harvest(
    tmp: Path,
    keys: Keys,
    *,
    max_message: int = 8 * 1024 * 1024,
    rater: Any = None,
    loader: LocalLoader | None = None,
) -> AsyncIterator[Rig]:
    """A harvest on ``tmp/state`` (made on first use: a second rig on the same *tmp* is
    the same harvest restarted)."""
    state = tmp / "state"
    fresh = not state.exists()
    state.mkdir(parents=True, exist_ok=True)
    pki = ensure_pki(state)
    if fresh:
        load_tariffs(state)
    loader = loader or LocalLoader(state)
    try:
        async with open_harvest_store(state) as store:
            await store.enroll(ENTP, CORP, keys.collector.cert)
            await store.enroll(ENTP, CORP, keys.rsa_signer.cert)
            outbox = Outbox(store.store)
            harvest = Harvest(
                state,
                store,
                cert=keys.harvest.cert,
                key=keys.harvest.key,
                mailbox=MAILBOX,
                loader=loader,
                outbox=outbox,
                rater=rater,
            )
            async with trio.open_nursery() as nursery:
                port = await nursery.start(
                    partial(serve_smtp, max_message=max_message),
                    harvest,
                    Address("127.0.0.1", 0),
                    server_tls(pki.server_cert, pki.server_key),
                )
                await nursery.start(harvest.resume)
                yield Rig(state, harvest, store, loader, port, keys, outbox)
                nursery.cancel_scope.cancel()
    finally:
        loader.close()
