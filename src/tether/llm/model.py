"""The ``Model`` protocol: one ``complete`` (and optionally ``stream``) per provider or wrapper,
and the public ``chat`` that every caller uses.

``chat`` is where the plane's guarantees live, once, whatever the model is:

- inside a run (a graph node), the call goes through the run's effect journal: a resumed or
  replayed run gets the recorded response back and the provider is not called (or paid) again;
- the live call is timed (latency; TTFT and TPOT when streamed), its usage filled in (counted
  when the provider did not report it) and priced from the price table;
- a GenAI OpenTelemetry span is opened around it and a ``model_call`` event with usage and cost
  is put on the run's stream.

Wrappers (retry, breaker, fallback, cache...) are Models whose ``complete`` calls another
Model's ``complete``; only the outermost ``chat`` journals, so a retried call is one entry.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextvars import ContextVar
from typing import Any

from tether.core.errors import ModelResponseError
from tether.core.governor import CallOutcome, GovernedCall, governor_of
from tether.core.journal import CallJournal, current_journal
from tether.llm.call_events import (
    answer_message,
    call_text,
    prompt_messages,
    said,
    settle_failed,
    spent,
    usage_event,
)
from tether.llm.call_events import span_attributes as span_attributes  # its old home
from tether.llm.failed_call import Received, budget_amounts, failed_usage, failure_event
from tether.llm.pricing import PriceTable, default_prices
from tether.llm.request import FormatLike, MessagesLike, ToolLike, build_request
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk, Timing, Usage
from tether.observability.genai import model_span

DEFAULT_PROJECTED_OUTPUT = 1024
"""Output tokens a governor reserves for a call that sets no ``max_tokens``."""

TokenCallback = Callable[[str], Awaitable[None] | None]

_IN_MODEL_CALL: ContextVar[bool] = ContextVar("tether_in_model_call", default=False)
"""True while a journaled model call is running (in its task and the tasks it starts)."""


def estimate_tokens(text: str) -> int:
    """Rough count (about four characters a token) for providers that report no usage and
    models without a local tokenizer; results built from it are marked ``estimated``."""
    return 0 if not text else max(1, (len(text) + 3) // 4)


class Model(ABC):
    provider: str = "model"
    model_name: str = ""
    prices: PriceTable | None = None
    """Price table for cost; None means the default table (and ``TETHER_PRICES``)."""

    @property
    def name(self) -> str:
        return f"{self.provider}:{self.model_name}"

    @property
    def identity(self) -> str:
        """What tells this model's answers apart from another's: its ``name``, and for a
        model served from a URL or a file, where (two ``OpenAICompatibleModel("llama")`` on
        two servers share a name, not their answers). The semantic cache scopes by it."""
        return self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    # -- what providers and wrappers implement --------------------------------------------
    @abstractmethod
    async def complete(self, request: ModelRequest) -> ModelResponse:
        """One call, no journal: providers talk to their backend, wrappers to another Model."""

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        """Stream the answer: text deltas, then one chunk carrying the whole response.
        The default calls ``complete`` and yields its text as one delta."""
        response = await self.complete(request)
        if response.text:
            yield StreamChunk(delta=response.text)
        yield StreamChunk(response=response)

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by this model's tokenizer (an estimate unless overridden)."""
        return estimate_tokens(text)

    @property
    def exact_token_count(self) -> bool:
        return type(self).count_tokens is not Model.count_tokens

    # -- the public entry point -----------------------------------------------------------
    async def chat(
        self,
        messages: MessagesLike,
        *,
        tools: Iterable[ToolLike] = (),
        tool_choice: str = "auto",
        response_format: FormatLike = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: Iterable[str] = (),
        seed: int | None = None,
        logprobs: bool = False,
        state_fingerprint: str | None = None,
        stream: bool = False,
        on_token: TokenCallback | None = None,
        journal: bool = True,
    ) -> ModelResponse:
        """Ask the model. ``messages`` may be a string (one user turn), Messages or dicts.

        ``stream=True`` (or an ``on_token`` callback) streams the answer, calling ``on_token``
        with each text delta and measuring TTFT/TPOT. Inside a run the call is journaled unless
        ``journal=False``.
        """
        request = build_request(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            response_format=response_format,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=tuple(stop),
            seed=seed,
            logprobs=logprobs,
            state_fingerprint=state_fingerprint,
        )
        return await self.send(request, stream=stream, on_token=on_token, journal=journal)

    async def send(
        self,
        request: ModelRequest,
        *,
        stream: bool = False,
        on_token: TokenCallback | None = None,
        journal: bool = True,
    ) -> ModelResponse:
        """``chat`` for an already built request.

        A ``chat`` made while another journaled model call is in flight (a judge model asked
        from inside a cascade, a FunctionModel that consults another model) is not journaled
        itself: the outer call's record stands for both, so a replay neither repeats the inner
        call nor shifts the journal keys of the calls after it. Its usage is still reported
        (a ``model_call`` event marked ``nested``), as is that of a ``journal=False`` call.
        In a governed run both are governed calls all the same (``GovernedCall.scratch``
        ``nested``): a budget reserves for each before it runs and charges what it spent."""
        ctx = current_journal()
        streamed = stream or on_token is not None
        nested = _IN_MODEL_CALL.get()
        if ctx is None or not journal or nested:
            return await self._unjournaled(request, streamed, on_token, ctx, nested)
        live: list[ModelResponse] = []
        key = ctx.call_key("model")
        gov = governor_of(ctx)
        governed = (
            GovernedCall("model", self.name, request=request, projected=self.projected(request))
            if gov is not None
            else None
        )

        async def call() -> dict[str, Any]:
            token = _IN_MODEL_CALL.set(True)
            # a governor may have replaced the request in ``before_call`` (a note, a setting)
            sent = governed.request if governed is not None else request
            received, started = Received(), time.perf_counter()
            try:
                response = await self._live(sent, streamed, on_token, ctx, received)
            except BaseException as exc:
                # a cut stream, a refused answer, a cancelled call: charged what it spent
                used = failed_usage(self, sent, exc, received)
                took = time.perf_counter() - started
                ctx.emit("model_call", {**failure_event(self, used, exc, took), "key": key})
                if gov is not None and governed is not None:
                    failed = CallOutcome(False, budget_amounts(self, used), error=exc)
                    await settle_failed(gov.after_call(ctx, governed, failed), exc)
                raise
            finally:
                _IN_MODEL_CALL.reset(token)
            live.append(response)
            if gov is not None and governed is not None:
                await gov.after_call(ctx, governed, CallOutcome(True, spent(response), response))
            return response.model_dump(mode="json")

        async def gate() -> None:
            assert gov is not None and governed is not None
            await gov.before_call(ctx, governed)

        data = await ctx.journaled(
            "model",
            {"model": self.name, "request": request.digest(), "messages": len(request.messages)},
            call,
            key=key,
            idempotent=True,
            gate=gate if gov is not None else None,
        )
        if live:
            response = live[0]
            event = usage_event(response)
            event["key"] = key  # what tells a replay whether this event was committed
            ctx.emit("model_call", event)
            return response
        response = ModelResponse.model_validate(data)
        response.metadata["replayed"] = True
        if not await ctx.model_call_counted(key):
            # made by a process that died before its step committed: the event died with it
            ctx.emit("model_call", {**usage_event(response), "key": key, "recovered": True})
        if on_token is not None and response.text:
            await _deliver(on_token, response.text)
        return response

    async def _unjournaled(
        self,
        request: ModelRequest,
        streamed: bool,
        on_token: TokenCallback | None,
        ctx: CallJournal | None,
        nested: bool,
    ) -> ModelResponse:
        """A live call outside the journal: outside a run, ``journal=False``, or ``nested``
        in another model call. In a run it is the run's spending: reported (a ``model_call``
        event marked ``journaled: False``) and, in a governed run, asked of the governor like
        a journaled call (a budget reserves its projection first, so calls made at once never
        pass a limit together, and settles what it spent, a failed call included)."""
        gov = governor_of(ctx)
        governed: GovernedCall | None = None
        if ctx is not None and gov is not None:
            governed = GovernedCall(
                "model", self.name, request=request, projected=self.projected(request)
            )
            governed.scratch["nested"] = True
            await gov.before_call(ctx, governed)
            request = governed.request
        unjournaled = {"journaled": False, "nested": nested}
        received, started = Received(), time.perf_counter()
        try:
            response = await self._live(request, streamed, on_token, ctx, received)
        except BaseException as exc:
            if ctx is not None:  # a failed call is the run's spending too
                used = failed_usage(self, request, exc, received)
                took = time.perf_counter() - started
                ctx.emit("model_call", {**failure_event(self, used, exc, took), **unjournaled})
                if gov is not None and governed is not None:
                    failed = CallOutcome(False, budget_amounts(self, used), error=exc)
                    await settle_failed(gov.after_call(ctx, governed, failed), exc)
            raise
        if ctx is not None:  # still the run's spending, journaled or not
            ctx.emit("model_call", {**usage_event(response), **unjournaled})
            if gov is not None and governed is not None:
                await gov.after_call(ctx, governed, CallOutcome(True, spent(response), response))
        return response

    def price(self, usage: Usage, model: str | None = None) -> float | None:
        """US dollars for ``usage`` of ``model`` (``provider:name``, the price table's keys;
        default: this model), from ``prices`` or the default table; None when unpriced."""
        return (self.prices or default_prices()).cost(model or self.name, usage)

    def projected(self, request: ModelRequest) -> dict[str, float]:
        """The most ``request`` may cost (a governor reserves it before the call): its prompt's
        tokens (estimated), its ``max_tokens`` (or ``DEFAULT_PROJECTED_OUTPUT``) and, when the
        model is priced, their cost."""
        text = "".join(str(m.content or "") for m in request.messages)
        out = request.max_tokens or DEFAULT_PROJECTED_OUTPUT
        usage = Usage(input_tokens=estimate_tokens(text), output_tokens=out, estimated=True)
        projected = {"input_tokens": float(usage.input_tokens), "output_tokens": float(out)}
        cost = self.price(usage)
        if cost is not None:
            projected["cost"] = cost
        return projected

    # -- one live call, observed ----------------------------------------------------------
    async def _live(
        self,
        request: ModelRequest,
        streamed: bool,
        on_token: TokenCallback | None,
        ctx: CallJournal | None,
        received: Received,
    ) -> ModelResponse:
        run = {"run_id": ctx.run_id, "node": ctx.node} if ctx is not None else None
        params = {
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
            "stop_sequences": list(request.stop) or None,
        }
        with model_span(
            provider=self.provider, model=self.model_name, request=params, run=run
        ) as span:
            if span.capture:  # content capture opted in: the prompt as sent
                span.record_input(prompt_messages(request))
            started = time.perf_counter()
            if streamed:
                response = await self._collect(request, on_token, started, ctx, received)
            else:
                response = await self.complete(request)
            response = self.finalize(request, response, time.perf_counter() - started)
            if span.recording:
                span.set(span_attributes(response, request))
                if span.capture:
                    span.record_output([answer_message(response)])
        return response

    async def _collect(
        self,
        request: ModelRequest,
        on_token: TokenCallback | None,
        started: float,
        ctx: CallJournal | None = None,
        received: Received | None = None,
    ) -> ModelResponse:
        first: float | None = None
        final: ModelResponse | None = None
        shown = 0  # characters of this answer the run's live stream has shown
        try:
            async for chunk in self.stream(request):
                if chunk.delta:
                    if received is not None:  # billed, whether or not the stream ends well
                        received.add(chunk.delta)
                    if first is None:
                        first = time.perf_counter()
                    if on_token is not None:
                        await _deliver(on_token, chunk.delta)
                    if ctx is not None:  # the run's live stream (SSE) shows the answer as it comes
                        ctx.emit_live("model_token", {"model": self.name, "delta": chunk.delta})
                        shown += len(chunk.delta)
                if chunk.tool_delta and received is not None:  # a tool call's piece: billed too
                    received.add(chunk.tool_delta)
                if chunk.response is not None:
                    final = chunk.response
        except BaseException as exc:
            if ctx is not None and shown:  # what was shown is not the answer: say so
                ctx.emit_live(
                    "model_token",
                    {"model": self.name, "delta": "", "discard": shown, "error": str(exc)[:200]},
                )
            raise
        if final is None:
            raise ModelResponseError(
                f"the stream from {self.name} ended without a final response", model=self.name
            )
        end = time.perf_counter()
        if first is not None:
            ttft = final.timing.ttft if final.timing.ttft is not None else first - started
            outputs = final.usage.output_tokens or self.count_tokens(final.text)
            tpot = (end - first) / (outputs - 1) if outputs > 1 else None
            final = final.model_copy(
                update={"timing": Timing(latency=end - started, ttft=ttft, tpot=tpot)}
            )
        return final

    def finalize(
        self, request: ModelRequest, response: ModelResponse, latency: float
    ) -> ModelResponse:
        """Fill what a provider left out of a live response: the answering model's name, usage
        (counted with this model's tokenizer, ``estimated`` unless exact; a cache hit stays at
        zero), latency, and cost from the price table. Wrappers that make several calls for one
        answer (the cascade) use it to account for each."""
        update: dict[str, Any] = {}
        if not response.model:
            update["model"] = self.name
        usage = response.usage
        served_from_cache = bool((response.metadata.get("cache") or {}).get("hit"))
        if not served_from_cache and (  # a hit spent nothing
            usage.total_tokens == 0 or (usage.output_tokens == 0 and said(response))
        ):
            # none reported, or an answer said to have cost no output (a budget in tokens
            # would never stop a provider that reports so): counted, the reported side kept
            usage = update["usage"] = Usage(
                input_tokens=usage.input_tokens
                or sum(self.count_tokens(m.content) for m in request.messages),
                output_tokens=self.count_tokens(response.text + call_text(response)),
                estimated=not self.exact_token_count or usage.input_tokens > 0,
            )
        if response.timing.latency == 0.0:
            update["timing"] = Timing(
                latency=latency, ttft=response.timing.ttft, tpot=response.timing.tpot
            )
        if response.cost is None:
            cost = self.price(usage, update.get("model", response.model))
            if cost is not None:
                update["cost"] = cost
        return response.model_copy(update=update) if update else response


async def _deliver(on_token: TokenCallback, text: str) -> None:
    out = on_token(text)
    if out is not None:
        await out
