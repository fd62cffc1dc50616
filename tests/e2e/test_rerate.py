"""``starwrs admin tariff load`` and ``starwrs admin rerate`` against a running system: a
period of a corp's stored calls is priced again through its DSS (XPRT, RRAT), the rest
is left alone, running it again changes nothing, and a tariff that does not cover every
call changes nothing at all.  The users whose delivered reports (saved and run through
the web tier, in their inboxes) hold a re-priced call get one news item naming those
reports, once, and nobody else does."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from starwrs.protocol.events import Frame
from starwrs.protocol.header import Mechanism
from starwrs.proxies.rm.templates import TEMPLATES
from starwrs.storage.datamart.partitions import read_partition_map

from ..proxies.test_dss_sql import Request
from . import test_inbox
from .system import System, start
from .test_delivery import quick_save, until
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
#: plan R again at other rates (never TARIFF's): whichever test runs first, June's
#: prices change in both
NEWS_TARIFFS = (
    TARIFF.replace("0.1000", "0.2500").replace("0.0500", "0.0700"),
    TARIFF.replace("0.1000", "0.3000").replace("0.0500", "0.0900"),
)
#: a customer's report definition, saved through the web tier and run at once
#: (TIMEZONE 45: EDT, so June is 1998-06-01 04:00 to 07-01 03:59 GMT)
SAVED_ARD = (
    "ARD<USERID={user},ENTPID={entp},STDRPTID=90,NAME={name},PRODUCT={product},"
    "CATEGORY=Analyze Traffic,THRESHOLD=<RECCOUNT=20>,"
    "SCHEDULE=A<START={start},END={end}>,RANGETYPE=1,SCHEDTYPE=A,TIMEZONE=45,"
    "BILLING=INBOUND<<{corp},{corp}><NA,NA><NA,NA>>,SORTBY=<54D>,"
    "COLUMNS=<54~55~67~62~36~61~58>,ACTIVE=1,TOTALMODE=2,EMAIL=0,PAGE=0>"
)
JUNE_ARD = {"start": "199806010000", "end": "199806302359"}
JULY_ARD = {"start": "199807010000", "end": "199807312359"}
NEWS_TITLE = f"Calls re-priced: corp {CORP}, 1998-06-01 to 1998-06-30"


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


def listed(system: System, cookie: str, user: str, entp: str, category: str) -> list[list[str]]:
    """The user's inbox items of *category*, listed through the web tier as the user."""
    text = f"L<ENTPID={entp},USERID={user},CATEGORY={category}>".encode()
    _, frames = system.dispatch(cookie, Frame.build(Mechanism.SYNC, "INBX", text))
    return test_inbox.items(frames[0].payload.decode())


def runs(state: Path, reports: list[int]) -> dict[int, tuple[int, str]]:
    """report id -> (request id, state) of the Report Manager's runs (read-only)."""
    con = sqlite3.connect(f"file:{state / 'rm.db'}?mode=ro", uri=True, timeout=5)
    try:
        rows = con.execute(
            "SELECT report_id, request_id, state FROM runs WHERE report_id IN"
            f" ({','.join('?' * len(reports))})",
            reports,
        ).fetchall()
    finally:
        con.close()
    return {int(r): (int(q), str(s)) for r, q, s in rows}


def test_rerate_news_names_the_users_delivered_reports_once(
    system: System, tmp_path: Path
) -> None:
    state = str(system.state)
    jean, lynne = system.logon("jeanvnet2"), system.logon("LynneLevy2")
    tfn = system.logon("tfnadmin")

    def news(cookie: str, user: str, entp: str = ENTP) -> list[list[str]]:
        return listed(system, cookie, user, entp, "F")

    jean_before, lynne_before = news(jean, "jeanvnet2"), news(lynne, "LynneLevy2")
    tfn_before = news(tfn, "tfnadmin", "10324488")
    # jeanvnet2's reports over June and July; LynneLevy2's over June but another corp
    # of the same partition (90000001): only the first holds a call of CORP in June
    corps = read_partition_map(system.state)
    assert corps.partition_of("90000001") == corps.partition_of(CORP)
    saved = {
        "Rerate June": quick_save(system, jean, SAVED_ARD.format(
            user="jeanvnet2", entp=ENTP, name="Rerate June", product="S", corp=CORP, **JUNE_ARD
        )),
        "Rerate July": quick_save(system, jean, SAVED_ARD.format(
            user="jeanvnet2", entp=ENTP, name="Rerate July", product="S", corp=CORP, **JULY_ARD
        )),
        "Other corp June": quick_save(system, lynne, SAVED_ARD.format(
            user="LynneLevy2", entp=ENTP, name="Other corp June", product="V", corp="90000001",
            **JUNE_ARD,
        )),
    }  # fmt: skip
    ids = list(saved.values())

    def delivered() -> set[str]:
        """The saved reports in their owners' inboxes."""
        mine = listed(system, jean, "jeanvnet2", ENTP, "R")
        return {r[3] for r in mine + listed(system, lynne, "LynneLevy2", ENTP, "R")}

    def completed() -> bool:
        found = runs(system.state, ids)
        return len(found) == 3 and {s for _, s in found.values()} == {"C"}

    # the NRL came back (so the DSS recorded the delivery) and the item is in the inbox
    until("three runs completed", completed, 120)
    until("three reports delivered", lambda: set(saved) <= delivered(), 120)
    request = {name: runs(system.state, ids)[report][0] for name, report in saved.items()}

    def fresh(cookie: str, user: str, before: list[list[str]]) -> list[list[str]]:
        """The user's news items that were not there *before* (newest first)."""
        return [r for r in news(cookie, user) if r[0] not in {b[0] for b in before}]

    def read(item: list[str]) -> str:
        out = tmp_path / f"news-{item[0]}.txt"
        fetched = test_inbox.client(
            system, "jeanvnet2", "send", f"F<INBOXID={item[0]}>", "--mech", "bulk",
            "--out", str(out),
        )  # fmt: skip
        assert fetched.returncode == 0, fetched.stderr
        return out.read_text(encoding="utf-8")

    def rerate(tariff: str | None = None) -> str:
        if tariff is not None:
            path = tmp_path / "news.csv"
            path.write_text(tariff, encoding="utf-8")
            assert cli("admin", "--state", state, "tariff", "load", str(path)).returncode == 0
        done = cli("admin", "--state", state, "rerate", "--corp", CORP, "--from", "1998-06-01",
                   "--to", "1998-06-30")  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert rerate(NEWS_TARIFFS[0]).endswith("; news to 1 users")
    (item,) = fresh(jean, "jeanvnet2", jean_before)
    assert item[1:4] == ["F", "news", NEWS_TITLE]
    text = read(item)
    assert f"City Summary (request {request['Rerate June']})" in text
    assert f"(request {request['Rerate July']})" not in text
    assert f"(request {request['Other corp June']})" not in text
    assert news(lynne, "LynneLevy2") == lynne_before  # her report holds no call of CORP
    assert news(tfn, "tfnadmin", "10324488") == tfn_before == []  # another enterprise

    # the same rerate again: nothing is priced differently, nothing is sent
    assert rerate() == f"corp {CORP}: no price changed from 1998-06-01 to 1998-06-30"
    assert fresh(jean, "jeanvnet2", jean_before) == [item]

    # a run that stopped after sending the news, before it removed its journal: run
    # again, it sends the news from the journal, the inbox answers 5005: no second item
    since = (dt.date(1998, 6, 1) - dt.date(1970, 1, 1)).days * 1440
    journal = system.state / "harvest" / "rerate" / f"{CORP}-{since}-{since + 30 * 1440}.json"
    match = re.search(r" priced again on (\S+ \S+) GMT ", text)
    assert match is not None, text
    left = {"entp": ENTP, "changed": [since + 14 * 1440 + 720], "at": match[1]}  # June 15
    journal.write_text(json.dumps(left), encoding="utf-8")
    assert rerate().endswith("; news to 1 users")
    assert not journal.exists()
    assert fresh(jean, "jeanvnet2", jean_before) == [item]

    # another tariff change re-prices June again: that is news again
    assert rerate(NEWS_TARIFFS[1]).endswith("; news to 1 users")
    second, first = fresh(jean, "jeanvnet2", jean_before)
    assert first == item
    assert second[1:4] == item[1:4]
    assert f"City Summary (request {request['Rerate June']})" in read(second)
    assert news(lynne, "LynneLevy2") == lynne_before
    assert news(tfn, "tfnadmin", "10324488") == []
