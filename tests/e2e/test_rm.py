"""The Report Manager through ``starwrs serve``: web -> dispatcher -> rm, real processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from starwrs.grammar import parse
from starwrs.grammar.seed import seed_text
from starwrs.protocol.events import Frame
from starwrs.protocol.header import Mechanism

from .system import System, start

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory):
    running = start(tmp_path_factory.mktemp("state"))
    yield running
    running.stop()


def rm(system: System, cookie: str, text: str) -> tuple[int, str]:
    _, (answer,) = system.dispatch(cookie, Frame.build(Mechanism.SYNC, "RM", text.encode()))
    return answer.header.status, answer.payload.decode()


def test_templates_reports_and_pick_lists_through_the_system(system: System) -> None:
    cookie = system.logon("jeanvnet2")
    status, text = rm(system, cookie, seed_text("01_grtl.txt"))
    assert status == 0
    assert text.startswith("SRTL<ERROR=0,REPORTS=<Financial=<Longest Calls,")
    assert rm(system, cookie, "GRTD<REPORTID=90>")[0] == 0
    status, text = rm(system, cookie, seed_text("07_ard.txt"))
    assert status == 0
    report_id = int(str(parse(text).get("USERRPTID")))
    _, text = rm(
        system, cookie, "GURL<USERID=jeanvnet2,RPTTMPID=90,ENTPID=00022924,PRODUCT=S,DATACAT=P>"
    )
    assert f"<City Summary Outbound,{report_id},1," in text
    status, text = rm(system, cookie, f"CRD<USERRPTID={report_id},NAME=Copy>")
    assert status == 0
    copy_id = int(str(parse(text).get("USERRPTID")))
    assert rm(system, cookie, f"URS<USERRPTID={copy_id},ACTIVE=0>")[0] == 0
    assert rm(system, cookie, f"DRD<USERID=jeanvnet2,USERRPTID={copy_id}>")[0] == 0
    for kind in ("PL_DURATION", "PL_TIMEZONE", "PL_LANG", "PL_CURR"):
        assert rm(system, cookie, f"GPL<{kind}>")[0] == 0
    assert rm(system, cookie, f"GPL<PL_HIER,USERRPTID={report_id}>")[0] == 0
    # another enterprise's user: the report looks missing, a foreign USERID is 6107
    other = system.logon("tfnadmin")
    assert rm(system, other, f"GURD<REPORTID={report_id}>") == (6115, "SURD<ERROR=6115>")
    assert rm(system, other, f"DRD<USERID=jeanvnet2,USERRPTID={report_id}>")[0] == 6107


def test_state_files(system: System) -> None:
    assert Path(system.state / "rm.db").exists()
