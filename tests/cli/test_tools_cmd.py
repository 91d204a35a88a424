"""``tether tools switches|disable|enable``: an operator stops a tool, a scope or a tenant's
tools in every worker on the store, from the shell, and lifts it again."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tether.cli.main import main
from tether.core.errors import ToolDisabledError
from tether.store.sqlite import SqliteStore
from tether.tools import KillSwitch, ToolExecutor, tool


@tool(scope="destructive", idempotent=True)
def wipe(account: str) -> str:
    """Delete an account."""
    return f"wiped {account}"


@tool
def lookup(account: str) -> str:
    """Read an account."""
    return f"read {account}"


def calls(db: Path, tenant: str | None = None) -> dict[str, str]:
    """What each tool answers now, to a worker on the store (refused: the error's class)."""

    async def go() -> dict[str, str]:
        store = SqliteStore(db)
        await store.setup()
        try:
            tools = ToolExecutor([wipe, lookup], store, tenant=tenant, kill_refresh=0)
            out = {}
            for name in ("wipe", "lookup"):
                res = await tools.call(name, {"account": "A-1"})
                out[name] = "ok" if res.ok else type(res.error).__name__
            return out
        finally:
            await store.close()

    return asyncio.run(go())


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    calls(path)  # creates the store
    return path


def tether(db: Path, *args: str) -> int:
    return main(["tools", *args, "--store", f"sqlite:///{db}"])


def test_disable_a_scope_list_and_enable(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tether(db, "switches") == 0
    assert "no kill switch in force" in capsys.readouterr().err
    assert tether(db, "disable", "--scope", "destructive", "--reason", "incident 42") == 0
    out = capsys.readouterr().out
    assert "scope 'destructive': disabled" in out and "incident 42" in out
    assert calls(db) == {"wipe": ToolDisabledError.__name__, "lookup": "ok"}
    assert tether(db, "switches", "--json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["tool"], row["scope"], row["tenant"], row["reason"]) == (
        None,
        "destructive",
        None,
        "incident 42",
    )
    assert isinstance(row["at"], float)
    assert tether(db, "enable", "--scope", "destructive") == 0
    assert "enabled again" in capsys.readouterr().out
    assert calls(db) == {"wipe": "ok", "lookup": "ok"}


def test_a_tenant_or_one_tool_of_a_tenant(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tether(db, "disable", "--tenant", "acme", "--reason", "unpaid") == 0
    assert tether(db, "disable", "--tool", "lookup", "--tenant", "globex", "--reason", "x") == 0
    capsys.readouterr()
    assert calls(db, "acme") == {"wipe": "ToolDisabledError", "lookup": "ToolDisabledError"}
    assert calls(db, "globex") == {"wipe": "ok", "lookup": "ToolDisabledError"}
    assert calls(db, "initech") == {"wipe": "ok", "lookup": "ok"}
    assert tether(db, "switches") == 0
    table = capsys.readouterr().out
    assert "acme" in table and "unpaid" in table and "globex" in table


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("disable", "--scope", "destructive"), "--reason"),  # a reason is required
        (("disable", "--scope", "delete", "--reason", "x"), "unknown scope 'delete'"),
        (("disable", "--reason", "x"), "say what to disable"),
        (("disable", "--tool", "wipe", "--scope", "write", "--reason", "x"), "not both"),
        (("enable", "--tool", "wipe"), "no kill switch for tool 'wipe'"),
    ],
)
def test_what_would_switch_nothing_is_refused(
    db: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], needle: str
) -> None:
    assert tether(db, *args) == 2
    assert needle in capsys.readouterr().err
    assert calls(db) == {"wipe": "ok", "lookup": "ok"}


def test_switches_set_in_python_are_listed_with_odd_names(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tenant name holding '|' is escaped in the switch's key: it neither aliases another
    tenant's switch nor reads back garbled."""

    async def set_them() -> None:
        store = SqliteStore(db)
        await store.setup()
        try:
            await KillSwitch(store).disable(tenant="a|tool=wipe", reason="odd name")
        finally:
            await store.close()

    asyncio.run(set_them())
    assert calls(db, "a") == {"wipe": "ok", "lookup": "ok"}
    assert calls(db, "a|tool=wipe") == {"wipe": "ToolDisabledError", "lookup": "ToolDisabledError"}
    assert tether(db, "switches", "--json") == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    assert [(r["tenant"], r["tool"]) for r in rows] == [("a|tool=wipe", None)]
