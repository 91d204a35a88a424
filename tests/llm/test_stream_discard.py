"""A streamed answer that fails mid-way tells the run's live stream to discard what it showed.
Before, an SSE consumer that joins ``model_token`` deltas showed the dead attempt's text and
then the retry's after it ("The refund of order 12The refund of order 1234 is approved.")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypedDict

from tether import END, START, Graph, RetryPolicy, RunStatus, Runtime
from tether.core.errors import ModelTransientError
from tether.llm.model import Model
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk
from tether.store.types import Event


class DiesOnce(Model):
    """Streams "The refund of order 12" and dies the first time; answers whole the second."""

    provider, model_name = "test", "dies-once"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: ModelRequest) -> ModelResponse:
        raise AssertionError("streamed only")

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        self.calls += 1
        for piece in ("The refund ", "of order 12"):
            yield StreamChunk(delta=piece)
        if self.calls == 1:
            raise ModelTransientError("the server closed the stream mid-answer", model=self.name)
        yield StreamChunk(delta="34 is approved.")
        yield StreamChunk(response=ModelResponse(text="The refund of order 1234 is approved."))


class S(TypedDict, total=False):
    answer: str


async def test_a_failed_stream_says_how_much_of_what_it_showed_to_discard() -> None:
    model = DiesOnce()

    async def talk(state: S) -> dict[str, Any]:
        return {"answer": (await model.chat("refund?", stream=True)).text}

    g = Graph(S, name="talk")
    g.add_node("talk", talk, retry=RetryPolicy(max_attempts=2, initial_interval=0, jitter=False))
    g.add_edge(START, "talk").add_edge("talk", END)
    wf = g.compile()
    seen: list[Event] = []
    async with Runtime("memory://") as rt:
        rt.bus.observe(seen.append)
        done = await rt.run(wf, {})
    assert done.status is RunStatus.COMPLETED
    shown = ""
    for ev in (e for e in seen if e.type == "model_token"):  # what a consumer would render
        shown = shown[: len(shown) - ev.data.get("discard", 0)] + ev.data["delta"]
    assert shown == done.state["answer"] == "The refund of order 1234 is approved."
    (dead,) = [e for e in seen if e.type == "model_token" and "discard" in e.data]
    assert (
        dead.data["discard"] == len("The refund of order 12") and "mid-answer" in dead.data["error"]
    )
