"""A message delivered twice is one message: a first message sent again (a client's retry after
a crash or a timeout, with the same messageId and no task id) reports the task the first
delivery started instead of starting a second run; the same messageId with another body is
refused. An answer may name the interrupt it answers (``metadata.interrupt_id``): a late answer
to a question no longer pending is refused, and the task still waits for its answer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypedDict

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.helpers import get_data_parts, new_text_part
from a2a.types import GetTaskRequest, Message, Role, SendMessageRequest, StreamResponse, TaskState
from a2a.utils.errors import InvalidParamsError
from fastapi import FastAPI
from google.protobuf.struct_pb2 import Struct

from tests.server.a2a_kit import Services
from tests.server.live import serve
from tether import END, START, Graph, RunStatus, Runtime, interrupt
from tether.core.errors import ToolError
from tether.server.a2a import mount_a2a
from tether.tools.a2a_tool import A2AAgent


class Echo(TypedDict, total=False):
    text: str
    answer: str


class Form(TypedDict, total=False):
    question: str
    name: str
    amount: str


def shout(state: Echo) -> dict[str, Any]:
    return {"answer": state["text"].upper()}


def fill(state: Form) -> dict[str, Any]:
    name = interrupt({"question": "your name?"})
    amount = interrupt({"question": "how much shall we pay out?"})
    return {"name": name, "amount": amount}


echo_g = Graph(Echo, name="echo")
echo_g.add_node("shout", shout).add_edge(START, "shout").add_edge("shout", END)
form_g = Graph(Form, name="form")
form_g.add_node("fill", fill).add_edge(START, "fill").add_edge("fill", END)
echo, form = echo_g.compile(), form_g.compile()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, Runtime]]:
    rt = Runtime(f"sqlite:///{tmp_path / 'a2a.db'}", workflows=[echo, form], recover=False)
    async with rt:
        app = FastAPI()
        mount_a2a(app, Services(rt, {"echo": echo, "form": form}))
        async with serve(app) as url:
            yield url, rt


def _message(
    text: str,
    message_id: str,
    task_id: str | None = None,
    context_id: str | None = None,
    interrupt_id: str | None = None,
) -> Message:
    msg = Message(
        role=Role.ROLE_USER,
        parts=[new_text_part(text)],
        message_id=message_id,
        task_id=task_id,
        context_id=context_id,
    )
    if interrupt_id is not None:
        meta = Struct()
        meta.update({"interrupt_id": interrupt_id})  # the documented key
        msg.metadata.CopyFrom(meta)
    return msg


async def _send(url: str, msg: Message, *, streaming: bool = True) -> list[StreamResponse]:
    async with httpx.AsyncClient(timeout=60) as http:
        config = ClientConfig(streaming=streaming, httpx_client=http)
        client = await create_client(url, client_config=config)
        sent = Message()
        sent.CopyFrom(msg)  # the client fills in ids; each delivery sends what the test wrote
        return [ev async for ev in client.send_message(SendMessageRequest(message=sent))]


async def _get(url: str, task_id: str) -> Any:
    async with httpx.AsyncClient(timeout=60) as http:
        client = await create_client(url, client_config=ClientConfig(httpx_client=http))
        return await client.get_task(GetTaskRequest(id=task_id))


def _task_id(events: list[StreamResponse]) -> str:
    for ev in events:
        if ev.HasField("task"):
            return str(ev.task.id)
        if ev.HasField("status_update"):
            return str(ev.status_update.task_id)
    raise AssertionError(f"no task in {events}")


def _last_state(events: list[StreamResponse]) -> int:
    states = [e.status_update.status.state for e in events if e.HasField("status_update")]
    return states[-1] if states else events[-1].task.status.state


async def _runs(rt: Runtime, workflow: str) -> list[str]:
    return [r.run_id for r in await rt.store.list_runs(workflow=workflow)]


@pytest.mark.parametrize("streaming", [True, False])
async def test_a_first_message_sent_twice_starts_one_task(
    server: tuple[str, Runtime], streaming: bool
) -> None:
    """The retried first message started a second run (and its client a second task)."""
    url, rt = server
    agent = f"{url}/a2a/echo"
    msg = _message("hello", str(uuid.uuid4()))
    first = await _send(agent, msg, streaming=streaming)
    assert _last_state(first) == TaskState.TASK_STATE_COMPLETED
    again = await _send(agent, msg, streaming=streaming)  # a retry: the task as it stands
    assert _task_id(again) == _task_id(first)
    assert _last_state(again) == TaskState.TASK_STATE_COMPLETED
    assert await _runs(rt, "echo") == [_task_id(first)]
    assert (await rt.get_state(_task_id(first)))["answer"] == "HELLO"


async def test_a_first_message_sent_again_while_it_waits_answers_nothing(
    server: tuple[str, Runtime],
) -> None:
    url, rt = server
    agent = f"{url}/a2a/form"
    msg = _message("start", str(uuid.uuid4()))
    first = await _send(agent, msg)
    assert _last_state(first) == TaskState.TASK_STATE_INPUT_REQUIRED
    again = await _send(agent, msg, streaming=False)
    assert _task_id(again) == _task_id(first)
    assert _last_state(again) == TaskState.TASK_STATE_INPUT_REQUIRED
    assert await _runs(rt, "form") == [_task_id(first)]
    run = await rt.get_run(_task_id(first))
    assert run.status is RunStatus.ESCALATED and "your name?" in str(run.escalation)


async def test_the_same_message_id_with_another_body_is_refused(
    server: tuple[str, Runtime],
) -> None:
    url, rt = server
    agent = f"{url}/a2a/echo"
    mid = str(uuid.uuid4())
    first = await _send(agent, _message("hello", mid))
    with pytest.raises(InvalidParamsError, match="messageId"):
        await _send(agent, _message("something else", mid))
    assert await _runs(rt, "echo") == [_task_id(first)]


async def test_an_idempotent_a2a_tool_call_retried_reports_the_same_task(
    server: tuple[str, Runtime],
) -> None:
    """``a2a_tool(idempotent=True)`` retried with its idempotency key as the messageId."""
    url, rt = server
    agent = A2AAgent(f"{url}/a2a/echo")
    try:
        first = await agent.send("hello", message_id="run-1:1:consult:0:tool:echo:0")
        again = await agent.send("hello", message_id="run-1:1:consult:0:tool:echo:0")
    finally:
        await agent.aclose()
    assert again == first and first["state"] == "completed" and first["text"] == "HELLO"
    assert await _runs(rt, "echo") == [first["task_id"]]


def _pending(events: list[StreamResponse]) -> list[str]:
    status = events[-1].status_update.status if events[-1].HasField("status_update") else None
    if status is None:
        status = events[-1].task.status
    data = get_data_parts(status.message.parts)
    return [str(i["id"]) for i in data[0]["interrupts"]]


@pytest.mark.parametrize("streaming", [True, False])
async def test_a_late_answer_to_a_superseded_question_is_refused(
    server: tuple[str, Runtime], streaming: bool
) -> None:
    """An answer naming the interrupt it answers: once that question was answered (by someone
    else, say) and the run asks the next one, the late answer was taken for the next one."""
    url, rt = server
    agent = f"{url}/a2a/form"
    first = await _send(agent, _message("start", str(uuid.uuid4())), streaming=streaming)
    task_id = _task_id(first)
    ctx = (await _get(agent, task_id)).context_id
    [name_q] = _pending(first)

    named = _message("Ada", str(uuid.uuid4()), task_id, ctx, interrupt_id=name_q)
    asked = await _send(agent, named, streaming=streaming)
    assert _last_state(asked) == TaskState.TASK_STATE_INPUT_REQUIRED
    [amount_q] = _pending(asked)
    assert amount_q != name_q

    late = _message("Grace", str(uuid.uuid4()), task_id, ctx, interrupt_id=name_q)
    with pytest.raises(InvalidParamsError, match="no longer pending"):
        await _send(agent, late, streaming=streaming)
    task = await _get(agent, task_id)
    assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    run = await rt.get_run(task_id)
    assert run.status is RunStatus.ESCALATED and "how much" in str(run.escalation)

    plain = _message("100", str(uuid.uuid4()), task_id, ctx)  # naming none: as before
    done = await _send(agent, plain, streaming=streaming)
    assert _last_state(done) == TaskState.TASK_STATE_COMPLETED
    state = await rt.get_state(task_id)
    assert (state["name"], state["amount"]) == ("Ada", "100")


async def test_the_a2a_tool_names_the_interrupt_it_answers(server: tuple[str, Runtime]) -> None:
    url, rt = server
    agent = A2AAgent(f"{url}/a2a/form")
    try:
        asked = await agent.send("start")
        ids = {"task_id": asked["task_id"], "context_id": asked["context_id"]}
        [name_q] = [i["id"] for i in asked["data"][0]["interrupts"]]
        nxt = await agent.send("Ada", interrupt_id=name_q, **ids)
        assert nxt["state"] == "input-required" and "how much" in nxt["text"]
        with pytest.raises(ToolError, match="no longer pending"):
            await agent.send("Grace", interrupt_id=name_q, **ids)
    finally:
        await agent.aclose()
    run = await rt.get_run(asked["task_id"])
    assert run.status is RunStatus.ESCALATED and "how much" in str(run.escalation)
