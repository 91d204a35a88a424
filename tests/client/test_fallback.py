"""Behind a proxy that cannot stream (it answers the event stream with a buffered JSON body),
``wait`` and ``events`` fall back to polling the paged API and still see everything."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from tests.client.conftest import LiveServer
from tests.server.live import ServerThread
from tether import RunStatus
from tether.client import Client, ServerError
from tether.core.backoff import Backoff


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


class Gateway:
    """A reverse proxy in front of the server that cannot stream, and answers its own HTML
    502 for every request while ``down`` (the server behind restarting); ``hits`` counts
    those answers."""

    def __init__(self, upstream: str) -> None:
        self.down = False
        self.hits = 0
        self.app = FastAPI()
        inner = _buffering_proxy(upstream)

        @self.app.middleware("http")
        async def gate(request: Request, call_next: Any) -> Response:
            if self.down:
                self.hits += 1
                page = b"<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
                return Response(page, status_code=502, media_type="text/html")
            return await call_next(request)

        self.app.mount("/", inner)

    def back_after(self, hits: int) -> None:
        while self.hits < hits:
            time.sleep(0.01)
        self.down = False


def test_wait_and_events_outlive_a_gateway_answering_for_a_restarting_server(
    server: LiveServer,
) -> None:
    """Before: behind a reverse proxy, a server restart is a 502 from the proxy, not a
    refused connection; ``wait()`` (and following events by polling) raised ServerError 502
    after its few retries although the run went on and completed. Now a 502/503/504 is an
    outage like no answer, waited out for up to ``outage`` seconds."""
    brief = Backoff(max_attempts=2, initial_interval=0.01, max_interval=0.05, owner="test")
    gw = Gateway(server.url)
    with (
        ServerThread(gw.app) as port,
        Client(f"http://127.0.0.1:{port}", retry=brief, poll_interval=0.01) as c,
        Client(server.url) as direct,
    ):
        run = c.submit("count", {"n": 10, "pause": 0.01})
        gw.down = True
        back = threading.Thread(target=gw.back_after, args=(6,), daemon=True)
        back.start()
        assert c.wait(run.run_id, timeout=120).status is RunStatus.COMPLETED
        assert gw.hits >= 6  # past its retries (2 a call)

        live = direct.submit("count", {"n": 10, "pause": 0.01})
        got = []
        for ev in c.events(live.run_id):
            got.append(ev.seq)
            if len(got) == 2:
                gw.hits, gw.down = 0, True
                threading.Thread(target=gw.back_after, args=(6,), daemon=True).start()
        assert gw.hits >= 6 and got == list(range(1, len(got) + 1))
        assert got == [e.seq for e in direct.events(live.run_id, follow=False)]
        gw.down = True
        with pytest.raises(ServerError, match="502"):  # a plain read is not waited out
            c.events_page(live.run_id)
        gw.down = False
