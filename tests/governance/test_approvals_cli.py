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
from tether.governance import ApprovalRule, Approvals, StoreAuditLog
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
    said = capsys.readouterr()
    assert f"approval {aid}: approved" in said.out
    # the CLI records the answer and leaves the run to a worker: it says so
    assert f"run {run_id} is queued" in said.err and "tether worker" in said.err
    # the commands it suggests look in the store this one was told (--store)
    assert f"`tether runs show {run_id} --store sqlite:///{db}`" in " ".join(said.err.split())
    assert main(["approvals", "show", aid, "--json", *store]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "approved"
    assert shown["decisions"][0]["approver"] == "alice"
    assert asyncio.run(_finish(db, run_id)) is RunStatus.COMPLETED
    assert SENT == [9]


async def _resume(db: Path, approval_id: str, run_id: str) -> RunStatus:
    async with Runtime(SqliteStore(db), workflows=[WF], recover=False) as rt:
        assert await Approvals(rt).resume(approval_id)
        return (await rt.wait(run_id, timeout=60)).status


async def _audit(db: Path, run_id: str) -> tuple[list[tuple[str, dict[str, object]]], bool]:
    store = SqliteStore(db)
    await store.setup()
    try:
        log = StoreAuditLog(store)
        page = await log.records(run_id=run_id, limit=1000)
        ok = (await log.verify()).ok
        return [(r.kind, r.data) for r in page.records], ok
    finally:
        await store.close()


def test_a_decision_made_without_the_workflow_is_audited_by_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tether approvals approve`` without ``--app`` cannot reach the workflow's audit sink:
    the decision is marked unaudited and the run audits it (once) before it uses the answer."""
    SENT.clear()
    db = tmp_path / "t.db"
    store = ["--store", f"sqlite:///{db}"]  # no --app
    run_id = asyncio.run(_park(db))
    key = tmp_path / "bob.pem"
    assert main(["approvals", "keygen", "--out", str(key)]) == 0
    assert main(["approvals", "approver", "add", "bob", "--role", "finance",
                 "--public-key", f"{key}.pub", *store]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["approvals", "list", "--status", "pending", "--json", *store]) == 0
    (req,) = json.loads(capsys.readouterr().out)
    assert main(["approvals", "approve", req["approval_id"], "--approver", "bob", "--key",
                 str(key), *store]) == 0  # fmt: skip
    kinds = [k for k, _ in asyncio.run(_audit(db, run_id))[0]]
    assert "approval.approve" not in kinds  # the CLI could not audit it
    assert "was not resumed" in capsys.readouterr().err  # and says how to continue it
    assert asyncio.run(_resume(db, req["approval_id"], run_id)) is RunStatus.COMPLETED
    records, ok = asyncio.run(_audit(db, run_id))
    kinds = [k for k, _ in records]
    assert kinds.count("approval.approve") == 1
    assert kinds.index("approval.approve") < kinds.index("approval.used")
    approve = dict(records)["approval.approve"]
    assert approve["approver"] == "bob" and approve["recorded_by_run"] is True
    assert ok and SENT == [9]


async def _park_for(db: Path, tenant: str) -> str:
    async with Runtime(SqliteStore(db), workflows=[WF], recover=False) as rt:
        res = await rt.run(WF, {"amount": 7}, tenant=tenant)
        assert res.status is RunStatus.ESCALATED
        return res.run_id


def test_approvers_are_registered_listed_and_refused_per_tenant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``approver add --tenant`` registers an approver of that tenant; ``approver list`` and
    ``list`` filter by ``--tenant``; another tenant's approver is refused with the command that
    registers one for the run's tenant."""
    SENT.clear()
    db = tmp_path / "t.db"
    store = ["--store", f"sqlite:///{db}", "--app", "tests.governance.test_approvals_cli:WF"]
    acme_run = asyncio.run(_park_for(db, "acme"))
    asyncio.run(_park_for(db, "globex"))
    key = tmp_path / "alice.pem"
    assert main(["approvals", "keygen", "--out", str(key)]) == 0
    pub = f"{key}.pub"
    assert main(["approvals", "approver", "add", "alice", "--role", "finance",
                 "--public-key", pub, "--tenant", "globex", *store]) == 0  # fmt: skip
    assert "registered for tenant globex" in capsys.readouterr().out
    assert main(["approvals", "list", "--tenant", "acme", "--json", *store]) == 0
    (req,) = json.loads(capsys.readouterr().out)
    assert req["run_id"] == acme_run
    # globex's alice may not decide acme's request: nothing recorded, the fix is named
    assert main(["approvals", "approve", req["approval_id"], "--approver", "alice", "--key",
                 str(key), *store]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "tenant 'acme'" in err and "approver add ID" in err and "--tenant acme" in err
    assert main(["approvals", "approver", "add", "alice", "--role", "finance",
                 "--public-key", pub, "--tenant", "acme", *store]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["approvals", "approver", "list", "--json", *store]) == 0
    listed = sorted((a["approver"], a["tenant"]) for a in json.loads(capsys.readouterr().out))
    assert listed == [("alice", "acme"), ("alice", "globex")]
    assert main(["approvals", "approver", "list", "--tenant", "acme", "--json", *store]) == 0
    assert [a["tenant"] for a in json.loads(capsys.readouterr().out)] == ["acme"]
    assert main(["approvals", "approve", req["approval_id"], "--approver", "alice", "--key",
                 str(key), *store]) == 0  # fmt: skip
    assert f"approval {req['approval_id']}: approved" in capsys.readouterr().out
