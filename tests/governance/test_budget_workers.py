"""One budget envelope across processes: a parent run and 5 child runs executed by two
``tether worker`` processes sharing PostgreSQL overrun their shared envelope by at most one
call; a worker SIGKILLed after a model call was journaled leaves a run whose replay elsewhere
charges nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.governance import budget_app as app
from tests.worker.procs import ROOT, WorkerProc, lines, pythonpath, stop_all, wait_until
from tether import RunStatus, Runtime
from tether.store.budget import BudgetStore, Ledger
from tether.store.protocol import RunStore
from tether.store.url import open_store

APP = "tests.governance.budget_app:workflows"
TOK = app.IN + app.OUT
SETTLED = (RunStatus.COMPLETED, RunStatus.ESCALATED, RunStatus.FAILED)


@pytest.fixture
def pg_url(throwaway_pg: Any) -> str:
    return (
        f"postgresql://postgres@/postgres?host={throwaway_pg.datadir}"
        f"&schema=b_{uuid.uuid4().hex[:10]}"
    )


def spawn(url: str, sink: Path, name: str, *args: str) -> WorkerProc:
    env = {
        **os.environ,
        "PYTHONPATH": pythonpath(),
        "TETHER_WORKER_ID": name,
        "BUDGET_SINK": str(sink),
    }
    err = sink / f"{name}.stderr"
    cmd = [sys.executable, "-m", "tether.cli", "--json", "worker", "--app", APP]
    proc = subprocess.Popen(
        [*cmd, "--store", url, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=err.open("w"),
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=60)
        raise AssertionError(f"worker {name} exited before starting: {err.read_text()}")
    return WorkerProc(proc, name, proc.pid, err)


def with_store(url: str, fn: Any) -> Any:
    async def go() -> Any:
        store: RunStore = open_store(url)
        await store.setup()
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(go())


def submit(url: str, inputs: list[dict[str, Any]]) -> list[str]:
    """The first input becomes the root run; the others its children (``parent_run_id``)."""

    async def go(store: RunStore) -> list[str]:
        async with Runtime(store, workflows=app.workflows, recover=False) as rt:
            (wf,) = app.workflows
            root = await rt.submit(wf, inputs[0])
            ids = [root.run_id]
            for inp in inputs[1:]:
                ids.append((await rt.submit(wf, inp, parent_run_id=root.run_id)).run_id)
            return ids

    return list(with_store(url, go))


def statuses(url: str, ids: list[str]) -> list[RunStatus]:
    async def go(store: RunStore) -> list[RunStatus]:
        return [(await store.get_run(i)).status for i in ids]

    return list(with_store(url, go))


def ledger(url: str, root: str) -> Ledger:
    async def go(store: RunStore) -> Ledger | None:
        assert isinstance(store, BudgetStore)
        return await store.get_ledger(f"run:{root}")

    row = with_store(url, go)
    assert row is not None
    return row


def test_a_parent_and_five_children_on_two_workers_share_one_envelope(
    pg_url: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    workers = [spawn(pg_url, tmp_path, f"w{i}", "--concurrency", "3") for i in range(2)]
    try:
        ids = submit(pg_url, [{"turns": 20, "gate": str(gate)} for _ in range(6)])
        # each worker holds three runs at its gate: both execute runs of the tree
        wait_until("six runs at their gate", lambda: len(lines(tmp_path / "calls.log")) >= 6)
        gate.touch()
        wait_until("every run settled", lambda: all(s in SETTLED for s in statuses(pg_url, ids)))
        got = statuses(pg_url, ids)
        row = ledger(pg_url, ids[0])
    finally:
        stop_all(workers)
    calls = lines(tmp_path / "calls.log")
    assert len({pid for *_, pid in calls}) == 2  # both processes made calls
    assert RunStatus.FAILED not in got and RunStatus.ESCALATED in got
    limit = app.SHARED.limits
    # the ledger charged exactly the live calls, and the envelope held within one call
    assert row.used["model_calls"] == len(calls) <= limit["model_calls"]
    assert row.used["tokens"] == TOK * len(calls) <= limit["tokens"] + TOK
    assert all(v == 0 for v in row.reserved.values())
    assert row.used["child_runs"] == 5
    # the envelope stopped the tree well before the 120 calls its runs wanted
    assert len(calls) < 120


def test_a_replay_after_sigkill_charges_nothing(pg_url: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    victim = spawn(pg_url, tmp_path, "victim", "--lease-ttl", "2", "--concurrency", "1")
    (run_id,) = submit(pg_url, [{"turns": 1, "gate": str(gate)}])

    def journaled() -> bool:
        async def go(store: RunStore) -> bool:
            effects = await store.list_effects(run_id)
            return any(e.kind == "model" and e.status == "done" for e in effects)

        return bool(with_store(pg_url, go))

    workers = [victim]
    try:
        wait_until("the model call journaled", journaled)
        victim.kill()  # SIGKILL, parked at the gate after the call
        gate.touch()
        workers.append(spawn(pg_url, tmp_path, "heir", "--lease-ttl", "2"))
        wait_until("the run completed elsewhere", lambda: statuses(pg_url, [run_id])[0] in SETTLED)
        (status,) = statuses(pg_url, [run_id])
        row = ledger(pg_url, run_id)
    finally:
        stop_all(workers)
    assert status is RunStatus.COMPLETED
    calls = lines(tmp_path / "calls.log")
    assert [pid for *_, pid in calls] == [str(victim.pid)]  # the heir replayed it
    assert row.used["model_calls"] == 1 and row.used["tokens"] == TOK
    assert row.used["tool_calls"] == 1 and all(v == 0 for v in row.reserved.values())
