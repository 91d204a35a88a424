"""End to end: a durable graph whose nodes use the bundled local model (SmolLM2 on llama.cpp),
offline, with structured output, streaming, journaling, usage and cost on the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypedDict

from pydantic import BaseModel

from tether import END, START, Graph, RunStatus, Runtime
from tether.llm import LocalModel, generate_structured, model_from_spec

model = model_from_spec("local:smollm2")


class Triage(BaseModel):
    category: Literal["billing", "technical", "other"]
    urgent: bool


class Ticket(TypedDict, total=False):
    text: str
    category: str
    urgent: bool
    reply: str
    tokens: list[str]


async def triage(state: Ticket) -> dict[str, Any]:
    result = await generate_structured(
        model,
        [
            {"role": "system", "content": "Classify the customer ticket."},
            {"role": "user", "content": state["text"]},
        ],
        Triage,
        max_tokens=48,
        temperature=0.0,
    )
    return {"category": result.value.category, "urgent": result.value.urgent}


async def reply(state: Ticket) -> dict[str, Any]:
    tokens: list[str] = []
    out = await model.chat(
        [
            {"role": "system", "content": "You are a polite support agent. One sentence."},
            {"role": "user", "content": state["text"]},
        ],
        max_tokens=40,
        temperature=0.0,
        on_token=tokens.append,
    )
    return {"reply": out.text, "tokens": tokens}


graph = Graph(Ticket, name="support")
graph.add_node("triage", triage).add_node("reply", reply)
graph.add_edge(START, "triage").add_edge("triage", "reply").add_edge("reply", END)
workflow = graph.compile()


async def test_a_small_graph_runs_on_the_bundled_model(tmp_path: Path) -> None:
    assert isinstance(model, LocalModel)
    async with Runtime(f"sqlite:///{tmp_path / 'runs.db'}", recover=False) as rt:
        res = await rt.run(workflow, {"text": "I was charged twice for my subscription!"})
        assert res.status is RunStatus.COMPLETED, res
        assert res.state["category"] in ("billing", "technical", "other")
        assert isinstance(res.state["urgent"], bool)
        assert res.state["reply"].strip()
        assert "".join(res.state["tokens"]) == res.state["reply"]

        events = [e async for e in rt.events(res.run_id, follow=False)]
        calls = [e.data for e in events if e.type == "model_call"]
        assert [c["model"] for c in calls] == ["local:smollm2", "local:smollm2"]
        for call in calls:
            assert call["input_tokens"] > 0 and call["output_tokens"] > 0
            assert call["estimated"] is False  # counted by the model's own tokenizer
            assert call["cost"] == 0.0
        assert calls[1]["ttft"] is not None and calls[1]["ttft"] > 0
        effects = await rt.store.list_effects(res.run_id)
        assert [(e.kind, e.status) for e in effects] == [("model", "done"), ("model", "done")]
