"""Worker processes for the tests: ``tether worker`` started as a real subprocess, its startup
line read back, and the sink logs of ``worker_app`` parsed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.worker.worker_app:workflows"
GUARD = 120.0
"""Hang guard (seconds) for a condition a test waits on: generous for a loaded machine."""


def pythonpath() -> str:
    """The repository root (for ``tests.worker.worker_app``) before the inherited path."""
    return os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)


@dataclass
class WorkerProc:
    proc: subprocess.Popen[str]
    owner: str
    pid: int
    stderr_path: Path
    info: dict[str, Any] = field(default_factory=dict)
    """The worker's startup line (``--json``)."""

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = GUARD) -> int:
        return self.proc.wait(timeout=timeout)

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=GUARD)


def spawn(url: str, tmp: Path, name: str, *args: str, app: str = APP) -> WorkerProc:
    """Start ``tether worker`` and return once it is registered and claiming runs."""
    env = {**os.environ, "PYTHONPATH": pythonpath(), "TETHER_WORKER_ID": name}
    err = tmp / f"{name}.stderr"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tether.cli",
            "--json",
            "worker",
            "--app",
            app,
            "--store",
            url,
            *args,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=err.open("w"),
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=GUARD)
        raise AssertionError(f"worker {name} exited before starting: {err.read_text()}")
    info: dict[str, Any] = json.loads(line)
    return WorkerProc(proc, info["owner"], proc.pid, err, info)


def wait_until(what: str, check: Any, guard: float = GUARD, every: float = 0.02) -> Any:
    """Poll ``check()`` until it returns something truthy (returned); fail after ``guard``."""
    deadline = time.monotonic() + guard
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def lines(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [ln.split() for ln in path.read_text().splitlines() if ln]


def repeated_effects(sink: Path) -> list[tuple[str, str]]:
    """(run, step) pairs whose effect was performed more than once."""
    counts = Counter((run, step) for _, run, step, _ in lines(sink / "effects.log"))
    return sorted(k for k, n in counts.items() if n > 1)


def effects_by_pid(sink: Path) -> Counter[int]:
    return Counter(int(pid) for *_, pid in lines(sink / "effects.log"))


def stop_all(workers: Iterable[WorkerProc]) -> None:
    for w in workers:
        w.kill()
