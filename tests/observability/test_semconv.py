"""tether's span names and attribute keys are the ones of the pinned GenAI semantic
conventions: checked against the constants of ``opentelemetry-semantic-conventions``."""

from __future__ import annotations

import warnings
from importlib.metadata import version

import pytest

pytest.importorskip("opentelemetry.semconv")

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.semconv.schemas import Schemas

from tether.observability import semconv as sc


def test_the_pinned_version_is_the_installed_one() -> None:
    assert version("opentelemetry-semantic-conventions") == sc.SEMCONV_VERSION
    assert list(Schemas)[-1].value == sc.SCHEMA_URL


def test_attribute_keys_match_the_conventions() -> None:
    pairs = {
        sc.OPERATION_NAME: ga.GEN_AI_OPERATION_NAME,
        sc.PROVIDER_NAME: ga.GEN_AI_PROVIDER_NAME,
        sc.WORKFLOW_NAME: ga.GEN_AI_WORKFLOW_NAME,
        sc.AGENT_NAME: ga.GEN_AI_AGENT_NAME,
        sc.AGENT_ID: ga.GEN_AI_AGENT_ID,
        sc.CONVERSATION_ID: ga.GEN_AI_CONVERSATION_ID,
        sc.REQUEST_MODEL: ga.GEN_AI_REQUEST_MODEL,
        sc.REQUEST_STREAM: ga.GEN_AI_REQUEST_STREAM,
        sc.RESPONSE_MODEL: ga.GEN_AI_RESPONSE_MODEL,
        sc.RESPONSE_ID: ga.GEN_AI_RESPONSE_ID,
        sc.RESPONSE_FINISH_REASONS: ga.GEN_AI_RESPONSE_FINISH_REASONS,
        sc.RESPONSE_TIME_TO_FIRST_CHUNK: ga.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
        sc.USAGE_INPUT_TOKENS: ga.GEN_AI_USAGE_INPUT_TOKENS,
        sc.USAGE_OUTPUT_TOKENS: ga.GEN_AI_USAGE_OUTPUT_TOKENS,
        sc.OUTPUT_TYPE: ga.GEN_AI_OUTPUT_TYPE,
        sc.INPUT_MESSAGES: ga.GEN_AI_INPUT_MESSAGES,
        sc.OUTPUT_MESSAGES: ga.GEN_AI_OUTPUT_MESSAGES,
        sc.TOOL_NAME: ga.GEN_AI_TOOL_NAME,
        sc.TOOL_TYPE: ga.GEN_AI_TOOL_TYPE,
        sc.TOOL_CALL_ID: ga.GEN_AI_TOOL_CALL_ID,
        sc.TOOL_CALL_ARGUMENTS: ga.GEN_AI_TOOL_CALL_ARGUMENTS,
        sc.TOOL_CALL_RESULT: ga.GEN_AI_TOOL_CALL_RESULT,
        sc.ERROR_TYPE: error_attributes.ERROR_TYPE,
    }
    for ours, theirs in pairs.items():
        assert ours == theirs


def test_operation_names_match_the_conventions() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # moved to the GenAI repository
        ops = ga.GenAiOperationNameValues
        assert ops.INVOKE_WORKFLOW.value == sc.OP_INVOKE_WORKFLOW
        assert ops.INVOKE_AGENT.value == sc.OP_INVOKE_AGENT
        assert ops.CHAT.value == sc.OP_CHAT
        assert ops.EXECUTE_TOOL.value == sc.OP_EXECUTE_TOOL
        assert "text" in {v.value for v in ga.GenAiOutputTypeValues}


def test_every_gen_ai_key_tether_emits_is_a_convention() -> None:
    known = {v for k, v in vars(ga).items() if k.startswith("GEN_AI_") and isinstance(v, str)}
    ours = {v for k, v in vars(sc).items() if isinstance(v, str) and v.startswith("gen_ai.")}
    assert ours <= known, ours - known
    from tether.core.messages import Message
    from tether.llm.model import span_attributes  # the chat span's response attributes
    from tether.llm.types import ModelRequest, ModelResponse

    request = ModelRequest(messages=(Message.user("hi"),))
    keys = span_attributes(ModelResponse(text="x"), request).keys()
    assert {k for k in keys if k.startswith("gen_ai.")} <= known


def test_span_names_follow_the_operation_target_pattern() -> None:
    assert sc.span_name(sc.OP_CHAT, "gpt-4o") == "chat gpt-4o"
    assert sc.span_name(sc.OP_EXECUTE_TOOL, "search") == "execute_tool search"
    assert sc.span_name(sc.OP_INVOKE_WORKFLOW, "wf") == "invoke_workflow wf"
