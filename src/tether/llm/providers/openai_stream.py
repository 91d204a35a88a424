"""Assembling a streamed OpenAI chat completion from its ``chat.completion.chunk`` events."""

from __future__ import annotations

from typing import Any

import orjson

from tether.core.errors import ModelResponseError
from tether.core.messages import ToolCall
from tether.llm.providers.http_errors import error_from_body, missing, reading
from tether.llm.providers.openai_wire import finish, logprobs, usage
from tether.llm.providers.wire import tool_call
from tether.llm.types import ModelResponse, Usage


class Accumulator:
    """Text deltas, tool-call deltas by index (id and name in the first, arguments as JSON text
    in pieces), the finish reason, usage (a last chunk with no choices, asked for with
    ``stream_options.include_usage``) and log-probabilities."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.text: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage = Usage()
        self.id: str | None = None
        self.logprobs: list[float] = []
        self.pieces = 0
        """Chunks that carried answer text or tool-call arguments: about one token each on
        llama.cpp, the output count when the server reports no usage."""
        self._called: list[str] = []
        """Tool-call pieces (names, arguments) not yet handed on (``take_called``)."""

    @property
    def started(self) -> bool:
        return bool(self.text or self.tools)

    def add(self, chunk: Any) -> str:
        """Take one chunk; return the text it adds to the answer ("" when none)."""
        if not isinstance(chunk, dict):
            raise missing(self.model, "a JSON object in the stream", chunk)
        if "error" in chunk:
            raise error_from_body(chunk, model=self.model)
        with reading(self.model, chunk):
            text = self._add(chunk)
        return text

    def _add(self, chunk: dict[str, Any]) -> str:
        self.id = self.id or chunk.get("id")
        if isinstance(chunk.get("usage"), dict):
            self.usage = usage(chunk["usage"])
        choices = chunk.get("choices")
        if not choices:
            return ""
        choice = choices[0]
        self.finish_reason = choice.get("finish_reason") or self.finish_reason
        self.logprobs.extend(logprobs(choice.get("logprobs")) or ())
        delta = choice.get("delta") or {}
        parts = delta.get("tool_calls") or ()
        for position, part in enumerate(parts):
            self._tool_delta(position, part)
        text = delta.get("content") or ""
        if not isinstance(text, str):
            raise missing(self.model, "text in delta.content", chunk)
        if text:
            self.text.append(text)
        self.pieces += bool(text or parts)
        return text

    def _tool_delta(self, position: int, part: dict[str, Any]) -> None:
        slot = self.tools.setdefault(int(part.get("index", position)), {"arguments": []})
        if part.get("id"):
            slot["id"] = part["id"]
        function = part.get("function") or {}
        if function.get("name"):
            slot["name"] = function["name"]
            self._called.append(str(function["name"]))
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # some servers (Ollama) send an object, whole
            slot["object"] = arguments
            self._called.append(orjson.dumps(arguments).decode())
        elif arguments:
            slot["arguments"].append(arguments)
            self._called.append(str(arguments))

    def take_called(self) -> str:
        """The tool-call pieces that arrived since the last call: billed output that is not
        answer text (``StreamChunk.tool_delta``)."""
        called, self._called = "".join(self._called), []
        return called

    def check_ended(self, done: bool) -> None:
        """Raise ModelResponseError (retryable) when the stream stopped before the answer did:
        neither a ``finish_reason`` nor ``data: [DONE]`` came, so a server or a proxy closed
        it mid-answer. Taken as whole, "The refund of order 12" would be journaled (and
        cached) as the model's answer."""
        if self.finish_reason is None and not done:
            said = "".join(self.text)
            raise ModelResponseError(
                f"{self.model}'s stream ended before its answer did (no finish_reason and no "
                f"[DONE]): the connection was closed mid-answer after {len(said)} characters "
                f"({said[-60:]!r}); the call can be tried again",
                model=self.model,
            )

    def response(self) -> ModelResponse:
        """The whole answer, once the stream has ended."""
        with reading(self.model, self.tools):
            calls = tuple(
                self._call(i, slot) for i, (_, slot) in enumerate(sorted(self.tools.items()))
            )
            response = ModelResponse(
                text="".join(self.text),
                tool_calls=calls,
                finish_reason=finish(self.finish_reason, calls),
                model=self.model,
                id=self.id,
                usage=self.usage,
                logprobs=tuple(self.logprobs) if self.logprobs else None,
            )
        return response

    def _call(self, position: int, slot: dict[str, Any]) -> ToolCall:
        name = slot.get("name")
        if not isinstance(name, str) or not name:
            raise missing(self.model, f"a name in tool call {position}", slot)
        arguments = slot.get("object") or "".join(slot["arguments"])
        return tool_call(slot.get("id") or f"call_{position}", name, arguments)
