"""A2A tasks are read from tether runs: they survive a server restart (a fresh runtime and app
over the same SQLite file) and follow their run when it is answered over the HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.helpers import get_artifact_text
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskState,
)
from a2a.utils.errors import TaskNotFoundError, UnsupportedOperationError
from fastapi import FastAPI

from tests.client.conftest import _make_keys
from tests.server.a2a_kit import Services
from tests.server.a2a_kit import user_message as _msg
from tests.server.apps import workflows
from tests.server.live import ServerThread, serve
from tether import RunStatus, Runtime
from tether.client import Client
from tether.server.a2a import mount_a2a
from tether.server.app import create_app
from tether.server.settings import ServerSettings


@contextlib.asynccontextmanager
async def served(url: str) -> AsyncIterator[tuple[str, Runtime]]:
    """A server process's worth: a runtime on the store at ``url`` and its A2A app."""
    rt = Runtime(url, workflows=workflows, recover=False)
    async with rt:
        app = FastAPI()
        mount_a2a(app, Services(rt, {wf.name: wf for wf in workflows}))
        async with serve(app) as base:
            yield base, rt


def _headers(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {}


async def _send(url: str, msg: Message, key: str | None = None) -> list[StreamResponse]:
    async with httpx.AsyncClient(timeout=60, headers=_headers(key)) as http:
        client = await create_client(url, client_config=ClientConfig(httpx_client=http))
        return [ev async for ev in client.send_message(SendMessageRequest(message=msg))]


async def _get(url: str, task_id: str, key: str | None = None) -> Task:
    async with httpx.AsyncClient(timeout=60, headers=_headers(key)) as http:
        client = await create_client(url, client_config=ClientConfig(httpx_client=http))
        return await client.get_task(GetTaskRequest(id=task_id))


def _final(events: list[StreamResponse]) -> int:
    return [e.status_update.status.state for e in events if e.HasField("status_update")][-1]


async def test_tasks_survive_a_restart(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'a2a.db'}"
    async with served(store) as (url, _):
        done = (await _send(f"{url}/a2a/echo", _msg("before restart")))[0].task
        asked_events = await _send(f"{url}/a2a/ask", _msg("your name?"))
        asked = asked_events[0].task
        assert _final(asked_events) == TaskState.TASK_STATE_INPUT_REQUIRED
        live = await _get(f"{url}/a2a/echo", done.id)  # the SDK's snapshot: its history
        assert live.history[0].parts[0].text == "before restart"

    async with served(store) as (url, rt):  # a new runtime and app: nothing in memory
        got = await _get(f"{url}/a2a/echo", done.id)
        assert got.status.state == TaskState.TASK_STATE_COMPLETED
        assert got.context_id == done.context_id
        assert get_artifact_text(got.artifacts[0]) == "BEFORE RESTART"
        with pytest.raises(TaskNotFoundError):  # a task of another agent
            await _get(f"{url}/a2a/ask", done.id)
        with pytest.raises(TaskNotFoundError):
            await _get(f"{url}/a2a/echo", "no-such-task")

        waiting = await _get(f"{url}/a2a/ask", asked.id)
        assert waiting.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        assert "your name?" in waiting.status.message.parts[0].text

        answered = await _send(f"{url}/a2a/ask", _msg("Ada", asked.id, asked.context_id))
        assert _final(answered) == TaskState.TASK_STATE_COMPLETED
        assert (await rt.get_run(asked.id)).status is RunStatus.COMPLETED
        after = await _get(f"{url}/a2a/ask", asked.id)
        assert after.status.state == TaskState.TASK_STATE_COMPLETED
        assert get_artifact_text(after.artifacts[-1]) == "the human said Ada"

        async with httpx.AsyncClient(timeout=60) as http:
            client = await create_client(
                f"{url}/a2a/ask", client_config=ClientConfig(httpx_client=http)
            )
            page = await client.list_tasks(ListTasksRequest(context_id=asked.context_id))
            assert [t.id for t in page.tasks] == [asked.id]
            echoes = await client.list_tasks(
                ListTasksRequest(status=TaskState.TASK_STATE_INPUT_REQUIRED)
            )
            assert echoes.tasks == []  # answered: no ask task waits any more


async def test_cancel_after_a_restart_cancels_the_run(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'a2a.db'}"
    async with served(store) as (url, _):
        asked = (await _send(f"{url}/a2a/ask", _msg("cancel me?")))[0].task
    async with served(store) as (url, rt):  # no live SDK task holds it here
        async with httpx.AsyncClient(timeout=60) as http:
            client = await create_client(
                f"{url}/a2a/ask", client_config=ClientConfig(httpx_client=http)
            )
            out = await client.cancel_task(CancelTaskRequest(id=asked.id))
        assert out.status.state == TaskState.TASK_STATE_CANCELED
        assert (await rt.get_run(asked.id)).status is RunStatus.CANCELLED
        assert (await _get(f"{url}/a2a/ask", asked.id)).status.state == (
            TaskState.TASK_STATE_CANCELED
        )


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    db = tmp_path / "serve.db"
    keys = asyncio.run(
        _make_keys(db, {"a": ("tenant-a", ["read", "submit"]), "b": ("tenant-b", ["submit"])})
    )
    settings = ServerSettings(store=f"sqlite:///{db}", workflows=workflows, embedded_workers=2)
    with ServerThread(create_app(settings)) as port:
        yield f"http://127.0.0.1:{port}", keys


async def test_a_run_answered_over_rest_reads_completed_over_a2a(
    keyed: tuple[str, dict[str, str]],
) -> None:
    url, keys = keyed
    asked_events = await _send(f"{url}/a2a/ask", _msg("who are you?"), keys["a"])
    asked = asked_events[0].task
    assert _final(asked_events) == TaskState.TASK_STATE_INPUT_REQUIRED

    async with httpx.AsyncClient() as http:  # answered outside A2A: the HTTP API
        r = await http.post(
            f"{url}/v1/runs/{asked.id}/resume", json={"value": "Grace"}, headers=_headers(keys["a"])
        )
        assert r.status_code == 202, r.text
    with Client(url, api_key=keys["a"]) as c:
        assert c.wait(asked.id, timeout=60).status is RunStatus.COMPLETED

    got = await _get(f"{url}/a2a/ask", asked.id, keys["a"])
    assert got.status.state == TaskState.TASK_STATE_COMPLETED
    assert get_artifact_text(got.artifacts[-1]) == "the human said Grace"
    with pytest.raises(TaskNotFoundError):  # tenant b: not its task
        await _get(f"{url}/a2a/ask", asked.id, keys["b"])
    with pytest.raises(UnsupportedOperationError):  # completed: no more messages for it
        await _send(f"{url}/a2a/ask", _msg("again", asked.id, asked.context_id), keys["a"])
