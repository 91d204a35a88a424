"""Moving unfinished runs to the workflow version registered now (``Runtime.upgrade``,
``upgrade_all``, ``tether runs upgrade``), on a SQLite file and on PostgreSQL, with runtimes of
the old and the new code on one store standing for processes before and after a deploy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.graph.upgrade_app import FAILING, v1, v2, v3, v4, v5
from tether import RunStateError, RunStatus, Runtime, WorkflowVersionError
from tether.cli.main import main
from tether.graph import runtime_claims
from tether.graph.upgrade import upgrade_blockers
from tether.graph.version import VERSION_KEY
from tether.store.protocol import RunStore
from tether.store.types import Checkpoint

GUARD = 60.0


async def _until(what: str, check: Callable[[], Any]) -> None:
    async def loop() -> None:
        while not check():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(loop(), GUARD)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def _versions(store: RunStore, run_id: str) -> list[dict[str, Any]]:
    return [e.data for e in await store.list_events(run_id) if e.type == "workflow_version_changed"]


async def test_a_queued_run_refused_by_the_new_code_moves_and_finishes_there(
    shared_store: Callable[[], RunStore],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(runtime_claims, "REFUSED_RECHECK", 0.2)
    async with Runtime(shared_store(), workflows=[v1], recover=False) as old:
        handle = await old.submit(v1, {"note": "fragile"})
    async with (
        Runtime(shared_store(), workflows=[v2], recover=True, poll_interval=0.05) as worker,
        Runtime(shared_store(), workflows=[v2], recover=False) as ops,
    ):
        await _until("the new code to refuse the run", lambda: handle.run_id in worker._refused)
        first = worker._refused[handle.run_id]
        await _until("a second look", lambda: worker._refused[handle.run_id] != first)
        said = [r for r in caplog.records if "left for another runtime" in r.getMessage()]
        assert [r.levelname for r in said] == ["WARNING"]  # once, not at every look
        run = await ops.get_run(handle.run_id)
        assert run.status is RunStatus.PLANNED and run.metadata[VERSION_KEY] == v1.version

        checked = await ops.upgrade(handle.run_id, dry_run=True)
        assert (checked.from_version, checked.to_version, checked.changed) == (
            v1.version,
            v2.version,
            False,
        )
        assert (await ops.get_run(handle.run_id)).metadata[VERSION_KEY] == v1.version

        done = await ops.upgrade(handle.run_id, actor="ops@example.com")
        assert done.changed and done.status is RunStatus.PLANNED
        res = await ops.wait(handle.run_id, timeout=GUARD)  # the worker looks again, runs it
        assert res.status is RunStatus.COMPLETED
        assert res.state["log"] == ["pack", "label", "ship"]  # the new shape
        assert res.record.metadata[VERSION_KEY] == v2.version
        assert await _versions(ops.store, handle.run_id) == [
            {"from": v1.version, "to": v2.version, "actor": "ops@example.com", "reason": "upgrade"}
        ]
        with pytest.raises(RunStateError, match="COMPLETED"):
            await ops.upgrade(handle.run_id)


async def test_an_escalated_run_moves_and_its_answer_is_taken_by_the_new_code(
    shared_store: Callable[[], RunStore],
) -> None:
    async with Runtime(shared_store(), workflows=[v1], recover=False) as old:
        res = await old.run(v1, {"ask": True})
    assert res.status is RunStatus.ESCALATED
    async with Runtime(shared_store(), workflows=[v2], recover=False) as new:
        with pytest.raises(WorkflowVersionError):
            await new.resume(res.run_id, "ups")  # refused, as before
        assert (await new.upgrade(res.run_id)).changed
        out = await new.resume(res.run_id, "ups")
        assert out.status is RunStatus.COMPLETED
        assert out.state["log"] == ["pack", "ship:ups"]  # it had packed; asked at ship


async def test_a_failed_run_moves_and_its_retry_runs_the_new_shape(
    shared_store: Callable[[], RunStore],
) -> None:
    FAILING.add("pack")
    try:
        async with Runtime(shared_store(), workflows=[v1], recover=False) as old:
            failed = await old.run(v1, {})
    finally:
        FAILING.discard("pack")
    assert failed.status is RunStatus.FAILED
    async with Runtime(shared_store(), workflows=[v2], recover=False) as new:
        moved, _ = await new.upgrade_all("shipping")
        assert moved == []  # a bulk upgrade leaves FAILED runs alone
        assert (await new.upgrade(failed.run_id)).changed  # by id: a retry will continue it
        res = await new.resume(failed.run_id)
        assert res.status is RunStatus.COMPLETED
        assert res.state["log"] == ["pack", "label", "ship"]


async def test_a_run_the_new_shape_cannot_continue_is_left_as_it_was(
    shared_store: Callable[[], RunStore],
) -> None:
    async with Runtime(shared_store(), workflows=[v1], recover=False) as old:
        queued = await old.submit(v1, {})
        noted = await old.submit(v1, {"note": "fragile"})
        bare = await old.submit(v1, {})
    async with Runtime(shared_store(), workflows=[v3], recover=False) as new:
        with pytest.raises(WorkflowVersionError, match="runs pack, a node the new version lacks"):
            await new.upgrade(queued.run_id)
        run = await new.get_run(queued.run_id)
        assert run.metadata[VERSION_KEY] == v1.version and run.lease_token == 0
        assert await _versions(new.store, queued.run_id) == []
    async with Runtime(shared_store(), workflows=[v4], recover=False) as lean:
        with pytest.raises(WorkflowVersionError, match="its state holds note"):
            await lean.upgrade(noted.run_id)
        assert (await lean.upgrade(bare.run_id)).changed  # no note: v4 can carry it on
        moved, refused = await lean.upgrade_all("shipping", dry_run=True)
        assert [u.run_id for u in moved] == [queued.run_id]  # v4 has pack
        assert [r for r, _ in refused] == [noted.run_id]


async def test_a_run_executing_under_a_live_lease_is_left_to_its_worker(
    shared_store: Callable[[], RunStore],
) -> None:
    async with Runtime(shared_store(), workflows=[v1], recover=False) as old:
        handle = await old.submit(v1, {})
        lease = await old.store.acquire_lease(handle.run_id, "old-worker", 300.0)
        assert lease is not None
        async with Runtime(shared_store(), workflows=[v2], recover=False) as new:
            with pytest.raises(RunStateError, match="live lease of old-worker"):
                await new.upgrade(handle.run_id)
            assert (await new.get_run(handle.run_id)).metadata[VERSION_KEY] == v1.version
        await old.store.release_lease(handle.run_id, lease.token)


async def test_upgrade_all_moves_every_run_it_can_and_says_why_not_for_the_rest(
    shared_store: Callable[[], RunStore],
) -> None:
    async with Runtime(shared_store(), workflows=[v1], recover=False) as old:
        queued = [await old.submit(v1, {}) for _ in range(3)]
        asked = await old.run(v1, {"ask": True})
        finished = await old.run(v1, {})
    async with Runtime(shared_store(), workflows=[v2], recover=False) as new:
        moved, refused = await new.upgrade_all("shipping", actor="deploy-42")
        assert sorted(u.run_id for u in moved) == sorted(
            [asked.run_id, *(h.run_id for h in queued)]
        )
        assert refused == []
        assert (await new.get_run(finished.run_id)).metadata[VERSION_KEY] == v1.version
        again, _ = await new.upgrade_all("shipping")
        assert again == []  # idempotent
        with pytest.raises(Exception, match="no workflow 'billing' is registered"):
            await new.upgrade_all("billing")


def test_blockers_name_a_join_the_new_version_lacks() -> None:
    cp = Checkpoint("r", 2, [], [{"id": "3:ship:0", "node": "ship"}], barriers={"a+b>c": ["a"]})
    assert upgrade_blockers(v2, cp, {"log": []}) == [
        "it is half-way through join a+b>c, which the new version lacks"
    ]
    assert upgrade_blockers(v2, Checkpoint("r", 2, [], []), {"log": [], "note": "x"}) == []


async def test_a_run_whose_state_no_longer_fits_a_field_type_is_not_moved(
    shared_store: Callable[[], RunStore],
) -> None:
    # the thread of such a run is refused up front (InvalidInputError); an upgrade checked
    # only the fields' names, so a run holding note='fragile' moved to a version where note is
    # an int, and the new nodes were handed text where they expect a number
    async with Runtime(shared_store(), workflows=[v1], recover=False) as old:
        noted = await old.run(v1, {"note": "fragile", "ask": True})
        bare = await old.run(v1, {"ask": True})
    async with Runtime(shared_store(), workflows=[v5], recover=False) as new:
        with pytest.raises(WorkflowVersionError, match="holds 'note' = 'fragile', which does not"):
            await new.upgrade(noted.run_id)
        assert (await new.get_run(noted.run_id)).metadata[VERSION_KEY] == v1.version
        assert (await new.upgrade(bare.run_id)).changed


def test_tether_runs_upgrade(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "runs.db"

    async def seed() -> tuple[str, str]:
        async with Runtime(f"sqlite:///{db}", workflows=[v1], recover=False) as old:
            one = await old.submit(v1, {})
            two = await old.submit(v1, {})
            return one.run_id, two.run_id

    one, two = asyncio.run(seed())
    store = ["--store", f"sqlite:///{db}"]
    app = ["--app", "tests.graph.upgrade_app:new_code"]
    assert main(["runs", "upgrade", one, *store]) == 2  # no --app: the new code is needed
    assert "--app" in capsys.readouterr().err
    assert main(["runs", "upgrade", *store, *app]) == 2  # neither ids nor --workflow
    capsys.readouterr()

    assert main(["--json", "runs", "upgrade", one, "--dry-run", *store, *app]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["dry_run"] and view["upgraded"][0]["changed"] is False

    assert main(["runs", "upgrade", one, "--no-color", *store, *app]) == 0
    assert f"upgraded {one}" in capsys.readouterr().out

    assert main(["--json", "runs", "upgrade", "--workflow", "shipping", *store, *app]) == 0
    view = json.loads(capsys.readouterr().out)
    assert [u["run_id"] for u in view["upgraded"]] == [two] and view["refused"] == []
    assert view["upgraded"][0]["to_version"] == v2.version

    assert main(["runs", "upgrade", "nope", *store, *app]) == 1  # one run refused: exit 1
    assert "nope" in capsys.readouterr().err
