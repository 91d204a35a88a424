"""The OpenTelemetry names tether's spans use, pinned to one version of the conventions.

tether follows the GenAI semantic conventions as published in the Python package
``opentelemetry-semantic-conventions`` **0.66b2** (schema **1.44.0**), the version installed
with ``opentelemetry-sdk`` 1.45. The ``gen_ai.*`` conventions are still in development and
move between releases; ``tests/observability/test_semconv.py`` checks every name below against
that package's constants, so an upgrade that renames one fails there first.

Names tether adds where the conventions have none (steps, graph nodes, costs, the run's ids)
live under ``tether.*``.
"""

from __future__ import annotations

SEMCONV_PACKAGE = "opentelemetry-semantic-conventions"
SEMCONV_VERSION = "0.66b2"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"

# gen_ai.operation.name values (span names are "{operation} {name}")
OP_INVOKE_WORKFLOW = "invoke_workflow"
OP_INVOKE_AGENT = "invoke_agent"
OP_CHAT = "chat"
OP_EXECUTE_TOOL = "execute_tool"

# attribute keys of the GenAI conventions
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
WORKFLOW_NAME = "gen_ai.workflow.name"
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
CONVERSATION_ID = "gen_ai.conversation.id"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_STREAM = "gen_ai.request.stream"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
OUTPUT_TYPE = "gen_ai.output.type"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_NAME = "gen_ai.tool.name"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
ERROR_TYPE = "error.type"

# tether's own attributes
RUN_ID = "tether.run_id"
PARENT_RUN_ID = "tether.parent_run_id"
RUN_STATUS = "tether.run.status"
RUN_STEPS = "tether.run.steps"
TENANT = "tether.tenant"
WORKER = "tether.worker"
STEP = "tether.step"
NODES = "tether.step.nodes"
NODE = "tether.node"
PHASE = "tether.phase"
TASK_ID = "tether.task_id"
ATTEMPTS = "tether.attempts"
OUTCOME = "tether.outcome"
RESUMED = "tether.resumed"
TOOL_SCOPE = "tether.tool.scope"
TOOL_RETRIES = "tether.tool.retries"
TOOL_REPLAYED = "tether.tool.replayed"
COST_USD = "tether.gen_ai.cost_usd"
TTFT_S = "tether.gen_ai.ttft_s"
TPOT_S = "tether.gen_ai.tpot_s"

STEP_SPAN = "step"
"""Steps have no GenAI operation: a step span is named ``step {n}``."""
NODE_SPAN = "node"
"""A node that is not an agent (a tool or validator phase): ``node {name}``."""


def span_name(operation: str, target: str | int) -> str:
    """``{operation} {target}``, the GenAI span-name pattern (``chat gpt-4o``)."""
    return f"{operation} {target}"
