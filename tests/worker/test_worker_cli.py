"""``tether workers list`` (table and JSON) and the mistakes ``tether worker`` refuses."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tether.cli.main import main
from tether.store.sqlite import SqliteStore
from tether.store.workers import WorkerRecord


async def _fill(path: Path) -> None:
    store = SqliteStore(path)
    await store.setup()
    try:
        now = time.time()
        await store.register_worker(
            WorkerRecord(
                "o-live", "billing-1", "host-a", 11, now, ["billing"], 8, heartbeat_every=5
            )
        )
        await store.heartbeat_worker("o-live", 3)
        await store.register_worker(WorkerRecord("o-gone", "old-1", "host-b", 12, now - 10))
        await store.stop_worker("o-gone")
    finally:
        await store.close()


def test_workers_list_shows_each_worker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "runs.db"
    asyncio.run(_fill(db))
    assert main(["workers", "list", "--store", f"sqlite:///{db}", "--no-color"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["WORKER", "HOST", "PID", "STATE"]
    live = next(line.split() for line in out if line.startswith("billing-1"))
    assert live[:7] == ["billing-1", "host-a", "11", "running", "billing", "8", "3"]
    gone = next(line.split() for line in out if line.startswith("old-1"))
    assert gone[3:5] == ["stopped", "*"]

    assert main(["workers", "list", "--store", f"sqlite:///{db}", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["worker_id"], r["state"], r["in_flight"]) for r in rows] == [
        ("billing-1", "running", 3),
        ("old-1", "stopped", 0),
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["worker"],  # no --app: nothing to run
        ["worker", "--app", "tests.worker.worker_app:workflows", "--concurrency", "0"],
        ["worker", "--app", "tests.worker.worker_app:workflows", "--queues", "a,,b"],
        ["worker", "--app", "tests.worker.worker_app:workflows", "--grace", "-1"],
        ["worker", "--app", "tests.worker.worker_app:nothing_here"],
        ["worker", "--app", "tests.worker.worker_app:workflows", "--drift", "a,,b"],
        ["worker", "--app", "tests.worker.worker_app:workflows", "--drift-threshold", "1.5"],
        # a poll that short claimed without yielding (SIGTERM ignored, a core at 100 %); a
        # heartbeat or lease that long killed the heartbeat threads with an OverflowError
        ["worker", "--app", "tests.worker.worker_app:workflows", "--poll-interval", "1e-9"],
        ["worker", "--app", "tests.worker.worker_app:workflows", "--heartbeat", "1e308"],
        ["worker", "--app", "tests.worker.worker_app:workflows", "--lease-ttl", "1e308"],
        # a lease of 0.01 s: live workers took each other's runs and one run escalated
        ["worker", "--app", "tests.worker.worker_app:workflows", "--lease-ttl", "0.01"],
    ],
)
def test_worker_refuses_bad_options(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--store", f"sqlite:///{tmp_path / 'runs.db'}"]) == 2
    assert "error:" in capsys.readouterr().err
