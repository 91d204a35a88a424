"""``tether drift`` on a real SQLite store, in a subprocess: a run's flags with the texts
compared, a workflow's flags (table and JSON), ``--check`` with the real MiniLM, and the
mistakes it refuses."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tether import Runtime
from tether.evaluation import DriftMonitor, check_drift
from tether.store.sqlite import SqliteStore

from ..cli.conftest import run_cli
from .test_drift import FAITHFUL, OFF_TOPIC, QUESTION, KeywordEmbedder, helpdesk


async def fill(path: Path) -> tuple[str, str, str]:
    """A faithful run and an off-topic one, checked (exact similarities 1 and 0), and an
    off-topic run nobody checked yet."""
    store = SqliteStore(path)
    async with Runtime(store) as rt:
        good = await rt.run(helpdesk([FAITHFUL], []), {"question": QUESTION})
        bad = await rt.run(helpdesk([OFF_TOPIC], []), {"question": QUESTION})
        unchecked = await rt.run(helpdesk([OFF_TOPIC], []), {"question": QUESTION})
        monitor = DriftMonitor(KeywordEmbedder())
        for res in (good, bad):
            await check_drift(store, res.run_id, monitor=monitor)
    return good.run_id, bad.run_id, unchecked.run_id


def test_drift_flags_of_a_run_and_a_workflow_and_a_check(tmp_path: Path) -> None:
    path = tmp_path / "drift.db"
    url = f"sqlite:///{path}"
    good, bad, unchecked = asyncio.run(fill(path))

    one = run_cli("drift", bad, "--no-color", store=url)
    assert one.rc == 0, one.err
    (row,) = [line.split() for line in one.out.splitlines() if "drift.goal_output" in line]
    assert row[:4] == ["drift.goal_output", "final", "0.00", "0.70"]
    assert "How do I reset my password?" in one.out and "Our quarterly revenue" in one.out
    none = run_cli("drift", good, store=url)
    assert none.rc == 0 and none.out == "" and "no drift flags" in none.err

    flags = run_cli("drift", "--workflow", "helpdesk", "--json", store=url)
    assert flags.rc == 0, flags.err
    got = json.loads(flags.out)
    assert [(f["run_id"], f["kind"], f["similarity"]) for f in got] == [
        (bad, "drift.goal_output", 0.0)
    ]

    checked = run_cli("drift", unchecked, "--check", "--json", store=url)  # real MiniLM
    assert checked.rc == 0, checked.err
    (flag,) = json.loads(checked.out)
    assert flag["kind"] == "drift.goal_output" and flag["similarity"] < 0.3
    every = run_cli("drift", "--json", store=url)
    assert sorted(f["run_id"] for f in json.loads(every.out)) == sorted([bad, unchecked])


async def empty(path: Path) -> None:
    store = SqliteStore(path)
    await store.setup()
    await store.close()


def test_drift_refuses_mistakes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    asyncio.run(empty(tmp_path / "empty.db"))
    for args, message in [
        (["drift", "--check"], "--check needs the RUN_ID"),
        (["drift", "r1", "--threshold", "0.5"], "--threshold applies to --check only"),
        (["drift", "r1", "--workflow", "w"], "not both"),
        (["drift", "r1", "--check", "--threshold", "2"], "must be in (0, 1]"),
        (["drift", "nope"], "'nope' not found"),
        (["drift", "--server", "http://127.0.0.1:9"], "works on a store"),
    ]:
        res = run_cli(*args, store=url)
        assert res.rc == 2, (args, res.out, res.err)
        assert message in res.err, (args, res.err)
