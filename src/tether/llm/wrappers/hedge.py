"""Hedged requests: when an answer is slow, ask again in parallel and take whichever comes first.

The first request goes to ``inner``. If no answer has come ``delay`` seconds later, a second
request starts (to ``hedge_to`` when given, else ``inner`` again); with ``max_hedges=n`` another
one starts every ``delay`` seconds, up to ``n`` extra requests. The first success wins and the
requests still running are cancelled (and awaited, so none lingers). A request that fails does
not end the call while another is still running: the call waits for it. A hedge only ever
starts on the timer, never because a request failed (retrying is ``RetryingModel``'s job), so
when every request started has failed the first error is raised. Pick ``delay`` around the
model's p95 latency: hedging trades a few percent of extra calls for a shorter tail.

``metadata["hedged"]`` = ``{"fired": bool, "winner": index, "requests": n, "abandoned": k}``:
whether a hedge started, which request answered (0 is the first), how many were started and
how many were still running when it answered (cancelled then). The answer's ``usage`` counts
every request the call paid for, priced at the answer's model, so a budget is charged what the
hedged call spent: another answer that arrived with the winner's, in full; an answer that was
refused (``ModelError.usage``); and the prompt of each abandoned request (a provider bills a
prompt it has read even when the client goes away; ``estimated``). When every request failed,
the error raised carries what they all consumed.

Streams are not hedged: ``stream`` is the inner model's stream, since two streams cannot both
be shown to the caller and picking one after its first chunk gains little.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from tether.core.errors import ConfigurationError, ModelError
from tether.core.finite import check_number
from tether.llm.model import Model
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk, Usage, plus
from tether.llm.wrappers.base import (
    WrapperModel,
    aclose,
    answered,
    noted,
    spent_by,
    with_spent,
)


class HedgedModel(WrapperModel):
    def __init__(
        self,
        inner: Model,
        *,
        delay: float,
        max_hedges: int = 1,
        hedge_to: Model | None = None,
    ) -> None:
        super().__init__(inner)
        check_number("HedgedModel delay (seconds)", delay)
        if isinstance(max_hedges, bool) or not isinstance(max_hedges, int) or max_hedges < 1:
            raise ConfigurationError(
                f"HedgedModel needs delay >= 0 and an int max_hedges >= 1, got delay={delay}, "
                f"max_hedges={max_hedges!r}"
            )
        self.delay = delay
        self.max_hedges = max_hedges
        self.hedge_to = hedge_to or inner

    async def complete(self, request: ModelRequest) -> ModelResponse:
        loop = asyncio.get_running_loop()
        started = loop.time()
        tasks = [asyncio.ensure_future(self.inner.complete(request))]
        targets = [self.inner]
        pending = set(tasks)
        errors: list[BaseException] = []
        try:
            while pending:
                timeout = None
                if len(tasks) <= self.max_hedges:
                    timeout = max(0.0, started + len(tasks) * self.delay - loop.time())
                done, pending = await asyncio.wait(
                    pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    tasks.append(asyncio.ensure_future(self.hedge_to.complete(request)))
                    targets.append(self.hedge_to)
                    pending.add(tasks[-1])
                    continue
                for task in sorted(done, key=tasks.index):
                    error = task.exception()
                    if error is None:
                        index = tasks.index(task)
                        others = [t for t in tasks if t is not task]
                        abandoned = sum(1 for t in others if not t.done())
                        note = {
                            "fired": len(tasks) > 1,
                            "winner": index,
                            "requests": len(tasks),
                            "abandoned": abandoned,
                        }
                        won = with_spent(self, request, task.result(), self._spent(request, others))
                        return noted(won, "hedged", note, answered_by=targets[index].name)
                    errors.append(error)
            first = errors[0]
            for extra in errors[1:]:
                first.add_note(f"a hedged request failed too: {type(extra).__name__}: {extra}")
            if isinstance(first, ModelError):  # the call is charged every refused answer
                first.usage = self._spent(request, tasks)
            raise first
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _spent(
        self, request: ModelRequest, tasks: Sequence[asyncio.Future[ModelResponse]]
    ) -> Usage:
        """What ``tasks`` (the requests other than the winner) consumed, which the provider
        bills: an answer that arrived too (both answers came at once) in full, an answer that
        was refused (``ModelError.usage``) as the error says, and the prompt of a request still
        in flight (cancelled now: a provider bills a prompt it has read), ``estimated``. Added
        to the winner's usage, a budget counts what the hedged call spent, not its winner
        alone."""
        prompt = sum(self.count_tokens(m.content) for m in request.messages)
        total = Usage()
        for task in tasks:
            used: Usage | None
            if not task.done():
                used = Usage(input_tokens=prompt, estimated=True)
            elif task.cancelled():
                used = None
            elif (error := task.exception()) is not None:
                used = spent_by(error)
            else:
                used = answered(self, request, task.result())
            total = plus(total, used) or total
        return total

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        chunks = aiter(self.inner.stream(request))
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await aclose(chunks)
