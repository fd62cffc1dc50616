"""``starwrs bench rating --quick`` over a few thousand calls: its rows, and the
overlapped run's DSS process loads every priced row (the bench raises otherwise)."""

from __future__ import annotations

import json

import pytest
from starwrs.cli import bench_rating
from starwrs.cli.main import main

pytestmark = pytest.mark.slow


def test_bench_rating_rows(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STARWRS_BENCH_RATING_CALLS", "3000")
    monkeypatch.setenv("STARWRS_BENCH_RATING_BATCH", "400")
    assert main(["bench", "rating", "--json", "--quick"]) == 0
    captured = capsys.readouterr()
    rows = {row["name"]: row for row in map(json.loads, captured.out.splitlines())}
    assert list(rows) == [
        "rating end to end (verify..load)",
        "rating end to end, harvest || DSS",
        "rating: harvest steps alone",
    ]
    for row in rows.values():
        assert row["unit"] == "records/s"
        assert row["value"] > 0
        assert row["baseline_name"] == "load of the same calls unrated"
    assert "priced 3,000 of 3,000" in captured.err
    assert "overlapped" in bench_rating.context()
