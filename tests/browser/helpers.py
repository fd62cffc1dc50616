"""Driving the browser client: Debian's Chromium through Playwright, and the CLI beside it.

Playwright's own browser downloads are not available here, so the tests use the
``chromium`` on PATH (Debian: ``apt-get install -y chromium``) with
``executable_path`` and ``--no-sandbox``.  Playwright has no trio support: the tests
are plain functions using the sync API against a real ``starwrs serve --demo``.

What the tests check besides the screens:

* every page is loaded under the server's Content-Security-Policy and none of it is
  violated (an init script records ``securitypolicyviolation`` events; init scripts
  are injected by the browser, not by the page, so the policy does not stop them);
* axe-core (pinned in web/client/package-lock.json, injected the same way) finds
  no WCAG 2.0/2.1 A or AA violation on a screen;
* what the browser saved is what the Report Manager stores, read back with
  ``starwrs client``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starwrs.cli.main import main
from starwrs.grammar import Message, parse
from starwrs.web.static import STATIC_ROOT

from ..e2e.system import System

AXE = STATIC_ROOT / "node_modules" / "axe-core" / "axe.min.js"
#: where screenshots go: STARWRS_SCREENSHOTS=docs/screenshots keeps them for the README
SHOTS_ENV = "STARWRS_SCREENSHOTS"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""


def chromium() -> str:
    """The system's Chromium, or a skip saying how to install it (a failure under CI).

    CI runs the README's test command, which installs Chromium: a CI run without it
    means the command lost a step, and must fail rather than pass by skipping.
    """
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        why = "the browser tests need Debian's chromium: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return found


@contextlib.contextmanager
def launched_chromium() -> Iterator[Any]:
    """Debian's Chromium, launched headless through Playwright's sync API.

    trio-asyncio (imported with the stores) installs its own event loop policy;
    Playwright's sync API wants a plain asyncio loop of its own.
    """
    from playwright.sync_api import sync_playwright

    executable = chromium()
    policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    try:
        with sync_playwright() as p:
            launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            yield launched
            launched.close()
    finally:
        asyncio.set_event_loop_policy(policy)


@contextlib.contextmanager
def checked_page(
    browser: Any, url: str, *scripts: str, timeout: float, **options: Any
) -> Iterator[Any]:
    """A fresh context's page at *url* with the CSP recorder, axe and *scripts* (run
    before every page's own); on exit, no CSP violation and no page error may have
    happened.  *options* go to ``browser.new_context``."""
    context = browser.new_context(ignore_https_errors=True, **options)
    for script in (CSP_RECORDER, axe_source(), *scripts):
        context.add_init_script(script)
    context.set_default_timeout(timeout)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda err: errors.append(str(err)))
    opened.goto(url)
    yield opened
    assert csp_violations(opened) == []
    assert errors == []
    context.close()


def axe_source() -> str:
    if not AXE.is_file():
        pytest.fail("axe-core is missing: run `npm ci --prefix web/client` first")
    return AXE.read_text(encoding="utf-8")


def shots_dir(tmp: Path) -> Path:
    folder = Path(os.environ.get(SHOTS_ENV) or tmp)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def axe_violations(page: Any) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now (one line each)."""
    result = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: "tag", values: tags}});
            return r.violations.map((v) => `${v.id}: ${v.help} -- ` +
                v.nodes.map((n) => n.target.join(" ")).join(", "));
        }""",
        AXE_TAGS,
    )
    return list(result)


def csp_violations(page: Any) -> list[str]:
    return list(page.evaluate("window.__cspViolations || []"))


@dataclass(frozen=True)
class Ran:
    """What a ``starwrs`` command did: its exit status and output."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> Ran:
    """Run ``starwrs ARGS`` -- the console script's own entry point, in this process
    (a new interpreter per command costs seconds on a busy machine)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code if isinstance(exit_.code, int) else 2
    return Ran(code, out.getvalue(), err.getvalue())


def client_send(system: System, user: str, text: str) -> Message:
    """What RM (or OE) answers *text* for *user*, asked with ``starwrs client``."""
    done = run_cli(
        "client",
        "--url",
        system.url,
        "--state",
        str(system.state),
        "--user",
        user,
        f"--password={system.passwords()[user]}",
        "send",
        text,
    )
    if done.returncode == 1:  # an error answer: one JSON line on stderr
        error = json.loads(done.stderr.strip().splitlines()[-1])
        return parse(f"X<ERROR={error['error']}>")
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return parse(done.stdout.strip())


def admin(system: System, *args: str) -> Ran:
    return run_cli("admin", "--state", str(system.state), *args)


def controls_of(surd: Message) -> dict[str, Any]:
    """ARD location -> field value of every control of a SURD tree."""
    found: dict[str, Any] = {}
    for member in surd.members:
        if not (member.key or "").startswith("NODE"):
            continue
        parts = [m.value for m in member.value.members if m.key is None]  # type: ignore[union-attr]
        for control in parts[3:]:
            cells = [m.value for m in control.members]  # type: ignore[union-attr]
            found.setdefault(str(cells[2]), cells[1])
    return found
