"""CascadeModel: the small model's answer is kept when confident, escalated with the reason
recorded when not (low logprobs, a judge's no, invalid structured output, an error), and an
escalated answer accounts for both calls."""

from __future__ import annotations

import math

import pytest

from tether.core.errors import ConfigurationError, ModelTimeoutError, ModelTransientError
from tether.llm import ModelRequest, ModelResponse, Price, PriceTable, ScriptedModel, Usage
from tether.llm.cascade import CascadeModel, logprob_confidence

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


def said(text: str, logprobs: tuple[float, ...] | None = None, tokens: int = 0) -> ModelResponse:
    return ModelResponse(
        text=text, logprobs=logprobs, usage=Usage(input_tokens=tokens, output_tokens=tokens)
    )


def pair(
    small_reply: object, large_reply: object = "large answer"
) -> tuple[ScriptedModel, ScriptedModel]:
    return ScriptedModel([small_reply], name="small"), ScriptedModel([large_reply], name="large")  # type: ignore[list-item]


def test_confidence_is_the_geometric_mean_token_probability() -> None:
    assert logprob_confidence((math.log(0.5), math.log(0.8))) == pytest.approx(math.sqrt(0.4))
    assert logprob_confidence(()) is None and logprob_confidence(None) is None


async def test_a_confident_small_answer_is_kept() -> None:
    small, large = pair(said("Paris", (-0.1, -0.2)))
    out = await CascadeModel(small, large).chat("capital of France?")
    assert out.text == "Paris" and out.model == "scripted:small" and large.calls == 0
    assert small.requests[0].logprobs  # asked for logprobs to judge its confidence
    note = out.metadata["cascade"]
    assert note["escalated"] is False and note["reason"] == "accepted"
    assert note["confidence"] == pytest.approx(math.exp(-0.15))
    assert note["small"] == "scripted:small" and note["large"] == "scripted:large"


async def test_a_low_confidence_answer_is_escalated_with_the_reason() -> None:
    small, large = pair(said("Lyon?", (-2.0, -3.0)))
    out = await CascadeModel(small, large, threshold=0.6).chat("capital of France?")
    assert out.text == "large answer" and out.model == "scripted:large"
    assert large.requests[0].logprobs is False  # the caller's own request, unchanged
    note = out.metadata["cascade"]
    assert note["escalated"] is True and note["reason"] == "low_confidence"
    assert note["confidence"] == pytest.approx(math.exp(-2.5))
    assert note["detail"] == "confidence 0.082 < threshold 0.6"


async def test_an_escalated_answer_accounts_for_both_calls() -> None:
    small, large = pair(said("hmm", (-3.0,), tokens=100), said("sure", (-0.1,), tokens=10))
    prices = PriceTable({"scripted:small": Price(1.0, 1.0), "scripted:large": Price(10.0, 10.0)})
    small.prices, large.prices = prices, prices
    out = await CascadeModel(small, large).chat("q")
    assert (out.usage.input_tokens, out.usage.output_tokens) == (110, 110)
    assert out.cost == pytest.approx((200 * 1.0 + 20 * 10.0) / 1e6)
    note = out.metadata["cascade"]
    assert note["small_usage"] == {"input_tokens": 100, "output_tokens": 100, "estimated": False}
    assert note["small_cost"] == pytest.approx(200 / 1e6)


async def test_without_logprobs_a_judge_decides() -> None:
    seen: list[tuple[ModelRequest, ModelResponse]] = []

    def no_city_no_deal(request: ModelRequest, response: ModelResponse) -> bool:
        seen.append((request, response))
        return "Paris" in response.text

    small, large = pair("I am not sure")
    out = await CascadeModel(small, large, judge=no_city_no_deal).chat("capital of France?")
    assert out.text == "large answer"
    assert out.metadata["cascade"]["reason"] == "judge_rejected"
    assert seen[0][1].text == "I am not sure" and seen[0][0].last_user_text == "capital of France?"

    small, large = pair("Paris")
    out = await CascadeModel(small, large, judge=no_city_no_deal).chat("capital of France?")
    assert out.text == "Paris" and out.metadata["cascade"]["escalated"] is False


async def test_an_async_judge_can_give_its_reason_or_a_score() -> None:
    async def strict(request: ModelRequest, response: ModelResponse) -> tuple[bool, str]:
        return False, "cites no source"

    small, large = pair("Paris")
    out = await CascadeModel(small, large, judge=strict).chat("q")
    assert out.metadata["cascade"]["detail"] == "cites no source" and large.calls == 1

    async def score(request: ModelRequest, response: ModelResponse) -> float:
        return 0.4

    small, large = pair("Paris")
    out = await CascadeModel(small, large, judge=score, threshold=0.5).chat("q")
    assert out.metadata["cascade"]["reason"] == "low_confidence"
    assert out.metadata["cascade"]["confidence"] == 0.4


async def test_confidence_judge_asks_the_judge_even_with_logprobs() -> None:
    small, large = pair(said("Paris", (-0.01,)))
    model = CascadeModel(small, large, confidence="judge", judge=lambda r, s: False)
    out = await model.chat("q")
    assert out.metadata["cascade"]["reason"] == "judge_rejected"
    assert small.requests[0].logprobs is False


async def test_a_custom_confidence_function_scores_the_answer() -> None:
    small, large = pair("short")
    model = CascadeModel(small, large, confidence=lambda r, s: len(s.text) / 10, threshold=0.6)
    out = await model.chat("q")
    assert out.metadata["cascade"]["confidence"] == 0.5 and out.text == "large answer"


@pytest.mark.parametrize(
    ("small_reply", "options"),
    [
        ("maybe", {"confidence": lambda r, s: float("nan")}),
        ("maybe", {"confidence": "judge", "judge": lambda r, s: float("nan")}),
        ("maybe", {"confidence": "judge", "judge": lambda r, s: None}),
        ("maybe", {"confidence": "judge", "judge": lambda r, s: "yes"}),
        (said("maybe", (-0.1, float("nan"))), {}),
    ],
    ids=["scorer-nan", "judge-nan", "judge-none", "judge-text", "logprob-nan"],
)
async def test_a_score_that_is_not_a_number_escalates(
    small_reply: object, options: dict[str, object]
) -> None:
    """Before, NaN passed (``nan < threshold`` is False) and a judge's None was a TypeError."""
    small, large = pair(small_reply)
    out = await CascadeModel(small, large, threshold=0.6, **options).chat("q")  # type: ignore[arg-type]
    note = out.metadata["cascade"]
    assert out.text == "large answer", note
    assert (note["escalated"], note["reason"]) == (True, "bad_signal")
    assert "not a number" in note["detail"]


async def test_with_no_signal_the_small_answer_is_kept_unless_told_otherwise() -> None:
    small, large = pair("no logprobs here")
    out = await CascadeModel(small, large).chat("q")
    assert out.text == "no logprobs here" and out.metadata["cascade"]["reason"] == "no_signal"
    small, large = pair("no logprobs here")
    out = await CascadeModel(small, large, no_signal="escalate").chat("q")
    assert out.text == "large answer" and out.metadata["cascade"]["reason"] == "no_signal"


@pytest.mark.parametrize(
    ("small_text", "why"),
    [
        ("Paris, I think", "not valid JSON"),
        ('{"town": "Paris"}', "'city' is a required property"),
        ('{"city": 75}', "75 is not of type 'string'"),
    ],
)
async def test_structured_output_that_does_not_validate_is_escalated(
    small_text: str, why: str
) -> None:
    small, large = pair(said(small_text, (-0.01,)), {"city": "Paris"})
    out = await CascadeModel(small, large).chat("where?", response_format=SCHEMA)
    assert out.parsed_json() == {"city": "Paris"} and out.model == "scripted:large"
    note = out.metadata["cascade"]
    assert note["reason"] == "invalid_output" and why in note["detail"]


async def test_structured_output_that_validates_is_kept() -> None:
    small, large = pair(said('```json\n{"city": "Paris"}\n```', (-0.01,)))
    out = await CascadeModel(small, large).chat("where?", response_format=SCHEMA)
    assert out.model == "scripted:small" and large.calls == 0


async def test_a_small_model_error_escalates_unless_told_to_raise() -> None:
    small, large = pair(ModelTimeoutError("small timed out"))
    out = await CascadeModel(small, large).chat("q")
    note = out.metadata["cascade"]
    assert out.text == "large answer" and note["reason"] == "small_error"
    assert note["detail"] == "ModelTimeoutError: small timed out" and "small_usage" not in note

    small, large = pair(ModelTransientError("500"))
    with pytest.raises(ModelTransientError):
        await CascadeModel(small, large, escalate_on_error=False).chat("q")
    assert large.calls == 0


async def test_streaming_streams_the_large_answer_when_escalating() -> None:
    small = ScriptedModel([said("meh", (-4.0,))], name="small")
    large = ScriptedModel(["a long large answer"], name="large", stream_chunk=5)
    deltas: list[str] = []
    out = await CascadeModel(small, large).chat("q", on_token=deltas.append)
    assert deltas == ["a lon", "g lar", "ge an", "swer"] and out.text == "a long large answer"
    assert out.metadata["cascade"]["escalated"] is True

    small, large = pair(said("confident", (-0.01,)))
    deltas = []
    out = await CascadeModel(small, large).chat("q", on_token=deltas.append)
    assert deltas == ["confident"] and out.metadata["cascade"]["escalated"] is False


def test_bad_settings_are_refused() -> None:
    small, large = pair("x")
    with pytest.raises(ConfigurationError, match="needs judge"):
        CascadeModel(small, large, confidence="judge")
    with pytest.raises(ConfigurationError, match="threshold"):
        CascadeModel(small, large, threshold=1.5)
    with pytest.raises(ConfigurationError, match="confidence must be"):
        CascadeModel(small, large, confidence="vibes")  # type: ignore[arg-type]
    assert CascadeModel(small, large).name == "cascade:scripted:small>scripted:large"


async def test_a_judge_model_can_reject_and_its_reason_is_recorded() -> None:
    from tether.llm.cascade import model_judge

    judge = ScriptedModel([{"accept": False, "reason": "it does not answer the question"}])
    small, large = ScriptedModel(["meh"]), ScriptedModel(["the real answer"])
    cascade = CascadeModel(small, large, confidence="judge", judge=model_judge(judge))
    out = await cascade.chat("what is 2 + 2?")
    assert out.text == "the real answer"
    note = out.metadata["cascade"]
    assert (note["escalated"], note["reason"]) == (True, "judge_rejected")
    assert note["detail"] == "it does not answer the question"
    asked = judge.requests[0]
    assert "what is 2 + 2?" in asked.last_user_text and "meh" in asked.last_user_text
    assert asked.response_format is not None  # the verdict is structured output


async def test_a_judge_model_that_accepts_keeps_the_small_answer() -> None:
    from tether.llm.cascade import model_judge

    judge = ScriptedModel(['{"accept": true, "reason": "correct"}'])
    small, large = ScriptedModel(["4"]), ScriptedModel(["never"])
    out = await CascadeModel(small, large, confidence="judge", judge=model_judge(judge)).chat(
        "2 + 2?"
    )
    assert out.text == "4" and large.calls == 0
    assert out.metadata["cascade"]["reason"] == "accepted"


async def test_a_judge_model_without_a_valid_verdict_escalates() -> None:
    from tether.llm.cascade import model_judge

    judge = ScriptedModel(["no idea", "still no idea"])
    small, large = ScriptedModel(["4"]), ScriptedModel(["four"])
    out = await CascadeModel(small, large, confidence="judge", judge=model_judge(judge)).chat(
        "2 + 2?"
    )
    assert out.text == "four" and judge.calls == 2  # one repair attempt, then reject
    assert out.metadata["cascade"]["detail"].startswith("the judge gave no valid verdict")
