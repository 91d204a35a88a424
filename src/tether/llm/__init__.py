"""The model plane: one ``Model`` protocol, providers, fakes, and wrappers that are Models too.

Quick start (offline, the bundled local model)::

    from tether.llm import model_from_spec
    model = model_from_spec()                  # local:smollm2 unless TETHER_MODEL says otherwise
    answer = await model.chat("Say hello in three words.")
    print(answer.text, answer.usage, answer.cost)
"""

from tether.core.breaker import BreakerPolicy
from tether.core.messages import Message, ToolCall, ToolSpec
from tether.llm.cache import CachedModel, SemanticCache, fingerprint
from tether.llm.cascade import CascadeModel, model_judge
from tether.llm.embeddings import Embedder, HashingEmbedder, MiniLMEmbedder
from tether.llm.fakes import FunctionModel, ScriptedModel, tool_call
from tether.llm.model import Model, estimate_tokens
from tether.llm.pricing import DEFAULT_PRICES, Price, PriceTable
from tether.llm.providers.anthropic import AnthropicModel
from tether.llm.providers.local import LocalModel, bundled_model_path
from tether.llm.providers.openai_compat import OpenAICompatibleModel
from tether.llm.router import RouteMatch, SemanticRouter
from tether.llm.spec import DEFAULT_MODEL, model_from_spec
from tether.llm.structured import StructuredResult, generate_structured
from tether.llm.toolcalls import ToolCallProblem, chat_with_tool_repair, check_tool_calls
from tether.llm.types import (
    ModelRequest,
    ModelResponse,
    ResponseFormat,
    StreamChunk,
    Timing,
    Usage,
)
from tether.llm.wrappers import (
    BreakerModel,
    FallbackModel,
    HedgedModel,
    ModelRetry,
    RetryingModel,
    TimeoutModel,
    resilient,
)

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_PRICES",
    "AnthropicModel",
    "BreakerModel",
    "BreakerPolicy",
    "CachedModel",
    "CascadeModel",
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
