"""Test doubles for the wrapper tests: a sleep that records its waits, and a model whose streams
follow a script of delays, text chunks and errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from tether.llm import Model, ModelRequest, ModelResponse, StreamChunk
from tether.llm.request import build_request

Step = float | str | BaseException
"""A stream step: sleep this many seconds, yield this text, or raise this error."""


def request(text: str = "hi") -> ModelRequest:
    return build_request(text)


class RecordingSleep:
    """Stands in for ``asyncio.sleep``: returns at once, remembers every wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class StepModel(Model):
    """Call ``n`` follows ``scripts[n]`` (the last one repeats): ``stream`` sleeps, yields text
    and raises as told, then yields the final response; ``complete`` collects the stream."""

    provider = "steps"

    def __init__(self, scripts: Sequence[Sequence[Step]], name: str = "steps") -> None:
        self.model_name = name
        self.scripts = [list(s) for s in scripts]
        self.opened = 0
        self.closed = 0
        self.chunks_sent = 0

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        script = self.scripts[min(self.opened, len(self.scripts) - 1)]
        self.opened += 1
        text = ""
        try:
            for step in script:
                if isinstance(step, BaseException):
                    raise step
                if isinstance(step, str):
                    text += step
                    self.chunks_sent += 1
                    yield StreamChunk(delta=step)
                else:
                    await asyncio.sleep(step)
            yield StreamChunk(response=ModelResponse(text=text, model=self.name))
        finally:
            self.closed += 1

    async def complete(self, request: ModelRequest) -> ModelResponse:
        final: ModelResponse | None = None
        async for chunk in self.stream(request):
            final = chunk.response or final
        assert final is not None
        return final


async def collect(model: Model, req: ModelRequest | None = None) -> tuple[list[str], ModelResponse]:
    """Stream ``model`` through ``send``: the text deltas seen and the final response."""
    deltas: list[str] = []
    out = await model.send(req or request(), stream=True, on_token=deltas.append)
    return deltas, out
