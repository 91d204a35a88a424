"""``run_head.merge`` rebuilds a run from its writer's copy and the head columns a step commit
returns: every field of the copy, the head's small columns over it."""

from __future__ import annotations

from dataclasses import fields, replace

from tether.core.lifecycle import RunStatus
from tether.store import run_head
from tether.store.types import RunRecord


def test_merge_keeps_every_field_of_the_base_and_takes_the_head() -> None:
    base = RunRecord(
        "r1", "wf", RunStatus.EXECUTING, {"big": "input"}, step=4, result=None,
        error={"type": "E"}, escalation=None, parent_run_id="p", parent_step=2,
        idempotency_key="k", input_hash="h", owner="w1", lease_token=3, lease_expires_at=9.0,
        created_at=1.0, updated_at=2.0, event_seq=7, metadata={"m": 1}, thread_id="t",
        queue="q", priority=5, tenant="acme", available_at=0.5,
    )  # fmt: skip
    assert all(f.init for f in fields(RunRecord))  # merge builds the record positionally
    head = ("VALIDATING", 5, "w1", 3, 19.0, 12.0, 9, 0.0)
    merged = run_head.merge(base, head)
    assert merged == replace(
        base, status=RunStatus.VALIDATING, step=5, lease_expires_at=19.0, updated_at=12.0,
        event_seq=9, available_at=0.0,
    )  # fmt: skip
    assert merged is not base and merged.input is base.input  # shared, not copied
    assert base.step == 4 and base.status is RunStatus.EXECUTING  # the base is left alone
