"""Workflows (with their graphs, for display) and the probes: ``/healthz``, ``/readyz``."""

import asyncio
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
from tether.store.disk_space import full_disk
from tether.store.protocol import RunStore
from tether.store.sqlite import SqliteStore
from tether.store.transient import first_line


def _version() -> str:
    """The installed tether's version, as ``tether version`` prints it."""
    try:
        return dist_version("tether")
    except PackageNotFoundError:
        return "0+unknown"


VERSION = _version()
READY_TIMEOUT = 5.0
"""Seconds ``/readyz`` waits for the store: a store that does not answer by then (PostgreSQL
down, retried in place for ``retry_for``) is not ready, said before a prober gives up."""


async def not_ready(store: RunStore) -> str | None:
    """Why the server cannot serve runs now (its store unreachable, or an SQLite store's disk
    full: reads go on, every write fails), or None."""
    try:
        await asyncio.wait_for(store.list_runs(limit=1), READY_TIMEOUT)
    except TimeoutError:
        return f"the store did not answer within {READY_TIMEOUT:g} s (unreachable)"
    except Exception as exc:
        return f"the store is unreachable: {first_line(exc)}"
    if isinstance(store, SqliteStore):
        return await asyncio.to_thread(full_disk, store.path)
    return None


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
        """The store answers within ``READY_TIMEOUT`` seconds and can take writes (an SQLite
        store's disk is not full); else 503 with the reason. ``/healthz`` stays 200."""
        why = await not_ready(services.runtime.store)
        if why is not None:
            return problem(503, why, kind="not-ready", instance="/readyz")
        return JSONResponse({"status": "ready", "detail": ""})

    return r
