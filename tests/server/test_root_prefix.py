"""``tether serve --root-path /tether`` behind either kind of proxy: one that strips the path
(``/v1/runs`` arrives) and one that passes it on (``/tether/v1/runs`` arrives). Real uvicorn
(it puts the root path in front of every path), the real app on SQLite; and the request limits
see the path below the root (an event stream under a root path is not cut by the timeout)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.server import apps
from tests.server.uvicorn_thread import served
from tether.server.app import create_app
from tether.server.limits import RequestLimits
from tether.server.root_prefix import UnstrippedPrefix, route_path
from tether.server.settings import ServerSettings

PREFIX = "/tether"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("prefixed")
    settings = ServerSettings(
        store=f"sqlite:///{folder / 'runs.db'}", workflows=apps.workflows, embedded_workers=2
    )
    with served(create_app(settings), root_path=PREFIX) as url:
        yield url


@pytest.mark.parametrize("proxy", ["strips", "passes on"])
def test_every_kind_of_route_answers_under_both_proxies(base: str, proxy: str) -> None:
    """What the proxy forwards: the path without the prefix, or with it."""
    forwarded = base if proxy == "strips" else base + PREFIX
    with httpx.Client(base_url=forwarded, timeout=60) as http:
        made = http.post("/v1/runs", json={"workflow": "echo", "input": {"text": "hi"}})
        assert made.status_code == 202, made.text
        run_id = made.json()["run_id"]
        assert made.headers["location"] == f"{PREFIX}/v1/runs/{run_id}"
        assert http.get(f"/v1/runs/{run_id}").json()["run_id"] == run_id
        assert http.get("/healthz").status_code == 200
        assert http.get("/openapi.json").json()["servers"] == [{"url": PREFIX}]
        docs = http.get("/docs")
        assert docs.status_code == 200 and f"{PREFIX}/openapi.json" in docs.text
        page = http.get(f"/runs/{run_id}")  # a dashboard link, reloaded
        assert page.status_code == 200
        assert f'<meta name="tether-root" content="{PREFIX}">' in page.text
        missing = http.get("/v1/nothing-here")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")


def test_a_list_item_cut_says_where_the_rest_is_under_the_root_path(base: str) -> None:
    with httpx.Client(base_url=base, timeout=60) as http:
        meta = {"blob": "x" * 10_000}
        made = http.post("/v1/runs", json={"workflow": "echo", "input": {}, "metadata": meta})
        run_id = made.json()["run_id"]
        items = http.get("/v1/runs", params={"limit": 500}).json()["items"]
        (item,) = [i for i in items if i["run_id"] == run_id]
        href = item["metadata_truncated"]["href"]
        assert href == f"{PREFIX}/v1/runs/{run_id}"  # as Location says: where a client goes
        assert http.get(href.removeprefix(PREFIX)).json()["metadata"]["blob"] == meta["blob"]


def test_a_path_that_only_looks_prefixed_is_left_alone(base: str) -> None:
    with httpx.Client(base_url=base, timeout=60) as http:
        assert http.get(f"{PREFIX}x/healthz").status_code == 404  # not the segment /tether


@pytest.mark.parametrize(
    ("root", "path", "below"),
    [
        ("", "/v1/runs", "/v1/runs"),
        ("/tether", "/tether/v1/runs", "/v1/runs"),
        ("/tether", "/tether", "/"),
        ("/tether", "/tetherx/v1", "/tetherx/v1"),
        ("/a/b", "/a/b/healthz", "/healthz"),
    ],
)
def test_route_path(root: str, path: str, below: str) -> None:
    assert route_path({"type": "http", "root_path": root, "path": path}) == below


async def test_the_middleware_takes_one_copy_of_the_prefix_off() -> None:
    seen: list[tuple[str, bytes]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["path"], scope["raw_path"]))

    mw = UnstrippedPrefix(inner)
    for path in ("/tether/tether/v1/runs", "/tether/v1/runs", "/tether/tether"):
        scope = {"type": "http", "root_path": PREFIX, "path": path, "raw_path": path.encode()}
        await mw(scope, None, None)
    assert seen == [
        ("/tether/v1/runs", b"/tether/v1/runs"),
        ("/tether/v1/runs", b"/tether/v1/runs"),  # stripped by the proxy: untouched
        ("/tether", b"/tether"),
    ]


async def _answer(limits: RequestLimits, path: str) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg: dict[str, Any]) -> None:
        sent.append(msg)

    scope = {"type": "http", "method": "GET", "root_path": PREFIX, "path": PREFIX + path}
    scope["headers"] = []
    await limits(scope, receive, send)
    return sent


async def test_an_event_stream_under_a_root_path_outlives_the_request_timeout() -> None:
    release = asyncio.Event()

    async def stream(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await release.wait()  # longer than the 0.01 s timeout: only an exempt stream gets here
        await send({"type": "http.response.body", "body": b"data: 1\n\n"})

    limits = RequestLimits(stream, max_body_bytes=1000, timeout=0.01)
    answering = asyncio.create_task(_answer(limits, "/v1/stream/runs"))
    await asyncio.sleep(0.05)
    assert not answering.done()  # not cut
    release.set()
    sent = await answering
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


async def test_an_ordinary_request_under_a_root_path_still_times_out() -> None:
    async def stuck(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.Event().wait()

    limits = RequestLimits(stuck, max_body_bytes=1000, timeout=0.01)
    sent = await _answer(limits, "/v1/runs")
    assert sent[0]["status"] == 504


def test_dashboard_assets_load_through_a_proxy_that_passes_the_path_on(base: str) -> None:
    with httpx.Client(base_url=base + PREFIX, timeout=60) as http:
        index = http.get("/").text
        assets = [part.split('"')[0] for part in index.split(f'src="{PREFIX}/assets/')[1:]]
        assert assets, index
        for name in assets:
            assert http.get(f"/assets/{name}").status_code == 200
