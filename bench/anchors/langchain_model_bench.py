"""LangChain anchor for the model-plane bench (runs inside ``bench/.venv-anchors``, where
``langchain-core`` comes with LangGraph). Prints one JSON object.

* chat_bare_us: ``FakeListChatModel.ainvoke`` (no I/O), µs per call.
* chat_all_wrappers_us: ``.with_retry(stop_after_attempt=3).with_fallbacks([backup])``, the
  resilience LangChain ships (it has no per-call timeout, circuit breaker or hedge wrappers, so
  tether's stack does more work per call than this one).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchlib as bl
from langchain_core.language_models.fake_chat_models import FakeListChatModel

CALLS = 2000


async def per_call_us(model: Any, calls: int = CALLS) -> float:
    for _ in range(50):
        await model.ainvoke("hello")
    t0 = time.perf_counter()
    for _ in range(calls):
        await model.ainvoke("hello")
    return (time.perf_counter() - t0) / calls * 1e6


def run_all(repeats: int) -> dict[str, Any]:
    def fake() -> FakeListChatModel:
        return FakeListChatModel(responses=["ok"])

    bare = statistics.median(asyncio.run(per_call_us(fake())) for _ in range(repeats))
    stacked = statistics.median(
        asyncio.run(per_call_us(fake().with_retry(stop_after_attempt=3).with_fallbacks([fake()])))
        for _ in range(repeats)
    )
    return {
        "system": "langchain",
        "versions": {"langchain-core": importlib.metadata.version("langchain-core")},
        "chat_bare_us": bl.rnd(bare),
        "chat_all_wrappers_us": bl.rnd(stacked),
        "wrapper_overhead_us": bl.rnd(stacked - bare),
        "notes": ["wrappers: retry + fallbacks only (no timeout, breaker or hedge in LangChain)"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    bl.emit(run_all(ap.parse_args().repeats))


if __name__ == "__main__":
    main()
