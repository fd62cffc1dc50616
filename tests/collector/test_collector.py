"""The collector: ``init``, the durable spool (offsets by file identity, rotation,
truncation, header lines), batching, sealing, sending with back-off, and exactly once
through a kill -9 -- against the real harvest SMTP listener on loopback.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from starwrs.cli.main import main
from starwrs.collector import batch as batches
from starwrs.collector import config, identity, smime
from starwrs.collector.service import Collector, CollectorBusy, lock_collector
from starwrs.collector.spool import Spool, open_spool

from ..proxies.harvest_rig import (
    CORP,
    ENTP,
    MAILBOX,
    Keys,
    Rig,
    asterisk_line,
    make_keys,
    master_csv,
    running_harvest,
)

CUCM_HEADER = (
    b'"cdrRecordType","globalCallID_callManagerId","globalCallID_callId",'
    b'"dateTimeOrigination","dateTimeConnect","dateTimeDisconnect","callingPartyNumber",'
    b'"originalCalledPartyNumber","finalCalledPartyNumber","duration"\n'
    b"INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,INTEGER,VARCHAR(50),VARCHAR(50),VARCHAR(50),"
    b"INTEGER\n"
)


def cucm_line(i: int) -> bytes:
    start = 1709650000 + 60 * i
    numbers = '"2001","917185550123","917185550123"'
    return f"1,1,{i},{start},{start + 5},{start + 65},{numbers},60\n".encode()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


def init(state: Path, provider: Path, port: int, ca: Path | None, *extra: str) -> int:
    return main(
        [
            "collector", "init", "--state", str(state), "--enterprise", ENTP,
            "--provider-cert", str(provider), "--to", MAILBOX, "--smtp", f"127.0.0.1:{port}",
            "--from", "pbx1@pbx.example", "--name", "pbx1", "--tz", "America/New_York",
            *(("--smtp-ca", str(ca)) if ca else ()), *extra,
        ]
    )  # fmt: skip


@pytest.fixture
def provider(tmp_path: Path, keys: Keys) -> Path:
    path = tmp_path / "provider.pem"
    identity.write_certificate(path, keys.harvest.cert)
    return path


@pytest.fixture
async def spool(tmp_path: Path, provider: Path) -> AsyncIterator[tuple[Collector, Spool]]:
    state = tmp_path / "collector"
    assert init(state, provider, 25, None, "--batch-records", "4") == 0
    async with open_spool(state) as opened:
        yield Collector(config.load(state), opened), opened


async def bodies(spool: Spool, harvest_key: object, harvest_cert: object) -> list[batches.Batch]:
    """The batches in the spool, decrypted (by the harvest's key) and read."""
    found = []
    for _row, message in await spool.due(float("inf")):
        inner = smime.decrypt(message, harvest_cert, harvest_key)  # type: ignore[arg-type]
        found.append(batches.parse(smime.verify_inner(inner, smime.signers_in(inner)).content))
    return found


# -- init and the configuration ---------------------------------------------------------


def test_init_makes_the_key_the_certificate_and_the_request(
    tmp_path: Path, provider: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "c"
    assert init(state, provider, 2525, None) == 0
    out = capsys.readouterr().out
    assert f"starwrs admin collector enroll {ENTP}" in out
    loaded = config.load(state)
    assert loaded.config.enterprise == ENTP
    assert oct((state / config.KEY_FILE).stat().st_mode & 0o777) == "0o600"
    assert (state / config.CSR_FILE).read_bytes().startswith(b"-----BEGIN CERTIFICATE REQUEST")
    assert identity.fingerprint(loaded.cert) in out
    # again: refused without --force; --force keeps the key
    assert init(state, provider, 2525, None) == 2
    assert "already a collector" in capsys.readouterr().err
    assert init(state, provider, 2526, None, "--force") == 0
    assert config.load(state).cert == loaded.cert
    assert config.load(state).config.smtp == "127.0.0.1:2526"


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (["--tz", "Mars/Olympus"], "not an IANA time zone"),
        (["--format", "nortel"], "--format must be"),
        (["--to", "nobody"], "not an e-mail address"),
        (["--batch-records", "0"], "--batch-records"),
        (["--url", "https://provider.example:8443"], "needs --user"),
        (["--url", "http://provider.example", "--user", "pbx"], "is not https://HOST[:PORT]"),
        (["--url", "https://provider.example:99999", "--user", "pbx"], "bad port"),
        (["--url", "https://p.example", "--user", "no one"], "needs --user"),
    ],
)
def test_init_mistakes_are_one_line(
    tmp_path: Path,
    provider: Path,
    capsys: pytest.CaptureFixture[str],
    option: list[str],
    words: str,
) -> None:
    assert init(tmp_path / "c", provider, 25, None, *option) == 2
    err = capsys.readouterr().err
    assert words in err
    assert err.count("\n") == 1


def test_init_for_the_network_path_keeps_the_url_the_user_and_the_web_ca(
    tmp_path: Path, provider: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "c"
    argv = ["--url", "https://provider.example:8443", "--user", "pbxcollector"]
    assert init(state, provider, 25, None, *argv, "--web-ca", str(provider)) == 0
    loaded = config.load(state)
    assert (loaded.config.path, loaded.config.user) == ("network", "pbxcollector")
    assert loaded.web_ca == state / config.WEB_CA_FILE
    assert main(["collector", "status", "--state", str(state)]) == 0
    assert "network, https://provider.example:8443 as pbxcollector" in capsys.readouterr().out


def test_commands_on_a_folder_that_is_no_collector_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["collector", "status", "--state", str(tmp_path)]) == 2
    assert "not a collector state directory" in capsys.readouterr().err


def test_one_collector_per_state_directory(tmp_path: Path) -> None:
    fd = lock_collector(tmp_path)
    try:
        with pytest.raises(CollectorBusy):
            lock_collector(tmp_path)
    finally:
        os.close(fd)


# -- reading into the spool -------------------------------------------------------------


async def test_complete_lines_become_batches_and_a_partial_line_waits(
    tmp_path: Path, spool: tuple[Collector, Spool], keys: Keys
) -> None:
    collector, store = spool
    master = tmp_path / "Master.csv"
    text = master_csv(6)
    master.write_bytes(text + asterisk_line(6)[:40])  # the PBX is writing line 7
    result = await collector.scan([master], final=False)
    assert (result.built, result.records) == (2, 6)  # 4 + 2 (batch_records 4)
    with master.open("ab") as f:
        f.write(asterisk_line(6)[40:] + asterisk_line(7))
    assert (await collector.scan([master], final=False)).records == 2
    assert (await collector.scan([master], final=False)).built == 0  # nothing new
    got = await bodies(store, keys.harvest.key, keys.harvest.cert)
    assert b"".join(b.body for b in got) == master.read_bytes()  # every byte once
    assert [b.first_line for b in got] == [1, 5, 7]
    assert [b.records for b in got] == [4, 2, 2]
    assert {b.enterprise for b in got} == {ENTP}
    assert got[0].offset == (0, len(b"".join(asterisk_line(i) for i in range(4))))
    assert got[0].source.endswith(str(master))


@pytest.mark.parametrize("compress", [True, False], ids=["default", "no-compress"])
async def test_batches_are_gzip_inside_the_signature_unless_told_not_to(
    tmp_path: Path, provider: Path, keys: Keys, compress: bool
) -> None:
    state = tmp_path / "c"
    assert init(state, provider, 25, None, *(() if compress else ("--no-compress",))) == 0
    master = tmp_path / "Master.csv"
    master.write_bytes(master_csv(200))
    async with open_spool(state) as store:
        await Collector(config.load(state), store).scan([master], final=False)
        [(_row, message)] = await store.due(float("inf"))
        inner = smime.decrypt(message, keys.harvest.cert, keys.harvest.key)
        signed = smime.verify_inner(inner, smime.signers_in(inner)).content
    assert (b"cdr-batch+gzip" in signed) == compress
    assert batches.parse(signed).body == master.read_bytes()
    if compress:  # the e-mail is a fraction of the records
        assert len(message) < len(master.read_bytes()) / 3
    status = await trio.run_process(
        [sys.executable, "-m", "starwrs.cli", "collector", "status", "--state", str(state)],
        capture_stdout=True,
    )
    words = "gzip" if compress else "uncompressed"
    assert f"up to 5000 records or 4194304 bytes, {words}" in status.stdout.decode()


async def test_send_takes_a_last_line_without_a_line_end(
    tmp_path: Path, spool: tuple[Collector, Spool]
) -> None:
    collector, _store = spool
    master = tmp_path / "Master.csv"
    master.write_bytes(master_csv(2) + asterisk_line(2).rstrip(b"\n"))
    assert (await collector.scan([master], final=False)).records == 2
    assert (await collector.scan([master], final=True)).records == 1


async def test_a_rotated_file_is_finished_and_the_new_one_read_from_its_start(
    tmp_path: Path, spool: tuple[Collector, Spool], keys: Keys
) -> None:
    collector, store = spool
    folder = tmp_path / "cdr-csv"
    folder.mkdir()
    master = folder / "Master.csv"
    master.write_bytes(master_csv(3))
    await collector.scan(collector.watched(folder, "*"), final=False)
    with master.open("ab") as f:  # written after the last look, before the rotation
        f.write(asterisk_line(3))
    master.rename(folder / "Master.csv.1")
    master.write_bytes(master_csv(2, first=100))
    result = await collector.scan(collector.watched(folder, "*"), final=False)
    assert result.records == 3  # line 4 of the old file + the new file's two
    got = await bodies(store, keys.harvest.key, keys.harvest.cert)
    assert sorted(b.body for b in got) == sorted(
        [master_csv(3), asterisk_line(3), master_csv(2, first=100)]
    )


async def test_a_file_truncated_in_place_is_read_again_from_its_start(
    tmp_path: Path, spool: tuple[Collector, Spool], capsys: pytest.CaptureFixture[str]
) -> None:
    collector, _store = spool
    collector.say = print
    master = tmp_path / "Master.csv"
    master.write_bytes(master_csv(3))
    await collector.scan([master], final=False)
    master.write_bytes(master_csv(1, first=50))  # copytruncate: same file, new content
    assert (await collector.scan([master], final=False)).records == 1
    assert "replaced or truncated" in capsys.readouterr().out


async def test_cucm_header_lines_go_with_every_batch(
    tmp_path: Path, spool: tuple[Collector, Spool], keys: Keys
) -> None:
    collector, store = spool
    flat = tmp_path / "cdr_cluster_node_202403051200_1"
    flat.write_bytes(CUCM_HEADER + b"".join(cucm_line(i) for i in range(6)))
    assert (await collector.scan([flat], final=False)).records == 6
    got = await bodies(store, keys.harvest.key, keys.harvest.cert)
    assert [(b.format, b.header_lines, b.first_line) for b in got] == [
        ("cucm", 2, 3),
        ("cucm", 2, 7),
    ]
    assert all(b.body.startswith(CUCM_HEADER) for b in got)


async def test_a_file_of_no_known_format_is_skipped(
    tmp_path: Path, spool: tuple[Collector, Spool]
) -> None:
    collector, store = spool
    junk = tmp_path / "notes.txt"
    junk.write_bytes(b"shopping list\nmilk\n")
    assert (await collector.scan([junk], final=True)).built == 0
    assert [f.format for f in await store.files()] == ["unknown"]


async def test_openssl_reads_the_collectors_spooled_message(
    tmp_path: Path, spool: tuple[Collector, Spool], keys: Keys
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    collector, store = spool
    master = tmp_path / "Master.csv"
    master.write_bytes(master_csv(2))
    await collector.scan([master], final=False)
    [(_row, message)] = await store.due(float("inf"))
    (tmp_path / "m.eml").write_bytes(message)
    hcert, hkey = tmp_path / "h.pem", tmp_path / "h-key.pem"
    identity.write_certificate(hcert, keys.harvest.cert)
    identity.write_key(hkey, keys.harvest.key)
    state = tmp_path / "collector"
    for args in (
        ["-decrypt", "-in", tmp_path / "m.eml", "-recip", hcert, "-inkey", hkey,
         "-out", tmp_path / "inner.eml"],
        ["-verify", "-in", tmp_path / "inner.eml", "-CAfile", state / config.CERT_FILE,
         "-out", tmp_path / "batch.mime"],
    ):  # fmt: skip
        done = await trio.run_process(["openssl", "cms", *map(str, args)], capture_stderr=True)
        assert done.returncode == 0
    assert batches.parse((tmp_path / "batch.mime").read_bytes()).body == master_csv(2)


# -- sending to the harvest ------------------------------------------------------------


@pytest.fixture
async def harvest(tmp_path: Path, keys: Keys) -> AsyncIterator[Rig]:
    async with running_harvest(tmp_path / "provider", keys) as rig:
        yield rig


@pytest.fixture
async def sender(
    tmp_path: Path, provider: Path, harvest: Rig
) -> AsyncIterator[tuple[Collector, Spool, Path]]:
    state = tmp_path / "collector"
    assert init(state, provider, harvest.port, harvest.ca, "--batch-records", "5") == 0
    loaded = config.load(state)
    await harvest.store.enroll(ENTP, CORP, loaded.cert)
    async with open_spool(state) as opened:
        yield Collector(loaded, opened), opened, state


async def test_batches_are_sent_acknowledged_and_loaded_once(
    tmp_path: Path, harvest: Rig, sender: tuple[Collector, Spool, Path]
) -> None:
    collector, store, _state = sender
    master = tmp_path / "Master.csv"
    master.write_bytes(master_csv(12, bad=(7,)))
    result = await collector.scan([master], final=False)
    await collector.send_due(result)
    assert (result.built, result.acknowledged, result.errors) == (3, 3, [])
    assert harvest.loader.rows() == 11
    counts = await store.counts()
    assert counts == {"acknowledged": (3, 12)}
    rows = await store.batches()
    assert all(r.reply and r.batch_id in r.reply for r in rows)
    # the harvest's audit names the file's own line of the bad record
    quarantined = await harvest.store.store.fetchall("SELECT line FROM quarantine")
    assert [q["line"] for q in quarantined] == [8]


async def test_an_acknowledgement_lost_means_a_replay_not_a_second_load(
    tmp_path: Path, harvest: Rig, sender: tuple[Collector, Spool, Path]
) -> None:
    collector, store, _state = sender
    master = tmp_path / "Master.csv"
    master.write_bytes(master_csv(3))
    result = await collector.scan([master], final=False)
    [(_row, message)] = await store.due(float("inf"))
    await collector.send_due(result)
    # as if the process had died between the harvest's 250 and recording it
    await store.store.execute(
        "UPDATE batches SET state = 'built', message = ?, next_attempt = 0", (message,)
    )
    again = await collector.send_due()
    assert again.acknowledged == 1
    assert "replay" in (await store.batches())[0].reply
    assert harvest.loader.rows() == 3
    assert [r["result"] for r in await harvest.audit()] == ["applied", "replayed"]


async def test_an_unreachable_harvest_is_retried_with_back_off(
    tmp_path: Path, provider: Path, keys: Keys
) -> None:
    state = tmp_path / "collector"
    with trio.socket.socket() as probe:  # a port with nothing listening
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert init(state, provider, port, None) == 0
    async with open_spool(state) as store:
        collector = Collector(config.load(state), store)
        master = tmp_path / "Master.csv"
        master.write_bytes(master_csv(2))
        result = await collector.send_due(await collector.scan([master], final=False))
        assert (result.deferred, result.acknowledged) == (1, 0)
        assert "again in 2 s" in result.errors[0]
        [row] = await store.batches()
        assert (row.state, row.attempts) == ("built", 1)
        assert await store.due(row.next_attempt - 1) == []  # not before its back-off
        assert len(await store.due(row.next_attempt)) == 1


async def test_a_refused_batch_is_kept_and_can_be_sent_again(
    tmp_path: Path, harvest: Rig, sender: tuple[Collector, Spool, Path]
) -> None:
    collector, store, _state = sender
    await harvest.store.revoke(identity.fingerprint(collector.loaded.cert), "test")
    master = tmp_path / "Master.csv"
    master.write_bytes(master_csv(2))
    result = await collector.send_due(await collector.scan([master], final=False))
    assert result.refused == 1
    assert "revoked" in result.errors[0]
    [row] = await store.batches()
    assert row.state == "refused"
    await harvest.store.enroll(ENTP, CORP, collector.loaded.cert)
    assert await store.resend_refused() == 1
    assert (await collector.send_due()).acknowledged == 1
    assert harvest.loader.rows() == 2


async def test_kill_9_while_sending_then_restart_loads_every_record_once(
    tmp_path: Path, harvest: Rig, sender: tuple[Collector, Spool, Path]
) -> None:
    _collector, _store, state = sender
    master = tmp_path / "Master.csv"
    master.write_bytes(master_csv(13))
    (state / "faults").mkdir()
    (state / "faults" / "after-send").touch()  # dies after the harvest's 250, unrecorded
    command = [sys.executable, "-m", "starwrs.cli", "collector", "send", "--state", str(state),
               "--patience", "20", str(master)]  # fmt: skip
    first = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert harvest.loader.rows() == 5  # the first batch arrived; the collector never knew
    second = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)
    assert second.returncode == 0, second.stderr
    assert "3 acknowledged" in second.stdout.decode()
    assert harvest.loader.rows() == 13
    results = [r["result"] for r in await harvest.audit()]
    assert sorted(results) == ["applied", "applied", "applied", "replayed"]


async def test_kill_9_after_sealing_then_restart_reads_the_records_again_once(
    tmp_path: Path, harvest: Rig, sender: tuple[Collector, Spool, Path]
) -> None:
    _collector, _store, state = sender
    master = tmp_path / "Master.csv"
    master.write_bytes(master_csv(7))
    (state / "faults").mkdir()
    (state / "faults" / "after-seal").touch()  # sealed, not committed: as if never read
    command = [sys.executable, "-m", "starwrs.cli", "collector", "send", "--state", str(state),
               "--patience", "20", str(master)]  # fmt: skip
    first = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)
    assert first.returncode == -signal.SIGKILL
    second = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)
    assert second.returncode == 0, second.stderr
    assert harvest.loader.rows() == 7
    status = await trio.run_process(
        [sys.executable, "-m", "starwrs.cli", "collector", "status", "--state", str(state)],
        capture_stdout=True,
    )
    text = status.stdout.decode()
    assert "acknowledged 2 (7 records)" in text
    assert f"{master}: {len(master_csv(7))} byte(s), 7 line(s) read (asterisk)" in text
