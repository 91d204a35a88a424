"""``tether runs show`` sums what a run spent on models from its ``model_call`` events."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TypedDict

from tests.cli.conftest import run_cli
from tether import END, START, Graph, Runtime
from tether.llm import ModelResponse, ScriptedModel, Usage
from tether.store.sqlite import SqliteStore


class S(TypedDict, total=False):
    a: str
    b: str


async def _populate(path: Path) -> tuple[str, str]:
    paid = ScriptedModel(
        [ModelResponse(text="x", usage=Usage(input_tokens=1000, output_tokens=200))],
        name="gpt-4o-mini",
    )
    paid.provider = "openai"
    free = ScriptedModel(["y"])

    async def ask(state: S) -> dict[str, Any]:
        return {"a": (await paid.chat("q")).text, "b": (await free.chat("r")).text}

    g = Graph(S, name="usage")
    g.add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END)
    plain = Graph(S, name="plain")
    plain.add_node("noop", lambda s: {"a": "z"}).add_edge(START, "noop")
    async with Runtime(SqliteStore(path), recover=False) as rt:
        with_models = await rt.run(g.compile(), {})
        without = await rt.run(plain.compile(), {})
    return with_models.run_id, without.run_id


def test_runs_show_reports_model_usage_and_cost(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    used, unused = asyncio.run(_populate(db))
    url = f"sqlite:///{db}"

    data = run_cli("runs", "show", used, "--json", store=url).json()
    usage = data["model_usage"]
    assert usage["calls"] == 2
    assert usage["input_tokens"] == 1000 + 1  # the scripted free call is estimated: "r" → 1
    assert usage["output_tokens"] == 200 + 1
    assert abs(usage["cost"] - (1000 * 0.15 + 200 * 0.6) / 1e6) < 1e-12
    assert usage["estimated_calls"] == 1
    assert set(usage["by_model"]) == {"openai:gpt-4o-mini", "scripted:scripted"}

    text = run_cli("runs", "show", used, store=url)
    assert text.rc == 0, text.err
    assert "2 call(s), 1,001 in / 201 out tokens, $0.0003" in text.out

    none = run_cli("runs", "show", unused, "--json", store=url).json()
    assert none["model_usage"] is None
    assert "call(s)" not in run_cli("runs", "show", unused, store=url).out
