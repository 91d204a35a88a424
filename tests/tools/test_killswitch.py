"""Kill switches: per tool, per scope, per tenant; effective across processes within a second."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tether.core.errors import ConfigurationError, ToolDisabledError
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


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({}, "say what to disable"),
        ({"scope": "Destructive"}, "unknown scope 'Destructive'"),
        ({"scope": "delete"}, "unknown scope 'delete'"),
        ({"tool": "wipe", "scope": "destructive"}, "give tool= or scope=, not both"),
        ({"tenant": ""}, "tenant= must be a non-empty name"),
        ({"tool": "  "}, "tool= must be a non-empty name"),
        ({"tool": 7}, "tool= must be a non-empty name"),
    ],
)
async def test_a_switch_that_would_stop_nothing_is_refused(
    target: dict[str, Any], message: str
) -> None:
    """Each of these used to be stored and then matched no call: the operator believed the
    tool stopped while it kept running."""
    store = MemoryStore()
    switch = KillSwitch(store)
    with pytest.raises(ConfigurationError, match=message):
        await switch.disable(**target, reason="incident")
    with pytest.raises(ConfigurationError, match=message):
        await switch.enable(**target)
    assert await store.get_flags("kill:") == {}
    assert (await ToolExecutor([wipe], store, kill_refresh=0).call("wipe")).ok


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"tool": "wipe "}, r"tool= has a space at an end, got 'wipe ' \(did you mean 'wipe'\?\)"),
        ({"tenant": " acme"}, "tenant= has a space at an end"),
        ({"tool": "wipe", "tenant": "acme\t"}, "tenant= has a space at an end"),
        ({"tool": "wi\x00pe"}, "tool= holds a control character"),
        ({"tenant": "ac\nme"}, "tenant= holds a control character"),
        ({"tenant": "a" * 201}, "tenant=: a tenant is a non-empty name of at most 200"),
    ],
)
async def test_a_near_miss_name_is_refused_not_stored(target: dict[str, Any], message: str) -> None:
    """'wipe ' or tenant ' acme' were stored and then matched no call: in an incident the
    operator saw the switch listed while the tool kept running."""
    store = MemoryStore()
    with pytest.raises(ConfigurationError, match=message):
        await KillSwitch(store).disable(**target, reason="incident")
    assert await store.get_flags("kill:") == {}


async def test_a_near_miss_switch_stored_before_can_still_be_lifted() -> None:
    store = MemoryStore()
    await store.set_flag("kill:tenant=*|tool=wipe ", {"reason": "old"})
    switch = KillSwitch(store)
    assert [s["tool"] for s in await switch.switches()] == ["wipe "]
    await switch.enable(tool="wipe ")
    assert await switch.switches() == []


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


async def test_switches_lists_what_each_covers_including_ones_stored_before() -> None:
    store = MemoryStore()
    switch = KillSwitch(store)
    await switch.disable(tool="wipe", tenant="acme", reason="oops")
    # a switch stored by an earlier tether: its flag says only why and when
    await store.set_flag("kill:tenant=*|scope=write", {"reason": "freeze", "at": 5.0})
    old, new = await switch.switches()  # in key order
    assert old == {"tool": None, "scope": "write", "tenant": None, "reason": "freeze", "at": 5.0}
    assert {k: new[k] for k in ("tool", "scope", "tenant", "reason")} == {
        "tool": "wipe",
        "scope": None,
        "tenant": "acme",
        "reason": "oops",
    }
    assert isinstance(new["at"], float)
    await switch.enable(tool="wipe", tenant="acme")
    await switch.enable(scope="write")
    assert await switch.switches() == []
