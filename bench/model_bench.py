"""Model-plane bench (tether side): wrapper overhead, semantic-cache hits vs the local model,
local model throughput. Runs in the project venv and prints one JSON object.

* wrapper overhead: ``ScriptedModel`` (no I/O) called through ``Model.chat`` bare, and through
  the full resilience stack ``resilient(fake, timeout, retry, breaker, fallbacks=[fake2],
  hedge_after=10)`` (timeout, retries, provider breaker, hedge timer, fallback chain);
  µs per call, median of repeats of N calls, outside a run (no journal).
* journaled: the same bare call inside a durable SQLite run (intent + result in the effect
  journal), µs per call.
* cache: ``CachedModel(LocalModel)`` with MiniLM embeddings; the latency of a semantic hit (a
  paraphrase: embed + cosine search + copy) vs the latency of the local model answering (up to
  64 tokens).
* local model: SmolLM2-135M-Instruct Q4_1 on llama.cpp in process, streamed; output tokens/s,
  TTFT and TPOT (median of repeats).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl

from tether import START, Graph, Runtime
from tether.llm import ScriptedModel
from tether.llm.wrappers import ModelRetry, resilient

CALLS = 2000


async def per_call_us(model: Any, calls: int = CALLS) -> float:
    for _ in range(50):
        await model.chat("hello", journal=False)
    t0 = time.perf_counter()
    for _ in range(calls):
        await model.chat("hello", journal=False)
    return (time.perf_counter() - t0) / calls * 1e6


def wrapped(fake: ScriptedModel) -> Any:
    return resilient(
        fake,
        timeout=30.0,
        retry=ModelRetry(max_attempts=3),
        fallbacks=[ScriptedModel(["ok"], cycle=True, name="backup")],
        hedge_after=10.0,
    )


class S(TypedDict, total=False):
    n: int


async def journaled_us(calls: int = 500) -> float:
    fake = ScriptedModel(["ok"], cycle=True)

    async def ask(state: S) -> dict[str, Any]:
        for _ in range(calls):
            await fake.chat("hello")
        return {"n": calls}

    g = Graph(S, name="model_calls")
    g.add_node("ask", ask).add_edge(START, "ask")
    wf = g.compile()
    with tempfile.TemporaryDirectory() as d:
        async with Runtime(f"sqlite:///{d}/m.db", recover=False) as rt:
            t0 = time.perf_counter()
            await rt.run(wf, {})
            return (time.perf_counter() - t0) / calls * 1e6


async def local_and_cache(repeats: int) -> dict[str, Any]:
    from tether.llm.cache import CachedModel, SemanticCache
    from tether.llm.embeddings import MiniLMEmbedder
    from tether.llm.providers.local import LocalModel
    from tether.llm.request import build_request
    from tether.llm.types import ModelResponse

    local = LocalModel()
    await local.chat("warm up", max_tokens=4, journal=False)
    rates, ttfts, tpots, latencies = [], [], [], []
    for i in range(repeats):
        out = await local.chat(
            f"Write a short paragraph about rivers ({i}).",
            max_tokens=128,
            temperature=0.0,
            stream=True,
            journal=False,
        )
        gen = out.timing.latency - (out.timing.ttft or 0.0)
        rates.append((out.usage.output_tokens - 1) / gen if gen > 0 else 0.0)
        ttfts.append((out.timing.ttft or 0.0) * 1000)
        tpots.append((out.timing.tpot or 0.0) * 1000)
    for i in range(repeats):
        t0 = time.perf_counter()
        await local.chat(f"How do I reset my password? ({i})", max_tokens=64, journal=False)
        latencies.append((time.perf_counter() - t0) * 1000)
    # the cached answer is put in directly: a local answer cut at max_tokens is (rightly) never
    # stored, and the hit path is the same whoever wrote the entry
    cache = SemanticCache(MiniLMEmbedder(), threshold=0.85)
    cached = CachedModel(local, cache)
    question = build_request("How do I reset my password?", max_tokens=64)
    lookup = await cache.lookup(cached.name, question)
    answer = ModelResponse(text="Open Settings, then Security, then Reset password.")
    assert await cache.store(lookup, answer.model_copy(update={"model": local.name})) is None
    hits = []
    paraphrases = [  # each one new to the embedder, so every hit pays for its embedding
        "how can i reset my password",
        "I forgot my password, how do I reset it?",
        "what are the steps to reset my password",
        "reset password how?",
        "How would I go about resetting my password?",
    ]
    for text in paraphrases:
        t0 = time.perf_counter()
        out = await cached.chat(text, max_tokens=64, journal=False)
        hits.append((time.perf_counter() - t0) * 1000)
        assert out.metadata["cache"]["hit"], "the paraphrase must hit"
    return {
        "local_tokens_per_s": statistics.median(rates),
        "local_ttft_ms": statistics.median(ttfts),
        "local_tpot_ms": statistics.median(tpots),
        "local_call_ms_64_tokens": statistics.median(latencies),
        "cache_hit_ms": statistics.median(hits),
    }


def run_all(repeats: int) -> dict[str, Any]:
    r = bl.rnd
    bare = statistics.median(
        asyncio.run(per_call_us(ScriptedModel(["ok"], cycle=True))) for _ in range(repeats)
    )
    stacked = statistics.median(
        asyncio.run(per_call_us(wrapped(ScriptedModel(["ok"], cycle=True)))) for _ in range(repeats)
    )
    journaled = statistics.median(asyncio.run(journaled_us()) for _ in range(repeats))
    out: dict[str, Any] = {
        "system": "tether",
        "chat_bare_us": r(bare),
        "chat_all_wrappers_us": r(stacked),
        "wrapper_overhead_us": r(stacked - bare),
        "chat_journaled_sqlite_us": r(journaled),
        "notes": [],
    }
    try:
        out.update({k: r(v) for k, v in asyncio.run(local_and_cache(repeats)).items()})
    except Exception as exc:  # a measure that fails is null plus a note, never a number
        out["notes"].append(bl.error_note("local model / cache", exc))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    bl.emit(run_all(ap.parse_args().repeats))


if __name__ == "__main__":
    main()
