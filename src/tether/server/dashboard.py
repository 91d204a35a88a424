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

The routes are registered after the API's (call it last): they never shadow an API path.
"""

from __future__ import annotations

import hashlib
import mimetypes
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
]

STATIC_DIR = Path(__file__).with_name("static")
CLIENT_ROUTES = ("/", "/runs", "/runs/{rest:path}", "/approvals", "/kpis")
"""Paths the dashboard routes in the browser; each answers ``index.html``."""

_ASSETS_MARK = "__ASSETS__"
_PRELOADS_MARK = "<!--PRELOADS-->"
_IMMUTABLE = "public, max-age=31536000, immutable"
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def asset_version(assets: Path) -> str:
    """A digest of every file under ``assets`` (names and contents): the cache-busting part of
    the asset URLs."""
    digest = hashlib.sha256()
    for path in sorted(p for p in assets.rglob("*") if p.is_file()):
        digest.update(path.relative_to(assets).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def render_index(directory: Path, base: str) -> str:
    """``index.html`` with the asset base URL filled in and a preload link per JS module."""
    modules = sorted((directory / "assets" / "js").glob("*.js"))
    links = "\n".join(
        f'    <link rel="modulepreload" href="{base}/js/{path.name}">' for path in modules
    )
    html = (directory / "index.html").read_text(encoding="utf-8")
    return html.replace(_PRELOADS_MARK, links.lstrip()).replace(_ASSETS_MARK, base)


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
    body = render_index(directory, base).encode("utf-8")
    etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
    headers = {
        "Cache-Control": "no-cache",
        "ETag": etag,
        "Content-Security-Policy": _CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }

    async def index(request: Request) -> Response:
        if etag in request.headers.get("if-none-match", ""):
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
