"""Chat messages, tool calls and tool specs: the vocabulary every plane shares.

Providers translate these to and from their wire formats (OpenAI tool calls, Anthropic tool
use, constrained JSON for the local model); nothing above the providers sees a wire format.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["system", "user", "assistant", "tool"]

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class ToolCall(BaseModel):
    """A model asked for a tool. ``arguments`` is the parsed JSON object; when the model wrote
    something that is not a JSON object, it is ``{}`` and ``raw_arguments`` keeps the text so the
    error can go back to the model."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    raw_arguments: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    """For ``role="tool"``: which call this is the result of."""
    name: str | None = None

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str = "", tool_calls: tuple[ToolCall, ...] = ()) -> Message:
        return cls(role="assistant", content=content, tool_calls=tuple(tool_calls))

    @classmethod
    def tool(cls, call_id: str, content: str, name: str | None = None) -> Message:
        return cls(role="tool", content=content, tool_call_id=call_id, name=name)


class ToolSpec(BaseModel):
    """What a model is told about a tool: name, description, JSON schema of its arguments, and
    its scope (``read`` / ``write`` / ``destructive``), which caches and guards act on."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    scope: Literal["read", "write", "destructive"] = "read"

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        if not _TOOL_NAME.match(v):
            raise ValueError(
                f"tool name {v!r} must be 1-64 characters of letters, digits, '_', '.', '-'"
            )
        return v

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        if v.get("type", "object") != "object":
            raise ValueError("tool parameters must be a JSON schema of type 'object'")
        problem = json_schema_problem(v)
        if problem:
            raise ValueError(f"tool parameters are not a valid JSON schema ({problem})")
        return v

    @property
    def writes(self) -> bool:
        return self.scope != "read"


def json_schema_problem(schema: dict[str, Any]) -> str | None:
    """What makes ``schema`` an invalid JSON schema ("path: message"), or None when it is valid
    (checked against the draft it declares, 2020-12 by default)."""
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"{path}: {exc.message}"
    return None
