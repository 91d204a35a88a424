"""A server and 2 worker processes on PostgreSQL: SIGKILL the server mid-run; the runs go on in
the workers; a restarted server shows them completed."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tether.store.postgres import PostgresStore

ROOT = Path(__file__).resolve().parents[2]
PG_DSN = os.environ.get("TETHER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
APP = "tests.server.apps:workflows"
DEADLINE = 90.0

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        if os.environ.get("TETHER_TEST_PG_REQUIRED") == "1":
            pytest.fail(f"PostgreSQL unreachable at {PG_DSN}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_DSN}: {exc}")
    schema = f"tether_srv_{secrets.token_hex(5)}"
    yield f"{PG_DSN}?schema={schema}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


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
        stderr=subprocess.PIPE,
        text=True,
    )


def _start_server(url: str, app: str = APP) -> tuple[subprocess.Popen[str], str]:
    proc = _tether("serve", "--store", url, "--app", app, "--port", "0", "--json")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"the server did not start: {proc.communicate(timeout=30)[1]}")
    return proc, str(json.loads(line)["url"])


def _statuses(url: str, ids: list[str]) -> dict[str, tuple[str, int]]:
    async def read() -> dict[str, tuple[str, int]]:
        store = PostgresStore(url.split("?")[0], schema=url.split("schema=")[1])
        await store.setup()
        try:
            out = {}
            for run_id in ids:
                run = await store.get_run(run_id)
                out[run_id] = (run.status.value, run.step)
            return out
        finally:
            await store.close()

    return asyncio.run(read())


def test_server_killed_mid_run_runs_go_on_and_a_restarted_server_shows_them(
    pg_url: str,
) -> None:
    server, base = _start_server(pg_url)
    workers = [
        _tether("worker", "--store", pg_url, "--app", APP, "--concurrency", "8") for _ in range(2)
    ]
    try:
        with httpx.Client(base_url=base, timeout=DEADLINE) as c:
            line = {"workflow": "count", "input": {"n": 15, "pause": 0.05}}
            ids = [c.post("/v1/runs", json=line).json()["run_id"] for _ in range(8)]
            deadline = time.monotonic() + DEADLINE
            while True:  # mid-run: every run has started, none has finished
                runs = [c.get(f"/v1/runs/{i}").json() for i in ids]
                if all(r["step"] >= 1 for r in runs):
                    break
                assert time.monotonic() < deadline, [r["status"] for r in runs]
                time.sleep(0.05)
        assert any(r["status"] != "COMPLETED" for r in runs)
        server.send_signal(signal.SIGKILL)
        server.communicate(timeout=DEADLINE)
        assert server.returncode == -signal.SIGKILL
        at_kill = {r["run_id"]: r["step"] for r in runs}
        deadline = time.monotonic() + DEADLINE
        while True:  # with no server at all, the workers carry every run on to the end
            now = _statuses(pg_url, ids)
            if all(status == "COMPLETED" for status, _ in now.values()):
                break
            assert time.monotonic() < deadline, now
            time.sleep(0.2)
        assert all(now[i][1] > at_kill[i] for i in ids if at_kill[i] < 15)
        server, base = _start_server(pg_url)
        with httpx.Client(base_url=base, timeout=DEADLINE) as c:
            for run_id in ids:
                run = c.get(f"/v1/runs/{run_id}").json()
                assert run["status"] == "COMPLETED" and run["state"]["i"] == 15
            listed = c.get("/v1/runs", params={"status": "COMPLETED", "limit": 100}).json()
            assert set(ids) <= {r["run_id"] for r in listed["items"]}
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
