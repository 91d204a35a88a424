"""Bodies a JSON parser gives up on (nested 1,000 deep, an integer of 5,000 digits, bytes that
are not UTF-8) are a 400 that says what is wrong and what to send, not FastAPI's bare
"There was an error parsing the body"."""

from __future__ import annotations

import pytest

from tests.server.conftest import Server
from tests.server.test_problems import problem
from tether.core import serde

JSON = {"content-type": "application/json"}


def deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


@pytest.mark.parametrize("levels", [1_000, 100_000])
def test_a_body_nested_too_deep_says_how_deep_tether_keeps(server: Server, levels: int) -> None:
    body = '{"workflow":"echo","input":{"text":"x","more":' + deep(levels) + "}}"
    got = problem(server.client.post("/v1/runs", content=body, headers=JSON), 400)
    assert got["type"].endswith("/bad-request")
    assert "too deep" in got["detail"] and str(serde.MAX_DEPTH) in got["detail"]
    assert "JSON string" in got["detail"]  # what to send instead


def test_a_resume_answer_nested_too_deep_says_so(server: Server) -> None:
    run_id = server.submit("ask", {"question": "q"})
    server.wait(run_id, "ESCALATED")
    body = '{"value":' + "[" * 5_000 + "]" * 5_000 + "}"
    got = problem(server.client.post(f"/v1/runs/{run_id}/resume", content=body, headers=JSON), 400)
    assert "too deep" in got["detail"]
    assert server.client.get(f"/v1/runs/{run_id}").json()["status"] == "ESCALATED"  # untouched


def test_an_integer_too_long_to_read_is_asked_for_as_a_string(server: Server) -> None:
    body = '{"workflow":"echo","input":{"text":"x"},"priority":1' + "0" * 5_000 + "}"
    got = problem(server.client.post("/v1/runs", content=body, headers=JSON), 400)
    assert "integer" in got["detail"] and "as a string" in got["detail"]


def test_a_body_that_is_not_utf8_says_so(server: Server) -> None:
    body = b'{"workflow":"ech\xff","input":{}}'
    got = problem(server.client.post("/v1/runs", content=body, headers=JSON), 400)
    assert "UTF-8" in got["detail"]
