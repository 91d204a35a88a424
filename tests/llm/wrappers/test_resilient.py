"""resilient(): the layers and their order, and what that order means for a call."""

from __future__ import annotations

import pytest

from tether.core.breaker import BreakerPolicy, BreakerState
from tether.core.errors import ConfigurationError, ModelCircuitOpenError, ModelTransientError
from tether.llm import Model, ScriptedModel
from tether.llm.wrappers import (
    BreakerModel,
    FallbackModel,
    HedgedModel,
    ModelRetry,
    RetryingModel,
    TimeoutModel,
    WrapperModel,
    innermost,
    resilient,
)

NO_WAIT = ModelRetry(initial_interval=0.0)


def layers(model: Model) -> list[type[Model]]:
    out: list[type[Model]] = []
    while isinstance(model, WrapperModel):
        out.append(type(model))
        model = model.inner
    return out


class Tokenizing(ScriptedModel):
    def count_tokens(self, text: str) -> int:
        return len(text)


def test_per_model_the_timeout_is_inside_the_retry_inside_the_breaker() -> None:
    base = Tokenizing(["x"], name="m")
    model = resilient(base)
    assert layers(model) == [BreakerModel, RetryingModel, TimeoutModel]
    assert innermost(model) is base
    assert model.name == "scripted:m" and model.provider == "scripted"
    assert model.count_tokens("abcdef") == 6 and model.exact_token_count


def test_the_hedge_wraps_each_models_stack_and_the_fallback_chain_is_outermost() -> None:
    a, b = ScriptedModel([], name="a"), ScriptedModel([], name="b")
    model = resilient(a, fallbacks=[b], hedge_after=2.0, timeout=None, retry=None)
    assert isinstance(model, FallbackModel)
    assert [layers(m) for m in model.models] == [[HedgedModel, BreakerModel]] * 2
    assert [innermost(m) for m in model.models] == [a, b]
    assert model.name == "fallback:scripted:a|scripted:b"


def test_layers_can_be_left_out_and_bad_timeouts_are_refused() -> None:
    base = ScriptedModel([])
    assert resilient(base, timeout=None, retry=None, breaker=None) is base
    with pytest.raises(ConfigurationError, match="must be > 0"):
        resilient(base, timeout=0)


async def test_the_breaker_counts_a_whole_retried_call_as_one_failure() -> None:
    base = ScriptedModel([ModelTransientError("500")], cycle=True, name="down")
    model = resilient(base, retry=NO_WAIT, breaker=BreakerPolicy(failure_threshold=2))
    for _ in range(2):
        with pytest.raises(ModelTransientError):
            await model.chat("hi")
    assert base.calls == 6  # 2 calls x 3 attempts
    assert isinstance(model, BreakerModel) and model.breaker.state is BreakerState.OPEN
    with pytest.raises(ModelCircuitOpenError):
        await model.chat("hi")
    assert base.calls == 6  # an open breaker refuses before any attempt


async def test_a_call_that_succeeds_on_a_retry_is_a_success_for_the_breaker() -> None:
    base = ScriptedModel([ModelTransientError("500"), "ok"] * 3, name="wobbly")
    model = resilient(base, retry=NO_WAIT, breaker=BreakerPolicy(failure_threshold=1))
    for _ in range(3):
        out = await model.chat("hi")
        assert out.text == "ok" and out.metadata["attempts"] == 2
    assert isinstance(model, BreakerModel) and model.breaker.failures == 0


async def test_everything_on_records_every_layers_note() -> None:
    primary = ScriptedModel([ModelTransientError("500")], cycle=True, name="primary")
    backup = ScriptedModel([ModelTransientError("blip"), "from backup"], name="backup")
    model = resilient(primary, fallbacks=[backup], retry=NO_WAIT, hedge_after=5.0)
    out = await model.chat("hi")
    assert out.text == "from backup" and out.model == "scripted:backup"
    assert out.metadata["attempts"] == 2
    assert out.metadata["hedged"] == {"fired": False, "winner": 0, "requests": 1, "abandoned": 0}
    assert out.metadata["fallback"]["index"] == 1 and primary.calls == 3
