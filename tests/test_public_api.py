"""The public surface of ``tether``: pinned, importable, and the error tree's shape."""

from __future__ import annotations

import importlib

import pytest

import tether

EXPECTED = [
    "Command",
    "ConfigurationError",
    "END",
    "EscalationSignal",
    "Graph",
    "GraphDefinitionError",
    "IdempotencyConflictError",
    "IllegalTransitionError",
    "Interrupt",
    "InvalidInputError",
    "InvalidRouteError",
    "InvalidUpdateError",
    "LeaseLostError",
    "ModelCircuitOpenError",
    "ModelError",
    "ModelRateLimitedError",
    "ModelRequestError",
    "ModelResponseError",
    "ModelTimeoutError",
    "ModelTransientError",
    "ModelUnavailableError",
    "NodeError",
    "Phase",
    "QueueFullError",
    "Reducer",
    "Retention",
    "RetryPolicy",
    "RunContext",
    "RunFailedError",
    "RunHandle",
    "RunNotFoundError",
    "RunParkedError",
    "RunResult",
    "RunRetry",
    "RunStateError",
    "RunStatus",
    "Runtime",
    "START",
    "SchemaVersionError",
    "Send",
    "SnapshotPolicy",
    "StepInfo",
    "StepNotFoundError",
    "StoreError",
    "StructuredOutputError",
    "SyncRuntime",
    "TetherError",
    "TetherSignal",
    "UnstorableValueError",
    "UserError",
    "Workflow",
    "WorkflowConflictError",
    "WorkflowVersionError",
    "__version__",
    "add",
    "append",
    "interrupt",
    "maximum",
    "merge",
    "minimum",
    "per_run",
    "replace",
    "union",
]


def test_all_is_pinned() -> None:
    assert sorted(tether.__all__) == EXPECTED
    assert len(tether.__all__) == len(set(tether.__all__))


@pytest.mark.parametrize("name", EXPECTED)
def test_every_public_name_is_importable(name: str) -> None:
    mod = importlib.import_module("tether")
    assert getattr(mod, name) is not None
    ns: dict[str, object] = {}
    exec(f"from tether import {name}", ns)
    assert ns[name] is getattr(tether, name)


def test_star_import_gives_exactly_all() -> None:
    ns: dict[str, object] = {}
    exec("from tether import *", ns)
    assert sorted(k for k in ns if k != "__builtins__") == EXPECTED


def test_graph_package_reexports() -> None:
    import tether.graph as g

    for name in g.__all__:
        assert getattr(tether, name) is getattr(g, name)


def test_version() -> None:
    assert tether.__version__ == "0.1.0"


def test_error_tree() -> None:
    from tether import (
        ConfigurationError,
        EscalationSignal,
        GraphDefinitionError,
        IdempotencyConflictError,
        IllegalTransitionError,
        Interrupt,
        InvalidInputError,
        InvalidRouteError,
        InvalidUpdateError,
        LeaseLostError,
        NodeError,
        RunFailedError,
        RunNotFoundError,
        RunStateError,
        SchemaVersionError,
        StepNotFoundError,
        StoreError,
        TetherError,
        TetherSignal,
        UnstorableValueError,
        UserError,
    )

    # signals are control flow: a node's `except Exception` cannot swallow them
    for sig in (Interrupt, EscalationSignal):
        assert issubclass(sig, TetherSignal)
        assert not issubclass(sig, Exception)
    assert issubclass(TetherSignal, BaseException)
    for user in (
        GraphDefinitionError,
        InvalidUpdateError,
        InvalidRouteError,
        InvalidInputError,
        UnstorableValueError,
        RunNotFoundError,
        StepNotFoundError,
        IdempotencyConflictError,
        IllegalTransitionError,
        RunStateError,
        ConfigurationError,
    ):
        assert issubclass(user, UserError) and issubclass(user, ValueError)
    assert issubclass(RunNotFoundError, LookupError)
    assert issubclass(NodeError, RunFailedError)
    assert issubclass(RunFailedError, TetherError) and not issubclass(RunFailedError, UserError)
    assert issubclass(LeaseLostError, StoreError) and issubclass(SchemaVersionError, StoreError)
    assert issubclass(UserError, TetherError) and issubclass(StoreError, TetherError)
    assert "tether runs history r1" in str(StepNotFoundError("r1", 3))
    assert LeaseLostError("r1", 7).token == 7
    from tether import WorkflowConflictError, WorkflowVersionError

    assert issubclass(WorkflowConflictError, ConfigurationError)
    assert issubclass(WorkflowVersionError, RunStateError)
    from tether import RunParkedError

    assert issubclass(RunParkedError, RunStateError)
    parked = RunParkedError("r1", {"kind": "interrupt", "reason": "q"}, [{"id": "i"}], {})
    assert "resume('r1', value)" in str(parked) and parked.interrupts == [{"id": "i"}]


def test_model_error_tree() -> None:
    from tether import (
        ModelCircuitOpenError,
        ModelError,
        ModelRateLimitedError,
        ModelRequestError,
        ModelResponseError,
        ModelTimeoutError,
        ModelTransientError,
        ModelUnavailableError,
        StructuredOutputError,
        TetherError,
        UserError,
    )
    from tether.core.errors import ToolError

    assert issubclass(ModelError, TetherError) and not issubclass(ModelError, ToolError)
    assert issubclass(ModelRequestError, UserError) and not ModelRequestError.retryable
    for retryable in (
        ModelTimeoutError,
        ModelTransientError,
        ModelResponseError,
        ModelRateLimitedError,
    ):
        assert retryable.retryable and issubclass(retryable, ModelError)
    assert issubclass(ModelResponseError, ModelTransientError)
    for final in (ModelCircuitOpenError, ModelUnavailableError, StructuredOutputError):
        assert issubclass(final, ModelError) and not final.retryable
    assert ModelRateLimitedError("slow down", retry_after=2.5).retry_after == 2.5


LLM_EXPECTED = [
    "AnthropicModel",
    "BreakerModel",
    "BreakerPolicy",
    "CachedModel",
    "CascadeModel",
    "DEFAULT_MODEL",
    "DEFAULT_PRICES",
    "Embedder",
    "FallbackModel",
    "FunctionModel",
    "HashingEmbedder",
    "HedgedModel",
    "LocalModel",
    "Message",
    "MiniLMEmbedder",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "ModelRetry",
    "OpenAICompatibleModel",
    "Price",
    "PriceTable",
    "ResponseFormat",
    "RetryingModel",
    "RouteMatch",
    "ScriptedModel",
    "SemanticCache",
    "SemanticRouter",
    "StreamChunk",
    "StructuredResult",
    "TimeoutModel",
    "Timing",
    "ToolCall",
    "ToolCallProblem",
    "ToolSpec",
    "Usage",
    "bundled_model_path",
    "chat_with_tool_repair",
    "check_tool_calls",
    "estimate_tokens",
    "fingerprint",
    "generate_structured",
    "model_from_spec",
    "model_judge",
    "resilient",
    "tool_call",
]


def test_llm_public_api_is_pinned_and_light() -> None:
    import subprocess
    import sys

    import tether.llm as llm

    assert sorted(llm.__all__) == LLM_EXPECTED
    for name in LLM_EXPECTED:
        assert getattr(llm, name) is not None
    # importing the plane must not load the heavy optional engines
    probe = (
        "import sys, tether.llm; "
        "print(sorted(m for m in ('torch', 'llama_cpp', 'sentence_transformers', 'numpy') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tools_export_the_tool_errors() -> None:
    """The README tells tool authors to raise these; they come from ``tether.tools``."""
    import tether.tools as tools
    from tether.core import errors

    for name in (
        "ToolError",
        "ToolArgumentsError",
        "ToolNotFoundError",
        "ToolTimeoutError",
        "ToolTransientError",
        "ToolRateLimitedError",
        "PolicyViolationError",
        "ToolDisabledError",
        "CircuitOpenError",
        "SagaFailedError",
        "ToolResultTooLargeError",
    ):
        assert name in tools.__all__
        assert getattr(tools, name) is getattr(errors, name)
