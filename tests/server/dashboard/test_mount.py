"""mount_dashboard serves the static app: index.html on the client routes (revalidated, with
a CSP), the assets under a content-versioned URL (cached as immutable), every ES module
preloaded, and no API path shadowed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tether.server.app import create_app
from tether.server.dashboard import STATIC_DIR, asset_version, mount_dashboard
from tether.server.settings import ServerSettings
from tether.store.memory import MemoryStore

JS = STATIC_DIR / "assets" / "js"


@pytest.fixture(scope="module")
def client() -> TestClient:
    with TestClient(create_app(ServerSettings(store=MemoryStore()))) as c:
        yield c


def test_index_on_every_client_route(client: TestClient) -> None:
    first = client.get("/")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/html")
    assert first.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in first.headers["content-security-policy"]
    for path in ("/runs", "/runs/run_123", "/runs/run_123/", "/approvals"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.text == first.text
    again = client.get("/runs", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


def test_assets_are_versioned_immutable_and_all_preloaded(client: TestClient) -> None:
    html = client.get("/").text
    version = asset_version(STATIC_DIR / "assets")
    assert "__ASSETS__" not in html and "<!--PRELOADS-->" not in html
    preloaded = set(re.findall(rf'rel="modulepreload" href="/assets/{version}/js/([\w.]+)"', html))
    assert preloaded == {p.name for p in JS.glob("*.js")}
    for name in ("app.css", "boot.js", "favicon.svg", "js/main.js"):
        r = client.get(f"/assets/{version}/{name}")
        assert r.status_code == 200, name
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    js = client.get(f"/assets/{version}/js/main.js")
    assert "javascript" in js.headers["content-type"]  # module scripts need a JS MIME type
    assert client.get("/assets/000000000000/js/main.js").status_code == 404


def test_every_imported_module_exists() -> None:
    names = {p.name for p in JS.glob("*.js")}
    for path in JS.glob("*.js"):
        for target in re.findall(r'from "\./([\w.]+)"', path.read_text()):
            assert target in names, f"{path.name} imports a missing module {target}"


def test_api_paths_are_not_shadowed(client: TestClient) -> None:
    r = client.get("/v1/no-such-route")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/v1/runs").json()["items"] == []
    paths = client.get("/openapi.json").json()["paths"]
    assert not {"/", "/runs", "/approvals"} & set(paths)
    assert not any(p.startswith("/assets") or p.startswith("/runs/{") for p in paths)


def test_the_version_follows_the_contents(tmp_path: Path) -> None:
    copy = tmp_path / "static"
    shutil.copytree(STATIC_DIR, copy)
    before = asset_version(copy / "assets")
    (copy / "assets" / "app.css").write_text("body { color: red; }\n")
    after = asset_version(copy / "assets")
    assert before != after
    app = FastAPI()
    mount_dashboard(app, copy)
    with TestClient(app) as c:
        assert f"/assets/{after}/app.css" in c.get("/").text
        assert c.get(f"/assets/{after}/app.css").text == "body { color: red; }\n"


def test_public_names() -> None:
    import tether.server.dashboard as dashboard

    assert sorted(dashboard.__all__) == [
        "CLIENT_ROUTES",
        "STATIC_DIR",
        "asset_version",
        "load_assets",
        "mount_dashboard",
        "render_index",
        "root_path",
    ]
