"""An A2A stream answers to the key that opened it, as tether's own event streams do: once
the key is revoked (``tether keys revoke``, another process), the stream delivers nothing more
of the task and ends with a JSON-RPC error. Before, ``SendStreamingMessage`` opened with a
leaked key kept streaming the tenant's task (its artifacts included) to the end."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pytest

from tests.client.conftest import _make_keys
from tests.server.live import ServerThread
from tether import END, START, Graph
from tether.cli.main import main as cli
from tether.server.a2a import REVOKED_CODE
from tether.server.app import create_app
from tether.server.keys import key_id_of
from tether.server.settings import ServerSettings

DEADLINE = 60.0  # a hang guard; the gate below is opened as soon as the key is revoked
GATE = threading.Event()


class Secret(TypedDict, total=False):
    text: str
    secret: str


async def hold(state: Secret) -> dict[str, Any]:
    await asyncio.to_thread(GATE.wait, DEADLINE)  # runs until the test lets it finish
    return {"secret": "the tenant's secret " + state.get("text", "")}


graph = Graph(Secret, name="held")
graph.add_node("hold", hold).add_edge(START, "hold").add_edge("hold", END)
held = graph.compile()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    GATE.clear()
    db = tmp_path / "a2a.db"
    keys = asyncio.run(
        _make_keys(db, {"a": ("tenant-a", ["read", "submit"]), "a2": ("tenant-a", ["submit"])})
    )
    settings = ServerSettings(
        store=f"sqlite:///{db}",
        workflows=[held],
        embedded_workers=2,
        key_recheck=0.0,  # the key is looked at before each frame: no race with the run's end
        key_cache_ttl=0.0,
    )
    try:
        with ServerThread(create_app(settings)) as port:
            yield f"http://127.0.0.1:{port}", db, keys
    finally:
        GATE.set()


def _send(text: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": "req-7",
        "method": "SendStreamingMessage",
        "params": {
            "message": {
                "role": "ROLE_USER",
                "parts": [{"text": text}],
                "messageId": str(uuid.uuid4()),
            }
        },
    }


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    event = "message"
    for line in lines:
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            yield event, json.loads(line.split(":", 1)[1])
            event = "message"


@pytest.mark.parametrize("revoke", ["a", None])
def test_a_revoked_keys_a2a_stream_ends_without_the_rest_of_the_task(
    served: tuple[str, Path, dict[str, str]], revoke: str | None
) -> None:
    url, db, keys = served
    key = keys["a"]
    headers = {"authorization": f"Bearer {key}", "A2A-Version": "1.0"}
    with (
        httpx.Client(timeout=DEADLINE) as http,
        http.stream("POST", f"{url}/a2a/held", json=_send("x"), headers=headers) as r,
    ):
        assert r.status_code == 200, r.read()
        events = _events(r.iter_lines())
        first_event, first = next(events)  # the task exists and is running
        assert first_event == "message" and "result" in first, first
        if revoke:
            assert cli(["keys", "revoke", str(key_id_of(key)), "--store", f"sqlite:///{db}"]) == 0
        GATE.set()  # the run goes on to its end and its secret
        rest = list(events)
    seen = json.dumps(rest)
    if revoke:
        assert "the tenant's secret" not in seen  # nothing of the task after the revocation
        kind, last = rest[-1]
        assert kind == "error" and last["id"] == "req-7"
        assert last["error"]["code"] == REVOKED_CODE and "revoked" in last["error"]["message"]
        again = httpx.post(f"{url}/a2a/held", json=_send("y"), headers=headers)
        assert again.status_code == 401
    else:  # a key that stands streams the task to its end
        assert "the tenant's secret x" in seen
        assert all(kind == "message" for kind, _ in rest)
