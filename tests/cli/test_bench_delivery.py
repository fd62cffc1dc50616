"""``starwrs bench delivery --quick``: its rows, the outbox's and the end-to-end ones.

The end-to-end rows start a real ``starwrs serve --demo`` (a 20 k-call datamart under
``--quick``), save the demo user's report with EMAIL=1 and time its inbox item and
e-mail; the run fails if either does not arrive or ``L`` does not list the item.
"""

from __future__ import annotations

import json

import pytest
from starwrs.cli import bench_delivery
from starwrs.cli.main import main

pytestmark = pytest.mark.slow


def test_bench_delivery_rows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "delivery", "--json", "--quick"]) == 0
    captured = capsys.readouterr()
    rows = {row["name"]: row for row in map(json.loads, captured.out.splitlines())}
    assert list(rows) == [
        "outbox put (FULL)",
        "outbox put+deliver (FULL)",
        "saved report -> inbox item, 20k",
        "saved report -> e-mail, 20k",
    ]
    for row in rows.values():
        assert set(row) == {"name", "value", "unit", "baseline_name", "baseline_value", "ratio"}
        assert row["value"] > 0
    assert rows["outbox put (FULL)"]["unit"] == "msg/s"
    item, mail = rows["saved report -> inbox item, 20k"], rows["saved report -> e-mail, 20k"]
    assert (item["unit"], item["baseline_value"]) == ("ms", bench_delivery.TARGET_MS)
    assert mail["value"] >= item["value"]  # the e-mail is sent once the item is there
    assert "end to end over 20,000 calls" in captured.err


def test_the_report_mails_its_owner() -> None:
    text = bench_delivery.ARD.format(name="x")
    assert ",ACTIVE=1," in text
    assert ",EMAIL=1," in text
    assert "SCHEDULE=A<" in text  # ad hoc: runs at once
