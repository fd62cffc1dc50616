"""cli/cmd_header.py and cli/bench_protocol.py."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from starwrs.cli import bench_protocol
from starwrs.cli.main import main

EXAMPLE_HEX = "0100000400000057000000010000000100000000524d202039663263"
EXAMPLE_TEXT = (
    "HDR<VERSION=1,ECHO=0,MECH=SYNC,LENGTH=87,SERIAL=4294967297,STATUS=0,TARGET=RM,KEY=9f2c>"
)
EXAMPLE_JSON = {
    "version": 1,
    "echo": 0,
    "mech": "SYNC",
    "length": 87,
    "serial": 4294967297,
    "status": 0,
    "target": "RM",
    "key": "9f2c",
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["header", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_decode_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "decode", EXAMPLE_HEX)
    assert (status, err) == (0, "")
    assert json.loads(out) == EXAMPLE_JSON
    status, out, _ = run(capsys, "decode", EXAMPLE_HEX + "00ff", "--text")  # + payload bytes
    assert (status, out.strip()) == (0, EXAMPLE_TEXT)


def test_encode_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "encode", EXAMPLE_TEXT) == (0, EXAMPLE_HEX + "\n", "")
    assert run(capsys, "encode", json.dumps(EXAMPLE_JSON)) == (0, EXAMPLE_HEX + "\n", "")


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(EXAMPLE_HEX[:20] + "\n" + EXAMPLE_HEX[20:]))
    status, out, _ = run(capsys, "decode")
    assert status == 0
    assert json.loads(out) == EXAMPLE_JSON
    monkeypatch.setattr(sys, "stdin", io.StringIO(EXAMPLE_TEXT + "\n"))
    assert run(capsys, "encode", "-") == (0, EXAMPLE_HEX + "\n", "")


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["decode", "zz"], 7009),
        (["decode", "01"], 7009),
        (["decode", "02" + EXAMPLE_HEX[2:]], 7001),
        (["decode", EXAMPLE_HEX[:4] + "09" + EXAMPLE_HEX[6:]], 7008),
        (["decode", EXAMPLE_HEX[:8] + "ffffffff" + EXAMPLE_HEX[16:]], 7005),
        (["decode", EXAMPLE_HEX[:8] + "00000010" + EXAMPLE_HEX[16:]], 7009),
        (["decode", EXAMPLE_HEX[:8] + "0000001c" + EXAMPLE_HEX[16:] + "00"], 7009),
        (["decode", EXAMPLE_HEX, "--max-frame-size", "80"], 7005),
        (["encode", "HDR<VERSION=1"], 7009),
        (["encode", "{not json"], 7009),
        (["encode", "[" * 100000], 7009),
        (["encode", "{" * 100000], 7009),
        (["encode", '{"mech": "TURBO", "target": "RM"}'], 7008),
        (["encode", '{"mech": "SYNC", "target": "RM", "version": 9}'], 7001),
        (["encode", EXAMPLE_TEXT.replace("TARGET=RM", "TARGET=TOOLONG")], 7009),
        (["encode", ""], 7009),
    ],
)
def test_bad_input_is_one_json_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], code: int
) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 1
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert set(obj) == {"error", "message"}
    assert obj["error"] == code


def test_console_script_never_prints_a_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "starwrs.cli", "header", "decode", "0100"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert json.loads(proc.stderr)["error"] == 7009


def test_bench_plumbing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[object] = []

    def fake_rate(fn: object, *, seconds: float = 1.0, batch: int = 100) -> float:
        assert callable(fn)
        fn()  # every benchmarked function works
        calls.append(fn)
        return 1000.0

    monkeypatch.setattr(bench_protocol, "rate", fake_rate)
    assert main(["bench", "header", "--json", "--quick"]) == 0
    assert main(["bench", "frames", "--json", "--quick"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 7
    for line in lines:
        assert set(line) == {"name", "value", "unit", "baseline_name", "baseline_value", "ratio"}
        assert line["ratio"] == 1.0
