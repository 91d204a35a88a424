"""A small but faithful Anthropic Messages API server (Starlette), for the provider's tests.

It validates what the real API validates that matters here (API key and version headers,
required fields, roles, ``system`` only at the top level, tool definitions, ``tool_choice``,
every ``tool_result`` answering a ``tool_use`` of the previous assistant turn) and answers with
scripted content blocks, as one JSON message or as the real SSE event sequence.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

API_KEY = "sk-ant-test"
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""What the real API takes as a tool's name (a tool_use block's too)."""


@dataclass
class Reply:
    content: list[dict[str, Any]]
    stop_reason: str = "end_turn"


@dataclass
class Failure:
    status: int
    error_type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    mid_stream: bool = False
    """Fail after the stream started, with an SSE ``error`` event (as the API does)."""


@dataclass
class MessagesApi:
    script: list[Reply | Failure | bytes] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=itertools.count)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/messages", self.messages, methods=["POST"])])

    async def messages(self, request: Request) -> Response:
        raw = await request.body()
        if request.headers.get("x-api-key") != API_KEY:
            return error(401, "authentication_error", "invalid x-api-key")
        if request.headers.get("anthropic-version") != "2023-06-01":
            return error(400, "invalid_request_error", "anthropic-version: header is required")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return error(400, "invalid_request_error", "There was an error parsing the body")
        self.requests.append({"headers": dict(request.headers), "body": body})
        problem = validate(body)
        if problem:
            return error(400, "invalid_request_error", problem)
        step = self.script.pop(0) if self.script else Reply([{"type": "text", "text": "ok"}])
        if isinstance(step, bytes):
            return Response(step, media_type="application/json")
        if isinstance(step, Failure) and not step.mid_stream:
            return error(step.status, step.error_type, step.message, step.headers)
        usage = {"input_tokens": count(orjson.dumps(body["messages"]).decode())}
        msg_id = f"msg_{next(self.ids):04d}"
        if body.get("stream"):
            events = sse(step, msg_id, body["model"], usage)
            return StreamingResponse(events, media_type="text/event-stream")
        assert isinstance(step, Reply)
        usage["output_tokens"] = sum(count(orjson.dumps(b).decode()) for b in step.content)
        return Response(
            orjson.dumps(
                {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": step.content,
                    "stop_reason": step.stop_reason,
                    "stop_sequence": None,
                    "usage": usage,
                }
            ),
            media_type="application/json",
        )


def count(text: str) -> int:
    return max(1, len(text) // 4)


def error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def validate(body: dict[str, Any]) -> str | None:
    """What the real API would refuse with a 400 (a subset: the shapes tether produces)."""
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    if "system" in body and not isinstance(body["system"], str | list):
        return "system: Input should be a valid string"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: Field required"
    tool_names = set()
    for i, tool in enumerate(body.get("tools") or ()):
        schema = tool.get("input_schema")
        if not isinstance(tool.get("name"), str) or not isinstance(schema, dict):
            return f"tools.{i}.input_schema: Field required"
        if schema.get("type") != "object":
            return f"tools.{i}.input_schema.type: Input should be 'object'"
        if not TOOL_NAME.fullmatch(tool["name"]):
            return f"tools.{i}.name: String should match pattern '{TOOL_NAME.pattern}'"
        tool_names.add(tool["name"])
    choice = body.get("tool_choice")
    if choice is not None:
        if choice.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
        if choice["type"] == "tool" and choice.get("name") not in tool_names:
            return f"tool_choice: tool {choice.get('name')!r} not found in tools"
    previous_uses: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            return (
                f'messages.{i}.role: Unexpected role "{role}". The Messages API accepts a '
                'top-level `system` parameter, not "system" as an input message role.'
            )
        if i == 0 and role != "user":
            return 'messages: first message must use the "user" role'
        if i and messages[i - 1].get("role") == role:
            return f'messages.{i}: roles must alternate between "user" and "assistant"'
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        uses: set[str] = set()
        for j, block in enumerate(blocks):
            kind = block.get("type")
            if kind == "text" and not block.get("text"):
                return f"messages.{i}.content.{j}: text content blocks must be non-empty"
            if kind == "tool_use":
                if role != "assistant" or not isinstance(block.get("input"), dict):
                    return f"messages.{i}.content.{j}: invalid tool_use block"
                if not TOOL_NAME.fullmatch(str(block.get("name"))):
                    return f"messages.{i}.content.{j}.name: String should match pattern"
                uses.add(block["id"])
            elif kind == "tool_result":
                if role != "user" or block.get("tool_use_id") not in previous_uses:
                    return (
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                        "`tool_result` blocks: each `tool_result` block must have a "
                        "corresponding `tool_use` block in the previous message."
                    )
            elif kind != "text":
                return f"messages.{i}.content.{j}.type: unknown block type {kind!r}"
        previous_uses = uses
    return None


async def sse(
    step: Reply | Failure, msg_id: str, model: str, usage: dict[str, int]
) -> AsyncIterator[bytes]:
    def event(name: str, data: dict[str, Any]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    message = {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "usage": {**usage, "output_tokens": 1},
    }
    yield event("message_start", {"type": "message_start", "message": message})
    yield event("ping", {"type": "ping"})
    if isinstance(step, Failure):
        await asyncio.sleep(0)
        yield event(
            "error", {"type": "error", "error": {"type": step.error_type, "message": step.message}}
        )
        return
    output = 0
    for index, block in enumerate(step.content):
        if block["type"] == "text":
            start, pieces = {"type": "text", "text": ""}, chunks(block["text"])
            deltas = [{"type": "text_delta", "text": p} for p in pieces]
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            pieces = chunks(orjson.dumps(block["input"]).decode())
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        yield event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
        for delta in deltas:
            await asyncio.sleep(0.002)
            output += 1
            yield event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield event("content_block_stop", {"type": "content_block_stop", "index": index})
    yield event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": step.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output},
        },
    )
    yield event("message_stop", {"type": "message_stop"})


def chunks(text: str, size: int = 5) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
