"""Where spans go is configured, never guessed: OTLP over HTTP and gRPC to local sinks, the
console, ``none``; the environment's ``TETHER_TRACE_EXPORTER``; bad values are typed errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from tether import START, Graph, Runtime
from tether.core.errors import ConfigurationError
from tether.llm import ScriptedModel
from tether.observability import configure_tracing, configure_tracing_from_env, shutdown_tracing
from tether.observability.tracing import tracer
from tether.store.memory import MemoryStore
from tether.testing.otlp_sink import OtlpGrpcSink, OtlpHttpSink

ROOT = Path(__file__).resolve().parents[2]


class S(TypedDict, total=False):
    a: str


def _workflow() -> Any:
    model = ScriptedModel(["x"])

    async def ask(state: S) -> dict[str, Any]:
        return {"a": (await model.chat("q")).text}

    g = Graph(S, name="exported")
    g.add_node("ask", ask).add_edge(START, "ask")
    return g.compile()


EXPECTED = {"invoke_workflow exported", "step 1", "invoke_agent ask", "chat scripted"}


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    shutdown_tracing()


async def test_otlp_http_to_a_local_sink() -> None:
    with OtlpHttpSink() as sink:
        configure_tracing("otlp-http", endpoint=sink.endpoint)
        async with Runtime(MemoryStore(), recover=False) as rt:
            await rt.run(_workflow(), {})
        shutdown_tracing()  # flushes the batch
        names = sink.wait_for(lambda got: set(got) >= EXPECTED)
    assert sorted(names) == sorted(EXPECTED)
    (root,) = [s for s in sink.spans if s["name"] == "invoke_workflow exported"]
    assert root["attributes"]["gen_ai.operation.name"] == "invoke_workflow"


async def test_otlp_grpc_to_a_local_sink() -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc")
    with OtlpGrpcSink() as sink:
        configure_tracing("otlp-grpc", endpoint=sink.endpoint)
        async with Runtime(MemoryStore(), recover=False) as rt:
            await rt.run(_workflow(), {})
        shutdown_tracing()
        names = sink.wait_for(lambda got: set(got) >= EXPECTED)
    assert sorted(names) == sorted(EXPECTED)


def test_the_environment_configures_the_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    with OtlpHttpSink() as sink:
        monkeypatch.setenv("TETHER_TRACE_EXPORTER", "otlp")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.endpoint)
        setup = configure_tracing_from_env()
        assert setup is not None and setup.exporter == "otlp-http"
        with tracer("test").start_as_current_span("hello"):
            pass
        shutdown_tracing()
        assert sink.wait_for(lambda got: "hello" in got) == ["hello"]


def test_none_turns_tracing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_TRACE_EXPORTER", "none")
    assert configure_tracing_from_env() is None
    assert tracer() is None  # even if the application installed a provider


def test_bad_exporter_names_are_typed_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="otlp-grpc"):
        configure_tracing("zipkin")
    monkeypatch.setenv("TETHER_TRACE_EXPORTER", "jaeger")
    with pytest.raises(ConfigurationError, match="TETHER_TRACE_EXPORTER"):
        configure_tracing_from_env()


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TETHER_TRACE", "OTEL_"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


RUN_ONE = """
import asyncio, sys
from tests.observability.test_tracing_config import _workflow
from tether import Runtime
from tether.store.memory import MemoryStore

async def main():
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(_workflow(), {})
        return (await rt.get_run(res.run_id)).metadata
meta = asyncio.run(main())
"""


def test_the_console_exporter_prints_spans() -> None:
    got = _python(RUN_ONE, TETHER_TRACE_EXPORTER="console")
    assert got.returncode == 0, got.stderr
    assert '"name": "invoke_workflow exported"' in got.stdout


def test_a_bad_environment_value_logs_and_runs_untraced() -> None:
    code = RUN_ONE + "assert 'trace' not in meta\nprint('ran')\n"
    got = _python(code, TETHER_TRACE_EXPORTER="jaeger")
    assert got.returncode == 0, got.stderr
    assert "ran" in got.stdout and "unknown trace exporter 'jaeger'" in got.stderr


def test_tracing_off_makes_no_spans_and_imports_no_sdk() -> None:
    """Not configured: no SDK import, no span object, no trace metadata on the run."""
    code = (
        """
import opentelemetry.trace as ot
made = []
for cls in (ot.NonRecordingSpan, ot.ProxyTracer):
    for name in ("__init__",):
        orig = getattr(cls, name)
        def spy(self, *a, _orig=orig, **k):
            made.append(type(self).__name__)
            return _orig(self, *a, **k)
        setattr(cls, name, spy)
"""
        + RUN_ONE
        + """
assert "trace" not in meta, meta
assert not [m for m in sys.modules if m.startswith("opentelemetry.sdk")], "SDK imported"
assert made == [], made
print("untraced")
"""
    )
    got = _python(code)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "untraced"
