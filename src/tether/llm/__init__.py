"""The model plane: one ``Model`` protocol, providers, fakes, and wrappers that are Models too.

Quick start (offline, the bundled local model)::

    from tether.llm import model_from_spec
    model = model_from_spec()                  # local:smollm2 unless TETHER_MODEL says otherwise
    answer = await model.chat("Say hello in three words.")
    print(answer.text, answer.usage, answer.cost)
"""

from tether.core.messages import Message, ToolCall, ToolSpec
from tether.llm.fakes import FunctionModel, ScriptedModel, tool_call
from tether.llm.model import Model, estimate_tokens
from tether.llm.pricing import DEFAULT_PRICES, Price, PriceTable
from tether.llm.spec import DEFAULT_MODEL, model_from_spec
from tether.llm.types import (
    ModelRequest,
    ModelResponse,
    ResponseFormat,
    StreamChunk,
    Timing,
    Usage,
)

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_PRICES",
    "FunctionModel",
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "Price",
    "PriceTable",
    "ResponseFormat",
    "ScriptedModel",
    "StreamChunk",
    "Timing",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "estimate_tokens",
    "model_from_spec",
    "tool_call",
]
