"""``starwrs parse`` through the installed console script, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from starwrs.grammar.seed import seed_text

STARWRS = [sys.executable, "-m", "starwrs.cli"]


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*STARWRS, *args], input=stdin, capture_output=True, timeout=60)


def test_parse_prints_canonical_json() -> None:
    done = run("parse", stdin=b"GRTL<PRODUCT=V, DATATYPE=R,DATA CAT=P,IO=O>\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "acronym": "GRTL",
        "members": [
            {"key": "PRODUCT", "value": "V"},
            {"key": "DATATYPE", "value": "R"},
            {"key": "DATA CAT", "value": "P"},
            {"key": "IO", "value": "O"},
        ],
    }
    assert done.stdout.decode().strip() == json.dumps(
        json.loads(done.stdout), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def test_parse_canonical_text_from_a_file(tmp_path) -> None:
    path = tmp_path / "ard.txt"
    path.write_text(seed_text("07_ard.txt").replace(",", " , "), encoding="utf-8")
    done = run("parse", "--canonical", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().rstrip("\n") == seed_text("07_ard.txt").replace(", CURR", ",CURR")


def test_parse_validate_accepts_the_seed_ard() -> None:
    done = run("parse", "--validate", stdin=seed_text("07_ard.txt").encode())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["acronym"] == "ARD"


@pytest.mark.parametrize(
    ("text", "code", "offset"),
    [
        (b"GRTL<PRODUCT=V", 6612, 14),
        (b"", 6611, 0),
        (b"A<V=\x02>", 6610, 4),
        (b"\xff\xfe", 6610, 0),
    ],
)
def test_bad_input_is_one_json_line_and_exit_1(text: bytes, code: int, offset: int) -> None:
    done = run("parse", stdin=text)
    assert done.returncode == 1
    assert done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1
    error = json.loads(lines[0])
    assert (error["error"], error["offset"]) == (code, offset)
    assert "Traceback" not in done.stderr.decode()


def test_validate_failure_carries_the_catalogue_code() -> None:
    done = run("parse", "--validate", stdin=b"GRTL<PRODUCT=V,DATATYPE=R,DATA CAT=P>")
    assert done.returncode == 1
    assert json.loads(done.stderr)["error"] in (6114, 6701)


def test_missing_file_is_a_clean_error(tmp_path) -> None:
    done = run("parse", str(tmp_path / "nope.txt"))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr.decode()
    assert json.loads(done.stderr)["error"] == 6611


def test_bench_json_shape() -> None:
    done = run("bench", "parse", "--quick", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert rows
    for row in rows:
        assert set(row) == {"name", "value", "unit", "baseline_name", "baseline_value", "ratio"}
    names = {row["name"] for row in rows}
    assert {"parse+validate ARD", "parse ARD", "parse ARD (lark)"} <= names
