"""SQLite-only behaviour: migrations, durability settings, several processes on one file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tether.core.errors import ConfigurationError, SchemaVersionError
from tether.core.lifecycle import RunStatus
from tether.store import SqliteStore, schema
from tether.store.schema import _VERSIONS, LATEST_VERSION
from tether.store.types import Checkpoint, RunRecord


def _versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [v for (v,) in db.execute("SELECT version FROM tether_schema_version ORDER BY 1")]


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_setup_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SqliteStore(path)
    await store.setup()
    await store.setup()
    other = SqliteStore(path)
    await other.setup()
    assert _versions(path) == [v for v, _ in _VERSIONS]  # every version (numbers may be skipped)
    await store.close()
    await other.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SqliteStore(path)
    await store.setup()
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO tether_schema_version VALUES (?, 0)", (LATEST_VERSION + 1,))
    newer = SqliteStore(path)
    with pytest.raises(SchemaVersionError, match="upgrade tether"):
        await newer.setup()
    await newer.close()


def test_concurrent_setup_from_processes(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    code = """
        import asyncio, sys
        from tether.store import SqliteStore
        store = SqliteStore(sys.argv[1])
        asyncio.run(store.setup())
    """
    procs = [_spawn(code, str(path)) for _ in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert _versions(path) == [v for v, _ in _VERSIONS]  # every version (numbers may be skipped)


async def test_claims_across_processes_never_overlap(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SqliteStore(path)
    await store.setup()
    ids = [f"r{i:03d}" for i in range(60)]
    for run_id in ids:
        run = RunRecord(run_id, "wf", RunStatus.EXECUTING)
        await store.create_run(run, Checkpoint(run_id, 0, [], [], {}), [])
    await store.close()
    code = """
        import asyncio, sys
        from tether.store import SqliteStore

        async def main():
            store = SqliteStore(sys.argv[1])
            while leases := await store.claim_runs(sys.argv[2], 60, limit=2):
                print(*(lease.run_id for lease in leases))
                await asyncio.sleep(0)
            await store.close()

        asyncio.run(main())
    """
    procs = [_spawn(code, str(path), f"w{i}") for i in range(4)]
    claimed: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        claimed += out.split()
    assert sorted(claimed) == ids


async def test_durability_settings(tmp_path: Path) -> None:
    for durability, level in (("process", 1), ("power-loss", 2)):
        store = SqliteStore(tmp_path / f"{durability}.db", durability=durability)  # type: ignore[arg-type]
        db = store._db
        assert db.execute("PRAGMA synchronous").fetchone() == (level,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        await store.close()
    with pytest.raises(ConfigurationError, match="power-loss"):
        SqliteStore(tmp_path / "x.db", durability="fsync")  # type: ignore[arg-type]


async def test_in_memory_database() -> None:
    store = SqliteStore(":memory:")
    await store.setup()
    run, created = await store.create_run(
        RunRecord("r1", "wf", RunStatus.RECEIVED), Checkpoint("r1", 0, [], [], {}), []
    )
    assert created and (await store.get_run("r1")) == run
    await store.close()


async def test_creates_the_parent_directory(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "a" / "b" / "runs.db")
    await store.setup()
    await store.close()
    assert (tmp_path / "a" / "b" / "runs.db").exists()


async def test_calls_run_inline_on_the_loop_thread(tmp_path: Path) -> None:
    """No hop to a worker thread: a local commit is cheaper than the hop."""
    before = set(threading.enumerate())
    store = SqliteStore(tmp_path / "runs.db")
    await store.setup()
    await store.create_run(
        RunRecord("r1", "wf", RunStatus.RECEIVED), Checkpoint("r1", 0, [], [], {}), []
    )
    await store.get_run("r1")
    await store.close()
    assert set(threading.enumerate()) == before


async def test_an_older_database_is_upgraded_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file written by a tether that only knew version 1 gains the control-plane tables."""
    path = tmp_path / "runs.db"
    with monkeypatch.context() as m:
        m.setattr(schema, "_VERSIONS", schema._VERSIONS[:1])
        m.setattr(schema, "LATEST_VERSION", 1)
        old = SqliteStore(path)
        await old.setup()
        await old.close()
    with sqlite3.connect(path) as db:  # a run as a v1 tether wrote it (v1's columns only)
        db.execute(
            "INSERT INTO tether_runs (run_id, workflow, status, created_at, updated_at, metadata) "
            "VALUES ('r1', 'wf', 'RECEIVED', 0, 0, X'7b7d')"
        )
    assert _versions(path) == [1]
    store = SqliteStore(path)
    await store.setup()
    assert _versions(path) == [v for v, _ in _VERSIONS]  # every version (numbers may be skipped)
    assert (await store.get_run("r1")).status is RunStatus.RECEIVED
    assert await store.take_tokens("b", 1, 1) == 0.0
    await store.set_flag("k", [1])
    assert await store.get_flags() == {"k": [1]}
    await store.close()


async def test_take_tokens_across_processes_never_over_grants(tmp_path: Path) -> None:
    """Processes hammer one bucket at once: exactly ``burst`` takes succeed in all."""
    path = tmp_path / "runs.db"
    burst, procs_n, takes = 600, 4, 300
    code = """
        import asyncio, sys, time
        from tether.store import SqliteStore

        async def main():
            store = SqliteStore(sys.argv[1])
            await store.setup()
            time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # start together
            waits = [await store.take_tokens("shared", 1e-6, float(sys.argv[3]))
                     for _ in range(int(sys.argv[4]))]
            await store.close()
            print(sum(w == 0.0 for w in waits))

        asyncio.run(main())
    """
    start = str(time.time() + 2.0)
    procs = [_spawn(code, str(path), start, str(burst), str(takes)) for _ in range(procs_n)]
    granted = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        granted.append(int(out))
    assert sum(granted) == burst, granted  # 1e-6 tokens/s refills nothing in a test's time

    store = SqliteStore(path)
    await store.setup()
    assert await store.take_tokens("shared", 1e-6, burst) > 1000  # drained: ~1e6 s to wait
    await store.close()
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT tokens FROM tether_buckets WHERE bucket = 'shared'").fetchone()
    assert row[0] < 1
