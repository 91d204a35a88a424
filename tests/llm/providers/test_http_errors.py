"""The HTTP error mapping and the SSE reader: status codes, real transport failures (refused
connections, hangs, resets, truncated bodies) and SSE edge cases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import orjson
import pytest

from tests.llm.providers.rawhttp import closed_port, raw_server, read_request, response_head
from tether.core.errors import (
    ConfigurationError,
    ModelError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelResponseError,
    ModelTimeoutError,
    ModelTransientError,
)
from tether.llm.providers.http_errors import (
    error_from_body,
    error_from_response,
    retry_after_seconds,
)
from tether.llm.providers.openai_compat import OpenAICompatibleModel
from tether.llm.providers.sse import SseEvent, sse_events
from tether.llm.request import build_request

# -- Retry-After ----------------------------------------------------------------------------


def test_retry_after_seconds_and_dates() -> None:
    assert retry_after_seconds("5") == 5.0
    assert retry_after_seconds(" 1.5 ") == 1.5
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("") is None
    assert retry_after_seconds("soon") is None
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert later == "Sat, 01 Mar 2025 12:01:30 GMT"
    assert retry_after_seconds(later, now=now.timestamp()) == 90.0
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds(earlier, now=now.timestamp()) == 0.0
    # a wait that is no number of seconds is no advice (a retry loop would sleep forever)
    assert retry_after_seconds("inf") is None
    assert retry_after_seconds("nan") is None


# -- status mapping -------------------------------------------------------------------------


def _response(status: int, body: object = None, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body) if body is not None else b""
    return httpx.Response(
        status,
        content=content,
        headers=headers,
        request=httpx.Request("POST", "http://llm.test/v1/chat/completions"),
    )


def test_429_is_rate_limited_with_retry_after() -> None:
    err = error_from_response(
        _response(
            429,
            {"error": {"message": "Rate limit reached", "type": "requests"}},
            **{"retry-after": "12"},
        ),
        model="p:m",
    )
    assert type(err) is ModelRateLimitedError
    assert err.retry_after == 12.0 and err.status == 429 and err.retryable
    assert "requests: Rate limit reached" in str(err) and "p:m" in str(err)
    ms = error_from_response(_response(429, {}, **{"retry-after-ms": "250"}), model="p:m")
    assert isinstance(ms, ModelRateLimitedError) and ms.retry_after == 0.25
    bare = error_from_response(_response(429), model="p:m")
    assert isinstance(bare, ModelRateLimitedError) and bare.retry_after is None


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503, 504, 529])
def test_server_side_statuses_are_transient(status: int) -> None:
    err = error_from_response(_response(status, b"<html>bad gateway</html>"), model="p:m")
    assert type(err) is ModelTransientError
    assert err.status == status and err.retryable
    assert "bad gateway" in str(err)


@pytest.mark.parametrize(
    ("status", "body", "said", "hint"),
    [
        (
            400,
            {"error": {"message": "max_tokens is too large", "type": "invalid_request_error"}},
            "invalid_request_error: max_tokens is too large",
            "rejected the request body",
        ),
        (
            401,
            {
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            },
            "authentication_error: invalid x-api-key",
            "check the API key",
        ),
        (
            404,
            {"error": "model 'nope' not found"},
            "model 'nope' not found",
            "check the base URL and the model name",
        ),
        (
            422,
            {"detail": [{"loc": ["body", "messages"], "msg": "field required"}]},
            "field required",
            "rejected the request body",
        ),
        (403, b"Forbidden by proxy", "Forbidden by proxy", "not allowed"),
        (418, None, "X", "refused the request"),
    ],
)
def test_client_errors_are_request_errors(status: int, body: object, said: str, hint: str) -> None:
    response = _response(status, body)
    response.extensions["reason_phrase"] = b"X"
    err = error_from_response(response, model="p:m")
    assert type(err) is ModelRequestError
    assert err.status == status and not err.retryable
    assert said in str(err) and hint in str(err)
    assert "POST http://llm.test/v1/chat/completions" in str(err)


@pytest.mark.parametrize("status", [301, 307, 308])
def test_a_redirect_is_a_request_error_naming_where_it_points(status: int) -> None:
    response = _response(status, b"", location="https://llm.test/v2/chat/completions")
    err = error_from_response(response, model="p:m")
    assert type(err) is ModelRequestError
    assert err.status == status and not err.retryable
    assert "moved to https://llm.test/v2/chat/completions" in str(err)
    assert "set the base URL" in str(err)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            ModelTransientError,
        ),
        (
            {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}},
            ModelRateLimitedError,
        ),
        ({"error": {"message": "bad", "type": "invalid_request_error"}}, ModelRequestError),
        ({"error": {"message": "boom", "code": "server_error"}}, ModelTransientError),
        ({"something": "else"}, ModelTransientError),
    ],
)
def test_errors_sent_inside_a_stream(body: dict[str, object], kind: type[ModelError]) -> None:
    err = error_from_body(body, model="p:m")
    assert type(err) is kind
    assert "mid-stream" in str(err)


# -- real transport failures ----------------------------------------------------------------


def _model(base: str, timeout: float = 5.0) -> OpenAICompatibleModel:
    return OpenAICompatibleModel("m", base_url=base, timeout=timeout)


async def test_connection_refused_is_transient() -> None:
    async with _model(f"http://127.0.0.1:{closed_port()}/v1") as model:
        with pytest.raises(
            ModelTransientError, match=r"could not be reached.*ConnectError"
        ) as info:
            await model.chat("hi")
    assert not isinstance(info.value, ModelTimeoutError)
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_hanging_server_times_out() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    async with raw_server(hang) as base, _model(base, timeout=0.3) as model:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ModelTimeoutError, match="did not answer in time"):
            await model.chat("hi")
        assert loop.time() - started < 3


@pytest.mark.parametrize("stream", [False, True])
async def test_a_server_trickling_its_answer_times_out_at_the_models_timeout(stream: bool) -> None:
    """Each byte came well within the timeout, so httpx's per-read timeout never fired: a
    model with timeout=0.5 answered after the 10 s the server took (any longer, had it
    liked). The answer (a stream's head) now has the model's timeout as a whole."""
    body = orjson.dumps(
        {
            "id": "c",
            "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}],
        }
    )
    kind = "text/event-stream" if stream else "application/json"
    head = response_head(
        200, {"content-type": kind, "content-length": str(len(body)), "x-pad": "." * 200}
    )

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for byte in head + body:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)

    async with raw_server(trickle) as base, _model(base, timeout=0.5) as model:
        with pytest.raises(ModelTimeoutError, match=r"had not come after 0.5 s"):
            if stream:
                async for _ in model.stream(build_request("hi")):
                    pass
            else:
                await model.chat("hi")


async def test_dropped_connection_and_truncated_body_are_transient() -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async def truncate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(200, {"content-length": "500"}) + b'{"choices": [')
        await writer.drain()

    for handler in (drop, truncate):
        async with raw_server(handler) as base, _model(base) as model:
            with pytest.raises(ModelTransientError) as info:
                await model.chat("hi")
        assert type(info.value) is ModelTransientError
        assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)


async def test_unparseable_and_incomplete_bodies_are_response_errors() -> None:
    bodies = [
        b"<html>oops</html>",
        b'{"id": "x"}',
        b'{"choices": [{"index": 0}]}',
        b"[1, 2]",
        # JSON of the wrong shape: a typed error showing the body, not a bare TypeError (a
        # token count that is not one is no report instead: see test_usage_reports)
        b'{"choices": [{"message": {"content": ["hi"]}}]}',
        b'{"choices": [{"message": {"tool_calls": [{"id": 7, "function": {"name": "f"}}]}}]}',
    ]
    for body in bodies:

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(response_head(200, {"content-length": str(len(body))}) + body)  # noqa: B023
            await writer.drain()

        async with raw_server(answer) as base, _model(base) as model:
            with pytest.raises(ModelResponseError) as info:
                await model.chat("hi")
        assert info.value.retryable


async def test_unusable_base_url_is_a_request_error() -> None:
    async with _model("ftp://127.0.0.1/v1") as model:
        with pytest.raises(ModelRequestError, match="unusable base URL"):
            await model.chat("hi")


async def test_stream_cut_before_its_end_is_transient() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            response_head(
                200, {"transfer-encoding": "chunked", "content-type": "text/event-stream"}
            )
        )
        event = b'data: {"choices": [{"index": 0, "delta": {"content": "Hel"}}]}\n\n'
        writer.write(b"%x\r\n%s\r\n" % (len(event), event))
        await writer.drain()

    async with raw_server(cut) as base, _model(base) as model:
        seen: list[str] = []
        with pytest.raises(ModelTransientError):
            async for chunk in model.stream(build_request("hi")):
                seen.append(chunk.delta)
        assert seen == ["Hel"]


async def test_a_json_error_answer_to_a_streamed_request_is_raised() -> None:
    """A server that cannot stream answers ``stream: true`` with one JSON body: an error in it
    is raised as the error it is; a body that is no completion is a malformed answer, not an
    empty one (a whole completion is the answer: test_whole_answer_stream)."""
    replies = [
        b'{"id": "c1", "object": "list", "data": []}',
        b'{"error": {"message": "streaming is disabled", "type": "invalid_request_error"}}',
    ]

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = replies.pop(0)
        head = {
            "content-type": "application/json",
            "content-length": str(len(body)),
            "connection": "close",
        }
        writer.write(response_head(200, head) + body)
        await writer.drain()

    async with raw_server(answer) as base, _model(base) as model:
        with pytest.raises(ModelResponseError, match="choices"):
            await model.chat("hi", stream=True)
        with pytest.raises(ModelRequestError, match="streaming is disabled"):
            await model.chat("hi", stream=True)


async def test_json_schema_refusal_switches_form_only_once_it_worked() -> None:
    """llama-cpp-python's server refuses OpenAI's ``json_schema`` response format (the real
    exchange is in test_openai_compat); the model asks again with ``json_object`` + schema and
    keeps to that form only after it worked. OpenAI itself is never switched."""
    seen: list[dict[str, object]] = []
    second_form: list[tuple[int, bytes]] = []

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, raw = await read_request(reader)
        body = orjson.loads(raw)
        seen.append(body["response_format"])
        if body["response_format"]["type"] == "json_schema":
            status, reply = 500, b'{"error": {"message": "bad response_format.type"}}'
        else:
            status, reply = second_form.pop(0)
        head = {"content-length": str(len(reply)), "connection": "close"}
        writer.write(response_head(status, head) + reply)
        await writer.drain()

    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    ok = b'{"choices": [{"message": {"content": "{\\"a\\": 1}"}}]}'
    overflow = b'{"error": {"message": "maximum context length is 2048 tokens"}}'
    async with raw_server(server) as base:
        async with _model(base) as model:
            second_form.append((400, overflow))
            with pytest.raises(ModelRequestError, match="maximum context length"):
                await model.chat("hi", response_format=schema)
            assert [f["type"] for f in seen] == ["json_schema", "json_object"]
            assert not model._json_object_schema  # the other form did not work (yet)

            seen.clear()
            second_form.append((200, ok))
            response = await model.chat("hi", response_format=schema)
            assert response.parsed_json() == {"a": 1}
            assert [f["type"] for f in seen] == ["json_schema", "json_object"]
            assert seen[1] == {"type": "json_object", "schema": schema}
            assert model._json_object_schema

            seen.clear()
            second_form.append((200, ok))
            await model.chat("hi", response_format=schema)
            assert [f["type"] for f in seen] == ["json_object"]  # straight to the working form

        seen.clear()
        openai = OpenAICompatibleModel("m", base_url=base, provider="openai")
        async with openai:
            with pytest.raises(ModelTransientError, match="bad response_format"):
                await openai.chat("hi", response_format=schema)
        assert [f["type"] for f in seen] == ["json_schema"]
        assert not openai._json_object_schema


def test_timeout_must_be_positive() -> None:
    for timeout in (0.0, -1.0, float("nan")):
        with pytest.raises(ConfigurationError, match="timeout must be a positive number"):
            _model("http://127.0.0.1:1/v1", timeout=timeout)


# -- the SSE reader -------------------------------------------------------------------------


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def _events(*lines: str) -> list[SseEvent]:
    return [e async for e in sse_events(_lines(*lines))]


async def test_sse_basic_events_and_fields() -> None:
    events = await _events(
        ": a comment, ignored",
        "event: message_start",
        "id: 7",
        'data: {"a": 1}',
        "",
        "",
        "data:no-space",
        "",
        "event: ping",
        "data",
        "",
    )
    assert events == [
        SseEvent("message_start", '{"a": 1}', "7"),
        SseEvent("message", "no-space", "7"),
        SseEvent("ping", "", "7"),
    ]


async def test_sse_multi_line_data_crlf_and_trailing_event() -> None:
    events = await _events(
        "data: first\r\n", "data:  second", "retry: 100", "", "event: last", "data: x"
    )
    assert events == [SseEvent("message", "first\n second"), SseEvent("last", "x")]


async def test_sse_event_type_resets_and_empty_blocks_dispatch_nothing() -> None:
    events = await _events("event: orphan", "", "data: plain", "")
    assert events == [SseEvent("message", "plain")]


async def test_sse_done_sentinel_ends_the_stream() -> None:
    events = await _events("data: one", "", "data: [DONE]", "", "data: never", "")
    assert events == [SseEvent("message", "one")]
    assert await _events("data: [DONE]") == []


async def test_sse_over_a_real_socket_with_split_chunks() -> None:
    """Events split at odd byte boundaries, CRLF line ends, comments: the provider still
    assembles the answer, and stops at [DONE] without reading the rest."""
    parts = [
        {"id": "c1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {"content": "Hello"}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {"content": ", wor"}}]},
        {
            "id": "c1",
            "choices": [{"index": 0, "delta": {"content": "ld"}, "finish_reason": "stop"}],
        },
        {"id": "c1", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3}},
    ]
    stream = b": keep-alive\r\n\r\n" + b"".join(
        b"data: " + orjson.dumps(p) + b"\r\n\r\n" for p in parts
    )
    stream += b"data: [DONE]\r\n\r\ndata: {not json at all\r\n\r\n"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        assert orjson.loads(body)["stream"] is True
        writer.write(
            response_head(
                200, {"content-type": "text/event-stream", "content-length": str(len(stream))}
            )
        )
        for i in range(0, len(stream), 7):
            writer.write(stream[i : i + 7])
            await writer.drain()
            await asyncio.sleep(0)

    async with raw_server(serve) as base, _model(base) as model:
        chunks = [c async for c in model.stream(build_request("hi"))]
    assert [c.delta for c in chunks[:-1]] == ["Hello", ", wor", "ld"]
    final = chunks[-1].response
    assert final is not None
    assert final.text == "Hello, world"
    assert final.usage.input_tokens == 9 and final.usage.output_tokens == 3
    assert final.id == "c1" and final.finish_reason == "stop"
