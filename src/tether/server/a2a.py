"""A2A: every workflow the server runs is an A2A agent (the official ``a2a-sdk``, protocol 1.0).

``mount_a2a(app, services)`` adds, for each workflow ``W``:

* ``GET /a2a/W/.well-known/agent-card.json``: its agent card (name, description, one skill,
  streaming, the JSON-RPC interface at ``/a2a/W``);
* ``POST /a2a/W``: the A2A JSON-RPC endpoint (``SendMessage``, ``SendStreamingMessage``,
  ``GetTask``, ``ListTasks``, ``CancelTask``, ``SubscribeToTask``), served by the SDK's
  ``DefaultRequestHandler`` (``a2a_handler``: a first message sent again is one task, a late
  answer is refused) over a ``WorkflowAgentExecutor`` (see ``a2a_executor``);

and ``GET /.well-known/agent-card.json`` (the default agent's card: the workflow named by
``services.default_agent``, else the first) and ``GET /a2a`` (every agent and its card URL).

A task is the run with the task's id, read back from tether's store (``a2a_tasks``): ``GetTask``
after a server restart finds it, and a run answered outside A2A (its interrupt resumed over the
HTTP API or the CLI) shows its real state.

``services`` holds what the server runs: ``runtime`` (an open ``Runtime``), ``workflows``
(a mapping name -> Workflow, or an iterable of them; default: the runtime's), optionally
``auth`` (``tether.server.auth.Auth``: the JSON-RPC endpoint then needs a key with the
``submit`` scope; the cards stay public; a streaming method's stream ends with a JSON-RPC
error once its key is revoked, as tether's own streams do, see ``stream_auth``) and
``default_agent``. A workflow registered after
mounting is served too: agents are looked up by name on each request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import DefaultServerCallContextBuilder
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from a2a.utils.constants import PROTOCOL_VERSION_CURRENT, TransportProtocol
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from tether.graph.builder import Workflow
from tether.graph.runtime import Runtime
from tether.server.a2a_executor import TENANT_KEY, WorkflowAgentExecutor
from tether.server.a2a_handler import AgentRequestHandler
from tether.server.a2a_parts import text_field
from tether.server.a2a_tasks import RunTaskStore
from tether.server.keys import Principal
from tether.server.stream_auth import RECHECK, REVOKED_DETAIL, key_alive, while_authorised

__all__ = ["A2A_PREFIX", "CARD_PATH", "A2AAgents", "agent_card", "mount_a2a"]

A2A_PREFIX = "/a2a"
CARD_PATH = "/.well-known/agent-card.json"
BEARER = "bearer"
REVOKED_CODE = -32000
"""The JSON-RPC error that ends a stream whose API key was revoked."""
IDLE_INPUT_REQUIRED = 300.0
"""Seconds an ``input-required`` task keeps its live SDK task before it is released."""


def agent_card(wf: Workflow, url: str, *, keyed: bool = False) -> AgentCard:
    """The card of workflow ``wf`` served at ``url`` (its JSON-RPC endpoint); ``keyed``: the
    endpoint needs a Bearer API key (the card says so in its security scheme)."""
    doc = getattr(wf.graph, "doc", None) or ""
    text = text_field(wf)
    how = (
        f"Send text (it becomes the {text!r} field) or a data part with the run's input."
        if text
        else "Send a data part: a JSON object of the run's input fields."
    )
    description = (
        f"{doc.strip()} " if isinstance(doc, str) and doc.strip() else ""
    ) + f"The tether workflow {wf.name!r} (version {wf.version}) as an A2A agent. {how}"
    security: dict[str, Any] = {}
    if keyed:
        security = {
            "security_schemes": {
                BEARER: SecurityScheme(
                    http_auth_security_scheme=HTTPAuthSecurityScheme(
                        scheme="bearer",
                        bearer_format="tether API key",
                        description="a key with the submit scope (tether keys create)",
                    )
                )
            },
            "security_requirements": [SecurityRequirement(schemes={BEARER: StringList()})],
        }
    return AgentCard(
        **security,
        name=wf.name,
        description=description,
        version=wf.version or "0",
        supported_interfaces=[
            AgentInterface(
                url=url,
                protocol_binding=TransportProtocol.JSONRPC.value,
                protocol_version=PROTOCOL_VERSION_CURRENT,
            )
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["text/plain", "application/json"],
        skills=[
            AgentSkill(
                id=wf.name,
                name=wf.name,
                description=f"Runs the workflow {wf.name!r} durably; answers its questions "
                "through input-required.",
                tags=["tether", "workflow"],
            )
        ],
    )


@dataclass(slots=True)
class _Agent:
    workflow: Workflow
    dispatcher: JsonRpcDispatcher


class _ContextBuilder(DefaultServerCallContextBuilder):
    """The SDK's call context, plus the tenant of the request's API key."""

    def build(self, request: Request) -> ServerCallContext:
        ctx = super().build(request)
        headers = ctx.state.get("headers")
        if isinstance(headers, dict):  # the API key must not travel further than auth
            headers.pop("authorization", None)
        who = getattr(request.state, "principal", None)
        ctx.state[TENANT_KEY] = getattr(who, "tenant", None)
        return ctx


class A2AAgents:
    """The agents of one app: one SDK request handler per workflow, whose tasks are read from
    the runs in tether's store (``a2a_tasks.RunTaskStore``): they survive a restart and follow
    their runs however these are answered."""

    def __init__(self, runtime: Runtime, workflows: Callable[[], Mapping[str, Workflow]]):
        self.runtime = runtime
        self.workflows = workflows
        self._agents: dict[str, _Agent] = {}

    def get(self, name: str) -> _Agent:
        wf = self.workflows().get(name)
        if wf is None:
            known = ", ".join(sorted(self.workflows())) or "none"
            raise HTTPException(
                404, f"no A2A agent {name!r}; the agents are the workflows: {known}"
            )
        agent = self._agents.get(name)
        if agent is None or agent.workflow is not wf:
            tasks = RunTaskStore(self.runtime, name)
            handler = AgentRequestHandler(
                agent_executor=WorkflowAgentExecutor(self.runtime, wf, tasks.expect),
                task_store=tasks,
                # a task parked on input-required holds no live task in memory past this;
                # the answer recreates it from the task store
                interrupted_task_timeout=IDLE_INPUT_REQUIRED,
                agent_card=agent_card(wf, f"http://127.0.0.1{A2A_PREFIX}/{name}"),
            )
            agent = _Agent(wf, JsonRpcDispatcher(handler, context_builder=_ContextBuilder()))
            self._agents[name] = agent
        return agent


def _workflow_source(services: Any, runtime: Runtime) -> Callable[[], Mapping[str, Workflow]]:
    def current() -> Mapping[str, Workflow]:
        given = getattr(services, "workflows", None)
        if given is None:
            return dict(runtime._workflows)
        if isinstance(given, Mapping):
            return given
        if isinstance(given, Iterable):
            return {wf.name: wf for wf in given}
        raise TypeError(f"services.workflows must be a mapping or a list, got {type(given)}")

    return current


async def _revoked_event(request: Request) -> dict[str, str]:
    """The last event of an A2A stream whose key was revoked: a JSON-RPC error answering the
    request (A2A has no code of its own for it: -32000, a server error)."""
    try:
        sent = await request.json()  # read (and kept) by the dispatcher already
        rid = sent.get("id") if isinstance(sent, dict) else None
    except ValueError:
        rid = None
    error = {"code": REVOKED_CODE, "message": REVOKED_DETAIL}
    return {"event": "error", "data": json.dumps({"jsonrpc": "2.0", "id": rid, "error": error})}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def mount_a2a(app: FastAPI, services: Any) -> A2AAgents:
    """Serve each workflow of ``services`` as an A2A agent on ``app`` (see the module doc)."""
    runtime: Runtime = services.runtime
    agents = A2AAgents(runtime, _workflow_source(services, runtime))
    auth = getattr(services, "auth", None)
    deps = [Depends(auth.require("submit"))] if auth is not None else []

    async def card_json(name: str, request: Request) -> JSONResponse:
        agent = agents.get(name)
        url = f"{_base(request)}{A2A_PREFIX}/{name}"
        keyed = bool(auth is not None and await auth.keyed())
        return JSONResponse(agent_card_to_dict(agent_card(agent.workflow, url, keyed=keyed)))

    async def card(workflow: str, request: Request) -> JSONResponse:
        return await card_json(workflow, request)

    async def default_card(request: Request) -> JSONResponse:
        names = list(agents.workflows())
        default = getattr(services, "default_agent", None) or (names[0] if names else None)
        if default is None:
            raise HTTPException(404, "this server runs no workflow, so it has no A2A agent")
        return await card_json(default, request)

    async def listing(request: Request) -> dict[str, Any]:
        base = _base(request)
        return {
            "items": [
                {
                    "name": name,
                    "url": f"{base}{A2A_PREFIX}/{name}",
                    "card_url": f"{base}{A2A_PREFIX}/{name}{CARD_PATH}",
                }
                for name in sorted(agents.workflows())
            ]
        }

    recheck = getattr(getattr(services, "settings", None), "key_recheck", RECHECK)

    async def rpc(workflow: str, request: Request) -> Response:
        response = await agents.get(workflow).dispatcher.handle_requests(request)
        who = getattr(request.state, "principal", None)
        body = getattr(response, "body_iterator", None)
        if auth is not None and isinstance(who, Principal) and body is not None:
            # a streaming method: it answers to its key for as long as it streams
            response.body_iterator = while_authorised(  # type: ignore[attr-defined]
                body,
                key_alive(auth.store, who),
                ending=await _revoked_event(request),
                every=recheck,
            )
        return response

    hidden: dict[str, Any] = {"include_in_schema": False}
    app.add_api_route(CARD_PATH, default_card, methods=["GET"], **hidden)
    app.add_api_route(A2A_PREFIX, listing, methods=["GET"], **hidden)
    app.add_api_route(f"{A2A_PREFIX}/{{workflow}}{CARD_PATH}", card, methods=["GET"], **hidden)
    app.add_api_route(
        f"{A2A_PREFIX}/{{workflow}}", rpc, methods=["POST"], dependencies=deps, **hidden
    )
    return agents
