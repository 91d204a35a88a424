"""Approvers belong to a tenant: a request is decided only by approvers registered for the
tenant of its run. Before, approvers were global: an approver registered by (or for) globex
approved acme's refund through the Python API, the approval counted, was audited and resumed
the run (HTTP kept tenants apart only because its routes checked the key's tenant)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.governance.approvals_app import SENT, Recorded, build
from tether import RunStatus, Runtime
from tether.core.errors import (
    ApprovalNotFoundError,
    ApprovalSignatureError,
    InvalidInputError,
)
from tether.governance import ApprovalRule, Approvals
from tether.governance.approvals import ApprovalTenantError, generate_key, public_pem, sign
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore
from tether.testing.clock import FakeClock

ONE = ApprovalRule(roles=("finance",))
TWO = ApprovalRule(roles=("finance",), required=2)


@pytest.fixture(autouse=True)
def _clear() -> None:
    SENT.clear()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryStore(clock)
    elif request.param == "sqlite":
        yield SqliteStore(tmp_path / "t.db", clock=clock)
    else:
        from tests.graph.conftest import PG_DSN, pg_schema
        from tether.store.postgres import PostgresStore

        with pg_schema(f"tether_aptenant_{secrets.token_hex(2)}") as schema:
            yield PostgresStore(PG_DSN, schema=schema, clock=clock)


async def park(rt: Runtime, wf: Any, tenant: str | None, amount: int = 40) -> tuple[str, str]:
    res = await rt.run(wf, {"amount": amount}, tenant=tenant)
    assert res.status is RunStatus.ESCALATED and res.escalation is not None
    return res.run_id, res.escalation["details"]["approval_id"]


async def move_tenant(store: Any, run_id: str, tenant: str) -> None:
    """What no API does: change a run's tenant in the database (an operator's UPDATE)."""
    if isinstance(store, MemoryStore):
        store._runs[run_id].tenant = tenant
    elif isinstance(store, SqliteStore):
        with store._tx as db:
            db.execute("UPDATE tether_runs SET tenant = ? WHERE run_id = ?", (tenant, run_id))
    else:
        import psycopg

        from tests.graph.conftest import PG_DSN

        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(
                f'UPDATE "{store.schema}".tether_runs SET tenant = %s WHERE run_id = %s',
                (tenant, run_id),
            )


async def test_another_tenants_approver_is_refused_and_nothing_of_it_counts(
    store: Any, clock: FakeClock
) -> None:
    audit = Recorded()
    wf = build(ONE, audit, name="refunds_tenants")
    alice, mallory, root = generate_key(), generate_key(), generate_key()
    async with Runtime(store, workflows=[wf], clock=clock) as rt:
        ap = Approvals(rt)
        await ap.register_approver("alice", "finance", alice, tenant="acme")
        await ap.register_approver("mallory", "finance", mallory, tenant="globex")
        await ap.register_approver("root", "finance", root)  # of runs without a tenant
        run_id, aid = await park(rt, wf, "acme")
        rec = await ap.get(aid)
        for who, key in (("mallory", mallory), ("root", root)):
            with pytest.raises(ApprovalTenantError, match="not registered for tenant 'acme'"):
                await ap.approve(aid, who, sign(key, rec, now=clock.now()))
            with pytest.raises(ApprovalTenantError, match=f"may not decide on approval {aid}"):
                await ap.reject(aid, who, sign(key, rec, "reject", now=clock.now()), "no")
        # not tallied, not audited, nothing resumed
        after = await ap.get(aid)
        assert (after.status, after.decisions, after.version) == ("pending", [], rec.version)
        assert not [k for k in audit.kinds if k in ("approval.approve", "approval.reject")]
        assert (await rt.get_run(run_id)).status is RunStatus.ESCALATED
        assert SENT == []
        # the run's own tenant's approver decides it
        done = await ap.approve(aid, "alice", sign(alice, rec, now=clock.now()))
        assert done.status == "approved"
        res = await rt.wait(run_id, timeout=60)
    assert res.status is RunStatus.COMPLETED and SENT == [40]
    assert audit.kinds.count("approval.approve") == 1


async def test_one_approver_id_in_two_tenants_is_two_approvers(
    store: Any, clock: FakeClock
) -> None:
    wf = build(ONE, name="refunds_tenants")
    acme_key, globex_key = generate_key(), generate_key()
    async with Runtime(store, workflows=[wf], clock=clock) as rt:
        ap = Approvals(rt)
        await ap.register_approver("alice", "finance", acme_key, tenant="acme")
        await ap.register_approver("alice", "finance", globex_key, tenant="globex")
        (acme_alice,) = await ap.approvers("acme")  # globex's alice did not re-key acme's
        assert (acme_alice.public_key, acme_alice.tenant) == (public_pem(acme_key), "acme")
        assert len(await ap.approvers()) == 2
        run_id, aid = await park(rt, wf, "acme")
        rec = await ap.get(aid)
        with pytest.raises(ApprovalTenantError, match="of another tenant"):
            await ap.approve(aid, "alice", sign(globex_key, rec, now=clock.now()))
        with pytest.raises(ApprovalSignatureError, match="does not verify") as forged:
            await ap.approve(aid, "alice", sign(generate_key(), rec, now=clock.now()))
        assert not isinstance(forged.value, ApprovalTenantError)  # a forgery says so
        assert (await ap.get(aid)).decisions == []
        # one person deciding for two tenants may keep one key; within one, a key is one person
        await ap.register_approver("bob", "finance", acme_key, tenant="globex")
        with pytest.raises(InvalidInputError, match="registered to approver 'alice'"):
            await ap.register_approver("carol", "finance", acme_key, tenant="acme")
        assert (await ap.approve(aid, "alice", sign(acme_key, rec, now=clock.now()))).status == (
            "approved"
        )
        assert (await rt.wait(run_id, timeout=60)).status is RunStatus.COMPLETED


async def test_tenants_are_compared_by_their_exact_name(store: Any, clock: FakeClock) -> None:
    wf = build(ONE, name="refunds_tenants")
    key = generate_key()
    async with Runtime(store, workflows=[wf], clock=clock) as rt:
        ap = Approvals(rt)
        await ap.register_approver("alice", "finance", key, tenant="ACME")
        for near in ("acme ", " acme", "acme\t", ""):
            with pytest.raises(InvalidInputError, match="tenant"):
                await ap.register_approver("alice", "finance", key, tenant=near)
            with pytest.raises(InvalidInputError, match="tenant"):
                Approvals(rt, tenant=near)
            with pytest.raises(InvalidInputError, match="tenant"):
                await ap.list(tenant=near)
        _, aid = await park(rt, wf, "acme")
        rec = await ap.get(aid)
        with pytest.raises(ApprovalTenantError, match="not registered for tenant 'acme'"):
            await ap.approve(aid, "alice", sign(key, rec, now=clock.now()))
        assert await ap.list(tenant="ACME") == []
        assert [r.approval_id for r in await ap.list(tenant="acme")] == [aid]
        assert (await ap.get(aid)).decisions == []


async def test_a_quorum_counts_only_approvers_of_the_runs_tenant(
    store: Any, clock: FakeClock
) -> None:
    wf = build(TWO, name="refunds_tenants")
    k = {name: generate_key() for name in ("alice", "bob", "gus")}
    async with Runtime(store, workflows=[wf], clock=clock) as rt:
        ap = Approvals(rt)
        await ap.register_approver("alice", "finance", k["alice"], tenant="acme")
        await ap.register_approver("bob", "finance", k["bob"], tenant="acme")
        await ap.register_approver("gus", "finance", k["gus"], tenant="globex")
        run_id, aid = await park(rt, wf, "acme")
        rec = await ap.get(aid)
        with pytest.raises(ApprovalTenantError):
            await ap.approve(aid, "gus", sign(k["gus"], rec, now=clock.now()))
        # an approval by another tenant's approver already on the request (recorded before
        # approvers were per tenant) is no vote of acme's either
        now = await ap.get(aid)
        gus = {"approver": "gus", "role": "finance", "decision": "approve", "at": clock.now()}
        now.decisions.append({**gus, "signature": sign(k["gus"], rec, now=clock.now())})
        assert await ap.store.update_approval(now)
        assert (await ap.approve(aid, "alice", sign(k["alice"], rec, now=clock.now()))).status == (
            "pending"
        )
        assert (await rt.get_run(run_id)).status is RunStatus.ESCALATED
        done = await ap.approve(aid, "bob", sign(k["bob"], rec, now=clock.now()))
        assert done.status == "approved"
        assert [d["approver"] for d in done.decisions] == ["gus", "alice", "bob"]
        assert (await rt.wait(run_id, timeout=60)).status is RunStatus.COMPLETED
    assert SENT == [40]


async def test_an_approval_stops_counting_when_its_run_changes_tenant(
    store: Any, clock: FakeClock
) -> None:
    """No API moves a run to another tenant; one moved in the database is judged by its new
    tenant's approvers, when decided and when its call would use the approval."""
    wf = build(ONE, name="refunds_tenants")
    alice = generate_key()
    async with Runtime(store, workflows=[wf], clock=clock) as rt:
        ap = Approvals(rt.store)  # records decisions only: the test resumes
        await ap.register_approver("alice", "finance", alice, tenant="acme")
        run_id, aid = await park(rt, wf, "acme")
        rec = await ap.get(aid)
        assert (await ap.approve(aid, "alice", sign(alice, rec, now=clock.now()))).status == (
            "approved"
        )
        await move_tenant(store, run_id, "globex")
        res = await rt.resume(run_id)
        assert res.status is RunStatus.ESCALATED  # a new request: the old one is void
        assert res.escalation is not None
        second = res.escalation["details"]["approval_id"]
        assert second != aid
        void = await ap.get(aid)
        assert void.status == "void"
        assert "no longer registered for tenant 'globex'" in void.history[-1]["why"]
        rec2 = await ap.get(second)
        with pytest.raises(ApprovalTenantError, match="not registered for tenant 'globex'"):
            await ap.approve(second, "alice", sign(alice, rec2, now=clock.now()))
    assert SENT == []


async def test_a_tenants_view_lists_reads_and_decides_only_its_own(
    store: Any, clock: FakeClock
) -> None:
    wf = build(ONE, name="refunds_tenants")
    key, gkey = generate_key(), generate_key()
    async with Runtime(store, workflows=[wf], clock=clock) as rt:
        acme = Approvals(rt, tenant="acme")
        await acme.register_approver("alice", "finance", key)
        await Approvals(rt).register_approver("gus", "finance", gkey, tenant="globex")
        _, mine = await park(rt, wf, "acme", amount=1)
        _, theirs = await park(rt, wf, "globex", amount=2)
        _, nobody = await park(rt, wf, None, amount=3)
        assert {r.approval_id for r in await Approvals(rt).list()} == {mine, theirs, nobody}
        assert [r.approval_id for r in await Approvals(rt).list(tenant="globex")] == [theirs]
        assert [r.approval_id for r in await acme.list(status="pending")] == [mine]
        assert [r.approval_id for r in await acme.list(tenant="acme")] == [mine]
        with pytest.raises(InvalidInputError, match="acts for tenant 'acme', not 'globex'"):
            await acme.list(tenant="globex")
        with pytest.raises(InvalidInputError, match="acts for tenant 'acme'"):
            await acme.register_approver("eve", "finance", generate_key(), tenant="globex")
        assert [(a.approver_id, a.tenant) for a in await acme.approvers()] == [("alice", "acme")]
        for other in (theirs, nobody):  # another tenant's request reads as not found
            with pytest.raises(ApprovalNotFoundError):
                await acme.get(other)
            rec = await Approvals(rt).get(other)
            with pytest.raises(ApprovalNotFoundError):
                await acme.approve(other, "alice", sign(key, rec, now=clock.now()))
        assert (await Approvals(rt).get(theirs)).decisions == []
        rec = await acme.get(mine)
        assert (await acme.approve(mine, "alice", sign(key, rec, now=clock.now()))).status == (
            "approved"
        )


async def test_without_tenants_approvers_work_as_before_and_stay_apart(
    store: Any, clock: FakeClock
) -> None:
    """Users who never name a tenant: approvers registered without one decide runs without one
    (the default), and a tenant's approver does not."""
    wf = build(ONE, name="refunds_tenants")
    alice, acme_bob = generate_key(), generate_key()
    async with Runtime(store, workflows=[wf], clock=clock) as rt:
        await rt.approvals.register_approver("alice", "finance", alice)
        await rt.approvals.register_approver("bob", "finance", acme_bob, tenant="acme")
        run_id, aid = await park(rt, wf, None)
        rec = await rt.approvals.get(aid)
        with pytest.raises(ApprovalTenantError, match="runs without a tenant"):
            await rt.approvals.approve(aid, "bob", sign(acme_bob, rec, now=clock.now()))
        with pytest.raises(ApprovalSignatureError, match="not registered; add them") as unknown:
            await rt.approvals.approve(aid, "zed", sign(acme_bob, rec, now=clock.now()))
        assert not isinstance(unknown.value, ApprovalTenantError)
        untenanted = [a.approver_id for a in await rt.approvals.approvers() if a.tenant is None]
        assert untenanted == ["alice"]
        await rt.approvals.approve(aid, "alice", sign(alice, rec, now=clock.now()))
        assert (await rt.wait(run_id, timeout=60)).status is RunStatus.COMPLETED
    assert SENT == [40]
