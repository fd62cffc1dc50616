"""The browser client's static files: what may be served, safe paths, types, validators.

Theory of operation
-------------------
``web/client/`` is an npm package: besides the app it holds ``package.json``,
``package-lock.json``, its tests and, after ``npm ci``, all of ``node_modules``.
A browser needs only part of it, so only that part is served
(:func:`resolve_client`):

* **the app's own files** -- ``/`` (``index.html``), ``/index.html`` and whatever
  lies in :data:`APP_FOLDERS` (``/css/…``, ``/js/…``, ``/img/…``);
* **vendor files** -- ``/vendor/<package>/<path>`` for exactly the files of
  :data:`VENDOR_FILES`, read from ``node_modules/<package>/<path>``: the pinned
  third-party parts the client loads (Tabulator, Vega, Vega-Lite, vega-embed,
  topojson-client, us-atlas).  Test tools (axe-core) are not on the list.  Vega's
  UMD builds are loaded with ``<script src>`` (``js/viewer/chart.js``); the CSP-safe
  expression interpreter comes inside vega-embed's build, so vega-interpreter's own
  file -- an ES module importing ``vega-util`` by bare name, which a browser resolves
  only through an (inline, forbidden) import map -- is not served.

Everything else -- ``/package.json``, ``/test/…``, ``/node_modules/…``, a vendor
file not on the list -- is a 404, the same answer as for a file that does not exist.

:func:`resolve_static` does the path safety for both: a request path is accepted
only if, after percent-decoding, every segment is a plain file name -- letters,
digits, ``.``, ``_`` and ``-``, not starting with a dot -- so ``..``, hidden files,
backslashes, NUL bytes and encoded slashes never reach the file system.  The
resolved path must still lie inside the static root (a symlink pointing out is
refused) and be a regular file.  Content types come from a fixed table (text types
with ``charset=utf-8``); unknown suffixes are ``application/octet-stream`` (with
``nosniff`` the browser will not guess).

**Cache validators.**  Every file has a strong ``ETag`` (the SHA-256 of its
content, computed once per (path, size, mtime) and kept in a small cache), sent with
``Cache-Control: no-cache``: the browser revalidates each use with
``If-None-Match`` and gets ``304 Not Modified`` without a body while the file is
unchanged (:func:`not_modified`).

**The brand's logo** (``GET /brand/logo``, see :mod:`starwrs.web.server`) comes from
order entry as a ``GBLA`` answer; :func:`read_logo` checks it again here -- a PNG,
JPEG, GIF or WebP image of at most 64 KiB whose signature matches its declared type
and whose SHA-256 matches -- before the web tier serves a byte of it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from urllib.parse import unquote

import trio
from starwrs.grammar import MessageError, parse
from starwrs.grammar.catalogue_oe import LOGO_TYPES, MAX_LOGO_BYTES, GetBrandLogoAck, logo_type
from starwrs.grammar.errors import ErrorCode
from starwrs.web.http_server import ClientGone, HttpConnection, HttpError

__all__ = [
    "APP_FILES",
    "APP_FOLDERS",
    "BRAND_LOGO_PATH",
    "CONTENT_TYPES",
    "STATIC_HEADERS",
    "STATIC_ROOT",
    "VENDOR_FILES",
    "VENDOR_PREFIX",
    "BrandLogo",
    "StaticFile",
    "etag_of",
    "not_modified",
    "read_logo",
    "resolve_client",
    "resolve_static",
    "serve_client_file",
    "serve_logo",
]

log = logging.getLogger("starwrs.web")

#: where the static files are
STATIC_ROOT = Path(__file__).resolve().parent / "client"

#: the app's own top-level files and folders (everything else of web/client is not served)
APP_FILES = frozenset({"index.html"})
APP_FOLDERS = frozenset({"css", "js", "img"})

#: URL prefix of the vendor files, and the files served there (paths inside node_modules)
VENDOR_PREFIX = "/vendor/"
VENDOR_FILES = frozenset(
    {
        "tabulator-tables/dist/js/tabulator_esm.min.mjs",
        "tabulator-tables/dist/css/tabulator.min.css",
        "vega/build/vega.min.js",
        "vega-lite/build/vega-lite.min.js",
        "vega-embed/build/vega-embed.min.js",
        "topojson-client/dist/topojson-client.min.js",
        "us-atlas/states-10m.json",
        "us-atlas/counties-10m.json",
        "us-atlas/nation-10m.json",
    }
)
_NODE_MODULES = "node_modules"

#: the brand logo's path (served by the web server from order entry's answer)
BRAND_LOGO_PATH = "/brand/logo"

#: suffix -> Content-Type
CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
}

#: sent with every static file and the logo, besides the server's security headers
STATIC_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)

_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}")
_MAX_PATH = 1024


@dataclass(frozen=True, slots=True)
class StaticFile:
    """A file to serve: where it is, its size and its content type."""

    path: Path
    size: int
    content_type: str
    mtime_ns: int = 0


def resolve_static(target_path: str, root: Path = STATIC_ROOT) -> StaticFile | None:
    """Map a request path (``/``, ``/app.js``, ``/img/logo.svg``) to a file under *root*.

    Only the path's safety is checked here; :func:`resolve_client` decides what
    of the client may be served at all.

    Args:
        target_path: the path part of the request target (no query string).
        root: the static root.

    Returns:
        The file, or None when there is no such file or the path is not acceptable.
    """
    if len(target_path) > _MAX_PATH or not target_path.startswith("/"):
        return None
    try:
        decoded = unquote(target_path, errors="strict")
    except UnicodeDecodeError:
        return None
    rel = decoded[1:]
    if rel == "" or rel.endswith("/"):
        rel += "index.html"
    segments = rel.split("/")
    if not all(_SEGMENT.fullmatch(segment) for segment in segments):
        return None
    try:
        base = root.resolve()
        path = base.joinpath(*segments).resolve()
        if not path.is_relative_to(base) or not path.is_file():
            return None
        stat = path.stat()
    except (OSError, ValueError):
        return None
    content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return StaticFile(path, stat.st_size, content_type, stat.st_mtime_ns)


def resolve_client(target_path: str, root: Path = STATIC_ROOT) -> StaticFile | None:
    """The file a browser asked for, if it is one the client is served with.

    Args:
        target_path: the path part of the request target (no query string).
        root: the client folder (``web/client``).

    Returns:
        The app file or allow-listed vendor file, or None (a 404).
    """
    if len(target_path) > _MAX_PATH:
        return None
    try:  # segment by segment: an encoded slash is part of a name, never a separator
        parts = [unquote(part, errors="strict") for part in target_path.split("/")]
    except UnicodeDecodeError:
        return None
    if any("/" in part or "\\" in part for part in parts):
        return None
    decoded = "/".join(parts)
    if decoded.startswith(VENDOR_PREFIX):
        rel = decoded[len(VENDOR_PREFIX) :]
        if rel not in VENDOR_FILES:
            return None
        return resolve_static(f"/{_NODE_MODULES}/{rel}", root)
    rel = decoded.removeprefix("/")
    first, sep, _rest = rel.partition("/")
    if rel in ("", *APP_FILES) or (sep and first in APP_FOLDERS):
        return resolve_static(target_path, root)
    return None


class _EtagCache:
    """(path, size, mtime) -> ETag, for the most recently served files."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self.items: OrderedDict[tuple[str, int, int], str] = OrderedDict()
        self.lock = Lock()  # filled from worker threads

    def get(self, found: StaticFile) -> str:
        key = (str(found.path), found.size, found.mtime_ns)
        with self.lock:
            tag = self.items.get(key)
            if tag is not None:
                self.items.move_to_end(key)
                return tag
        digest = hashlib.sha256()
        with found.path.open("rb") as f:
            while chunk := f.read(1 << 16):
                digest.update(chunk)
        tag = f'"{digest.hexdigest()[:32]}"'
        with self.lock:
            self.items[key] = tag
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return tag


_ETAGS = _EtagCache()


def etag_of(found: StaticFile) -> str:
    """The file's strong ETag (quoted; part of its SHA-256).  Blocking: call in a thread.

    Raises:
        OSError: the file cannot be read.
    """
    return _ETAGS.get(found)


def not_modified(headers: Iterable[tuple[bytes, bytes]], etag: str) -> bool:
    """Whether the request's ``If-None-Match`` names *etag* (or ``*``): answer 304.

    Comparison is weak (RFC 9110 section 13.1.2): ``W/"x"`` matches ``"x"``.
    """
    wanted = etag.removeprefix("W/")
    for name, value in headers:
        if name != b"if-none-match":
            continue
        for part in value.decode("latin-1").split(","):
            tag = part.strip()
            if tag == "*" or tag.removeprefix("W/") == wanted:
                return True
    return False


@dataclass(frozen=True, slots=True)
class BrandLogo:
    """A logo checked by :func:`read_logo`: its bytes, image type and ETag."""

    data: bytes
    content_type: str
    etag: str


def read_logo(payload: bytes) -> BrandLogo | None:
    """Check order entry's ``GBLA`` answer and return the logo to serve.

    Returns:
        The logo, or None when the brand has none (an answer with an ERROR).

    Raises:
        ValueError: the answer is not a valid logo -- malformed, too large, its
            signature is not the type it declares (or not an accepted type), or its
            SHA-256 does not match.  Nothing of it is served.
    """
    try:
        ack = GetBrandLogoAck.from_message(parse(payload.decode("utf-8")))
    except (UnicodeDecodeError, MessageError) as err:
        raise ValueError("order entry's logo answer is malformed") from err
    if ack.error:
        return None
    text = ack.logo or ""
    if len(text) > (MAX_LOGO_BYTES + 2) // 3 * 4:
        raise ValueError("the logo is too large")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ValueError("the logo is not base64") from err
    kind = logo_type(data)
    if len(data) > MAX_LOGO_BYTES or kind is None or kind != ack.image_type:
        raise ValueError("the logo is not an accepted image of its declared type")
    if kind not in LOGO_TYPES or hashlib.sha256(data).hexdigest() != ack.sha256:
        raise ValueError("the logo does not match its SHA-256")
    return BrandLogo(data, kind, f'"{ack.sha256}"')


# -- serving ---------------------------------------------------------------------------

_CHUNK = 64 * 1024


def _find(path: str, root: Path) -> tuple[StaticFile, str] | None:
    found = resolve_client(path, root)
    if found is None:
        return None
    try:
        return found, etag_of(found)
    except OSError:
        return None


async def serve_client_file(http: HttpConnection, path: str, root: Path = STATIC_ROOT) -> None:
    """Answer ``GET``/``HEAD`` *path* with a client file: 200, 304 or 404.

    Raises:
        HttpError: 404 for anything :func:`resolve_client` does not serve.
        ClientGone: the file shrank while it was sent (the response is cut short).
    """
    found = await trio.to_thread.run_sync(_find, path, root)
    if found is None:
        raise HttpError(404, 404, "not found")
    file, etag = found
    headers = [(b"etag", etag.encode()), (b"cache-control", b"no-cache"), *STATIC_HEADERS]
    request = http.request
    assert request is not None
    if not_modified(request.headers, etag):
        await http.respond(304, headers)
        return
    headers += [
        (b"content-type", file.content_type.encode()),
        (b"content-length", str(file.size).encode()),
    ]
    await http.start_response(200, headers)
    if request.method != b"HEAD":
        async with await trio.open_file(file.path, "rb") as f:
            sent = 0
            while sent < file.size:
                chunk = await f.read(min(_CHUNK, file.size - sent))
                if not chunk:  # the file shrank under us: cut the response short
                    raise ClientGone("static file changed while it was sent")
                sent += len(chunk)
                await http.send_data(chunk)
    await http.end_response()


async def serve_logo(http: HttpConnection, answer: bytes) -> None:
    """Answer ``GET /brand/logo`` with order entry's ``GBLA`` *answer*, once checked.

    Raises:
        HttpError: 404 the brand has no logo; 502 the answer is not a valid logo
            (:func:`read_logo`).
    """
    try:
        logo = read_logo(answer)
    except ValueError as err:
        log.warning("brand logo refused: %s", err)
        raise HttpError(502, ErrorCode.MALFORMED_FRAME, "order entry's logo is not valid") from None
    if logo is None:
        raise HttpError(404, 404, "the brand has no logo")
    headers = [
        (b"etag", logo.etag.encode()),
        (b"cache-control", b"private, no-cache"),
        (b"vary", b"cookie"),
        *STATIC_HEADERS,
    ]
    request = http.request
    assert request is not None
    if not_modified(request.headers, logo.etag):
        await http.respond(304, headers)
        return
    headers.append((b"content-type", logo.content_type.encode()))
    await http.respond(200, headers, logo.data)
