"""KPIs of one tenant: ``kpis(store, tenant=...)`` and ``tether kpis --tenant`` count that
tenant's runs only, never another tenant's running the same workflow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, Runtime
from tether.evaluation import kpis
from tether.llm.fakes import ScriptedModel
from tether.llm.types import ModelResponse, Usage
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore

from ..cli.conftest import run_cli


class Chat(TypedDict, total=False):
    question: str
    answer: str


def support(tokens: int) -> Any:
    """One model call of ``tokens`` input tokens and 1 output token per run."""
    model = ScriptedModel(
        [ModelResponse(text="ok", usage=Usage(input_tokens=tokens, output_tokens=1))], cycle=True
    )

    async def agent(state: Chat, ctx: RunContext) -> dict[str, Any]:
        return {"answer": (await model.chat(state["question"])).text}

    g = Graph(Chat, name="support")
    g.add_node("agent", agent)
    g.add_edge(START, "agent")
    g.add_edge("agent", END)
    return g.compile()


async def two_tenants(store: RunStore) -> None:
    """acme: two runs of 11 tokens; globex: one run of 1,001 tokens (same workflow)."""
    async with Runtime(store) as rt:
        for tenant, tokens in (("acme", 10), ("globex", 1000), ("acme", 10)):
            res = await rt.run(support(tokens), {"question": "q"}, tenant=tenant)
            assert res.completed


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunStore]:
    if request.param == "memory":
        memory = MemoryStore()
        await two_tenants(memory)
        yield memory
        return
    await two_tenants(SqliteStore(tmp_path / "runs.db"))
    reopened = SqliteStore(tmp_path / "runs.db")
    await reopened.setup()
    yield reopened
    await reopened.close()


async def test_a_tenants_kpis_hold_its_runs_only(store: RunStore) -> None:
    acme = (await kpis(store, tenant="acme")).by_workflow["support"]
    assert (acme.runs, acme.tokens, acme.tokens_per_completed_task) == (2, 22, 11.0)
    globex = (await kpis(store, workflow="support", tenant="globex")).overall
    assert (globex.runs, globex.tokens) == (1, 1001)
    everyone = (await kpis(store)).overall
    assert (everyone.runs, everyone.tokens) == (3, 1023)
    assert (await kpis(store, tenant="initech")).runs == []


async def test_tether_kpis_tenant(tmp_path: Path) -> None:
    await two_tenants(SqliteStore(tmp_path / "runs.db"))
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    acme = run_cli("kpis", "--tenant", "acme", "--json", store=url)
    assert acme.rc == 0, acme.err
    assert acme.json()["overall"]["runs"] == 2 and acme.json()["overall"]["tokens"] == 22
    for bad in ("", " acme"):  # an unset shell variable matched nothing, quietly
        refused = run_cli("kpis", f"--tenant={bad}", store=url)
        assert refused.rc == 2 and "Traceback" not in refused.err, refused
        assert len(refused.err.strip().splitlines()[-1]) > 0
