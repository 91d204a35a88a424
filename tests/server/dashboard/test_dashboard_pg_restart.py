"""The dashboard through a server crash, on PostgreSQL with 2 worker processes: an open runs
list sees runs start; the server is SIGKILLed mid-run; the workers finish the runs; a server
restarted on the same port is picked up by the same page (no reload), which shows them
COMPLETED; a run's page shows its whole loop."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.server.dashboard.conftest import shot

ROOT = Path(__file__).resolve().parents[3]
PG_DSN = os.environ.get("TETHER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
APP = "tests.server.apps:workflows"
DEADLINE = 90.0

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    import psycopg

    try:
        with psycopg.connect(PG_DSN, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        if os.environ.get("TETHER_TEST_PG_REQUIRED") == "1":
            pytest.fail(f"PostgreSQL unreachable at {PG_DSN}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_DSN}: {exc}")
    schema = f"tether_dash_{secrets.token_hex(5)}"
    yield f"{PG_DSN}?schema={schema}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


_STDERR: dict[int, Any] = {}
"""Each process's stderr, a temporary file: read back when it fails to start (it says why)."""


def _tether(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env["PYTHONPATH"] = str(ROOT)
    err = tempfile.TemporaryFile()  # noqa: SIM115 (open as long as the process runs)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether.cli.main", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
    )
    _STDERR[proc.pid] = err
    return proc


def _said(proc: subprocess.Popen[str]) -> str:
    err = _STDERR[proc.pid]
    err.seek(0)
    return bytes(err.read()).decode("utf-8", "replace")[-3000:]


def _serve(url: str, port: int) -> subprocess.Popen[str]:
    proc = _tether("serve", "--store", url, "--app", APP, "--port", str(port), "--json")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=60)
    assert line, f"the server did not start (exit {proc.returncode}): {_said(proc)}"
    assert json.loads(line)["url"].endswith(f":{port}")
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_all(base: str, ids: list[str], done: bool) -> None:
    end = time.monotonic() + DEADLINE
    with httpx.Client(base_url=base, timeout=DEADLINE) as c:
        while True:
            runs = [c.get(f"/v1/runs/{i}").json() for i in ids]
            ok = [r["status"] == "COMPLETED" if done else r["step"] >= 1 for r in runs]
            if all(ok):
                return
            assert time.monotonic() < end, [(r["status"], r["step"]) for r in runs]
            time.sleep(0.05)


def test_the_dashboard_follows_runs_across_a_server_crash(page: Page, pg_url: str) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = _serve(pg_url, port)
    workers = [
        _tether("worker", "--store", pg_url, "--app", APP, "--concurrency", "8") for _ in range(2)
    ]
    try:
        page.goto(f"{base}/runs")
        expect(page.locator("#runs-empty")).to_be_visible()  # an empty store
        with httpx.Client(base_url=base, timeout=DEADLINE) as c:
            line = {"workflow": "count", "input": {"n": 20, "pause": 0.1}}
            ids = [c.post("/v1/runs", json=line).json()["run_id"] for _ in range(6)]
        for run_id in ids:  # they show up live
            expect(page.locator(f'tr[data-run-id="{run_id}"]')).to_be_visible()
        _wait_all(base, ids, done=False)  # mid-run
        server.send_signal(signal.SIGKILL)
        server.communicate(timeout=DEADLINE)
        expect(page.locator("#live-indicator")).to_have_class("live-dot offline")
        shot(page, "pg-restart-server-killed")

        # the workers finish without the server; then a new server on the same port
        deadline = time.monotonic() + DEADLINE
        while True:
            proc = subprocess.run(
                [sys.executable, "-m", "tether.cli.main", "runs", "list", "--store", pg_url,
                 "--json", "--limit", "50"],
                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                capture_output=True, text=True, timeout=DEADLINE,
            )  # fmt: skip
            if proc.returncode == 0 and proc.stdout.count('"COMPLETED"') >= len(ids):
                break
            assert time.monotonic() < deadline, proc.stdout[-2000:] + proc.stderr[-2000:]
            time.sleep(0.5)
        server = _serve(pg_url, port)

        for run_id in ids:  # the same page, never reloaded, reconnects and shows them done
            row = page.locator(f'tr[data-run-id="{run_id}"]')
            expect(row).to_have_attribute("data-status", "COMPLETED", timeout=DEADLINE * 1000)
        shot(page, "pg-restart-completed")
        page.locator(f'tr[data-run-id="{ids[0]}"] td:nth-child(3)').click()
        expect(page.locator("#run-status")).to_have_attribute("data-status", "COMPLETED")
        expect(page.locator("#timeline .step-row")).to_have_count(21)  # input + 20 ticks
        expect(page.locator('#graph [data-node="tick"]')).to_contain_class("visited")
    finally:
        for proc in (server, *workers):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (server, *workers):
            try:
                proc.communicate(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
