"""An event stream whose ``retry:`` field is not ASCII digits (a proxy's or a mangled stream's
"²", "٣") is ignored as the WHATWG rules say, not a ValueError that ends the client's
``events()`` / ``wait()``."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tether.client import AsyncClient
from tether.client.sse import SseParser
from tether.core.backoff import Backoff


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "1\u00b2", "-5", "1.5", " "])
def test_a_retry_field_of_anything_but_ascii_digits_is_ignored(value: str) -> None:
    p = SseParser()
    assert p.feed(f"retry: {value}") is None
    msg = p.feed("data: x") or p.feed("")
    assert msg is not None and msg.retry is None and msg.data == "x"


def test_a_retry_field_of_ascii_digits_is_read() -> None:
    p = SseParser()
    p.feed("retry: 250")
    p.feed("data: x")
    msg = p.feed("")
    assert msg is not None and msg.retry == 250


def test_a_stream_with_an_odd_retry_field_still_delivers_its_events() -> None:
    body = (
        "retry: \u00b2\n\n"
        'id: 1\nevent: lifecycle\ndata: {"seq": 1, "type": "lifecycle", "data": {}}\n\n'
        "event: end\ndata: {}\n\n"
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    async def go() -> list[int]:
        retry = Backoff(max_attempts=1, owner="test")
        transport = httpx.MockTransport(handler)
        async with AsyncClient("http://api.test", retry=retry, transport=transport) as c:
            return [ev.seq async for ev in c.events("r1", follow=True)]

    assert asyncio.run(go()) == [1]


def test_a_message_without_a_data_line_is_not_dispatched() -> None:
    p = SseParser()  # WHATWG: an empty data buffer at the blank line dispatches nothing
    assert p.feed("event: step_finished") is None
    assert p.feed("") is None
    assert p.feed("data: x") is None
    msg = p.feed("")
    assert msg is not None and msg.event == "message" and msg.data == "x"  # the name was reset


def test_an_empty_data_line_is_still_a_message() -> None:
    p = SseParser()
    p.feed("event: ping")
    p.feed("data:")
    msg = p.feed("")
    assert msg is not None and msg.event == "ping" and msg.data == ""
