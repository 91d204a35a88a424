"""``tether runs show``'s model usage, from the store's per-model sums (``RunStore.model_usage``)
rather than from every event of the run read back and added up here."""

from __future__ import annotations

from tether.llm.usage import ModelUsage, RunUsage
from tether.store.usage import ModelCallTotals


def _fill(target: ModelUsage, t: ModelCallTotals) -> None:
    target.calls += t.calls
    target.input_tokens += t.input_tokens
    target.output_tokens += t.output_tokens
    target.cost += t.cost
    target.unpriced_calls += t.calls - t.priced_calls
    target.estimated_calls += t.estimated_calls
    target.cached_calls += t.cached_calls
    target.latency += t.latency
    target.max_latency = max(target.max_latency, t.max_latency)
    target.streamed_calls += t.ttft_calls
    target.ttft += t.ttft
    target.tpot_calls += t.tpot_calls
    target.tpot += t.tpot


def usage_from_totals(totals: list[ModelCallTotals]) -> RunUsage:
    """The ``RunUsage`` (totals and ``by_model``) of a run's per-model sums."""
    usage = RunUsage()
    for t in totals:
        _fill(usage, t)
        _fill(usage.by_model.setdefault(t.model, ModelUsage()), t)
    return usage
