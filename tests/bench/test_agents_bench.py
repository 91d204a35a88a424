"""bench/agents_bench.py on a small size, so that it cannot rot (no timing is asserted)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import agents_bench


async def test_the_bench_runs_and_reports_savings() -> None:
    args = argparse.Namespace(tools=3, tool_ms=0.0, children=[3], repeat=1)
    res = await agents_bench.bench(args)
    rv = res["rewoo_vs_react"]
    assert (rv["react"]["model_calls"], rv["rewoo"]["model_calls"]) == (5, 2)
    assert rv["rewoo"]["waves"] == 2 and rv["saved_tokens"] > 0
    assert res["fork_join"][0]["children"] == 3
    assert "fork-join of child runs" in agents_bench.table(res)
