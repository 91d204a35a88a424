"""What a run spent on models, summed from its ``model_call`` events (one per live call; a
replayed call puts one only when its own was lost with a step that never committed, so nothing
is counted twice)."""

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
    latency: float = 0.0
    """Seconds, summed over the calls (each from request to whole answer)."""
    max_latency: float = 0.0
    streamed_calls: int = 0
    """Calls with a time to first token (streamed ones that produced text)."""
    ttft: float = 0.0
    """Seconds to the first token, summed over ``streamed_calls``."""
    tpot_calls: int = 0
    tpot: float = 0.0
    """Seconds per output token after the first, summed over ``tpot_calls``."""

    @property
    def mean_latency(self) -> float | None:
        return self.latency / self.calls if self.calls else None

    @property
    def mean_ttft(self) -> float | None:
        return self.ttft / self.streamed_calls if self.streamed_calls else None

    @property
    def mean_tpot(self) -> float | None:
        return self.tpot / self.tpot_calls if self.tpot_calls else None


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
            latency = _seconds(data.get("latency"))
            if latency is not None:
                target.latency += latency
                target.max_latency = max(target.max_latency, latency)
            ttft = _seconds(data.get("ttft"))
            if ttft is not None:
                target.streamed_calls += 1
                target.ttft += ttft
            tpot = _seconds(data.get("tpot"))
            if tpot is not None:
                target.tpot_calls += 1
                target.tpot += tpot


def _seconds(value: Any) -> float | None:
    """A duration from an event; None when absent or not a finite, non-negative number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    return seconds if 0.0 <= seconds < float("inf") else None


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
