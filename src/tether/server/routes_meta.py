"""Workflows (with their graphs, for display) and the probes: ``/healthz``, ``/readyz``."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from tether.server import views
from tether.server.keys import Principal
from tether.server.problems import API_PROBLEMS, ApiProblem, problem, problem_responses
from tether.server.schemas import Health, WorkflowItem, WorkflowList, WorkflowName
from tether.server.services import Services
from tether.server.strict_query import known_query


def _version() -> str:
    """The installed tether's version, as ``tether version`` prints it."""
    try:
        return dist_version("tether")
    except PackageNotFoundError:
        return "0+unknown"


VERSION = _version()


def router(services: Services) -> APIRouter:
    r = APIRouter(dependencies=[Depends(known_query)])
    read = services.require("read")

    @r.get("/v1/workflows", response_model=WorkflowList, tags=["workflows"], responses=API_PROBLEMS)
    async def workflows(who: Annotated[Principal, Depends(read)]) -> dict[str, Any]:
        """The registered workflows and their graphs (nodes, edges, entry, phases)."""
        wfs = sorted(services.workflows.values(), key=lambda wf: wf.name)
        return {"items": [views.workflow(wf) for wf in wfs]}

    @r.get(
        "/v1/workflows/{name}",
        response_model=WorkflowItem,
        tags=["workflows"],
        responses=API_PROBLEMS,
    )
    async def workflow(
        name: WorkflowName, who: Annotated[Principal, Depends(read)]
    ) -> dict[str, Any]:
        wf = services.workflows.get(name)
        if wf is None:
            raise ApiProblem(404, f"no workflow {name!r} on this server", kind="unknown-workflow")
        return views.workflow(wf)

    @r.get("/healthz", response_model=Health, tags=["probes"])
    async def healthz() -> dict[str, Any]:
        """The process is alive; ``version``: the tether version it runs (``tether version
        --server URL`` shows it)."""
        return {"status": "ok", "detail": "", "version": VERSION}

    @r.get(
        "/readyz",
        response_model=Health,
        tags=["probes"],
        responses=problem_responses(503),
    )
    async def readyz() -> Any:
        """The store answers."""
        try:
            await services.runtime.store.list_runs(limit=1)
        except Exception as exc:
            return problem(
                503,
                f"the store is unreachable: {type(exc).__name__}: {exc}",
                kind="not-ready",
                instance="/readyz",
            )
        return JSONResponse({"status": "ready", "detail": ""})

    return r
