"""A governed run with ``PiiGuard``: the model never sees the raw values, a trusted-egress tool
gets them back, the journal and the state keep tokens only."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.core.messages import Message, ToolCall
from tether.governance import Governance, PiiDetector, PiiGuard, PiiKey, PiiVault
from tether.llm.fakes import ScriptedModel
from tether.llm.types import ModelResponse
from tether.store.memory import MemoryStore
from tether.tools import ToolExecutor, tool

RAW = ("ada@example.com", "(415) 555-0132", "4111 1111 1111 1111")
ASK = f"Refund card {RAW[2]} and mail {RAW[0]}, or call {RAW[1]}."


class S(TypedDict, total=False):
    reply: str
    sent: str
    logged: str


received: dict[str, Any] = {}


@tool(scope="write", idempotent=True)
def send_email(to: str, body: str) -> str:
    """Send an email (trusted egress: gets real addresses)."""
    received["send_email"] = {"to": to, "body": body}
    return "sent"


@tool(scope="write", idempotent=True, metadata={"pii_egress": True})
def call_back(numbers: list[str]) -> str:
    """Call someone back (flagged as egress in its metadata)."""
    received["call_back"] = list(numbers)
    return "called"


@tool(scope="write", idempotent=True)
def log_note(text: str) -> str:
    """Write a note to a shared log (not egress: keeps tokens)."""
    received["log_note"] = text
    return "logged"


def workflow(model: ScriptedModel, guard: PiiGuard) -> Any:
    tools = ToolExecutor([send_email, call_back, log_note])

    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        history = [
            Message.system("You are a support agent."),
            Message.user(ASK),
            Message.assistant("", (ToolCall(id="c0", name="lookup", arguments={"q": RAW[0]}),)),
            Message.tool("c0", f"found customer {RAW[0]}"),
        ]
        reply = await model.chat(history, max_tokens=64)
        args = reply.tool_calls[0].arguments
        sent = await tools.call("send_email", args, ctx=ctx)
        called = await tools.call("call_back", {"numbers": [args["body"]]}, ctx=ctx)
        logged = await tools.call("log_note", {"text": args["to"]}, ctx=ctx)
        assert sent.ok and called.ok and logged.ok
        return {"reply": reply.text, "sent": str(sent.value), "logged": str(logged.value)}

    g = Graph(S, name="pii")
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    return g.compile(governance=Governance(parts=[guard]))


@pytest.fixture
def key() -> str:
    return PiiKey.generate()


async def test_a_governed_run_redacts_and_egress_gets_real_values(key: str) -> None:
    received.clear()
    # the model answers with the tokens it was shown (as a real model would copy them)
    model = ScriptedModel(
        [
            ModelResponse(
                text="I will mail <EMAIL_ADDRESS_1> and call <PHONE_NUMBER_1>.",
                tool_calls=(
                    ToolCall(
                        id="c1",
                        name="send_email",
                        arguments={"to": "<EMAIL_ADDRESS_1>", "body": "<PHONE_NUMBER_1>"},
                    ),
                ),
            )
        ]
    )
    guard = PiiGuard(key=key, detector=PiiDetector(ner=False), egress=["send_email"])
    store = MemoryStore()
    async with Runtime(store) as rt:
        res = await rt.run(workflow(model, guard), {})
        assert res.status is RunStatus.COMPLETED, res.error
    # the model never saw a raw value, anywhere in its request
    (request,) = model.requests
    seen = request.model_dump_json()
    for raw in RAW:
        assert raw not in seen
    assert request.messages[1].content == (
        "Refund card <CREDIT_CARD_1> and mail <EMAIL_ADDRESS_1>, or call <PHONE_NUMBER_1>."
    )
    assert request.messages[2].tool_calls[0].arguments == {"q": "<EMAIL_ADDRESS_1>"}
    assert request.messages[3].content == "found customer <EMAIL_ADDRESS_1>"
    # trusted egress (by name, by metadata flag) got the real values; another tool did not
    assert received["send_email"] == {"to": RAW[0], "body": RAW[1]}
    assert received["call_back"] == [RAW[1]]
    assert received["log_note"] == "<EMAIL_ADDRESS_1>"
    # the state keeps the model's tokenised answer; the journal the tokenised arguments
    assert res.state["reply"] == "I will mail <EMAIL_ADDRESS_1> and call <PHONE_NUMBER_1>."
    journal = repr([e.request for e in await store.list_effects(res.run_id)])
    assert "<EMAIL_ADDRESS_1>" in journal
    for raw in RAW:
        assert raw not in journal
    # the vault is the run's: the approver's view restores with the key
    vault = PiiVault(store)
    assert await vault.reveal(res.run_id, res.state["reply"], key) == (
        f"I will mail {RAW[0]} and call {RAW[1]}."
    )


async def test_names_are_redacted_with_ner(key: str) -> None:
    model = ScriptedModel(["Noted."])
    guard = PiiGuard(key=key)  # NER on: the process's shared analyzer

    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        said = await model.chat("Please refund Margaret Hamilton, she wrote from 10.0.0.7.")
        return {"reply": said.text}

    g = Graph(S, name="names")
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(g.compile(governance=Governance(parts=[guard])), {})
    assert res.status is RunStatus.COMPLETED
    prompt = model.requests[0].messages[-1].content
    assert prompt == "Please refund <PERSON_1>, she wrote from <IP_ADDRESS_1>."


async def test_a_message_name_is_redacted(key: str) -> None:
    """``Message(name=...)`` reaches the provider (OpenAI's ``name``, the local model's prompt):
    an address there was sent as written."""
    model = ScriptedModel(["Noted."])

    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        ask = Message(role="user", content="Where is my order?", name="ada@example.com")
        said = await model.chat([ask, Message.tool("c1", "shipped", name="track_order")])
        return {"reply": said.text}

    g = Graph(S, name="named")
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    guard = PiiGuard(key=key, detector=PiiDetector(ner=False))
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(g.compile(governance=Governance(parts=[guard])), {})
    assert res.status is RunStatus.COMPLETED
    sent = model.requests[0].messages
    assert [m.name for m in sent] == ["EMAIL_ADDRESS_1", "track_order"]
    assert "ada@example.com" not in model.requests[0].model_dump_json()


async def test_keys_of_nested_arguments_are_redacted_and_restored(key: str) -> None:
    """Personal data in a mapping's key (tool arguments keyed by address) never reaches the
    model, and a trusted egress tool gets the key back as written."""
    got: dict[str, Any] = {}

    @tool(scope="write", idempotent=True, metadata={"pii_egress": True})
    def notify(recipients: dict[str, Any]) -> str:
        """Notify each recipient."""
        got.update(recipients)
        return "sent"

    tools = ToolExecutor([notify])
    history_args = {"by_address": {"ada@example.com": {"card": RAW[2]}}, "cc": [{RAW[1]: True}]}
    model = ScriptedModel(["ok"])

    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        history = [
            Message.user("Notify the customers."),
            Message.assistant("", (ToolCall(id="c0", name="lookup", arguments=history_args),)),
            Message.tool("c0", "done"),
        ]
        await model.chat(history, max_tokens=16)
        seen = model.requests[0].messages[1].tool_calls[0].arguments
        ((address, nested),) = seen["by_address"].items()
        res = await tools.call("notify", {"recipients": {address: nested}}, ctx=ctx)
        assert res.ok
        return {"reply": address}

    g = Graph(S, name="keys")
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    guard = PiiGuard(key=key, detector=PiiDetector(ner=False))
    async with Runtime(MemoryStore()) as rt:
        res = await rt.run(g.compile(governance=Governance(parts=[guard])), {})
    assert res.status is RunStatus.COMPLETED, res.error
    seen = model.requests[0].model_dump_json()
    for raw in RAW:
        assert raw not in seen
    assert res.state["reply"] == "<EMAIL_ADDRESS_1>"
    assert got == {"ada@example.com": {"card": RAW[2]}}


async def test_a_run_whose_parent_was_deleted_keeps_its_own_vault(key: str) -> None:
    """A child run whose parent was deleted by hand is a root (as a purge reads it): its model
    calls are redacted in its own vault, where each failed with RunNotFoundError."""
    model = ScriptedModel(["ok"], cycle=True)

    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        said = await model.chat(f"mail {RAW[0]}")
        return {"reply": said.text}

    g = Graph(S, name="orphan")
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    guard = PiiGuard(key=key, detector=PiiDetector(ner=False))
    wf = g.compile(governance=Governance(parts=[guard]))
    store = MemoryStore()
    async with Runtime(store, workflows=[wf]) as rt:
        parent = await rt.run(wf, {})
        child = await rt.start(wf, {}, parent_run_id=parent.run_id)
        await store.delete_run(parent.run_id)
        done = await rt.wait(child.run_id, timeout=60)
    assert done.status is RunStatus.COMPLETED, done.error
    assert model.requests[-1].messages[-1].content == "mail <EMAIL_ADDRESS_1>"
    assert await PiiVault(store).reveal(child.run_id, "<EMAIL_ADDRESS_1>", key) == RAW[0]
