"""Store reads at scale (SQLite): listing among 100k runs and a 10,000-step run's history.

    .venv/bin/python bench/store_scale.py [--runs 100000] [--steps 10000]

Prints one JSON object of milliseconds (medians of several calls). Not a test; figures on a
shared machine are noisy, compare them before/after on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tether import Runtime
from tether.core.lifecycle import RunStatus
from tether.store.rows import checkpoint_params, run_params
from tether.store.sqlite import SqliteStore
from tether.store.types import Checkpoint, RunRecord

STATUSES = [RunStatus.COMPLETED] * 16 + [RunStatus.FAILED, RunStatus.ESCALATED, RunStatus.PLANNED]


async def _ms(call: Callable[[], Awaitable[Any]], repeats: int = 7) -> float:
    await call()  # warm the statement cache and the page cache
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        await call()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2)


def _fill_runs(store: SqliteStore, n: int) -> None:
    rows = []
    for i in range(n):
        rec = RunRecord(f"r{i:07d}", f"wf{i % 20:02d}", STATUSES[i % len(STATUSES)])
        rec.created_at = rec.updated_at = 1_000_000.0 + i
        rows.append(run_params(rec))
    marks = ", ".join("?" * len(rows[0]))
    with store._tx as db:
        db.executemany(f"INSERT INTO tether_runs VALUES ({marks})", rows)


def _fill_steps(store: SqliteStore, run_id: str, steps: int) -> None:
    task = [{"id": "t", "node": "work"}]
    rows = [
        checkpoint_params(
            run_id, Checkpoint(run_id, s, [["t", "work", {"n": s}]], task, None), 1_000_000.0 + s
        )
        for s in range(1, steps + 1)
    ]
    with store._tx as db:
        db.executemany("INSERT INTO tether_checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.execute("UPDATE tether_runs SET step = ? WHERE run_id = ?", (steps, run_id))


async def main() -> tuple[dict[str, Any], str, str]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=10_000)
    args = ap.parse_args()
    out: dict[str, Any] = {"runs": args.runs, "steps": args.steps}
    path = os.path.join(tempfile.mkdtemp(), "scale.db")
    store = SqliteStore(path)
    await store.setup()
    _fill_runs(store, args.runs)
    keyset = "before" in inspect.signature(store.list_runs).parameters
    done = [RunStatus.COMPLETED]
    out["list_completed_ms"] = await _ms(lambda: store.list_runs(status=done, limit=50))
    out["list_escalated_ms"] = await _ms(
        lambda: store.list_runs(status=[RunStatus.ESCALATED], limit=50)
    )
    out["list_workflow_ms"] = await _ms(lambda: store.list_runs(workflow="wf07", limit=50))
    out["list_completed_workflow_ms"] = await _ms(
        lambda: store.list_runs(status=done, workflow="wf07", limit=50)
    )
    out["list_completed_or_failed_ms"] = await _ms(
        lambda: store.list_runs(status=[*done, RunStatus.FAILED], limit=50)
    )
    out["list_all_ms"] = await _ms(lambda: store.list_runs(limit=50))
    out["list_deep_offset_ms"] = await _ms(
        lambda: store.list_runs(status=done, limit=50, offset=args.runs // 2)
    )
    if keyset:
        page = await store.list_runs(status=done, limit=args.runs // 2)
        cursor = page[-1].run_id
        out["list_deep_cursor_ms"] = await _ms(
            lambda: store.list_runs(status=done, limit=50, before=cursor)  # type: ignore[call-arg]
        )
    # one long run
    rid = "r0000001"
    _fill_steps(store, rid, args.steps)
    await store.close()
    async with Runtime(SqliteStore(path), recover=False) as rt:
        out["history_all_ms"] = await _ms(lambda: rt.history(rid), repeats=3)
        if "limit" in inspect.signature(rt.history).parameters:
            out["history_page_ms"] = await _ms(lambda: rt.history(rid, limit=50))  # type: ignore[call-arg]
            out["history_last_page_ms"] = await _ms(
                lambda: rt.history(rid, after_step=args.steps - 50, limit=50)  # type: ignore[call-arg]
            )
    return out, path, rid


def _cli_history_ms(path: str, run_id: str) -> int:
    env = {**os.environ, "TETHER_STORE": f"sqlite:///{path}", "COLUMNS": "120"}
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tether.cli.main", "runs", "history", run_id],
        env=env,
        check=True,
        capture_output=True,
    )
    return round((time.perf_counter() - t) * 1000)


if __name__ == "__main__":
    figures, db_path, long_run = asyncio.run(main())
    figures["cli_history_ms"] = _cli_history_ms(db_path, long_run)
    print(json.dumps(figures, indent=1))
