"""Fixtures for the CLI tests: a SQLite store populated through the Runtime, and a runner that
executes the real ``tether`` command in a subprocess against it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tether import RunStatus, Runtime
from tether.core.refs import load_ref
from tether.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
APP_FILE = Path(__file__).resolve().parent / "app_example.py"
APP = f"{APP_FILE}:workflows"
"""The example workflows as the CLI loads them with --app (a file path, not an import)."""


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def json(self) -> Any:
        import json

        return json.loads(self.out)


Cli = Callable[..., Result]


def run_cli(*args: str, store: str | None, env: dict[str, str] | None = None) -> Result:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TETHER_", "CLI_"))}
    full_env.pop("FORCE_COLOR", None)
    full_env.pop("COLUMNS", None)
    if store is not None:
        full_env["TETHER_STORE"] = store
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "tether.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=full_env,
        timeout=120,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Populated:
    url: str
    path: Path
    escalated: str
    """Interrupted at ``review`` (pending interrupt ``2:review:0#0``)."""
    completed: str
    failed: str
    importable: str
    """Escalated, from the workflow imported as ``tests.cli.app_example`` (a ref the CLI can
    import from the repository root without --app)."""


async def populate(path: Path) -> Populated:
    # Loaded from a copy that is deleted below: the runs' stored workflow ref then points at a
    # file that no longer exists, so resuming them needs --app (the importable run does not).
    copy = path.parent / "app_gone.py"
    shutil.copy(APP_FILE, copy)
    file_wf, file_flaky = load_ref(f"{copy}:workflows")
    from tests.cli.app_example import wf as imported_wf

    store = SqliteStore(path)
    async with Runtime(store, workflows=[file_wf, file_flaky], recover=False) as rt:
        esc = await rt.run(file_wf, {"topic": "cats"})
        assert esc.status is RunStatus.ESCALATED
        done = await rt.run(file_wf, {"topic": "dogs"})
        done = await rt.resume(done.run_id, True)  # type: ignore[assignment]
        assert done.status is RunStatus.COMPLETED
        os.environ["CLI_EXAMPLE_FAIL"] = "1"
        try:
            failed = await rt.run(file_flaky, {"n": 1})
        finally:
            del os.environ["CLI_EXAMPLE_FAIL"]
        assert failed.status is RunStatus.FAILED
    copy.unlink()
    async with Runtime(SqliteStore(path), workflows=[imported_wf], recover=False) as rt:
        imp = await rt.run(imported_wf, {"topic": "importable"})
        assert imp.status is RunStatus.ESCALATED
    return Populated(f"sqlite:///{path}", path, esc.run_id, done.run_id, failed.run_id, imp.run_id)


@pytest.fixture
def store(tmp_path: Path) -> Populated:
    return asyncio.run(populate(tmp_path / "runs.db"))


@pytest.fixture
def cli(store: Populated) -> Cli:
    """``cli("runs", "list")`` runs ``tether runs list`` against the populated store."""

    def call(*args: str, env: dict[str, str] | None = None, store_url: str | None = None) -> Result:
        return run_cli(*args, store=store_url or store.url, env=env)

    return call
