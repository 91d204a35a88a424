"""One trace per run across processes: a traced run SIGKILLed inside a step in one real process
and recovered by another gives one trace, with every exported span under the run's root."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk")

from tests.observability.span_files import read_spans
from tether.observability import run_trace_ids
from tether.store.sqlite import SqliteStore

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
APP = HERE / "trace_crash_app.py"
DEADLINE = 120.0


def _spawn(db: Path, spans: Path, run_id: str, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TETHER_TRACE_EXPORTER", None)
    return subprocess.Popen(
        [sys.executable, str(APP), str(db), str(spans), run_id, mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    end = time.monotonic() + DEADLINE
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early: {proc.communicate()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("the worker never reached step 2")
        time.sleep(0.05)


def test_sigkilled_run_resumed_elsewhere_is_one_trace(tmp_path: Path) -> None:
    db, first, second = tmp_path / "runs.db", tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_id = "traced-crash-1"
    proc = _spawn(db, first, run_id, "first")
    _wait_for(Path(str(first) + ".ready"), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=DEADLINE)

    out, err = _spawn(db, second, run_id, "second").communicate(timeout=DEADLINE)
    assert out.split() == ["JOINED", "COMPLETED"], err

    a, b = read_spans(first), read_spans(second)
    assert a and b, "both processes exported spans"
    run = asyncio.run(_run(db, run_id))
    ids = run_trace_ids(run_id, run.metadata)
    assert "trace" in run.metadata  # stored with the run when it was created

    spans = a + b
    assert {s["trace_id"] for s in spans} == {f"{ids.trace_id:032x}"}  # one trace
    by_id = {s["span_id"]: s for s in spans}
    assert len(by_id) == len(spans)

    # the root: exported once, by the process that ended the run, with the stored ids
    (root,) = [s for s in spans if s["name"] == "invoke_workflow traced_crash"]
    assert root in b
    assert root["span_id"] == f"{ids.span_id:016x}" and root["parent_span_id"] is None
    assert root["attributes"]["tether.run.status"] == "COMPLETED"

    # every exported span hangs off an exported span: nothing orphaned by the kill
    for s in spans:
        if s is not root:
            assert s["parent_span_id"] in by_id, s

    def names(spans: list[dict[str, object]]) -> list[str]:
        return sorted(str(s["name"]) for s in spans)

    # the killed process finished step 1 (its node, model and tool call) and nothing after
    assert names(a) == sorted(
        ["step 1", "invoke_agent one", "chat scripted", "execute_tool lookup"]
    )
    # the second one ran step 2 again (resumed) and step 3, and closed the run
    steps_b = {s["name"]: s for s in b if s["name"].startswith("step ")}
    assert set(steps_b) == {"step 2", "step 3"}
    assert steps_b["step 2"]["attributes"].get("tether.resumed") is True
    for s in [*steps_b.values(), *(x for x in a if x["name"] == "step 1")]:
        assert s["parent_span_id"] == root["span_id"]
    node_two = next(s for s in b if s["name"] == "invoke_agent two")
    assert node_two["parent_span_id"] == steps_b["step 2"]["span_id"]
    chat_two = next(s for s in b if s["name"] == "chat scripted")
    assert chat_two["parent_span_id"] == node_two["span_id"]
    worker_a = next(s for s in a if s["name"] == "step 1")["attributes"]["tether.worker"]
    assert steps_b["step 2"]["attributes"]["tether.worker"] != worker_a


async def _run(db: Path, run_id: str):  # type: ignore[no-untyped-def]
    store = SqliteStore(str(db))
    await store.setup()
    try:
        return await store.get_run(run_id)
    finally:
        await store.close()
