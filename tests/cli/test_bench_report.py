"""``starwrs bench report`` on a tiny datamart: its rows, and its two sides agree.

The bench itself refuses to time a report whose rows and totals differ from its
direct query's, so a run is also a check of the hand-written queries.
"""

from __future__ import annotations

import json

import pytest
from starwrs.cli import bench_report
from starwrs.cli.main import main

pytestmark = pytest.mark.slow


def test_bench_report_rows(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STARWRS_BENCH_REPORT_CALLS", "5000")
    assert main(["bench", "report", "--json", "--quick"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["name"] for r in rows] == [
        "report: City Summary 5k",
        "report: Longest Calls 5k",
        "report: Hourly Distribution 5k",
        "report: dss peak RSS 5k",
    ]
    for row in rows:
        assert set(row) == {"name", "value", "unit", "baseline_name", "baseline_value", "ratio"}
        assert row["value"] > 0
        assert row["baseline_value"] > 0
    assert {r["unit"] for r in rows} == {"ms", "MB"}
    assert "where the time goes" in captured.err
    assert "dss child over 5k" in bench_report.context()


def test_the_ard_is_the_templates_default_report() -> None:
    template = bench_report._template("City Summary")
    assert template.template_id == 90
    text = bench_report.ard_text(template, "90000003")
    assert "STDRPTID=90," in text
    assert "COLUMNS=<54~55~67~62~36~61~58~63~64~66~65>" in text
