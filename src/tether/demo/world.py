"""What the demo's runs work against: the shop, the payment provider, the memory of policies,
the model, the intent router and the tools, all local files under one directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from tether.llm import FunctionModel, HashingEmbedder, Model, SemanticRouter, model_from_spec
from tether.llm.embeddings import Embedder
from tether.llm.types import ModelRequest
from tether.memory import MemoryPlane, MemoryScope, open_memory
from tether.memory.protocol import MemoryBackend
from tether.store.protocol import RunStore
from tether.tools import ToolContract, ToolExecutor, tool

from .copilot import INTENTS, TENANT
from .payments import PaymentProvider
from .shop import ORDERS, POLICIES


@dataclass
class World:
    provider: PaymentProvider
    memory: MemoryBackend
    plane: MemoryPlane
    model: Model
    router: SemanticRouter
    tools: ToolExecutor

    def deps(self) -> dict[str, Any]:
        return {"tools": self.tools, "model": self.model, "router": self.router}

    async def close(self) -> None:
        await self.plane.close()


def scripted_reply(request: ModelRequest) -> str:
    """The scripted model: the agent's known failure (an unconfirmed refund read as a failed
    one), and a fixed reply; deterministic, for tests and for a demo without the local model."""
    prompt = " ".join(str(m.content) for m in request.messages)
    if "payment API answered" in prompt:
        if "'settled'" in prompt:
            return "The provider confirms the refund settled; I will tell the customer."
        return "The API did not confirm the refund, so it must have failed: I will retry it."
    return "Sorry about the double charge - it is sorted now."


def make_model(spec: str) -> Model:
    if spec == "scripted":
        return FunctionModel(scripted_reply, name="scripted")
    if spec == "local":
        return model_from_spec("local:smollm2")
    return model_from_spec(spec)


def make_embedder(spec: str) -> Embedder:
    # The scripted mode stays deterministic and light (no torch); any other uses MiniLM.
    if spec == "scripted":
        return HashingEmbedder()
    from tether.llm import MiniLMEmbedder

    return MiniLMEmbedder()


def make_tools(provider: PaymentProvider, plane: MemoryPlane, runs: RunStore) -> ToolExecutor:
    def lookup_order(order_id: Annotated[int, Field(gt=0)]) -> dict[str, Any]:
        """Look an order up: customer, item, total and the charges made for it."""
        return ORDERS.get(order_id) or {"error": f"no order {order_id}"}

    def refund_payment(
        order_id: Annotated[int, Field(gt=0)],
        charge_id: Annotated[str, Field(min_length=1, max_length=64)],
        amount_cents: Annotated[int, Field(gt=0, le=1_000_000)],
    ) -> dict[str, Any]:
        """Refund a charge through the payment provider (deduplicated by order and charge)."""
        key = f"refund:{order_id}:{charge_id}"
        return provider.refund(order_id, charge_id, amount_cents, idempotency_key=key)

    def payment_status(
        reference: Annotated[str, Field(min_length=1, max_length=64)],
    ) -> dict[str, Any]:
        """The provider's state of a refund: pending or settled."""
        return provider.status(reference)

    contracts: list[ToolContract] = [
        tool(lookup_order, scope="read"),
        tool(refund_payment, scope="write", idempotent=True),
        tool(payment_status, scope="read"),
    ]
    return ToolExecutor([*contracts, *plane.tools(runs=runs)])


async def open_world(directory: Path, store_url: str, runs: RunStore, model: str) -> World:
    embedder = make_embedder(model)
    llm = make_model(model)
    memory = open_memory(store_url, embedder=embedder)
    await memory.setup()
    plane = MemoryPlane(memory)
    scope = MemoryScope(TENANT)
    if await memory.count(scope) == 0:
        for text in POLICIES:
            await plane.remember(text, scope=scope, importance=0.9, journal=False)
    router = SemanticRouter(INTENTS, embedder=embedder, threshold=0.35, fallback="other")
    provider = PaymentProvider(directory / "payments.db")
    return World(provider, memory, plane, llm, router, make_tools(provider, plane, runs))
