"""Per-step cost of tracing: a 1,000-step cycle (nodes ``a`` and ``b`` each add 1, as in
``tether_bench.py``'s per_step_us) with tracing off, with the SDK's in-memory exporter, and with
OTLP/HTTP to a local sink, against a baseline without any tracing code path. ``off-again`` runs
the very code of ``off`` from another copy: its difference to ``off`` is the noise floor.

The baseline is the current tree with the tracing hooks of the run loop taken out by a syntax-tree
rewrite of the files they live in (``strip_hooks``: each ``if <x>.trace is [not] None`` keeps only
the untraced branch, a run's trace handle and its trace metadata are ``None`` without asking the
tracer), so it differs from "off" by those hooks only, whatever else changed since they were added.
Each mode runs in a fresh process, modes interleaved round by round. Time is the process's CPU time
(``time.process_time``: all its threads, the exporter's included), not wall time: on a loaded,
shared machine other processes then do not count, and the workload waits on nothing but the
CPU. The figure is the median over rounds of each process's best repeat. ``--instructions``
counts instead, with valgrind's callgrind, the CPU instructions a step takes in ``baseline`` and
``off`` (two run lengths in each, their difference over the extra steps: start-up cancels out):
a figure that does not move with the machine's load.
Target (DESIGN.md §5): tracing off costs <= 5 % per step.

    python bench/tracing.py [--rounds 5] [--repeat 5] [--store memory|sqlite|both]
    python bench/tracing.py --instructions [--store memory|sqlite|both]
"""

from __future__ import annotations

import argparse
import ast
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
HOOKED = ["src/tether/graph/loop.py", "src/tether/graph/runtime.py"]
"""The files of the run loop's tracing hooks (a node's, a step's, an event's; a new run's trace
metadata). The call planes' spans (tools, models) are not on this workload's path."""
UNTRACED_CALLS = {"start_run_trace", "trace_metadata_for_new_run"}
"""Calls that give a run its trace handle or metadata: ``None`` in the baseline."""
STEPS = 1000
INSTRUCTION_STEPS = (200, 1200)
"""The two run lengths ``--instructions`` counts (per step: the difference over 1,000 steps)."""
MODES = ("baseline", "off", "off-again", "in-memory", "otlp-http")
RESULTS = ROOT / "bench" / "results" / "tracing.json"


# -- the baseline: the hooks taken out ------------------------------------------------------
def _is_trace_check(test: ast.expr) -> bool | None:
    """True for ``<x>.trace is None`` / ``trace is None``, False for ``... is not None``, None
    for any other test."""
    if not (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Is | ast.IsNot)
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value is None
    ):
        return None
    left = test.left
    named = (isinstance(left, ast.Attribute) and left.attr == "trace") or (
        isinstance(left, ast.Name) and left.id == "trace"
    )
    if not named:
        return None
    return isinstance(test.ops[0], ast.Is)


class _StripHooks(ast.NodeTransformer):
    def __init__(self) -> None:
        self.checks = 0
        self.calls = 0

    def visit_If(self, node: ast.If) -> Any:
        self.generic_visit(node)
        untraced = _is_trace_check(node.test)
        if untraced is None:
            return node
        self.checks += 1
        kept = node.body if untraced else node.orelse
        return kept or ast.Pass()

    def visit_Call(self, node: ast.Call) -> Any:
        self.generic_visit(node)
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in UNTRACED_CALLS:
            self.calls += 1
            return ast.Constant(None)
        return node


def strip_hooks(source: str) -> tuple[str, int, int]:
    """``source`` without its tracing hooks: (the new source, trace checks taken out, trace
    handle or metadata calls made ``None``)."""
    strip = _StripHooks()
    tree = ast.fix_missing_locations(strip.visit(ast.parse(source)))
    return ast.unparse(tree), strip.checks, strip.calls


class CycleState(TypedDict):
    n: int


# -- one measurement, in a worker process ---------------------------------------------------
async def _measure(store_url: str, repeat: int, flush: Any, steps: int) -> list[float]:
    from tether import END, START, Graph, Runtime

    def inc(state: CycleState) -> dict[str, int]:
        return {"n": state["n"] + 1}

    g = Graph(CycleState, name="cycle")
    g.add_node("a", inc).add_node("b", inc)
    g.add_edge(START, "a").add_edge("a", "b")
    g.add_conditional_edges("b", lambda s: END if s["n"] >= steps else "a")
    wf = g.compile()
    times = []
    async with Runtime(store_url, workflows=[wf], max_steps=steps + 10, recover=False) as rt:
        await rt.run(wf, {"n": steps - 20})  # warm-up: 20 steps whatever ``steps`` is
        flush()
        for _ in range(repeat):
            t0 = time.process_time()
            res = await rt.run(wf, {"n": 0})
            flush()  # export included: what tracing costs, not only what it defers
            times.append((time.process_time() - t0) / steps * 1e6)
            assert res.state["n"] == steps, res.state
    return times


def worker(mode: str, store_url: str, repeat: int, endpoint: str | None, steps: int) -> None:
    import tether

    flush: Any = lambda: None  # noqa: E731
    exported: list[int] = []  # spans the in-memory exporter held at each flush
    if mode == "in-memory":
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from tether.observability import configure_tracing

        exporter = InMemorySpanExporter()
        configure_tracing(exporter)

        def flush() -> None:
            exported.append(len(exporter.get_finished_spans()))
            exporter.clear()

    elif mode == "otlp-http":
        from tether.observability import configure_tracing

        setup = configure_tracing("otlp-http", endpoint=endpoint)
        assert setup is not None

        def flush() -> None:
            setup.force_flush()

    times = asyncio.run(_measure(store_url, repeat, flush, steps))
    sdk = any(m.startswith("opentelemetry.sdk") for m in sys.modules)
    spans = sum(exported) if mode == "in-memory" else None
    print(json.dumps({"us": min(times), "tether": tether.__file__, "sdk": sdk, "spans": spans}))


# -- the driver -----------------------------------------------------------------------------
def baseline_tree(tmp: Path) -> tuple[Path, str]:
    """A copy of ``src`` whose ``HOOKED`` files have their tracing hooks taken out
    (``strip_hooks``); returns (its path, what it is)."""
    src = tmp / "baseline"
    subprocess.run(["cp", "-r", str(ROOT / "src"), str(src)], check=True)
    parts = []
    for path in HOOKED:
        new, checks, calls = strip_hooks((ROOT / path).read_text())
        if checks + calls == 0:
            raise RuntimeError(f"no tracing hook found in {path}: update HOOKED")
        (src / path.removeprefix("src/")).write_text(new)
        parts.append(f"{path} ({checks} checks, {calls} calls)")
    return src, "the current tree without the tracing hooks of " + ", ".join(parts)


def run_mode(
    mode: str,
    store: str,
    repeat: int,
    tmp: Path,
    trees: dict[str, Path],
    endpoint: str,
    steps: int = STEPS,
    counted: bool = False,
) -> dict[str, Any]:
    """One worker process of ``mode``; ``counted``: under callgrind, the instructions it took
    added as ``instructions``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TETHER_TRACE", "OTEL_"))}
    env["PYTHONPATH"] = str(trees.get(mode, ROOT / "src"))
    url = "memory://" if store == "memory" else f"sqlite:///{tmp / f'{mode}-{time.time_ns()}.db'}"
    worker_mode = "off" if mode == "off-again" else mode
    cmd = [sys.executable, __file__, "--worker", worker_mode, "--url", url]
    cmd += ["--repeat", str(repeat), "--endpoint", endpoint, "--steps", str(steps)]
    if counted:
        out_file = tmp / f"callgrind-{time.time_ns()}.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", *cmd]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{mode} on {store} failed:\n{out.stderr}")
    got = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    if counted:
        got["instructions"] = _collected(out.stderr)
    return got


def _collected(stderr: str) -> int:
    """The instruction count callgrind reports (``==pid== Collected : N``)."""
    for line in stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1].strip())
    raise RuntimeError(f"no callgrind total in:\n{stderr[-2000:]}")


def instructions(stores: list[str], tmp: Path, trees: dict[str, Path]) -> dict[str, Any]:
    """CPU instructions per step of ``baseline`` and ``off`` (callgrind): each mode runs one
    process per length in ``INSTRUCTION_STEPS``; per step is their difference over the extra
    steps, so start-up, imports and the warm-up cancel out."""
    short, long = INSTRUCTION_STEPS
    table: dict[str, Any] = {}
    for store in stores:
        row: dict[str, float] = {}
        for mode in ("baseline", "off"):
            n = [
                run_mode(mode, store, 1, tmp, trees, "", k, True)["instructions"]
                for k in (short, long)
            ]
            row[mode] = (n[1] - n[0]) / (long - short)
        over = (row["off"] / row["baseline"] - 1) * 100
        table[store] = {
            "baseline_per_step": round(row["baseline"]),
            "off_per_step": round(row["off"]),
            "overhead_pct": round(over, 2),
        }
        print(
            f"{store:8} baseline {row['baseline']:10,.0f}  off {row['off']:10,.0f}  "
            f"instructions/step  {over:+.2f}%"
        )
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--store", choices=("memory", "sqlite", "both"), default="both")
    ap.add_argument("--worker", choices=MODES)
    ap.add_argument("--url", default="memory://")
    ap.add_argument("--endpoint", default="")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--steps", type=int, default=STEPS, help=argparse.SUPPRESS)
    ap.add_argument(
        "--instructions",
        action="store_true",
        help="count CPU instructions per step with callgrind (baseline and off only)",
    )
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.url, args.repeat, args.endpoint or None, args.steps)
        return
    stores = ["memory", "sqlite"] if args.store == "both" else [args.store]
    if args.instructions:
        with tempfile.TemporaryDirectory() as td:
            tmp = Path(td)
            base, how = baseline_tree(tmp)
            print(f"baseline: {how}")
            counted = instructions(stores, tmp, {"baseline": base})
        _write(args.out, {"instructions": {"baseline": how, "per_step": counted}})
        return
    sys.path.insert(0, str(ROOT / "src"))
    from tether.testing.otlp_sink import OtlpHttpSink

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
    }
    _write(args.out, result)


def _write(path: Path, result: dict[str, Any]) -> None:
    """``result``'s keys into the JSON at ``path``, keeping the other measure's figures."""
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(result, target="tracing off <= 5 % per step")
    path.write_text(json.dumps(old, indent=2) + "\n")


if __name__ == "__main__":
    main()
