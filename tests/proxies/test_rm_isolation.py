"""Stateful tenant isolation: two enterprises, several users, random report work.

The Report Manager (store + handlers, in process) is compared after every step
against a model; no user ever sees, changes or learns of another user's report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)
from starwrs.fixtures.demo import load_demo
from starwrs.grammar import parse
from starwrs.grammar.seed import seed_text
from starwrs.proxies.framework import Caller, Proxy
from starwrs.proxies.oe.store import open_order_entry
from starwrs.proxies.rm.server import make_rm_proxy
from starwrs.proxies.rm.store import ReportStore, open_report_store

#: user -> (enterprise, an ARD that user may add)
_SEED_ARD = seed_text("07_ard.txt")
USERS: dict[str, tuple[str, str]] = {
    "jeanvnet2": ("00022924", _SEED_ARD),
    "LynneLevy2": (
        "00022924",
        _SEED_ARD.replace("jeanvnet2", "LynneLevy2").replace("PRODUCT=S", "PRODUCT=V"),
    ),
    "tfnadmin": (
        "10324488",
        "ARD<USERID=tfnadmin,ENTPID=10324488,STDRPTID=1,NAME=Longest,PRODUCT=T,"
        "CATEGORY=Financial,SCHEDTYPE=R,TIMEZONE=48,NDIALED=<8005551212>,EMAIL=0,PAGE=0>",
    ),
    "tfnviewer": (
        "10324488",
        "ARD<USERID=tfnviewer,ENTPID=10324488,STDRPTID=1,NAME=Mine,PRODUCT=T,"
        "CATEGORY=Monitor,SCHEDTYPE=R,TIMEZONE=48,NDIALED=<8005550000>,EMAIL=0,PAGE=0>",
    ),
}
names = st.sampled_from(sorted(USERS))


def make_machine(proxy: Proxy, store: ReportStore) -> type[RuleBasedStateMachine]:
    def call(user: str, text: str) -> tuple[int, str]:
        caller = Caller(user, USERS[user][0])
        status, payload = trio.from_thread.run(proxy.handle, caller, text.encode())
        return status, payload.decode()

    class Isolation(RuleBasedStateMachine):
        reports = Bundle("reports")

        def __init__(self) -> None:
            super().__init__()
            for user in USERS:
                trio.from_thread.run(store.delete_user, user)
            #: report id -> (owner, name, active)
            self.model: dict[int, tuple[str, str, bool]] = {}

        @rule(target=reports, user=names)
        def add(self, user: str) -> int:
            status, text = call(user, USERS[user][1])
            assert status == 0, text
            report_id = int(str(parse(text).get("USERRPTID")))
            ard = parse(USERS[user][1])
            self.model[report_id] = (user, str(ard.get("NAME")), ard.get("ACTIVE") == "1")
            return report_id

        @rule(target=reports, report=reports, user=names, name=st.sampled_from(["A", "B c"]))
        def copy(self, report: int, user: str, name: str) -> int:
            status, text = call(user, f"CRD<USERRPTID={report},NAME={name}>")
            if self.model.get(report, ("",))[0] != user:
                assert (status, text) == (6115, "CRDA<ERROR=6115>")
                return report
            assert status == 0, text
            new_id = int(str(parse(text).get("USERRPTID")))
            assert new_id not in self.model
            self.model[new_id] = (user, name, self.model[report][2])
            return new_id

        @rule(report=reports, user=names, active=st.booleans())
        def update(self, report: int, user: str, active: bool) -> None:
            status, _ = call(user, f"URS<USERRPTID={report},ACTIVE={int(active)}>")
            if self.model.get(report, ("",))[0] != user:
                assert status == 6115
                return
            assert status == 0
            owner, name, _old = self.model[report]
            self.model[report] = (owner, name, active)

        @rule(report=consumes(reports), user=names)
        def delete(self, report: int, user: str) -> None:
            status, _ = call(user, f"DRD<USERID={user},USERRPTID={report}>")
            if self.model.get(report, ("",))[0] != user:
                assert status == 6115
                return
            assert status == 0
            del self.model[report]

        @rule(report=reports, user=names)
        def detail(self, report: int, user: str) -> None:
            status, text = call(user, f"GURD<REPORTID={report}>")
            if self.model.get(report, ("",))[0] != user:
                assert (status, text) == (6115, "SURD<ERROR=6115>")
            else:
                assert status == 0
                assert f"<TXT_USERRPTID,{report},USERRPTID>" in text

        @rule(user=names, other=names)
        def foreign_ids_are_refused(self, user: str, other: str) -> None:
            if other == user:
                return
            entp = USERS[other][0]
            text = f"GURL<USERID={other},RPTTMPID=1,ENTPID={entp},PRODUCT=T,DATACAT=U>"
            assert call(user, text) == (6107, "SURL<ERROR=6107>")

        @invariant()
        def inventory_matches_the_model(self) -> None:
            rows = trio.from_thread.run(store.all_rows)
            got = {r.report_id: (r.user_id, r.name, r.active) for r in rows if r.user_id in USERS}
            assert got == self.model
            for r in rows:
                assert r.entp_id == USERS[r.user_id][0]

        @invariant()
        def each_user_lists_only_their_own(self) -> None:
            for user in USERS:
                listed = trio.from_thread.run(store.reports, user)
                assert {r.report_id for r in listed} == {
                    i for i, (owner, _n, _a) in self.model.items() if owner == user
                }

    return Isolation


async def test_no_cross_tenant_row_ever_appears(tmp_path: Path) -> None:
    async with open_order_entry(tmp_path / "oe.db") as oe:
        await load_demo(oe, tmp_path)
        async with open_report_store(tmp_path / "rm.db") as store:
            machine = make_machine(make_rm_proxy(store, oe), store)
            config: Any = settings(
                max_examples=25,
                stateful_step_count=15,
                deadline=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            await trio.to_thread.run_sync(
                lambda: run_state_machine_as_test(machine, settings=config)
            )
