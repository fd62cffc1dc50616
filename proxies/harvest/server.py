"""The ``harvest`` process of ``starwrs serve`` (seed 001 Figure 8, seed 003's provider).

Theory of operation
-------------------
One process, four tasks in one nursery:

1. the **SMTP listener** (:mod:`.smtp`) on ``deployment.harvest_smtp`` for mail to
   ``deployment.harvest_mailbox``, STARTTLS with the deployment's web certificate;
2. the **proxy listener** on ``deployment.proxies["HARV"]`` (mutual TLS, the peer
   table: ``dispatcher`` and ``admin`` may connect): the network path's ``CDRB``
   puts (:mod:`starwrs.grammar.catalogue_harvest`), relayed from the web tier by
   the dispatcher for a user entitled to ``HARV``, each staged to
   ``STATE/harvest/incoming`` and then taken like an e-mail; an ``admin`` envelope
   ``{"op": "status"}`` answers the audit counts;
3. :meth:`~.intake.Harvest.resume` -- finishes every batch a killed process left
   ``loading`` and retries loads a DSS could not take;
4. the **news outbox** (:mod:`.news`): the customer's inbox item for each batch with
   rejected records.

Every message is handled by :class:`~.intake.Harvest` (see there for the steps).
The harvest's S/MIME identity -- the RSA key batches are encrypted to and its
certificate for the mailbox, issued by the deployment CA -- is made on first start
(:func:`ensure_identity`: ``STATE/harvest/smime.pem``, ``smime-key.pem``); give
``smime.pem`` to each collector (``starwrs collector init --provider-cert``).
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

import msgpack
import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starwrs.collector import identity
from starwrs.grammar import Message, serialize
from starwrs.grammar.catalogue_harvest import CallBatch, CallBatchAck
from starwrs.grammar.errors import ErrorCode, StarwrsError
from starwrs.protocol import BulkPut
from starwrs.proxies.bulk import FileSink
from starwrs.proxies.framework import Caller, Proxy, error_message, serve_proxy
from starwrs.proxies.harvest.intake import Answer, Harvest
from starwrs.proxies.harvest.news import DssLoader, News
from starwrs.proxies.harvest.smtp import MAX_MESSAGE, serve_smtp, server_tls
from starwrs.proxies.harvest.store import HarvestStore, open_harvest_store
from starwrs.runtime.config import Deployment
from starwrs.runtime.pki import load_pki
from starwrs.runtime.pool import ProxyPool
from starwrs.storage.outbox import Outbox

__all__ = [
    "batch_answer",
    "ensure_identity",
    "identity_paths",
    "make_harvest_proxy",
    "serve_harvest",
]

log = logging.getLogger("starwrs.harvest")


def identity_paths(state_dir: Path) -> tuple[Path, Path]:
    """(certificate, key) of the harvest's S/MIME identity."""
    folder = Path(state_dir) / "harvest"
    return folder / "smime.pem", folder / "smime-key.pem"


def ensure_identity(state_dir: Path, mailbox: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """The harvest's S/MIME certificate and key, made on first use (issued by the
    deployment CA when ``STATE/ca.pem`` and ``ca-key.pem`` exist, else self-signed)."""
    cert_path, key_path = identity_paths(state_dir)
    if cert_path.exists() and key_path.exists():
        key = identity.load_key(key_path)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_path} is not an RSA key")
        return identity.load_certificate(cert_path), key
    issuer: tuple[x509.Certificate, Any] | None = None
    ca_cert, ca_key = Path(state_dir) / "ca.pem", Path(state_dir) / "ca-key.pem"
    if ca_cert.exists() and ca_key.exists():
        signer = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
        if isinstance(signer, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            issuer = (identity.load_certificate(ca_cert), signer)
    key, cert = identity.make_provider_identity(mailbox, issuer=issuer)
    key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    identity.write_key(key_path, key)
    identity.write_certificate(cert_path, cert)
    log.info("harvest made its S/MIME identity %s", cert_path)
    return cert, key


async def _status(store: HarvestStore) -> dict[str, Any]:
    rows = await store.store.fetchall(
        "SELECT result, count(*), coalesce(sum(accepted), 0), coalesce(sum(rejected), 0)"
        " FROM audit GROUP BY result"
    )
    collectors = await store.collectors()
    return {
        "audit": {r[0]: {"messages": r[1], "accepted": r[2], "rejected": r[3]} for r in rows},
        "collectors": sum(1 for c in collectors if c.revoked is None),
        "revoked": sum(1 for c in collectors if c.revoked is not None),
    }


#: first bytes of a msgpack map: an envelope
_ENVELOPE = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}


class _HarvestProxy(Proxy):
    """The harvest takes no synchronous text messages: envelopes and CDRB puts only."""

    async def handle(self, caller: Caller, payload: bytes) -> tuple[int, bytes]:
        if payload[:1] and payload[0] in _ENVELOPE:
            return await super().handle(caller, payload)
        code = ErrorCode.NO_VALID_REQUEST
        return int(code), serialize(error_message(None, code)).encode("utf-8")


def batch_answer(answer: Answer, batch: str | None) -> CallBatchAck:
    """The CDRA for the intake's SMTP-style *answer* (2xx taken, 5xx refused, 4xx later)."""
    if answer.ok:
        code, result = 0, "replayed" if "(replay)" in answer.text else "accepted"
    elif 400 <= answer.code < 500:
        code, result = int(ErrorCode.RM_GENERAL_FAILURE), "later"
    else:
        code, result = int(ErrorCode.RM_PARAMETER_ERROR), "refused"
    return CallBatchAck(error=code, batch=batch, result=result, text=answer.text[:400])


def make_harvest_proxy(harvest: Harvest, *, max_message: int = MAX_MESSAGE) -> Proxy:
    """The harvest's proxy: a collector's batch over the network (``CDRB`` puts, through
    the web tier and the dispatcher: the caller is the collector's logged-on user) and
    operator envelopes (``{"op": "status"}``)."""
    proxy = _HarvestProxy("HARV", name="harvest")
    incoming = harvest.state_dir / "harvest" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)

    @proxy.accepts_put("CDRB", "CDRA")
    async def batch(caller: Caller, req: CallBatch, put: BulkPut) -> FileSink:
        if caller.internal or caller.entp_id is None:
            raise StarwrsError(ErrorCode.NOT_ENTITLED, "a batch comes from a collector's user")
        if put.size > max_message:
            raise StarwrsError(
                ErrorCode.RM_PARAMETER_ERROR, f"a batch is at most {max_message} bytes"
            )
        who = f"{caller.user_id}@{caller.entp_id}"

        async def take(path: Path) -> Message:
            raw = await trio.to_thread.run_sync(path.read_bytes)
            answer = await harvest.receive(
                raw, channel="network", peer=who, enterprise=caller.entp_id
            )
            return batch_answer(answer, req.batch).to_message()

        staging = incoming / f"{put.sha256[:16]}-{secrets.token_hex(4)}.eml"
        return FileSink(staging, take)

    @proxy.takes_envelopes
    async def operations(caller: Caller, envelope: dict[str, Any]) -> tuple[int, bytes]:
        if caller.peer not in (None, "admin"):
            raise StarwrsError(ErrorCode.NOT_ENTITLED, "operations are the operator's")
        if envelope.get("op") != "status":
            raise StarwrsError(ErrorCode.NO_VALID_REQUEST, "unknown operation")
        return 0, msgpack.packb(await _status(harvest.store))

    return proxy


async def serve_harvest(
    deployment: Deployment,
    *,
    index: int = 0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the harvest until cancelled (see the module docstring)."""
    del index
    state = Path(deployment.state_dir)
    pki = load_pki(state, server_cert=deployment.web_cert, server_key=deployment.web_key)
    mailbox = deployment.harvest_mailbox
    cert, key = await trio.to_thread.run_sync(ensure_identity, state, mailbox)
    routes = {
        t: a for t, a in deployment.proxies.items() if t.startswith("DSS") or t in ("OE", "INBX")
    }
    pool = ProxyPool(routes, pki.internal_client_context("harvest"), deployment.limits)
    try:
        async with open_harvest_store(state) as store:
            outbox = Outbox(store.store)
            harvest = Harvest(
                state,
                store,
                cert=cert,
                key=key,
                mailbox=mailbox,
                loader=DssLoader(pool),
                outbox=outbox,
            )
            news = News(store, pool)
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    serve_proxy,
                    make_harvest_proxy(harvest),
                    deployment.proxies["HARV"],
                    pki.internal_server_context("harvest"),
                    deployment.limits,
                )
                if deployment.harvest_smtp is not None:
                    port = await nursery.start(
                        serve_smtp,
                        harvest,
                        deployment.harvest_smtp,
                        server_tls(pki.server_cert, pki.server_key),
                    )
                    log.info(
                        "harvest smtp on %s:%d for %s", deployment.harvest_smtp.host, port, mailbox
                    )
                await nursery.start(harvest.resume)
                await nursery.start(outbox.run, news.deliver)
                task_status.started()
    finally:
        with trio.CancelScope(shield=True):
            await pool.aclose()
