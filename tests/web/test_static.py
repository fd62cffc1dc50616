"""web/static.py: what of web/client is served, with which headers and validators.

Unit tests of the allow-list, the vendor mapping, ETags and the logo check; the web
server's answers over real TLS (the scripted dispatcher of ``test_web_fake``); and
static checks of the client's own files: no inline script or style in index.html,
no markup built from strings and no eval anywhere in the client's modules, every
module reachable from ``js/main.js`` served, every vendor file pinned in
``package-lock.json``, and ``pyproject.toml`` shipping every file the browser loads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tomllib
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import trio
from starwrs.fixtures.demo import demo_logo
from starwrs.grammar import Member, Message, serialize
from starwrs.runtime.https import HttpsClient
from starwrs.web.static import (
    APP_FOLDERS,
    STATIC_ROOT,
    VENDOR_FILES,
    etag_of,
    not_modified,
    read_logo,
    resolve_client,
)

from .test_web_fake import Stack, start_stack, state_dir

__all__ = ["state_dir"]  # the fixture, imported for pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "web" / "client"


def make_client_tree(root: Path) -> None:
    """A small web/client: the app, the npm package's own files, node_modules."""
    for rel, text in {
        "index.html": "<!doctype html><title>t</title>",
        "package.json": "{}",
        "package-lock.json": "{}",
        "test/harness.mjs": "// tests",
        "js/main.js": "export {};",
        "js/protocol/frames.js": "export {};",
        "css/app.css": "body{}",
        "img/logo.svg": "<svg/>",
        "node_modules/axe-core/axe.min.js": "// axe",
        "node_modules/tabulator-tables/package.json": "{}",
        "node_modules/tabulator-tables/dist/js/tabulator_esm.min.mjs": "export {};",
        "node_modules/us-atlas/states-10m.json": "{}",
        "secret.txt": "no",
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


# -- what is served -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/js/main.js", "text/javascript; charset=utf-8"),
        ("/js/protocol/frames.js", "text/javascript; charset=utf-8"),
        ("/css/app.css", "text/css; charset=utf-8"),
        ("/img/logo.svg", "image/svg+xml"),
        (
            "/vendor/tabulator-tables/dist/js/tabulator_esm.min.mjs",
            "text/javascript; charset=utf-8",
        ),
        ("/vendor/us-atlas/states-10m.json", "application/json"),
    ],
)
def test_the_app_and_listed_vendor_files_are_served(tmp_path: Path, path: str, kind: str) -> None:
    make_client_tree(tmp_path)
    found = resolve_client(path, tmp_path)
    assert found is not None, path
    assert found.content_type == kind


@pytest.mark.parametrize(
    "path",
    [
        "/package.json",
        "/package-lock.json",
        "/test/harness.mjs",
        "/secret.txt",
        "/node_modules/axe-core/axe.min.js",
        "/node_modules/tabulator-tables/dist/js/tabulator_esm.min.mjs",
        "/vendor/axe-core/axe.min.js",  # a test tool, not on the list
        "/vendor/tabulator-tables/package.json",
        "/vendor/tabulator-tables/dist/js/../../package.json",
        "/vendor/tabulator-tables%2fdist%2fjs%2ftabulator_esm.min.mjs",
        "/vendor/%2e%2e/package.json",
        "/js/../package.json",
        "/js/%2e%2e/package.json",
        "/js/",
        "/css",
        "/vendor/",
        "/%ff",
    ],
)
def test_nothing_else_of_the_package_is_served(tmp_path: Path, path: str) -> None:
    make_client_tree(tmp_path)
    assert resolve_client(path, tmp_path) is None, path


def test_every_vendor_file_is_installed_and_pinned() -> None:
    lock = json.loads((CLIENT / "package-lock.json").read_text())["packages"]
    for rel in sorted(VENDOR_FILES):
        package = rel.split("/")[0]
        entry = lock.get(f"node_modules/{package}")
        assert entry is not None, f"{package} is not in package-lock.json"
        assert entry["version"], package
        assert entry["integrity"].startswith("sha512-"), package
    modules = CLIENT / "node_modules"
    if not modules.is_dir():
        pytest.skip("node_modules not installed (npm ci --prefix web/client)")
    for rel in sorted(VENDOR_FILES):
        assert (modules / rel).is_file(), rel
        assert resolve_client(f"/vendor/{rel}") is not None, rel


# -- validators -------------------------------------------------------------------------------


def test_etags_follow_the_content(tmp_path: Path) -> None:
    make_client_tree(tmp_path)
    found = resolve_client("/css/app.css", tmp_path)
    assert found is not None
    tag = etag_of(found)
    assert re.fullmatch(r'"[0-9a-f]{32}"', tag)
    assert tag == f'"{hashlib.sha256(b"body{}").hexdigest()[:32]}"'
    assert etag_of(found) == tag
    (tmp_path / "css" / "app.css").write_text("body{color:red}")
    again = resolve_client("/css/app.css", tmp_path)
    assert again is not None
    assert etag_of(again) != tag


@pytest.mark.parametrize(
    ("header", "hit"),
    [
        (b'"abc"', True),
        (b'W/"abc"', True),
        (b'"x", "abc"', True),
        (b"*", True),
        (b'"abd"', False),
        (b"abc", False),
    ],
)
def test_if_none_match(header: bytes, hit: bool) -> None:
    assert not_modified([(b"if-none-match", header)], '"abc"') is hit
    assert not not_modified([(b"if-modified-since", header)], '"abc"')


def gbla(data: bytes, *, kind: str = "image/png", sha: str | None = None) -> bytes:
    members = (
        Member("ERROR", "0"),
        Member("BRANDID", "blueline"),
        Member("TYPE", kind),
        Member("SHA256", sha or hashlib.sha256(data).hexdigest()),
        Member("LOGO", base64.b64encode(data).decode()),
    )
    return serialize(Message("GBLA", members)).encode()


def test_the_logo_is_checked_before_it_is_served() -> None:
    logo = read_logo(gbla(demo_logo()))
    assert logo is not None
    assert (logo.data, logo.content_type) == (demo_logo(), "image/png")
    assert logo.etag == f'"{hashlib.sha256(demo_logo()).hexdigest()}"'
    assert read_logo(b"GBLA<ERROR=6109>") is None
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    for bad in (
        gbla(svg, kind="image/svg+xml"),
        gbla(svg),  # declared PNG, is not
        gbla(demo_logo(), kind="image/gif"),  # declared GIF, is PNG
        gbla(demo_logo(), sha="0" * 64),
        gbla(demo_logo() + b"\0" * 70_000),
        b"GBLA<ERROR=0,TYPE=image/png,SHA256=x,LOGO=***>",
        b"not a message",
        b"\xff\xfe",
    ):
        with pytest.raises(ValueError):
            read_logo(bad)


# -- over TLS -----------------------------------------------------------------------------


@pytest.fixture
async def client(nursery: trio.Nursery, state_dir: Path) -> AsyncIterator[HttpsClient]:
    stack: Stack = await start_stack(nursery, state_dir)
    async with HttpsClient(stack.url, stack.client_context(), timeout=10) as opened:
        yield opened


async def test_pages_carry_strict_headers_and_validators(client: HttpsClient) -> None:
    response = await client.request("GET", "/")
    assert response.status == 200
    csp = response.header("content-security-policy") or ""
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert directives.get("script-src", "'self'") == "'self'"
    assert response.header("x-content-type-options") == "nosniff"
    assert response.header("referrer-policy") == "no-referrer"
    assert response.header("cross-origin-opener-policy") == "same-origin"
    assert response.header("cross-origin-resource-policy") == "same-origin"
    assert response.header("cache-control") == "no-cache"
    etag = response.header("etag")
    assert etag is not None
    again = await client.request("GET", "/", headers=[("if-none-match", etag)])
    assert (again.status, again.body, again.header("etag")) == (304, b"", etag)
    assert again.header("content-security-policy") == csp
    changed = await client.request("GET", "/", headers=[("if-none-match", '"other"')])
    assert (changed.status, changed.body) == (200, response.body)
    head = await client.request("HEAD", "/js/main.js")
    assert head.status == 200
    assert head.header("content-type") == "text/javascript; charset=utf-8"
    assert head.header("content-length") == str((CLIENT / "js" / "main.js").stat().st_size)


@pytest.mark.parametrize(
    "path",
    [
        "/package.json",
        "/package-lock.json",
        "/test/harness.mjs",
        "/node_modules/axe-core/axe.min.js",
        "/vendor/axe-core/axe.min.js",
        "/vendor/tabulator-tables/package.json",
    ],
)
async def test_the_npm_package_itself_is_not_served(client: HttpsClient, path: str) -> None:
    response = await client.request("GET", path)
    assert response.status == 404
    assert response.json() == {"error": 404, "message": "not found"}


async def test_the_logo_needs_a_session(client: HttpsClient) -> None:
    response = await client.request("GET", "/brand/logo")
    assert response.status == 401
    assert response.json()["error"] == 7004


# -- the client's own files ------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}=…>")
        if tag == "script":
            if not named.get("src"):
                self.problems.append("an inline <script>")
            else:
                self.scripts.append(str(named["src"]))
        if tag == "style":
            self.problems.append("an inline <style>")
        if tag == "link" and named.get("rel") == "stylesheet":
            self.styles.append(str(named["href"]))


def test_index_has_no_inline_script_or_style() -> None:
    page = _Page()
    page.feed((CLIENT / "index.html").read_text())
    assert page.problems == []
    assert page.scripts == ["/js/main.js"]
    for url in (*page.scripts, *page.styles):
        assert resolve_client(url) is not None, url


_IMPORT = re.compile(
    r"""(?:^|\s)(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"|import\(\s*"(\.[^"]+)"\s*\)"""
)
_FORBIDDEN = re.compile(
    r"\.innerHTML\b|\.outerHTML\b|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function\b"
    r"|setTimeout\(\s*[\"'`]|\.setAttribute\(\s*[\"']style[\"']|\.setAttribute\(\s*[\"']on"
)


def _modules() -> dict[Path, str]:
    """Every module reachable from js/main.js (static and dynamic imports)."""
    seen: dict[Path, str] = {}
    todo = [CLIENT / "js" / "main.js"]
    while todo:
        path = todo.pop().resolve()
        if path in seen:
            continue
        text = path.read_text(encoding="utf-8")
        seen[path] = text
        for match in _IMPORT.finditer(text):
            todo.append(path.parent / (match.group(1) or match.group(2)))
    return seen


def test_every_module_the_page_loads_is_served_and_builds_no_markup() -> None:
    modules = _modules()
    assert len(modules) > 10
    for path, text in modules.items():
        url = "/" + path.relative_to(CLIENT).as_posix()
        assert resolve_client(url) is not None, url
        assert not _FORBIDDEN.search(text), f"{url}: {_FORBIDDEN.search(text)}"


def test_package_data_ships_every_file_the_browser_loads() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["starwrs.web"]
    web = ROOT / "web"
    shipped = {p.resolve() for pattern in patterns for p in web.glob(pattern) if p.is_file()}
    wanted = {CLIENT / "index.html"}
    for folder in APP_FOLDERS:
        wanted |= {p for p in (CLIENT / folder).rglob("*") if p.is_file()}
    assert {p.resolve() for p in wanted} <= shipped
    assert not any("node_modules" in p.parts or "test" in p.parts for p in shipped)
    assert CLIENT.resolve() == STATIC_ROOT
