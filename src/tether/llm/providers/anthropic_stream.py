"""Assembling a streamed Messages API answer from its Server-Sent Events."""

from __future__ import annotations

from typing import Any

from tether.core.errors import ModelResponseError
from tether.llm.providers.anthropic_wire import INPUT_KEYS, answer
from tether.llm.providers.http_errors import error_from_body, missing, reading
from tether.llm.providers.wire import reported_usage, tokens
from tether.llm.types import ModelResponse, Usage


class StreamState:
    """The events: ``message_start`` (id, input tokens), ``content_block_start`` then
    ``content_block_delta`` (text, or a tool's input as pieces of JSON), ``message_delta`` (stop
    reason, output tokens), ``error``. ``ping`` and ``*_stop`` carry nothing new."""

    def __init__(self, model: str, output: str | None) -> None:
        self.model = model
        self.output = output  # the structured-output tool: its input streams as the text
        self.id: str | None = None
        self._input: int | None = 0
        self._output: int | None = 0
        self.stop_reason: Any = None
        self.stopped = False
        """Whether ``message_stop`` came: the answer is whole."""
        self.blocks: dict[int, dict[str, Any]] = {}
        self.parts: dict[int, list[str]] = {}
        self._called: list[str] = []
        """Pieces of tool calls (names, input) not yet handed on (``take_called``)."""

    def add(self, event: str, data: Any) -> str:
        """Take one event; return the text it adds to the answer ("" when none)."""
        if not isinstance(data, dict):
            raise missing(self.model, "a JSON object in the stream", data)
        if event == "error" or data.get("type") == "error":
            raise error_from_body(data, model=self.model)
        with reading(self.model, data):
            text = self._add(data)
        return text

    def _add(self, data: dict[str, Any]) -> str:
        kind = data.get("type")
        if kind == "message_start" and isinstance(data.get("message"), dict):
            self.id = data["message"].get("id")
            used = data["message"].get("usage")
            if isinstance(used, dict):
                self._input = tokens(used, *INPUT_KEYS)
                self._output = tokens(used, "output_tokens")
        elif kind == "content_block_start":
            block = data.get("content_block")
            if not isinstance(block, dict):
                raise missing(self.model, "content_block in content_block_start", data)
            index = int(data.get("index", len(self.blocks)))
            self.blocks[index], self.parts[index] = block, []
            if block.get("type") == "tool_use" and block.get("name") != self.output:
                self._called.append(str(block.get("name") or ""))
            return self._append(index, block.get("text") if block.get("type") == "text" else "")
        elif kind == "content_block_delta":
            delta = data.get("delta")
            if not isinstance(delta, dict):
                raise missing(self.model, "delta in content_block_delta", data)
            piece = delta.get("text") if delta.get("type") == "text_delta" else None
            if delta.get("type") == "input_json_delta":
                piece = delta.get("partial_json")
            return self._append(int(data.get("index", 0)), piece)
        elif kind == "message_stop":
            self.stopped = True
        elif kind == "message_delta":
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
            if isinstance(data.get("usage"), dict):
                self._output = tokens(data["usage"], "output_tokens")
        return ""

    @property
    def usage(self) -> Usage:
        """What the stream reported (none when a count was unusable: tether counts it)."""
        return reported_usage(self._input, self._output)

    def _append(self, index: int, piece: Any) -> str:
        block = self.blocks.get(index)
        if block is None:
            raise missing(
                self.model, f"a content_block_start before the deltas of block {index}", None
            )
        if not piece:
            return ""
        self.parts[index].append(str(piece))
        shown = block.get("type") == "text" or block.get("name") == self.output
        if not shown:
            self._called.append(str(piece))
        return str(piece) if shown else ""

    def take_called(self) -> str:
        """The tool-call pieces that arrived since the last call: billed output that is not
        answer text (``StreamChunk.tool_delta``)."""
        called, self._called = "".join(self._called), []
        return called

    def response(self) -> ModelResponse:
        """The whole answer, once the stream has ended; ModelResponseError (retryable) when
        it ended before the answer did (neither a stop reason nor ``message_stop`` came: the
        connection was closed mid-answer)."""
        if not self.stopped and self.stop_reason is None:
            said = "".join(p for i in sorted(self.parts) for p in self.parts[i])
            raise ModelResponseError(
                f"{self.model}'s stream ended before its answer did (no stop_reason and no "
                f"message_stop): the connection was closed mid-answer after {len(said)} "
                f"characters ({said[-60:]!r}); the call can be tried again",
                model=self.model,
            )
        blocks = [self._finished(i) for i in sorted(self.blocks)]
        with reading(self.model, blocks):
            response = answer(
                self.model, blocks, self.output, self.stop_reason, self.id, self.usage
            )
        return response

    def _finished(self, index: int) -> dict[str, Any]:
        block, joined = self.blocks[index], "".join(self.parts[index])
        if block.get("type") == "text":
            return {**block, "text": joined}
        return {**block, "input": joined if joined.strip() else block.get("input")}
