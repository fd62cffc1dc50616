"""``free_port``: below the ephemeral range, and claimed among starwrs processes so that
two deployments choosing their ports side by side never choose the same one (a
deployment chooses every port seconds before its processes bind them)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from starwrs.runtime import config


@pytest.fixture
def claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(config.tempfile, "gettempdir", lambda: str(tmp_path))
    return tmp_path / f"starwrs-ports-{os.getuid()}"


def test_ports_are_distinct_below_the_ephemeral_range(claims: Path) -> None:
    ports = [config.free_port() for _ in range(200)]
    assert len(set(ports)) == 200  # never the same port twice while claimed
    assert all(config._PORT_RANGE[0] <= p < config._ephemeral_floor() for p in ports)
    assert sorted(int(p.name) for p in claims.iterdir()) == sorted(ports)


def test_a_live_processs_fresh_claim_is_respected(claims: Path) -> None:
    # a live process of another pid: it waits on its stdin until killed
    read = [sys.executable, "-c", "import sys; sys.stdin.read()"]
    with subprocess.Popen(read, stdin=subprocess.PIPE) as other:
        try:
            claims.mkdir(mode=0o700)
            (claims / "20001").write_text(str(other.pid))
            assert not config._reserve(20001)
        finally:
            other.kill()
    other.wait()
    assert config._reserve(20001)  # its process is gone: taken over
    assert (claims / "20001").read_text() == str(os.getpid())
    assert not config._reserve(20001)  # ours now, for something else


def test_a_stale_claim_is_taken_over(claims: Path) -> None:
    claims.mkdir(mode=0o700)
    claim = claims / "20002"
    claim.write_text("1")  # pid 1 is alive, but the claim is older than the TTL
    old = time.time() - config._CLAIM_TTL - 1
    os.utime(claim, (old, old))
    assert config._reserve(20002)
