"""``create_app(settings)``: the FastAPI app of ``tether serve``.

It opens the store when the app starts (ASGI lifespan) and closes it when it stops; with
``settings.embedded_workers`` it also runs a worker in the process (``tether.worker.Worker``),
whose runtime then serves the API too. The dashboard (``tether.server.dashboard``) and the
A2A endpoint (``tether.server.a2a``) are mounted when those modules are present.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request

from tether.graph.runtime import Runtime
from tether.server import (
    intake,
    routes_evaluation,
    routes_events,
    routes_human,
    routes_meta,
    routes_metrics,
    routes_runs,
)
from tether.server.auth import Auth
from tether.server.limits import RequestLimits
from tether.server.methods import METHODS, HeadAndOptions, methods_of
from tether.server.metrics import RunMetrics
from tether.server.problems import ApiProblem, install_problem_handlers
from tether.server.root_prefix import UnstrippedPrefix
from tether.server.services import Services
from tether.server.settings import ServerSettings
from tether.store.api_keys import ApiKeyRecord, ApiKeyStore
from tether.store.protocol import RunStore
from tether.store.url import open_store
from tether.worker import Worker

log = logging.getLogger("tether.server")
API_VERSION = "1"


class _NoKeys:
    """The key store of a store that keeps none: always local mode."""

    async def put_api_key(self, record: ApiKeyRecord) -> ApiKeyRecord:
        raise NotImplementedError

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        return None

    async def list_api_keys(self, *, tenant: str | None = None) -> list[ApiKeyRecord]:
        return []

    async def revoke_api_key(self, key_id: str) -> ApiKeyRecord | None:
        return None

    async def has_api_keys(self) -> bool:
        return False


def build_services(settings: ServerSettings) -> tuple[Services, Worker | None]:
    store: RunStore = (
        open_store(settings.store) if isinstance(settings.store, str) else settings.store
    )
    worker: Worker | None = None
    if settings.embedded_workers > 0:
        worker = Worker(
            store,
            settings.workflows,
            concurrency=settings.embedded_workers,
            lease_ttl=settings.lease_ttl,
            grace=settings.drain_grace,
        )
        rt = worker.runtime
    else:
        rt = Runtime(
            store, workflows=settings.workflows, recover=False, lease_ttl=settings.lease_ttl
        )
    intake.install(store)  # submits answered from the run written, batched on PostgreSQL
    metrics = RunMetrics()
    rt.bus.observe(metrics.observe)  # step/node latency and model usage of runs executed here
    keys: ApiKeyStore = store if isinstance(store, ApiKeyStore) else _NoKeys()
    auth = Auth(keys, cache_ttl=settings.key_cache_ttl, require_keys=settings.require_keys)
    workflows = {wf.name: wf for wf in settings.workflows}
    return Services(rt, auth, settings, workflows, metrics), worker


def _optional(name: str) -> Any | None:
    """The module ``tether.server.<name>`` when it is installed (another part's extension
    point), else None. An import error inside a present module is raised, not hidden."""
    full = f"tether.server.{name}"
    if importlib.util.find_spec(full) is None:
        return None
    return importlib.import_module(full)


def _name_workflows(app: FastAPI, names: list[str]) -> None:
    """The OpenAPI of ``POST /v1/runs`` lists the workflows this server runs (an enum)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            field = spec["components"]["schemas"]["SubmitRun"]["properties"]["workflow"]
            if names:
                field["enum"] = names
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    services, worker = build_services(settings)
    rt = services.runtime

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task: asyncio.Task[int] | None = None
        if worker is not None:
            task = asyncio.create_task(worker.run())
            ready = asyncio.ensure_future(worker.ready.wait())
            await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if task.done():
                task.result()  # the worker failed to start: raise why
        else:
            await rt.open()
        try:
            yield
        finally:
            if worker is not None and task is not None:
                worker.stop()
                await asyncio.gather(task, return_exceptions=True)
            else:
                await rt.close()

    app = FastAPI(
        title="tether",
        version=API_VERSION,
        summary="Durable, governed multi-agent runs over HTTP",
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.services = services
    app.state.worker = worker
    install_problem_handlers(app)
    app.add_middleware(HeadAndOptions, allowed=lambda scope: methods_of(app.router.routes, scope))
    app.add_middleware(
        RequestLimits, max_body_bytes=settings.max_body_bytes, timeout=settings.request_timeout
    )
    app.add_middleware(UnstrippedPrefix)  # outermost: the limits see the path it leaves
    app.include_router(routes_runs.router(services))
    app.include_router(routes_events.router(services))
    app.include_router(routes_human.router(services))
    app.include_router(routes_meta.router(services))
    app.include_router(routes_metrics.router(services))
    app.include_router(routes_evaluation.router(services))

    @app.api_route(
        "/v1/{path:path}",
        methods=[*METHODS, "HEAD", "OPTIONS"],
        include_in_schema=False,
    )
    async def unknown(path: str, request: Request) -> None:
        """An unknown API route is a problem+json 404, whatever is mounted at ``/``; a known
        path asked with another method a 405 naming the methods it takes (``Allow``)."""
        allowed = methods_of(app.router.routes, request.scope)
        if allowed:
            raise ApiProblem(
                405,
                f"{request.method} is not allowed on /v1/{path}; it takes "
                f"{', '.join(allowed)} (see /docs for the API)",
                kind="method-not-allowed",
                headers={"Allow": ", ".join(allowed)},
            )
        raise ApiProblem(
            404,
            f"no route {request.method} /v1/{path}; see /docs for the API",
            kind="not-found",
        )

    _name_workflows(app, sorted(services.workflows))
    a2a = _optional("a2a")
    if a2a is not None:
        a2a.mount_a2a(app, services)
    dashboard = _optional("dashboard")
    if dashboard is not None:
        dashboard.mount_dashboard(app)
    return app
