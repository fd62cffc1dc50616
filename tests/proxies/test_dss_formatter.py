"""The formatter: records of the report file, the file itself, and failures that leave nothing."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starwrs.grammar import parse
from starwrs.grammar.catalogue import validate
from starwrs.grammar.catalogue_fulfil import FulfilAddReportDefinition
from starwrs.grammar.vocab import TotalMode
from starwrs.proxies.dss.formatter import (
    ReportFormatter,
    format_number,
    format_value,
    iter_rows,
    write_report,
)
from starwrs.proxies.dss.sql import ReportPlan, build_query

D = Decimal
CORP = "90000003"


def stamp(moment: dt.datetime) -> str:
    """``YYYYMMDDhhmm``."""
    return moment.strftime("%Y%m%d%H%M")


def ard_text(
    *,
    template: int = 90,
    columns: Sequence[int] = (54, 55, 67, 62, 36, 61, 58, 63, 64, 66, 65),
    billing: str = "<90000003,,>",
    filters: str = "",
    sort: str | None = None,
    total_mode: int = 0,
    subtotals: Sequence[int] = (),
    reccount: int | None = None,
    periods: Iterable[tuple[dt.datetime, dt.datetime]] = (
        (dt.datetime(1998, 6, 1), dt.datetime(1998, 7, 31, 23, 59)),
    ),
    offset: int = -5,
    product: str = "S",
    compress: bool = False,
) -> str:
    """An Appendix D ARD as the Report Scheduler sends it."""
    del compress  # the ARD has no COMPRESS; kept for call sites that vary it
    pairs = ",".join(f"START={stamp(a)},END={stamp(b)}" for a, b in periods)
    parts = [
        "ENTPID=00022924",
        "USERID=jeanvnet2",
        f"STDRPTID={template}",
        "USERRPTID=3415",
        "REQUESTID=20341",
        f"PRODUCT={product}",
        f"THRESHOLD=<RECCOUNT={reccount}>" if reccount else "THRESHOLD=<ANI=20>",
        f"COLUMNS=<{'~'.join(map(str, columns))}>",
        "FILTERS=<" + ",".join(p for p in (f"BILLING={billing}", filters) if p) + ">",
        f"SORTBY=<{sort}>" if sort else "",
        f"SCHEDULE=A<{pairs}>",
        f"TIMEZONE=<LABEL=EST,OFFSET={offset}>",
        f"TOTALMODE={total_mode}",
        f"SUBTOTCOL=<{'~'.join(map(str, subtotals))}>" if subtotals else "",
    ]
    return "ARD<" + ",".join(p for p in parts if p) + ">"


def ard(**kwargs: object) -> FulfilAddReportDefinition:
    """The typed ARD of :func:`ard_text`."""
    message = validate(parse(ard_text(**kwargs)), "DSS")  # type: ignore[arg-type]
    assert isinstance(message, FulfilAddReportDefinition)
    return message


def plan(**kwargs: object) -> ReportPlan:
    return build_query(ard(**kwargs), [CORP]).plan


def city_plan(total_mode: int, **kwargs: object) -> ReportPlan:
    """City Summary (template 90): dims 54, 55; facts 67, 36, 58; derived 62, 61, 63, 64, 66, 65."""
    subtotals = (55,) if total_mode in (1, 3) else ()
    return plan(total_mode=total_mode, subtotals=subtotals, **kwargs)


#: the query's rows for city_plan: (_rt, city, state, calls, minutes, amount), T first
ROWS: list[tuple[object, ...]] = [
    ("T", None, None, 4, D("16.5"), D("3.60")),
    ("D", "BOULDER", "CO", 1, D("10.0"), D("2.00")),
    ("D", "DENVER", "CO", 2, D("3.5"), D("0.70")),
    ("S", None, "CO", 3, D("13.5"), D("2.70")),
    ("D", "DALLAS, TX", "TX", 1, D("3.0"), D("0.90")),
    ("S", None, "TX", 1, D("3.0"), D("0.90")),
]


def table(text: str) -> list[list[str]]:
    """Records written one per line, cells separated by ``|``."""
    return [line.strip().split("|") for line in text.strip().splitlines()]


def records(p: ReportPlan, rows: Sequence[Sequence[object]]) -> list[list[str]]:
    return list(ReportFormatter(p).records(rows))


def test_city_summary_with_subtotals_and_total() -> None:
    p = city_plan(3)
    assert p.dims == (54, 55)
    assert p.facts == (67, 36, 58)
    assert records(p, ROWS) == table(
        """
        0|54|55|67|62|36|61|58|63|64|66|65
        D|BOULDER|CO|1|25.0|10.0|60.6|2.00|55.6|10.00|2.00|0.20
        D|DENVER|CO|2|50.0|3.5|21.2|0.70|19.4|1.75|0.35|0.20
        S||CO|3|75.0|13.5|81.8|2.70|75.0|4.50|0.90|0.20
        D|DALLAS, TX|TX|1|25.0|3.0|18.2|0.90|25.0|3.00|0.90|0.30
        S||TX|1|25.0|3.0|18.2|0.90|25.0|3.00|0.90|0.30
        T|||4|100.0|16.5|100.0|3.60|100.0|4.13|0.90|0.22
        """
    )


@pytest.mark.parametrize("mode", list(TotalMode))
def test_total_mode_chooses_the_lines(mode: TotalMode) -> None:
    p = city_plan(int(mode))
    rows = ROWS if mode.needs_subtotals else [r for r in ROWS if r[0] != "S"]
    types = [r[0] for r in records(p, rows)[1:]]
    expected = ["D", "D", "S", "D", "S"] if mode.needs_subtotals else ["D", "D", "D"]
    if mode in (TotalMode.TOTAL, TotalMode.BOTH):
        expected.append("T")
    assert types == expected
    formatter = ReportFormatter(p)
    list(formatter.records(rows))
    assert formatter.totals == ((67, "4"), (36, "16.5"), (58, "3.60"))  # whatever the mode


def test_division_by_zero_is_an_empty_cell() -> None:
    p = city_plan(2)
    rows = [("T", None, None, 1, D("0.0"), D("0.00")), ("D", "X", "CO", 1, D("0.0"), D("0.00"))]
    out = records(p, rows)
    assert out[1] == ["D", "X", "CO", "1", "100.0", "0.0", "", "0.00", "", "0.00", "0.00", ""]


def test_translations_and_values() -> None:
    # Usage Summary (inbound): 105 usage and 114 range are translated codes
    p = plan(template=10, columns=(105, 114, 67, 12, 14, 1, 10), total_mode=2)
    assert p.dims == (105, 114, 12, 14, 1, 10)
    row = ("D", "3", "B", 2, 1, dt.date(1998, 6, 2), "A", 7)
    assert (
        records(p, [row])[1]
        == table("D|INTERNATIONAL|56 TO 124 MILES|7|Monday|Yes|1998-06-02|800 WATTS LINE")[0]
    )
    assert format_value(114, "Z") == "Z"  # a code without a literal stays a code
    assert format_value(54, None) == ""
    assert format_number(D("-0.04"), 1) == "0.0"
    assert format_number(580, 0) == "580"
    assert format_number(None, 2) == ""
    with pytest.raises(TypeError):
        format_number(0.1, 1)


def _csv_rows(data: bytes) -> list[list[str]]:
    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_the_file_is_rfc4180_utf8_crlf(tmp_path: Path) -> None:
    p = city_plan(3)
    rows = [*ROWS[:4], ("D", 'MONTRÉAL "QC"', "QC", 1, D("3.0"), D("0.90")), ROWS[5]]
    report = write_report(iter(rows), p, tmp_path, stem="R20341")
    data = report.path.read_bytes()
    assert report.name.startswith("R20341_")
    assert report.name.endswith(".csv")
    assert report.size == len(data)
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    assert b'"MONTR\xc3\x89AL ""QC"""' in data
    assert _csv_rows(data) == records(p, rows)
    assert (report.rows, report.subtotals) == (3, 2)
    assert report.nrl_total == (("67", "4"), ("36", "16.5"), ("58", "3.60"))
    assert [f.name for f in tmp_path.iterdir()] == [report.name]


def test_compressed_file_holds_the_one_csv(tmp_path: Path) -> None:
    p = city_plan(3)
    report = write_report(iter(ROWS), p, tmp_path, compress=True, stem="R1")
    assert report.name.endswith(".csv_zip")
    data = report.path.read_bytes()
    assert report.size == len(data)
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    with zipfile.ZipFile(report.path) as archive:
        (member,) = archive.namelist()
        assert member == report.name.removesuffix("_zip")
        assert _csv_rows(archive.read(member)) == records(p, ROWS)


def test_names_are_unique(tmp_path: Path) -> None:
    p = city_plan(0)
    names = {write_report(iter(ROWS), p, tmp_path).name for _ in range(20)}
    assert len(names) == 20


def test_a_failing_query_leaves_no_file(tmp_path: Path) -> None:
    def rows() -> Iterator[tuple[object, ...]]:
        yield ROWS[0]
        for n in range(5_000):
            yield ("D", f"CITY{n}", "CO", 1, D("1.0"), D("0.10"))
        raise duckdb.InterruptException("cancelled")

    with pytest.raises(duckdb.InterruptException):
        write_report(rows(), city_plan(2), tmp_path, compress=False)
    with pytest.raises(duckdb.InterruptException):
        write_report(rows(), city_plan(2), tmp_path, compress=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("compress", [False, True])
def test_a_write_that_fails_midway_leaves_no_file(tmp_path: Path, compress: bool) -> None:
    """A real failing write: the child may not grow a file past 16 KiB (RLIMIT_FSIZE)."""
    child = textwrap.dedent(
        f"""
        import resource, signal, sys
        from decimal import Decimal as D
        from starwrs.proxies.dss.formatter import write_report
        from tests.proxies.test_dss_formatter import ard
        from starwrs.proxies.dss.sql import build_query
        plan = build_query(ard(total_mode=2), ["{CORP}"]).plan
        rows = [("T", None, None, 1, D("1.0"), D("1.00"))]
        rows += [("D", f"CITY{{n}}", "CO", 1, D("1.0"), D("0.10")) for n in range(20_000)]
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
        try:
            write_report(iter(rows), plan, sys.argv[1], compress={compress})
        except OSError as err:
            print("failed:", err.errno)
        else:
            print("written")
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", child, str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("failed: 27"), done.stdout  # EFBIG
    assert list(tmp_path.iterdir()) == []


def test_rows_are_read_in_batches() -> None:
    con = duckdb.connect()
    result = con.execute("SELECT * FROM range(25003)")
    assert sum(1 for _ in iter_rows(result, batch=1000)) == 25003


@given(
    st.lists(
        st.tuples(
            st.integers(1, 10_000),
            st.integers(0, 10**6).map(lambda n: D(n).scaleb(-1)),
            st.integers(0, 10**7).map(lambda n: D(n).scaleb(-2)),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_percentages_of_a_report_sum_to_100(facts: list[tuple[int, Decimal, Decimal]]) -> None:
    p = city_plan(2)
    totals = [sum(f[i] for f in facts) for i in range(3)]
    rows = [("T", None, None, *totals)]
    rows += [("D", f"C{n}", "CO", *f) for n, f in enumerate(facts)]
    out = records(p, rows)
    header = out[0]
    details = [r for r in out[1:] if r[0] == "D"]
    for colid, base in ((62, 0), (61, 1), (63, 2)):
        if totals[base] == 0:
            continue
        at = header.index(str(colid))
        total = sum(D(r[at]) for r in details if r[at])
        assert abs(total - 100) <= D("0.05") * len(details)
        assert out[-1][at] == "100.0"
