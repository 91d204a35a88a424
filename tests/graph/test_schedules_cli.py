"""``tether schedules list|delete``: the store's schedules, as a table or JSON; removing one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.graph.test_schedules import WF
from tether import Runtime
from tether.cli.main import main
from tether.store.sqlite import SqliteStore


def test_schedules_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "runs.db"
    url = f"sqlite:///{db}"

    async def empty() -> None:
        async with Runtime(SqliteStore(db), recover=False):
            pass

    asyncio.run(empty())
    assert main(["schedules", "list", "--store", url]) == 0
    assert "no schedules" in capsys.readouterr().err

    async def add() -> None:
        async with Runtime(SqliteStore(db), recover=False) as rt:
            await rt.schedule("0 * * * *", WF, {"who": "ops"}, name="hourly")
            await rt.schedule("*/5 * * * *", WF, {"who": "dev"}, name="five", enabled=False)

    asyncio.run(add())
    assert main(["schedules", "list", "--store", url, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["cron"], r["workflow"], r["enabled"]) for r in rows] == [
        ("five", "*/5 * * * *", "report", False),
        ("hourly", "0 * * * *", "report", True),
    ]
    assert rows[1]["input"] == {"who": "ops"} and rows[1]["last_slot"] is None
    assert main(["schedules", "list", "--store", url]) == 0
    table = capsys.readouterr().out
    assert "hourly" in table and "0 * * * *" in table and "disabled" in table
    assert main(["schedules", "delete", "five", "--store", url]) == 0
    assert "schedule 'five' deleted" in capsys.readouterr().out
    assert main(["schedules", "delete", "five", "--store", url]) == 2
    assert "no schedule named 'five'" in capsys.readouterr().err
    assert main(["schedules", "list", "--store", url, "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["hourly"]
