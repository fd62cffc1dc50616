"""``starwrs admin collector``: enroll (a certificate, or a request the deployment CA
signs), revoke, list, audit, provider-cert; and ``serve``'s harvest options."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from starwrs.cli.main import main
from starwrs.collector import identity
from starwrs.proxies.harvest.server import identity_paths
from starwrs.runtime.pki import ensure_pki

ENTP = "00022924"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    folder.mkdir()
    ensure_pki(folder)
    con = sqlite3.connect(folder / "oe.db")  # order entry's corps table, as it has it
    con.execute("CREATE TABLE corps (corp_id TEXT PRIMARY KEY, entp_id TEXT, name TEXT)")
    con.executemany(
        "INSERT INTO corps VALUES (?, ?, ?)",
        [("90000003", ENTP, "a"), ("90000004", ENTP, "b"), ("91000001", "10324488", "c")],
    )
    con.commit()
    con.close()
    return folder


@pytest.fixture
def collector_cert(tmp_path: Path) -> Path:
    _key, cert, csr = identity.make_collector_identity(ENTP, "pbx1", "pbx1@pbx.example")
    identity.write_certificate(tmp_path / "collector.pem", cert)
    identity.write_atomic(tmp_path / "collector.csr", csr.public_bytes(serialization.Encoding.PEM))
    return tmp_path / "collector.pem"


def admin(state: Path, *args: str) -> int:
    return main(["admin", "--state", str(state), "collector", *args])


def test_provider_cert_is_made_once_and_issued_by_the_deployment_ca(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert admin(state, "provider-cert") == 0
    first = capsys.readouterr()
    assert first.out.startswith("-----BEGIN CERTIFICATE-----")
    assert "harvest@localhost" in first.err
    cert = identity.load_certificate(identity_paths(state)[0])
    ca = identity.load_certificate(state / "ca.pem")
    assert cert.issuer == ca.subject
    assert admin(state, "provider-cert") == 0
    assert capsys.readouterr().out == first.out  # the same certificate again


def test_enroll_list_revoke(
    state: Path, collector_cert: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fp = identity.fingerprint(identity.load_certificate(collector_cert))
    assert admin(state, "enroll", ENTP, str(collector_cert)) == 2  # two corps: which?
    assert "give --corp" in capsys.readouterr().err
    assert admin(state, "enroll", ENTP, str(collector_cert), "--corp", "91000001") == 1
    assert "not a corp of enterprise" in capsys.readouterr().err
    assert admin(state, "enroll", "99999999", str(collector_cert), "--corp", "1") == 1
    assert admin(state, "enroll", ENTP, str(collector_cert), "--corp", "90000003") == 0
    out = capsys.readouterr().out
    assert f"sha256 {fp} for enterprise {ENTP} corp 90000003" in out
    assert admin(state, "list") == 0
    assert f"{ENTP} 90000003 {fp[:16]}" in capsys.readouterr().out
    assert admin(state, "revoke", fp[:12], "--reason", "stolen") == 0
    assert admin(state, "revoke", str(collector_cert)) == 1  # already revoked
    assert "no enrolled, unrevoked collector" in capsys.readouterr().err
    assert admin(state, "list", ENTP) == 0
    assert "revoked (stolen)" in capsys.readouterr().out
    assert admin(state, "revoke", "not-hex!") == 2


def test_a_certificate_request_is_issued_by_the_ca_and_enrolled(
    state: Path, collector_cert: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csr = collector_cert.with_suffix(".csr")
    out = tmp_path / "issued.pem"
    assert admin(state, "enroll", ENTP, str(csr), "--corp", "90000004", "--out", str(out)) == 0
    assert "install it: starwrs collector init --force --cert" in capsys.readouterr().out
    issued = identity.load_certificate(out)
    assert issued.issuer == identity.load_certificate(state / "ca.pem").subject
    assert issued.public_key() == identity.load_certificate(collector_cert).public_key()


def test_audit_prints_the_trail(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert admin(state, "audit") == 0
    assert capsys.readouterr().out == ""


def test_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert admin(tmp_path / "nowhere", "list") == 2
    assert capsys.readouterr().err.count("\n") == 1
    (tmp_path / "s").mkdir()
    assert admin(tmp_path / "s", "enroll", ENTP, str(tmp_path / "none.pem"), "--corp", "1") == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value"),
    [("--harvest-smtp", "no-port"), ("--harvest-smtp", "h:99999"), ("--harvest-mailbox", "x")],
)
def test_serve_checks_the_harvest_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--state", str(tmp_path), option, value])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
