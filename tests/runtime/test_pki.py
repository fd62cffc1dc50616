"""runtime/pki.py: the deployment CA, mutual TLS between services, TLS 1.2+ only.

Handshakes run for real (OpenSSL through trio.SSLStream) over in-memory streams.
"""

from __future__ import annotations

import datetime as dt
import ssl
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trio.testing
import trustme
from cryptography import x509
from starwrs.runtime.pki import (
    LEAF_LIFETIME,
    MOZILLA_INTERMEDIATE_CIPHERS,
    SERVICE_NAMES,
    Pki,
    client_context_for_ca,
    ensure_pki,
    load_pki,
    peer_service_name,
)

OPERATOR_CA = trustme.CA()


@dataclass
class Side:
    stream: trio.SSLStream[trio.abc.Stream]
    error: BaseException | None = None


@dataclass
class Handshake:
    server: Side
    client: Side

    @property
    def ok(self) -> bool:
        return self.server.error is None and self.client.error is None


async def handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, server_hostname: str
) -> Handshake:
    """Handshake, then one byte each way (TLS 1.3 servers judge client certs late)."""
    client_raw, server_raw = trio.testing.memory_stream_pair()
    result = Handshake(
        server=Side(trio.SSLStream(server_raw, server_ctx, server_side=True)),
        client=Side(trio.SSLStream(client_raw, client_ctx, server_hostname=server_hostname)),
    )

    async def run(side: Side, is_server: bool) -> None:
        try:
            await side.stream.do_handshake()
            if is_server:
                await side.stream.send_all(await side.stream.receive_some(1))
            else:
                await side.stream.send_all(b"x")
                assert await side.stream.receive_some(1) == b"x"
        except (trio.BrokenResourceError, ssl.SSLError) as err:
            side.error = err
            await side.stream.transport_stream.aclose()  # let the peer see EOF

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, result.server, True)
            nursery.start_soon(run, result.client, False)
    return result


def ssl_reason(err: BaseException | None) -> str:
    cause = err.__cause__ if isinstance(err, trio.BrokenResourceError) else err
    return f"{getattr(cause, 'reason', '')} {cause}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("state"), hostnames=["reports.example.test"])


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("other"))


async def test_mutual_tls_between_services(pki: Pki) -> None:
    hs = await handshake(
        pki.internal_server_context("dispatcher"), pki.internal_client_context("web"), "dispatcher"
    )
    assert hs.ok
    assert peer_service_name(hs.server.stream.getpeercert()) == "web"
    assert peer_service_name(hs.client.stream.getpeercert()) == "dispatcher"
    assert hs.server.stream.version() in ("TLSv1.2", "TLSv1.3")


async def test_client_checks_which_service_answers(pki: Pki) -> None:
    """The oe certificate cannot pass for the dispatcher."""
    hs = await handshake(
        pki.internal_server_context("oe"), pki.internal_client_context("web"), "dispatcher"
    )
    assert hs.client.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in ssl_reason(hs.client.error)


async def test_internal_server_refuses_a_client_without_certificate(pki: Pki) -> None:
    hs = await handshake(
        pki.internal_server_context("dispatcher"), client_context_for_ca(pki.ca_cert), "dispatcher"
    )
    assert hs.server.error is not None
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in ssl_reason(hs.server.error)
    assert peer_service_name(None) is None


async def test_internal_server_refuses_a_certificate_from_another_ca(
    pki: Pki, other_pki: Pki
) -> None:
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cafile=str(pki.ca_cert))  # trusts our server...
    cert, key = other_pki.internal["web"]
    client_ctx.load_cert_chain(str(cert), str(key))  # ...but is not one of ours
    hs = await handshake(pki.internal_server_context("dispatcher"), client_ctx, "dispatcher")
    assert hs.server.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in ssl_reason(hs.server.error)
    # and our clients do not trust the other deployment's servers
    hs = await handshake(
        other_pki.internal_server_context("dispatcher"),
        pki.internal_client_context("web"),
        "dispatcher",
    )
    assert hs.client.error is not None


@pytest.mark.parametrize("which", ["web", "internal"])
async def test_tls_1_1_is_refused(pki: Pki, which: str) -> None:
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cafile=str(pki.ca_cert))
    client_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let OpenSSL offer TLS 1.1 at all
    with warnings.catch_warnings():  # the enum members themselves are deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        client_ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        client_ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    if which == "web":
        server_ctx, name = pki.web_server_context(), "localhost"
    else:
        cert, key = pki.internal["web"]
        client_ctx.load_cert_chain(str(cert), str(key))
        server_ctx, name = pki.internal_server_context("dispatcher"), "dispatcher"
    hs = await handshake(server_ctx, client_ctx, name)
    assert hs.server.error is not None  # the server said no, not the client
    assert "UNSUPPORTED_PROTOCOL" in ssl_reason(hs.server.error)


async def test_tls_1_2_uses_an_intermediate_cipher(pki: Pki) -> None:
    client_ctx = client_context_for_ca(pki.ca_cert)
    client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    hs = await handshake(pki.web_server_context(), client_ctx, "localhost")
    assert hs.ok
    assert hs.server.stream.version() == "TLSv1.2"
    cipher = hs.server.stream.cipher()
    assert cipher is not None
    assert cipher[0] in MOZILLA_INTERMEDIATE_CIPHERS.split(":")
    assert hs.client.stream.selected_alpn_protocol() == "http/1.1"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1", "reports.example.test"])
async def test_web_server_certificate_names(pki: Pki, host: str) -> None:
    hs = await handshake(pki.web_server_context(), client_context_for_ca(pki.ca_cert), host)
    assert hs.ok
    assert hs.server.stream.getpeercert() is None  # no client certificate asked for


async def test_operator_certificate_for_the_web_server(tmp_path: Path) -> None:
    leaf = OPERATOR_CA.issue_cert("reports.example.test")
    cert, key = tmp_path / "op.pem", tmp_path / "op-key.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    pki = ensure_pki(tmp_path / "state", server_cert=cert, server_key=key)
    assert not (tmp_path / "state" / "server.pem").exists()
    assert pki.server_cert == cert
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    OPERATOR_CA.configure_trust(client_ctx)
    hs = await handshake(pki.web_server_context(), client_ctx, "reports.example.test")
    assert hs.ok
    assert load_pki(tmp_path / "state", server_cert=cert, server_key=key) == pki
    with pytest.raises(ValueError, match="both"):
        ensure_pki(tmp_path / "state", server_cert=cert)


def _snapshot(state: Path) -> dict[str, bytes]:
    return {str(p.relative_to(state)): p.read_bytes() for p in state.rglob("*.pem")}


def test_idempotent_and_renews_what_needs_renewing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = ensure_pki(state)
    files = _snapshot(state)
    assert set(files) == {
        "ca.pem",
        "ca-key.pem",
        "server.pem",
        "server-key.pem",
        *(f"internal/{n}.pem" for n in SERVICE_NAMES),
        *(f"internal/{n}-key.pem" for n in SERVICE_NAMES),
    }
    assert ensure_pki(state) == first
    assert _snapshot(state) == files  # nothing rewritten
    assert load_pki(state) == first

    # a new host name: only the server certificate is re-issued
    ensure_pki(state, hostnames=["reports.example.test"])
    now = _snapshot(state)
    assert {k for k in files if files[k] != now[k]} == {"server.pem", "server-key.pem"}

    # a damaged leaf is replaced, the rest kept
    (state / "internal" / "rm.pem").write_text("garbage")
    ensure_pki(state)
    after = _snapshot(state)
    assert {k for k in now if now[k] != after[k]} == {"internal/rm.pem", "internal/rm-key.pem"}


def test_leaves_near_expiry_are_reissued_by_the_same_ca(tmp_path: Path) -> None:
    state = tmp_path / "state"
    long_ago = dt.datetime.now(dt.UTC) - LEAF_LIFETIME + dt.timedelta(days=10)
    ensure_pki(state, now=long_ago)
    old = _snapshot(state)
    ensure_pki(state)
    new = _snapshot(state)
    assert new["ca.pem"] == old["ca.pem"]
    changed = {k for k in old if old[k] != new[k]}
    assert changed == set(old) - {"ca.pem", "ca-key.pem"}
    leaf = x509.load_pem_x509_certificate(new["internal/oe.pem"])
    assert leaf.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=300)


def test_a_new_ca_reissues_every_leaf(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ensure_pki(state)
    old = _snapshot(state)
    (state / "ca-key.pem").unlink()
    ensure_pki(state)
    new = _snapshot(state)
    assert all(old[k] != new[k] for k in old)
    ca = x509.load_pem_x509_certificate(new["ca.pem"])
    for name in SERVICE_NAMES:
        x509.load_pem_x509_certificate(new[f"internal/{name}.pem"]).verify_directly_issued_by(ca)


def test_file_permissions(pki: Pki) -> None:
    state = pki.ca_cert.parent
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "ca-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(pki.server_key.stat().st_mode) == 0o600
    for cert, key in pki.internal.values():
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(cert.stat().st_mode) == 0o644
    assert stat.S_IMODE(pki.ca_cert.stat().st_mode) == 0o644


def test_certificates_are_p256_and_well_formed(pki: Pki) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    leaf = x509.load_pem_x509_certificate(pki.internal["dss"][0].read_bytes())
    key = leaf.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {u.dotted_string for u in eku} == {"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"}


def test_unknown_service_and_missing_files(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(ValueError, match="no internal certificate"):
        pki.internal_client_context("nope")
    with pytest.raises(FileNotFoundError):
        load_pki(tmp_path / "empty")
