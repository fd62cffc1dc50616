"""``starwrs admin tariff load|show``: loads into STATE/harvest/tariffs.sqlite with no
service running; every mistake is one line (one per bad line of the file) and a
non-zero exit, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from starwrs.proxies.harvest.tariffs import TariffStore
from starwrs.runtime.config import Address, Deployment

from .test_cli_errors import one_line_failure, run_cli

TARIFF = """\
plan,BIZ,Business 2026,USA,30/6,0.00,3.0,0.10
rate,BIZ,out,*,*,+1,0.0900,0
profile,00022924,*,BIZ,2026-01-01,V,10
site,00022924,90000003,*,Y0001001,N0001001,+12125551000,4,America/New_York,9
"""


@pytest.fixture
def state(tmp_path: Path) -> Path:
    Deployment(
        state_dir=tmp_path, web=Address("127.0.0.1", 1), dispatchers=(Address("127.0.0.1", 2),)
    ).save()
    return tmp_path


def _admin(state: Path, *argv: str) -> tuple[int, str, str]:
    return run_cli("admin", "--state", str(state), "tariff", *argv)


def test_load_then_show(state: Path, tmp_path: Path) -> None:
    path = tmp_path / "tariffs.csv"
    path.write_text(TARIFF, encoding="utf-8")
    status, out, err = _admin(state, "load", str(path))
    assert (status, err) == (0, "")
    assert out.startswith("loaded tariffs.csv: 1 plan, 1 rate, 1 profile, 1 site")
    assert TariffStore.of(state).snapshot("00022924", "90000003").rates.num_rows == 1
    status, out, _ = _admin(state, "show", "00022924")
    assert status == 0
    assert "plan BIZ: Business 2026 (USA, 30/6, 1 rates)" in out
    assert "profile 00022924/* from 2026-01-01: plan BIZ, product V, discount 10%" in out


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("plan,BIZ,Name,USA,60/60,0,0\n", "t.csv:1: a plan line has 7 fields"),
        ("# x\nrate,BIZ,out,*,*,+1,0.1,0\n", "t.csv:2: rate of plan 'BIZ', which no earlier"),
        ("profile,00022924,*,NOPE,2026-01-01,V,0\n", "t.csv:1: profile of 00022924/* names plan"),
        (b"plan,\xff\n", "t.csv:1: not UTF-8 text"),
    ],
)
def test_a_refused_file_is_one_line(
    state: Path, tmp_path: Path, content: str | bytes, says: str
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    status, out, err = _admin(state, "load", str(path))
    assert status == 1
    assert not out
    line = one_line_failure(status, err)
    assert says in line, line
    assert not (state / "harvest" / "tariffs.sqlite").exists() or (
        TariffStore.of(state).generation() == 0
    )


def test_several_bad_lines_are_one_line_each(state: Path, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("bogus\nplan,X\nplan,Y,Name,USA,1/1,0,0,0\nrate,Y,out,9,*,+1,1,0\n")
    status, _, err = _admin(state, "load", str(path))
    lines = err.strip().splitlines()
    assert status == 1
    assert "Traceback" not in err
    assert [line.split(": ", 1)[1].split(":")[:2] for line in lines[:-1]] == [
        ["t.csv", "1"], ["t.csv", "2"], ["t.csv", "4"],
    ]  # fmt: skip
    assert lines[-1] == "starwrs admin tariff load: 3 problems; nothing loaded"


def test_usage_and_environment_mistakes(state: Path, tmp_path: Path) -> None:
    status, _, err = _admin(state, "load", str(tmp_path / "missing.csv"))
    assert status == 2
    assert "cannot read" in one_line_failure(status, err)
    status, _, err = run_cli("admin", "--state", str(tmp_path / "none"), "tariff", "load", "x")
    assert status == 2
    assert "no deployment in" in one_line_failure(status, err)
    status, _, err = _admin(state, "show")
    assert status == 1
    assert "no tariffs loaded yet" in one_line_failure(status, err)
    status, _, err = _admin(state, "unload")
    assert status == 2
    assert "invalid choice" in one_line_failure(status, err)
