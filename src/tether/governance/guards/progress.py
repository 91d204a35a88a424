"""The no-progress check: N steps in a row without a change to the state fields the workflow
declares as its progress trip the run.

It watches step boundaries (``GovernancePart.after_step``, called by the run loop before each
step's commit): a fingerprint of the progress fields (canonical JSON) and the step at which it
last changed are kept in the run's metadata, committed with the step that changed them, so the
count survives crashes and moves between workers. The trip commits the step it happened at with
the run parked ESCALATED (state and plan intact). A resume grants ``max_steps`` more steps from
there (``{"raise_limit": {"no_progress": n}}``: ``n`` more from now on, for this run).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tether.core import serde
from tether.core.errors import ConfigurationError, InvalidInputError
from tether.core.governor import StepView
from tether.governance.guards.base import raised_limit, run_limit, trip, tripped, with_limit
from tether.governance.scope import GovernancePart, RunScope
from tether.store.protocol import RunStore
from tether.store.types import RunRecord

GUARD = "no_progress"
PROGRESS_KEY = "loop_progress"
"""Run metadata: ``{"digest": <fingerprint of the progress fields>, "step": <last change>}``."""


class NoProgressGuard(GovernancePart):
    """Trip after ``max_steps`` steps in a row that left every field in ``fields`` unchanged."""

    def __init__(self, fields: Iterable[str], max_steps: int = 10) -> None:
        # a bare string is its letters as field names: fields never written, never changing,
        # so the guard would trip on every run that lasts max_steps steps
        self.fields = () if isinstance(fields, str) else tuple(fields)
        if not self.fields or not all(isinstance(f, str) and f for f in self.fields):
            raise ConfigurationError(
                "NoProgressGuard needs the names of the state fields that show progress, e.g. "
                f"NoProgressGuard(fields=['done', 'answer']); got {fields!r}"
            )
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ConfigurationError(
                f"NoProgressGuard: max_steps must be a whole number >= 1, got {max_steps!r}"
            )
        self.max_steps = max_steps

    def digest(self, state: Mapping[str, Any]) -> str:
        return serde.fingerprint({f: state.get(f) for f in self.fields})

    async def after_step(self, scope: RunScope, step: StepView) -> None:
        digest = self.digest(step.state)
        last = step.run.metadata.get(PROGRESS_KEY)
        if not isinstance(last, Mapping) or last.get("digest") != digest:
            if isinstance(last, Mapping) or any(f in step.written for f in self.fields):
                changed = step.step  # progress made in this step
            else:
                changed = step.step - 1  # first step seen: it did not touch the fields
            step.metadata[PROGRESS_KEY] = {"digest": digest, "step": changed}
            if changed == step.step:
                return
            last = step.metadata[PROGRESS_KEY]
        stalled = step.step - int(last.get("step", step.step))
        limit = int(run_limit(step.run, GUARD, self.max_steps))
        if stalled >= limit:
            await trip(
                scope,
                GUARD,
                f"loop guard 'no_progress' tripped: {stalled} steps in a row (steps "
                f"{step.step - stalled + 1}-{step.step}, last ran {', '.join(step.nodes)}) "
                f"changed none of the progress fields {list(self.fields)} (limit {limit}). "
                f"Resume the run to grant it {limit} more steps (or {{'raise_limit': "
                f"{{'no_progress': <steps>}}}} for another number), or cancel it",
                fields=list(self.fields),
                steps=stalled,
                limit=limit,
                step=step.step,
                digest=digest,
                nodes=list(step.nodes),
            )

    async def on_resume(
        self, store: RunStore, run: RunRecord, escalation: Mapping[str, Any], value: Any
    ) -> dict[str, Any] | None:
        details = tripped(escalation, GUARD)
        if details is None:
            return None
        limit = raised_limit(value, GUARD, example="20")
        # the count starts again at the step the run stopped at
        meta: dict[str, Any] = {
            PROGRESS_KEY: {"digest": details.get("digest"), "step": int(details.get("step", 0))}
        }
        if limit is None:
            return meta
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInputError(
                f"raise_limit 'no_progress' is a number of steps, a whole number >= 1, got "
                f"{limit!r}"
            )
        return {**meta, **with_limit(run, GUARD, limit)}
