"""Lease takeovers are said out loud: two ``tether worker`` processes, one SIGKILLed while it
holds runs; the other takes them over, and each takeover is a ``lease_takeover`` event naming
the old and the new owner, a log line of the new owner, and one more in ``/metrics``'s
``tether_lease_takeovers_total`` (read by a server on the same store)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.worker.procs import spawn, stop_all, wait_until
from tests.worker.test_worker_processes import _submit, _with_store, run_sync, runs, settled
from tests.worker.worker_app import workflows
from tether.core.lifecycle import ACTIVE
from tether.server.app import create_app
from tether.server.settings import ServerSettings
from tether.store.lease_takeovers import TAKEOVER_EVENT, LeaseTakeovers
from tether.store.protocol import RunStore

pytestmark = pytest.mark.slow


def takeover_events(url: str) -> list[dict[str, Any]]:
    async def read(store: RunStore) -> list[dict[str, Any]]:
        out = []
        for run in await store.list_runs(limit=500):
            for ev in await store.list_events(run.run_id, limit=10_000):
                if ev.type == TAKEOVER_EVENT:
                    out.append({"run_id": run.run_id, **ev.data})
        return out

    got: list[dict[str, Any]] = run_sync(_with_store(url, read))
    return got


def scraped_takeovers(url: str) -> float:
    settings = ServerSettings(store=url, workflows=workflows, embedded_workers=0)
    with TestClient(create_app(settings)) as client:
        text = client.get("/metrics").text
    found = re.search(r"^tether_lease_takeovers_total (\S+)$", text, re.M)
    assert found, text
    return float(found.group(1))


def kill_and_take_over(url: str, tmp_path: Path) -> None:
    sink = tmp_path / "sink"
    sink.mkdir()
    n = 40
    args = ["--concurrency", "8", "--lease-ttl", "3", "--poll-interval", "0.05"]
    # both started before the runs come: a worker that starts alone may finish them all
    victim, heir = spawn(url, tmp_path, "w0", *args), spawn(url, tmp_path, "w1", *args)
    try:
        run_sync(_submit(url, n, {"steps": 8, "ms": [50, 100], "sink": str(sink)}))
        held: set[str] = set()

        def holding() -> bool:
            held.clear()
            held.update(
                r.run_id for r in runs(url) if r.owner == victim.owner and r.status in ACTIVE
            )
            return bool(held)

        wait_until("the victim holding runs", holding, every=0.005)
        victim.kill()
        wait_until(
            "the killed worker's runs taken over",
            lambda: not any(r.owner == victim.owner for r in runs(url) if r.status in ACTIVE),
        )
        wait_until("every run settled", lambda: settled(url, n))

        events = takeover_events(url)
        assert events, "no takeover recorded"
        assert {e["from"] for e in events} == {victim.owner}  # the live worker kept its runs
        assert {e["to"] for e in events} == {heir.owner}
        assert all(e["why"] in ("expired", "dead") and e["token"] > 1 for e in events)
        # the runs the victim held when it died were taken from it (unless it settled one
        # between the last look and the kill: then nobody had to take that one over)
        taken = {e["run_id"] for e in events}
        assert taken <= {r.run_id for r in runs(url)}
        assert len(taken) == len(events)  # one takeover per run: the heir never died
        assert run_sync(_with_store(url, _count)) == len(events)
        assert scraped_takeovers(url) == len(events)
        stop_all([heir])
        log = heir.stderr()
        for e in events:
            assert f"run {e['run_id']}: lease taken over from {victim.owner} by {heir.owner}" in log
        print(f"\n{len(events)} run(s) taken over from the killed worker (it held {len(held)})")
    finally:
        stop_all([victim, heir])


async def _count(store: RunStore) -> int:
    assert isinstance(store, LeaseTakeovers)
    return await store.count_takeovers()


def test_a_killed_workers_runs_are_taken_over_and_counted_sqlite(tmp_path: Path) -> None:
    kill_and_take_over(f"sqlite:///{tmp_path / 'runs.db'}", tmp_path)


@pytest.mark.postgres
def test_a_killed_workers_runs_are_taken_over_and_counted_postgres(
    pg_url: str, tmp_path: Path
) -> None:
    kill_and_take_over(pg_url, tmp_path)
