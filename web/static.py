"""The browser client's static files: safe path resolution and content types.

Theory of operation
-------------------
``GET /`` and ``GET /<file>`` serve files from ``web/client/`` (shipped as
package data).  A request path is accepted only if, after percent-decoding, every
segment is a plain file name -- letters, digits, ``.``, ``_`` and ``-``, not
starting with a dot -- so ``..``, hidden files, backslashes, NUL bytes and encoded
slashes never reach the file system.  The resolved path must still lie inside the
static root (a symlink pointing out is refused) and be a regular file; anything
else is a 404, the same answer whatever the reason.  Content types come from a
fixed table (text types with ``charset=utf-8``); unknown suffixes are served as
``application/octet-stream`` (with ``nosniff`` the browser will not guess).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

__all__ = ["CONTENT_TYPES", "STATIC_ROOT", "StaticFile", "resolve_static"]

#: where the static files are
STATIC_ROOT = Path(__file__).resolve().parent / "client"

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

_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}")
_MAX_PATH = 1024


@dataclass(frozen=True, slots=True)
class StaticFile:
    """A file to serve: where it is, its size and its content type."""

    path: Path
    size: int
    content_type: str


def resolve_static(target_path: str, root: Path = STATIC_ROOT) -> StaticFile | None:
    """Map a request path (``/``, ``/app.js``, ``/img/logo.svg``) to a static file.

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
        size = path.stat().st_size
    except (OSError, ValueError):
        return None
    content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return StaticFile(path, size, content_type)
