"""The browser client in Debian's Chromium against one real ``starwrs serve --demo``.

Issue 13: logon failures and success; the home pages of ``jeanvnet2`` and
``tfnviewer`` differ as their entitlements and brands do, and ``starwrs admin``
changes show at the next page load; the seed's City Summary report built through the
screens, saved and run, found in the inventory with the seed's values, edited,
copied, rescheduled and deleted -- each checked with ``starwrs client`` against what
the Report Manager stores; a session that ends mid-edit asks for a logon and keeps
the form; keyboard-only use; axe-core on every screen at 1280x800 and 390x844; no
Content-Security-Policy violation anywhere.  Screenshots of the screens go to
``$STARWRS_SCREENSHOTS`` (the README's are made with ``STARWRS_SCREENSHOTS=docs/screenshots``).
"""

from __future__ import annotations

import hashlib
import http.client
import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starwrs.fixtures.demo import demo_logo
from starwrs.grammar import Member, Message, parse, serialize
from starwrs.grammar.seed import seed_text
from starwrs.protocol.events import Frame
from starwrs.protocol.header import Mechanism

from ..e2e.system import System, start
from .helpers import (
    admin,
    axe_violations,
    checked_page,
    client_send,
    controls_of,
    launched_chromium,
    shots_dir,
)

playwright = pytest.importorskip("playwright.sync_api")  # in the test extra
expect = playwright.expect

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SEED_ARD = parse(seed_text("07_ard.txt"))
#: milliseconds an action or expectation may take (generous: CI machines are busy)
TIMEOUT = 15_000
expect.set_options(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    # a small demo datamart (the default 300,000 calls take a while to make)
    running = start(tmp_path_factory.mktemp("state"), "--demo-calls", "20000")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shots_dir(tmp_path_factory.mktemp("shots"))


@pytest.fixture
def page(browser: Any, system: System) -> Iterator[Any]:
    with checked_page(browser, system.url, timeout=TIMEOUT, viewport=DESKTOP) as opened:
        yield opened


def logon(page: Any, system: System, user: str, password: str | None = None) -> None:
    page.get_by_label("User ID").fill(user)
    page.get_by_label("Password").fill(password or system.passwords()[user])
    page.get_by_role("button", name="Log on").click()


def logged_on(page: Any, system: System, user: str) -> None:
    logon(page, system, user)
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("^Welcome to "))


def no_axe_violations(page: Any, screen: str) -> None:
    assert axe_violations(page) == [], screen


def no_overflow(page: Any, screen: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{screen}: {width}px wide"


def open_requestor(page: Any) -> None:
    page.get_by_role("button", name="Report Requestor").click()
    expect(page.get_by_role("heading", name="Report Requestor", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("^Standard reports: "))).to_be_visible()
    # every request the screen makes when it opens has been answered (a session ended
    # while one is in flight shows the logon page at once, before the test's next step)
    expect(page.get_by_role("heading", name="My reports")).to_be_visible()
    expect(page.locator(".requestor-main .inventory[aria-busy]")).to_have_count(0)
    expect(page.locator(".requestor-main .lead")).not_to_contain_text("Loading")


def choose_category(page: Any, category: str) -> None:
    page.get_by_label("Report category").select_option(category)
    expect(page.get_by_role("heading", name=f"Standard reports: {category}")).to_be_visible()
    expect(page.locator(".requestor-main .inventory[aria-busy]")).to_have_count(0)


def inventory_row(page: Any, name: str) -> Any:
    return page.locator(
        "table.inventory-table tr", has=page.get_by_role("rowheader", name=name, exact=True)
    )


def field(page: Any, label: str, **kw: Any) -> Any:
    """The field labelled *label* on the customization screen shown."""
    return page.locator("[role=tabpanel]:not([hidden])").get_by_label(label, exact=True, **kw)


def tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def report_ids(system: System, user: str = "jeanvnet2") -> dict[str, tuple[str, str]]:
    """name -> (report id, active flag) of the user's City Summary reports, as RM lists them."""
    surl = client_send(
        system, user, "GURL<USERID=jeanvnet2,RPTTMPID=90,ENTPID=00022924,PRODUCT=S,DATA CAT=P>"
    )
    found: dict[str, tuple[str, str]] = {}
    text = serialize(surl)
    for name, report_id, active in re.findall(r"<([^<>,=]+),(\d+),([01]),City Summary,\d+>", text):
        found[name] = (report_id, active)
    return found


# -- logon -------------------------------------------------------------------------------


def test_logon_failures_and_success(page: Any, system: System, shots: Path) -> None:
    page.set_viewport_size(DESKTOP)
    expect(page.get_by_role("heading", name="Log on")).to_be_visible()
    no_axe_violations(page, "logon")
    page.screenshot(path=shots / "logon.png")

    logon(page, system, "jeanvnet2", "not-the-password")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("user ID or password is not correct")
    expect(page.get_by_label("Password")).to_have_value("")
    no_axe_violations(page, "logon refused")
    page.screenshot(path=shots / "logon-refused.png")

    # a disabled user is answered like a wrong password (no one learns which ids exist)
    logon(page, system, "jeanvnet1")
    expect(alert).to_contain_text("or the user is disabled")

    # throttling: an id that does not exist, from this address, again and again
    for _ in range(8):
        logon(page, system, "mallory", "guess")
        expect(page.get_by_role("button", name="Log on")).to_be_enabled()
        if "Too many failed logons" in alert.inner_text():
            break
    expect(alert).to_contain_text("Too many failed logons")
    expect(alert).to_contain_text("seconds")

    logged_on(page, system, "jeanvnet2")
    expect(page.get_by_role("button", name="Log off")).to_be_visible()
    page.get_by_role("button", name="Log off").click()
    expect(page.get_by_role("status")).to_have_text("You have logged off.")
    page.reload()
    expect(page.get_by_role("heading", name="Log on")).to_be_visible()  # the cookie is gone


# -- the home page, entitlements and brands --------------------------------------------


def test_home_pages_follow_entitlements_and_brands(
    page: Any, system: System, shots: Path, tmp_path: Path
) -> None:
    logged_on(page, system, "jeanvnet2")
    tiles = page.locator(".app-tile")
    requestor = page.get_by_role("button", name="Report Requestor")
    expect(requestor).not_to_have_attribute("aria-disabled", "true")
    order = page.locator(".app-tile", has_text="Order Entry")
    expect(order).to_contain_text("Not available yet (you are entitled to it)")
    # built and entitled (INBX): available
    expect(page.get_by_role("button", name="Message Center")).not_to_have_attribute(
        "aria-disabled", "true"
    )
    expect(tiles).to_have_count(7)
    expect(page.locator("#brand-name")).to_have_text("starwrs")
    expect(page.locator(".facts")).to_contain_text("Vision, Toll Free, Vnet")
    expect(page.locator(".facts")).to_contain_text("EST Eastern")
    no_axe_violations(page, "home (house brand)")
    page.screenshot(path=shots / "home.png")
    page.get_by_role("button", name="Log off").click()

    logged_on(page, system, "tfnviewer")
    expect(page.locator("#brand-name")).to_have_text("BlueLine Telecom")
    expect(page.locator("#brand-legal")).to_contain_text("BlueLine Telecom")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to BlueLine Telecom")
    assert "starwrs" not in page.locator("header").inner_text()
    assert "starwrs" not in page.locator("footer").inner_text()
    logo = page.locator("#brand-logo")
    expect(logo).to_have_attribute("src", re.compile(r"^/brand/logo\?v=[0-9a-f]{64}$"))
    # decode() waits for the image; wait_for_function would poll a string with eval once
    # the first check fails (the logo still loading), which the page's CSP refuses
    assert logo.evaluate("img => img.decode().then(() => img.naturalWidth)") == 120
    masthead = page.evaluate(
        "getComputedStyle(document.querySelector('.masthead')).backgroundColor"
    )
    assert masthead == "rgb(11, 95, 90)"
    expect(order).to_contain_text("you are not entitled to it")
    expect(page.locator(".facts")).to_contain_text("Toll Free")
    no_axe_violations(page, "home (reseller brand)")
    page.screenshot(path=shots / "home-reseller.png")

    # an administrator takes the Report Requestor away: it shows at the next page load
    assert admin(system, "apps", "tfnviewer", "INBX").returncode == 0
    page.reload()
    expect(page.get_by_role("button", name="Report Requestor")).to_have_attribute(
        "aria-disabled", "true"
    )
    expect(page.locator(".app-tile", has_text="Report Requestor")).to_contain_text("Not entitled")
    page.get_by_role("button", name="Report Requestor").click(force=True)  # does nothing
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to BlueLine Telecom")
    assert admin(system, "apps", "tfnviewer", "RM", "INBX").returncode == 0

    # ... and the reseller's brand, logo included, the same way
    logo_file = tmp_path / "logo.png"
    logo_file.write_bytes(demo_logo())
    changed = admin(
        system, "brand", "10324488", "--name", "BlueLine West", "--color", "#fde68a",
        "--logo", str(logo_file),
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    page.reload()
    expect(page.locator("#brand-name")).to_have_text("BlueLine West")
    # a light colour gets dark text: the contrast stays readable whatever the reseller picks
    ink = page.evaluate("getComputedStyle(document.querySelector('.brand-name')).color")
    assert ink == "rgb(17, 17, 17)"
    expect(page.get_by_role("button", name="Report Requestor")).not_to_have_attribute(
        "aria-disabled", "true"
    )
    no_axe_violations(page, "home (light reseller colour)")
    assert (
        admin(
            system, "brand", "10324488", "--name", "BlueLine Telecom", "--color", "#0b5f5a"
        ).returncode
        == 0
    )


def test_a_brand_cannot_carry_markup_or_script(system: System, tmp_path: Path) -> None:
    svg = tmp_path / "logo.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    refused = admin(system, "brand", "10324488", "--logo", str(svg))
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "starwrs admin brand: logo must be a PNG, JPEG, GIF or WebP image (SVG is not accepted)"
    )
    bad_colour = admin(system, "brand", "10324488", "--color", "red;background:url(x)")
    assert bad_colour.returncode == 2
    assert "colour must be #rrggbb" in bad_colour.stderr
    big = tmp_path / "big.png"
    big.write_bytes(demo_logo() + b"\0" * 70_000)
    assert "at most 65536" in admin(system, "brand", "10324488", "--logo", str(big)).stderr
    missing = admin(system, "brand", "99999999", "--name", "Nobody")
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        "starwrs admin brand: no such enterprise '99999999' (6115)",
    )
    # a name with markup is only text: the user context carries it escaped, the page shows it
    marked = admin(system, "brand", "10324488", "--name", "<b>Blue</b>")
    assert marked.returncode == 0, marked.stderr
    context = client_send(system, "tfnviewer", "GUC<>")
    assert context.get("BRANDNAME") == "<b>Blue</b>"
    assert admin(system, "brand", "10324488", "--name", "BlueLine Telecom").returncode == 0


def test_every_session_may_ask_for_its_context_and_logo(system: System) -> None:
    """GUC and GBL reach order entry for any live session (LynneLevy2 has no OE
    application); everything else at OE still needs the application."""
    lynne = system.logon("LynneLevy2")
    _, (context,) = system.dispatch(lynne, Frame.build(Mechanism.SYNC, "OE", b"GUC<>"))
    assert context.header.status == 0
    assert parse(context.payload.decode()).get("USERID") == "LynneLevy2"
    _, (logo,) = system.dispatch(lynne, Frame.build(Mechanism.SYNC, "OE", b"GBL<>"))
    assert (logo.header.status, logo.payload) == (6109, b"GBLA<ERROR=6109>")
    _, (gua,) = system.dispatch(lynne, Frame.build(Mechanism.SYNC, "OE", b"GUA<USERID=LynneLevy2>"))
    assert gua.header.status == 7003

    def get(path: str, cookie: str | None, **headers: str) -> tuple[int, dict[str, str], bytes]:
        connection = system.https()
        try:
            if cookie is not None:
                headers["Cookie"] = f"__Host-starwrs_session={cookie}"
            connection.request("GET", path, headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, body
        finally:
            connection.close()

    assert get("/brand/logo", lynne)[0] == 404  # the house brand has no logo
    assert get("/brand/logo", None)[0] == 401
    viewer = system.logon("tfnviewer")
    status, headers, body = get("/brand/logo", viewer)
    assert (status, body) == (200, demo_logo())
    assert headers["content-type"] == "image/png"
    assert headers["cache-control"] == "private, no-cache"
    etag = headers["etag"]
    assert etag == f'"{hashlib.sha256(demo_logo()).hexdigest()}"'
    status, _, body = get("/brand/logo", viewer, **{"If-None-Match": etag})
    assert (status, body) == (304, b"")


# -- the Report Requestor ----------------------------------------------------------------


def fill_city_summary(page: Any) -> None:
    """The seed's ARD (fixtures/seed/07_ard.txt), through the screens of template 90."""
    tab(page, "Report Name")
    field(page, "Report name").fill(str(SEED_ARD.get("NAME")))
    tab(page, "Report Description")
    field(page, "Report description").fill(str(SEED_ARD.get("DESCRIPTION")))
    tab(page, "Scheduled Execution")
    field(page, "Ad hoc: for the date ranges given").check()
    field(page, "Start of date range 1").fill("1998-06-02T00:00")
    field(page, "End of date range 1").fill("1998-07-15T12:00")
    field(page, "Range: from the start to the end of each date range").check()
    field(page, "Time zone").select_option("45")
    tab(page, "Layout")
    expect(page.locator(".columns.chosen li")).to_have_count(11)
    field(page, "Maximum rows (record count)").fill("20")
    expect(field(page, "Sort column 1")).to_have_value("54")
    expect(field(page, "Order of sort column 1")).to_have_value("D")
    field(page, "None").check()
    tab(page, "Access")
    field(page, "DEDICATED ACCESS").check()
    field(page, "SHARED").check()
    tab(page, "Hierarchy")
    field(page, "90000003 Vision Headquarters").check()
    field(page, "90000004 Vision Field Offices").check()
    tab(page, "Geographic")
    field(page, "USA/WORLDZONE1").check()
    field(page, "COLORADO").check()


def test_city_summary_built_saved_and_run(page: Any, system: System, shots: Path) -> None:
    logged_on(page, system, "jeanvnet2")
    open_requestor(page)
    choose_category(page, "Analyze Traffic")
    expect(page.get_by_label("Product")).to_have_value("S")
    no_axe_violations(page, "requestor")
    page.screenshot(path=shots / "requestor.png")
    page.get_by_role("button", name="New report from City Summary (Outbound)").click()
    expect(page.get_by_role("heading", name="New report: City Summary (Outbound)")).to_be_visible()
    screens = [t.inner_text() for t in page.get_by_role("tab").all()]
    assert screens == [
        "General", "Report Name", "Report Description", "Scheduled Execution", "Layout",
        "Access", "Hierarchy", "Geographic", "Numbers Dialed", "Notification",
    ]  # fmt: skip
    fill_city_summary(page)
    for screen in screens:
        tab(page, screen)
        page.locator("[role=tabpanel]:not([hidden]) .loading").first.wait_for(state="detached")
        no_axe_violations(page, f"builder: {screen}")
        if screen in ("Scheduled Execution", "Layout", "Hierarchy", "Geographic"):
            page.screenshot(
                path=shots / f"builder-{screen.lower().replace(' ', '-')}.png", full_page=True
            )

    # the Report Manager's error answer, next to the field it concerns
    tab(page, "Report Name")
    field(page, "Report name").fill("")
    tab(page, "Layout")
    page.get_by_role("button", name="Save and Exit").click()
    name = field(page, "Report name")
    expect(name).to_be_focused()
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("tabpanel")).to_contain_text(
        "Enterprise ID or user report title empty (6113)"
    )
    no_axe_violations(page, "builder: error")
    page.screenshot(path=shots / "builder-error.png")
    name.fill(str(SEED_ARD.get("NAME")))

    page.get_by_role("button", name="Save and Run").click()
    status = page.locator(".requestor-main [role=status]")
    expect(status).to_contain_text("is saved as report")
    expect(status).to_contain_text("scheduled to run")
    expect(status).to_contain_text("The Report Manager answered: ARDA<ERROR=0,USERRPTID=")
    row = inventory_row(page, "City Summary Outbound")
    expect(row).to_contain_text("Scheduled")
    expect(row).to_contain_text("City Summary (Outbound)")
    no_axe_violations(page, "requestor after save and run")
    page.screenshot(path=shots / "saved-and-run.png", full_page=True)

    # what RM stores is the seed's report, value for value, for every screen offered
    (report_id, active) = report_ids(system)["City Summary Outbound"]
    assert active == "1"
    stored = controls_of(client_send(system, "jeanvnet2", f"GURD<REPORTID={report_id}>"))
    for key in (
        "NAME", "DESCRIPTION", "SCHEDULE", "RANGETYPE", "SCHEDTYPE", "TIMEZONE", "BILLING",
        "GEO", "OACCESS", "SORTBY", "COLUMNS", "THRESHOLD", "TOTALMODE", "EMAIL", "PAGE",
    ):  # fmt: skip
        assert wire(stored[key]) == wire(SEED_ARD.get(key)), key
    assert stored["ACTIVE"] == "1"


def wire(value: Any) -> str:
    """A value's canonical text, as one member: ``X<V=...>``."""
    return serialize(Message("X", (Member("V", value),)))


def test_edit_copy_reschedule_delete(page: Any, system: System, shots: Path) -> None:
    logged_on(page, system, "jeanvnet2")
    open_requestor(page)
    choose_category(page, "Analyze Traffic")
    original = report_ids(system)
    if "City Summary Outbound" not in original:  # run alone: save the seed's report first
        assert client_send(system, "jeanvnet2", seed_text("07_ard.txt")).get("ERROR") == "0"
        page.reload()
        open_requestor(page)
        choose_category(page, "Analyze Traffic")
        original = report_ids(system)
    old_id = original["City Summary Outbound"][0]
    expect(inventory_row(page, "City Summary Outbound")).to_be_visible()
    page.screenshot(path=shots / "inventory.png", full_page=True)

    # edit: the customization screens filled from the SURD tree
    page.get_by_role("button", name="Edit City Summary Outbound").click()
    expect(
        page.get_by_role("heading", name=f"Edit report: City Summary Outbound (report {old_id})")
    ).to_be_visible()
    tab(page, "Report Name")
    expect(field(page, "Report name")).to_have_value("City Summary Outbound")
    field(page, "Report name").fill("City Summary Edited")
    tab(page, "Scheduled Execution")
    expect(field(page, "Start of date range 1")).to_have_value("1998-06-02T00:00")
    tab(page, "Layout")
    expect(field(page, "Maximum rows (record count)")).to_have_value("20")
    field(page, "Maximum rows (record count)").fill("25")
    page.get_by_role("button", name="Move State up").click()
    tab(page, "Access")
    expect(field(page, "DEDICATED ACCESS")).to_be_checked()
    tab(page, "Hierarchy")
    expect(field(page, "90000004 Vision Field Offices")).to_be_checked()
    tab(page, "Status")
    expect(page.get_by_role("tabpanel")).to_contain_text(f"Report ID: {old_id}")
    no_axe_violations(page, "builder: edit")
    page.get_by_role("button", name="Save and Exit").click()
    expect(page.locator(".requestor-main [role=status]")).to_contain_text(
        f"It replaces report {old_id}."
    )
    expect(inventory_row(page, "City Summary Edited")).to_contain_text("Saved")
    expect(inventory_row(page, "City Summary Outbound")).to_have_count(0)
    reports = report_ids(system)
    edited_id, active = reports["City Summary Edited"]
    assert active == "0"
    assert "City Summary Outbound" not in reports
    gone = client_send(system, "jeanvnet2", f"GURD<REPORTID={old_id}>")
    assert gone.get("ERROR") == "6115"
    stored = controls_of(client_send(system, "jeanvnet2", f"GURD<REPORTID={edited_id}>"))
    assert wire(stored["THRESHOLD"]) == "X<V=<RECCOUNT=25>>"
    assert wire(stored["COLUMNS"]).startswith("X<V=<55~54~67~")
    assert wire(stored["BILLING"]) == wire(SEED_ARD.get("BILLING"))

    # copy (CRD)
    page.get_by_role("button", name="Copy City Summary Edited").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Name of the copy")).to_have_value("Copy of City Summary Edited")
    no_axe_violations(page, "copy dialog")
    dialog.get_by_label("Name of the copy").fill("City Summary Copy")
    dialog.get_by_role("button", name="Copy").click()
    expect(page.locator(".requestor-main [role=status]")).to_contain_text(
        "is copied as “City Summary Copy”"
    )
    expect(inventory_row(page, "City Summary Copy")).to_be_visible()
    copy_id = report_ids(system)["City Summary Copy"][0]
    assert copy_id != edited_id

    # reschedule (URS ACTIVE=1), then unschedule (ACTIVE=0)
    page.get_by_role("button", name="Reschedule City Summary Edited").click()
    expect(inventory_row(page, "City Summary Edited")).to_contain_text("Scheduled")
    assert report_ids(system)["City Summary Edited"][1] == "1"
    status = controls_of(client_send(system, "jeanvnet2", f"GURD<REPORTID={edited_id}>"))["STATUS"]
    assert status in ("SCHEDULED", "SUBMITTED", "C")  # delivery may already have run it
    page.get_by_role("button", name="Unschedule City Summary Edited").click()
    expect(inventory_row(page, "City Summary Edited")).to_contain_text("Saved")
    assert report_ids(system)["City Summary Edited"][1] == "0"

    # delete (DRD), after a confirmation; cancelling keeps the report
    page.get_by_role("button", name="Delete City Summary Copy").click()
    expect(page.get_by_role("dialog")).to_contain_text("Delete “City Summary Copy”?")
    no_axe_violations(page, "delete dialog")
    page.screenshot(path=shots / "delete-confirmation.png")
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(inventory_row(page, "City Summary Copy")).to_be_visible()
    page.get_by_role("button", name="Delete City Summary Copy").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator(".requestor-main [role=status]")).to_contain_text("is deleted")
    expect(inventory_row(page, "City Summary Copy")).to_have_count(0)
    assert client_send(system, "jeanvnet2", f"GURD<REPORTID={copy_id}>").get("ERROR") == "6115"


# -- sessions ------------------------------------------------------------------------------


def end_session_elsewhere(page: Any, system: System) -> None:
    """Log the page's session off from another client (the cookie is HttpOnly: the page
    cannot read it, the browser's cookie store can)."""
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "__Host-starwrs_session"]
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Strict")
    connection = http.client.HTTPSConnection(
        system.host, system.port, context=ssl.create_default_context(cafile=str(system.ca))
    )
    connection.request(
        "POST", "/logoff", headers={"Cookie": f"__Host-starwrs_session={cookie['value']}"}
    )
    assert connection.getresponse().status == 204
    connection.close()


def test_a_session_that_ends_mid_edit_keeps_the_form(
    page: Any, system: System, shots: Path
) -> None:
    logged_on(page, system, "jeanvnet2")
    open_requestor(page)
    choose_category(page, "Analyze Traffic")
    page.get_by_role("button", name="New report from City Summary (Outbound)").click()
    tab(page, "Report Name")
    field(page, "Report name").fill("Kept Across Logons")
    tab(page, "Hierarchy")
    field(page, "90000003 Vision Headquarters").check()
    tab(page, "Scheduled Execution")
    field(page, "Start of date range 1").fill("2026-01-01T00:00")
    field(page, "End of date range 1").fill("2026-01-31T23:59")

    end_session_elsewhere(page, system)
    page.get_by_role("button", name="Save and Exit").click()
    expect(page.get_by_role("heading", name="Log on")).to_be_visible()
    expect(page.locator("#view-logon [role=status]")).to_contain_text("Your session has ended")
    expect(page.locator("#view-logon")).to_contain_text("Your work in Report Requestor is kept")
    expect(page.get_by_label("User ID")).to_have_value("jeanvnet2")
    expect(page.locator(".requestor-builder")).to_be_hidden()
    no_axe_violations(page, "session ended")
    page.screenshot(path=shots / "session-ended.png")
    page.get_by_label("Password").fill(system.passwords()["jeanvnet2"])
    page.get_by_role("button", name="Log on").click()
    # the save went on once logged on again, with what had been typed
    expect(page.locator(".requestor-main [role=status]")).to_contain_text(
        "“Kept Across Logons” is saved as report"
    )
    surl = serialize(
        client_send(
            system,
            "jeanvnet2",
            "GURL<USERID=jeanvnet2,RPTTMPID=90,ENTPID=00022924,PRODUCT=S,DATA CAT=P>",
        )
    )
    (kept_id,) = re.findall(r"<Kept Across Logons,(\d+),0,", surl)
    stored = controls_of(client_send(system, "jeanvnet2", f"GURD<REPORTID={kept_id}>"))
    assert wire(stored["SCHEDULE"]) == "X<V=A<START=202601010000,END=202601312359>>"
    assert "90000003" in wire(stored["BILLING"])


def test_a_session_past_its_limit_or_ended_by_an_administrator(page: Any, system: System) -> None:
    logged_on(page, system, "dorod")
    open_requestor(page)
    # the logon answer gave the limits (12 h absolute): make this logon 13 hours old
    page.evaluate(
        """() => {
            const s = JSON.parse(sessionStorage.getItem("starwrs.session"));
            s.logonAt = Date.now() - 13 * 3600 * 1000;
            sessionStorage.setItem("starwrs.session", JSON.stringify(s));
        }"""
    )
    end_session_elsewhere(page, system)
    page.get_by_label("Direction").select_option("I")
    expect(page.locator("#view-logon [role=status]")).to_have_text(
        "Your session reached its limit of 12 hours. Log on again."
    )
    logon(page, system, "dorod")
    expect(page.get_by_role("heading", name="Report Requestor", level=1)).to_be_visible()
    expect(page.get_by_label("Direction")).to_have_value("I")  # the screen as it was

    # an administrator disables the user: the sessions end, the logon page says so
    assert admin(system, "disable", "dorod").returncode == 0
    try:
        page.get_by_label("Direction").select_option("O")
        expect(page.locator("#view-logon [role=status]")).to_contain_text(
            "ended by an administrator"
        )
        logon(page, system, "dorod")
        expect(page.get_by_role("alert")).to_contain_text("or the user is disabled")
    finally:
        assert admin(system, "enable", "dorod").returncode == 0


def test_logging_off_in_another_window_ends_this_one(browser: Any, system: System) -> None:
    context = browser.new_context(ignore_https_errors=True, viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT)
    first, second = context.new_page(), context.new_page()
    first.goto(system.url)
    logged_on(first, system, "jeanvnet2")
    second.goto(system.url)  # the same browser: the session cookie resumes the home page
    expect(second.get_by_role("heading", level=1)).to_have_text("Welcome to starwrs")
    second.get_by_role("button", name="Log off").click()
    expect(first.locator("#view-logon [role=status]")).to_have_text(
        "You logged off in another window of this browser."
    )
    context.close()


# -- keyboard only, and small screens --------------------------------------------------------


def test_keyboard_only(page: Any, system: System) -> None:
    expect(page.get_by_label("User ID")).to_be_focused()  # the logon page starts there
    page.keyboard.type("jeanvnet2")
    page.keyboard.press("Tab")
    page.keyboard.type(system.passwords()["jeanvnet2"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to starwrs")
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.includes('Report Requestor')"):
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Report Requestor", level=1)).to_be_focused()
    expect(page.get_by_role("heading", name=re.compile("^Standard reports: "))).to_be_visible()
    new_report = page.get_by_role("button", name=re.compile("^New report from ")).first
    new_report.focus()
    page.keyboard.press("Enter")
    first_tab = page.get_by_role("tab", name="General")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("^New report: "))
    first_tab.focus()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("tab", name="Report Name")).to_be_focused()
    expect(page.get_by_role("tab", name="Report Name")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="Notification")).to_be_focused()
    page.keyboard.press("Tab")  # into the panel
    page.keyboard.press("Tab")
    expect(field(page, "Notify me by e-mail")).to_be_focused()
    page.keyboard.press("Space")
    expect(field(page, "Notify me by e-mail")).to_be_checked()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
def test_screens_pass_axe_at_both_sizes(
    page: Any, system: System, shots: Path, viewport: dict[str, int]
) -> None:
    page.set_viewport_size(viewport)
    size = f"{viewport['width']}x{viewport['height']}"
    no_axe_violations(page, f"logon {size}")
    no_overflow(page, f"logon {size}")
    logged_on(page, system, "tfnviewer")
    no_axe_violations(page, f"home {size}")
    no_overflow(page, f"home {size}")
    open_requestor(page)
    no_axe_violations(page, f"requestor {size}")
    no_overflow(page, f"requestor {size}")
    if viewport is PHONE:
        page.screenshot(path=shots / "phone-requestor.png", full_page=True)
    page.get_by_role("button", name=re.compile("^New report from ")).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("^New report: "))
    for screen in [t.inner_text() for t in page.get_by_role("tab").all()]:
        tab(page, screen)
        page.locator("[role=tabpanel]:not([hidden]) .loading").first.wait_for(state="detached")
        no_axe_violations(page, f"builder {screen} {size}")
        no_overflow(page, f"builder {screen} {size}")
    if viewport is PHONE:
        tab(page, "Layout")
        page.screenshot(path=shots / "phone-builder.png")
