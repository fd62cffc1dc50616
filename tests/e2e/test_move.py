"""``starwrs admin datamart move``: a corp changes partition while its reports keep coming."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from starwrs.proxies.rm.templates import TEMPLATES
from starwrs.storage.datamart.partitions import read_partition_map

from ..proxies.test_dss_sql import Request
from .system import System, start
from .test_report import JUNE_JULY, ard_text

CORP = "90000004"


def cli(system: System, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starwrs.cli", *argv],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def city_summary(system: System, request_id: int, out: Path) -> list[list[str]]:
    template = TEMPLATES[90]
    request = Request(
        template, template.columns, billing=((CORP,),), sort=((54, "D"),),
        periods=JUNE_JULY, total_mode=2, entitled=(CORP,),
    )  # fmt: skip
    path = out / f"{request_id}.csv"
    done = cli(
        system, "report", "--state", str(system.state), "--out", str(path),
        ard_text(request, request_id),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    system = start(tmp_path_factory.mktemp("move") / "s", "--demo-calls", "30000")
    yield system
    system.stop()


def test_reports_are_answered_before_during_and_after_a_move(
    system: System, tmp_path: Path
) -> None:
    before_partition = read_partition_map(system.state).partition_of(CORP)
    target = 2 if before_partition == 1 else 1
    before = city_summary(system, 8001, tmp_path)
    assert len(before) > 2

    during: list[list[list[str]]] = []
    failures: list[BaseException] = []
    moving = threading.Event()

    def keep_asking() -> None:
        rid = 8100
        try:
            while not moving.is_set() or len(during) < 2:
                rid += 1
                during.append(city_summary(system, rid, tmp_path))
        except BaseException as err:  # collected for the assertion below
            failures.append(err)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    moved = cli(
        system, "admin", "--state", str(system.state), "datamart", "move", CORP, f"ODS{target}"
    )
    moving.set()
    asker.join(timeout=300)
    assert moved.returncode == 0, moved.stderr
    assert f"FROM={before_partition}" in moved.stdout
    assert f"TO={target}" in moved.stdout
    assert not failures, failures
    assert all(rows == before for rows in during)

    assert read_partition_map(system.state).partition_of(CORP) == target
    where = cli(system, "admin", "--state", str(system.state), "datamart", "where", CORP)
    assert f"ODS={target}" in where.stdout
    after = city_summary(system, 8900, tmp_path)
    assert after == before


def test_move_refuses_an_unknown_partition(system: System) -> None:
    done = cli(system, "admin", "--state", str(system.state), "datamart", "move", CORP, "ODS9")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
