"""Build a validated :class:`ModelRequest` from what a caller hands to ``Model.chat``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from tether.core.errors import InvalidInputError
from tether.core.messages import Message, ToolSpec
from tether.llm.types import ModelRequest, ResponseFormat

MessagesLike = str | Message | Mapping[str, Any] | Sequence[Message | Mapping[str, Any]]
ToolLike = ToolSpec | Mapping[str, Any] | Any
FormatLike = ResponseFormat | type[BaseModel] | Mapping[str, Any] | None


def as_messages(messages: MessagesLike) -> tuple[Message, ...]:
    """A string is one user message; dicts are validated into :class:`Message`."""
    if isinstance(messages, str):
        return (Message.user(messages),)
    if isinstance(messages, Message | Mapping):
        messages = [messages]
    out: list[Message] = []
    for i, m in enumerate(messages):
        if isinstance(m, Message):
            out.append(m)
            continue
        try:
            out.append(Message.model_validate(m))
        except ValidationError as exc:
            raise InvalidInputError(
                f"message {i} is not a valid chat message ({_first_error(exc)}); use "
                "Message.user('...') or a dict like {'role': 'user', 'content': '...'}"
            ) from None
    return tuple(out)


def as_tool_spec(tool: ToolLike) -> ToolSpec:
    """Accepts a ToolSpec, a tether ToolContract (anything with ``tool_spec()``), an OpenAI
    ``{"type": "function", "function": {...}}`` dict, or ``{name, description, parameters}``
    (``input_schema`` also accepted, as MCP and Anthropic spell it)."""
    if isinstance(tool, ToolSpec):
        return tool
    to_spec = getattr(tool, "tool_spec", None)
    if callable(to_spec):
        spec = to_spec()
        if isinstance(spec, ToolSpec):
            return spec
    if isinstance(tool, Mapping):
        data = dict(tool.get("function", tool)) if tool.get("type") == "function" else dict(tool)
        if "input_schema" in data and "parameters" not in data:
            data["parameters"] = data.pop("input_schema")
        try:
            return ToolSpec.model_validate(data)
        except ValidationError as exc:
            raise InvalidInputError(f"invalid tool spec: {_first_error(exc)}") from None
    raise InvalidInputError(
        f"cannot use {type(tool).__name__} as a tool: pass a ToolSpec, a @tool contract or a "
        "dict with name, description and parameters"
    )


def as_response_format(fmt: FormatLike) -> ResponseFormat | None:
    if fmt is None or isinstance(fmt, ResponseFormat):
        return fmt
    if isinstance(fmt, type) and issubclass(fmt, BaseModel):
        return ResponseFormat(name=fmt.__name__, json_schema=fmt.model_json_schema())
    if isinstance(fmt, Mapping):
        return ResponseFormat(name=str(fmt.get("title", "output")), json_schema=dict(fmt))
    raise InvalidInputError(
        "response_format must be a pydantic model class, a JSON schema dict or a ResponseFormat"
    )


def build_request(
    messages: MessagesLike,
    *,
    tools: Iterable[ToolLike] = (),
    response_format: FormatLike = None,
    **options: Any,
) -> ModelRequest:
    try:
        return ModelRequest(
            messages=as_messages(messages),
            tools=tuple(as_tool_spec(t) for t in tools),
            response_format=as_response_format(response_format),
            **options,
        )
    except ValidationError as exc:
        raise InvalidInputError(f"invalid model request: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "value"
    return f"{loc}: {err.get('msg', 'invalid')}"
