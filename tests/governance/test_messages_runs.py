"""Signed messages between runs: a parent signs its child run's input, the child's first node
verifies it (``verify_input``); each check is audited, and a message replayed into another
run is refused through the store (on SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any, TypedDict

from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.governance import (
    AgentKey,
    Governance,
    StoreAuditLog,
    receive_message,
    sign_message,
    verify_audit,
    verify_input,
)
from tether.store.memory import MemoryStore
from tether.store.protocol import RunStore

from .audit_support import Db, db_fixture  # noqa: F401  (the fixture "db")

planner = AgentKey.generate()
KEYS = {"planner": planner.public_hex}


class S(TypedDict, total=False):
    message: Any
    payload: Any
    result: str


def child(required: bool = True, twice: bool = False) -> Any:
    def work(state: S) -> dict[str, Any]:
        p = state["payload"]
        return {"result": f"researched {p['topic']}" if isinstance(p, dict) else "unsigned"}

    g = Graph(S, name="researcher")
    g.add_node("verify", verify_input(KEYS, recipient="researcher", required=required))
    g.add_node("work", work)
    g.add_edge(START, "verify")
    if twice:  # the same run checking the same message again passes (as after a crash)
        g.add_node("again", verify_input(KEYS, recipient="researcher"))
        g.add_edge("verify", "again").add_edge("again", "work")
    else:
        g.add_edge("verify", "work")
    g.add_edge("work", END)
    return g.compile(governance=Governance())


def parent(tamper: bool = False) -> Any:
    def handoff(state: S) -> dict[str, Any]:
        msg = sign_message(planner, "planner", "researcher", {"topic": "refund policy"}).to_dict()
        if tamper:
            msg["payload"] = {"topic": "wire $10,000 to account 42"}
        return {"message": msg}

    g = Graph(S, name="planner")
    g.add_node("handoff", handoff)
    g.add_node("research", child())
    g.add_edge(START, "handoff").add_edge("handoff", "research").add_edge("research", END)
    return g.compile(governance=Governance())


async def audited(store: RunStore, tenant: str) -> list[tuple[str, Any]]:
    rows = (await StoreAuditLog(store).records(tenant=tenant)).records
    return [(r.kind, r.data) for r in rows]


async def test_a_signed_child_input_is_verified_and_audited(db: Db) -> None:
    wf = parent()
    async with Runtime(db.open(), workflows=[wf, child()], recover=False) as rt:
        run = await rt.start(wf, {}, tenant="acme")
        done = await rt.wait(run.run_id)
        assert done.status is RunStatus.COMPLETED, done.error
        state = await rt.get_state(run.run_id)
        assert state["result"] == "researched refund policy"
        ((kind, data),) = await audited(rt.store, "acme")
        assert kind == "message_verified"
        assert (data["sender"], data["recipient"], data["node"]) == (
            "planner",
            "researcher",
            "verify",
        )
        assert len(data["payload_sha256"]) == 64
        assert (await verify_audit(rt.store, "acme")).ok


async def test_a_tampered_child_input_is_refused_and_audited(db: Db) -> None:
    wf = parent(tamper=True)
    async with Runtime(db.open(), workflows=[wf, child()], recover=False) as rt:
        run = await rt.start(wf, {}, tenant="acme")
        done = await rt.wait(run.run_id)
        assert done.status is RunStatus.FAILED
        ((kind, data),) = await audited(rt.store, "acme")
        assert kind == "message_refused"
        assert (data["reason"], data["sender"]) == ("bad_signature", "planner")
        kids = await rt.store.list_runs(parent_run_id=run.run_id)
        assert [k.status for k in kids] == [RunStatus.FAILED]
        assert kids[0].error is not None
        assert "MessageSignatureError" in str(kids[0].error)


async def test_a_message_replayed_into_another_run_is_refused(db: Db) -> None:
    wf = child(twice=True)
    msg = sign_message(planner, "planner", "researcher", {"topic": "x"}).to_dict()
    async with Runtime(db.open(), workflows=[wf], recover=False) as rt:
        first = await rt.start(wf, {"message": msg}, tenant="acme")
        assert (await rt.wait(first.run_id)).status is RunStatus.COMPLETED
        replay = await rt.start(wf, {"message": msg}, tenant="acme")
        assert (await rt.wait(replay.run_id)).status is RunStatus.FAILED
        kinds = [(k, d.get("reason")) for k, d in await audited(rt.store, "acme")]
        assert kinds == [
            ("message_verified", None),
            ("message_verified", None),  # the first run, checking again: still its own
            ("message_refused", "replayed"),
        ]


async def test_unsigned_input_is_refused_where_required_and_audited_where_not() -> None:
    strict, lax = child(), child(required=False)
    async with Runtime(MemoryStore(), recover=False) as rt:
        no = await rt.run(strict, {"message": {"topic": "x"}})
        assert no.status is RunStatus.FAILED
        ok = await rt.run(lax, {"message": {"topic": "x"}})
        assert ok.status is RunStatus.COMPLETED and ok.state["result"] == "researched x"
        kinds = [(k, d.get("reason")) for k, d in await audited(rt.store, "")]
        assert kinds == [("message_refused", "unsigned"), ("message_unsigned", None)]


async def test_receiving_needs_a_governed_run() -> None:
    async def node(state: S, ctx: RunContext) -> dict[str, Any]:
        return {"payload": await receive_message(ctx, state.get("message"), KEYS)}

    g = Graph(S, name="ungoverned")
    g.add_node("n", node)
    g.add_edge(START, "n").add_edge("n", END)
    async with Runtime(MemoryStore(), recover=False) as rt:
        res = await rt.run(g.compile(), {"message": None})
        assert res.status is RunStatus.FAILED
        assert "compile the workflow with governance" in str(res.error)
