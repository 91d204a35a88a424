"""A memory remembered inside a durable run whose process is SIGKILLed right after the store's
write (before the journal kept the result) is stored once when the run resumes, through the
Python API and through the ``remember`` tool alike."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.memory.conftest import MemoryFactory
from tests.memory.remember_crash_app import TEXTS
from tether import Runtime
from tether.core.errors import InvalidInputError
from tether.llm import HashingEmbedder
from tether.memory import MemoryScope, NewMemory, SqliteMemory, validate
from tether.store.sqlite import SqliteStore

APP = Path(__file__).with_name("remember_crash_app.py")
ROOT = Path(__file__).parents[2]


def _run(db: Path, run_id: str, crash_on: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(APP), str(db), run_id, str(crash_on)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _stored(db: Path, run_id: str) -> tuple[list[tuple[str, str]], list[str]]:
    memory = SqliteMemory(str(db), embedder=HashingEmbedder())
    await memory.setup()
    try:
        page, _ = await memory.list(MemoryScope("acme"), limit=100)
    finally:
        await memory.close()
    async with Runtime(SqliteStore(str(db)), workflows=[], recover=False) as rt:
        state = await rt.get_state(run_id)
    return [(m.id, m.text) for m in page], list(state.get("ids", []))


@pytest.mark.slow
@pytest.mark.parametrize("crash_on", [1, 2], ids=["python-api", "tool"])
def test_a_remember_cut_short_by_sigkill_is_stored_once(tmp_path: Path, crash_on: int) -> None:
    db, run_id = tmp_path / "runs.db", f"remember-{crash_on}"
    killed = _run(db, run_id, crash_on)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    done = _run(db, run_id, 0)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "COMPLETED", (done.stdout, done.stderr[-2000:])
    stored, ids = asyncio.run(_stored(db, run_id))
    assert [text for _, text in stored] == list(TEXTS)  # each once
    assert ids == [i for i, _ in stored]  # the run holds the ids of the stored memories


async def test_a_named_id_is_stored_once_on_every_backend(memory_factory: MemoryFactory) -> None:
    """``NewMemory(id=...)``: the id is the memory's; one already stored, in any scope, is
    refused with a typed error (never a second row, never another tenant's row replaced)."""
    m = await memory_factory()
    acme, globex = MemoryScope("acme"), MemoryScope("globex")
    ident = validate.idempotent_memory_id("run-1:task:0:memory:0", acme, "the user likes tea")
    [added] = await m.add_many([NewMemory("the user likes tea", id=ident)], scope=acme)
    assert added.id == ident and (await m.get(ident, scope=acme)) == added
    for scope in (acme, globex):
        with pytest.raises(InvalidInputError, match="already stored"):
            await m.add_many([NewMemory("something else", id=ident)], scope=scope)
    with pytest.raises(InvalidInputError, match="twice"):
        await m.add_many([NewMemory("a", id="x1"), NewMemory("b", id="x1")], scope=acme)
    for bad in ("", "a\x00b", "x" * 65):
        with pytest.raises(InvalidInputError, match="memory id"):
            await m.add_many([NewMemory("a", id=bad)], scope=acme)
    assert await m.count(acme) == 1 and await m.count(globex) == 0
    assert [h.memory.id for h in await m.search("tea", scope=acme)] == [ident]
