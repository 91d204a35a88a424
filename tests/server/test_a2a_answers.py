"""A2A answers to input-required tasks: a message sent again (a client's retry after a dropped
connection, with the same messageId) must not answer the task's next question."""

from __future__ import annotations

import asyncio
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


GATE: dict[str, Any] = {}
"""The asyncio events of the gated workflow: ``reached`` (its run holds after the name) and
``go`` (the test lets it on)."""


async def hold(state: Form) -> dict[str, Any]:
    GATE["reached"].set()
    await GATE["go"].wait()
    return {}


def ask_name(state: Form) -> dict[str, Any]:
    return {"name": str(interrupt({"question": "your name?"}))}


def ask_amount(state: Form) -> dict[str, Any]:
    return {"amount": str(interrupt({"question": "how much shall we pay out?"}))}


gated_graph = Graph(Form, name="gated")
gated_graph.add_node("ask_name", ask_name).add_node("hold", hold)
gated_graph.add_node("ask_amount", ask_amount)
gated_graph.add_edge(START, "ask_name").add_edge("ask_name", "hold")
gated_graph.add_edge("hold", "ask_amount").add_edge("ask_amount", END)
gated = gated_graph.compile()


@pytest.mark.parametrize("streaming", [True, False])
async def test_a_second_answer_while_one_is_taken_is_refused_not_kept_for_the_next_question(
    tmp_path: Path, streaming: bool
) -> None:
    """Two clients answer "your name?" at once. Before, the SDK queued the second answer
    behind the first and ran it once the run asked its next question: 'Bob' became the amount
    to pay out, and its sender was told the task went on. While an answer to a task is being
    taken, another one (another messageId) is refused, naming the one being taken."""
    GATE.update(reached=asyncio.Event(), go=asyncio.Event())
    rt = Runtime(f"sqlite:///{tmp_path / 'a2a.db'}", workflows=[gated], recover=False)
    async with rt:
        app = FastAPI()
        mount_a2a(app, Services(rt, {"gated": gated}))
        async with serve(app) as url:
            agent = f"{url}/a2a/gated"
            first = await _send(agent, _message("start"), streaming=streaming)
            task = first[0].task
            assert _last_state(first) == TaskState.TASK_STATE_INPUT_REQUIRED
            ada = asyncio.ensure_future(
                _send(agent, _message("Ada", task.id, task.context_id), streaming=streaming)
            )
            await GATE["reached"].wait()  # Ada is taken: the run holds before the next question
            bob = asyncio.ensure_future(
                _send(agent, _message("Bob", task.id, task.context_id), streaming=streaming)
            )
            for _ in range(200):  # let Bob's message reach the server (refused: done at once)
                if bob.done():
                    break
                await asyncio.sleep(0.01)
            GATE["go"].set()
            assert _last_state(await ada) == TaskState.TASK_STATE_INPUT_REQUIRED
            with pytest.raises(Exception, match="being answered") as err:
                await bob
            assert "Ada" not in str(err.value)  # the other sender's answer is not shown
            run = await rt.get_run(task.id)
            assert run.status is RunStatus.ESCALATED and "how much" in str(run.escalation)
            done = await _send(agent, _message("100", task.id, task.context_id))
            assert _last_state(done) == TaskState.TASK_STATE_COMPLETED
            state = await rt.get_state(task.id)
            assert (state["name"], state["amount"]) == ("Ada", "100")
