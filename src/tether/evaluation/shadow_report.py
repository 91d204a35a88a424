"""Parity of a shadow model with the live one, per workflow, from the shadow log: the mean
distance of their decisions, and a verdict: ``halt rollout`` when it is above the threshold
(default 0.1), ``proceed`` otherwise (``no data`` before any call was shadowed). A shadow
call that failed counts in the verdict as a full disagreement (distance 1): a candidate that
fails is not one to roll out, however well the calls it did answer matched."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tether.core.errors import InvalidInputError
from tether.evaluation.drift_runs import eval_log
from tether.store.protocol import RunStore

DEFAULT_HALT_DISTANCE = 0.1
HALT, PROCEED, NO_DATA = "halt rollout", "proceed", "no data"


@dataclass(frozen=True, slots=True)
class ParityReport:
    workflow: str
    threshold: float
    samples: int
    """Shadowed calls (failed ones included)."""
    compared: int
    failed: int
    mean_distance: float | None
    p95_distance: float | None
    max_distance: float | None
    above_threshold: int
    """Compared calls whose own distance is above the threshold."""
    tool_agreement: float | None
    """Share of compared calls where both chose the same tools."""

    @property
    def parity(self) -> float | None:
        return None if self.mean_distance is None else 1.0 - self.mean_distance

    @property
    def verdict(self) -> str:
        judged = self.compared + self.failed
        if not judged:
            return NO_DATA
        disagreement = (self.mean_distance or 0.0) * self.compared + self.failed
        return HALT if disagreement / judged > self.threshold else PROCEED

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "parity": self.parity, "verdict": self.verdict}


async def shadow_report(
    store: RunStore,
    workflow: str,
    *,
    threshold: float = DEFAULT_HALT_DISTANCE,
    since: float | None = None,
) -> ParityReport:
    """The parity of the shadow log of ``workflow`` (calls logged since ``since``), summed by
    the store (one aggregate and one ordered read for the p95 on SQL backends)."""
    if not 0.0 <= threshold <= 1.0:
        raise InvalidInputError(f"the halt threshold is a distance in [0, 1], got {threshold}")
    t = await eval_log(store).shadow_totals(workflow, threshold=threshold, since=since)
    n = t.compared
    return ParityReport(
        workflow=workflow,
        threshold=threshold,
        samples=t.samples,
        compared=n,
        failed=t.failed,
        mean_distance=t.distance_sum / n if n else None,
        p95_distance=t.p95_distance,
        max_distance=t.max_distance if n else None,
        above_threshold=t.above,
        tool_agreement=(n - t.tool_mismatches) / n if n else None,
    )
