"""``tether runs show`` and ``runs history`` on a long run: every model call counted (the store
sums them), every step reachable page by page."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TypedDict

from tests.cli.conftest import run_cli
from tether import END, START, Graph, RunContext, Runtime
from tether.cli.usage_totals import usage_from_totals
from tether.llm.usage import run_usage
from tether.store.sqlite import SqliteStore

CALLS = 1500


class S(TypedDict):
    n: int


def talk(s: Any, ctx: RunContext) -> dict[str, Any]:
    # each call also leaves a note: 3,000 events, of which 1,500 are model calls
    for i in range(CALLS):
        ctx.emit("note", {"i": i})
        data = {"model": "m" if i % 3 else "n", "input_tokens": 2, "output_tokens": 1}
        ctx.emit("model_call", {**data, "cost": 0.25, "latency": 0.5 if i % 2 else None})
    return {"n": s["n"] + 1}


async def _populate(path: Path) -> str:
    g = Graph(S, name="long")
    g.add_node("talk", talk).add_edge(START, "talk").add_edge("talk", END)
    async with Runtime(SqliteStore(path), recover=False) as rt:
        res = await rt.run(g.compile(), {"n": 0})
        # the store's sums and the event-by-event sum agree (binary-exact costs: same floats)
        events = [e async for e in rt.events(res.run_id, follow=False)]
        assert usage_from_totals(await rt.store.model_usage(res.run_id)) == run_usage(events)
    return res.run_id


def test_runs_show_counts_every_model_call_of_a_long_run(tmp_path: Path) -> None:
    path = tmp_path / "long.db"
    run_id = asyncio.run(_populate(path))
    usage = run_cli("runs", "show", run_id, "--json", store=f"sqlite:///{path}").json()
    usage = usage["model_usage"]
    assert usage["calls"] == CALLS
    assert usage["input_tokens"] == 2 * CALLS and usage["output_tokens"] == CALLS
    assert set(usage["by_model"]) == {"m", "n"}
    assert usage["by_model"]["n"]["calls"] == CALLS // 3


async def _long_history(path: Path, steps: int) -> str:
    g = Graph(S, name="loop")
    g.add_node("inc", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: "inc" if s["n"] < steps else END, ["inc", END])
    async with Runtime(SqliteStore(path), recover=False) as rt:
        return (await rt.run(g.compile(), {"n": 0}, max_steps=steps + 5)).run_id


def test_runs_history_pages_through_a_long_run(tmp_path: Path) -> None:
    path = tmp_path / "steps.db"
    run_id = asyncio.run(_long_history(path, 250))
    url = f"sqlite:///{path}"
    first = run_cli("runs", "history", run_id, "--json", store=url).json()
    assert [s["step"] for s in first["steps"]] == list(range(100))  # one page by default
    assert first["next_after"] == 99
    seen = [s["step"] for s in first["steps"]]
    after = first["next_after"]
    while after is not None:
        page = run_cli(
            "runs", "history", run_id, "--after", str(after), "--limit", "80", "--json", store=url
        ).json()
        seen += [s["step"] for s in page["steps"]]
        after = page["next_after"]
    assert seen == list(range(251))
    text = run_cli("runs", "history", run_id, "--limit", "3", store=url).out
    assert f"tether runs history {run_id} --after 2" in text
