"""The harvest over e-mail: a real SMTP listener on loopback (STARTTLS), real S/MIME, the
real store, rating and the datamart's own load.  Every refusal is audited with its reason
and loads nothing; a replay is acknowledged and applied once; a load whose answer is lost
or that a restart interrupts is finished exactly once.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from starwrs.collector import batch as batches
from starwrs.collector import cms, identity, smime
from starwrs.proxies.harvest.intake import Harvest

from .harvest_rig import (
    CORP,
    ENTP,
    MAILBOX,
    OTHER_ENTP,
    Keys,
    Rig,
    entity,
    mail,
    make_keys,
    master_csv,
    running_harvest,
    seal,
)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


@pytest.fixture
async def rig(tmp_path: Path, keys: Keys) -> AsyncIterator[Rig]:
    async with running_harvest(tmp_path, keys) as running:
        yield running


async def applied(harvest: Harvest, batch_id: str) -> None:
    """Wait until *batch_id* is applied."""
    with trio.fail_after(30):
        while True:
            event = harvest.applied
            row = await harvest.store.batch(batch_id)
            if row is not None and row["state"] == "applied":
                return
            await event.wait()


async def nothing_loaded(rig: Rig) -> None:
    assert rig.loader.rows() == 0
    assert await rig.store.store.fetchall("SELECT * FROM batches") == []


# -- a batch, end to end ------------------------------------------------------------


async def test_a_batch_is_verified_rated_loaded_and_audited_with_its_signed_digest(
    rig: Rig,
) -> None:
    content = entity(master_csv(10, bad=(3,)), first_line=101)
    batch_id = batches.parse(content).batch_id
    reply = await rig.send(seal(content, rig.keys.collector, rig.keys.harvest.cert))
    assert reply.code == 250, reply
    assert f"batch {batch_id} taken: 9 accepted, 1 rejected" in reply.text
    assert rig.loader.rows() == 9
    row = await rig.last()
    assert row["result"] == "applied"
    assert (row["accepted"], row["rejected"], row["records"]) == (9, 1, 10)
    assert (row["batch_id"], row["entp_id"], row["corp_id"]) == (batch_id, ENTP, CORP)
    assert row["signer"] == identity.fingerprint(rig.keys.collector.cert)
    assert row["mail_from"] == "pbx1@pbx.example"
    assert row["rcpt"] == MAILBOX
    # non-repudiation: the collector's key signed exactly this digest of exactly this batch
    assert row["digest"] == hashlib.sha256(content).hexdigest()
    assert bytes.fromhex(row["digest"]) in row["signed_attrs"]
    rig.keys.collector.cert.public_key().verify(  # raises if not
        row["signature"], row["signed_attrs"], ec.ECDSA(hashes.SHA256())
    )
    # the quarantine names the file's own line (first line 101, record 4)
    quarantined = await rig.store.quarantined(batch_id)
    assert [(q["line"], bytes(q["record"])) for q in quarantined] == [(104, b'"broken","record"')]
    assert "Master.csv" in quarantined[0]["file"]
    # and the customer's news is queued with the batch
    news = await rig.store.store.fetchall("SELECT subject, key FROM outbox")
    assert [tuple(n) for n in news] == [("news", batch_id)]
    archived = rig.state / "harvest" / "archive" / f"{batch_id}.smime"
    assert smime.verify_inner(archived.read_bytes(), [rig.keys.collector.cert]).content == content


async def test_a_batch_without_rejections_sends_no_news(rig: Rig) -> None:
    reply = await rig.send(seal(entity(master_csv(3)), rig.keys.collector, rig.keys.harvest.cert))
    assert reply.code == 250
    assert "3 accepted, 0 rejected" in reply.text
    assert await rig.store.store.fetchall("SELECT * FROM outbox") == []


async def test_a_replay_is_acknowledged_and_applied_once(rig: Rig) -> None:
    content = entity(master_csv(5))
    batch_id = batches.parse(content).batch_id
    message = seal(content, rig.keys.collector, rig.keys.harvest.cert)
    assert (await rig.send(message)).code == 250
    again = await rig.send(message)
    assert again.code == 250
    assert "already taken (replay)" in again.text
    # the same batch sealed anew (another ciphertext, another signature) is a replay too
    resealed = await rig.send(seal(content, rig.keys.collector, rig.keys.harvest.cert))
    assert resealed.code == 250
    assert "replay" in resealed.text
    assert rig.loader.rows() == 5
    results = [(r["result"], r["batch_id"]) for r in await rig.audit()]
    assert results == [("applied", batch_id), ("replayed", batch_id), ("replayed", batch_id)]
    assert "not applied again" in (await rig.last())["reason"]


# -- refusals: each audited with its reason, nothing loaded ---------------------------


async def refused(rig: Rig, message: bytes, kind: str, words: str) -> dict[str, object]:
    reply = await rig.send(message)
    assert reply.code == 554, reply
    row = await rig.last()
    assert (row["result"], row["kind"]) == ("refused", kind), row
    assert words in row["reason"], row["reason"]
    assert words in reply.text
    await nothing_loaded(rig)
    return row


async def test_tampered_after_signing_is_refused(rig: Rig) -> None:
    content = entity(master_csv(4))
    signed = smime.sign(content, rig.keys.collector.cert, rig.keys.collector.key)
    assert signed.count(b"7185550123") >= 1
    altered = signed.replace(b"7185550123", b"7185550199", 1)  # a number changed in the body
    message = mail(smime.envelope(smime.signed_entity(altered), rig.keys.harvest.cert))
    await refused(rig, message, "bad-signature", "does not match its signed digest")


async def test_tampered_in_transit_is_refused(rig: Rig) -> None:
    message = bytearray(seal(entity(master_csv(4)), rig.keys.collector, rig.keys.harvest.cert))
    body = message.index(b"\r\n\r\n") + 4
    at = body + (len(message) - body) // 2
    message[at] = ord("A") if message[at] != ord("A") else ord("B")  # one base64 digit
    reply = await rig.send(bytes(message))
    assert reply.code == 554, reply
    row = await rig.last()
    assert row["result"] == "refused"
    assert row["kind"] in ("undecryptable", "unsigned", "bad-signature"), row
    await nothing_loaded(rig)


async def test_a_message_for_another_mailbox_is_refused_at_rcpt(rig: Rig) -> None:
    message = seal(entity(master_csv(2)), rig.keys.collector, rig.keys.harvest.cert)
    reply = await rig.send(message, to="somebody@localhost")
    assert reply.code == 550, reply
    row = await rig.last()
    assert (row["result"], row["kind"], row["rcpt"]) == (
        "refused",
        "wrong-address",
        "somebody@localhost",
    )
    assert "wrongly addressed" in row["reason"]
    await nothing_loaded(rig)


async def test_a_message_encrypted_for_another_provider_is_refused(rig: Rig) -> None:
    message = seal(entity(master_csv(2)), rig.keys.collector, rig.keys.other_harvest.cert)
    await refused(rig, message, "wrong-recipient", "not encrypted to this harvest")


async def test_a_batch_for_another_enterprise_is_refused(rig: Rig) -> None:
    content = entity(master_csv(2), enterprise=OTHER_ENTP)
    message = seal(content, rig.keys.collector, rig.keys.harvest.cert)
    row = await refused(rig, message, "wrong-enterprise", "wrongly addressed")
    assert OTHER_ENTP in str(row["reason"])
    assert ENTP in str(row["reason"])


async def test_an_unsigned_batch_is_refused(rig: Rig) -> None:
    message = mail(smime.envelope(entity(master_csv(2)), rig.keys.harvest.cert))
    await refused(rig, message, "unsigned", "not signed")


async def test_a_message_that_is_not_encrypted_is_refused(rig: Rig) -> None:
    signed = smime.sign(entity(master_csv(2)), rig.keys.collector.cert, rig.keys.collector.key)
    message = b"From: pbx1@pbx.example\r\nTo: harvest@localhost\r\n" + smime.signed_entity(signed)
    await refused(rig, message, "not-encrypted", "not an encrypted S/MIME message")


async def test_an_unknown_signer_is_refused(rig: Rig) -> None:
    message = seal(entity(master_csv(2)), rig.keys.stranger, rig.keys.harvest.cert)
    row = await refused(rig, message, "unknown-signer", "not enrolled")
    assert "intruder" in str(row["signer_subject"])
    assert row["signer"] == identity.fingerprint(rig.keys.stranger.cert)


async def test_a_revoked_signer_is_refused(rig: Rig) -> None:
    await rig.store.enroll(ENTP, CORP, rig.keys.stranger.cert)
    fp = identity.fingerprint(rig.keys.stranger.cert)
    assert await rig.store.revoke(fp[:16], "the PBX was stolen") == 1
    message = seal(entity(master_csv(2)), rig.keys.stranger, rig.keys.harvest.cert)
    row = await refused(rig, message, "revoked-signer", "revoked")
    assert "the PBX was stolen" in str(row["reason"])


async def test_a_batch_id_used_again_for_other_records_is_refused(rig: Rig) -> None:
    first = entity(master_csv(3), batch_id="fixedbatch0001")
    assert (await rig.send(seal(first, rig.keys.collector, rig.keys.harvest.cert))).code == 250
    other = entity(master_csv(3, first=10), batch_id="fixedbatch0001")
    reply = await rig.send(seal(other, rig.keys.collector, rig.keys.harvest.cert))
    assert reply.code == 554
    assert "used before for other records" in reply.text
    assert rig.loader.rows() == 3
    assert (await rig.last())["kind"] == "reused-id"


async def test_signed_content_that_is_not_a_batch_is_refused(rig: Rig) -> None:
    message = seal(
        b"Subject: hello\r\n\r\nnot a batch\r\n", rig.keys.collector, rig.keys.harvest.cert
    )
    await refused(rig, message, "malformed", "malformed batch")


async def test_a_compressed_batch_is_taken_and_a_compression_bomb_refused(rig: Rig) -> None:
    records = master_csv(5)
    packed = entity(records, compress=True)
    assert b"Content-Type: application/vnd.starwrs.cdr-batch+gzip" in packed
    assert records not in packed
    reply = await rig.send(seal(packed, rig.keys.collector, rig.keys.harvest.cert))
    assert reply.code == 250, reply
    assert rig.loader.rows() == 5
    # what a hostile signer could send: a few KB that inflate to gigabytes
    head, _ = entity(records, compress=True).split(b"\r\n\r\n", 1)
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = b"".join(packer.compress(bytes(1 << 20)) for _ in range(80)) + packer.flush()
    message = seal(head + b"\r\n\r\n" + bomb, rig.keys.collector, rig.keys.harvest.cert)
    reply = await rig.send(message)
    assert reply.code == 554, reply
    row = await rig.last()
    assert (row["result"], row["kind"]) == ("refused", "malformed"), row
    assert "inflates past 65 MiB" in str(row["reason"])
    assert rig.loader.rows() == 5  # nothing more loaded


async def test_mail_before_starttls_is_refused(rig: Rig) -> None:
    message = seal(entity(master_csv(1)), rig.keys.collector, rig.keys.harvest.cert)
    reply = await rig.send(message, tls="none")
    assert reply.code == 530, reply
    await nothing_loaded(rig)


async def test_a_message_over_the_size_limit_is_refused(tmp_path: Path, keys: Keys) -> None:
    async with running_harvest(tmp_path, keys, max_message=64 * 1024) as small:
        message = seal(entity(master_csv(400)), keys.collector, keys.harvest.cert)
        assert len(message) > 64 * 1024
        reply = await small.send(message)
        assert reply.code == 552, reply
        await nothing_loaded(small)


# -- loads that fail, answers that are lost, restarts -------------------------------------


async def test_a_load_the_dss_cannot_take_is_retried_until_applied(rig: Rig) -> None:
    rig.loader.fail = 1
    content = entity(master_csv(6, bad=(0,)))
    batch_id = batches.parse(content).batch_id
    reply = await rig.send(seal(content, rig.keys.collector, rig.keys.harvest.cert))
    assert reply.code == 250
    assert reply.text.endswith("; loading")
    assert (await rig.store.batch(batch_id))["state"] == "loading"
    await applied(rig.harvest, batch_id)
    assert rig.loader.rows() == 5
    assert [r["result"] for r in await rig.audit()] == ["applied"]


async def test_a_load_whose_answer_was_lost_is_not_loaded_twice(rig: Rig) -> None:
    rig.loader.lose_answer = 1
    content = entity(master_csv(7))
    batch_id = batches.parse(content).batch_id
    assert (await rig.send(seal(content, rig.keys.collector, rig.keys.harvest.cert))).code == 250
    await applied(rig.harvest, batch_id)
    assert rig.loader.calls == 2  # loaded, answer lost, loaded again: taken once
    assert rig.loader.rows() == 7


async def test_a_batch_left_loading_by_a_stopped_harvest_is_finished_at_restart(
    tmp_path: Path, keys: Keys
) -> None:
    content = entity(master_csv(8))
    batch_id = batches.parse(content).batch_id
    message = seal(content, keys.collector, keys.harvest.cert)
    async with running_harvest(tmp_path, keys) as first:
        first.loader.fail = 10**6  # the DSS never answers while this harvest runs
        assert (await first.send(message)).code == 250
        assert (await first.store.batch(batch_id))["state"] == "loading"
    async with running_harvest(tmp_path, keys) as second:
        await applied(second.harvest, batch_id)
        assert second.loader.rows() == 8
        # the collector, not knowing, sends it again: a replay
        again = await second.send(message)
        assert again.code == 250
        assert "replay" in again.text
        assert second.loader.rows() == 8
        staged = second.state / "harvest" / "loading" / f"{batch_id}.arrows"
        assert not staged.exists()


async def test_a_rating_failure_defers_the_message(tmp_path: Path, keys: Keys) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("tariff store unreadable")

    async with running_harvest(tmp_path, keys, rater=broken) as rig:
        message = seal(entity(master_csv(2)), keys.collector, keys.harvest.cert)
        reply = await rig.send(message)
        assert reply.code == 451, reply
        row = await rig.last()
        assert (row["result"], row["kind"]) == ("deferred", "rating")
        await nothing_loaded(rig)


def test_the_audit_kinds_cover_every_smime_refusal() -> None:
    for kind in ("not-encrypted", "wrong-recipient", "undecryptable", "unsigned"):
        assert smime.SmimeError(kind, "x").kind == kind
    with pytest.raises(cms.CmsError):
        cms.parse_signed_data(b"\x30\x03\x06\x01\x00")
