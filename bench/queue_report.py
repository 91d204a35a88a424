"""The queue section of ``bench/run.py``: run tether's, DBOS's and procrastinate's queue benches,
write ``bench/results/queue.json`` and print the queue table (``run.py --queue``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "queue.json"
SYSTEMS = ("tether", "dbos", "procrastinate")
LABELS = {"tether": "tether", "dbos": "DBOS queues", "procrastinate": "procrastinate"}
SCRIPTS = {
    "tether": BENCH / "queue_bench.py",
    "dbos": BENCH / "anchors" / "dbos_queue_bench.py",
    "procrastinate": BENCH / "anchors" / "procrastinate_bench.py",
}


def run_one(python: Path | str, script: Path, quick: bool) -> tuple[dict[str, Any] | None, str]:
    cmd = [str(python), str(script), *(["--quick"] if quick else [])]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
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


def run_queue(anchors_python: Path | None, quick: bool, status: Callable[[str], Any]) -> dict:
    """Every system's queue figures; ``anchors_python`` None leaves the anchors out."""
    doc: dict[str, Any] = {}
    for s in SYSTEMS:
        python = sys.executable if s == "tether" else anchors_python
        if python is None:
            doc[s] = {"notes": ["not run (--skip-anchors)"]}
            continue
        with status(f"queue bench: {LABELS[s]}…"):
            res, why = run_one(python, SCRIPTS[s], quick)
        doc[s] = res or {"notes": [f"missing: {why}"]}
    doc["meta"] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "cpus": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return doc


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if v < 1000 else f"{v:,.0f}"
    return str(v)


def _ratio(v: Any) -> str:
    """Two decimals: one would print a missed 0.86 as the target's 0.9."""
    return "-" if v is None else f"{v:.2f}"


# (label, path in a system's result, target text, target check on tether's figure)
ROWS: list[tuple[str, tuple[str, ...], str, Callable[[float], bool] | None]] = [
    ("1-step runs/s, backlog, 1 worker", ("throughput", "1w", "runs_per_s"), "-", None),
    ("1-step runs/s, backlog, 2 workers", ("throughput", "2w", "runs_per_s"), "-", None),
    (
        "1-step runs/s, backlog, 4 workers",
        ("throughput", "4w", "runs_per_s"),
        "≥ 1,000",
        lambda v: v >= 1000,
    ),
    (
        "submit→complete runs/s, 4 workers (one submitter)",
        ("throughput", "4w", "submit_to_complete_runs_per_s"),
        "-",
        None,
    ),
    ("enqueue→start p50 (ms)", ("latency", "p50_ms"), "≤ 25", lambda v: v <= 25),
    ("enqueue→start p99 (ms)", ("latency", "p99_ms"), "≤ 100", lambda v: v <= 100),
]

WAKE = [
    ("wake-up submit→step, Postgres (ms, p50)", "postgres", "submit"),
    ("wake-up resume→continues, Postgres (ms, p50)", "postgres", "resume"),
    ("wake-up submit→step, SQLite (ms, p50)", "sqlite", "submit"),
    ("wake-up resume→continues, SQLite (ms, p50)", "sqlite", "resume"),
]


def render_queue(doc: dict[str, Any], console: Console) -> None:
    meta = doc.get("meta", {})
    table = Table(
        title=f"queue bench — {meta.get('date')} — {meta.get('cpus')} CPUs"
        f"{' (quick)' if meta.get('quick') else ''}",
        caption="all Postgres at synchronous_commit=off; DBOS queues at its default 1 s polling",
    )
    table.add_column("measure")
    for s in SYSTEMS:
        table.add_column(LABELS[s], justify="right")
    table.add_column("tether target", justify="right")

    def tether_cell(v: Any, ok: Callable[[float], bool] | None) -> str:
        text = _fmt(v)
        if v is None or ok is None:
            return text
        return f"[green]{text}[/]" if ok(v) else f"[red]{text}[/]"

    for label, path, target, ok in ROWS:
        cells = [tether_cell(_get(doc.get("tether"), *path), ok)]
        cells += [_fmt(_get(doc.get(s), *path)) for s in SYSTEMS[1:]]
        table.add_row(label, *cells, target)
    for label, backend, kind in WAKE:
        p = _get(doc.get("tether"), "wakeup", f"{backend}_process", kind, "p50_ms")
        e = _get(doc.get("tether"), "wakeup", f"{backend}_embedded", kind, "p50_ms")
        text = f"{tether_cell(p, lambda v: v <= 20)} / {tether_cell(e, lambda v: v <= 20)}"
        table.add_row(label + " other process / embedded", text, "-", "-", "≤ 20")
    chaos = _get(doc.get("tether"), "chaos") or {}
    table.add_row(
        "chaos 300 x 10 steps, 4 workers, SIGKILLs (runs/s)",
        tether_cell(chaos.get("runs_per_s"), lambda v: v >= 150),
        "-",
        "-",
        "≥ 150",
    )
    table.add_row(
        "chaos kill→resumed p95 (ms)",
        tether_cell(_get(chaos, "kill_to_resumed", "p95_ms"), lambda v: v <= 1500),
        "-",
        "-",
        "≤ 1,500",
    )
    console.print(table)
    faults = dict(_get(doc.get("tether"), "faults") or {})
    if chaos:
        faults["chaos (random SIGKILLs)"] = chaos
    if faults:
        ft = Table(title="tether under faults (runs lost / stuck / effects twice must be 0/0/0)")
        for col in ("fault", "runs", "lost / stuck / twice", "recovery (s)", "other"):
            ft.add_column(col)
        for name, f in faults.items():
            if name == "long_transaction":
                continue
            if "error" in f:
                ft.add_row(name, "-", "[red]error[/]", "-", f["error"][:80])
                continue
            bad = (f.get("lost"), f.get("stuck"), f.get("effects_twice"))
            txt = " / ".join(_fmt(x) for x in bad)
            txt = f"[green]{txt}[/]" if bad == (0, 0, 0) else f"[red]{txt}[/]"
            other = f"kills {f['kills']}" if "kills" in f else ""
            ft.add_row(name, _fmt(f.get("runs")), txt, _fmt(f.get("recovery_s")), other)
        lt = faults.get("long_transaction")
        if lt:
            ratio = lt.get("ratio")
            ok = ratio is not None and ratio >= 0.9
            ft.add_row(
                "long-open transaction",
                "-",
                "-",
                "-",
                f"runs/s {_fmt(lt.get('runs_per_s_without'))} → {_fmt(lt.get('runs_per_s_with'))}"
                f" (median ratio {'[green]' if ok else '[red]'}{_ratio(ratio)}[/], target ≥ 0.90)"
                if "error" not in lt
                else lt["error"][:80],
            )
        console.print(ft)
    for s in SYSTEMS:
        for note in _get(doc.get(s), "notes") or []:
            console.print(f"[dim]{LABELS[s]}: {note}[/]")
