"""``tether demo``: drive the support copilot's run to its end, answering for the humans.

Every invocation finds the demo's unfinished run for the same ticket and continues it (after a
crash, a decline, or a ``--crash-after``), or starts a new one. The humans in the story are a
support lead who signs the refund approval and decides what happens after the stuttering check
stops the refund loop: asked in the terminal, or answered yes with ``--auto-approve``.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from tether.core.errors import ApprovalNotFoundError
from tether.core.lifecycle import FINISHED, RunStatus
from tether.governance.approvals_keys import key_file, sign
from tether.graph.runtime import Runtime
from tether.store.types import RunRecord
from tether.store.url import open_store

from .approval_rule import APPROVER_ROLE
from .copilot import TENANT, WORKFLOW, build_workflow
from .narrate import Narrator, Tally
from .payments import Refund
from .shop import dollars
from .world import World, open_world

DEFAULT_TICKET = "I was charged twice for order #1234, please refund"
APPROVER = "lead"

Ask = Callable[[str], bool]
"""Asks the human a yes/no question; None when nobody is at the terminal."""


@dataclass
class DemoOptions:
    directory: Path = Path(".tether/demo")
    model: str = "local"
    """``local`` (the bundled SmolLM2), ``scripted`` (deterministic), or any model spec."""
    auto_approve: bool = False
    crash_after: int | None = None
    """SIGKILL this process once the run has committed this many steps."""
    ticket: str = DEFAULT_TICKET


@dataclass
class DemoOutcome:
    run_id: str
    status: RunStatus
    state: dict[str, Any]
    refunds: list[Refund]
    tally: Tally = field(default_factory=Tally)


def store_url(directory: Path) -> str:
    return f"sqlite:///{(directory / 'tether.db').resolve()}"


async def run_demo(opts: DemoOptions, console: Console, ask: Ask | None) -> DemoOutcome:
    directory = opts.directory
    directory.mkdir(parents=True, exist_ok=True)
    url = store_url(directory)
    wf = build_workflow()
    store = open_store(url)
    world = await open_world(directory, url, store, opts.model)
    narrator = Narrator(console)
    try:
        async with Runtime(store, workflows=[wf], lease_ttl=2.0, deps=world.deps()) as rt:
            key = await _approver_key(rt, directory)
            run_id, created = await _pick_run(rt, wf, opts, world)
            verb = "started" if created else "continuing"
            narrator.say(f"[bold]run {run_id}[/] {verb}: {opts.ticket!r}  [dim](store {url})[/]")
            while True:
                await _follow(rt, run_id, narrator, opts.crash_after, directory)
                rec = await rt.get_run(run_id)
                if rec.status in FINISHED:
                    break
                if rec.status is RunStatus.ESCALATED and not await _decide(
                    rt, rec, world, key, directory, opts, ask, narrator
                ):
                    break
            rec = await rt.get_run(run_id)
            state = await rt.get_state(run_id) if rec.step else {}
            order = (state.get("proposal") or {}).get("order_id", 1234)
            refunds = world.provider.refunds(order)
            approvals = await rt.approvals.list(run_id=run_id)
            if rec.status in FINISHED:
                narrator.summary(rec, state, refunds, approvals, _inspect(run_id, url))
            return DemoOutcome(run_id, rec.status, state, refunds, narrator.tally)
    finally:
        await world.close()


async def _approver_key(rt: Runtime, directory: Path) -> Any:
    """The support lead's Ed25519 key (a file beside the store), registered as an approver of
    the demo's tenant (only its approvers decide its runs' requests)."""
    key = key_file(directory / "support-lead.pem")
    await rt.approvals.register_approver(APPROVER, APPROVER_ROLE, key, tenant=TENANT)
    return key


async def _pick_run(rt: Runtime, wf: Any, opts: DemoOptions, world: World) -> tuple[str, bool]:
    unfinished = [
        r for r in await rt.list_runs(workflow=WORKFLOW, limit=50) if r.status not in FINISHED
    ]
    for run in unfinished:
        if (run.input or {}).get("message") == opts.ticket:
            return run.run_id, False
    if not unfinished:
        world.provider.reset()  # a new story: an empty payment ledger
    handle = await rt.start(
        wf,
        {"message": opts.ticket},
        tenant=TENANT,
        idempotency_key=f"demo-{uuid.uuid4().hex[:16]}",
    )
    return handle.run_id, True


async def _follow(
    rt: Runtime, run_id: str, narrator: Narrator, crash_after: int | None, directory: Path
) -> None:
    """Show the run's events until it finishes or parks; SIGKILL this process on request."""
    async for ev in rt.events(run_id):
        narrator.event(ev)
        if crash_after is not None and ev.type == "step_finished" and (ev.step or 0) >= crash_after:
            narrator.say(
                f"\n[red bold]crash:[/] SIGKILL of this process after step {ev.step} "
                "(--crash-after). The run is safe in the store; continue it with:\n"
                f"  tether demo --dir {_q(str(directory))}\n"
            )
            sys.stdout.flush()
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)


async def _decide(
    rt: Runtime,
    run: RunRecord,
    world: World,
    key: Any,
    directory: Path,
    opts: DemoOptions,
    ask: Ask | None,
    narrator: Narrator,
) -> bool:
    """Answer the run's escalation as its human would; False when nobody can answer now."""
    esc = run.escalation or {}
    details = esc.get("details") or {}
    kind = esc.get("kind")
    if kind == "approval":
        return await _approve(rt, run, details, key, directory, opts, ask, narrator)
    if kind == "loop_guard":
        return await _after_stutter(rt, run, details, world, opts, ask, narrator)
    narrator.say(f"[yellow]the run is escalated ({kind}): {esc.get('reason')}[/]")
    return False


async def _approve(
    rt: Runtime,
    run: RunRecord,
    details: dict[str, Any],
    key: Any,
    directory: Path,
    opts: DemoOptions,
    ask: Ask | None,
    narrator: Narrator,
) -> bool:
    approval_id = str(details.get("approval_id"))
    try:
        rec = await rt.approvals.get(approval_id)
    except ApprovalNotFoundError:
        narrator.say(f"[red]approval {approval_id} is not in the store[/]")
        return False
    if rec.status != "pending":  # decided elsewhere (the CLI): the run resumes by itself
        await rt.approvals.resume(approval_id)
        return True
    args = rec.intent.get("args", {})
    question = (
        f"Approve the refund of {dollars(int(args.get('amount_cents', 0)))} on order "
        f"#{args.get('order_id')} (charge {args.get('charge_id')})?"
    )
    if opts.auto_approve:
        yes = True
        narrator.say(f"\n[yellow]support lead:[/] {question} [bold]yes[/] (--auto-approve)")
    elif ask is not None:
        narrator.say("")
        yes = ask(f"[yellow]support lead:[/] {question}")
    else:
        pem = directory / "support-lead.pem"
        narrator.say(
            f"\n[yellow]waiting for a support lead:[/] {question}\n"
            f"  tether approvals approve {approval_id} --approver {APPROVER} --key {_q(str(pem))} "
            f"--store {_q(store_url(directory))}\n"
            f"  then: tether demo --dir {_q(str(directory))}   (or run it with --auto-approve)"
        )
        return False
    narrator.tally.approvals.append(approval_id)
    if yes:
        await rt.approvals.approve(approval_id, APPROVER, sign(key, rec, "approve"))
    else:
        await rt.approvals.reject(
            approval_id, APPROVER, sign(key, rec, "reject"), reason="declined in the demo"
        )
    return True


async def _after_stutter(
    rt: Runtime,
    run: RunRecord,
    details: dict[str, Any],
    world: World,
    opts: DemoOptions,
    ask: Ask | None,
    narrator: Narrator,
) -> bool:
    count = int(details.get("count", 3))
    state = await rt.get_state(run.run_id)
    order = (state.get("proposal") or {}).get("order_id", 1234)
    refunds = world.provider.refunds(order)
    paid = "; ".join(
        f"{r.reference} {dollars(r.amount_cents)}, {r.requests} requests, paid once"
        for r in refunds
    )
    narrator.say(
        f"\n[red bold]stuttering check:[/] {count} identical {details.get('tool')} calls; the "
        f"{count + 1}th was stopped before it ran.\n"
        f"  the payment provider's ledger for order #{order}: {paid or 'no refund'}"
    )
    question = (
        "The provider deduplicated the retries by the idempotency key. Let the agent check "
        f"again and finish (raise the stutter limit to {count + 1})?"
    )
    if opts.auto_approve:
        yes = True
        narrator.say(f"[yellow]support lead:[/] {question} [bold]yes[/] (--auto-approve)")
    elif ask is not None:
        yes = ask(f"[yellow]support lead:[/] {question}")
    else:
        narrator.say(
            f"[yellow]waiting for a support lead[/]: run `tether demo --dir "
            f"{_q(str(opts.directory))} --auto-approve` to let it finish"
        )
        return False
    if not yes:
        await rt.cancel(run.run_id, reason="stopped after the stuttering check", actor=APPROVER)
        return True
    settled = world.provider.settle()
    if settled:
        narrator.say("  [dim]meanwhile the provider's settlement batch paid the refund out[/]")
    await rt.resume(run.run_id, {"raise_limit": {"stutter": count + 1}}, actor=APPROVER)
    return True


def _inspect(run_id: str, url: str) -> list[str]:
    return [
        f"tether trace {run_id} --store {_q(url)}",
        f"tether runs history {run_id} --store {_q(url)}",
        f"tether audit list --run {run_id} --tenant {TENANT} --store {_q(url)}",
        f"tether serve --store {_q(url)}   # then open http://127.0.0.1:8000/runs/{run_id}",
    ]


def _q(text: str) -> str:
    return f"'{text}'" if any(c.isspace() for c in text) else text
