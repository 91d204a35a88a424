"""``tether worker --drift`` as a real process on a SQLite file, with the real MiniLM: each run
of the app's workflows is checked once it completes, the drifting one is flagged, and a worker
started again (a new process) checks the new runs and never the old ones again."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from tests.worker.drift_app import workflow
from tests.worker.procs import spawn, wait_until
from tether import Runtime
from tether.evaluation import drift_flags
from tether.store.protocol import RunStore
from tether.store.url import open_store

APP = "tests.worker.drift_app:workflows"
QUESTION = "How do I reset my password?"
FAITHFUL = (
    "To reset your password, click 'Forgot password' on the login page and follow the link "
    "we email you."
)
OFF_TOPIC = "Our quarterly revenue grew 12% on strong sales in Europe."


async def _submit(url: str, *drafts: str) -> list[str]:
    async with Runtime(url, workflows=[workflow], recover=False) as rt:
        return [
            (await rt.submit(workflow, {"question": QUESTION, "draft": d})).run_id for d in drafts
        ]


async def _with_store(url: str, fn: Any) -> Any:
    store: RunStore = open_store(url)
    await store.setup()
    try:
        return await fn(store)
    finally:
        await store.close()


def checks(url: str, run_ids: list[str]) -> list[int]:
    """How many ``drift_checked`` events each run has."""

    async def count(store: RunStore) -> list[int]:
        return [
            [e.type for e in await store.list_events(r)].count("drift_checked") for r in run_ids
        ]

    return asyncio.run(_with_store(url, count))


def flagged(url: str) -> list[tuple[str, str]]:
    async def read(store: RunStore) -> list[tuple[str, str]]:
        return [(f.run_id, f.kind) for f in await drift_flags(store, workflow="helpdesk")]

    return asyncio.run(_with_store(url, read))


def test_worker_drift_checks_each_completed_run_once_across_restarts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    good, bad = asyncio.run(_submit(url, FAITHFUL, OFF_TOPIC))
    first = spawn(url, tmp_path, "drift-1", "--drift", app=APP)
    try:
        wait_until("both runs checked", lambda: checks(url, [good, bad]) == [1, 1], every=0.2)
        first.signal(signal.SIGTERM)
        assert first.wait() == 0
    finally:
        first.kill()
    assert flagged(url) == [(bad, "drift.goal_output")]

    second = spawn(url, tmp_path, "drift-2", "--drift", "helpdesk", app=APP)
    try:
        (late,) = asyncio.run(_submit(url, OFF_TOPIC))
        wait_until("the new run checked", lambda: checks(url, [late]) == [1], every=0.2)
        second.signal(signal.SIGTERM)
        assert second.wait() == 0
    finally:
        second.kill()
    assert checks(url, [good, bad, late]) == [1, 1, 1]
    assert sorted(flagged(url)) == sorted([(bad, "drift.goal_output"), (late, "drift.goal_output")])
