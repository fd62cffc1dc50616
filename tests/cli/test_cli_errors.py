"""Every CLI mistake is one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import contextlib
import io
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starwrs.cli.main import build_parser, main
from starwrs.runtime.config import Address, Deployment

from ..conftest import scaled


def run_cli(*argv: str) -> tuple[int, str, str]:
    """Run ``starwrs ARGV`` in this process; (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(argv))
        except SystemExit as leaving:
            status = leaving.code if isinstance(leaving.code, int) else 2
    return status, out.getvalue(), err.getvalue()


def one_line_failure(status: int, stderr: str) -> str:
    assert status != 0
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_version() -> None:
    status, out, _ = run_cli("--version")
    assert status == 0
    assert out.startswith("starwrs ")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["nothing"], "invalid choice"),
        (["serve", "--bogus"], "unrecognized arguments"),
        (["serve", "--port", "x"], "invalid int value"),
        (["client", "send", "GRTL<>", "--target", "ZZZZZ"], "is not a target"),
        (["client", "echo", "--target", "R M"], "is not a target"),
        (["run", "nosuch", "--state", "s"], "invalid choice"),
        (["header", "decode", "00", "--max-frame-size", "-1"], "outside 24.."),
        (["header", "encode", "x", "--max-frame-size", "ten"], "not a whole number"),
        (["admin", "apps", "someone", "RM", "NOPE"], "is not an application"),
    ],
)
def test_usage_mistakes(argv: list[str], says: str) -> None:
    status, _, err = run_cli(*argv)
    assert status == 2
    assert says in one_line_failure(status, err)


def test_run_lists_only_services_that_exist() -> None:
    status, _, err = run_cli("run", "--help")
    assert status == 0 or not err
    status, _, err = run_cli("run", "nosuch", "--state", "s")
    line = one_line_failure(status, err)
    assert "'web'" in line
    assert "'dispatcher'" in line


def test_out_of_range_serial_says_so() -> None:
    text = (
        "HDR<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=24,SERIAL=999999999999999999999999,"
        "STATUS=0,TARGET=RM,KEY=>"
    )
    status, _, err = run_cli("header", "encode", text)
    line = one_line_failure(status, err)
    assert "serial must be an integer 0..18446744073709551615" in line


def _deployment(tmp_path: Path) -> Deployment:
    deployment = Deployment(
        state_dir=tmp_path,
        web=Address("127.0.0.1", 1),
        dispatchers=(Address("127.0.0.1", 2),),
    )
    deployment.save()
    return deployment


def test_run_dispatcher_index_out_of_range(tmp_path: Path) -> None:
    _deployment(tmp_path)
    status, _, err = run_cli("run", "dispatcher", "--state", str(tmp_path), "--index", "5")
    assert "not a dispatcher of this deployment" in one_line_failure(status, err)


def test_run_without_a_deployment(tmp_path: Path) -> None:
    status, _, err = run_cli("run", "rm", "--state", str(tmp_path))
    assert "deployment.json" in one_line_failure(status, err)


def test_serve_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, _, err = run_cli("serve", "--state", str(tmp_path / "s"), "--port", str(port))
    line = one_line_failure(status, err)
    assert f"port {port} on 127.0.0.1 is in use" in line
    assert not (tmp_path / "s" / "deployment.json").exists()


def test_serve_refuses_a_state_directory_in_use(tmp_path: Path) -> None:
    """A second serve on a locked state directory changes nothing."""
    state = tmp_path / "s"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib; from starwrs.runtime.statelock import lock_state;"
            "lock_state(pathlib.Path(sys.argv[1])); print('locked', flush=True); sys.stdin.read()",
            str(state),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        before = sorted(p.name for p in state.iterdir())
        status, _, err = run_cli("serve", "--state", str(state), "--port", "0")
        line = one_line_failure(status, err)
        assert f"pid {holder.pid}" in line
        assert "in use by another starwrs serve" in line
        assert sorted(p.name for p in state.iterdir()) == before
    finally:
        holder.communicate("")
    # once the holder is gone the lock is free again
    from starwrs.runtime.statelock import lock_state

    lock_state(state)


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--port", "70000"],
        ["serve", "--dispatchers", "0"],
        ["serve", "--session-idle", "-5"],
    ],
)
def test_serve_refuses_bad_numbers(tmp_path: Path, argv: list[str]) -> None:
    status, _, err = run_cli(*argv[:1], "--state", str(tmp_path / "s"), *argv[1:])
    one_line_failure(status, err)
    assert not (tmp_path / "s" / "deployment.json").exists()


_WORDS = st.sampled_from(
    [
        "serve", "client", "send", "echo", "run", "admin", "apps", "enable", "disable",
        "parse", "header", "decode", "encode", "bench", "status", "--state", "--port",
        "--target", "--index", "--mech", "--json", "--max-frame-size", "--help-me",
        "--user", "--url", "--add", "--remove", "-", "--", "=", "RM", "ZZZZZ", "-1",
        "99999999999999999999", "web", "dispatcher", "nosuch", "\x00", "é", "",
    ]
)  # fmt: skip


@settings(max_examples=scaled(500))
@given(st.lists(_WORDS | st.text(max_size=8), max_size=6))
@example(["serve", "\x1e"])  # a record separator once split the error line in two
def test_random_arguments_never_give_a_traceback(argv: list[str]) -> None:
    """The parser answers any argument list with a namespace or one line and exit 2."""
    parser = build_parser(argv)
    err = io.StringIO()
    code: object = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(argv)
        except SystemExit as leaving:
            code = leaving.code
    if code not in (0, None):
        assert code == 2
        one_line_failure(2, err.getvalue())
    assert "Traceback" not in err.getvalue()
