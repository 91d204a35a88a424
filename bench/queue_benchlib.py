"""What the queue bench's scripts share (tether's and the anchors'): standard library only.

The workload sizes, percentiles, a pool of worker processes that each print ``READY`` once they
serve, and polling a database until a condition holds (with a deadline, never a bare sleep).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

# -- the workloads (identical for every system) ---------------------------------------------
WORKER_COUNTS = (1, 2, 4)
THROUGHPUT_RUNS = {"full": 2000, "quick": 400}  # trivial 1-step runs per throughput figure
LATENCY_SAMPLES = {"full": 100, "quick": 30}  # paced enqueue -> start samples
LATENCY_GAP_S = 0.03  # pause between two paced submits: an idle queue, not a backlog
READY_TIMEOUT_S = 120.0  # a worker process must say READY within this (a loaded machine)
DONE_TIMEOUT_S = 600.0  # every run of a measure must complete within this


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def latency_summary(seconds: Sequence[float]) -> dict[str, Any]:
    """p50/p95/p99/max in ms of latencies given in seconds."""
    ms = [s * 1e3 for s in seconds]

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 2)

    return {
        "p50_ms": r(percentile(ms, 50)),
        "p95_ms": r(percentile(ms, 95)),
        "p99_ms": r(percentile(ms, 99)),
        "max_ms": r(max(ms) if ms else None),
        "mean_ms": r(statistics.fmean(ms) if ms else None),
        "samples": len(ms),
    }


def wait_for(
    cond: Callable[[], bool], timeout: float = DONE_TIMEOUT_S, interval: float = 0.01
) -> float:
    """Poll ``cond`` until it holds; return the time.time() it was first seen true."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return time.time()
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout:.0f} s")
        time.sleep(interval)


class WorkerPool:
    """Worker processes started from one command line each; ``READY`` on stdout = serving.

    ``kill(i)`` SIGKILLs worker ``i`` and returns the time.time() of the kill; ``replace(i)``
    starts a fresh one in its slot; ``stop()`` SIGTERMs them all, then SIGKILLs stragglers.
    """

    def __init__(self, cmd: Callable[[int], list[str]], n: int, env: dict[str, str]) -> None:
        self._cmd, self._env = cmd, {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.procs: list[subprocess.Popen[str]] = []
        self._ready: list[threading.Event] = []
        self.ready_at: dict[int, float] = {}
        """pid -> time.time() its READY line was read."""
        self.output: list[list[str]] = []
        for i in range(n):
            self._spawn(i)
        self.wait_ready()

    def _spawn(self, i: int) -> None:
        proc = subprocess.Popen(
            self._cmd(i),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self._env,
            start_new_session=True,
        )
        ready, lines = threading.Event(), []

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("READY"):
                    self.ready_at[proc.pid] = time.time()
                    ready.set()
                lines.append(line.rstrip())
                del lines[:-200]
            ready.set()  # exited: wait_ready checks it

        threading.Thread(target=pump, daemon=True).start()
        if i < len(self.procs):
            self.procs[i], self._ready[i], self.output[i] = proc, ready, lines
        else:
            self.procs.append(proc)
            self._ready.append(ready)
            self.output.append(lines)

    def wait_ready(self) -> None:
        for i, ev in enumerate(self._ready):
            if not ev.wait(READY_TIMEOUT_S) or self.procs[i].poll() is not None:
                tail = " | ".join(self.output[i][-5:])
                self.stop()
                raise RuntimeError(f"worker {i} did not start: {tail}")

    def first_ready(self) -> float:
        """When the first worker said READY (a backlog starts draining from then)."""
        return min(self.ready_at[p.pid] for p in self.procs)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def kill(self, i: int) -> float:
        t = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.procs[i].pid, signal.SIGKILL)
        self.procs[i].wait()
        return t

    def replace(self, i: int, wait: bool = False) -> None:
        self._spawn(i)
        if wait:
            self.wait_ready()

    def stop(self, grace: float = 20.0) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the step log of the fault and chaos workloads ------------------------------------------
Record = tuple[str, int, float]  # (key: run id or effect key, pid, time.time())


def read_log(path: str) -> tuple[list[tuple[str, int, int, float]], list[Record]]:
    """The ``start`` records ``(run_id, step, pid, t)`` and the ``fx`` records ``(key, pid,
    t)`` of ``bench/queue_bench_app.py``'s step log."""
    starts: list[tuple[str, int, int, float]] = []
    effects: list[Record] = []
    with contextlib.suppress(FileNotFoundError), open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 5 and parts[0] == "start":
                starts.append((parts[1], int(parts[2]), int(parts[3]), float(parts[4])))
            elif len(parts) == 4 and parts[0] == "fx":
                effects.append((parts[1], int(parts[2]), float(parts[3])))
    return starts, effects


def effects_twice(
    effects: Sequence[Record], kills: Sequence[tuple[int, float]] = ()
) -> tuple[int, int]:
    """``(twice, resent)``: effect keys performed more than once, split by why. ``resent``: the
    earlier call's worker was SIGKILLed (``kills``: ``(pid, time)``) between that call and the
    next one, so the journal had no result and the retry re-sent it under the same key (an
    ``idempotent=True`` effect is at-least-once through a crash in its call; the receiver
    dedupes on the key). ``twice``: any other repeat, which the journal must never let
    happen (two live workers running one step)."""
    by_key: dict[str, list[tuple[float, int]]] = {}
    for key, pid, t in effects:
        by_key.setdefault(key, []).append((t, pid))
    killed: dict[int, float] = dict(kills)
    twice = resent = 0
    for calls in by_key.values():
        if len(calls) < 2:
            continue
        calls.sort()
        crash = all(
            (k := killed.get(a[1])) is not None and a[0] <= k <= b[0]
            for a, b in itertools.pairwise(calls)
        )
        if crash:
            resent += 1
        else:
            twice += 1
    return twice, resent


def interrupted_runs(
    starts: Sequence[tuple[str, int, int, float]], fault_at: float, pids: set[int] | None = None
) -> dict[str, float | None]:
    """Every run whose step was cut by the fault at ``fault_at`` (its last step start before
    the fault, by one of ``pids`` when given, is started again after it) -> the time.time() of
    that restart (None: a run in flight whose step never started again, e.g. it had finished
    the step just before the fault; callers count runs, not these)."""
    by_run: dict[str, list[tuple[float, int, int]]] = {}
    for run_id, step, pid, t in starts:
        by_run.setdefault(run_id, []).append((t, step, pid))
    out: dict[str, float | None] = {}
    for run_id, recs in by_run.items():
        recs.sort()
        before = [r for r in recs if r[0] <= fault_at]
        after = [r for r in recs if r[0] > fault_at]
        if not before:
            continue
        last = before[-1]
        if pids is not None and last[2] not in pids:
            continue
        again = [r for r in after if r[1] == last[1]]
        if again:
            out[run_id] = again[0][0]
    return out


def first_effect_per_worker(effects: Sequence[Record], after: float) -> dict[int, float]:
    """pid -> the time.time() of its first effect after ``after`` (a store round trip made)."""
    out: dict[int, float] = {}
    for _, pid, t in effects:
        if t > after and (pid not in out or t < out[pid]):
            out[pid] = t
    return out
