"""``starwrs admin tariff load`` and ``starwrs admin rerate`` against a running system: a
period of a corp's stored calls is priced again through its DSS (XPRT, RRAT), the rest
is left alone, running it again changes nothing, and a tariff that does not cover every
call changes nothing at all."""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import sys
from pathlib import Path

import pytest
from starwrs.proxies.rm.templates import TEMPLATES

from ..proxies.test_dss_sql import Request
from .system import System, start
from .test_report import ard_text

CORP = "90000003"
ENTP = "00022924"
T = dt.datetime
JUNE = ((T(1998, 6, 1), T(1998, 6, 30, 23, 59)),)
JULY = ((T(1998, 7, 1), T(1998, 7, 31, 23, 59)),)
TARIFF = f"""\
plan,R,Re-rating test,USA,6/6,0,0,0
rate,R,*,*,*,+,0.1000,0
rate,R,*,*,*,+1,0.0500,0
profile,{ENTP},{CORP},R,1998-01-01,S,0
"""


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starwrs.cli", *argv],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def city_summary(system: System, request_id: int, periods: object, out: Path) -> list[list[str]]:
    template = TEMPLATES[90]
    request = Request(
        template, template.columns, billing=((CORP,),), sort=((54, "D"),),
        periods=periods, total_mode=2, entitled=(CORP,),
    )  # fmt: skip
    path = out / f"{request_id}.csv"
    done = cli(
        "report", "--state", str(system.state), "--out", str(path), ard_text(request, request_id)
    )
    assert done.returncode == 0, done.stderr
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    system = start(tmp_path_factory.mktemp("rerate") / "s", "--demo-calls", "20000")
    yield system
    system.stop()


def test_rerate_prices_the_period_again_and_nothing_else(system: System, tmp_path: Path) -> None:
    state = str(system.state)
    june = city_summary(system, 9001, JUNE, tmp_path)
    july = city_summary(system, 9002, JULY, tmp_path)
    assert len(june) > 2

    # a tariff that leaves international calls uncovered: refused, nothing changes
    partial = tmp_path / "partial.csv"
    partial.write_text(TARIFF.replace("rate,R,*,*,*,+,0.1000,0\n", ""), encoding="utf-8")
    assert cli("admin", "--state", state, "tariff", "load", str(partial)).returncode == 0
    refused = cli("admin", "--state", state, "rerate", "--corp", CORP, "--from", "1998-06-01",
                  "--to", "1998-06-30")  # fmt: skip
    assert refused.returncode == 1, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert "are not covered by the tariffs now" in line
    assert line.endswith("nothing changed")
    assert city_summary(system, 9003, JUNE, tmp_path) == june

    full = tmp_path / "full.csv"
    full.write_text(TARIFF, encoding="utf-8")
    assert cli("admin", "--state", state, "tariff", "load", str(full)).returncode == 0
    done = cli("admin", "--state", state, "rerate", "--corp", CORP, "--from", "1998-06-01",
               "--to", "1998-06-30")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"rerated corp {CORP} from 1998-06-01 to 1998-06-30:")

    after = city_summary(system, 9004, JUNE, tmp_path)
    # the same cities, calls and minutes, other amounts (column 58); July untouched
    header = june[0]
    amount, calls, minutes = header.index("58"), header.index("67"), header.index("36")
    assert len(after) == len(june)
    for old, new in zip(june[1:], after[1:], strict=True):
        assert (new[calls], new[minutes]) == (old[calls], old[minutes])
    assert [r[amount] for r in after[1:]] != [r[amount] for r in june[1:]]
    assert city_summary(system, 9005, JULY, tmp_path) == july

    again = cli("admin", "--state", state, "rerate", "--corp", CORP, "--from", "1998-06-01",
                "--to", "1998-06-30")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "no price changed" in again.stdout
    assert city_summary(system, 9006, JUNE, tmp_path) == after
