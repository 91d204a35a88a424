"""``tether queues`` and ``tether queues limit`` against a real SQLite store, in a subprocess."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, TypedDict

from tether import END, START, Graph, QueueFullError, Runtime
from tether.store.sqlite import SqliteStore

from .conftest import run_cli


class S(TypedDict):
    n: int


def _wf() -> Any:
    g = Graph(S, name="cli_queues")
    g.add_node("a", lambda s: {"n": 1})
    g.add_edge(START, "a")
    g.add_edge("a", END)
    return g.compile()


def test_queues_limit_and_list(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    url = f"sqlite:///{path}"
    asyncio.run(SqliteStore(path).setup())
    res = run_cli("queues", "limit", "billing", "--max-depth", "2", "--max-running", "1", store=url)
    assert res.rc == 0, res.err
    res = run_cli("queues", "limit", "acme", "--kind", "tenant", "--max-running", "3", store=url)
    assert res.rc == 0, res.err
    wf = _wf()

    async def submit() -> None:
        async with Runtime(SqliteStore(path), workflows=[wf], recover=False) as rt:
            await rt.submit(wf, {"n": 0}, queue="billing")
            await rt.submit(wf, {"n": 0}, queue="billing", delay=3600)
            try:
                await rt.submit(wf, {"n": 0}, queue="billing")
            except QueueFullError:
                return
            raise AssertionError("the depth limit set by the CLI was not enforced")

    asyncio.run(submit())
    listed = run_cli("queues", "--json", store=url)
    assert listed.rc == 0, listed.err
    (billing,) = listed.json()["queues"]
    assert billing["queue"] == "billing"
    assert (billing["waiting"], billing["delayed"], billing["running"]) == (1, 1, 0)
    assert (billing["max_running"], billing["max_depth"]) == (1, 2)
    assert billing["oldest_age"] >= 0
    kinds = {(x["kind"], x["key"]): x["max_running"] for x in listed.json()["limits"]}
    assert kinds == {("queue", "billing"): 1, ("tenant", "acme"): 3}
    table = run_cli("queues", "list", store=url)
    assert table.rc == 0 and "billing" in table.out and "acme" in table.out
    removed = run_cli("queues", "limit", "billing", store=url)
    assert removed.rc == 0 and "removed" in removed.err
    assert run_cli("queues", "--json", store=url).json()["queues"][0]["max_depth"] is None
    bad = run_cli("queues", "limit", "acme", "--kind", "tenant", "--max-depth", "3", store=url)
    assert bad.rc != 0 and "max_running only" in bad.err


def test_setting_one_cap_keeps_the_other(tmp_path: Path) -> None:
    # `--max-running 5` alone used to remove the queue's depth limit set before, saying only
    # "limit set": the queue lost its backpressure without a word
    path = tmp_path / "q.db"
    url = f"sqlite:///{path}"
    asyncio.run(SqliteStore(path).setup())

    def caps() -> dict[tuple[str, str], tuple[int | None, int | None]]:
        listed = run_cli("queues", "--json", store=url)
        assert listed.rc == 0, listed.err
        return {
            (x["kind"], x["key"]): (x["max_running"], x["max_depth"])
            for x in listed.json()["limits"]
        }

    assert run_cli("queues", "limit", "billing", "--max-depth", "100", store=url).rc == 0
    res = run_cli("queues", "limit", "billing", "--max-running", "5", store=url)
    assert res.rc == 0, res.err
    assert "max running 5, max depth 100" in res.err
    assert caps() == {("queue", "billing"): (5, 100)}
    res = run_cli("queues", "limit", "billing", "--max-depth", "none", store=url)
    assert res.rc == 0 and "max running 5, max depth -" in res.err
    assert caps() == {("queue", "billing"): (5, None)}
    res = run_cli("queues", "limit", "billing", "--max-running", "none", store=url)
    assert res.rc == 0 and "limit removed" in res.err
    assert caps() == {}
    res = run_cli("queues", "limit", "billing", store=url)
    assert res.rc == 0 and "had no limit" in res.err
    res = run_cli("queues", "limit", "billing", "--max-running", "none", store=url)
    assert res.rc == 0 and "had no limit" in res.err, res.err  # not "limit removed"


def test_a_queue_no_running_worker_serves_is_pointed_out(tmp_path: Path) -> None:
    """Runs submitted to a queue nobody claims from used to wait without a word."""
    import os
    import socket

    from tether.store.workers import WorkerRecord

    path = tmp_path / "q.db"
    url = f"sqlite:///{path}"
    wf = _wf()

    async def setup() -> None:
        async with Runtime(SqliteStore(path), workflows=[wf], recover=False) as rt:
            await rt.submit(wf, {"n": 0}, queue="billing")
            await rt.submit(wf, {"n": 0}, queue="default")
            store = rt.store
            assert isinstance(store, SqliteStore)
            now = store.clock.now()
            serving = WorkerRecord("w1-owner", "w1", socket.gethostname(), os.getpid(), now)
            serving.queues, serving.heartbeat_every = ["default"], 3600.0
            gone = WorkerRecord("w2-owner", "w2", socket.gethostname(), os.getpid(), now)
            gone.queues = ["billing"]
            await store.register_worker(serving)
            await store.register_worker(gone)
            await store.stop_worker("w2-owner")  # stopped: serves nothing now

    asyncio.run(setup())
    listed = run_cli("queues", "--json", store=url)
    assert listed.rc == 0, listed.err
    workers = {q["queue"]: q["workers"] for q in listed.json()["queues"]}
    assert workers == {"billing": 0, "default": 1}
    table = run_cli("queues", store=url)
    assert table.rc == 0, table.err
    assert "queue billing: 1 run(s) waiting and no running worker serves it" in table.err
    assert "queue default" not in table.err
