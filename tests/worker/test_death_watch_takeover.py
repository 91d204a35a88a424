"""A runtime hears a worker on its host die and takes its runs over at once, with no scan and
no poll: a ``tether worker`` process holds a run (its lease good for ten minutes), a runtime in
this process whose claim loop would next look in an hour watches it, the worker is SIGKILLed,
and the run is taken over "dead" — only the pidfd's wake-up can have made that happen."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import tether.graph.runtime_claims as claims
from tests.worker.procs import GUARD, spawn
from tests.worker.test_worker_processes import _submit
from tests.worker.worker_app import workflows
from tether import Runtime
from tether.core.liveness import LINUX_PROC
from tether.store.lease_takeovers import TAKEOVER_EVENT
from tether.store.url import open_store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not hasattr(os, "pidfd_open") or not LINUX_PROC.boot_id(), reason="needs Linux pidfds"
    ),
]


async def until(what: str, check: object) -> None:
    """Wait on the loop until ``check()`` (a coroutine function or plain) holds."""

    async def wait() -> None:
        while True:
            got = check()  # type: ignore[operator]
            if asyncio.iscoroutine(got):
                got = await got
            if got:
                return
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(wait(), GUARD)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_a_killed_workers_run_is_taken_over_without_a_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    sink = tmp_path / "sink"
    sink.mkdir()
    args = ["--concurrency", "4", "--lease-ttl", "600", "--poll-interval", "0.05"]
    victim = await asyncio.to_thread(spawn, url, tmp_path, "victim", *args)
    try:
        (run_id,) = await _submit(url, 1, {"steps": 100_000, "ms": [20, 40], "sink": str(sink)})
        store = open_store(url)
        await store.setup()
        try:

            async def held_by(owner: str) -> bool:
                return (await store.get_run(run_id)).owner == owner

            # held before the heir opens: its first scan must name the victim (and it must not
            # claim the run itself)
            await until("the victim holding the run", lambda: held_by(victim.owner))
            async with Runtime(
                url, workflows=workflows, recover=True, poll_interval=3600, lease_ttl=600
            ) as heir:
                # the heir's first claim loop pass scans the owners once and watches the
                # victim's; from then on no scan comes for an hour
                await until(
                    "the heir watching the victim",
                    lambda: victim.owner in heir._death_watch.watched,
                )
                monkeypatch.setattr(claims, "DEAD_SCAN_INTERVAL", 3600.0)
                await asyncio.to_thread(victim.kill)
                await until("the heir holding the run", lambda: held_by(heir.owner))
                events = await store.list_events(run_id, limit=10_000)
                taken = [ev.data for ev in events if ev.type == TAKEOVER_EVENT]
                assert [(t["from"], t["to"], t["why"]) for t in taken] == [
                    (victim.owner, heir.owner, "dead")
                ]
        finally:
            await store.close()
    finally:
        victim.kill()
