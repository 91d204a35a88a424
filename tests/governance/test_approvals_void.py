"""A pending request whose run has ended leaves the pending list: at once when the run is
cancelled (by a runtime, or by ``tether runs cancel`` in a process of its own), else the next
time requests are listed (Python, CLI and HTTP). Before, ``tether runs cancel`` left the run's
request pending, shown to approvers for a decision that would only be refused."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.governance.approvals_app import build
from tether import RunStatus, Runtime
from tether.graph import extensions
from tether.server.app import create_app
from tether.server.settings import ServerSettings
from tether.store.sqlite import SqliteStore

WF = build(name="refunds_void")
ROOT = Path(__file__).resolve().parents[2]


async def _park(db: Path) -> tuple[str, str]:
    async with Runtime(SqliteStore(db), workflows=[WF], recover=False) as rt:
        res = await rt.run(WF, {"amount": 9})
        assert res.status is RunStatus.ESCALATED
        return res.run_id, res.escalation["details"]["approval_id"]


async def _status(db: Path, approval_id: str) -> str:
    async with Runtime(SqliteStore(db), recover=False) as rt:
        return (await rt.approvals.get(approval_id)).status


def test_tether_runs_cancel_voids_the_runs_requests(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    run_id, approval_id = asyncio.run(_park(db))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tether.cli",
            "runs",
            "cancel",
            run_id,
            "--store",
            f"sqlite:///{db}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert asyncio.run(_status(db, approval_id)) == "void"


@pytest.fixture
def unhooked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A runtime in a process that never imported tether.governance: no cancel hook."""
    monkeypatch.setattr(extensions, "_ON_CANCEL", {})


async def test_listing_voids_requests_whose_run_ended(tmp_path: Path, unhooked: None) -> None:
    db = tmp_path / "t.db"
    run_id, approval_id = await _park(db)
    other_run, other_id = await _park(db)
    async with Runtime(SqliteStore(db), workflows=[WF], recover=False) as rt:
        await rt.cancel(run_id)
        assert (await rt.store.get_approval(approval_id)).status == "pending"  # type: ignore[attr-defined]
        pending = await rt.approvals.list(status="pending")
        assert [r.approval_id for r in pending] == [other_id]
        rec = await rt.approvals.get(approval_id)
        assert rec.status == "void" and rec.history[-1]["why"] == "the run is CANCELLED"
        every = {r.approval_id: r.status for r in await rt.approvals.list()}
        assert every == {approval_id: "void", other_id: "pending"}
        assert other_run != run_id


def test_the_http_pending_list_leaves_them_out(tmp_path: Path, unhooked: None) -> None:
    db = tmp_path / "t.db"
    run_id, approval_id = asyncio.run(_park(db))
    _, other_id = asyncio.run(_park(db))

    async def cancel() -> None:
        async with Runtime(SqliteStore(db), workflows=[WF], recover=False) as rt:
            await rt.cancel(run_id)

    asyncio.run(cancel())
    app = create_app(ServerSettings(store=f"sqlite:///{db}", workflows=[WF]))
    with TestClient(app) as client:
        pending = client.get("/v1/approvals", params={"status": "pending"}).json()["items"]
        assert [a["approval_id"] for a in pending] == [other_id]
        assert client.get(f"/v1/approvals/{approval_id}").json()["status"] == "void"
