"""``/metrics``: store gauges at scrape time, and this process's step, node, model and tool
figures from the events of the runs it executes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypedDict

from prometheus_client import generate_latest

from tests.server.conftest import Server, bearer, wait_for
from tether import RunContext
from tether.core.lifecycle import RunStatus
from tether.server.metrics import RunMetrics
from tether.store.lease_takeovers import TAKEOVER_EVENT
from tether.store.run_counts import RunCounts
from tether.store.sqlite import SqliteStore
from tether.store.types import Event
from tether.testing.store_helpers import create, ev


def _value(text: str, name: str) -> float:
    """The value of the sample ``name`` (with its labels) in Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics")


def test_the_embedded_worker_s_steps_and_the_store_s_runs_are_measured(server: Server) -> None:
    for n in (3, 4):
        server.wait(server.submit("count", {"n": n}), "COMPLETED")
    server.wait(server.submit("ask", {}), "ESCALATED")
    text = server.client.get("/metrics").text
    assert 'tether_runs{status="COMPLETED"} 2.0' in text
    assert 'tether_runs{status="ESCALATED"} 1.0' in text
    assert _value(text, "tether_step_seconds_count") >= 7  # 3 + 4 steps (and ask's)
    assert _value(text, 'tether_node_seconds_count{node="tick"}') == 7
    assert 'tether_workers{state="running"} 1.0' in text
    assert (
        'tether_queue_depth{queue="default",state="waiting"}' in text
        or "tether_queue_depth" in text
    )


def test_model_and_tool_events_feed_the_counters() -> None:
    m = RunMetrics()
    m.observe(
        Event(
            "r",
            1,
            "model_call",
            10.0,
            1,
            "agent",
            {"model": "m1", "input_tokens": 12, "output_tokens": 5, "cost": 0.25},
        )
    )
    m.observe(Event("r", 2, "tool_call", 11.0, 1, "agent", {"tool": "refund", "ok": True}))
    m.observe(
        Event(
            "r",
            3,
            "tool_call",
            12.0,
            1,
            "agent",
            {"tool": "refund", "ok": False, "error": "CircuitOpenError"},
        )
    )
    m.observe(
        Event(
            "r",
            4,
            "step_finished",
            13.0,
            1,
            None,
            {"tasks": ["1:agent:0", "1:fetch:0"], "took": [0.5, 0.25], "started": 12.0},
        )
    )
    text = generate_latest(m.registry).decode()
    assert 'tether_model_tokens_total{direction="input",model="m1"} 12.0' in text
    assert 'tether_model_tokens_total{direction="output",model="m1"} 5.0' in text
    assert 'tether_model_cost_total{model="m1"} 0.25' in text
    assert 'tether_tool_calls_total{tool="refund"} 2.0' in text
    assert 'tether_tool_errors_total{error="CircuitOpenError",tool="refund"} 1.0' in text
    assert "tether_step_seconds_sum 1.0" in text
    assert 'tether_node_seconds_sum{node="fetch"} 0.25' in text


def test_circuit_breakers_of_the_process_show_their_state(server: Server) -> None:
    from tether.core.breaker import BreakerPolicy, CircuitBreaker

    breaker = CircuitBreaker(
        "flaky_api", BreakerPolicy(failure_threshold=1), reject=lambda why, _: RuntimeError(why)
    )
    text = server.client.get("/metrics").text
    assert 'tether_breaker_state{kind="tool",name="flaky_api",state="closed"} 1.0' in text
    breaker.failure()
    text = server.client.get("/metrics").text
    assert 'tether_breaker_state{kind="tool",name="flaky_api",state="open"} 1.0' in text
    assert 'tether_breaker_state{kind="tool",name="flaky_api",state="closed"} 0.0' in text


def test_lease_takeovers_are_an_admin_counter_read_from_the_store(keyed: Server) -> None:
    c = keyed.client
    admin = c.get("/metrics", headers=bearer(keyed.keys["admin"])).text
    assert "# TYPE tether_lease_takeovers_total counter" in admin
    assert _value(admin, "tether_lease_takeovers_total") == 0.0  # none taken over here
    tenant = c.get("/metrics", headers=bearer(keyed.keys["a_read"])).text
    assert "tether_lease_takeovers" not in tenant  # shared by every tenant: admin only


def test_tools_a_model_made_up_share_one_label() -> None:
    """Each tool name a model invented was a new series (calls, errors and their _created):
    200 made-up names, 800 series."""
    m = RunMetrics()
    for i in range(200):
        data = {"tool": f"hallucinated_{i}", "ok": False, "error": "ToolNotFoundError"}
        m.observe(Event("r", i + 1, "tool_call", 10.0, 1, "agent", data))
    text = generate_latest(m.registry).decode()
    assert "hallucinated" not in text
    assert 'tether_tool_calls_total{tool="(unknown)"} 200.0' in text
    assert 'tether_tool_errors_total{error="ToolNotFoundError",tool="(unknown)"} 200.0' in text


def _finished(text: str) -> dict[str, float]:
    """``tether_runs_finished_total`` by status."""
    out = {}
    for line in text.splitlines():
        if line.startswith('tether_runs_finished_total{status="'):
            out[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
    return out


def test_runs_cancelled_here_count_as_finished_here(server: Server) -> None:
    """A cancel commits CANCELLED outside the run loop: the counter never saw it (two runs
    cancelled through the API, tether_runs{status="CANCELLED"} 2, no CANCELLED finished)."""
    c = server.client
    server.wait(server.submit("count", {"n": 2}), "COMPLETED")
    parked = server.submit("ask", {})
    server.wait(parked, "ESCALATED")
    assert c.post(f"/v1/runs/{parked}/cancel", json={"reason": "parked"}).status_code == 200
    running = server.submit("count", {"n": 100_000, "pause": 0.01})
    wait_for(c, running, lambda run: run["step"] >= 1)
    assert c.post(f"/v1/runs/{running}/cancel", json={"reason": "running"}).status_code == 200
    server.wait(running, "CANCELLED")
    text = c.get("/metrics").text
    assert _finished(text) == {"COMPLETED": 1.0, "CANCELLED": 2.0}
    assert _value(text, 'tether_runs{status="CANCELLED"}') == 2.0  # the store agrees


def test_breakers_sharing_a_name_are_one_series_per_state(server: Server) -> None:
    """Each tool executor has its own breaker per tool: two executors with the same tool wrote
    every tether_breaker_state series twice (a scrape with duplicate samples, one saying
    closed and the other open). Each series is now once, counting the breakers in its state."""
    from tether.core.breaker import BreakerPolicy, CircuitBreaker

    def reject(why: str, _: float) -> Exception:
        return RuntimeError(why)

    pair = [CircuitBreaker("twin_api", BreakerPolicy(failure_threshold=1), reject=reject)]
    pair.append(CircuitBreaker("twin_api", BreakerPolicy(failure_threshold=1), reject=reject))
    pair[1].failure()
    text = server.client.get("/metrics").text
    series = [line.rsplit(" ", 1)[0] for line in text.splitlines() if "twin_api" in line]
    assert len(series) == len(set(series)) == 3, series
    for state, n in (("closed", 1.0), ("open", 1.0), ("half_open", 0.0)):
        assert (
            _value(text, f'tether_breaker_state{{kind="tool",name="twin_api",state="{state}"}}')
            == n
        )
    del pair


def _in_store(db: Path, work: Callable[[SqliteStore], Awaitable[None]]) -> None:
    """Run ``work`` on the server's SQLite store through a connection of its own."""

    async def go() -> None:
        store = SqliteStore(db)
        await store.setup()
        try:
            await work(store)
        finally:
            await store.close()

    asyncio.run(go())


def test_lease_takeovers_never_go_down_when_old_runs_are_purged(keyed: Server) -> None:
    """The counter was the store's count of lease_takeover events, which retention's purge
    deletes with their runs: it went 2 -> 1, and Prometheus reads a counter that goes down as a
    reset, so increase() reported a burst of takeovers that never happened."""
    admin = bearer(keyed.keys["admin"])

    def takeovers() -> float:
        return _value(
            keyed.client.get("/metrics", headers=admin).text, "tether_lease_takeovers_total"
        )

    taken = ev(TAKEOVER_EVENT, **{"from": "w1", "to": "w2"})

    async def two_taken_over(store: SqliteStore) -> None:
        await create(store, "old-run", status=RunStatus.COMPLETED, events=[taken])
        await create(store, "live-run", events=[taken])

    _in_store(keyed.db, two_taken_over)
    assert takeovers() == 2.0

    async def purge(store: SqliteStore) -> None:
        assert await store.purge_runs(store.clock.now() + 60) == 1  # the finished one

    _in_store(keyed.db, purge)
    assert takeovers() == 2.0  # not 1: none was undone

    async def one_more(store: SqliteStore) -> None:
        await create(store, "new-run", events=[taken])

    _in_store(keyed.db, one_more)
    assert takeovers() == 3.0


def test_queue_series_are_bounded_however_many_queues_clients_name(tmp_path: Path) -> None:
    """A client names a run's queue (any string of up to 200 characters): one tenant with the
    submit scope made four series per queue it named, 600 for 150 queues, for as long as the
    runs wait. The busiest ``MAX_QUEUE_SERIES`` queues keep their own series, the others add up
    under ``queue="(other)"``: no run is lost from the depth."""
    from tests.server.conftest import open_server
    from tether.worker.gauges import MAX_QUEUE_SERIES, OTHER_QUEUES

    named = MAX_QUEUE_SERIES + 50
    for server in open_server(tmp_path, embedded_workers=0):  # nobody runs them: they wait
        for i in range(named):
            server.submit("echo", {"text": "x"}, queue=f"tenant-made-{i}")
        for _ in range(3):
            server.submit("echo", {"text": "x"}, queue="tenant-made-7")  # the busiest
        text = server.client.get("/metrics").text
        depth = {
            line.split('queue="', 1)[1].split('"', 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("tether_queue_depth{") and 'state="waiting"' in line
        }
        ages = [line for line in text.splitlines() if line.startswith("tether_queue_oldest_age")]
        assert len(depth) == len(ages) == MAX_QUEUE_SERIES + 1
        assert depth["tenant-made-7"] == 4.0
        assert depth[OTHER_QUEUES] == named - MAX_QUEUE_SERIES
        assert sum(depth.values()) == named + 3


def test_a_run_retried_after_failing_is_not_counted_as_failed(tmp_path: Path) -> None:
    """A run retry records FAILED -> PLANNED in one commit: each retried attempt counted a
    FAILED run (a run that failed twice, then completed: FAILED 2, COMPLETED 1). Only a FAILED
    that stays counts (the second run: out of attempts)."""
    from tether import END, START, Graph, Runtime
    from tether.graph.run_retry import RunRetry

    class S(TypedDict, total=False):
        fail_until: int
        done: bool

    attempts: dict[str, int] = {}

    def flaky(state: S, ctx: RunContext) -> dict[str, Any]:
        attempts[ctx.run_id] = attempts.get(ctx.run_id, 0) + 1
        if attempts[ctx.run_id] <= state.get("fail_until", 0):
            raise ConnectionError("upstream down")
        return {"done": True}

    g = Graph(S, name="flaky")
    g.add_node("call", flaky).add_edge(START, "call").add_edge("call", END)
    wf = g.compile(run_retry=RunRetry(max_attempts=3, initial_interval=0.001, jitter=False))

    async def go() -> tuple[str, dict[str, int]]:
        m = RunMetrics()
        async with Runtime(f"sqlite:///{tmp_path / 'runs.db'}", workflows=[wf]) as rt:
            rt.bus.observe(m.observe)
            recovered = await rt.start(wf, {"fail_until": 2})
            assert (await recovered.wait()).status is RunStatus.COMPLETED
            lost = await rt.start(wf, {"fail_until": 99})
            assert (await lost.wait()).status is RunStatus.FAILED
            assert isinstance(rt.store, RunCounts)
            counts = await rt.store.count_runs()
        return generate_latest(m.registry).decode(), counts

    text, counts = asyncio.run(go())
    assert _finished(text) == {"COMPLETED": 1.0, "FAILED": 1.0}
    assert counts == {"COMPLETED": 1, "FAILED": 1}  # the store agrees
