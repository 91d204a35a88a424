"""``/v1/runs``: submit, list, get, cancel, resume, history, state at a step, fork."""

import contextlib
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Request, Response

from tether.core.errors import ConfigurationError, RunNotFoundError
from tether.core.lifecycle import FINISHED, RunStatus
from tether.graph.history import replay
from tether.observability.propagation import caller_trace
from tether.server import intake, paging, views
from tether.server.dashboard import root_path
from tether.server.keys import Principal
from tether.server.problems import API_PROBLEMS, ApiProblem
from tether.server.schemas import (
    CancelRun,
    ForkRun,
    ResumeRun,
    Run,
    RunId,
    RunPage,
    RunUpgrade,
    StateAtStep,
    StepPage,
    SubmitRun,
    TransitionPage,
    UpgradeRun,
)
from tether.server.services import Services
from tether.server.strict_query import known_query
from tether.store.run_usage import RunUsageTotals
from tether.store.types import RunRecord

Limit = Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)]
_BY_ID = {"run_id": "$response.body#/run_id"}
RUN_LINKS = {
    name: {"operationId": op, "parameters": _BY_ID}
    for name, op in (
        ("GetRun", "get_run"),
        ("CancelRun", "cancel_run"),
        ("ResumeRun", "resume_run"),
        ("RunHistory", "history"),
        ("RunTransitions", "transitions"),
        ("RunState", "state"),
        ("ForkRun", "fork"),
        ("UpgradeRun", "upgrade_run"),
        ("RunEvents", "events"),
    )
}
"""OpenAPI links: what to do with a run id a response names (schemathesis follows them)."""


RESERVED_METADATA = frozenset(
    {
        "step_limit",
        "reducers",
        "workflow_ref",
        "workflow_version",
        "effect_keys",
        "budget",
        "max_attempts",
        "run_attempt",
        "dead_letter",
        "thread_id",
        "thread_base",
        "thread_request",
        "breakpoint_passed",
        "replans",
        "fork",
        "subgraph_of",
        "loop_guards",
        "loop_progress",
        "trace",
    }
)
"""Run metadata the runtime keeps for itself (step limit, workflow reference, budget, retry
and thread bookkeeping...): a client setting one would steer the run, so they are refused."""


def check_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    taken = sorted(k for k in metadata if k in RESERVED_METADATA or k.startswith(("__", "tether")))
    if taken:
        raise ApiProblem(
            422,
            f"metadata key(s) {', '.join(map(repr, taken[:5]))} are the runtime's own; "
            "use other names (budgets go in `budget`, threads in `thread_id`)",
            kind="reserved-metadata",
        )
    return metadata


def idempotency_key(who: Principal, key: str | None) -> str | None:
    """Keys are per tenant: the same key from two tenants names two runs. The tenant's ``%``
    and ``:`` are escaped, so tenant "acme" with key "x:k" and tenant "acme:x" with key "k"
    stay apart (a tenant without either is spelt as before: a retry across an upgrade finds
    its run)."""
    if key is None or who.tenant is None:
        return key
    tenant = who.tenant.replace("%", "%25").replace(":", "%3A")
    return f"tenant:{tenant}:{key}"


async def run_view(services: Services, run: RunRecord) -> dict[str, Any]:
    """A run with its state, current nodes and usage (``GET /v1/runs/{id}``): the checkpoint
    chain read once gives both the state and what the run executes next."""
    rt, store = services.runtime, services.runtime.store
    chain = await store.load_chain(run.run_id, run.step)
    state: dict[str, Any] | None = None
    with contextlib.suppress(ConfigurationError):  # custom reducers of an unknown workflow
        state = replay(rt._schema_for(run), chain)
    nodes: list[str] = []
    if run.status not in FINISHED and chain:
        nodes = list(dict.fromkeys(t["node"] for t in chain[-1].next_tasks))
    if views.sums_usage(store):  # one aggregate query, no effect read in full
        sums = await cast(RunUsageTotals, store).runs_usage([run.run_id])
        used = sums.get(run.run_id, views.NO_USAGE).as_dict()
    else:
        models = await store.model_usage(run.run_id)
        tools = sum(1 for e in await store.list_effects(run.run_id) if e.kind == "tool")
        used = views.usage(models, tools)
    return views.run_detail(run, state, nodes, used)


def _statuses(values: list[str], failed_only: bool) -> list[RunStatus] | None:
    out: list[RunStatus] = []
    for v in values:
        for name in v.split(","):
            name = name.strip().upper()
            if not name:
                continue
            try:
                out.append(RunStatus(name))
            except ValueError:
                raise ApiProblem(
                    422,
                    f"unknown status {name!r}; use one of {', '.join(s.value for s in RunStatus)}",
                    kind="invalid-status",
                ) from None
    if values and not out:  # ?status= (an empty variable in a script) listed every run
        raise ApiProblem(
            422,
            f"status was given no status; use one of {', '.join(s.value for s in RunStatus)} "
            "(or leave status out for runs in any status)",
            kind="invalid-status",
        )
    if failed_only:
        out = [RunStatus.FAILED] if not out or RunStatus.FAILED in out else []
        return out
    return out or None


def router(services: Services) -> APIRouter:
    r = APIRouter(
        prefix="/v1/runs",
        tags=["runs"],
        responses=API_PROBLEMS,
        dependencies=[Depends(known_query)],
    )
    read, submit = services.require("read"), services.require("submit")
    admin = services.require("admin")
    rt = services.runtime

    @r.post(
        "",
        status_code=202,
        response_model=Run,
        summary="Submit a run",
        responses={202: {"links": RUN_LINKS}},
    )
    async def submit_run(
        body: SubmitRun,
        request: Request,
        response: Response,
        who: Annotated[Principal, Depends(submit)],
    ) -> dict[str, Any]:
        wf = services.workflow(body.workflow)
        # a caller's traceparent: the run (its execution on any worker) joins the caller's trace
        with intake.created_runs() as made, caller_trace(request.headers):
            handle = await rt.submit(
                wf,
                body.input,
                idempotency_key=idempotency_key(who, body.idempotency_key),
                thread_id=body.thread_id,
                queue=body.queue,
                priority=body.priority,
                tenant=who.tenant,
                budget=body.budget,
                metadata=check_metadata(body.metadata),
                actor=who.actor,
            )
        # the run as create_run wrote it (intake); else (a replayed submit) read it
        run = made[-1] if made and made[-1].run_id == handle.run_id else None
        if run is None or not handle.created:
            run = await rt.store.get_run(handle.run_id)
        response.headers["Location"] = f"{root_path(request)}/v1/runs/{run.run_id}"
        if not handle.created:
            response.headers["Idempotent-Replayed"] = "true"
        out = views.run_summary(run)
        out.update(input=run.input, state=None, result=run.result)
        return out

    @r.get("", response_model=RunPage, summary="List runs, newest first")
    async def list_runs(
        request: Request,
        who: Annotated[Principal, Depends(read)],
        status: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
        workflow: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        thread_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        parent_run_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        failed_only: bool = False,
        limit: Limit = paging.DEFAULT_LIMIT,
        cursor: Annotated[str | None, Query(max_length=1000)] = None,
    ) -> dict[str, Any]:
        statuses = _statuses(status, failed_only)
        if statuses == []:
            return {"items": [], "next_cursor": None}
        before = paging.decode_str("runs", cursor) if cursor else None
        try:
            runs = await rt.store.list_runs(
                status=statuses,
                workflow=workflow,
                thread_id=thread_id,
                parent_run_id=parent_run_id,
                tenant=who.tenant,
                limit=limit + 1,
                before=before,
            )
        except RunNotFoundError:
            raise paging.gone("run") from None
        more = len(runs) > limit
        runs = runs[:limit]
        nxt = paging.encode("runs", runs[-1].run_id) if more and runs else None
        items = await views.run_items(rt.store, runs, root_path(request))
        return {"items": items, "next_cursor": nxt}

    @r.get("/{run_id}", response_model=Run, summary="A run: status, state, usage")
    async def get_run(run_id: RunId, who: Annotated[Principal, Depends(read)]) -> dict[str, Any]:
        return await run_view(services, await services.run_of(run_id, who))

    @r.post(
        "/{run_id}/upgrade",
        response_model=RunUpgrade,
        summary="Move a run to the version of its workflow this server runs",
    )
    async def upgrade_run(
        run_id: RunId, who: Annotated[Principal, Depends(admin)], body: UpgradeRun | None = None
    ) -> dict[str, Any]:
        """After a deploy that changed a workflow's shape: move an unfinished (or FAILED) run
        to the version registered here, once checked that it can continue it (409
        ``workflow-version`` with the reason otherwise; 409 ``run-state`` while a worker of the
        old code runs it or once it finished). Needs the ``admin`` scope."""
        await services.run_of(run_id, who)
        dry_run = body.dry_run if body is not None else False
        done = await rt.upgrade(run_id, actor=who.actor, dry_run=dry_run)
        return {
            "run_id": done.run_id,
            "workflow": done.workflow,
            "status": done.status.value,
            "from_version": done.from_version,
            "to_version": done.to_version,
            "changed": done.changed,
            "dry_run": dry_run,
        }

    @r.post("/{run_id}/cancel", response_model=Run, summary="Cancel a run")
    async def cancel_run(
        run_id: RunId, who: Annotated[Principal, Depends(submit)], body: CancelRun | None = None
    ) -> dict[str, Any]:
        await services.run_of(run_id, who)
        reason = body.reason if body is not None else ""
        await rt.cancel(run_id, reason=reason, actor=who.actor)
        return await run_view(services, await rt.store.get_run(run_id))

    @r.post(
        "/{run_id}/resume",
        status_code=202,
        response_model=Run,
        summary="Answer a run's pending interrupt (or retry a FAILED run)",
    )
    async def resume_run(
        run_id: RunId, who: Annotated[Principal, Depends(submit)], body: ResumeRun | None = None
    ) -> dict[str, Any]:
        await services.run_of(run_id, who)
        kw: dict[str, Any] = {}
        if body is not None:
            if "value" in body.model_fields_set:  # an id alone answers nothing: refused
                kw["value"] = body.value
            if body.interrupt_id is not None:
                kw["interrupt_id"] = body.interrupt_id
            if body.max_steps is not None:
                kw["max_steps"] = body.max_steps
        await rt.resume(run_id, actor=who.actor, wait=False, execute=False, **kw)
        return await run_view(services, await rt.store.get_run(run_id))

    @r.get("/{run_id}/history", response_model=StepPage, summary="Committed steps, oldest first")
    async def history(
        run_id: RunId,
        who: Annotated[Principal, Depends(read)],
        limit: Limit = paging.DEFAULT_LIMIT,
        cursor: Annotated[str | None, Query(max_length=1000)] = None,
    ) -> dict[str, Any]:
        await services.run_of(run_id, who)
        after = paging.decode_int("steps", cursor) if cursor else None
        steps = await rt.history(run_id, after_step=after, limit=limit + 1)
        more = len(steps) > limit
        steps = steps[:limit]
        items = [
            {
                "step": s.step,
                "nodes": s.nodes,
                "tasks": s.tasks,
                "created_at": s.created_at,
                "writes": s.writes,
                "snapshot": s.snapshot,
                "next_tasks": s.next_tasks,
                "meta": s.meta,
            }
            for s in steps
        ]
        nxt = paging.encode("steps", steps[-1].step) if more and steps else None
        return {"items": items, "next_cursor": nxt}

    @r.get(
        "/{run_id}/transitions",
        response_model=TransitionPage,
        summary="The run's changes of status, oldest first, with who made each",
    )
    async def transitions(
        run_id: RunId,
        who: Annotated[Principal, Depends(read)],
        limit: Limit = paging.DEFAULT_LIMIT,
        cursor: Annotated[str | None, Query(max_length=1000)] = None,
    ) -> dict[str, Any]:
        """The run's lifecycle as the store records it (``tether runs history`` shows it):
        each change of status, why, and its ``actor`` (the API key's name, the worker...).
        Read with the ``read`` scope, for a run the key may read."""
        await services.run_of(run_id, who)
        after = paging.decode_int("transitions", cursor) if cursor else 0
        moves = [t for t in await rt.store.list_transitions(run_id) if t.seq > after]
        page = moves[:limit]
        items = [
            {
                "seq": t.seq,
                "src": t.src.value if t.src is not None else None,
                "dst": t.dst.value,
                "created_at": t.ts,
                "actor": t.actor,
                "reason": t.reason,
            }
            for t in page
        ]
        more = len(moves) > limit and page
        return {
            "items": items,
            "next_cursor": paging.encode("transitions", page[-1].seq) if more else None,
        }

    @r.get("/{run_id}/state", response_model=StateAtStep, summary="The state after a step")
    async def state(
        run_id: RunId,
        who: Annotated[Principal, Depends(read)],
        step: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    ) -> dict[str, Any]:
        run = await services.run_of(run_id, who)
        at = run.step if step is None else step
        if at > run.step:
            raise ApiProblem(
                404,
                f"run {run_id} has committed steps 0..{run.step}, not step {at}",
                kind="step-not-found",
                extra={"step": at},
            )
        return {"run_id": run_id, "step": at, "state": await rt.get_state(run_id, at, run=run)}

    @r.post(
        "/{run_id}/fork",
        status_code=202,
        response_model=Run,
        summary="Continue a run from a past step, with a patch, as a new run",
    )
    async def fork(
        run_id: RunId,
        body: ForkRun,
        request: Request,
        response: Response,
        who: Annotated[Principal, Depends(submit)],
    ) -> dict[str, Any]:
        parent = await services.run_of(run_id, who)
        if body.step > parent.step:
            raise ApiProblem(
                404,
                f"run {run_id} has committed steps 0..{parent.step}, not step {body.step}",
                kind="step-not-found",
                extra={"step": body.step},
            )
        handle = await rt.fork(run_id, body.step, body.patch, execute=False, actor=who.actor)
        run = await rt.store.get_run(handle.run_id)
        response.headers["Location"] = f"{root_path(request)}/v1/runs/{run.run_id}"
        return await run_view(services, run)

    return r
