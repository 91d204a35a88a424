"""Governed runs write their decisions to the hash-chained log of their own store, per tenant,
by default (no ``audit=`` given)."""

from __future__ import annotations

from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.core.governor import CallOutcome, GovernedCall
from tether.governance import (
    AuditSink,
    Governance,
    GovernancePart,
    RunScope,
    StoreAuditLog,
    verify_audit,
)
from tether.llm.fakes import ScriptedModel
from tether.store.memory import MemoryStore

from .audit_support import Db, db_fixture  # noqa: F401  (the fixture "db")


class S(TypedDict, total=False):
    out: list[str]


class Auditing(GovernancePart):
    """Audits a verdict before and the usage after each live call."""

    async def before_call(self, scope: RunScope, call: GovernedCall) -> None:
        await scope.audit("policy_decision", {"call": call.name, "verdict": "allow"})

    async def after_call(self, scope: RunScope, call: GovernedCall, outcome: CallOutcome) -> None:
        await scope.audit("budget_settled", {"call": call.name, "ok": outcome.ok})


def workflow(model: ScriptedModel, audit: AuditSink | None = None) -> Any:
    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        a = await model.chat("one", max_tokens=20)
        b = await model.chat("two", max_tokens=20)
        return {"out": [a.text, b.text]}

    g = Graph(S, name="audited")
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    return g.compile(governance=Governance(parts=[Auditing()], audit=audit))


async def test_governed_runs_audit_into_their_store_by_default(db: Db) -> None:
    wf = workflow(ScriptedModel(["a", "b", "c", "d"]))
    assert isinstance(wf.governance.audit, StoreAuditLog)
    async with Runtime(db.open(), workflows=[wf], recover=False) as rt:
        first = await rt.start(wf, {}, tenant="acme")
        done = await rt.wait(first.run_id)
        assert done.status is RunStatus.COMPLETED
        other = await rt.start(wf, {})  # no tenant: the chain of runs without one
        assert (await rt.wait(other.run_id)).status is RunStatus.COMPLETED
        log = StoreAuditLog(rt.store)
        rows = (await log.records(tenant="acme")).records
        assert [(r.kind, r.data["call"], r.run_id) for r in rows] == [
            ("policy_decision", "scripted:scripted", first.run_id),
            ("budget_settled", "scripted:scripted", first.run_id),
        ] * 2
        assert [r.seq for r in rows] == [1, 2, 3, 4]
        assert (await verify_audit(rt.store, "acme")).ok
        untenanted = await verify_audit(rt.store)
        assert untenanted.ok and untenanted.records == 4
        assert {r.run_id for r in (await log.records(tenant="")).records} == {other.run_id}


async def test_audit_sink_turns_auditing_off() -> None:
    wf = workflow(ScriptedModel(["a", "b"]), audit=AuditSink())
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(wf, {})
        assert res.status is RunStatus.COMPLETED
        assert (await StoreAuditLog(rt.store).records()).records == []
