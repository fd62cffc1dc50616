"""``starwrs client``: end to end against the web server (and its test-double dispatcher).

The web server runs in the test's trio loop; the command runs in a worker thread
(its own ``trio.run``), or once as a real subprocess for the entry point itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest
import trio
from starwrs.cli.cmd_client import default_target
from starwrs.cli.main import main
from starwrs.runtime.config import Address, Deployment
from starwrs.runtime.pki import ensure_pki

from ..web.test_web_fake import (
    BIG,
    CHUNK,
    PASSWORD,
    USER,
    Stack,
    dead_address,
    start_stack,
    state_dir,
)

__all__ = ["state_dir"]  # the fixture, imported for pytest


@pytest.fixture
async def stack(nursery: trio.Nursery, state_dir: Path) -> Stack:
    return await start_stack(nursery, state_dir)


class Run:
    """Run ``starwrs client ...`` in a thread; keep its exit status and output."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.status = -1
        self.out = ""
        self.err = ""

    async def __call__(self, *argv: str) -> Run:
        self.capsys.readouterr()
        self.status = await trio.to_thread.run_sync(main, ["client", *argv])
        captured = self.capsys.readouterr()
        self.out, self.err = captured.out, captured.err
        return self

    def error(self) -> dict[str, object]:
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self.err
        obj = json.loads(lines[0])
        assert isinstance(obj, dict)
        return obj


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(capsys)


def connect(stack: Stack, password: str = PASSWORD) -> list[str]:
    return ["--url", stack.url, "--ca", str(stack.ca), "--user", USER, "--password", password]


async def test_send_sync_prints_the_answer_and_logs_off(stack: Stack, run: Run) -> None:
    await run(*connect(stack), "send", "GRTL<PRODUCT=V>")
    assert (run.status, run.out, run.err) == (0, "GRTLA<ERROR=0,TEMPLATES=2>\n", "")
    kinds = [(s.kind, s.target, s.payload) for s in stack.fake.seen]
    assert kinds[0][:2] == ("request", "DSP")  # LON
    assert kinds[1] == ("request", "RM", b"GRTL<PRODUCT=V>")  # target from the acronym
    assert kinds[2] == ("request", "DSP", b"LOFF<>")
    assert stack.fake.sessions == set()


async def test_options_may_follow_the_action(stack: Stack, run: Run) -> None:
    await run("send", "GRTL<PRODUCT=V>", *connect(stack), "--json", "--target", "RS")
    assert run.status == 0
    obj = json.loads(run.out)
    assert obj["payload"] == "GRTLA<ERROR=0,TEMPLATES=2>"
    assert obj["header"]["status"] == 0
    assert obj["header"]["mech"] == "SYNC"
    assert obj["header"]["key"] == ""
    assert stack.fake.seen[1].target == "RS"


async def test_error_answer_is_exit_1_with_one_json_line(stack: Stack, run: Run) -> None:
    await run(*connect(stack), "send", "BAD<>")
    assert run.status == 1
    assert run.out == ""
    assert run.error() == {
        "error": 6104,
        "message": "6104 no valid request",
        "answer": "BADA<ERROR=6104>",
    }


async def test_wrong_password_is_exit_1(stack: Stack, run: Run) -> None:
    await run(*connect(stack, "wrong"), "send", "GRTL<>")
    assert run.status == 1
    assert run.error() == {"error": 6115, "message": "invalid user or password"}


async def test_password_from_the_environment(
    stack: Stack, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STARWRS_PASSWORD", PASSWORD)
    await run("--url", stack.url, "--ca", str(stack.ca), "--user", USER, "send", "GRTL<>")
    assert run.status == 0


async def test_async_submits_then_polls_until_done(stack: Stack, run: Run) -> None:
    stack.fake.pending_polls = 2
    await run(*connect(stack), "send", "GRTL<PRODUCT=V>", "--mech", "async")
    assert run.status == 0, run.err
    assert run.out == "DONE<ERROR=0,TICKET=tkt-GRTL>\n"
    assert [s.kind for s in stack.fake.seen].count("poll") == 3


async def test_echo(stack: Stack, run: Run) -> None:
    await run(*connect(stack), "echo")
    assert run.status == 0
    assert run.out.startswith("echo ok: DSP answered in ")
    await run(*connect(stack), "echo", "--json")
    assert json.loads(run.out)["header"]["echo"] == 1


async def test_bulk_download_resumes_after_broken_connections(
    stack: Stack, run: Run, tmp_path: Path
) -> None:
    stack.fake.break_after, stack.fake.breaks_left = 2, 2
    out = tmp_path / "report.csv"
    await run(*connect(stack), "send", "F<INBOXID=42>", "--mech", "bulk", "--out", str(out))
    assert run.status == 0, run.err
    assert out.read_bytes() == BIG
    assert not out.with_name("report.csv.part").exists()
    assert json.loads(run.out) == {
        "out": str(out),
        "bytes": len(BIG),
        "sha256": hashlib.sha256(BIG).hexdigest(),
    }
    assert stack.fake.offsets == [0, 2 * CHUNK, 4 * CHUNK]


async def test_bulk_download_resumes_a_previous_run(stack: Stack, run: Run, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    out.with_name("report.csv.part").write_bytes(BIG[:100_000])
    await run(*connect(stack), "send", "F<INBOXID=42>", "--mech", "bulk", "--out", str(out))
    assert run.status == 0, run.err
    assert out.read_bytes() == BIG
    assert stack.fake.offsets == [100_000]


async def test_bulk_checksum_mismatch_is_7011(stack: Stack, run: Run, tmp_path: Path) -> None:
    out = tmp_path / "bad.csv"
    await run(*connect(stack), "send", "F<INBOXID=666>", "--mech", "bulk", "--out", str(out))
    assert run.status == 1
    assert run.error()["error"] == 7011
    assert not out.exists()
    assert not out.with_name("bad.csv.part").exists()


async def test_bulk_error_answer(stack: Stack, run: Run, tmp_path: Path) -> None:
    await run(
        *connect(stack), "send", "F<INBOXID=1>", "--mech", "bulk", "--out", str(tmp_path / "x")
    )
    assert run.status == 1
    assert run.error() == {
        "error": 5105,
        "message": "5105 could not make an SQL connection to the Inbox database",
        "answer": "F<ERROR=5105>",
    }


async def test_state_directory_gives_url_and_ca(stack: Stack, run: Run, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "ca.pem").write_bytes(stack.ca.read_bytes())
    Deployment(state_dir=state, web=Address("0.0.0.0", stack.web.port), dispatchers=()).save()
    await run("--state", str(state), "--user", USER, "--password", PASSWORD, "send", "GRTL<>")
    assert run.status == 0, run.err


async def test_connection_errors_are_exit_2(stack: Stack, run: Run, tmp_path: Path) -> None:
    dead = f"https://127.0.0.1:{dead_address().port}"
    await run("--url", dead, "--ca", str(stack.ca), "--user", USER, "--password", "p", "echo")
    assert run.status == 2
    assert "cannot connect" in str(run.error()["message"])
    other = ensure_pki(tmp_path / "other")  # a CA that did not sign the server
    await run(*connect(stack), "--ca", str(other.ca_cert), "echo")
    assert run.status == 2
    assert "not trusted" in str(run.error()["message"])
    assert "Traceback" not in run.err


@pytest.mark.parametrize(
    "argv",
    [
        ["--url", "https://127.0.0.1:1", "--password", "p", "echo"],  # no user
        ["--user", "u", "--password", "p", "echo"],  # no URL, no state
        ["--url", "http://127.0.0.1:1", "--user", "u", "--password", "p", "echo"],
        [
            "--url",
            "https://127.0.0.1:1",
            "--user",
            "u",
            "--password",
            "p",
            "send",
            "F<>",
            "--mech",
            "bulk",
        ],
        [
            "--url",
            "https://127.0.0.1:1",
            "--ca",
            "/nonexistent.pem",
            "--user",
            "u",
            "--password",
            "p",
            "echo",
        ],
    ],
)
async def test_usage_errors_are_exit_2(
    run: Run, argv: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./state here
    monkeypatch.delenv("STARWRS_USER", raising=False)
    await run(*argv)
    assert run.status == 2
    assert "error" in run.error()


async def test_the_console_entry_point(stack: Stack) -> None:
    env = dict(os.environ, STARWRS_PASSWORD=PASSWORD)
    argv = [
        sys.executable,
        "-m",
        "starwrs.cli",
        "client",
        "--url",
        stack.url,
        "--ca",
        str(stack.ca),
    ]
    done = await trio.run_process(
        [*argv, "--user", USER, "send", "GRTL<PRODUCT=V>"],
        env=env,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, b"GRTLA<ERROR=0,TEMPLATES=2>\n", b"")
    assert PASSWORD.encode() not in b" ".join(a.encode() for a in argv)


def test_default_target_follows_the_catalogue() -> None:
    assert default_target("GRTL<PRODUCT=V>") == "RM"
    assert default_target("F<INBOXID=42>") == "INBX"
    assert default_target("GUA<USERID=x>") == "OE"
    assert default_target("NOPE<>") == "RM"
    assert default_target("<<<") == "RM"
