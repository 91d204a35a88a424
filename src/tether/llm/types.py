"""What goes into a model call and what comes out: request, response, usage, timing, chunks."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tether.core.messages import Message, ToolCall, ToolSpec, json_schema_problem


class ResponseFormat(BaseModel):
    """Ask for JSON matching ``json_schema``. Providers that can constrain decoding do (llama.cpp
    compiles it to a grammar, OpenAI-compatible servers get ``response_format``); the output is
    validated either way."""

    model_config = ConfigDict(frozen=True)

    name: str = "output"
    json_schema: dict[str, Any]
    strict: bool = True

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        problem = json_schema_problem(v)
        if problem:
            raise ValueError(
                f"response_format is not a valid JSON schema ({problem}); fix it, or pass a "
                "pydantic class"
            )
        return v


class ModelRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"
    """``auto``, ``none``, ``required``, or the name of one tool the model must call."""
    response_format: ResponseFormat | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    state_fingerprint: str | None = None
    """What of the caller's state the answer depends on; the semantic cache keys on it."""

    @field_validator("messages")
    @classmethod
    def _some_messages(cls, v: tuple[Message, ...]) -> tuple[Message, ...]:
        if not v:
            raise ValueError("a model call needs at least one message")
        return v

    @model_validator(mode="after")
    def _tool_choice_known(self) -> ModelRequest:
        if self.tool_choice not in ("auto", "none", "required"):
            names = {t.name for t in self.tools}
            if self.tool_choice not in names:
                raise ValueError(
                    f"tool_choice {self.tool_choice!r} is not 'auto', 'none', 'required' or the "
                    f"name of a tool in this request ({sorted(names) or 'no tools given'})"
                )
        elif self.tool_choice == "required" and not self.tools:
            raise ValueError("tool_choice='required' needs at least one tool")
        listed = [t.name for t in self.tools]
        if len(set(listed)) != len(listed):
            raise ValueError(f"tool names must be unique, got {listed}")
        return self

    @property
    def system_prompt(self) -> str:
        return "\n".join(m.content for m in self.messages if m.role == "system")

    @property
    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if m.role == "user":
                return m.content
        return ""

    def digest(self) -> str:
        """A stable hash of everything that shapes the answer (for the journal and caches)."""
        return hashlib.sha256(
            orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False
    """True when the provider did not report usage and tether counted it."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def plus(a: Usage | None, b: Usage | None) -> Usage | None:
    """The sum of two usages (None when both are)."""
    if a is None or b is None:
        return a or b
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        estimated=a.estimated or b.estimated,
    )


class Timing(BaseModel):
    latency: float = 0.0
    """Seconds from sending the request to the whole answer."""
    ttft: float | None = None
    """Seconds to the first streamed token (streamed calls only)."""
    tpot: float | None = None
    """Seconds per output token after the first (streamed calls only)."""


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


class ModelResponse(BaseModel):
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    model: str = ""
    """``provider:name`` of the model that answered (after fallbacks and cascades)."""
    id: str | None = None
    usage: Usage = Field(default_factory=Usage)
    cost: float | None = None
    """US dollars, from the price table; None when the model has no price."""
    timing: Timing = Field(default_factory=Timing)
    logprobs: tuple[float, ...] | None = None
    """Log-probability of each generated token, when the provider returned them."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """What wrappers did: ``cache``, ``fallback``, ``cascade``, ``attempts``, ``hedged``."""

    def message(self) -> Message:
        """This answer as the assistant turn of a conversation."""
        return Message.assistant(self.text, self.tool_calls)

    def parsed_json(self) -> Any:
        """The text parsed as JSON (raises ValueError when it is not JSON)."""
        return orjson.loads(self.text)


class StreamChunk(BaseModel):
    """One piece of a streamed answer: text ``delta`` while it streams, then a last chunk with
    the assembled ``response`` (tool calls, usage, finish reason). ``tool_delta`` is a piece of
    a tool call as it arrived (its name, a piece of its arguments): not answer text, but output
    the provider bills, counted when the stream is cut before its end."""

    delta: str = ""
    tool_delta: str = ""
    response: ModelResponse | None = None
