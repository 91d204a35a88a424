"""FallbackModel: order, which errors move the chain on, ModelUnavailableError, metadata,
pricing as the answering model, and streams that fail over only before their first chunk."""

from __future__ import annotations

import pytest

from tether.core.breaker import BreakerPolicy
from tether.core.errors import (
    ConfigurationError,
    ModelCircuitOpenError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelResponseError,
    ModelTimeoutError,
    ModelTransientError,
    ModelUnavailableError,
    StructuredOutputError,
)
from tether.llm import ModelResponse, Price, PriceTable, ScriptedModel, Usage
from tether.llm.wrappers import BreakerModel, FallbackModel, model_breaker
from tether.testing import FakeClock

from .helpers import StepModel, collect


async def test_the_first_model_that_answers_is_used() -> None:
    a, b = ScriptedModel(["from a"], name="a"), ScriptedModel(["from b"], name="b")
    chain = FallbackModel([a, b])
    out = await chain.chat("hi")
    assert out.text == "from a" and out.model == "scripted:a" and b.calls == 0
    assert out.metadata["fallback"] == {"used": "scripted:a", "index": 0, "skipped": []}
    assert chain.name == "fallback:scripted:a|scripted:b"


@pytest.mark.parametrize(
    "error",
    [
        ModelTransientError("500"),
        ModelTimeoutError("slow"),
        ModelResponseError("bad json"),
        ModelRateLimitedError("429", retry_after=30),
        ModelCircuitOpenError("open"),
        ModelUnavailableError("nested chain dry", errors=[]),
    ],
)
async def test_provider_failures_move_the_chain_on(error: Exception) -> None:
    a, b = ScriptedModel([error], name="a"), ScriptedModel(["from b"], name="b")
    out = await FallbackModel([a, b]).chat("hi")
    assert out.text == "from b" and out.model == "scripted:b"
    assert out.metadata["fallback"] == {
        "used": "scripted:b",
        "index": 1,
        "skipped": [{"model": "scripted:a", "error": f"{type(error).__name__}: {error}"}],
    }


async def test_a_refused_request_is_raised_at_once_unless_asked_otherwise() -> None:
    a, b = (
        ScriptedModel([ModelRequestError("400 context too long")] * 2, name="a"),
        ScriptedModel(["b"], name="b"),
    )
    with pytest.raises(ModelRequestError, match="context too long"):
        await FallbackModel([a, b]).chat("hi")
    assert b.calls == 0
    out = await FallbackModel([a, b], fallback_on_request_errors=True).chat("hi")
    assert out.text == "b" and a.calls == 2


async def test_errors_outside_on_are_raised_at_once() -> None:
    a, b = (
        ScriptedModel([StructuredOutputError("schema")], name="a"),
        ScriptedModel(["b"], name="b"),
    )
    with pytest.raises(StructuredOutputError):
        await FallbackModel([a, b]).chat("hi")
    a2, b2 = ScriptedModel([ValueError("bug")], name="a"), ScriptedModel(["b"], name="b")
    with pytest.raises(ValueError, match="bug"):
        await FallbackModel([a2, b2]).chat("hi")
    assert b.calls == 0 and b2.calls == 0
    only_timeouts = FallbackModel(
        [ScriptedModel([ModelTransientError("500")], name="a"), b], on=(ModelTimeoutError,)
    )
    with pytest.raises(ModelTransientError):
        await only_timeouts.chat("hi")


async def test_when_every_model_fails_the_error_lists_each_one() -> None:
    errors = [
        ModelTimeoutError("a slow"),
        ModelTransientError("b 503"),
        ModelCircuitOpenError("c open"),
    ]
    models = [ScriptedModel([e], name=n) for e, n in zip(errors, "abc", strict=True)]
    with pytest.raises(ModelUnavailableError) as caught:
        await FallbackModel(models).chat("hi")
    err = caught.value
    assert err.errors == errors
    assert "all 3 models of the fallback chain failed" in str(err)
    for part in (
        "scripted:a: ModelTimeoutError: a slow",
        "scripted:b: ModelTransientError: b 503",
        "scripted:c: ModelCircuitOpenError: c open",
    ):
        assert part in str(err)
    assert err.model == "fallback:scripted:a|scripted:b|scripted:c"
    assert all(m.calls == 1 for m in models)


async def test_an_open_breaker_skips_its_model_without_calling_it() -> None:
    policy = BreakerPolicy(failure_threshold=1, reset_timeout=60)
    primary = ScriptedModel([ModelTransientError("500"), "never"], name="primary")
    guarded = BreakerModel(primary, breaker=model_breaker("primary", policy, FakeClock()))
    backup = ScriptedModel(["b1", "b2"], name="backup")
    chain = FallbackModel([guarded, backup])
    assert (await chain.chat("hi")).text == "b1"
    out = await chain.chat("hi")
    assert out.text == "b2" and primary.calls == 1
    assert out.metadata["fallback"]["skipped"][0]["error"].startswith("ModelCircuitOpenError")


async def test_usage_and_cost_are_priced_as_the_answering_model() -> None:
    reply = ModelResponse(text="ok", usage=Usage(input_tokens=1000, output_tokens=1000))
    a = ScriptedModel([ModelTransientError("down")], name="a")
    b = ScriptedModel([reply], name="b")
    a.prices = PriceTable({"scripted:a": Price(100.0, 100.0), "scripted:b": Price(1.0, 2.0)})
    out = await FallbackModel([a, b]).chat("hi")
    assert out.model == "scripted:b" and out.cost == pytest.approx(3000 / 1e6)


async def test_a_stream_fails_over_before_its_first_chunk_only() -> None:
    a, b = (
        StepModel([[ModelTransientError("500")]], name="a"),
        StepModel([["from ", "b"]], name="b"),
    )
    deltas, out = await collect(FallbackModel([a, b]))
    assert deltas == ["from ", "b"] and out.model == "steps:b"
    assert out.metadata["fallback"]["index"] == 1 and a.closed == 1

    c, d = (
        StepModel([["half", ModelTransientError("dropped")]], name="c"),
        StepModel([["d"]], name="d"),
    )
    with pytest.raises(ModelTransientError, match="dropped"):
        await collect(FallbackModel([c, d]))
    assert d.opened == 0


async def test_a_stream_with_every_model_down_raises_unavailable() -> None:
    models = [StepModel([[ModelTimeoutError("t")]], name=n) for n in "ab"]
    with pytest.raises(ModelUnavailableError) as caught:
        await collect(FallbackModel(models))
    assert [type(e) for e in caught.value.errors] == [ModelTimeoutError, ModelTimeoutError]


def test_an_empty_chain_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least one model"):
        FallbackModel([])
