"""A streamed request answered with a web page (a proxy's, a login page, a base URL that is not
the API's): the call says so, instead of "closed mid-answer after 0 characters" (the page read
as events held none)."""

from __future__ import annotations

import asyncio

import pytest

from tests.llm.providers.rawhttp import raw_server, read_request, response_head
from tether.core.errors import ModelResponseError
from tether.llm.providers._http import HttpModel
from tether.llm.providers.anthropic import AnthropicModel
from tether.llm.providers.openai_compat import OpenAICompatibleModel

PAGE = b"<!doctype html><html><head><title>Sign in</title></head><body>Sign in</body></html>"


async def _web_page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    head = {"content-type": "text/html; charset=utf-8", "content-length": str(len(PAGE))}
    writer.write(response_head(200, {**head, "connection": "close"}) + PAGE)
    await writer.drain()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_web_page_for_a_stream_is_named_as_such(provider: str) -> None:
    async with raw_server(_web_page) as url:
        model: HttpModel
        if provider == "anthropic":
            model = AnthropicModel("claude", api_key="k", base_url=url, timeout=30)
        else:
            model = OpenAICompatibleModel("m", base_url=url, timeout=30)
        try:
            with pytest.raises(ModelResponseError, match="web page") as caught:
                await model.chat("hi", stream=True)
        finally:
            await model.aclose()
    assert "Sign in" in str(caught.value) and "base URL" in str(caught.value)
