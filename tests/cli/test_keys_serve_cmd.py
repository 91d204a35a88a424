"""``tether keys`` and ``tether serve`` as users run them: real subprocesses, a real store, a
real server on a free port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.cli.conftest import ROOT, run_cli

DEADLINE = 60.0


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'k.db'}"
    made = run_cli(
        "keys", "create", "--tenant", "acme", "--scopes", "read,submit", "--json", store=store
    )
    assert made.rc == 0, made.err
    rec = made.json()
    assert rec["tenant"] == "acme" and rec["scopes"] == ["read", "submit"]
    assert rec["key"].startswith(f"tth_{rec['key_id']}_")
    text = run_cli("keys", "create", "--tenant", "globex", "--name", "ci", store=store)
    assert text.rc == 0 and "not shown again" in text.err
    listed = run_cli("keys", "list", "--json", store=store).json()
    assert {k["tenant"] for k in listed} == {"acme", "globex"}
    assert all("key" not in k for k in listed)
    assert rec["key"] not in (tmp_path / "k.db").read_bytes().decode("latin-1")
    only = run_cli("keys", "list", "--tenant", "acme", "--json", store=store).json()
    assert [k["key_id"] for k in only] == [rec["key_id"]]
    gone = run_cli("keys", "revoke", rec["key_id"], "--json", store=store)
    assert gone.rc == 0 and gone.json()["revoked_at"] is not None
    assert run_cli("keys", "revoke", "nope", store=store).rc == 2
    bad = run_cli("keys", "create", "--tenant", "acme", "--scopes", "root", store=store)
    assert bad.rc == 2 and "unknown scope" in bad.err


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env["PYTHONPATH"] = str(ROOT)
    env["HOME"] = str(tmp_path)
    return env


def _serve(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tether.cli.main", "serve", "--port", "0", *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=DEADLINE)
    return out, err


def test_serve_alone_on_a_laptop_runs_workflows_in_local_mode(tmp_path: Path) -> None:
    proc = _serve(tmp_path, "--app", "tests.server.apps:workflows")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "tether serve: http://127.0.0.1:" in first, first + (
            proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        )
        assert "local mode" in proc.stdout.readline()
        url = first.split()[2]
        with httpx.Client(base_url=url, timeout=DEADLINE) as c:
            r = c.post("/v1/runs", json={"workflow": "echo", "input": {"text": "laptop"}})
            assert r.status_code == 202
            run_id = r.json()["run_id"]
            deadline = time.monotonic() + DEADLINE
            while (run := c.get(f"/v1/runs/{run_id}").json())["status"] != "COMPLETED":
                assert time.monotonic() < deadline, run
                time.sleep(0.05)
            assert run["state"]["answer"] == "LAPTOP"
    finally:
        _stop(proc)
    assert proc.returncode == 0
    assert (tmp_path / ".tether" / "tether.db").exists()  # the default store


def test_serve_refuses_a_public_bind_without_keys_and_takes_one_with_them(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    refused = _serve(tmp_path, "--store", store, "--host", "0.0.0.0")
    _, err = refused.communicate(timeout=DEADLINE)
    assert (
        refused.returncode == 2
        and "refusing to bind 0.0.0.0" in err
        and "tether keys create" in err
    )
    key = run_cli("keys", "create", "--tenant", "acme", "--json", store=store).json()["key"]
    proc = _serve(tmp_path, "--store", store, "--host", "0.0.0.0", "--json", "--workers", "0")
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())
        assert line["mode"] == "api keys" and line["embedded_workers"] == 0
        port = line["url"].rsplit(":", 1)[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=DEADLINE) as c:
            assert c.get("/v1/runs").status_code == 401
            assert c.get("/v1/runs", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    finally:
        _stop(proc)
