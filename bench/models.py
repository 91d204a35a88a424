"""The model-plane part of ``bench/run.py``: tether's ``model_bench.py`` beside LangChain's
wrappers (``anchors/langchain_model_bench.py``, anchors venv), one table."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent

RunScript = Callable[[Path | str, Path, int], tuple[dict[str, Any] | None, str]]

ROWS = (
    ("chat call, bare, fake model (µs)", "chat_bare_us"),
    ("chat call, all resilience wrappers (µs)", "chat_all_wrappers_us"),
    ("wrapper overhead per call (µs)", "wrapper_overhead_us"),
    ("chat call journaled in a SQLite run (µs)", "chat_journaled_sqlite_us"),
    ("local model: output tokens/s", "local_tokens_per_s"),
    ("local model: TTFT (ms)", "local_ttft_ms"),
    ("local model: TPOT (ms)", "local_tpot_ms"),
    ("local model call, 64 tokens (ms)", "local_call_ms_64_tokens"),
    ("semantic cache hit, MiniLM (ms)", "cache_hit_ms"),
)


def run_models(
    run_script: RunScript, anchors_python: Path | str | None, repeats: int
) -> dict[str, Any]:
    tether, why = run_script(sys.executable, BENCH / "model_bench.py", repeats)
    out: dict[str, Any] = {"tether": tether or {"notes": [f"missing: {why}"]}}
    if anchors_python is not None:
        lc, why = run_script(
            anchors_python, BENCH / "anchors" / "langchain_model_bench.py", repeats
        )
        out["langchain"] = lc or {"notes": [f"missing: {why}"]}
    return out


def render_models(results: dict[str, Any], console: Console) -> None:
    tether, lc = results.get("tether", {}), results.get("langchain", {})
    table = Table(title="model plane", caption="LangChain: langchain-core fake chat model")
    table.add_column("measure")
    table.add_column("tether", justify="right")
    table.add_column("LangChain", justify="right")
    for label, key in ROWS:
        t, a = tether.get(key), lc.get(key)
        table.add_row(label, "-" if t is None else f"{t:,.1f}", "-" if a is None else f"{a:,.1f}")
    console.print(table)
    hit, call = tether.get("cache_hit_ms"), tether.get("local_call_ms_64_tokens")
    if hit and call:
        console.print(f"[dim]cache hit is {call / hit:,.0f}x faster than asking the local model[/]")
    for who, res in (("tether", tether), ("LangChain", lc)):
        for note in res.get("notes", []):
            console.print(f"[dim]{who}: {note}[/]")
