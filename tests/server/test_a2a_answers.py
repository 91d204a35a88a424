"""A2A answers to input-required tasks: a message sent again (a client's retry after a dropped
connection, with the same messageId) must not answer the task's next question."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.types import Message, SendMessageRequest, StreamResponse, TaskState
from fastapi import FastAPI

from tests.server.a2a_kit import Services
from tests.server.a2a_kit import user_message as _message
from tests.server.live import serve
from tether import END, START, Graph, RunStatus, Runtime, interrupt
from tether.server.a2a import mount_a2a


class Form(TypedDict, total=False):
    question: str
    name: str
    amount: str


def fill(state: Form) -> dict[str, Any]:
    name = interrupt({"question": "your name?"})
    amount = interrupt({"question": "how much shall we pay out?"})
    return {"name": name, "amount": amount}


graph = Graph(Form, name="form")
graph.add_node("fill", fill)
graph.add_edge(START, "fill").add_edge("fill", END)
form = graph.compile()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, Runtime]]:
    rt = Runtime(f"sqlite:///{tmp_path / 'a2a.db'}", workflows=[form], recover=False)
    async with rt:
        app = FastAPI()
        mount_a2a(app, Services(rt, {"form": form}))
        async with serve(app) as url:
            yield url, rt


async def _send(url: str, msg: Message, *, streaming: bool = True) -> list[StreamResponse]:
    async with httpx.AsyncClient(timeout=60) as http:
        config = ClientConfig(streaming=streaming, httpx_client=http)
        client = await create_client(url, client_config=config)
        return [ev async for ev in client.send_message(SendMessageRequest(message=msg))]


def _last_state(events: list[StreamResponse]) -> int:
    states = [e.status_update.status.state for e in events if e.HasField("status_update")]
    return states[-1] if states else events[-1].task.status.state


@pytest.mark.parametrize("streaming", [True, False])
async def test_an_answer_sent_twice_answers_one_question(
    server: tuple[str, Runtime], streaming: bool
) -> None:
    """The retried 'Ada' was taken as the answer to 'how much shall we pay out?'."""
    url, rt = server
    agent = f"{url}/a2a/form"
    first = await _send(agent, _message("start"), streaming=streaming)
    task = first[0].task
    assert _last_state(first) == TaskState.TASK_STATE_INPUT_REQUIRED

    name = _message("Ada", task.id, task.context_id)
    asked = await _send(agent, name, streaming=streaming)
    assert _last_state(asked) == TaskState.TASK_STATE_INPUT_REQUIRED
    again = await _send(agent, name, streaming=streaming)  # the same message, retried
    assert _last_state(again) == TaskState.TASK_STATE_INPUT_REQUIRED
    run = await rt.get_run(task.id)
    assert run.status is RunStatus.ESCALATED
    assert "how much" in str(run.escalation)

    amount = _message("100", task.id, task.context_id)
    done = await _send(agent, amount, streaming=streaming)
    assert _last_state(done) == TaskState.TASK_STATE_COMPLETED
    state = await rt.get_state(task.id)
    assert (state["name"], state["amount"]) == ("Ada", "100")
