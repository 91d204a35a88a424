"""``tether runs ...`` against a ``tether serve`` server (``--server URL``): the same views as
on a store, read and written through ``tether.client``.

What only a store has is refused with a message that says so: several answers at once,
``--allow-version-change``, a fork's step limit, and dead-lettered runs. A run's
lifecycle (``history``) is read from the server's record of its transitions, with who made
each (from its lifecycle events, without that, on a server older than that route).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from tether.cli import commands as cmd
from tether.client import AsyncClient, HistoryStep, NotFoundError, Run
from tether.client.async_client import NO_VALUE
from tether.core.errors import ConfigurationError
from tether.core.lifecycle import RunStatus
from tether.graph.results import StepInfo
from tether.llm.usage import RunUsage
from tether.store.types import RunRecord, Transition


def _only_on_a_store(what: str) -> ConfigurationError:
    return ConfigurationError(
        f"{what} is not available through a server; run the command against the store "
        "(--store URL, without --server)"
    )


def record(run: Run) -> RunRecord:
    """A server's run as the store's record (what the CLI renders)."""
    status = run.status if isinstance(run.status, RunStatus) else RunStatus(str(run.status))
    return RunRecord(
        run_id=run.run_id,
        workflow=run.workflow,
        status=status,
        input=run.input,
        step=run.step,
        result=run.result,
        error=run.error,
        escalation=run.escalation,
        parent_run_id=run.parent_run_id,
        parent_step=_whole(run.raw.get("parent_step"), None),
        idempotency_key=_text(run.raw.get("idempotency_key")),
        input_hash=_text(run.raw.get("input_hash")),
        owner=_text(run.raw.get("owner")),
        lease_token=_whole(run.raw.get("lease_token")),
        lease_expires_at=_time(run.raw.get("lease_expires_at")),
        created_at=run.created_at,
        updated_at=run.updated_at,
        event_seq=_whole(run.raw.get("event_seq")),
        metadata=run.metadata,
        thread_id=run.thread_id,
        queue=run.queue,
        priority=run.priority,
        tenant=run.tenant,
        available_at=_time(run.raw.get("available_at")),
    )


def _whole(value: Any, default: Any = 0) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _time(value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else 0.0


def step_info(s: HistoryStep) -> StepInfo:
    writes: list[dict[str, Any]]
    if isinstance(s.writes, list):
        writes = [w for w in s.writes if isinstance(w, dict)]
    elif isinstance(s.writes, dict):
        node = s.nodes[0] if len(s.nodes) == 1 else ",".join(s.nodes)
        writes = [{"node": node, "writes": s.writes}] if s.writes else []
    else:
        writes = []
    meta = s.raw.get("meta")
    tasks = s.raw.get("tasks")
    return StepInfo(
        step=s.step,
        created_at=s.created_at,
        tasks=[str(t) for t in tasks] if isinstance(tasks, list) else list(s.nodes),
        writes=writes,
        next_tasks=[t for t in s.raw.get("next_tasks") or [] if isinstance(t, dict)],
        snapshot=bool(s.raw.get("snapshot")),
        meta=dict(meta) if isinstance(meta, dict) else {},
        nodes=list(s.nodes),
    )


def usage_of(run: Run) -> RunUsage | None:
    u = run.usage or {}
    calls = int(u.get("model_calls") or 0)
    if not calls:
        return None
    return RunUsage(
        calls=calls,
        input_tokens=int(u.get("input_tokens") or 0),
        output_tokens=int(u.get("output_tokens") or 0),
        cost=float(u.get("cost") or 0.0),
    )


def _no_route(exc: NotFoundError) -> bool:
    """A 404 of a route the server lacks (one older than ``/v1/runs/{id}/transitions``)."""
    return str(exc.problem.get("type") or "").endswith("/not-found")


async def _transitions_from_events(c: AsyncClient, run_id: str) -> list[Transition]:
    """A run's lifecycle read from its lifecycle events, from a server without the
    transitions route: no actor (the events do not carry one)."""
    moves = [
        ev
        async for ev in c.events(run_id, follow=False)
        if ev.kind == "lifecycle" and ev.data.get("to")
    ]
    return [  # numbered 1, 2... as the store numbers them, not by event seq
        Transition(
            run_id,
            n,
            RunStatus(ev.data["from"]) if ev.data.get("from") else None,
            RunStatus(str(ev.data.get("to"))),
            ev.created_at,
            str(ev.data.get("actor") or ""),
            str(ev.data.get("reason") or ""),
        )
        for n, ev in enumerate(moves, 1)
    ]


async def server_version(settings: cmd.Settings) -> str | None:
    """The tether version the server of ``settings`` runs (None: it does not report one)."""
    assert settings.server is not None
    async with AsyncClient(settings.server, settings.api_key) as client:
        return await client.server_version()


class ServerBackend:
    def __init__(self, settings: cmd.Settings) -> None:
        self.settings = settings

    @asynccontextmanager
    async def client(self) -> AsyncIterator[AsyncClient]:
        assert self.settings.server is not None
        async with AsyncClient(self.settings.server, self.settings.api_key) as client:
            yield client

    async def list_runs(
        self, statuses: Sequence[RunStatus], workflow: str | None, limit: int, thread: str | None
    ) -> list[RunRecord]:
        async with self.client() as c:
            runs = c.list_runs(
                limit=limit,
                status=[s.value for s in statuses] or None,
                workflow=workflow,
                thread_id=thread,
            )
            return [record(r) async for r in runs]

    async def show_run(self, run_id: str, step: int | None) -> cmd.RunView:
        async with self.client() as c:
            run = await c.get(run_id)
            state = run.state
            at = run.step
            if step is not None and step != run.step:
                got = await c.state(run_id, step)
                state, at = got.state, got.step
            forks = [record(r) async for r in c.list_runs(limit=100, parent_run_id=run_id)]
            return cmd.RunView(record(run), at, state, None, forks, usage_of(run))

    async def run_history(self, run_id: str, after: int | None, limit: int) -> cmd.HistoryView:
        async with self.client() as c:
            run = await c.get(run_id)
            steps: list[StepInfo] = []
            more = False
            async for s in c.history(run_id):
                if after is not None and s.step <= after:
                    continue
                if len(steps) == limit:
                    more = True
                    break
                steps.append(step_info(s))
            try:
                transitions = [
                    Transition(
                        run_id,
                        t.seq,
                        RunStatus(str(t.src)) if t.src else None,
                        RunStatus(str(t.dst)),
                        t.created_at,
                        t.actor,
                        t.reason,
                    )
                    async for t in c.transitions(run_id)
                ]
            except NotFoundError as exc:
                if not _no_route(exc):
                    raise
                transitions = await _transitions_from_events(c, run_id)
            nxt = steps[-1].step if more and steps else None
            return cmd.HistoryView(record(run), steps, transitions, nxt)

    async def resume_run(
        self,
        run_id: str,
        *,
        value: Any = None,
        has_value: bool = False,
        answers: Mapping[str, Any] | None = None,
        max_steps: int | None = None,
        wait: bool = True,
        allow_version_change: bool = False,
    ) -> cmd.ResumeView:
        interrupt_id: str | None = None
        if answers:
            if len(answers) != 1:
                raise _only_on_a_store("answering several interrupts at once (--answer twice)")
            (interrupt_id, value), has_value = next(iter(answers.items())), True
        if allow_version_change:
            raise _only_on_a_store("--allow-version-change")
        async with self.client() as c:
            before = (await c.get(run_id)).status
            run = await c.resume(
                run_id,
                value if has_value else NO_VALUE,
                interrupt_id=interrupt_id,
                max_steps=max_steps,
            )
            if wait:
                run = await c.wait(run_id)
            return cmd.ResumeView(
                record(run), RunStatus(str(before)), wait, run.state if wait else None
            )

    async def fork_run(
        self,
        run_id: str,
        step: int,
        patch: Mapping[str, Any] | None,
        *,
        max_steps: int | None = None,
        wait: bool = True,
    ) -> cmd.ForkView:
        if max_steps is not None:
            raise _only_on_a_store("a fork's step limit (--max-steps)")
        async with self.client() as c:
            fork = await c.fork(run_id, step, patch)
            if wait:
                fork = await c.wait(fork.run_id)
            return cmd.ForkView(record(fork), run_id, step, wait, fork.state if wait else None)

    async def cancel_run(self, run_id: str, reason: str) -> cmd.CancelView:
        async with self.client() as c:
            before = (await c.get(run_id)).status
            run = await c.cancel(run_id, reason)
            return cmd.CancelView(record(run), RunStatus(str(before)))
