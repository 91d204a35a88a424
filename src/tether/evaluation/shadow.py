"""Shadow mode: a candidate model B answers the same requests as the live model A, for a
sampled share of calls, and only its answer is kept: in the shadow log, beside A's, with the
distance of the two decisions. A shadowed model is still a ``Model``.

* A answers the run as if B were not there: B runs in a task of its own, started with A's
  call, and the comparison after both answered; neither is awaited by A's caller.
* B's output is data only. Its tool calls are never executed: nothing hands them to a tool.
  B is called through ``complete`` (no journal, no governor, no ``model_call`` event) in a
  context where no run is current, so even a B that calls other models cannot journal or
  charge anything to the run.
* Both decisions are logged with what they cost (tokens, US dollars, seconds), so the log
  also compares price and speed.
* A failure of B (or of the comparison, or of writing the log) is recorded in the shadow row
  when it can be, logged, and never reaches the run.
* At most ``max_in_flight`` B calls run at once: a sampled call finding them all busy (a
  slower or stalled B under load) is not shadowed (``skipped`` counts them, one warning a
  minute says so), so B's tasks, connections and spending cannot pile up without bound.
* Which calls are shadowed is decided by the call key (the task's next ``shadow`` journal key
  inside a run, the request's digest outside): the same call makes the same choice on every
  replay, and a ``rate`` of 0.25 shadows about a quarter of the calls. A shadowed call's row
  is keyed by that key and the request's digest.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigurationError
from tether.core.journal import CURRENT_RUN, current_journal
from tether.evaluation.shadow_distance import DecisionWeights, decision, decision_distance
from tether.llm.embeddings import Embedder, default_embedder
from tether.llm.model import Model
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk
from tether.llm.wrappers.base import WrapperModel
from tether.store.evaluation_log import EvaluationLogStore, ShadowRow

log = logging.getLogger("tether.evaluation.shadow")
NO_WORKFLOW = "-"
MAX_IN_FLIGHT = 16
"""Shadow (B) calls running at once, by default."""
SKIP_WARN_EVERY = 60.0
"""Seconds between two warnings about calls not shadowed for want of room."""


def sampled(key: str, rate: float) -> bool:
    """Whether the call ``key`` is in the sampled share ``rate`` (deterministic)."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return h / 2**64 < rate


class ShadowModel(WrapperModel):
    """``live`` answers; ``shadow`` is asked the same for a ``rate`` share of the calls and its
    decision logged (to ``store``'s shadow log when given, and to ``rows``, the last
    ``keep`` in this process). ``await drain()`` waits for the comparisons in flight."""

    def __init__(
        self,
        live: Model,
        shadow: Model,
        *,
        store: EvaluationLogStore | None = None,
        rate: float = 1.0,
        workflow: str | None = None,
        embedder: Embedder | None = None,
        weights: DecisionWeights | None = None,
        clock: Clock = SYSTEM_CLOCK,
        keep: int = 1000,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        super().__init__(live)
        if not 0.0 <= rate <= 1.0:
            raise ConfigurationError(f"shadow rate must be in [0, 1], got {rate}")
        if (
            isinstance(max_in_flight, bool)
            or not isinstance(max_in_flight, int)
            or max_in_flight < 1
        ):
            raise ConfigurationError(
                f"max_in_flight must be an int >= 1 (shadow calls at once), got {max_in_flight!r}"
            )
        if store is not None and not isinstance(store, EvaluationLogStore):
            raise ConfigurationError(
                f"{type(store).__name__} keeps no shadow log: pass a tether store (memory, "
                "SQLite, PostgreSQL) or None"
            )
        self.shadow = shadow
        self.store = store
        self.rate = rate
        self.workflow = workflow
        self._embedder = embedder
        self.weights = weights or DecisionWeights()
        self.clock = clock
        self.rows: deque[ShadowRow] = deque(maxlen=keep)
        self.max_in_flight = max_in_flight
        self.skipped = 0
        """Sampled calls not shadowed because ``max_in_flight`` B calls were running."""
        self._pending: set[asyncio.Task[None]] = set()
        self._asking: set[asyncio.Task[ModelResponse]] = set()
        self._warned_at = float("-inf")

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    # -- the live path ---------------------------------------------------------------------
    async def complete(self, request: ModelRequest) -> ModelResponse:
        where = self._where(request)
        b = self._start_shadow(request) if where is not None else None
        started = time.perf_counter()
        try:
            response = await self.inner.complete(request)
        except BaseException:
            if b is not None:
                b.cancel()
            raise
        if b is not None and where is not None:
            seen = self.inner.finalize(request, response, time.perf_counter() - started)
            self._spawn(self._compare(where, seen, b))
        return response

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        where = self._where(request)
        b = self._start_shadow(request) if where is not None else None
        started = time.perf_counter()
        final: ModelResponse | None = None
        try:
            async for chunk in self.inner.stream(request):
                if chunk.response is not None:
                    final = chunk.response
                yield chunk
        except BaseException:
            if b is not None:
                b.cancel()
            raise
        if b is not None and where is not None:
            if final is None:
                b.cancel()
            else:
                seen = self.inner.finalize(request, final, time.perf_counter() - started)
                self._spawn(self._compare(where, seen, b))

    async def drain(self) -> None:
        """Wait for every shadow call and comparison started so far."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    # -- the shadow path -------------------------------------------------------------------
    def _where(self, request: ModelRequest) -> tuple[str, str, str] | None:
        """(run id, call key, workflow) of a sampled call; None when not sampled."""
        ctx = current_journal()
        if ctx is None:
            run_id, key = "", f"call:{request.digest()[:16]}"
            if not sampled(key, self.rate):
                return None
        else:
            run_id, key = ctx.run_id, ctx.call_key("shadow")
            if not sampled(key, self.rate):
                return None
            # the request's digest too: a replayed call before this one shifts no other's key
            key = f"{key}:{request.digest()[:16]}"
        if len(self._asking) >= self.max_in_flight:
            self._skip()
            return None
        workflow = getattr(ctx, "workflow", None) or self.workflow or NO_WORKFLOW
        return run_id, key, str(workflow)

    def _skip(self) -> None:
        self.skipped += 1
        now = time.monotonic()
        if now - self._warned_at >= SKIP_WARN_EVERY:
            self._warned_at = now
            log.warning(
                "shadow model %s: %d calls running (max_in_flight), a sampled call was not "
                "shadowed (%d so far): B is slower than the calls it shadows",
                self.shadow.name,
                len(self._asking),
                self.skipped,
            )

    def _start_shadow(self, request: ModelRequest) -> asyncio.Task[ModelResponse]:
        detached = contextvars.copy_context()
        detached.run(CURRENT_RUN.set, None)  # B sees no run: nothing it does is journaled
        task = asyncio.create_task(self._ask_shadow(request), context=detached)
        self._asking.add(task)
        task.add_done_callback(self._asking.discard)
        task.add_done_callback(_consume)
        return task

    async def _ask_shadow(self, request: ModelRequest) -> ModelResponse:
        """B's answer with its usage, cost and latency filled in as a live call's would be."""
        started = time.perf_counter()
        response = await self.shadow.complete(request)
        return self.shadow.finalize(request, response, time.perf_counter() - started)

    def _spawn(self, coro: Any) -> None:
        detached = contextvars.copy_context()
        detached.run(CURRENT_RUN.set, None)
        task: asyncio.Task[None] = asyncio.create_task(coro, context=detached)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _compare(
        self, where: tuple[str, str, str], live: ModelResponse, b: asyncio.Task[ModelResponse]
    ) -> None:
        run_id, key, workflow = where
        mine = decision(live)
        row = ShadowRow(
            run_id, key, workflow, self.clock.now(), live.model or self.inner.name,
            self.shadow.name, {**mine, **spending(live)},
        )  # fmt: skip
        try:
            answer = await b
            theirs = decision(answer)
            dist = await decision_distance(mine, theirs, self.embedder, self.weights)
            row.shadow = {**theirs, **spending(answer)}
            row.distance, row.tool_agrees = dist.distance, dist.tool_agrees
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            row.error = f"{type(exc).__name__}: {exc}"[:2000]
            log.warning("shadow model %s failed on call %s: %s", self.shadow.name, key, row.error)
        self.rows.append(row)
        if self.store is not None:
            try:
                await self.store.put_shadow(row)
            except Exception as exc:
                log.warning("could not write the shadow log row of call %s: %s", key, exc)


def spending(response: ModelResponse) -> dict[str, Any]:
    """What an answer cost: tokens, US dollars (None: unpriced), seconds."""
    return {
        "input_tokens": response.usage.input_tokens,
        "output_tokens": response.usage.output_tokens,
        "cost": response.cost,
        "latency": response.timing.latency,
    }


def _consume(task: asyncio.Task[Any]) -> None:
    """Mark a shadow task's exception as seen (the comparison records it)."""
    if not task.cancelled():
        task.exception()
