"""A provider that reports an answer as costing no output tokens (a proxy that zeroes usage, a
server bug): the answer is counted, so a budget in tokens still stops it. Before, an answer
with ``output_tokens=0`` and ``input_tokens>0`` was taken at its word: 0 output charged, however
long the text or the tool calls."""

from __future__ import annotations

from tether.core.messages import ToolCall
from tether.llm import Model, ModelRequest, ModelResponse
from tether.llm.types import Usage

LONG = "word " * 400  # about 500 tokens by any count


class ZeroOutput(Model):
    provider = "zero"
    model_name = "v1"

    def __init__(self, answer: ModelResponse) -> None:
        super().__init__()
        self.answer = answer

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return self.answer


async def test_text_said_to_cost_nothing_is_counted() -> None:
    model = ZeroOutput(ModelResponse(text=LONG, usage=Usage(input_tokens=12, output_tokens=0)))
    out = await model.chat("hello")
    assert out.usage.input_tokens == 12  # the reported side is kept
    assert out.usage.output_tokens >= 100 and out.usage.estimated


async def test_tool_calls_said_to_cost_nothing_are_counted() -> None:
    call = ToolCall(id="c1", name="lookup_order", arguments={"order_id": "1234" * 20})
    model = ZeroOutput(
        ModelResponse(text="", tool_calls=(call,), usage=Usage(input_tokens=12, output_tokens=0))
    )
    out = await model.chat("hello")
    assert out.usage.output_tokens >= 10 and out.usage.estimated


async def test_honest_usage_is_kept_as_reported() -> None:
    model = ZeroOutput(ModelResponse(text=LONG, usage=Usage(input_tokens=12, output_tokens=3)))
    out = await model.chat("hello")
    assert (out.usage.input_tokens, out.usage.output_tokens, out.usage.estimated) == (12, 3, False)
    empty = ZeroOutput(ModelResponse(text="", usage=Usage(input_tokens=12, output_tokens=0)))
    assert (await empty.chat("hello")).usage.output_tokens == 0  # nothing said: nothing counted
