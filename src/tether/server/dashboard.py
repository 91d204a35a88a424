"""The web dashboard: static files served by ``tether serve`` at ``/``.

The files under ``static/`` are hand-written ES modules and one stylesheet (no build step, no
CDN: the dashboard works offline). ``mount_dashboard(app)`` serves them:

* ``/assets/<version>/...``: the files under ``static/assets``, read once into memory (a
  request costs no file system call and no thread); ``<version>`` is a digest of their
  contents, so they are cached for a year as immutable and a new release changes the URL;
* ``/``, ``/runs``, ``/runs/<id>``, ``/approvals``, ``/kpis``: ``index.html`` (the client-side
  routes), revalidated on every load (``no-cache`` with an ETag), with the asset version filled
  in and a ``modulepreload`` link per module so the browser fetches them all at once, not in a
  waterfall.

Behind a proxy that mounts the server under a path (``tether serve --root-path /tether``: the
ASGI ``root_path``), ``index.html`` carries that path (``<meta name="tether-root">``, the asset
URLs, the navigation links) and the dashboard builds every URL below it (``js/root.js``).

The routes are registered after the API's (call it last): they never shadow an API path.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "CLIENT_ROUTES",
    "STATIC_DIR",
    "asset_version",
    "load_assets",
    "mount_dashboard",
    "render_index",
    "root_path",
]

STATIC_DIR = Path(__file__).with_name("static")
CLIENT_ROUTES = ("/", "/runs", "/runs/{rest:path}", "/approvals", "/kpis")
"""Paths the dashboard routes in the browser; each answers ``index.html``."""

_ASSETS_MARK = "__ASSETS__"
_ROOT_MARK = "__ROOT__"
_ROOT_PATH = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*")
"""A root path the dashboard accepts: ``/a/b`` segments of URL path characters (no quotes,
no angle brackets: it is written into ``index.html``), or empty."""
_PRELOADS_MARK = "<!--PRELOADS-->"
_IMMUTABLE = "public, max-age=31536000, immutable"
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'"
)
"""No inline script or style, nothing from another origin, no plugin, no framing, and no
string ever parsed as HTML or script (Trusted Types with no policy: ``innerHTML``, ``eval``
and their kin throw; the dashboard builds its DOM from nodes and text)."""
_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP level 2
    "Cross-Origin-Opener-Policy": "same-origin",
}


def asset_version(assets: Path) -> str:
    """A digest of every file under ``assets`` (names and contents): the cache-busting part of
    the asset URLs."""
    digest = hashlib.sha256()
    for path in sorted(p for p in assets.rglob("*") if p.is_file()):
        digest.update(path.relative_to(assets).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def render_index(directory: Path, base: str, root: str = "") -> str:
    """``index.html`` with the asset base URL and the root path filled in and a preload link
    per JS module (``base`` is under ``root`` already)."""
    if not _ROOT_PATH.fullmatch(root):
        raise ValueError(f"not a root path: {root!r}")
    modules = sorted((directory / "assets" / "js").glob("*.js"))
    links = "\n".join(
        f'    <link rel="modulepreload" href="{base}/js/{path.name}">' for path in modules
    )
    html = (directory / "index.html").read_text(encoding="utf-8")
    html = html.replace(_PRELOADS_MARK, links.lstrip()).replace(_ASSETS_MARK, base)
    return html.replace(_ROOT_MARK, root)


def root_path(request: Request) -> str:
    """The path the server is mounted under (the ASGI ``root_path``, without a trailing
    slash; ``tether serve --root-path``), for the pages and URLs it hands out; empty when it
    is not, or when it is not a plain URL path."""
    root = str(request.scope.get("root_path") or "").rstrip("/")
    return root if _ROOT_PATH.fullmatch(root) else ""


_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}


def load_assets(assets: Path) -> dict[str, tuple[bytes, str]]:
    """Every file under ``assets`` by its relative path: its bytes and its media type."""
    out: dict[str, tuple[bytes, str]] = {}
    for path in sorted(p for p in assets.rglob("*") if p.is_file()):
        kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        out[path.relative_to(assets).as_posix()] = (
            path.read_bytes(),
            kind or "application/octet-stream",
        )
    return out


def mount_dashboard(app: FastAPI, directory: Path = STATIC_DIR) -> None:
    """Serve the dashboard from ``directory`` on ``app`` (after the API routes)."""
    assets = directory / "assets"
    version = asset_version(assets)
    base = f"/assets/{version}"
    pages: dict[str, tuple[bytes, dict[str, str]]] = {}

    def page(root: str) -> tuple[bytes, dict[str, str]]:
        """``index.html`` for one root path (rendered once; a server has one or two)."""
        if root not in pages:
            body = render_index(directory, root + base, root).encode("utf-8")
            headers = {
                "Cache-Control": "no-cache",
                "ETag": '"' + hashlib.sha256(body).hexdigest()[:16] + '"',
                **_PAGE_HEADERS,
            }
            pages[root] = (body, headers)
        return pages[root]

    async def index(request: Request) -> Response:
        body, headers = page(root_path(request))
        if headers["ETag"] in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="text/html; charset=utf-8", headers=headers)

    files = load_assets(assets)
    cached = {"Cache-Control": _IMMUTABLE, "X-Content-Type-Options": "nosniff"}

    async def asset(request: Request) -> Response:
        found = files.get(request.path_params["path"])
        if found is None:
            return Response("no such dashboard file", status_code=404, media_type="text/plain")
        if request.headers.get("if-none-match") == f'"{version}"':
            return Response(status_code=304, headers={**cached, "ETag": f'"{version}"'})
        data, kind = found
        return Response(data, media_type=kind, headers={**cached, "ETag": f'"{version}"'})

    for path in CLIENT_ROUTES:
        app.add_route(path, index, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_route(f"{base}/{{path:path}}", asset, methods=["GET", "HEAD"], include_in_schema=False)
