"""Tool calling and structured output for models without native tool calls: constrained JSON.

A :class:`Plan` turns a :class:`ModelRequest` into what a grammar-constrained model needs: chat
messages in plain roles (tool calls and results written out as text), a system addendum that
describes the tools or the output schema, and the JSON schema the output must match:

- tools offered (``tool_choice`` not ``none``): ``anyOf`` one ``{"tool": <name>, "arguments":
  <its parameters>}`` per tool, plus ``{"answer": <text or the response schema>}`` when the model
  may answer instead (``auto``);
- a response format alone: its schema.

``Plan.parse`` turns the constrained output back into text or :class:`ToolCall` objects.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from tether.core.messages import Message, ToolCall
from tether.llm.types import ModelRequest

_ids = itertools.count(1)
_TOOL_NAME = re.compile(r'"tool"\s*:\s*"([^"]+)"')
_ARGUMENTS = re.compile(r'"arguments"\s*:\s*(.*)$', re.DOTALL)


@dataclass(frozen=True)
class Plan:
    messages: list[dict[str, str]]
    schema: dict[str, Any] | None
    """The JSON schema to constrain decoding to; None for free text."""
    tools: bool
    structured_answer: bool

    def parse(self, text: str) -> tuple[str, tuple[ToolCall, ...]]:
        """The answer text and the tool calls in one constrained output."""
        if not self.tools:
            return text, ()
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return _salvage(text)
        if isinstance(data, dict) and isinstance(data.get("tool"), str):
            args = data.get("arguments")
            call_id = f"call_{next(_ids)}"
            if isinstance(args, dict):
                return "", (ToolCall(id=call_id, name=data["tool"], arguments=args),)
            raw = json.dumps(args)
            return "", (ToolCall(id=call_id, name=data["tool"], raw_arguments=raw),)
        if isinstance(data, dict) and "answer" in data:
            answer = data["answer"]
            if self.structured_answer or not isinstance(answer, str):
                return json.dumps(answer), ()
            return answer, ()
        return text, ()


def _salvage(text: str) -> tuple[str, tuple[ToolCall, ...]]:
    """Output cut off mid-JSON (max_tokens): keep a named call with its raw arguments, so the
    caller's validation reports it to the model; anything else stays text."""
    name = _TOOL_NAME.search(text)
    if name is None:
        return text, ()
    args = _ARGUMENTS.search(text)
    raw = args.group(1).rstrip("} \n") if args else ""
    return "", (ToolCall(id=f"call_{next(_ids)}", name=name.group(1), raw_arguments=raw),)


def plan(request: ModelRequest) -> Plan:
    use_tools = bool(request.tools) and request.tool_choice != "none"
    fmt = request.response_format.json_schema if request.response_format else None
    system = [m.content for m in request.messages if m.role == "system" and m.content]
    schema: dict[str, Any] | None = None
    if use_tools:
        offered = [
            t
            for t in request.tools
            if request.tool_choice in ("auto", "required") or t.name == request.tool_choice
        ]
        defs: dict[str, Any] = {}
        variants = []
        for i, tool in enumerate(offered):
            params = _hoist(_closed(tool.parameters), f"t{i}_", defs)
            variants.append(_object({"tool": {"const": tool.name}, "arguments": params}))
        lines = [
            "You can call these tools. To call one, reply with only a JSON object "
            '{"tool": "<tool name>", "arguments": {<arguments>}}.'
        ]
        for tool in offered:
            lines.append(
                f"- {tool.name}: {tool.description or 'no description'} "
                f"Arguments schema: {json.dumps(tool.parameters)}"
            )
        if request.tool_choice == "auto":
            answer: dict[str, Any] = {"type": "string"}
            if fmt is not None:
                answer = _hoist(_closed(fmt), "answer_", defs)
            variants.append(_object({"answer": answer}))
            lines.append('If no tool is needed, reply with {"answer": <your answer>} instead.')
        schema = {"anyOf": variants}
        if defs:
            schema["$defs"] = defs
        system.append("\n".join(lines))
    elif fmt is not None:
        schema = _closed(fmt)
        system.append(f"Reply with only a JSON object matching this JSON schema: {json.dumps(fmt)}")
    messages = [{"role": "system", "content": "\n\n".join(system)}] if system else []
    messages += [_plain(m) for m in request.messages if m.role != "system"]
    return Plan(
        messages=messages,
        schema=schema,
        tools=use_tools,
        structured_answer=use_tools and fmt is not None,
    )


def _plain(message: Message) -> dict[str, str]:
    """User/assistant roles only: tool calls as the JSON the model writes, results as text."""
    if message.role == "tool":
        who = f" {message.name}" if message.name else ""
        return {
            "role": "user",
            "content": f"Result of tool{who} (call {message.tool_call_id}): {message.content}",
        }
    if message.role == "assistant" and message.tool_calls:
        calls = [json.dumps({"tool": c.name, "arguments": c.arguments}) for c in message.tool_calls]
        text = "\n".join([message.content, *calls]) if message.content else "\n".join(calls)
        return {"role": "assistant", "content": text}
    return {"role": message.role, "content": message.content}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """For the grammar only: an object schema that lists its properties and says nothing about
    others admits no others, so a small model cannot wander off into invented keys."""
    if "properties" in schema and "additionalProperties" not in schema:
        return {**schema, "additionalProperties": False}
    return schema


def _hoist(schema: dict[str, Any], prefix: str, defs: dict[str, Any]) -> dict[str, Any]:
    """Move ``$defs`` of a schema nested in the ``anyOf`` up to the root, renamed with
    ``prefix`` so two tools' definitions cannot clash, and rewrite the refs to match."""
    schema = copy.deepcopy(schema)
    local = schema.pop("$defs", None) or schema.pop("definitions", None) or {}

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                for base in ("#/$defs/", "#/definitions/"):
                    if ref.startswith(base):
                        node["$ref"] = f"#/$defs/{prefix}{ref[len(base) :]}"
            for value in node.values():
                rewrite(value)
        elif isinstance(node, list):
            for value in node:
                rewrite(value)
        return node

    for name, sub in local.items():
        defs[f"{prefix}{name}"] = rewrite(sub)
    return rewrite(schema)  # type: ignore[no-any-return]
