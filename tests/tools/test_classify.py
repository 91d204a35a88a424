"""How the executor classifies what a tool raised: HTTP 429 with Retry-After (seconds or an
HTTP-date, read by the same parser as the model plane's), 5xx, timeouts."""

from __future__ import annotations

import time
from email.utils import formatdate

import httpx
import pytest

from tether.core.errors import ToolError, ToolRateLimitedError, ToolTimeoutError, ToolTransientError
from tether.tools.executor import classify


def _status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://svc.test/x")
    response = httpx.Response(status, headers=headers, request=request)
    return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)


def test_429_retry_after_in_seconds() -> None:
    err = classify(_status_error(429, {"Retry-After": "2.5"}), "t")
    assert isinstance(err, ToolRateLimitedError) and err.retry_after == 2.5


def test_429_retry_after_as_an_http_date() -> None:
    when = formatdate(time.time() + 30, usegmt=True)
    err = classify(_status_error(429, {"Retry-After": when}), "t")
    assert isinstance(err, ToolRateLimitedError)
    assert err.retry_after is not None and 27 <= err.retry_after <= 31


@pytest.mark.parametrize("value", ["soon", "inf", "nan", ""])
def test_unreadable_retry_after_is_no_advice(value: str) -> None:
    err = classify(_status_error(429, {"Retry-After": value}), "t")
    assert isinstance(err, ToolRateLimitedError) and err.retry_after is None


def test_other_failures() -> None:
    assert isinstance(classify(_status_error(503), "t"), ToolTransientError)
    assert isinstance(classify(TimeoutError(), "t"), ToolTimeoutError)
    plain = classify(ValueError("bad"), "t")
    assert type(plain) is ToolError and "ValueError: bad" in str(plain)
