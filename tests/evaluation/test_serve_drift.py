"""``tether serve --drift`` as a real process on a SQLite file: the embedded worker runs the
submitted runs and the server's drift watch checks each once it completes (real MiniLM); the
mistakes it refuses before serving."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.worker.procs import ROOT, pythonpath, wait_until
from tests.worker.test_worker_drift import FAITHFUL, OFF_TOPIC, _submit, checks, flagged
from tether.cli.main import main

APP = "tests.worker.drift_app:workflows"


def test_serve_drift_checks_the_runs_it_executes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    env = {**os.environ, "PYTHONPATH": pythonpath()}
    err = tmp_path / "serve.stderr"
    argv = ["--json", "serve", "--app", APP, "--store", url, "--port", "0", "--drift"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether.cli", *argv],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err.open("w"), text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, err.read_text()
        assert json.loads(line)["drift"] == ["helpdesk"]
        good, bad = asyncio.run(_submit(url, FAITHFUL, OFF_TOPIC))
        wait_until("both runs checked", lambda: checks(url, [good, bad]) == [1, 1], every=0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    assert flagged(url) == [(bad, "drift.goal_output")]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--app", APP, "--store", "memory://", "--drift"], "a store of its own"),
        (["--drift"], "pass --app"),
        (["--app", APP, "--drift-threshold", "0"], "must be in (0, 1]"),
    ],
)
def test_serve_drift_refuses_mistakes(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--store", f"sqlite:///{tmp_path / 'runs.db'}"] if "--store" not in argv else []
    assert main(["serve", "--port", "0", *store, *argv]) == 2
    assert message in capsys.readouterr().err
