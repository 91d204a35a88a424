"""What a run spent on models, summed from its ``model_call`` events (one per live call;
replayed calls put none, so nothing is counted twice)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ModelUsage:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    unpriced_calls: int = 0
    """Calls whose model has no price in the table (their cost is not in ``cost``)."""
    estimated_calls: int = 0
    cached_calls: int = 0


@dataclass(slots=True)
class RunUsage(ModelUsage):
    by_model: dict[str, ModelUsage] = field(default_factory=dict)

    def add(self, data: Mapping[str, Any]) -> None:
        model = str(data.get("model") or "?")
        for target in (self, self.by_model.setdefault(model, ModelUsage())):
            target.calls += 1
            target.input_tokens += int(data.get("input_tokens") or 0)
            target.output_tokens += int(data.get("output_tokens") or 0)
            cost = data.get("cost")
            if isinstance(cost, int | float):
                target.cost += float(cost)
            else:
                target.unpriced_calls += 1
            target.estimated_calls += bool(data.get("estimated"))
            target.cached_calls += bool((data.get("cache") or {}).get("hit"))


def run_usage(events: Iterable[Any]) -> RunUsage:
    """Sum the ``model_call`` events of a run (``Event`` objects or dicts with type/data)."""
    usage = RunUsage()
    for ev in events:
        kind = ev.get("type") if isinstance(ev, Mapping) else getattr(ev, "type", None)
        if kind != "model_call":
            continue
        data = ev.get("data") if isinstance(ev, Mapping) else getattr(ev, "data", None)
        if isinstance(data, Mapping):
            usage.add(data)
    return usage
