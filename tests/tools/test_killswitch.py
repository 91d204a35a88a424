"""Kill switches: per tool, per scope, per tenant; effective across processes within a second."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tether.core.errors import ToolDisabledError
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore
from tether.tools import KillSwitch, ToolExecutor, tool

ROOT = Path(__file__).resolve().parents[2]


@tool
async def lookup() -> str:
    """Read something."""
    return "data"


@tool(scope="destructive")
async def wipe() -> str:
    """Delete everything."""
    return "gone"


async def test_switches_by_tool_scope_and_tenant() -> None:
    store = MemoryStore()
    acme = ToolExecutor([lookup, wipe], store, tenant="acme", kill_refresh=0)
    globex = ToolExecutor([lookup, wipe], store, tenant="globex", kill_refresh=0)
    switch = KillSwitch(store)

    await switch.disable(scope="destructive", reason="incident 42")
    res = await acme.call("wipe")
    assert isinstance(res.error, ToolDisabledError) and "incident 42" in str(res.error)
    assert (await acme.call("lookup")).ok

    await switch.enable(scope="destructive")
    await switch.disable(tenant="acme", reason="unpaid")
    assert isinstance((await acme.call("lookup")).error, ToolDisabledError)
    assert (await globex.call("lookup")).ok and (await globex.call("wipe")).ok

    await switch.enable(tenant="acme")
    await switch.disable(tool="lookup", tenant="globex")
    assert (await acme.call("lookup")).ok
    assert isinstance((await globex.call("lookup")).error, ToolDisabledError)
    assert (await globex.call("wipe")).ok

    with pytest.raises(ValueError, match="say what to disable"):
        await switch.disable()


def test_a_switch_set_in_another_process_stops_calls_within_a_second(tmp_path: Path) -> None:
    db = tmp_path / "control.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.tools.kill_app", str(db)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY", proc.stderr

        async def flip() -> float:
            store = SqliteStore(db)
            await store.setup()
            await KillSwitch(store).disable(tool="ping", reason="stop the worker")
            at = time.time()
            await store.close()
            return at

        switched_at = asyncio.run(flip())
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    words = out.split()
    assert words[0] == "DISABLED", (out, err)
    lag = float(words[1]) - switched_at
    assert 0 <= lag <= 1.0, f"the worker kept calling for {lag:.3f}s after the switch"
