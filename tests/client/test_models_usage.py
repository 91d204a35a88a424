"""A listed run carries its usage: the client's ``Run`` reads it, and adds it up."""

from __future__ import annotations

from tether.client.models import Run


def test_a_list_item_carries_its_usage() -> None:
    item = {
        "run_id": "r1",
        "workflow": "w",
        "status": "COMPLETED",
        "usage": {
            "input_tokens": 120,
            "output_tokens": 30,
            "cost": 0.25,
            "model_calls": 2,
            "tool_calls": 1,
        },
    }
    run = Run.from_json(item)
    assert run.usage["model_calls"] == 2 and run.usage["tool_calls"] == 1
    assert (run.tokens, run.cost) == (150, 0.25)
    assert run.state is None  # a summary: no state


def test_no_usage_reads_as_zero() -> None:
    run = Run.from_json({"run_id": "r1", "workflow": "w", "status": "RECEIVED", "usage": None})
    assert (run.tokens, run.cost, run.usage) == (0, 0.0, {})
