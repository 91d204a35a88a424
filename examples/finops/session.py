"""Drive the FinOps run to where it stops: finished, or parked on a human.

Every invocation opens the same store (SQLite, under the example's directory), fires the
durable timers that fell due, and starts the run for the cost-spike event, or finds the run
already started for it (the event's id is the run's idempotency key). Then it answers for the
humans only as told: ``approve_as`` / ``reject_as`` a person, ``auto_approve`` (whoever may
decide now approves), ``simulate_hours`` (nobody answers while that much time passes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether import RunStatus, Runtime
from tether.core.errors import InvalidInputError
from tether.core.lifecycle import FINISHED
from tether.governance import ApprovalRecord, AuditVerification, verify_all
from tether.governance.approvals import key_file, sign
from tether.graph.builder import Workflow
from tether.llm import Model
from tether.store.url import open_store

from .cloud import Action, Cloud, spike_event
from .graph import MANAGER_ROLE, OWNER_ROLE, TENANT, build_workflows
from .model import make_model
from .narrate import AGENT_EVENTS, Narrator, Say, summary, waiting
from .simclock import MovableClock, SimClock, at

PEOPLE = {"priya": OWNER_ROLE, "sam": MANAGER_ROLE}
"""The approvers: priya owns the ML platform's resources, sam is the engineering manager."""
TICK = 60.0
"""Simulated seconds between two firings of the due timers (a worker polls as often)."""


@dataclass
class Options:
    directory: Path = Path(".tether/finops")
    model: str = "auto"
    auto_approve: bool = False
    simulate_hours: float = 0.0
    approve_as: str | None = None
    reject_as: str | None = None
    reason: str = ""
    command: str = "python examples/finops_agent.py"


@dataclass
class Outcome:
    run_id: str
    status: RunStatus
    state: dict[str, Any]
    approval: ApprovalRecord | None
    actions: list[Action]
    audit: list[AuditVerification]


def store_url(directory: Path) -> str:
    return f"sqlite:///{(directory / 'tether.db').resolve()}"


async def run_finops(opts: Options, say: Say = print, clock: MovableClock | None = None) -> Outcome:
    d = opts.directory
    d.mkdir(parents=True, exist_ok=True)
    clock = clock or SimClock(d / "clock.json")
    model, which = make_model(opts.model)
    event = spike_event()
    if event is None:
        raise InvalidInputError("the billing data shows no cost spike; nothing to investigate")
    narrator = Narrator(say)
    async with open_runtime(d, clock, model) as (rt, wf, cloud):
        url, store = store_url(d), rt.store
        keys = {p: await _key(rt, d, p, role) for p, role in PEOPLE.items()}
        await rt.fire_timers()  # deadlines that fell due while no process ran
        await rt.recover_once()  # runs a decision left for any worker
        handle = await rt.start(
            wf, {"event": event}, tenant=TENANT, idempotency_key=event["event_id"]
        )
        run_id = handle.run_id
        if not handle.created:
            rec = await rt.get_run(run_id)
            narrator.printed[run_id] = rec.event_seq
            say(f"run {run_id} continues ({rec.status.value} at step {rec.step}); {which}")
        else:
            say(f"cost spike {event['event_id']}: started run {run_id}; {which}")
        simulate, decided = opts.simulate_hours, False
        for _ in range(12):
            await _follow(rt, run_id, narrator)
            rec = await rt.get_run(run_id)
            esc = rec.escalation or {}
            if rec.status in FINISHED or rec.status is not RunStatus.ESCALATED:
                break
            if esc.get("kind") != "approval":
                say(f"the run is escalated ({esc.get('kind')}): {esc.get('reason')}")
                break
            apr = await rt.approvals.get(esc["details"]["approval_id"])
            if apr.status != "pending":  # decided elsewhere, or rejected by its deadline
                if not await rt.approvals.resume(apr.approval_id):
                    await rt.recover_once()
                continue
            if simulate > 0:
                await _simulate(rt, clock, simulate, run_id, narrator)
                simulate = 0.0
                await rt.recover_once()  # a deadline rejection leaves the run to any worker
                continue
            answer = None if decided else _answer(opts, apr)
            if answer is None:
                eligible = [p for p, role in PEOPLE.items() if role in apr.rule["roles"]]
                waiting(say, apr, eligible, clock.now(), f"{opts.command} --dir {d}")
                break
            who, yes = answer
            decision = "approve" if yes else "reject"
            say(f"\n{who} ({PEOPLE[who]}) answers: {decision}  [{at(clock.now())}]")
            token = sign(keys[who], apr, decision, now=clock.now())
            if yes:
                await rt.approvals.approve(apr.approval_id, who, token)
            else:
                reason = opts.reason or "declined"
                await rt.approvals.reject(apr.approval_id, who, token, reason=reason)
            decided = True
        rec = await rt.get_run(run_id)
        state = await rt.get_state(run_id) if rec.step else {}
        approvals = await rt.approvals.list(run_id=run_id)
        audit = await verify_all(store)
        outcome = Outcome(
            run_id, rec.status, state, approvals[0] if approvals else None, cloud.actions(), audit
        )
        if rec.status in FINISHED:
            inspect = [
                f"tether trace {run_id} --store {url}",
                f"tether audit verify --tenant {TENANT} --store {url}",
                f"tether approvals list --run {run_id} --store {url}",
            ]
            summary(say, rec, state, outcome.approval, outcome.actions, audit, inspect)
        return outcome


def _answer(opts: Options, apr: ApprovalRecord) -> tuple[str, bool] | None:
    """(who, approves) for this request from the options; None: nobody answers now."""
    for who, yes in ((opts.approve_as, True), (opts.reject_as, False)):
        if who is not None:
            if who not in PEOPLE:
                raise InvalidInputError(
                    f"unknown approver {who!r}; this example's approvers are "
                    + ", ".join(f"{p} ({r})" for p, r in PEOPLE.items())
                )
            return who, yes
    if opts.auto_approve:
        eligible = [p for p, role in PEOPLE.items() if role in apr.rule["roles"]]
        return (eligible[0], True) if eligible else None
    return None


async def _simulate(
    rt: Runtime, clock: MovableClock, hours: float, run_id: str, narrator: Narrator
) -> None:
    """Let ``hours`` pass with nobody answering, firing due timers every simulated minute."""
    end = clock.now() + hours * 3600.0
    narrator.say(f"\n... {hours:g} h pass and nobody answers  [{at(clock.now())} -> {at(end)}]")
    while clock.now() < end:
        clock.advance(min(TICK, end - clock.now()))
        if await rt.fire_timers():
            narrator.say(f"  [{at(clock.now())}] a durable timer fired")
            async for ev in rt.events(run_id, follow=False):
                narrator.event(ev)


async def _follow(rt: Runtime, run_id: str, narrator: Narrator) -> None:
    """Show the run's events (and its diagnostic child's) until it finishes or parks."""
    async for ev in rt.events(run_id):
        new = narrator.event(ev)
        if new and ev.type == "step_finished" and "answer" in (ev.data.get("keys") or []):
            for child in await rt.store.list_runs(parent_run_id=run_id):
                narrator.say(f"  the diagnostic agent's work (child run {child.run_id}):")
                for cev in await rt.store.list_events(child.run_id):
                    narrator.event(cev, indent="    ", only=AGENT_EVENTS)


@asynccontextmanager
async def open_runtime(
    directory: Path, clock: MovableClock, model: Model
) -> AsyncIterator[tuple[Runtime, Workflow, Cloud]]:
    """A runtime on the example's store that knows its workflows (the FinOps run's first),
    with ``model`` diagnosing; the fake cloud beside it. Fires no timer by itself."""
    cloud = Cloud(directory / "cloud.db")
    wf, diagnosis = build_workflows(cloud, model, clock)
    store = open_store(store_url(directory), clock=clock)
    async with Runtime(
        store, workflows=[wf, diagnosis], clock=clock, recover=False, lease_ttl=5.0
    ) as rt:
        yield rt, wf, cloud


async def _key(rt: Runtime, directory: Path, person: str, role: str) -> Any:
    """``person``'s Ed25519 key (a file beside the store), registered as an approver of the
    example's tenant (only its approvers decide its runs' requests)."""
    key = key_file(directory / f"{person}.pem")
    await rt.approvals.register_approver(person, role, key, tenant=TENANT)
    return key
