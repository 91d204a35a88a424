"""``tether approvals``: keygen, approver add, list, show, approve (signed with a key file) on a
SQLite store holding a run parked on an approval; the approval resumes the run for workers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.governance.approvals_app import SENT, build
from tether import RunStatus, Runtime
from tether.cli.main import main
from tether.governance import ApprovalRule
from tether.store.sqlite import SqliteStore

WF = build(ApprovalRule(roles=("finance",)), name="refunds_cli")


async def _park(db: Path) -> str:
    async with Runtime(SqliteStore(db), workflows=[WF], recover=False) as rt:
        res = await rt.run(WF, {"amount": 9})
        assert res.status is RunStatus.ESCALATED
        return res.run_id


async def _finish(db: Path, run_id: str) -> RunStatus:
    async with Runtime(SqliteStore(db), workflows=[WF], recover=False) as rt:
        assert await rt.recover_once() == [run_id]
        return (await rt.wait(run_id, timeout=60)).status


def test_keygen_register_list_approve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    SENT.clear()
    db = tmp_path / "t.db"
    store = ["--store", f"sqlite:///{db}", "--app", "tests.governance.test_approvals_cli:WF"]
    run_id = asyncio.run(_park(db))
    key = tmp_path / "alice.pem"
    assert main(["approvals", "keygen", "--out", str(key)]) == 0
    assert main(["approvals", "keygen", "--out", str(key)]) == 2  # never overwritten
    assert (key.stat().st_mode & 0o777) == 0o600
    pub = f"{key}.pub"
    assert main(["approvals", "approver", "add", "alice", "--role", "finance",
                 "--public-key", pub, *store]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["approvals", "list", "--status", "pending", "--json", *store]) == 0
    (req,) = json.loads(capsys.readouterr().out)
    assert (req["run_id"], req["intent"]["args"]) == (run_id, {"amount": 9})
    aid = req["approval_id"]

    assert main(["approvals", "approve", aid, "--approver", "alice", "--key", pub, *store]) == 2
    assert "not an unencrypted PEM private key" in capsys.readouterr().err
    assert main(["approvals", "approve", "nope", "--approver", "alice", "--key", str(key),
                 *store]) == 2  # fmt: skip
    assert "not found" in capsys.readouterr().err
    assert main(["approvals", "approve", aid, "--approver", "alice", "--key", str(key),
                 *store]) == 0  # fmt: skip
    assert f"approval {aid}: approved" in capsys.readouterr().out
    assert main(["approvals", "show", aid, "--json", *store]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "approved"
    assert shown["decisions"][0]["approver"] == "alice"
    assert asyncio.run(_finish(db, run_id)) is RunStatus.COMPLETED
    assert SENT == [9]
