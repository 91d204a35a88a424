"""One journal entry is one effect of one tool: two tools whose idempotency_key rules derive
the same string are two effects (each tool still gets the user's key), and a record of another
kind of call or another tool under a key is refused, never handed over as this call's result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.tools.runs import Out, one_node, sqlite_runtime
from tether import END, START, Graph, RunContext, RunStatus
from tether.core import serde
from tether.tools import ToolExecutor, tool


async def test_two_tools_deriving_one_key_are_two_effects(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    @tool(scope="write", idempotent=True, idempotency_key=lambda a: a["order_id"])
    def charge(order_id: str, cents: int, idempotency_key: str) -> dict[str, int]:
        """Charge an order."""
        seen.append(("charge", idempotency_key))
        return {"charged": cents}

    @tool(scope="write", idempotent=True, idempotency_key=lambda a: a["order_id"])
    def ship(order_id: str, address: str, idempotency_key: str) -> dict[str, str]:
        """Ship an order."""
        seen.append(("ship", idempotency_key))
        return {"shipped_to": address}

    tools = ToolExecutor([charge, ship])

    async def act(state: Any, ctx: RunContext) -> dict[str, Any]:
        a = await tools.call("charge", {"order_id": "1234", "cents": 500}, ctx=ctx)
        b = await tools.call("ship", {"order_id": "1234", "address": "Main St 1"}, ctx=ctx)
        return {"out": [a.value, b.value, a.key, b.key]}

    wf = one_node("orders", act)
    async with sqlite_runtime(tmp_path, wf) as rt:
        res = await rt.run(wf, {})
        assert res.status is RunStatus.COMPLETED, res.error
        assert res.state["out"] == [
            {"charged": 500},
            {"shipped_to": "Main St 1"},
            "1234",
            "1234",
        ]
        assert seen == [("charge", "1234"), ("ship", "1234")], "each tool ran, with your key"
        effects = await rt.store.list_effects(res.run_id)
        assert sorted(e.key for e in effects) == ["tool:charge:1234", "tool:ship:1234"]


async def test_a_record_of_another_call_is_refused_not_replayed(tmp_path: Path) -> None:
    made: list[str] = []

    async def first() -> str:
        made.append("first")
        return "the first call's result"

    async def second() -> str:
        made.append("second")
        return "never"

    async def act(state: Any, ctx: RunContext) -> dict[str, Any]:
        await ctx.journaled("effect", {"name": "a"}, first, key="shared")
        return {"out": await ctx.journaled("model", {"name": "b"}, second, key="shared")}

    async def tools_too(state: Any, ctx: RunContext) -> dict[str, Any]:
        await ctx.journaled("tool", {"tool": "charge", "args": {}}, first, key="same")
        return {
            "out": await ctx.journaled("tool", {"tool": "ship", "args": {}}, second, key="same")
        }

    kinds, names = one_node("kinds", act), one_node("names", tools_too)
    async with sqlite_runtime(tmp_path, kinds, names) as rt:
        for wf, what in ((kinds, "holds a effect call, and a model call"), (names, "'charge'")):
            made.clear()
            res = await rt.run(wf, {})
            assert res.status is RunStatus.FAILED
            assert res.error is not None and res.error["type"] == "IdempotencyConflictError"
            assert what in res.error["message"]
            assert made == ["first"], "the second call neither ran nor got the first's result"


async def test_a_rule_key_recorded_bare_before_the_upgrade_is_replayed(tmp_path: Path) -> None:
    """A run that charged under the bare rule key ("1234", as tether before tool-scoped keys
    journaled it) and was resumed after the upgrade: the charge is found under that key and
    replayed, not made again; a bare record of another tool is not taken for it."""
    charges: list[str] = []

    @tool(scope="write", idempotency_key=lambda a: a["order_id"])
    def charge(order_id: str, cents: int, idempotency_key: str) -> dict[str, int]:
        """Charge an order (not idempotent: never twice)."""
        charges.append(order_id)
        return {"charged": cents}

    tools = ToolExecutor([charge])

    async def act(state: Any, ctx: RunContext) -> dict[str, Any]:
        a = await tools.call("charge", {"order_id": "1234", "cents": 500}, ctx=ctx)
        b = await tools.call("charge", {"order_id": "1235", "cents": 700}, ctx=ctx)
        return {"out": [a.value, b.value]}

    wf = one_node("old_charges", act)
    async with sqlite_runtime(tmp_path, wf) as rt:
        run_id = (await rt.start(wf, {}, execute=False)).run_id
        run = await rt.store.get_run(run_id)
        run.metadata["effect_keys"] = "run-scoped"  # as the previous tether wrote it
        await rt.store._execute(  # type: ignore[attr-defined]
            "UPDATE tether_runs SET metadata = ? WHERE run_id = ?",
            (serde.dumps(run.metadata), run_id),
        )
        args = {"order_id": "1234", "cents": 500}
        await rt.store.record_intent(run_id, "1234", "tool", {"tool": "charge", "args": args})
        await rt.store.record_result(run_id, "1234", result={"charged": 500})
        other = {"tool": "ship", "args": {"order_id": "1235"}}  # another tool's bare "1235"
        await rt.store.record_intent(run_id, "1235", "tool", other)
        await rt.store.record_result(run_id, "1235", result={"shipped": True})
        assert await rt.recover_once() == [run_id]
        res = await rt.wait(run_id, timeout=30)
        assert res.status is RunStatus.COMPLETED, res.error
        assert res.state["out"] == [{"charged": 500}, {"charged": 700}]
        assert charges == ["1235"], "1234 was charged before the upgrade: replayed, not again"


async def test_governance_sees_the_key_a_call_is_journaled_under(tmp_path: Path) -> None:
    """The parts that look a call up in the journal (the stutter guard, approvals) were given
    the bare rule key ("1234") while the call was journaled as tool:charge:1234."""
    from tether.core.governor import GovernedCall
    from tether.governance import Governance, GovernancePart
    from tether.governance.scope import RunScope

    seen: list[str | None] = []

    class Watch(GovernancePart):
        async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
            seen.append(call.effect_key)

    @tool(scope="write", idempotent=True, idempotency_key=lambda a: a["order_id"])
    def charge(order_id: str, idempotency_key: str) -> str:
        """Charge an order."""
        return f"charged with {idempotency_key}"

    tools = ToolExecutor([charge])

    async def act(state: Any, ctx: RunContext) -> dict[str, Any]:
        return {"out": (await tools.call("charge", {"order_id": "1234"}, ctx=ctx)).value}

    g = Graph(Out, name="watched")
    g.add_node("act", act).add_edge(START, "act").add_edge("act", END)
    wf = g.compile(governance=Governance(parts=[Watch()]))
    async with sqlite_runtime(tmp_path, wf) as rt:
        res = await rt.run(wf, {})
        effects = await rt.store.list_effects(res.run_id)
    assert res.state["out"] == "charged with 1234"  # the tool gets the bare key
    assert seen == ["tool:charge:1234"] == [e.key for e in effects]
