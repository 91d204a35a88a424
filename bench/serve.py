"""``tether serve`` over HTTP against PostgreSQL: a server process (no embedded worker) and
``--workers`` ``tether worker`` processes, measured from this process with httpx.

* ``submit``: trivial ``echo`` runs accepted per second (``POST /v1/runs`` answered 202),
  ``--in-flight`` requests at once on keep-alive connections (``http_load``, a lean client:
  httpx spends more CPU per request than the server does); and submit -> complete: the whole
  batch accepted and executed by the workers, runs per second;
* ``get``: ``GET /v1/runs/{id}`` of a finished run, one request at a time, p50/p95 ms;
* ``sse``: event latency, from an event's commit (its ``created_at``, stamped by the worker
  that commits it) to its arrival on ``GET /v1/runs/{id}/events/stream``, p50/p95 ms, over a
  run of ``--sse-steps`` steps 10 ms apart.

Targets (DESIGN.md section 5): >= 1,000 submits/s accepted, p95 read <= 5 ms, SSE <= 10 ms.
Absolute times on a shared machine are noise: the same machine runs the server, the workers,
PostgreSQL and this client.

    python bench/serve.py [--runs 2000] [--workers 4] [--quick]   # bench/results/serve.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import drop_pg_schema, pg_base_url, reset_pg_schema, with_query  # noqa: E402
from http_load import post_many  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "serve.json"
APP = f"{ROOT / 'bench' / 'serve_app.py'}:workflows"
DEADLINE = 600.0


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _tether(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tether.cli.main", *args],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values) * 1000, 3),
        "p95_ms": round(_pct(values, 0.95) * 1000, 3),
        "n": len(values),
    }


async def _submit(base: str, runs: int, in_flight: int) -> tuple[list[str], float, float]:
    """Submit ``runs`` echo runs, ``in_flight`` at once on keep-alive connections (the lean
    client of ``http_load``: httpx would be the bottleneck); returns their ids, the accept
    rate and the start time."""

    def body(i: int) -> dict[str, Any]:
        return {
            "workflow": "echo",
            "input": {"text": f"run {i}"},
            "idempotency_key": f"bench-{i}",  # a retried submit is the same run
        }

    t0 = time.perf_counter()
    answers = await post_many(base, "/v1/runs", body, runs, in_flight)
    took = time.perf_counter() - t0
    for status, payload in answers:
        if status != 202:
            raise RuntimeError(f"submit answered {status}: {payload}")
    return [payload["run_id"] for _, payload in answers], runs / took, t0


async def _completed(base: str) -> int:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        text = (await client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith('tether_runs{status="COMPLETED"}'):
            return int(float(line.split()[-1]))
    return 0


async def _until_completed(base: str, n: int) -> float:
    deadline = time.perf_counter() + DEADLINE
    while await _completed(base) < n:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"fewer than {n} runs completed within {DEADLINE} s")
        await asyncio.sleep(0.05)
    return time.perf_counter()


def _reads(base: str, run_id: str, n: int) -> dict[str, float]:
    took = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for _ in range(20):  # warm the connection and the server's caches
            client.get(f"/v1/runs/{run_id}")
        for _ in range(n):
            t0 = time.perf_counter()
            r = client.get(f"/v1/runs/{run_id}")
            took.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise RuntimeError(f"GET answered {r.status_code}")
    return _ms(took)


def _sse(base: str, steps: int) -> dict[str, float]:
    lags: list[float] = []
    with httpx.Client(base_url=base, timeout=60) as client:
        body = {"workflow": "ticks", "input": {"n": steps, "pause": 0.01}}
        run_id = client.post("/v1/runs", json=body).json()["run_id"]
        with client.stream("GET", f"/v1/runs/{run_id}/events/stream") as resp:
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    now = time.time()
                    data = json.loads(line[6:])
                    if "created_at" in data and data.get("kind") == "step_finished":
                        lags.append(max(0.0, now - float(data["created_at"])))
                elif line == "event: end":
                    break
    return _ms(lags)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=2000, help="echo runs submitted (2000)")
    ap.add_argument("--workers", type=int, default=4, help="tether worker processes (4)")
    ap.add_argument("--in-flight", type=int, default=64, help="submits at once (64)")
    ap.add_argument("--reads", type=int, default=1000, help="GETs of one run (1000)")
    ap.add_argument("--sse-steps", type=int, default=100, help="steps of the streamed run")
    ap.add_argument("--quick", action="store_true", help="a small run (CI smoke)")
    ap.add_argument("--no-save", action="store_true", help="do not write the results file")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.reads, args.sse_steps = 200, 200, 20
    load = round(os.getloadavg()[0], 1)  # a shared machine: say how busy it was
    schema = f"bench_serve_{uuid.uuid4().hex[:8]}"
    pg = pg_base_url()
    reset_pg_schema(pg, schema)
    url = with_query(pg, schema=schema)
    server = _tether(
        "serve", "--store", url, "--app", APP, "--port", "0", "--workers", "0", "--json"
    )
    workers: list[subprocess.Popen[str]] = []
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            raise RuntimeError("the server did not start")
        base = json.loads(line)["url"]
        workers = [
            _tether("worker", "--store", url, "--app", APP, "--concurrency", "32", "--json")
            for _ in range(args.workers)
        ]
        for proc in workers:  # each says so once registered: submit to a pool that is up
            assert proc.stdout is not None
            if not proc.stdout.readline():
                raise RuntimeError("a worker did not start")
        ids, accepted, t0 = asyncio.run(_submit(base, args.runs, args.in_flight))
        done_at = asyncio.run(_until_completed(base, args.runs))
        result: dict[str, Any] = {
            "submit": {
                "accepted_per_s": round(accepted, 1),
                "submit_to_complete_per_s": round(args.runs / (done_at - t0), 1),
                "n": args.runs,
                "in_flight": args.in_flight,
                "workers": args.workers,
            },
            "get": _reads(base, ids[-1], args.reads),
            "sse": _sse(base, args.sse_steps),
            "store": "postgresql (loopback)",
            "cpus": os.cpu_count(),
            "load_avg_1m_at_start": load,
        }
    finally:
        for proc in (server, *workers):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (server, *workers):
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        drop_pg_schema(pg, schema)
    rows = [
        ("submits accepted /s", result["submit"]["accepted_per_s"], ">= 1000"),
        ("submit -> complete runs/s", result["submit"]["submit_to_complete_per_s"], "-"),
        ("GET /v1/runs/{id} p50 ms", result["get"]["p50_ms"], "-"),
        ("GET /v1/runs/{id} p95 ms", result["get"]["p95_ms"], "<= 5"),
        ("SSE commit -> client p50 ms", result["sse"]["p50_ms"], "-"),
        ("SSE commit -> client p95 ms", result["sse"]["p95_ms"], "<= 10"),
    ]
    print(f"{'measure':<30} {'tether':>10}  target")
    for name, value, target in rows:
        print(f"{name:<30} {value:>10}  {target}")
    if not args.no_save:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
