"""``tether runs show`` sums what a run spent on models from its ``model_call`` events."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tests.cli.conftest import run_cli
from tether import END, START, Graph, Runtime
from tether.cli.render_usage import fmt_cost, fmt_seconds
from tether.llm import ModelResponse, ScriptedModel, Usage
from tether.llm.types import Timing
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
    assert "2 call(s), 1,001 in / 201 out tokens, $0.00027 " in text.out  # not rounded to $0.0003

    none = run_cli("runs", "show", unused, "--json", store=url).json()
    assert none["model_usage"] is None
    assert "call(s)" not in run_cli("runs", "show", unused, store=url).out


async def _populate_timed(path: Path) -> str:
    """A run with two priced calls whose timings are known: one streamed (TTFT and TPOT), one
    not; together they cost $0.0000162."""
    model = ScriptedModel(
        [
            ModelResponse(
                text="x",
                usage=Usage(input_tokens=30, output_tokens=10),
                timing=Timing(latency=2.0, ttft=0.5, tpot=0.05),
            ),
            ModelResponse(
                text="y", usage=Usage(input_tokens=10, output_tokens=7), timing=Timing(latency=1.0)
            ),
        ],
        name="gpt-4o-mini",
    )
    model.provider = "openai"

    async def ask(state: S) -> dict[str, Any]:
        return {"a": (await model.chat("q")).text, "b": (await model.chat("r")).text}

    g = Graph(S, name="timed")
    g.add_node("ask", ask).add_edge(START, "ask").add_edge("ask", END)
    async with Runtime(SqliteStore(path), recover=False) as rt:
        return (await rt.run(g.compile(), {})).run_id


def test_runs_show_reports_latency_ttft_tpot_and_small_costs(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    run_id = asyncio.run(_populate_timed(db))
    url = f"sqlite:///{db}"

    usage = run_cli("runs", "show", run_id, "--json", store=url).json()["model_usage"]
    assert usage["cost"] == pytest.approx((40 * 0.15 + 17 * 0.6) / 1e6)
    assert usage["latency"] == pytest.approx(3.0) and usage["max_latency"] == pytest.approx(2.0)
    assert usage["mean_latency"] == pytest.approx(1.5)
    assert usage["streamed_calls"] == 1 and usage["mean_ttft"] == pytest.approx(0.5)
    assert usage["mean_tpot"] == pytest.approx(0.05)

    text = run_cli("runs", "show", run_id, store=url)
    assert text.rc == 0, text.err
    assert "2 call(s), 40 in / 17 out tokens, $0.0000162 " in text.out  # was "$0.0000"
    line = next(ln for ln in text.out.splitlines() if ln.strip().startswith("model time"))
    assert "3.00 s in all, mean 1.50 s, max 2.00 s; TTFT mean 500 ms, TPOT mean 50 ms" in line
    assert "(1 streamed)" in line


@pytest.mark.parametrize(
    ("dollars", "shown"),
    [
        (0.000016, "$0.000016"),
        (0.0000162, "$0.0000162"),
        (0.00027, "$0.00027"),
        (0.0123456, "$0.0123"),
        (1.5, "$1.50"),
        (1234.5, "$1,234.50"),
        (0.0, "$0"),
        (-0.00002, "-$0.00002"),
    ],
)
def test_costs_keep_their_significant_digits(dollars: float, shown: str) -> None:
    assert fmt_cost(dollars) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.0123, "12.3 ms"), (0.5, "500 ms"), (2.414, "2.41 s"), (245, "4m 05s")]
)
def test_durations_read_naturally(seconds: float, shown: str) -> None:
    assert fmt_seconds(seconds) == shown
