"""A run's model usage survives a SIGKILL of its runtime mid-step: the model call made before
the kill (journaled, its step not committed) is replayed when another runtime continues the
run, and is counted once in the run's usage, its ``model_call`` events, its KPIs and its
budget; the model is not asked again.

No wall-clock bound on the recovery: the killed owner's lease is long (120 s) and the other
runtime takes the run over at once, because it can prove the owner's process is gone."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.durability.usage_app import WRAPPED, workflow
from tether import RunStatus, Runtime
from tether.evaluation.run_kpis import run_kpis
from tether.llm import ScriptedModel
from tether.store.budget import BudgetStore
from tether.store.run_usage import RunUsage, RunUsageTotals

ROOT = Path(__file__).resolve().parents[2]
GUARD = 90.0  # hang guard, well under the lease: waiting the lease out fails the test


def _kill_after_the_call(url: str, run_id: str, gate: Path) -> None:
    """Start the run in a worker process and SIGKILL it once its model call has returned."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.durability.usage_app", url, run_id, str(gate)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "CALLED":
                break
        else:
            raise AssertionError(f"the worker exited before its model call: {proc.stderr}")
    finally:
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=GUARD) == -signal.SIGKILL


async def _continue_and_count(url: str, run_id: str) -> None:
    model = ScriptedModel([WRAPPED], name="paid")  # one reply, for `wrap`: `ask` is replayed
    async with Runtime(
        url,
        owner="w-other",
        workflows=[workflow],
        deps={"model": model},
        lease_ttl=120.0,
        recover=False,
    ) as rt:
        assert await rt.recover_once() == [run_id]
        res = await rt.wait(run_id, timeout=GUARD)
        assert res.status is RunStatus.COMPLETED, res.error
        assert res.state["answer"] == "the answer" and res.state["summary"] == "wrapped"
        assert model.calls == 1  # the killed call was not made again
        store = rt.store

        (used,) = await store.model_usage(run_id)
        got = (used.model, used.calls, used.input_tokens, used.output_tokens, used.cost)
        assert got == ("scripted:paid", 2, 107, 33, 0.75)

        calls = [e for e in await store.list_events(run_id) if e.type == "model_call"]
        assert [(e.node, e.data["input_tokens"], e.data["cost"]) for e in calls] == [
            ("ask", 100, 0.25),
            ("wrap", 7, 0.5),
        ]

        kpis = await run_kpis(store, run_id)
        got_kpis = (kpis.model_calls, kpis.input_tokens, kpis.output_tokens, kpis.cost)
        assert got_kpis == (2, 107, 33, 0.75)
        assert isinstance(store, RunUsageTotals)
        assert (await store.runs_usage([run_id]))[run_id] == RunUsage(2, 107, 33, 0.75, 0)

        # the budget charged each live call once, the replay nothing: both settled at once
        # (each cost more than its projection, the fake's price list says 0.0)
        assert isinstance(store, BudgetStore)
        ledger = await store.get_ledger(f"run:{run_id}")
        assert ledger is not None
        spent = {d: ledger.spent(d) for d in ("model_calls", "input_tokens", "output_tokens")}
        assert spent == {"model_calls": 2.0, "input_tokens": 107.0, "output_tokens": 33.0}
        assert ledger.spent("cost") == 0.75


def test_a_model_call_before_a_sigkill_is_counted_once(url: str, tmp_path: Path) -> None:
    gate, run_id = tmp_path / "gate", "usage-kill-1"
    _kill_after_the_call(url, run_id, gate)
    gate.touch()
    asyncio.run(asyncio.wait_for(_continue_and_count(url, run_id), GUARD))
