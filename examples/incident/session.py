"""Drive one incident's run to its end (or to where a human must act), then print the audit log.

Every invocation continues the unfinished run of the same alert (after a pause for approval, a
budget stop or a crash) or starts a new one. The on-call lead signs the remediation's approval
with an Ed25519 key kept beside the store: here with ``--auto-approve``, or from any shell with
the ``tether approvals approve ...`` command the example prints.
"""

from __future__ import annotations

import shlex
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from tether.core.lifecycle import FINISHED, RunStatus
from tether.governance import AuditRow, Budget, StoreAuditLog, verify_audit
from tether.governance.approvals import key_file, sign
from tether.graph.runtime import Runtime
from tether.llm import Model
from tether.store.url import open_store

from .deps import Deps, open_deps
from .graph import APPROVER_ROLE, TENANT, WORKFLOW, build_workflow
from .narrate import Narrator, Seen
from .world import ALERT, Restart

APPROVER = "lead"


@dataclass
class Options:
    directory: Path = Path(".tether/incident")
    model: Model | str = "scripted"
    """``scripted``, ``local`` (the bundled SmolLM2), a model spec, or a Model object."""
    auto_approve: bool = False
    raise_budget: dict[str, float] = field(default_factory=dict)
    """Limits to raise when the run was stopped by its budget (``{"model_calls": 40}``)."""
    budget: Budget | None = None
    """The run's budget (None: the workflow's, ``graph.BUDGET``)."""
    weak_sandbox: bool = False
    alert: dict[str, Any] = field(default_factory=lambda: dict(ALERT))


@dataclass
class Outcome:
    run_id: str
    status: RunStatus
    state: dict[str, Any]
    restarts: list[Restart]
    escalation: dict[str, Any] | None
    audit: list[AuditRow]
    """The run's audit records, in chain order."""
    audit_ok: bool
    seen: Seen


def store_url(directory: Path) -> str:
    return f"sqlite:///{(directory / 'tether.db').resolve()}"


async def triage(opts: Options, console: Console) -> Outcome:
    opts.directory.mkdir(parents=True, exist_ok=True)
    url = store_url(opts.directory)
    store = open_store(url)
    deps = await open_deps(opts.directory, url, store, opts.model, weak_sandbox=opts.weak_sandbox)
    wf = build_workflow(opts.budget)
    say = Narrator(console)
    try:
        async with Runtime(store, workflows=[wf], lease_ttl=2.0, deps=deps.deps()) as rt:
            key = await _approver_key(rt, opts.directory)
            run_id, created = await _pick_run(rt, wf, opts, deps)
            if not created:  # show what happens from here on, not the run's past again
                say.seen.last_seq = (await rt.get_run(run_id)).event_seq
            say.say(
                f"[bold]run {run_id}[/] {'started' if created else 'continuing'}  "
                f"[dim](store {url}; model {deps.model.name}; runbooks by {deps.embedder}; "
                f"sandbox {deps.sandbox})[/]"
            )
            while True:
                async for ev in rt.events(run_id):
                    say.event(ev)
                rec = await rt.get_run(run_id)
                if rec.status is not RunStatus.ESCALATED:
                    break
                if not await _human(rt, rec.run_id, rec.escalation or {}, key, opts, say):
                    break
            rec = await rt.get_run(run_id)
            state = await rt.get_state(run_id) if rec.step else {}
            if rec.status in FINISHED:
                say.say(f"\n[bold]{rec.status.value}[/] after {rec.step} steps")
                say.say(str(state.get("report", "")))
            rows = (await StoreAuditLog(store).records(run_id=run_id, limit=1000)).records
            check = await verify_audit(store, TENANT)
            say.audit(rows, check)
            for ap in await rt.approvals.list(run_id=run_id):
                signed = ", ".join(f"{d['approver']} ({d['role']})" for d in ap.decisions)
                say.say(f"  approval {ap.approval_id}: {ap.status}, signed by {signed or '-'}")
            return Outcome(
                run_id,
                rec.status,
                state,
                deps.host.restarts(),
                rec.escalation,
                rows,
                check.ok,
                say.seen,
            )
    finally:
        await deps.close()


async def _approver_key(rt: Runtime, directory: Path) -> Any:
    """The on-call lead's private key (a file beside the store), registered as an approver of
    the example's tenant (only its approvers decide its runs' requests)."""
    key = key_file(directory / "oncall-lead.pem")
    await rt.approvals.register_approver(APPROVER, APPROVER_ROLE, key, tenant=TENANT)
    return key


async def _pick_run(rt: Runtime, wf: Any, opts: Options, deps: Deps) -> tuple[str, bool]:
    runs = await rt.list_runs(workflow=WORKFLOW, limit=50)
    unfinished = [r for r in runs if r.status not in FINISHED]
    for run in unfinished:
        if (run.input or {}).get("alert", {}).get("id") == opts.alert["id"]:
            return run.run_id, False
    if not unfinished:
        deps.host.reset()  # a new incident: the degraded service, no restart yet
    handle = await rt.start(
        wf, {"alert": opts.alert}, tenant=TENANT, idempotency_key=f"triage-{uuid.uuid4().hex}"
    )
    return handle.run_id, True


async def _human(
    rt: Runtime, run_id: str, esc: dict[str, Any], key: Any, opts: Options, say: Narrator
) -> bool:
    """Act on the run's escalation as its human would; False when nobody can act now."""
    details = esc.get("details") or {}
    if esc.get("kind") == "approval":
        return await _approval(rt, str(details.get("approval_id")), key, opts, say)
    if esc.get("kind") == "budget":
        dim, limit = details.get("dimension"), details.get("limit")
        say.say(f"\n[red bold]budget stop[/]: {dim} reached its limit {limit}; state kept")
        if dim in opts.raise_budget:
            raised = {dim: opts.raise_budget[dim]}
            say.say(f"  raising it to {raised[dim]} (--raise-budget) and going on")
            await rt.resume(run_id, {"raise_budget": raised}, actor=APPROVER)
            return True
        say.say(
            f"  continue with: --dir {shlex.quote(str(opts.directory))} "
            f"--raise-budget {dim}=<new limit>"
        )
        return False
    say.say(f"[yellow]the run is escalated ({esc.get('kind')}): {esc.get('reason')}[/]")
    return False


async def _approval(rt: Runtime, approval_id: str, key: Any, opts: Options, say: Narrator) -> bool:
    rec = await rt.approvals.get(approval_id)
    if rec.status != "pending":  # decided elsewhere (the CLI): resume the run here
        say.say(f"\napproval {approval_id} was {rec.status} meanwhile; continuing")
        await rt.approvals.resume(approval_id)
        return True
    intent = rec.intent
    question = f"{intent.get('tool')}({intent.get('args')}) for alert {opts.alert['id']}"
    if not opts.auto_approve:
        pem = opts.directory / "oncall-lead.pem"
        say.say(
            f"\n[yellow]waiting for the on-call lead[/] to approve {question}:\n"
            f"  tether approvals approve {approval_id} --approver {APPROVER} "
            f"--key {shlex.quote(str(pem))} --store {shlex.quote(store_url(opts.directory))}\n"
            f"  then run this example again with --dir {shlex.quote(str(opts.directory))} "
            "(or use --auto-approve)"
        )
        return False
    say.say(f"\n[yellow]on-call lead:[/] approve {question}? [bold]yes[/] (--auto-approve)")
    await rt.approvals.approve(approval_id, APPROVER, sign(key, rec, "approve"))
    return True
