"""A2A task history outlives the server: ``tether serve`` processes, one after the other, on one
SQLite store; the official a2a-sdk client sends a message, the server is killed, and a new
server process answers ``GetTask`` with the same history, then takes the answer to the task's
question, and a third one still shows the whole conversation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.helpers import get_artifact_text
from a2a.types import GetTaskRequest, Message, Role, SendMessageRequest, Task, TaskState

from tests.server.a2a_kit import user_message as _msg

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.server.apps:workflows"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


class Server:
    """One ``tether serve`` process (embedded worker, local mode) on ``store``."""

    def __init__(self, store: str) -> None:
        args = ["serve", "--store", store, "--app", APP, "--port", "0", "--json"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tether.cli.main", *args],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the server did not start: {self.proc.communicate(60)[1]}")
        self.url = str(json.loads(line)["url"])

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=60)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'a2a.db'}"


async def _send(url: str, msg: Message) -> Task:
    """Send ``msg`` (to its task) and stream the task until the stream ends; the task then."""
    async with httpx.AsyncClient(timeout=60) as http:
        client = await create_client(url, client_config=ClientConfig(httpx_client=http))
        async for _ in client.send_message(SendMessageRequest(message=msg)):
            pass
        return await client.get_task(GetTaskRequest(id=msg.task_id))


async def _start(url: str, msg: Message) -> Task:
    """Send a first message; the task it started, once its stream ended."""
    async with httpx.AsyncClient(timeout=60) as http:
        client = await create_client(url, client_config=ClientConfig(httpx_client=http))
        task_id = ""
        async for ev in client.send_message(SendMessageRequest(message=msg)):
            if ev.HasField("task"):
                task_id = ev.task.id
            elif ev.HasField("status_update"):
                task_id = ev.status_update.task_id
        assert task_id
        return await client.get_task(GetTaskRequest(id=task_id))


async def _get(url: str, task_id: str) -> Task:
    async with httpx.AsyncClient(timeout=60) as http:
        client = await create_client(url, client_config=ClientConfig(httpx_client=http))
        return await client.get_task(GetTaskRequest(id=task_id))


def _texts(task: Task) -> list[tuple[int, str]]:
    return [(m.role, " ".join(p.text for p in m.parts if p.text)) for m in task.history]


async def test_a_restarted_server_answers_a_task_with_its_history(store: str) -> None:
    first = Server(store)
    try:
        asked = await _start(f"{first.url}/a2a/ask", _msg("your name?"))
        assert asked.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        before = _texts(asked)
        assert (Role.ROLE_USER, "your name?") in before
    finally:
        first.kill()  # SIGKILL: nothing is flushed on the way out

    second = Server(store)
    try:
        url = f"{second.url}/a2a/ask"
        got = await _get(url, asked.id)
        assert got.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        assert _texts(got) == before  # the history the first server had
        assert dict(got.metadata) == dict(asked.metadata)

        done = await _send(url, _msg("Ada", asked.id, asked.context_id))
        assert done.status.state == TaskState.TASK_STATE_COMPLETED
        assert get_artifact_text(done.artifacts[-1]) == "the human said Ada"
        conversation = _texts(done)
        assert conversation[: len(before)] == before
        assert conversation[-1] == (Role.ROLE_USER, "Ada")
        # the question the task asked went into the history when it was answered
        assert any(role == Role.ROLE_AGENT and "your name?" in text for role, text in conversation)
    finally:
        second.stop()

    third = Server(store)
    try:
        again = await _get(f"{third.url}/a2a/ask", asked.id)
        assert again.status.state == TaskState.TASK_STATE_COMPLETED
        assert _texts(again) == conversation
    finally:
        third.stop()
