"""An open event stream answers to the key that opened it: once the key is revoked (by
``tether keys revoke``, from another process) the stream ends with ``event: revoked`` and a
reconnect is refused. Before, a stream opened with a leaked key kept delivering the tenant's
runs and events for as long as the connection stayed up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import apps
from tests.server.conftest import TENANT_KEYS, bearer, make_keys
from tests.server.sse_client import frames
from tests.server.uvicorn_thread import served
from tether.cli.main import main as cli
from tether.server.app import create_app
from tether.server.keys import Principal, key_id_of
from tether.server.settings import ServerSettings
from tether.server.stream_auth import REVOKED_FRAME, while_authorised

DEADLINE = 60.0  # a hang guard: each stream below ends within a fraction of a second


@pytest.fixture
def served_keys(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    db = tmp_path / "runs.db"
    keys = make_keys(db, TENANT_KEYS)
    settings = ServerSettings(
        store=f"sqlite:///{db}",
        workflows=apps.workflows,
        embedded_workers=2,
        sse_heartbeat=0.05,
        runs_poll=0.05,
        key_recheck=0.05,
        key_cache_ttl=0.05,
    )
    with served(create_app(settings)) as url:
        yield url, db, keys


@pytest.mark.parametrize("path", ["/v1/stream/runs", "/v1/runs/{run}/events/stream"])
def test_a_revoked_keys_open_stream_ends(
    served_keys: tuple[str, Path, dict[str, str]], path: str
) -> None:
    url, db, keys = served_keys
    key, other = keys["a_all"], keys["b_all"]
    with httpx.Client(base_url=url, timeout=DEADLINE) as c:
        r = c.post(
            "/v1/runs", json={"workflow": "ask", "input": {"question": "q"}}, headers=bearer(key)
        )
        assert r.status_code == 202, r.text
        run = r.json()["run_id"]
        with (
            c.stream("GET", path.format(run=run), headers=bearer(key)) as mine,
            c.stream("GET", "/v1/stream/runs", headers=bearer(other)) as theirs,
        ):
            assert mine.status_code == theirs.status_code == 200
            it = frames(mine)
            next(it)  # the stream is up
            key_id = key_id_of(key)
            assert cli(["keys", "revoke", str(key_id), "--store", f"sqlite:///{db}"]) == 0
            rest = list(it)  # pings and frames until the stream ends
            last = rest[-1]
            assert last.event == "revoked"
            assert last.data["status"] == 401 and "revoked" in last.data["detail"]
            # another tenant's stream, whose key stands, goes on
            seen = frames(theirs)
            assert next(seen).comment and next(seen) is not None
        again = c.get(path.format(run=run), headers=bearer(key))
        assert again.status_code == 401


async def test_the_key_is_looked_at_between_frames_at_most_every_interval() -> None:
    now = [0.0]
    looks: list[float] = []
    live = [True]
    closed: list[bool] = []

    async def body() -> AsyncIterator[str]:
        try:
            for i in range(100):
                now[0] += 1.0  # one frame a second
                yield f"frame {i}\n\n"
        finally:
            closed.append(True)

    async def alive() -> bool:
        looks.append(now[0])
        return live[0]

    out = []
    async for chunk in while_authorised(
        body(), alive, ending=REVOKED_FRAME, every=10.0, clock=lambda: now[0]
    ):
        out.append(chunk)
        if len(out) == 25:
            live[0] = False
    assert looks == [10.0, 20.0, 30.0]
    assert out[-1].startswith("event: revoked") and len(out) == 30
    assert closed == [True]  # the stream's own generator was closed, its cleanup ran


async def test_local_mode_streams_ask_nothing() -> None:
    from tether.server.stream_auth import key_alive
    from tether.store.memory import MemoryStore

    local = Principal(None, frozenset({"read"}))
    assert await key_alive(MemoryStore(), local)() is True
    gone = Principal("acme", frozenset({"read"}), "k_missing")
    assert await key_alive(MemoryStore(), gone)() is False
    await asyncio.sleep(0)
