"""``tether trace RUN``: the timeline of a known run (a snapshot of the drawing: fake clock,
fixed width, no colour), its spans as JSON and over OTLP, and ``--follow`` on a live run."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT, run_cli
from tests.cli.trace_known_run import RUN_ID, known_run
from tether.store.sqlite import SqliteStore
from tether.testing import FakeClock

SNAPSHOT = Path(__file__).parent / "snapshots" / "trace_known_run.txt"
DEADLINE = 120.0


@pytest.fixture
def known(tmp_path: Path) -> str:
    path = tmp_path / "runs.db"
    clock = FakeClock(1_700_000_000.0)
    asyncio.run(known_run(SqliteStore(str(path), clock=clock), clock))
    return f"sqlite:///{path}"


def test_the_timeline_of_a_known_run(known: str) -> None:
    got = run_cli("trace", RUN_ID, "--width", "120", "--no-color", store=known)
    assert got.rc == 0, got.err
    if os.environ.get("TETHER_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(got.out)
    assert got.out == SNAPSHOT.read_text()


def test_the_json_export_is_a_document_of_spans(known: str) -> None:
    got = run_cli("trace", RUN_ID, "--export", "json", store=known)
    assert got.rc == 0, got.err
    doc = json.loads(got.out)
    assert doc["run_id"] == RUN_ID and doc["status"] == "ESCALATED"
    spans = {s["name"]: s for s in doc["spans"]}
    root = spans["invoke_workflow sales_assistant"]
    assert root["parent_span_id"] is None and len({s["trace_id"] for s in doc["spans"]}) == 1
    chat = spans["chat gpt-4o-mini"]
    assert chat["kind"] == "CLIENT"
    assert chat["attributes"]["gen_ai.usage.input_tokens"] == 1200
    assert chat["attributes"]["gen_ai.provider.name"] == "openai"
    assert chat["parent_span_id"] == spans["node plan"]["span_id"]
    assert spans["node plan"]["parent_span_id"] == spans["step 1"]["span_id"]
    assert spans["step 1"]["parent_span_id"] == root["span_id"]
    tool = spans["execute_tool crm_lookup"]
    assert tool["attributes"]["tether.tool.scope"] == "write"
    assert tool["end_time_unix_nano"] - tool["start_time_unix_nano"] == pytest.approx(1.5e9, 1e-3)
    retry = [e for e in spans["node check"]["events"] if e["name"] == "node_retry"]
    assert len(retry) == 1
    # interrupt payloads are content: not exported
    events = [e for s in doc["spans"] for e in s["events"] if e["name"] == "interrupt"]
    assert events and "payload" not in events[0]["attributes"]


def test_the_otlp_export_goes_to_the_named_endpoint_only(known: str) -> None:
    from tether.testing.otlp_sink import OtlpHttpSink

    refused = run_cli("trace", RUN_ID, "--export", "otlp", store=known)
    assert refused.rc == 2 and "needs an endpoint" in refused.err
    with OtlpHttpSink() as sink:
        got = run_cli("trace", RUN_ID, "--export", "otlp", "--endpoint", sink.endpoint, store=known)
        assert got.rc == 0, got.err
        assert "sent 13 spans" in got.out
        names = sink.wait_for(lambda n: len(n) >= 13)
    assert "invoke_workflow sales_assistant" in names and "execute_tool web_search" in names
    assert len({s["trace_id"] for s in sink.spans}) == 1


def test_an_otlp_export_the_collector_refused_is_an_error_not_sent(known: str) -> None:
    """Before, the SDK only logged the refusal: 'sent 13 spans', exit status 0."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(400)  # not retried by the exporter: a refusal, at once
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        got = run_cli("trace", RUN_ID, "--export", "otlp", "--endpoint", endpoint, store=known)
    finally:
        server.shutdown()
        server.server_close()
    assert got.rc == 2, got.out
    assert "sent 13 spans" not in got.out
    assert f"{endpoint} did not take the spans of run {RUN_ID}: 0 of 13 sent" in got.err


def test_an_unknown_run_is_a_clear_error(known: str) -> None:
    got = run_cli("trace", "no-such-run", store=known)
    assert got.rc == 2 and "not found" in got.err


def test_follow_draws_a_live_run_until_it_settles(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    run_id = "slow-run-1"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "trace_slow_app.py"), str(db), run_id],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        end = time.monotonic() + DEADLINE
        while not _exists(db, run_id):
            assert time.monotonic() < end and worker.poll() is None, "the run never started"
            time.sleep(0.05)
        got = run_cli(
            "trace", run_id, "--follow", "--interval", "0.1", "--no-color", store=f"sqlite:///{db}"
        )
        assert worker.wait(timeout=DEADLINE) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    assert got.rc == 0, got.err
    assert "COMPLETED" in got.out
    for step in range(1, 6):
        assert f"step {step}" in got.out


def _exists(db: Path, run_id: str) -> bool:
    if not db.exists():
        return False

    async def look() -> bool:
        store = SqliteStore(str(db))
        await store.setup()
        try:
            await store.get_run(run_id)
            return True
        except Exception:
            return False
        finally:
            await store.close()

    return asyncio.run(look())
