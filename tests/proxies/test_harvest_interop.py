"""S/MIME interoperability both ways with OpenSSL's ``cms`` command: what the collector
sends, ``openssl cms -decrypt`` + ``-verify`` read back to the exact batch; batches that
``openssl cms -sign`` + ``-encrypt`` make (opaque, detached, text mode, streamed BER, RSA
and ECDSA signers) are accepted by the harvest over SMTP and loaded.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from starwrs.collector import batch as batches
from starwrs.collector import identity

from .harvest_rig import Keys, Party, Rig, entity, make_keys, master_csv, running_harvest, seal

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


@pytest.fixture
async def rig(tmp_path: Path, keys: Keys) -> AsyncIterator[Rig]:
    async with running_harvest(tmp_path, keys) as running:
        yield running


def write_party(folder: Path, name: str, party: Party) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    identity.write_certificate(cert, party.cert)
    identity.write_key(key, party.key)
    return cert, key


async def openssl(*args: str | Path) -> bytes:
    result = await trio.run_process(
        ["openssl", "cms", *map(str, args)], capture_stdout=True, capture_stderr=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "identity"])
async def test_openssl_decrypts_and_verifies_what_the_collector_sends(
    tmp_path: Path, keys: Keys, compress: bool
) -> None:
    harvest_cert, harvest_key = write_party(tmp_path, "harvest", keys.harvest)
    collector_cert, _ = write_party(tmp_path, "collector", keys.collector)
    content = entity(master_csv(3), compress=compress)
    (tmp_path / "mail.eml").write_bytes(seal(content, keys.collector, keys.harvest.cert))
    await openssl("-decrypt", "-in", tmp_path / "mail.eml", "-recip", harvest_cert,
                  "-inkey", harvest_key, "-out", tmp_path / "inner.eml")  # fmt: skip
    await openssl("-verify", "-in", tmp_path / "inner.eml", "-CAfile", collector_cert,
                  "-out", tmp_path / "batch.mime")  # fmt: skip
    assert (tmp_path / "batch.mime").read_bytes() == content
    body = content.split(b"\r\n\r\n", 1)[1]  # and gunzip gives the records back
    assert (gzip.decompress(body) if compress else body) == master_csv(3)
    printed = await openssl("-cmsout", "-print", "-in", tmp_path / "mail.eml")
    assert b"aes-256-cbc" in printed.lower()


@pytest.mark.parametrize(
    ("signer", "sign_args", "encrypt_args", "compress"),
    [
        ("collector", ["-nodetach", "-binary"], ["-binary"], False),  # opaque signed-data
        ("collector", ["-binary"], ["-binary"], False),  # multipart/signed, detached
        ("collector", [], [], False),  # text mode: canonical CRLF line ends
        ("rsa_signer", ["-nodetach", "-binary"], ["-binary"], False),
        ("rsa_signer", ["-nodetach", "-binary", "-stream", "-outform", "DER"], ["-binary"], False),
        ("collector", ["-nodetach", "-binary"], ["-binary"], True),  # a gzip body
        ("collector", ["-binary"], ["-binary"], True),
    ],
    ids=["opaque", "detached", "text", "rsa", "rsa-streamed-der", "opaque-gzip", "detached-gzip"],
)
async def test_a_batch_made_with_openssl_cms_is_accepted(
    rig: Rig,
    tmp_path: Path,
    signer: str,
    sign_args: list[str],
    encrypt_args: list[str],
    compress: bool,
) -> None:
    party: Party = getattr(rig.keys, signer)
    cert, key = write_party(tmp_path, signer, party)
    harvest_cert, _ = write_party(tmp_path, "harvest", rig.keys.harvest)
    content = entity(master_csv(4, bad=(2,)), compress=compress)
    batch_id = batches.parse(content).batch_id
    (tmp_path / "batch.mime").write_bytes(content)
    await openssl("-sign", "-in", tmp_path / "batch.mime", "-signer", cert, "-inkey", key,
                  "-md", "sha256", *sign_args, "-out", tmp_path / "signed")  # fmt: skip
    await openssl("-encrypt", "-in", tmp_path / "signed", "-aes256", *encrypt_args,
                  "-out", tmp_path / "enc.eml", harvest_cert)  # fmt: skip
    message = b"From: pbx1@pbx.example\r\nTo: harvest@localhost\r\n" + (
        tmp_path / "enc.eml"
    ).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    reply = await rig.send(message)
    assert reply.code == 250, reply
    assert f"batch {batch_id} taken: 3 accepted, 1 rejected" in reply.text
    assert rig.loader.rows() == 3
    row = await rig.last()
    assert row["signer"] == identity.fingerprint(party.cert)
    assert row["result"] == "applied"
