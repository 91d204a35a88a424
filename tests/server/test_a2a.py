"""A2A: the official a2a-sdk client talks to tether workflows served over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.helpers import get_artifact_text, get_data_parts, new_text_part
from a2a.types import GetTaskRequest, Message, Role, SendMessageRequest, StreamResponse, TaskState
from fastapi import FastAPI
from google.protobuf.json_format import MessageToDict

from tests.server.a2a_kit import Services
from tests.server.a2a_kit import user_message as _message
from tests.server.apps import workflows
from tests.server.live import serve
from tether import RunStatus, Runtime
from tether.server.a2a import mount_a2a


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, Runtime]]:
    rt = Runtime(f"sqlite:///{tmp_path / 'a2a.db'}", workflows=workflows, recover=False)
    async with rt:
        app = FastAPI()
        mount_a2a(app, Services(rt, {wf.name: wf for wf in workflows}))
        async with serve(app) as url:
            yield url, rt


async def _send(url: str, msg: Message, *, streaming: bool = True) -> list[StreamResponse]:
    async with httpx.AsyncClient(timeout=60) as http:
        client = await create_client(
            url, client_config=ClientConfig(streaming=streaming, httpx_client=http)
        )
        return [ev async for ev in client.send_message(SendMessageRequest(message=msg))]


def _states(events: list[StreamResponse]) -> list[int]:
    return [e.status_update.status.state for e in events if e.HasField("status_update")]


async def test_agent_cards(server: tuple[str, Runtime]) -> None:
    url, _ = server
    async with httpx.AsyncClient() as http:
        card = (await http.get(f"{url}/a2a/echo/.well-known/agent-card.json")).json()
        assert card["name"] == "echo"
        assert card["capabilities"]["streaming"] is True
        assert "securitySchemes" not in card  # no auth on this app: no key to ask for
        assert card["supportedInterfaces"][0]["url"] == f"{url}/a2a/echo"
        root = (await http.get(f"{url}/.well-known/agent-card.json")).json()
        assert root["name"] == "echo"  # the first workflow is the default agent
        listing = (await http.get(f"{url}/a2a")).json()
        assert [a["name"] for a in listing["items"]] == ["ask", "count", "echo", "refunds"]
        missing = await http.get(f"{url}/a2a/nope/.well-known/agent-card.json")
        assert missing.status_code == 404


async def test_streams_a_task_to_completion(server: tuple[str, Runtime]) -> None:
    url, rt = server
    events = await _send(f"{url}/a2a/echo", _message("hello a2a"))
    assert events[0].HasField("task")
    task_id = events[0].task.id
    states = _states(events)
    assert TaskState.TASK_STATE_WORKING in states
    progress = [
        MessageToDict(e.status_update.metadata)
        for e in events
        if e.HasField("status_update") and "node" in e.status_update.metadata
    ]
    assert progress and progress[0]["node"] == "shout"
    assert states[-1] == TaskState.TASK_STATE_COMPLETED
    arts = [e.artifact_update.artifact for e in events if e.HasField("artifact_update")]
    assert get_artifact_text(arts[0]) == "HELLO A2A"
    assert get_data_parts(arts[0].parts)[0]["answer"] == "HELLO A2A"
    run = await rt.get_run(task_id)  # the task is a tether run, with the task's id
    assert run.status is RunStatus.COMPLETED
    assert run.metadata["submitted_via"] == "a2a"


async def test_blocking_send_returns_the_finished_task(server: tuple[str, Runtime]) -> None:
    url, _ = server
    events = await _send(f"{url}/a2a/echo", _message("quiet"), streaming=False)
    assert len(events) == 1 and events[0].HasField("task")
    task = events[0].task
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert get_artifact_text(task.artifacts[0]) == "QUIET"


async def test_interrupt_is_input_required_and_answered_over_a2a(
    server: tuple[str, Runtime],
) -> None:
    url, rt = server
    first = await _send(f"{url}/a2a/ask", _message("six times seven"))
    task = first[0].task
    assert _states(first)[-1] == TaskState.TASK_STATE_INPUT_REQUIRED
    ask = [e.status_update.status.message for e in first if e.HasField("status_update")][-1]
    assert "six times seven" in ask.parts[0].text
    assert (await rt.get_run(task.id)).status is RunStatus.ESCALATED

    second = await _send(f"{url}/a2a/ask", _message("42", task.id, task.context_id))
    assert _states(second)[-1] == TaskState.TASK_STATE_COMPLETED
    arts = [e.artifact_update.artifact for e in second if e.HasField("artifact_update")]
    assert get_artifact_text(arts[-1]) == "the human said 42"
    assert (await rt.get_run(task.id)).status is RunStatus.COMPLETED

    async with httpx.AsyncClient(timeout=60) as http:
        client = await create_client(
            f"{url}/a2a/ask", client_config=ClientConfig(httpx_client=http)
        )
        got = await client.get_task(GetTaskRequest(id=task.id))
    assert got.status.state == TaskState.TASK_STATE_COMPLETED


async def test_bad_input_is_rejected_not_crashed(server: tuple[str, Runtime]) -> None:
    url, _ = server
    msg = Message(
        role=Role.ROLE_USER,
        parts=[new_text_part("   ")],
        message_id=str(uuid.uuid4()),
    )
    events = await _send(f"{url}/a2a/echo", msg)
    states = _states(events)
    final: Any = events[-1].task.status.state if not states else states[-1]
    assert final == TaskState.TASK_STATE_REJECTED
