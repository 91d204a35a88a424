"""Run the bench: tether and the anchors (LangGraph, DBOS) on the same workloads, one table.

    .venv/bin/python bench/run.py                 # full run (3 repeats, medians)
    .venv/bin/python bench/run.py --quick         # 1 repeat
    .venv/bin/python bench/run.py --skip-anchors  # tether only; anchor columns are taken from
                                                  # the previous bench/results/latest.json
    .venv/bin/python bench/run.py --queue         # also the queue bench (workers, faults, chaos;
                                                  # tether vs DBOS queues vs procrastinate)
    .venv/bin/python bench/run.py --queue-only    # the queue bench alone

Each system runs in its own interpreter: the anchors in ``bench/.venv-anchors`` (created on
first use by ``anchors_env.py``), tether in this interpreter's venv. Results go to
``bench/results/latest.json``; the table compares them with DESIGN.md §5's targets.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "latest.json"
SYSTEMS = ("tether", "langgraph", "dbos")
ANCHORS = ("langgraph", "dbos")
LABELS = {"tether": "tether", "langgraph": "LangGraph", "dbos": "DBOS"}
MEASURES = ("per_step_us", "growth_200x1kb", "concurrency_200x20_10ms", "resume_ms")

sys.path.insert(0, str(BENCH))
import anchors_env  # noqa: E402  (bench/ is not a package)
import benchlib as bl  # noqa: E402
import cache_bench  # noqa: E402
import models  # noqa: E402
import queue_report  # noqa: E402


@dataclass(frozen=True)
class Row:
    """One table row: where the figure sits in a system's result, how to show it, its target."""

    label: str
    get: Callable[[dict[str, Any]], Any]
    fmt: Callable[[float], str]
    higher_is_better: bool
    target: str
    target_ok: Callable[[float], bool] | None


def _us(v: float) -> str:
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def _num(v: float) -> str:
    return f"{v:,.1f}" if v < 1000 else f"{v:,.0f}"


# where each system's per-step figure at a given durability sits in its result:
# "process" = SQLite synchronous=NORMAL / Postgres synchronous_commit=off (tether's default),
# "power-loss" = SQLite synchronous=FULL / Postgres synchronous_commit=on (the anchors' default)
MATCHED: dict[tuple[str, str, str], tuple[str, str]] = {
    ("tether", "sqlite", "process"): ("per_step_us", "sqlite"),
    ("tether", "sqlite", "power-loss"): ("extras", "per_step_us_sqlite_power_loss"),
    ("tether", "postgres", "process"): ("per_step_us", "postgres"),
    ("tether", "postgres", "power-loss"): ("extras", "per_step_us_postgres_power_loss"),
    ("langgraph", "sqlite", "process"): ("extras", "sqlite_sync_normal_us"),
    ("langgraph", "sqlite", "power-loss"): ("per_step_us", "sqlite"),
    ("langgraph", "postgres", "process"): ("extras", "postgres_sync_commit_off_us"),
    ("langgraph", "postgres", "power-loss"): ("per_step_us", "postgres"),
    ("dbos", "sqlite", "process"): ("extras", "sqlite_sync_normal_us"),
    ("dbos", "sqlite", "power-loss"): ("per_step_us", "sqlite"),
    ("dbos", "postgres", "process"): ("extras", "postgres_sync_commit_off_us"),
    ("dbos", "postgres", "power-loss"): ("per_step_us", "postgres"),
}


def matched(backend: str, durability: str) -> Callable[[dict[str, Any]], Any]:
    """The getter of a matched-durability row: every system at the same flush setting."""

    def get(r: dict[str, Any]) -> Any:
        where = MATCHED.get((r.get("system", ""), backend, durability))
        return None if where is None else (r.get(where[0]) or {}).get(where[1])

    return get


ROWS = (
    Row(
        "per step, SQLite, all synchronous=NORMAL (µs)",
        matched("sqlite", "process"),
        _us,
        False,
        "≤ 100",
        lambda v: v <= 100,
    ),
    Row(
        "per step, Postgres, all synchronous_commit=off (µs)",
        matched("postgres", "process"),
        _us,
        False,
        "≤ 300",
        lambda v: v <= 300,
    ),
    Row(
        "per step, SQLite, all synchronous=FULL (µs)",
        matched("sqlite", "power-loss"),
        _us,
        False,
        "-",
        None,
    ),
    Row(
        "per step, Postgres, all synchronous_commit=on (µs)",
        matched("postgres", "power-loss"),
        _us,
        False,
        "-",
        None,
    ),
    Row(
        "per step, no persistence (µs)",
        lambda r: r["per_step_us"]["memory"],
        _us,
        False,
        "≤ 30",
        lambda v: v <= 30,
    ),
    Row(
        "per step, durable SQLite, each default (µs)",
        lambda r: r["per_step_us"]["sqlite"],
        _us,
        False,
        "≤ 100",
        lambda v: v <= 100,
    ),
    Row(
        "per step, durable Postgres, each default (µs)",
        lambda r: r["per_step_us"]["postgres"],
        _us,
        False,
        "≤ 300",
        lambda v: v <= 300,
    ),
    Row(
        "200 runs x 20 steps x 10 ms, SQLite (runs/s)",
        lambda r: r["concurrency_200x20_10ms"]["runs_per_s"],
        _num,
        True,
        "≥ 800",
        lambda v: v >= 800,
    ),
    Row(
        "storage, 200 steps x 1 KB, SQLite (MB)",
        lambda r: None if (b := r["growth_200x1kb"]["bytes"]) is None else b / 1e6,
        lambda v: f"{v:,.3f}" if v < 1 else f"{v:,.1f}",
        False,
        "≤ 0.5",
        lambda v: v <= 0.5,
    ),
    Row(
        "step time, step 191-200 / 1-10",
        lambda r: r["growth_200x1kb"]["step_time_ratio_200_vs_10"],
        lambda v: f"{v:.2f}",
        False,
        "flat",
        None,
    ),
    Row(
        "resume after interrupt / wake-up, SQLite (ms)",
        lambda r: r["resume_ms"],
        lambda v: f"{v:,.2f}" if v < 100 else f"{v:,.0f}",
        False,
        "≤ 2 (wake-up ≤ 20)",
        lambda v: v <= 2,
    ),
)


# -- running the systems -----------------------------------------------------------------------
def run_script(python: Path | str, script: Path, repeats: int) -> tuple[dict[str, Any] | None, str]:
    """Run one system's script; return (its JSON, '') or (None, why it gave none)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [str(python), str(script), "--repeats", str(repeats)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=3600, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return None, f"{script.name} timed out after 3600 s"
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:]) or f"exit {proc.returncode}"
        return None, f"{script.name} exited {proc.returncode}: {tail}"
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1]), ""
    except (json.JSONDecodeError, IndexError):
        return None, f"{script.name} printed no JSON result"


def empty_result(system: str) -> dict[str, Any]:
    return {
        "system": system,
        "versions": {},
        "per_step_us": {"memory": None, "sqlite": None, "postgres": None},
        "growth_200x1kb": {"bytes": None, "step_time_ratio_200_vs_10": None},
        "concurrency_200x20_10ms": {"runs_per_s": None},
        "resume_ms": None,
        "extras": {},
        "notes": [],
    }


def previous_anchor_results() -> tuple[dict[str, dict[str, Any]], str | None]:
    """Anchor results from the last latest.json (for --skip-anchors)."""
    if not RESULTS.exists():
        return {}, None
    old = json.loads(RESULTS.read_text())
    meta = old.get("meta", {})
    out = {}
    for s in ANCHORS:
        if meta.get("status", {}).get(s) != "ok":
            continue
        res = empty_result(s)
        for m in MEASURES:
            res[m] = old[m].get(s)
        res["versions"] = meta.get("versions", {}).get(s, {})
        res["extras"] = meta.get("extras", {}).get(s, {})
        res["notes"] = [
            n for n in meta.get("notes", {}).get(s, []) if not n.startswith("figures reused")
        ]
        out[s] = res
    return out, meta.get("anchors_date") or meta.get("date")


# -- the report --------------------------------------------------------------------------------
def ratio(row: Row, results: dict[str, dict[str, Any]]) -> tuple[float, str] | None:
    """(factor, best anchor): > 1 means tether is better than the best anchor."""
    t = row.get(results["tether"])
    anchors = [(row.get(results[s]), s) for s in ANCHORS]
    anchors = [(v, s) for v, s in anchors if v is not None]
    if t is None or not anchors or t <= 0:
        return None
    best, who = (max if row.higher_is_better else min)(anchors)
    if best <= 0:
        return None
    return (t / best if row.higher_is_better else best / t), who


def render(results: dict[str, dict[str, Any]], meta: dict[str, Any], console: Console) -> None:
    title = (
        f"tether bench — {meta['date']} — {meta['machine']['cpus']} CPUs, repeats={meta['repeats']}"
    )
    table = Table(
        title=title,
        caption="ratio = best anchor / tether (runs/s: tether / best); > 1: tether better",
    )
    table.add_column("measure")
    for s in SYSTEMS:
        table.add_column(LABELS[s], justify="right")
    table.add_column("tether target", justify="right")
    table.add_column("ratio vs best anchor", justify="right")
    for row in ROWS:
        cells = []
        for s in SYSTEMS:
            v = row.get(results[s])
            text = "-" if v is None else row.fmt(v)
            if s == "tether" and v is not None and row.target_ok is not None:
                text = f"[green]{text}[/]" if row.target_ok(v) else f"[red]{text}[/]"
            cells.append(text)
        rat = ratio(row, results)
        rat_text = "-" if rat is None else f"{rat[0]:,.2f}x ({LABELS[rat[1]]})"
        table.add_row(row.label, *cells, row.target, rat_text)
    console.print(table)
    for s in SYSTEMS:
        for note in meta["notes"].get(s, []):
            console.print(f"[dim]{LABELS[s]}: {note}[/]")


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        import psycopg

        with psycopg.connect(bl.pg_base_url(), connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgres"] = row[0] if row else None
    except Exception as exc:
        info["postgres"] = f"unreachable ({type(exc).__name__})"
    return info


def git_revision() -> str | None:
    """The checkout's commit (with ``+dirty`` when the tree has changes), if there is one."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(BENCH), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(BENCH), "status", "--porcelain", "--", "../src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{rev}+dirty" if dirty else rev


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 repeat instead of 3")
    ap.add_argument("--repeats", type=int, default=None, help="repeats per measure (median)")
    ap.add_argument(
        "--skip-anchors",
        action="store_true",
        help="run tether only; reuse the anchors' figures of the previous latest.json",
    )
    ap.add_argument("--skip-models", action="store_true", help="leave out the model-plane table")
    ap.add_argument(
        "--skip-cache", action="store_true", help="leave out the semantic-cache correctness figures"
    )
    ap.add_argument(
        "--queue",
        action="store_true",
        help="also run the queue bench (bench/queue_bench.py and its anchors), its own table",
    )
    ap.add_argument("--queue-only", action="store_true", help="run the queue bench alone")
    args = ap.parse_args()
    if args.queue_only:
        return queue_main(args.quick, args.skip_anchors)
    repeats = args.repeats or (1 if args.quick else 3)
    console = Console(stderr=True)
    out = Console(width=None if sys.stdout.isatty() else 160)

    results = {s: empty_result(s) for s in SYSTEMS}
    status: dict[str, str] = {}
    notes: dict[str, list[str]] = {s: [] for s in SYSTEMS}
    anchors_date = None
    started = time.perf_counter()

    if args.skip_anchors:
        prev, anchors_date = previous_anchor_results()
        for s in ANCHORS:
            if s in prev:
                results[s], status[s] = prev[s], "ok"
                notes[s].append(f"figures reused from the run of {anchors_date} (--skip-anchors)")
            else:
                status[s] = "skipped"
    else:
        with console.status("anchors venv (bench/.venv-anchors)…"):
            anchors_env.ensure()
        py = anchors_env.python_path()
        for s in ANCHORS:
            with console.status(f"running {LABELS[s]} ({repeats} repeat(s))…"):
                res, why = run_script(py, BENCH / "anchors" / f"{s}_bench.py", repeats)
            results[s], status[s] = (res, "ok") if res else (results[s], f"failed: {why}")
        anchors_date = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    with console.status(f"running tether ({repeats} repeat(s))…"):
        res, why = run_script(sys.executable, BENCH / "tether_bench.py", repeats)
    results["tether"], status["tether"] = (
        (res, "ok") if res else (results["tether"], f"missing: {why}")
    )

    for s in SYSTEMS:
        notes[s] = [*notes[s], *results[s].get("notes", [])]
        if status[s] != "ok":
            notes[s].insert(0, status[s])
    meta = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "anchors_date": anchors_date,
        "repeats": repeats,
        "wall_s": round(time.perf_counter() - started, 1),
        "machine": machine(),
        "versions": {s: results[s].get("versions", {}) for s in SYSTEMS},
        "tether_git": git_revision(),
        "status": status,
        "targets": {row.label: row.target for row in ROWS},
        "ratios_vs_best_anchor": {
            row.label: (None if (r := ratio(row, results)) is None else [round(r[0], 3), r[1]])
            for row in ROWS
        },
        "extras": {s: results[s].get("extras", {}) for s in SYSTEMS},
        "notes": notes,
    }
    doc: dict[str, Any] = {m: {s: results[s][m] for s in SYSTEMS} for m in MEASURES}
    if not args.skip_models:
        with console.status(f"running the model-plane bench ({repeats} repeat(s))…"):
            doc["models"] = models.run_models(
                run_script, None if args.skip_anchors else anchors_env.python_path(), repeats
            )
    if not args.skip_cache:
        with console.status("running the semantic-cache bench (bench/cache_bench.py)…"):
            res, why = run_script(sys.executable, BENCH / "cache_bench.py", 1)
        doc["cache"] = res or {"notes": [f"missing: {why}"]}
    if args.queue:
        doc["queue"] = queue_report.run_queue(
            None if args.skip_anchors else anchors_env.python_path(), args.quick, console.status
        )
    doc["meta"] = meta
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    render(results, meta, out)
    if "models" in doc:
        models.render_models(doc["models"], out)
    if "cache" in doc:
        for line in cache_bench.summary(doc["cache"]):
            out.print(line, highlight=False)
    if "queue" in doc:
        queue_report.render_queue(doc["queue"], out)
    out.print(f"[dim]written {RESULTS.relative_to(BENCH.parent)}[/]")


def queue_main(quick: bool, skip_anchors: bool) -> None:
    """``--queue-only``: the queue bench alone, into ``bench/results/queue.json``."""
    console = Console(stderr=True)
    out = Console(width=None if sys.stdout.isatty() else 160)
    py = None
    if not skip_anchors:
        with console.status("anchors venv (bench/.venv-anchors)…"):
            anchors_env.ensure()
        py = anchors_env.python_path()
    doc = queue_report.run_queue(py, quick, console.status)
    queue_report.render_queue(doc, out)
    out.print(f"[dim]written {queue_report.RESULTS.relative_to(BENCH.parent)}[/]")


if __name__ == "__main__":
    main()
