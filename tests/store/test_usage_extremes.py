"""A run's usage sums (``RunStore.model_usage``, ``runs_usage``) when its model calls reported
absurd usage (a provider's bug, a misread header): 2^62 tokens twice sums past 2^63 and a cost
of 1e308 twice past the largest float. Reading them never fails (SQLite raised 'integer
overflow', PostgreSQL 'bigint out of range' / 'value out of range'), the tokens are summed, the
cost past the largest float is infinite on every backend, and ``tether runs show --json`` is
strict JSON (null for it)."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, Runtime
from tether.llm.fakes import ScriptedModel
from tether.llm.types import ModelResponse, Usage
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore
from tether.store.run_usage import RunUsageTotals
from tether.store.sqlite import SqliteStore

from ..cli.conftest import run_cli
from .conftest import BACKENDS, pg_dsn, pg_schema  # noqa: F401 (fixtures)

HUGE_TOKENS = 2**62
HUGE_COST = 1e308


class Chat(TypedDict, total=False):
    answer: str


def spendthrift() -> Any:
    model = ScriptedModel(
        [
            ModelResponse(
                text="ok", usage=Usage(input_tokens=HUGE_TOKENS, output_tokens=1), cost=HUGE_COST
            )
        ],
        cycle=True,
        name="absurd",
    )

    async def agent(state: Chat, ctx: RunContext) -> dict[str, Any]:
        await model.chat("one")
        said = await model.chat("two")
        return {"answer": said.text}

    g = Graph(Chat, name="absurd_usage")
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    return g.compile()


@pytest.fixture(params=BACKENDS)
async def ran(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[RunStore, str]]:
    """A store holding one completed run of two absurd calls, and the run's id."""
    if request.param == "memory":
        store: RunStore = MemoryStore()
    elif request.param == "sqlite":
        store = SqliteStore(tmp_path / "runs.db")
    else:
        from tether.store.postgres import PostgresStore

        dsn, schema = request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_schema")
        store = PostgresStore(dsn, schema=schema, pool_size=2)
    async with Runtime(store) as rt:
        res = await rt.run(spendthrift(), {})
        assert res.completed
        yield rt.store, res.run_id


async def test_absurd_usage_is_summed_not_an_error(ran: tuple[RunStore, str]) -> None:
    store, run_id = ran
    (totals,) = await store.model_usage(run_id)
    assert totals.calls == 2
    assert totals.input_tokens == pytest.approx(2 * HUGE_TOKENS)  # exact where not a float sum
    assert totals.output_tokens == 2
    assert math.isinf(totals.cost)  # past any float, on every backend alike
    if isinstance(store, RunUsageTotals):
        used = (await store.runs_usage([run_id]))[run_id]
        assert (used.model_calls, used.output_tokens) == (2, 2)
        assert used.input_tokens == pytest.approx(2 * HUGE_TOKENS)
        assert math.isinf(used.cost)


def test_runs_show_json_is_strict_json(tmp_path: Path) -> None:
    import asyncio

    async def make() -> str:
        async with Runtime(SqliteStore(tmp_path / "runs.db")) as rt:
            return (await rt.run(spendthrift(), {})).run_id

    run_id = asyncio.run(make())
    shown = run_cli("runs", "show", run_id, "--json", store=f"sqlite:///{tmp_path / 'runs.db'}")
    assert shown.rc == 0, shown.err

    def refuse(name: str) -> Any:
        raise AssertionError(f"not JSON: {name}")

    doc = json.loads(shown.out, parse_constant=refuse)
    assert doc["run"]["run_id"] == run_id
    assert doc["model_usage"]["cost"] is None
    table = run_cli("runs", "show", run_id, store=f"sqlite:///{tmp_path / 'runs.db'}")
    assert table.rc == 0, table.err
    assert "9,223,372,036,854,775,808 in" in table.out and "$inf" in table.out


def test_the_http_api_answers_with_json(tmp_path: Path) -> None:
    """``GET /v1/runs/{id}`` and the runs list answer 200 with strict JSON (null for a cost no
    float can hold), not a 500."""
    import asyncio

    from fastapi.testclient import TestClient

    from tether.server.app import create_app
    from tether.server.settings import ServerSettings

    wf = spendthrift()

    async def make() -> str:
        async with Runtime(SqliteStore(tmp_path / "runs.db"), workflows=[wf]) as rt:
            return (await rt.run(wf, {})).run_id

    run_id = asyncio.run(make())
    settings = ServerSettings(store=f"sqlite:///{tmp_path / 'runs.db'}", workflows=[wf])

    def refuse(name: str) -> Any:
        raise AssertionError(f"not JSON: {name}")

    with TestClient(create_app(settings)) as client:
        one = client.get(f"/v1/runs/{run_id}")
        assert one.status_code == 200, one.text
        usage = json.loads(one.text, parse_constant=refuse)["usage"]
        assert usage["cost"] is None and usage["model_calls"] == 2
        listed = client.get("/v1/runs")
        assert listed.status_code == 200, listed.text
        (item,) = json.loads(listed.text, parse_constant=refuse)["items"]
        assert item["usage"]["cost"] is None
