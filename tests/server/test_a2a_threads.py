"""A2A contexts are threads: the tasks of one context are turns of one conversation, through
the official a2a-sdk client over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.helpers import get_artifact_text, get_text_parts
from a2a.types import Message, SendMessageRequest, StreamResponse, TaskState
from fastapi import FastAPI

from tests.server.a2a_kit import Services, user_message
from tests.server.live import serve
from tether import END, START, Graph, Runtime, append, interrupt
from tether.server.a2a import mount_a2a
from tether.server.a2a_executor import a2a_thread


class Chat(TypedDict, total=False):
    text: str
    said: Annotated[list[str], append]
    answer: str


def reply(state: Chat) -> dict[str, Any]:
    said = [*state.get("said", []), state["text"]]
    if state["text"] == "ask me":
        told = interrupt("what should I remember?")
        said.append(str(told))
    return {"said": said[len(state.get("said", [])) :], "answer": " | ".join(said)}


g = Graph(Chat, name="chat")
g.add_node("reply", reply).add_edge(START, "reply").add_edge("reply", END)
chat = g.compile()
other = Graph(Chat, name="other_chat")
other.add_node("reply", reply).add_edge(START, "reply").add_edge("reply", END)
other_chat = other.compile()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, Runtime]]:
    wfs = [chat, other_chat]
    async with Runtime(f"sqlite:///{tmp_path / 'a2a.db'}", workflows=wfs, recover=False) as rt:
        app = FastAPI()
        mount_a2a(app, Services(rt, {wf.name: wf for wf in wfs}))
        async with serve(app) as url:
            yield url, rt


async def _send(url: str, msg: Message) -> list[StreamResponse]:
    async with httpx.AsyncClient(timeout=60) as http:
        client = await create_client(url, client_config=ClientConfig(httpx_client=http))
        return [ev async for ev in client.send_message(SendMessageRequest(message=msg))]


def _final(events: list[StreamResponse]) -> tuple[str, int, str]:
    """The task id, its last state and the text it ended with (answer or status message)."""
    task_id = events[0].task.id
    states = [e.status_update for e in events if e.HasField("status_update")]
    last = states[-1] if states else events[-1].task
    arts = [e.artifact_update.artifact for e in events if e.HasField("artifact_update")]
    if arts:
        return task_id, last.status.state, get_artifact_text(arts[-1])
    return task_id, last.status.state, " ".join(get_text_parts(last.status.message.parts))


async def test_tasks_of_one_context_continue_its_conversation(
    server: tuple[str, Runtime],
) -> None:
    url, rt = server
    first = await _send(f"{url}/a2a/chat", user_message("hello"))
    context = first[0].task.context_id
    assert _final(first)[1:] == (TaskState.TASK_STATE_COMPLETED, "hello")
    second = await _send(f"{url}/a2a/chat", user_message("it is me again", context_id=context))
    task_id, state, text = _final(second)
    assert state == TaskState.TASK_STATE_COMPLETED and text == "hello | it is me again"
    run = await rt.get_run(task_id)
    assert run.thread_id == a2a_thread("chat", context)
    # another context is another conversation; another agent in the same context too
    fresh = await _send(f"{url}/a2a/chat", user_message("someone else"))
    assert _final(fresh)[2] == "someone else"
    elsewhere = await _send(
        f"{url}/a2a/other_chat", user_message("other agent", context_id=context)
    )
    assert _final(elsewhere)[2] == "other agent"


async def test_a_new_task_waits_for_the_open_one_of_its_context(
    server: tuple[str, Runtime],
) -> None:
    url, _ = server
    asked = await _send(f"{url}/a2a/chat", user_message("ask me"))
    task_id, state, _ = _final(asked)
    context = asked[0].task.context_id
    assert state == TaskState.TASK_STATE_INPUT_REQUIRED
    refused = await _send(f"{url}/a2a/chat", user_message("next topic", context_id=context))
    _, state, why = _final(refused)
    assert state == TaskState.TASK_STATE_REJECTED
    assert "has a task still open" in why and task_id in why
    answered = await _send(f"{url}/a2a/chat", user_message("blue", task_id, context))
    assert _final(answered)[1:] == (TaskState.TASK_STATE_COMPLETED, "ask me | blue")
    after = await _send(f"{url}/a2a/chat", user_message("and now", context_id=context))
    assert _final(after)[2] == "ask me | blue | and now"


def test_thread_names_stay_within_a_thread_id() -> None:
    assert a2a_thread("chat", "c1") == "a2a:chat:c1"
    long = a2a_thread("chat", "x" * 500)
    assert len(long) <= 200 and long != a2a_thread("chat", "x" * 499)
    assert a2a_thread("w" * 300, "c") != a2a_thread("w" * 300, "d")
