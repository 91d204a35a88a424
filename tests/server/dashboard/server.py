"""A real ``tether serve`` app in a child process (uvicorn on a free 127.0.0.1 port) over a
SQLite store in a temporary folder, with an approver (``alice``, role finance) registered and
optionally an API key, for the dashboard tests and benchmark."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tether import Runtime
from tether.governance.approvals import Approvals, generate_key, private_pem
from tether.server.keys import create_key

ROOT = Path(__file__).resolve().parents[3]
DEADLINE = 90.0
"""Seconds that only bound a hang (a loaded 2-core machine)."""


@dataclass
class Served:
    base: str
    store_url: str
    key_file: Path
    api_key: str | None
    proc: subprocess.Popen[str]

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)

    def submit(self, workflow: str, data: dict[str, Any] | None = None) -> str:
        with self.client() as c:
            r = c.post("/v1/runs", json={"workflow": workflow, "input": data or {}})
            r.raise_for_status()
            return str(r.json()["run_id"])

    def run(self, run_id: str) -> dict[str, Any]:
        with self.client() as c:
            r = c.get(f"/v1/runs/{run_id}")
            r.raise_for_status()
            out: dict[str, Any] = r.json()
            return out

    def wait(self, run_id: str, *statuses: str) -> dict[str, Any]:
        """Poll until the run is in one of ``statuses`` (a deadline only bounds a hang)."""
        end = time.monotonic() + DEADLINE
        while True:
            run = self.run(run_id)
            if run["status"] in statuses:
                return run
            if time.monotonic() > end:
                raise AssertionError(f"run {run_id} is {run['status']}, not {statuses}")
            time.sleep(0.05)


async def _prepare(
    store_url: str, key_pem_pub: Any, with_api_key: bool, scopes: tuple[str, ...]
) -> str | None:
    async with Runtime(store_url) as rt:
        tenant = "acme" if with_api_key else None  # the key's tenant submits the runs
        await Approvals(rt).register_approver("alice", "finance", key_pem_pub, tenant=tenant)
        if not with_api_key:
            return None
        _, key = await create_key(rt.store, "acme", list(scopes), "dashboard")
        return key


APP = "tests.server.dashboard.app:app"


def start(
    folder: Path,
    *,
    with_api_key: bool = False,
    events: int = 100,
    root_path: str = "",
    app: str = APP,
    scopes: tuple[str, ...] = ("read", "submit", "approve"),
) -> Served:
    """Start the server (``root_path``: behind a proxy that mounts it there and strips it;
    ``app``: the ``module:factory`` it serves; ``scopes``: the API key's); stop it with
    ``stop(served)``."""
    store_url = f"sqlite:///{folder / 'dashboard.db'}"
    key = generate_key()
    key_file = folder / "alice.pem"
    key_file.write_bytes(private_pem(key))
    # a thread of its own: Playwright's sync API keeps an event loop in the test's thread
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        api_key = pool.submit(asyncio.run, _prepare(store_url, key, with_api_key, scopes)).result()
    env = {
        **os.environ,
        "TETHER_DASHBOARD_STORE": store_url,
        "TETHER_DASHBOARD_EVENTS": str(events),
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    cmd = [sys.executable, "-m", "uvicorn", "--factory", app]
    cmd += ["--host", "127.0.0.1", "--port", "0", "--log-level", "info", "--no-access-log"]
    cmd += ["--root-path", root_path] if root_path else []
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen: list[str] = []
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        m = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
        if m:
            _drain(proc)
            return Served(m[1], store_url, key_file, api_key, proc)
    proc.kill()
    raise RuntimeError("the server did not start:\n" + "".join(seen))


def _drain(proc: subprocess.Popen[str]) -> None:
    """Keep reading the server's stderr so a full pipe never blocks it."""
    import threading

    def pump() -> None:
        assert proc.stderr is not None
        for _ in proc.stderr:
            pass

    threading.Thread(target=pump, daemon=True).start()


def stop(served: Served) -> None:
    served.proc.terminate()
    try:
        served.proc.wait(30)
    except subprocess.TimeoutExpired:
        served.proc.kill()
        served.proc.wait(30)
