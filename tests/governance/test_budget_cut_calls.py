"""A model call that returns no answer is still charged what the provider billed.

Before, a streamed answer cut mid-way (a dying server, a proxy's timeout) was charged nothing:
the node retried it, each attempt billed its prompt and every token that had arrived, and the
budget counted 0 tokens however often it happened, so a budget never stopped a flaky stream.
A call cancelled in flight (the run cancelled, a wrapper's timeout) left its reservation held in
the ledger forever. Now a cut stream is charged its prompt and the tokens it delivered, a
cancelled call's reservation becomes what it spent (the tokens delivered, or its projection
when nothing is known), and the run's usage counts each such call (a ``model_call`` event with
the error)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypedDict

from tests.llm.providers.rawhttp import raw_server, read_request, response_head
from tether import END, START, Graph, RetryPolicy, RunStatus, Runtime
from tether.governance import Budget, Governance
from tether.llm.providers.openai_compat import OpenAICompatibleModel

SSE = {"content-type": "text/event-stream", "connection": "close"}
PIECE = "word " * 20  # 100 characters: 25 tokens by the four-characters estimate
PROMPT = "write a long essay about refunds"  # 32 characters: 8 tokens


class S(TypedDict, total=False):
    done: bool


def _chunk(text: str) -> bytes:
    body = {"id": "c", "choices": [{"index": 0, "delta": {"content": text}}]}
    return f"data: {json.dumps(body)}\n\n".encode()


class CutServer:
    """Streams ``pieces`` chunks of text, then closes the connection (no finish, no [DONE]),
    or, with ``hang``, keeps it open without another byte until the test ends."""

    def __init__(self, pieces: int, *, hang: bool = False) -> None:
        self.pieces = pieces
        self.hang = hang
        self.requests = 0
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        self.requests += 1
        self.arrived.set()
        if self.pieces or not self.hang:
            writer.write(
                response_head(200, SSE) + b"".join(_chunk(PIECE) for _ in range(self.pieces))
            )
            await writer.drain()
        if self.hang:
            await self.release.wait()


def _workflow(
    model: Any, budget: Budget, *, stream: bool = True, attempts: int = 1, on_token: Any = None
) -> Any:
    async def agent(state: S) -> dict[str, Any]:
        await model.chat(PROMPT, stream=stream, max_tokens=1000, on_token=on_token)
        return {"done": True}

    g = Graph(S, name="cut_calls")
    retry = RetryPolicy(max_attempts=attempts, initial_interval=0.0, jitter=False)
    g.add_node("agent", agent, retry=retry).add_edge(START, "agent").add_edge("agent", END)
    return g.compile(governance=Governance(budget=budget))


async def test_a_stream_cut_mid_answer_is_charged_its_prompt_and_the_tokens_it_got() -> None:
    server = CutServer(pieces=5)
    async with raw_server(server.serve) as url:
        model = OpenAICompatibleModel("m", base_url=f"{url}/v1", timeout=30)
        wf = _workflow(model, Budget(tokens=100_000), attempts=3)
        async with Runtime("memory://") as rt:
            res = await rt.run(wf, {}, max_attempts=1)
            ledger = await rt.store.get_ledger(f"run:{res.run_id}")  # type: ignore[attr-defined]
            usage = await rt.store.model_usage(res.run_id)
            events = [e async for e in rt.events(res.run_id, follow=False)]
        await model.aclose()
    assert res.status is RunStatus.FAILED and server.requests == 3
    assert ledger.used["input_tokens"] == 3 * 8
    assert ledger.used["output_tokens"] == 3 * 5 * 25
    assert ledger.used["model_calls"] == 3
    assert sum(ledger.reserved.values()) == 0
    # the run's usage counts them too, each call with its error
    assert [(u.calls, u.output_tokens) for u in usage] == [(3, 3 * 5 * 25)]
    calls = [e.data for e in events if e.type == "model_call"]
    assert len(calls) == 3
    assert all("ended before its answer did" in c["error"] and c["estimated"] for c in calls)
    assert all(c["latency"] >= 0 for c in calls)


async def test_a_budget_stops_a_stream_that_keeps_being_cut() -> None:
    """The node would try 20 times; the budget's 2,000 tokens end it after a few."""
    server = CutServer(pieces=20)  # 500 tokens a try
    async with raw_server(server.serve) as url:
        model = OpenAICompatibleModel("m", base_url=f"{url}/v1", timeout=30)
        wf = _workflow(model, Budget(tokens=2_000), attempts=20)
        async with Runtime("memory://") as rt:
            res = await rt.run(wf, {}, max_attempts=1)
        await model.aclose()
    assert res.status is RunStatus.ESCALATED, res.error
    assert res.escalation is not None and res.escalation["kind"] == "budget"
    assert res.escalation["details"]["dimension"] == "tokens"
    assert server.requests < 20


async def _cancel_in_flight(server: CutServer, *, stream: bool) -> tuple[Any, Any]:
    async with raw_server(server.serve) as url:
        model = OpenAICompatibleModel("m", base_url=f"{url}/v1", timeout=300)
        pieces: list[str] = []
        all_in = asyncio.Event()

        def on_token(delta: str) -> None:
            pieces.append(delta)
            if len(pieces) == server.pieces:
                all_in.set()

        wf = _workflow(
            model, Budget(tokens=100_000), stream=stream, on_token=on_token if stream else None
        )
        async with Runtime("memory://") as rt:
            handle = await rt.start(wf, {})
            await (all_in if stream else server.arrived).wait()
            await rt.cancel(handle.run_id, reason="changed my mind")
            ledger = await rt.store.get_ledger(f"run:{handle.run_id}")  # type: ignore[attr-defined]
            run = await rt.get_run(handle.run_id)
        server.release.set()
        await model.aclose()
    return run, ledger


async def test_a_stream_cancelled_mid_answer_is_charged_what_it_got_and_holds_nothing() -> None:
    run, ledger = await _cancel_in_flight(CutServer(pieces=3, hang=True), stream=True)
    assert run.status is RunStatus.CANCELLED
    assert sum(ledger.reserved.values()) == 0  # before: 1,008 tokens held for good
    assert ledger.used["input_tokens"] == 8
    assert ledger.used["output_tokens"] == 3 * 25
    assert ledger.used["model_calls"] == 1


async def test_a_call_cancelled_before_any_answer_is_charged_its_projection() -> None:
    """Nothing says the provider did not bill it: the reservation becomes the charge."""
    run, ledger = await _cancel_in_flight(CutServer(pieces=0, hang=True), stream=False)
    assert run.status is RunStatus.CANCELLED
    assert sum(ledger.reserved.values()) == 0
    assert (ledger.used["input_tokens"], ledger.used["output_tokens"]) == (8, 1000)
