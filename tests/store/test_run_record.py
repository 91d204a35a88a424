"""``RunRecord``'s copy (what every store hands out on each commit): every field, a distinct
object, and nothing written to the copy reaches the original."""

from __future__ import annotations

import copy
import dataclasses

from tether.core.lifecycle import RunStatus
from tether.store.types import RunRecord


def test_a_copy_carries_every_field_and_is_its_own_object() -> None:
    values = {
        f.name: f"v-{f.name}" for f in dataclasses.fields(RunRecord)
    }  # a distinct value per field, so a field copied into another's place shows
    values["status"] = RunStatus.ESCALATED
    run = RunRecord(**values)
    twin = copy.copy(run)
    assert twin == run and twin is not run
    assert [getattr(twin, f.name) for f in dataclasses.fields(RunRecord)] == list(values.values())
    twin.status = RunStatus.COMPLETED
    twin.step = 7
    assert run.status is RunStatus.ESCALATED and run.step == "v-step"
