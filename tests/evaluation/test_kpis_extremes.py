"""KPIs of runs whose model calls reported absurd usage (a provider's bug, a misread header): the
sums hold on every backend, and what no float can say is left out rather than written as
``Infinity`` (which JSON and the HTTP API cannot carry)."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, Runtime
from tether.evaluation import kpi_metrics, kpis, run_kpis
from tether.llm.fakes import ScriptedModel
from tether.llm.types import ModelResponse, Usage
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore

from ..cli.conftest import run_cli
from ..store.conftest import BACKENDS, pg_dsn, pg_schema  # noqa: F401 (fixtures)

HUGE_TOKENS = 2**62
"""Two calls of this many input tokens sum past 2^63 (SQLite's SUM and a bigint overflow)."""
HUGE_COST = 1e308
"""Two calls of this cost sum past the largest float (PostgreSQL's float8 SUM overflows)."""


class Chat(TypedDict, total=False):
    question: str
    answer: str


def spendthrift(calls: int) -> Any:
    """One node making ``calls`` model calls, each reporting HUGE_TOKENS in and HUGE_COST."""
    model = ScriptedModel(
        [
            ModelResponse(
                text="ok", usage=Usage(input_tokens=HUGE_TOKENS, output_tokens=1), cost=HUGE_COST
            )
        ],
        cycle=True,
    )

    async def agent(state: Chat, ctx: RunContext) -> dict[str, Any]:
        for _ in range(calls):
            said = await model.chat(state["question"])
        return {"answer": said.text}

    g = Graph(Chat, name="spendthrift")
    g.add_node("agent", agent)
    g.add_edge(START, "agent")
    g.add_edge("agent", END)
    return g.compile()


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunStore]:
    """A store holding one completed run of two huge calls, reopened after its runtime."""

    def open_store() -> RunStore:
        if request.param == "sqlite":
            return SqliteStore(tmp_path / "runs.db")
        from tether.store.postgres import PostgresStore

        dsn, schema = request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_schema")
        return PostgresStore(dsn, schema=schema, pool_size=2)

    if request.param == "memory":
        memory = MemoryStore()
        async with Runtime(memory) as rt:
            assert (await rt.run(spendthrift(2), {"question": "q"})).completed
        yield memory
        return
    async with Runtime(open_store()) as rt:
        assert (await rt.run(spendthrift(2), {"question": "q"})).completed
    reopened = open_store()
    await reopened.setup()
    yield reopened
    await reopened.close()


async def test_sums_past_64_bits_and_past_a_float_are_read(store: RunStore) -> None:
    """The tokens are summed exactly; the cost, past the largest float, has no value: the
    report is strict JSON and the metrics leave it out (SQLite raised 'integer overflow',
    PostgreSQL 'value out of range', and the other backends wrote Infinity)."""
    r = await kpis(store, workflow="spendthrift")
    s = r.by_workflow["spendthrift"]
    assert s.tokens == 2 * HUGE_TOKENS + 2
    assert s.tokens_per_completed_task == pytest.approx(2.0 * HUGE_TOKENS)
    assert s.cost_per_completed_task is None
    doc = json.dumps(r.as_dict(), allow_nan=False)  # raises on NaN or Infinity
    assert json.loads(doc)["workflows"]["spendthrift"]["cost"] is None
    (run,) = r.runs
    assert json.loads(json.dumps(run.as_dict(), allow_nan=False))["cost"] is None
    one = await run_kpis(store, run.run_id)
    assert one.tokens == 2 * HUGE_TOKENS + 2 and math.isinf(one.cost)
    text = await kpi_metrics(store)
    assert 'tether_kpi_tokens_per_completed_task{workflow="spendthrift"}' in text
    assert "cost_per_completed_task" not in text and "inf" not in text.lower()


def _strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


async def test_tether_kpis_prints_them(tmp_path: Path) -> None:
    """``tether kpis`` on such a store answers (it exited 1 with 'unexpected
    OperationalError: integer overflow'), and its --json is strict JSON."""
    async with Runtime(SqliteStore(tmp_path / "runs.db")) as rt:
        assert (await rt.run(spendthrift(2), {"question": "q"})).completed
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    table = run_cli("kpis", store=url)
    assert table.rc == 0, table.err
    assert "9,223,372,036,854,775,808" in table.out  # tokens per completed task
    as_json = run_cli("kpis", "--json", store=url)
    assert as_json.rc == 0, as_json.err
    doc = _strict(as_json.out)["workflows"]["spendthrift"]
    assert doc["tokens"] == 2 * HUGE_TOKENS + 2 and doc["cost_per_completed_task"] is None
