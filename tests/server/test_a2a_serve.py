"""A2A on ``tether serve`` itself (create_app with API keys and an embedded worker): the
official a2a-sdk client streams a task to completion and answers an interrupt; the JSON-RPC
endpoint needs a key with the submit scope, the agent cards are public."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from a2a.client import A2AClientError, ClientConfig, create_client
from a2a.helpers import get_artifact_text, new_data_part
from a2a.types import (
    GetTaskRequest,
    Message,
    Role,
    SendMessageRequest,
    StreamResponse,
    TaskState,
)
from a2a.utils.errors import TaskNotFoundError

from tests.client.conftest import _make_keys
from tests.server.a2a_kit import user_message as _msg
from tests.server.apps import workflows
from tests.server.live import ServerThread
from tether import RunStatus
from tether.client import Client
from tether.server.app import create_app
from tether.server.settings import ServerSettings


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    db = tmp_path / "serve.db"
    keys = asyncio.run(
        _make_keys(
            db,
            {
                "a": ("tenant-a", ["read", "submit"]),
                "r": ("tenant-a", ["read"]),
                "b": ("tenant-b", ["read", "submit"]),
            },
        )
    )
    settings = ServerSettings(store=f"sqlite:///{db}", workflows=workflows, embedded_workers=2)
    with ServerThread(create_app(settings)) as port:
        yield f"http://127.0.0.1:{port}", keys


async def _stream(url: str, key: str, msg: Message) -> list[StreamResponse]:
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:
        client = await create_client(url, client_config=ClientConfig(httpx_client=http))
        return [ev async for ev in client.send_message(SendMessageRequest(message=msg))]


def _final(events: list[StreamResponse]) -> int:
    states = [e.status_update.status.state for e in events if e.HasField("status_update")]
    return states[-1]


async def test_stream_to_completion_and_answer_an_interrupt(
    served: tuple[str, dict[str, str]],
) -> None:
    url, keys = served
    done = await _stream(f"{url}/a2a/echo", keys["a"], _msg("over tether serve"))
    assert _final(done) == TaskState.TASK_STATE_COMPLETED
    art = next(e.artifact_update.artifact for e in done if e.HasField("artifact_update"))
    assert get_artifact_text(art) == "OVER TETHER SERVE"

    asked = await _stream(f"{url}/a2a/ask", keys["a"], _msg("your name?"))
    assert _final(asked) == TaskState.TASK_STATE_INPUT_REQUIRED
    task = asked[0].task
    with Client(url, api_key=keys["a"]) as c:  # the task is a run of tenant a
        run = c.get(task.id)
        assert run.status is RunStatus.ESCALATED and run.tenant == "tenant-a"
    answered = await _stream(f"{url}/a2a/ask", keys["a"], _msg("Ada", task.id, task.context_id))
    assert _final(answered) == TaskState.TASK_STATE_COMPLETED
    with Client(url, api_key=keys["a"]) as c:
        assert c.get(task.id).state["answer"] == "the human said Ada"  # type: ignore[index]


async def test_a2a_needs_a_submit_key_but_cards_are_public(
    served: tuple[str, dict[str, str]],
) -> None:
    url, keys = served
    async with httpx.AsyncClient() as http:
        card = await http.get(f"{url}/a2a/echo/.well-known/agent-card.json")
        assert card.status_code == 200 and card.json()["name"] == "echo"
        scheme = card.json()["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]
        assert scheme["scheme"] == "bearer"
        denied = await http.post(f"{url}/a2a/echo", json={"jsonrpc": "2.0", "id": 1})
        assert denied.status_code == 401
        assert denied.headers["content-type"].startswith("application/problem+json")
        missing = await http.get(f"{url}/a2a/nope/.well-known/agent-card.json")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
    with pytest.raises(A2AClientError):
        await _stream(f"{url}/a2a/echo", keys["r"], _msg("read-only key"))


async def test_another_tenants_task_is_not_found(served: tuple[str, dict[str, str]]) -> None:
    url, keys = served
    asked = await _stream(f"{url}/a2a/ask", keys["a"], _msg("secret?"))
    task = asked[0].task
    headers = {"authorization": f"Bearer {keys['b']}"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:
        client = await create_client(
            f"{url}/a2a/ask", client_config=ClientConfig(httpx_client=http)
        )
        with pytest.raises(TaskNotFoundError):
            await client.get_task(GetTaskRequest(id=task.id))
    with pytest.raises(TaskNotFoundError):  # b cannot answer (resume) a's run
        await _stream(f"{url}/a2a/ask", keys["b"], _msg("hijack", task.id, task.context_id))
    with Client(url, api_key=keys["a"]) as c:
        assert c.get(task.id).status is RunStatus.ESCALATED


async def test_a_stream_outlives_the_request_timeout(tmp_path: Path) -> None:
    """The request timeout stopped every request, A2A streams included: a task that worked
    longer than it (30 s by default) had its SendStreamingMessage stream cut mid-way (an
    incomplete chunked body), tether's own event streams being exempt by their path. The
    timeout bounds the time to answer; an event stream, once it started, is not cut."""
    timeout = 0.3
    settings = ServerSettings(
        store=f"sqlite:///{tmp_path / 'serve.db'}",
        workflows=workflows,
        embedded_workers=2,
        request_timeout=timeout,
    )
    with ServerThread(create_app(settings)) as port:
        url = f"http://127.0.0.1:{port}"
        # each of its 3 steps sleeps longer than the timeout: the task works past it
        msg = Message(
            role=Role.ROLE_USER,
            parts=[new_data_part({"n": 3, "pause": timeout * 2})],
            message_id=str(uuid.uuid4()),
        )
        async with httpx.AsyncClient(timeout=60) as http:
            client = await create_client(
                f"{url}/a2a/count", client_config=ClientConfig(httpx_client=http)
            )
            events = [ev async for ev in client.send_message(SendMessageRequest(message=msg))]
        assert _final(events) == TaskState.TASK_STATE_COMPLETED
        with Client(url) as c:
            assert c.get(events[0].task.id).state["i"] == 3  # type: ignore[index]
