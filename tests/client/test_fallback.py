"""Behind a proxy that cannot stream (it answers the event stream with a buffered JSON body),
``wait`` and ``events`` fall back to polling the paged API and still see everything."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from tests.client.conftest import LiveServer
from tests.server.live import ServerThread
from tether import RunStatus
from tether.client import Client


def _buffering_proxy(upstream: str) -> FastAPI:
    app = FastAPI()
    client = httpx.AsyncClient(base_url=upstream, timeout=60)

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def forward(path: str, request: Request) -> Response:
        if path.endswith("/events/stream"):  # a proxy that buffers: no event stream here
            return Response(b'{"note": "streaming is off"}', media_type="application/json")
        up = await client.request(
            request.method,
            f"/{path}",
            params=request.query_params,
            content=await request.body(),
            headers={"content-type": request.headers.get("content-type", "application/json")},
        )
        ctype = up.headers.get("content-type", "application/json")
        return Response(up.content, status_code=up.status_code, media_type=ctype)

    return app


@pytest.fixture
def proxied(server: LiveServer) -> Iterator[str]:
    with ServerThread(_buffering_proxy(server.url)) as port:
        yield f"http://127.0.0.1:{port}"


def test_wait_and_events_poll_when_streaming_is_impossible(proxied: str) -> None:
    with Client(proxied, poll_interval=0.05) as c:
        run = c.submit("count", {"n": 5, "pause": 0.01})
        done = c.wait(run.run_id, timeout=120)
        assert done.status is RunStatus.COMPLETED and done.state["i"] == 5  # type: ignore[index]
        seqs = [e.seq for e in c.events(run.run_id)]  # follow=True, by pages
        assert seqs == list(range(1, len(seqs) + 1))
        assert seqs == [e.seq for e in c.events(run.run_id, follow=False)]

        live = c.submit("count", {"n": 20, "pause": 0.01})
        followed = [e for e in c.events(live.run_id)]  # polled while it runs, until it ends
        assert followed[-1].data.get("to") == "COMPLETED"
        assert [e.seq for e in followed] == list(range(1, len(followed) + 1))
