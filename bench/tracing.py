"""Per-step cost of tracing: a 1,000-step cycle (nodes ``a`` and ``b`` each add 1, as in
``tether_bench.py``'s per_step_us) with tracing off, with the SDK's in-memory exporter, and with
OTLP/HTTP to a local sink, against a baseline without any tracing code path. ``off-again`` runs
the very code of ``off`` from another copy: its difference to ``off`` is the noise floor.

The baseline is the current tree with the files the tracing hooks live in (the graph loop, the
runtime and its cancel, the tool executor, the model plane) as they were before commit
``HOOKS`` added them, so it differs from "off" by those hooks only (the header lists every
commit that touched those files since, to check that they are all tracing's). Each mode runs in
a fresh process, modes interleaved round by round. Time is the process's CPU time
(``time.process_time``: all its threads, the exporter's included), not wall time: on a loaded,
shared machine other processes then do not count, and the workload waits on nothing but the
CPU. The figure is the median over rounds of each process's best repeat.
Target (DESIGN.md §5): tracing off costs <= 5 % per step.

    python bench/tracing.py [--rounds 5] [--repeat 5] [--store memory|sqlite|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

ROOT = Path(__file__).resolve().parents[1]
HOOKS = "633e9f8"
"""The commit that added the tracing hooks to the run loop and the call planes."""
HOOKED = [
    "src/tether/graph/loop.py",
    "src/tether/graph/runtime.py",
    "src/tether/tools/executor.py",
    "src/tether/llm/model.py",
    "src/tether/graph/runtime_control.py",
]
STEPS = 1000
MODES = ("baseline", "off", "off-again", "in-memory", "otlp-http")
RESULTS = ROOT / "bench" / "results" / "tracing.json"


class CycleState(TypedDict):
    n: int


# -- one measurement, in a worker process ---------------------------------------------------
async def _measure(store_url: str, repeat: int, flush: Any) -> list[float]:
    from tether import END, START, Graph, Runtime

    def inc(state: CycleState) -> dict[str, int]:
        return {"n": state["n"] + 1}

    g = Graph(CycleState, name="cycle")
    g.add_node("a", inc).add_node("b", inc)
    g.add_edge(START, "a").add_edge("a", "b")
    g.add_conditional_edges("b", lambda s: END if s["n"] >= STEPS else "a")
    wf = g.compile()
    times = []
    async with Runtime(store_url, workflows=[wf], max_steps=STEPS + 10, recover=False) as rt:
        await rt.run(wf, {"n": STEPS - 20})  # warm-up
        flush()
        for _ in range(repeat):
            t0 = time.process_time()
            res = await rt.run(wf, {"n": 0})
            flush()  # export included: what tracing costs, not only what it defers
            times.append((time.process_time() - t0) / STEPS * 1e6)
            assert res.state["n"] == STEPS, res.state
    return times


def worker(mode: str, store_url: str, repeat: int, endpoint: str | None) -> None:
    import tether

    flush: Any = lambda: None  # noqa: E731
    if mode == "in-memory":
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from tether.observability import configure_tracing

        exporter = InMemorySpanExporter()
        configure_tracing(exporter)

        def flush() -> None:
            exporter.clear()

    elif mode == "otlp-http":
        from tether.observability import configure_tracing

        setup = configure_tracing("otlp-http", endpoint=endpoint)
        assert setup is not None

        def flush() -> None:
            setup.force_flush()

    times = asyncio.run(_measure(store_url, repeat, flush))
    sdk = any(m.startswith("opentelemetry.sdk") for m in sys.modules)
    print(json.dumps({"us": min(times), "tether": tether.__file__, "sdk": sdk}))


# -- the driver -----------------------------------------------------------------------------
def baseline_tree(tmp: Path) -> tuple[Path, str]:
    """A copy of ``src`` whose hooked files are as they were before ``HOOKS``; returns (its
    path, what it is, naming every commit since that touched those files)."""
    src = tmp / "baseline"
    subprocess.run(["cp", "-r", str(ROOT / "src"), str(src)], check=True)
    for path in HOOKED:
        old = subprocess.run(
            ["git", "show", f"{HOOKS}^:{path}"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        (src / path.removeprefix("src/")).write_bytes(old)
    since = subprocess.run(
        ["git", "log", "--format=%h %s", f"{HOOKS}^..HEAD", "--", *HOOKED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    touched = "; ".join(line[:60] for line in since)
    return src, f"the tree with {', '.join(HOOKED)} as of {HOOKS}^ (since: {touched})"


def run_mode(
    mode: str, store: str, repeat: int, tmp: Path, trees: dict[str, Path], endpoint: str
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TETHER_TRACE", "OTEL_"))}
    env["PYTHONPATH"] = str(trees.get(mode, ROOT / "src"))
    url = "memory://" if store == "memory" else f"sqlite:///{tmp / f'{mode}-{time.time_ns()}.db'}"
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            "off" if mode == "off-again" else mode,
            "--url",
            url,
            "--repeat",
            str(repeat),
            "--endpoint",
            endpoint,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{mode} on {store} failed:\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--store", choices=("memory", "sqlite", "both"), default="both")
    ap.add_argument("--worker", choices=MODES)
    ap.add_argument("--url", default="memory://")
    ap.add_argument("--endpoint", default="")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.url, args.repeat, args.endpoint or None)
        return
    sys.path.insert(0, str(ROOT / "src"))
    from tether.testing.otlp_sink import OtlpHttpSink

    stores = ["memory", "sqlite"] if args.store == "both" else [args.store]
    with tempfile.TemporaryDirectory() as td, OtlpHttpSink(keep=False) as sink:
        tmp = Path(td)
        base, how = baseline_tree(tmp)
        # every mode runs a copy in one temporary directory (where the code sits measurably
        # moves the figures on some machines); off-again, a second copy of the code of off,
        # shows the noise floor (A/A)
        trees = {"baseline": base}
        for name in ("current", "again"):
            subprocess.run(["cp", "-r", str(ROOT / "src"), str(tmp / name)], check=True)
        for mode in MODES[1:]:
            trees[mode] = tmp / ("again" if mode == "off-again" else "current")
        runs: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for store in stores:
                for mode in MODES:
                    got = run_mode(mode, store, args.repeat, tmp, trees, sink.endpoint)
                    if mode in ("baseline", "off", "off-again") and got["sdk"]:
                        raise RuntimeError(f"{mode}: the OpenTelemetry SDK was imported")
                    runs.setdefault((store, mode), []).append(got["us"])
        requests = sink.requests
    table: dict[str, dict[str, Any]] = {}
    print(
        f"per-step CPU time, {STEPS}-step cycle: median over {args.rounds} processes of the "
        f"best of {args.repeat} runs"
    )
    print(f"baseline: {how}")
    print(f"{'store':8} {'mode':10} {'us/step':>9} {'vs baseline':>12}")
    for store in stores:
        base_us = statistics.median(runs[(store, "baseline")])
        for mode in MODES:
            us = statistics.median(runs[(store, mode)])
            over = (us / base_us - 1) * 100
            table.setdefault(store, {})[mode] = {
                "us_per_step": round(us, 2),
                "overhead_pct": round(over, 1),
            }
            print(f"{store:8} {mode:10} {us:9.2f} {over:+11.1f}%")
    print(f"OTLP requests received by the sink: {requests}")
    result = {
        "steps": STEPS,
        "rounds": args.rounds,
        "repeat": args.repeat,
        "baseline": how,
        "per_step": table,
        "target": "tracing off <= 5 % per step",
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
