"""``starwrs bench harvest --quick`` over a few thousand calls through a real ``starwrs
serve``: its row, and every batch applied with all its calls (the bench raises
otherwise)."""

from __future__ import annotations

import json

import pytest
from starwrs.cli import bench_harvest
from starwrs.cli.main import main

pytestmark = pytest.mark.slow


def test_bench_harvest_row(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STARWRS_BENCH_HARVEST_CALLS", "3000")
    monkeypatch.setenv("STARWRS_BENCH_HARVEST_BATCH", "400")
    assert main(["bench", "harvest", "--json", "--quick"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [row["name"] for row in rows] == ["harvest through serve (SMTP..DSS)"]
    (row,) = rows
    assert row["unit"] == "records/s"
    assert row["value"] > 0
    assert row["baseline_value"] > 0
    assert row["baseline_name"] == "bench rating harvest || DSS"
    assert "3000 calls" in bench_harvest.context()
    assert "harvest" in captured.err  # the CPU line names the busiest services
