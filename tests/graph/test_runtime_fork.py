"""``Runtime.fork``: what it refuses up front, and a fork of a run of an older version of its
workflow (the way ``tether runs upgrade`` points to when a run cannot move), on a SQLite file
and on PostgreSQL with runtimes of the old and the new code standing for a deploy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.graph.upgrade_app import v1, v3, v4, v5
from tether import InvalidInputError, RunStatus, Runtime, WorkflowVersionError
from tether.store.protocol import RunStore


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"max_steps": -5}, "max_steps must be an int >= 1, got -5"),
        ({"max_steps": 0}, "max_steps must be an int >= 1, got 0"),
        ({"max_steps": "5"}, "max_steps must be an int >= 1"),
        ({"new_run_id": "a\x00b"}, "new_run_id=.* holds a NUL"),
        ({"new_run_id": "a\udc80"}, "new_run_id"),
        ({"actor": "ops\x00"}, "actor=.* holds a NUL"),
        ({"patch": []}, "a fork patch must be a mapping of state fields, got list"),
        ({"step": 1.5}, "step must be a whole number"),
    ],
)
async def test_bad_arguments_are_refused_before_anything_is_written(
    rt: Runtime, kwargs: dict[str, Any], says: str
) -> None:
    # a negative max_steps made a fork that tripped its step limit at once, "5" was a
    # TypeError, a NUL in the new run id a driver DataError on PostgreSQL, a surrogate a
    # UnicodeEncodeError, an empty list a patch, and step 1.5 a StepNotFoundError
    parent = await rt.run(v1, {})
    step = kwargs.pop("step", 1)
    with pytest.raises(InvalidInputError, match=says):
        await rt.fork(parent.run_id, step, **kwargs)
    assert [r.run_id for r in await rt.list_runs()] == [parent.run_id]


async def test_a_fork_of_an_older_version_that_cannot_take_up_the_step_is_refused(
    shared_store: Callable[[], RunStore],
) -> None:
    async with Runtime(shared_store(), workflows=[v1], recover=False) as old:
        parent = await old.run(v1, {"ask": True})  # packed, asks at ship
    assert parent.status is RunStatus.ESCALATED
    async with Runtime(shared_store(), workflows=[v3], recover=False) as new:
        # step 0's next node is pack, which v3 lacks: this was a bare KeyError('pack')
        with pytest.raises(WorkflowVersionError, match="runs pack, a node the new version lacks"):
            await new.fork(parent.run_id, 0)
        assert [r.run_id for r in await new.list_runs()] == [parent.run_id]
        fork = await new.fork(parent.run_id, 1)  # after pack: v3's ship takes it up
        assert (await fork.wait()).status is RunStatus.ESCALATED
        res = await new.resume(fork.run_id, "ups")
        assert res.status is RunStatus.COMPLETED and res.state["log"] == ["pack", "ship:ups"]


async def test_a_fork_leaves_behind_fields_the_new_version_lacks(
    shared_store: Callable[[], RunStore],
) -> None:
    async with Runtime(shared_store(), workflows=[v1], recover=False) as old:
        parent = await old.run(v1, {"note": "fragile", "ask": True})
    async with Runtime(shared_store(), workflows=[v4], recover=False) as new:
        fork = await new.fork(parent.run_id, 1)
        assert (await fork.wait()).status is RunStatus.ESCALATED
        assert await new.get_state(fork.run_id, 1) == {"log": ["pack"], "ask": True}
        rec = await new.get_run(fork.run_id)
        assert rec.metadata["fork"]["left_behind"] == ["note"]
        res = await new.resume(fork.run_id, "ups")
        assert res.status is RunStatus.COMPLETED and "note" not in res.state
        assert (await new.get_state(parent.run_id))["note"] == "fragile"  # the parent keeps it


async def test_a_value_the_new_field_type_does_not_fit_must_be_patched(
    shared_store: Callable[[], RunStore],
) -> None:
    async with Runtime(shared_store(), workflows=[v1], recover=False) as old:
        parent = await old.run(v1, {"note": "fragile", "ask": True})
    async with Runtime(shared_store(), workflows=[v5], recover=False) as new:
        with pytest.raises(InvalidInputError, match=r"'note' = 'fragile'.*patch that sets 'note'"):
            await new.fork(parent.run_id, 1)  # the fork started with text in an int field
        fork = await new.fork(parent.run_id, 1, {"note": 3})
        assert (await fork.wait()).status is RunStatus.ESCALATED
        res = await new.resume(fork.run_id, "ups")
        assert res.status is RunStatus.COMPLETED
        assert res.state == {"log": ["pack", "ship:ups"], "note": 3, "ask": True}  # next: ship
