"""A fake hosted-model server on 127.0.0.1 for documentation blocks that need an API key.

It speaks OpenAI's ``POST /v1/chat/completions`` (``GET /v1/models`` lists one model) and
Anthropic's ``POST /v1/messages``, and answers every request with the same short text (as
Server-Sent Events when the request streams). Every request body is recorded, so a test can check
that a block really called the provider.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = "Your parcel was late; we are sorry."


@dataclass
class FakeOpenAI:
    url: str
    """OpenAI base URL (``http://127.0.0.1:PORT/v1``)."""
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def anthropic_url(self) -> str:
        """Anthropic base URL (the provider appends ``/v1/messages``)."""
        return self.url.removesuffix("/v1")


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-doc-test",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
    }


def _chunks(model: str) -> Iterator[dict[str, Any]]:
    base = {"id": "chatcmpl-doc-test", "object": "chat.completion.chunk", "model": model}
    for word in ANSWER.split(" "):
        delta = {"role": "assistant", "content": word + " "}
        yield {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    usage = {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}
    yield {**base, "choices": [], "usage": usage}


def _message(model: str) -> dict[str, Any]:
    return {
        "id": "msg_doc_test",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": ANSWER}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 12, "output_tokens": 8},
    }


def _message_events(model: str) -> Iterator[tuple[str, dict[str, Any]]]:
    start = {**_message(model), "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": 12, "output_tokens": 0}
    yield "message_start", {"type": "message_start", "message": start}
    block = {"type": "text", "text": ""}
    yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
    for word in ANSWER.split(" "):
        delta = {"type": "text_delta", "text": word + " "}
        yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    delta = {"stop_reason": "end_turn"}
    yield "message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 8}}
    yield "message_stop", {"type": "message_stop"}


def _handler(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.rstrip("/") != "/v1/models":
                self._send(404, b'{"error": {"message": "not found"}}', "application/json")
                return
            body = {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]}
            self._send(200, json.dumps(body).encode(), "application/json")

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path.rstrip("/") == "/v1/messages":
                self._anthropic(raw)
                return
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, b'{"error": {"message": "not found"}}', "application/json")
                return
            if not self.headers.get("authorization", "").startswith("Bearer "):
                self._send(401, b'{"error": {"message": "no API key"}}', "application/json")
                return
            request = json.loads(raw)
            server.requests.append(request)
            model = str(request.get("model", "gpt-4o-mini"))
            if not request.get("stream"):
                self._send(200, json.dumps(_completion(model)).encode(), "application/json")
                return
            events = b"".join(
                b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in _chunks(model)
            )
            self._send(200, events + b"data: [DONE]\n\n", "text/event-stream")

        def _anthropic(self, raw: bytes) -> None:
            if not self.headers.get("x-api-key"):
                error = {"type": "error", "error": {"type": "authentication_error"}}
                self._send(401, json.dumps(error).encode(), "application/json")
                return
            request = json.loads(raw)
            server.requests.append(request)
            model = str(request.get("model", "claude-haiku-4-5"))
            if not request.get("stream"):
                self._send(200, json.dumps(_message(model)).encode(), "application/json")
                return
            events = b"".join(
                f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                for name, data in _message_events(model)
            )
            self._send(200, events, "text/event-stream")

    return Handler


@contextmanager
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running fake server; ``url`` is its ``/v1`` base URL."""
    state = FakeOpenAI(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, name="fake-openai", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
