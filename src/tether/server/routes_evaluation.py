"""Evaluation over HTTP: a run's mind log and drift flags, and the agent KPIs of the runs in a
period.

The mind log is the run's (tenant-checked like every run read). KPIs aggregate runs of every
tenant, so they need the ``admin`` scope (or local mode), like the process-wide metrics.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from tether.evaluation import drift_flags, kpis, mind_log
from tether.server.keys import Principal
from tether.server.problems import API_PROBLEMS, ApiProblem
from tether.server.schemas import JsonObject, RunId
from tether.server.services import Services
from tether.server.strict_query import known_query

KPI_MAX_RUNS = 10_000
"""The most runs one ``GET /v1/kpis`` aggregates (newest first)."""

Timestamp = Annotated[float | None, Query(ge=0, le=1e11, description="unix seconds")]


def router(services: Services) -> APIRouter:
    r = APIRouter(tags=["evaluation"], responses=API_PROBLEMS, dependencies=[Depends(known_query)])
    read = services.require("read")
    admin = services.require("admin")
    store = services.runtime.store

    @r.get("/v1/runs/{run_id}/mindlog", response_model=JsonObject)
    async def run_mind_log(run_id: RunId, who: Annotated[Principal, Depends(read)]) -> Any:
        """Each action of the run with its rationale, inputs, raw output and what the agent
        concluded from it, and the numbers it stated that nothing before it contained."""
        await services.run_of(run_id, who)
        return (await mind_log(store, run_id)).as_dict()

    @r.get("/v1/runs/{run_id}/drift", response_model=JsonObject)
    async def run_drift(run_id: RunId, who: Annotated[Principal, Depends(read)]) -> Any:
        """The run's drift flags (goal vs output, plan vs plan: the similarity that fell under
        the threshold, with the texts compared), from the checks inside the run and the
        latest check of the finished run (``tether worker --drift``, ``tether drift --check``)."""
        await services.run_of(run_id, who)
        flags = await drift_flags(store, run_id=run_id)
        return {
            "run_id": run_id,
            "drifted": bool(flags),
            "flags": [
                {
                    "kind": f.kind,
                    "key": f.key,
                    "ts": f.ts,
                    "similarity": f.score,
                    "threshold": f.threshold,
                    "data": dict(f.data),
                }
                for f in flags
            ],
        }

    @r.get("/v1/kpis", response_model=JsonObject)
    async def run_kpis(
        who: Annotated[Principal, Depends(admin)],
        workflow: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        since: Timestamp = None,
        until: Timestamp = None,
    ) -> Any:
        """Agent KPIs (plan fidelity, tool utility, tokens and cost per task, escalation rate,
        time per lifecycle phase, p50/p95 latency) of the runs created in [since, until)."""
        if since is not None and until is not None and until <= since:
            raise ApiProblem(422, f"until ({until}) must be after since ({since})")
        report = await kpis(
            store, workflow=workflow, since=since, until=until, max_runs=KPI_MAX_RUNS
        )
        return report.as_dict()

    return r
