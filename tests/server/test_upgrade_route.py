"""``POST /v1/runs/{id}/upgrade`` and ``Client.upgrade``: a server running the new shape of a
workflow moves a run started under the old one, after checking it can continue it; its
embedded worker then finishes it. Real uvicorn, real HTTP, SQLite."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.graph.upgrade_app import v1, v4
from tests.server.live import ServerThread
from tether import RunStatus, Runtime, WorkflowVersionError
from tether.cli.main import main
from tether.client import Client
from tether.graph.version import VERSION_KEY
from tether.server.app import create_app
from tether.server.keys import create_key
from tether.server.settings import ServerSettings

DEADLINE = 60.0


async def _seed(db: Path) -> tuple[str, str]:
    async with Runtime(f"sqlite:///{db}", workflows=[v1], recover=False) as old:
        plain = await old.submit(v1, {})
        noted = await old.submit(v1, {"note": "fragile"})  # v4's state has no note field
    return plain.run_id, noted.run_id


def test_a_server_of_the_new_code_upgrades_a_run_and_finishes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    plain, noted = asyncio.run(_seed(db))
    settings = ServerSettings(store=f"sqlite:///{db}", workflows=[v4], embedded_workers=2)
    with ServerThread(create_app(settings)) as port, Client(f"http://127.0.0.1:{port}") as c:
        checked = c.upgrade(plain, dry_run=True)
        assert (checked.changed, checked.dry_run, checked.from_version, checked.to_version) == (
            False,
            True,
            v1.version,
            v4.version,
        )
        assert c.get(plain).status == "PLANNED"  # nothing moved: the worker refuses it still

        done = c.upgrade(plain)
        assert done.changed and done.workflow == "shipping"
        end = time.monotonic() + DEADLINE
        while (run := c.get(plain)).status != "COMPLETED":
            assert time.monotonic() < end, run.status
            time.sleep(0.05)
        assert run.state is not None and run.state["log"] == ["pack", "label", "ship"]

        with pytest.raises(WorkflowVersionError, match="its state holds note"):
            c.upgrade(noted)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            refused = http.post(f"/v1/runs/{noted}/upgrade", json={})
            assert refused.status_code == 409
            assert refused.json()["type"].endswith("/workflow-version")
            assert http.post("/v1/runs/nope/upgrade", json={}).status_code == 404
            bad = http.post(f"/v1/runs/{noted}/upgrade", json={"dry_run": "maybe"})
            assert bad.status_code == 422
        assert c.get(noted).status == "PLANNED"

        # the CLI through the server: each refused run is reported, exit 1
        url = f"http://127.0.0.1:{port}"
        assert main(["--json", "runs", "upgrade", noted, plain, "--server", url]) == 1
        out = json.loads(capsys.readouterr().out)
        assert out["upgraded"] == []
        why = dict((r["run_id"], r["error"]) for r in out["refused"])
        assert "its state holds note" in why[noted] and "COMPLETED" in why[plain]
        # --workflow through the server: the unfinished runs it lists (the finished one is not)
        assert main(["--json", "runs", "upgrade", "--workflow", "shipping", "--server", url]) == 1
        out = json.loads(capsys.readouterr().out)
        assert out["upgraded"] == [] and [r["run_id"] for r in out["refused"]] == [noted]
        assert main(["runs", "upgrade", "--workflow", "billing", "--server", url]) == 2
        assert "runs no workflow 'billing'" in capsys.readouterr().err


async def _keys(db: Path) -> tuple[str, str]:
    async with Runtime(f"sqlite:///{db}", recover=False) as rt:
        _, submit = await create_key(rt.store, "acme", ["read", "submit"], "app")
        _, admin = await create_key(rt.store, "acme", ["admin"], "ops")
    return submit, admin


def test_upgrading_needs_the_admin_scope(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    submit, admin = asyncio.run(_keys(db))
    settings = ServerSettings(store=f"sqlite:///{db}", workflows=[v4], embedded_workers=0)
    with ServerThread(create_app(settings)) as port:
        url = f"http://127.0.0.1:{port}"
        with Client(url, api_key=submit) as app:
            run_id = app.submit("shipping", {}).run_id
            with pytest.raises(Exception, match="scope") as refused:
                app.upgrade(run_id)
            assert getattr(refused.value, "status", None) == 403
        with Client(url, api_key=admin) as ops:
            same = ops.upgrade(run_id)  # submitted under the registered version already
            assert not same.changed and same.status == RunStatus.PLANNED.value


async def _tenants(db: Path) -> dict[str, list[str]]:
    async with Runtime(f"sqlite:///{db}", workflows=[v1], recover=False) as old:
        out: dict[str, list[str]] = {"acme": [], "other": []}
        for tenant in out:
            for _ in range(3):
                out[tenant].append((await old.submit(v1, {}, tenant=tenant)).run_id)
        _, admin = await create_key(old.store, "acme", ["admin"], "ops")  # admin reads too
    out["key"] = [admin]
    return out


def test_a_workflows_runs_are_upgraded_through_the_server_for_the_keys_tenant_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    seeded = asyncio.run(_tenants(db))
    (admin,) = seeded["key"]
    settings = ServerSettings(store=f"sqlite:///{db}", workflows=[v4], embedded_workers=0)
    with ServerThread(create_app(settings)) as port:
        url = f"http://127.0.0.1:{port}"
        cli = ["--json", "runs", "upgrade", "--workflow", "shipping", "--server", url]
        cli += ["--api-key", admin]
        assert main([*cli, "--dry-run"]) == 0
        checked = json.loads(capsys.readouterr().out)
        assert checked["dry_run"] and checked["refused"] == []
        assert sorted(u["run_id"] for u in checked["upgraded"]) == sorted(seeded["acme"])
        assert not any(u["changed"] for u in checked["upgraded"])

        assert main(cli) == 0
        moved = json.loads(capsys.readouterr().out)["upgraded"]
        assert sorted(u["run_id"] for u in moved) == sorted(seeded["acme"])
        assert all(u["changed"] and u["to_version"] == v4.version for u in moved)
        assert main(cli) == 0  # again: nothing left to move
        assert json.loads(capsys.readouterr().out)["upgraded"] == []

    async def versions() -> dict[str, str]:
        async with Runtime(f"sqlite:///{db}", recover=False) as rt:
            ids = seeded["acme"] + seeded["other"]
            return {i: (await rt.store.get_run(i)).metadata[VERSION_KEY] for i in ids}

    got = asyncio.run(versions())
    assert {got[i] for i in seeded["acme"]} == {v4.version}
    assert {got[i] for i in seeded["other"]} == {v1.version}  # another tenant's: untouched
