"""Call a remote A2A agent as a tool (the official ``a2a-sdk`` client, protocol 1.0).

    from tether.tools import ToolExecutor
    from tether.tools.a2a_tool import a2a_tool

    research = a2a_tool("https://agents.example.com/a2a/research", api_key="...")
    tools = ToolExecutor([research])   # in a node: await tools.call(research.name, {...}, ctx=ctx)

The tool sends one message (``message`` text and/or a ``data`` object) and waits for the
remote task to finish or to stop for input. Its result is a JSON object: ``state``
(``completed``, ``input-required``, ``failed``, ``rejected``, ``canceled``...), ``text`` (the
artifacts' text, or the agent's question or error), ``data`` (the data parts), ``task_id`` and
``context_id`` (pass both back, with the answer as ``message``, to answer an
``input-required``), and ``agent`` (the card's name). An answer may name the interrupt it
answers (``interrupt_id``, one of the ids in the question's ``data``, sent as the message's
``metadata.interrupt_id``): a tether agent then refuses it, as a ToolError, when that question
is no longer pending, instead of taking it as the answer to the next one.

Like every tool call inside a run, the call is journaled by the ``ToolExecutor``: a replay (a
resumed or recovered run) gets the recorded result and never calls the agent again. The A2A
``messageId`` is the call's idempotency key, so an agent that deduplicates messages sees a
retry as the same message (a tether agent does: a first message sent again reports the task it
started, one run, and another message under the same messageId is refused). The call is not
idempotent by default (a remote agent may act): one cut off by a crash escalates its run
instead of sending again. Its result is untrusted content, as every tool result is
(``tether.governance.InjectionGuard``).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
from a2a.client import A2ACardResolver, A2AClientError, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientTimeoutError, AgentCardResolutionError
from a2a.helpers import get_data_parts, get_text_parts, new_data_part, new_text_part
from a2a.types import AgentCard, Message, Part, Role, SendMessageRequest, Task, TaskState
from a2a.utils.errors import A2AError

from tether.core.errors import ConfigurationError, ToolError, ToolTimeoutError, ToolTransientError
from tether.tools.contract import ToolContract, tool
from tether.tools.policies import Scope

__all__ = ["A2AAgent", "a2a_tool"]


def task_state(state: int) -> str:
    """``TASK_STATE_INPUT_REQUIRED`` -> ``input-required``."""
    label: str = TaskState.Name(state)
    return label.removeprefix("TASK_STATE_").lower().replace("_", "-")


class A2AAgent:
    """One remote agent: its card (fetched once) and a client per call."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 300.0) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"an A2A agent URL must start with http:// or https://, got {url!r} "
                "(the agent's base URL: its card is at URL/.well-known/agent-card.json)"
            )
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.card: AgentCard | None = None
        self._http: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    def http(self) -> httpx.AsyncClient:
        """The connection pool of the running event loop (one per loop: making one per call
        costs a TLS context each time, much more than the call on a loopback)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._http[0] is not loop or self._http[1].is_closed:
            headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(self.timeout))
            self._http = (loop, client)
        return self._http[1]

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http[1].aclose()
            self._http = None

    async def send(
        self,
        message: str,
        *,
        data: dict[str, Any] | None = None,
        task_id: str | None = None,
        context_id: str | None = None,
        message_id: str | None = None,
        interrupt_id: str | None = None,
    ) -> dict[str, Any]:
        parts: list[Part] = [new_text_part(message)] if message else []
        if data is not None:
            parts.append(new_data_part(data))
        if not parts:
            raise ToolError("an A2A message needs text (message) or a data object (data)")
        msg = Message(
            role=Role.ROLE_USER,
            parts=parts,
            message_id=message_id or str(uuid.uuid4()),
            task_id=task_id or None,
            context_id=context_id or None,
        )
        if interrupt_id:
            msg.metadata.update({"interrupt_id": interrupt_id})
        http = self.http()
        factory = ClientFactory(ClientConfig(streaming=False, httpx_client=http))
        try:
            if self.card is None:
                self.card = await _card(self.url, http)
            client = factory.create(self.card)
            got = [r async for r in client.send_message(SendMessageRequest(message=msg))]
        except A2AClientTimeoutError as exc:
            raise ToolTimeoutError(f"A2A agent {self.url}: {exc}") from exc
        except httpx.TransportError as exc:
            raise ToolTransientError(f"A2A agent {self.url}: {type(exc).__name__}") from exc
        except AgentCardResolutionError as exc:
            status = getattr(exc, "status_code", None)
            if isinstance(status, int) and status >= 500:
                raise ToolTransientError(str(exc), status=status) from exc
            raise ToolError(f"A2A agent {self.url}: {exc}") from exc
        except (A2AClientError, A2AError) as exc:
            raise ToolError(f"A2A agent {self.url} refused the message: {exc}") from exc
        return self._result(got[-1] if got else None)

    def _result(self, resp: Any) -> dict[str, Any]:
        name = self.card.name if self.card is not None else ""
        if resp is not None and resp.HasField("message"):
            m = resp.message
            return {
                "agent": name,
                "state": "completed",
                "text": "\n".join(get_text_parts(m.parts)),
                "data": get_data_parts(m.parts),
                "task_id": m.task_id or None,
                "context_id": m.context_id or None,
            }
        if resp is None or not resp.HasField("task"):
            raise ToolError(f"A2A agent {self.url} answered neither a task nor a message")
        return _task_result(name, resp.task)


def _task_result(agent: str, task: Task) -> dict[str, Any]:
    state = task_state(task.status.state)
    texts: list[str] = []
    data: list[Any] = []
    for art in task.artifacts:
        texts += get_text_parts(art.parts)
        data += get_data_parts(art.parts)
    if state != "completed" and task.status.HasField("message"):
        texts = get_text_parts(task.status.message.parts) + texts
        data = get_data_parts(task.status.message.parts) + data
    return {
        "agent": agent,
        "state": state,
        "text": "\n".join(texts),
        "data": data,
        "task_id": task.id,
        "context_id": task.context_id,
    }


async def _card(url: str, http: httpx.AsyncClient) -> AgentCard:
    return await A2ACardResolver(http, url).get_agent_card()


def _default_name(url: str) -> str:
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    clean = re.sub(r"[^A-Za-z0-9_.-]", "_", tail).strip("_.-") or "agent"
    return f"a2a_{clean}"


def a2a_tool(
    url: str,
    *,
    name: str | None = None,
    description: str | None = None,
    api_key: str | None = None,
    timeout: float = 300.0,
    scope: Scope | str = Scope.WRITE,
    idempotent: bool = False,
) -> ToolContract:
    """A ToolContract that sends a message to the A2A agent at ``url`` (its base URL) and
    returns the outcome (see the module doc). ``name`` defaults to ``a2a_<last path part>``."""
    agent = A2AAgent(url, api_key=api_key, timeout=timeout)

    async def call(
        message: str = "",
        data: dict[str, Any] | None = None,
        task_id: str | None = None,
        context_id: str | None = None,
        interrupt_id: str | None = None,
        idempotency_key: str = "",
    ) -> dict[str, Any]:
        return await agent.send(
            message,
            data=data,
            task_id=task_id,
            context_id=context_id,
            message_id=idempotency_key or None,
            interrupt_id=interrupt_id,
        )

    contract: ToolContract = tool(
        call,
        name=name or _default_name(url),
        description=description
        or (
            f"Ask the remote A2A agent at {agent.url}: send `message` (text) and/or `data` (a "
            "JSON object). The result has `state`, `text`, `data`. When `state` is "
            "input-required, answer with `message` and the `task_id` and `context_id` it gave "
            "(and `interrupt_id`, the id of the question answered, from its `data`)."
        ),
        scope=scope,
        idempotent=idempotent,
        timeout=timeout,
        metadata={"a2a_url": agent.url},
    )
    return contract
