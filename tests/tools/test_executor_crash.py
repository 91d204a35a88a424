"""Guarantee 3 for tools, with a real SIGKILL between the journal's intent and result."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.tools.crash_tool_app import pay, wire, workflow
from tether import RunStatus, Runtime
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor

ROOT = Path(__file__).resolve().parents[2]


def _worker(db: Path, ext: Path, run_id: str, tool: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CRASH_EXTERNAL": str(ext)}
    return subprocess.run(
        [sys.executable, "-m", "tests.tools.crash_tool_app", str(db), run_id, tool],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _external(ext: Path) -> tuple[list[str], list[str]]:
    db = sqlite3.connect(ext)
    attempts = [k for (k,) in db.execute("SELECT key FROM attempts")]
    effects = [k for (k,) in db.execute("SELECT key FROM effects")]
    db.close()
    return attempts, effects


async def _record(db: Path, run_id: str) -> tuple[object, list[object]]:
    async with Runtime(SqliteStore(db), workflows=[workflow], recover=False) as rt:
        return await rt.get_run(run_id), await rt.store.list_effects(run_id)


def test_idempotent_tool_is_retried_once_with_the_same_key(tmp_path: Path) -> None:
    db, ext = tmp_path / "runs.db", tmp_path / "pay.db"
    ext.with_suffix(".crash").touch()
    first = _worker(db, ext, "r-pay", "pay")
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert _external(ext) == (["pay-A1"], ["pay-A1"])  # the effect happened, result not recorded

    second = _worker(db, ext, "r-pay", "pay")
    assert second.stdout.strip() == "COMPLETED", second.stderr
    attempts, effects = _external(ext)
    assert attempts == ["pay-A1", "pay-A1"], "retried exactly once, with the same key"
    assert effects == ["pay-A1"], "the service saw one effect"
    _, journal = asyncio.run(_record(db, "r-pay"))
    # the journal keeps it under the tool's name: another tool deriving "pay-A1" is another effect
    assert [(e.key, e.status, e.attempts) for e in journal] == [("tool:pay:pay-A1", "done", 2)]  # type: ignore[attr-defined]


def test_the_default_key_is_the_runs_and_survives_a_crash(tmp_path: Path) -> None:
    """No key rule: the tool gets the run's journal key. The recovered run retries with the
    same key (the service dedupes the retry); another run of the same workflow and input has
    a key of its own (the service applies its charge instead of dropping it)."""
    db, ext = tmp_path / "runs.db", tmp_path / "pay.db"
    ext.with_suffix(".crash").touch()
    first = _worker(db, ext, "r-1", "charge")
    assert first.returncode == -signal.SIGKILL, first.stderr
    key1 = "r-1:1:act:0:tool:charge:0"
    assert _external(ext) == ([key1], [key1])

    second = _worker(db, ext, "r-1", "charge")
    assert second.stdout.strip() == "COMPLETED", second.stderr
    assert _external(ext) == ([key1, key1], [key1]), "retried with the same key"

    other = _worker(db, ext, "r-2", "charge")
    assert other.stdout.strip() == "COMPLETED", other.stderr
    key2 = "r-2:1:act:0:tool:charge:0"
    assert _external(ext) == ([key1, key1, key2], [key1, key2]), "both runs charged"
    for run_id, key in (("r-1", key1), ("r-2", key2)):
        run, journal = asyncio.run(_record(db, run_id))
        assert run.status is RunStatus.COMPLETED  # type: ignore[attr-defined]
        assert [(e.key, e.status, e.result) for e in journal] == [(key, "done", f"done:{key}")]  # type: ignore[attr-defined]


def test_non_idempotent_tool_escalates_instead_of_repeating(tmp_path: Path) -> None:
    db, ext = tmp_path / "runs.db", tmp_path / "wire.db"
    ext.with_suffix(".crash").touch()
    first = _worker(db, ext, "r-wire", "wire")
    assert first.returncode == -signal.SIGKILL, first.stderr

    second = _worker(db, ext, "r-wire", "wire")
    assert second.stdout.strip() == "ESCALATED", second.stderr
    assert _external(ext) == (["wire-A1"], ["wire-A1"]), "never called again"
    run, _ = asyncio.run(_record(db, "r-wire"))
    esc = run.escalation  # type: ignore[attr-defined]
    assert esc["kind"] == "unknown_effect_outcome"
    assert "not idempotent" in esc["reason"]

    async def settle() -> object:
        store = SqliteStore(db)
        tools = ToolExecutor([pay, wire], store)
        async with Runtime(store, workflows=[workflow], recover=False, deps={"tools": tools}) as rt:
            return await rt.resume("r-wire", {"result": "done:wire-A1 (confirmed by ops)"})

    res = asyncio.run(settle())
    assert res.status is RunStatus.COMPLETED  # type: ignore[attr-defined]
    assert res.state["receipt"] == "done:wire-A1 (confirmed by ops)"  # type: ignore[attr-defined]
    assert _external(ext)[0] == ["wire-A1"], "settling the outcome did not call the bank"
