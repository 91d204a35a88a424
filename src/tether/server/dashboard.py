"""The web dashboard: static files served by ``tether serve`` at ``/``.

The files under ``static/`` are hand-written ES modules and one stylesheet (no build step, no
CDN: the dashboard works offline). ``mount_dashboard(app)`` serves them:

* ``/assets/<version>/...``: the files under ``static/assets``; ``<version>`` is a digest of
  their contents, so they are cached for a year as immutable and a new release changes the URL;
* ``/``, ``/runs``, ``/runs/<id>``, ``/approvals``: ``index.html`` (the client-side routes),
  revalidated on every load (``no-cache`` with an ETag), with the asset version filled in and a
  ``modulepreload`` link per module so the browser fetches them all at once, not in a waterfall.

The routes are registered after the API's (call it last): they never shadow an API path.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["CLIENT_ROUTES", "STATIC_DIR", "asset_version", "mount_dashboard", "render_index"]

STATIC_DIR = Path(__file__).with_name("static")
CLIENT_ROUTES = ("/", "/runs", "/runs/{rest:path}", "/approvals")
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


class _ImmutableFiles(StaticFiles):
    """Static files under a versioned URL: cacheable forever."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = _IMMUTABLE
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response


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

    for path in CLIENT_ROUTES:
        app.add_route(path, index, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount(base, _ImmutableFiles(directory=assets), name="dashboard-assets")
