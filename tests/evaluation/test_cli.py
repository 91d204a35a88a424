"""``tether mindlog``, ``tether kpis`` and ``tether shadow report`` on a real SQLite store, in
a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, Runtime
from tether.core.errors import ToolError
from tether.llm.fakes import ScriptedModel, tool_call
from tether.store.evaluation_log import ShadowRow
from tether.store.sqlite import SqliteStore
from tether.testing import FakeClock
from tether.tools import ToolExecutor, tool

from ..cli.conftest import run_cli
from .agents import build, said
from .test_kpis import T0, scripted_runs


async def fill(path: Path) -> list[str]:
    clock = FakeClock(T0)
    await scripted_runs(SqliteStore(path, clock=clock), clock)
    made_up = ScriptedModel(
        [
            said("Plan: search, then summarize.", tokens=(1, 1)),
            said(call=tool_call("search", {"q": "tether"}), tokens=(1, 1)),
            said("Tether raised 45 million.", tokens=(1, 1)),  # the search said 42
        ]
    )
    async with Runtime(SqliteStore(path, clock=clock), clock=clock) as rt:
        await rt.run(build(made_up, clock, name="made-up"), {"question": "How much?"})
    store = SqliteStore(path)
    await store.setup()
    try:
        live = {"text": "", "tool_calls": [{"name": "lookup", "arguments": {"id": 1}}]}
        other = {"text": "", "tool_calls": [{"name": "refund", "arguments": {"id": 1}}]}
        for i in range(4):  # "good": always the same decision; "bad": another tool half the time
            await store.put_shadow(
                ShadowRow("r", f"g{i}", "good", T0 + i, "a", "b", live, live, 0.0, True)
            )
            d, theirs = (0.8, other) if i % 2 else (0.0, live)
            await store.put_shadow(
                ShadowRow("r", f"b{i}", "bad", T0 + i, "a", "b", live, theirs, d, d == 0.0)
            )
        return [r.run_id for r in reversed(await store.list_runs())]
    finally:
        await store.close()


def test_mindlog_kpis_and_shadow_report(tmp_path: Path) -> None:
    path = tmp_path / "eval.db"
    url = f"sqlite:///{path}"
    one, _two, _three, four = asyncio.run(fill(path))

    ml = run_cli("mindlog", one, store=url)
    assert ml.rc == 0, ml.err
    assert f"mind log of {one} (research)" in ml.out
    assert "plan at step 1: search -> fetch -> summarize" in ml.out.replace("→", "->")
    assert "ACTION search done" in ml.out
    assert "why (model): I need the funding news." in ml.out
    assert 'out:   {"hits": [{"title": "Tether raises Series A", "amount_musd": 42}]}' in ml.out
    assert "then:  Tether raised 42 million dollars in its Series A." in ml.out
    assert "why (explain): the search hit needs its source page checked" in ml.out
    assert ml.out.count("used later: yes") == 1 and ml.out.count("used later: no") == 1
    assert "numbers no tool gave" not in ml.out  # 42 came from the search
    as_json = run_cli("mindlog", one, "--json", "--actions", store=url)
    assert as_json.rc == 0, as_json.err
    entries = json.loads(as_json.out)["entries"]
    assert [(e["name"], e["used_later"]) for e in entries] == [("search", True), ("fetch", False)]
    made_up = run_cli("mindlog", four, store=url)
    assert made_up.rc == 0, made_up.err
    assert "then:  Tether raised 45 million." in made_up.out
    assert (
        made_up.out.count("numbers no tool gave: 45") == 2
    )  # the action's conclusion, the thought
    missing = run_cli("mindlog", "nope", store=url)
    assert missing.rc != 0 and "nope" in missing.err

    k = run_cli("kpis", "--workflow", "research", store=url)
    assert k.rc == 0, k.err
    rows = {
        line.split()[0] + " " + line.split()[1]: line.split()[-1]
        for line in k.out.splitlines()
        if len(line.split()) > 2
    }
    assert rows["plan fidelity"] == "60.0%" and rows["tool utility"] == "66.7%"
    assert rows["escalation rate"] == "50.0%" and rows["latency p95"] == "18.00"
    kj = run_cli("kpis", "--json", "--since", str(T0 + 100), store=url)
    assert kj.rc == 0, kj.err
    assert list(json.loads(kj.out)["workflows"]) == ["made-up", "other"]
    bad = run_cli("kpis", "--since", "last tuesday", store=url)
    assert bad.rc == 2 and "cannot read 'last tuesday' as a time" in bad.err
    for nonsense in ("nan", "inf", "1e400"):  # --since nan was every run, inf none: rc 0
        bad = run_cli("kpis", f"--since={nonsense}", store=url)
        assert bad.rc == 2 and f"'{nonsense}' is not a point in time" in bad.err, bad

    good = run_cli("shadow", "report", "good", store=url)
    assert good.rc == 0, good.err
    assert "verdict          proceed" in good.out and "parity           100.0%" in good.out
    halt = run_cli("shadow", "report", "bad", "--json", store=url)
    assert halt.rc == 1
    report = json.loads(halt.out)
    # distances 0, 0.8, 0, 0.8: mean 0.4 > 0.1; tools agree on 2 of 4
    assert report["verdict"] == "halt rollout" and report["mean_distance"] == 0.4
    assert report["tool_agreement"] == 0.5 and report["above_threshold"] == 2
    lenient = run_cli("shadow", "report", "bad", "--threshold", "0.5", store=url)
    assert lenient.rc == 0 and "proceed" in lenient.out
    none = run_cli("shadow", "report", "nobody", store=url)
    assert none.rc == 0 and "no data" in none.out


@tool(scope="read")
def refund(order_id: int) -> str:
    """Refund an order."""
    raise RuntimeError("the payment provider refused: " + "a very long explanation " * 40)


class Ask(TypedDict, total=False):
    question: str


async def failed_tool_run(path: Path) -> str:
    tools = ToolExecutor([refund])

    async def agent(state: Ask, ctx: RunContext) -> dict[str, Any]:
        with contextlib.suppress(ToolError):
            await tools.call("refund", {"order_id": 7}, ctx=ctx)
        return {}

    g = Graph(Ask, name="refunds")
    g.add_node("agent", agent)
    g.add_edge(START, "agent")
    g.add_edge("agent", END)
    async with Runtime(SqliteStore(path)) as rt:
        res = await rt.run(g.compile(), {"question": "refund order 7"})
    return res.run_id


def test_mindlog_cuts_a_long_error_at_width(tmp_path: Path) -> None:
    """A failed tool's error is cut at --width like every value (it was printed whole: a
    1,000-character message wrapped over the terminal); --width 0 shows it all."""
    path = tmp_path / "eval.db"
    run_id = asyncio.run(failed_tool_run(path))
    url = f"sqlite:///{path}"
    cut = run_cli("mindlog", run_id, "--width", "60", store=url)
    assert cut.rc == 0, cut.err
    (line,) = [x for x in cut.out.splitlines() if "error:" in x]
    assert "raised RuntimeError: the payment" in line and line.endswith("…")
    assert len(line.strip()) <= len("error: ") + 60
    whole = run_cli("mindlog", run_id, "--width", "0", store=url)
    assert " ".join(whole.out.split()).count("a very long explanation") == 40
