"""``Client``: the blocking twin of :class:`AsyncClient` for scripts and notebooks.

Its ``AsyncClient`` lives on an event loop of its own thread (tether's one sync bridge,
``tether.graph.sync_loop``); each method runs the async method of the same name there and
blocks until it returns. Iterators (``list_runs``, ``events``, ``history``) yield as pages
or events arrive; leaving one early closes its stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

from tether.client.async_client import NO_VALUE, WAIT_OUTAGE, AsyncClient
from tether.client.http import DEFAULT_RETRY
from tether.client.models import (
    Approval,
    Event,
    HistoryStep,
    Page,
    Run,
    RunUpgrade,
    StateAt,
    Transition,
    WorkflowInfo,
)
from tether.core.backoff import Backoff
from tether.core.errors import ConfigurationError
from tether.graph.sync_loop import LoopThread

__all__ = ["Client"]

T = TypeVar("T")


class Client:
    """A ``tether serve`` server, for blocking code: ``Client(url, api_key=None)``. See
    :class:`AsyncClient` for each method; ``close()`` (or ``with``) when done."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: Backoff = DEFAULT_RETRY,
        poll_interval: float = 0.25,
    ) -> None:
        self._loop = LoopThread("tether-client")
        try:
            self.aio = self._loop.call(_make(url, api_key, timeout, retry, poll_interval))
        except BaseException:
            self._loop.stop()
            raise
        """The async client (on this client's own loop thread)."""
        self.url = self.aio.url

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        self._check_open(coro)
        return self._loop.call(coro)

    def _iterate(self, stream: AsyncIterator[T]) -> Iterator[T]:
        self._check_open(stream)
        return self._loop.iterate(stream)

    def _check_open(self, work: Coroutine[Any, Any, Any] | AsyncIterator[Any]) -> None:
        if self._loop.stopped:
            if isinstance(work, Coroutine):
                work.close()  # never awaited: no warning about it
            raise ConfigurationError(f"this Client of {self.url} is closed; open a new one")

    def close(self) -> None:
        if not self._loop.stopped:
            self._call(self.aio.aclose())
            self._loop.stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # -- runs ---------------------------------------------------------------------------------
    def submit(
        self,
        workflow: str,
        input: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        thread_id: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        budget: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Run:
        return self._call(
            self.aio.submit(
                workflow,
                input,
                idempotency_key=idempotency_key,
                thread_id=thread_id,
                queue=queue,
                priority=priority,
                budget=budget,
                metadata=metadata,
            )
        )

    def run(self, workflow: str, input: Mapping[str, Any] | None = None, **kw: Any) -> Run:
        return self._call(self.aio.run(workflow, input, **kw))

    def get(self, run_id: str) -> Run:
        return self._call(self.aio.get(run_id))

    def list_page(self, **filters: Any) -> Page:
        return self._call(self.aio.list_page(**filters))

    def list_runs(
        self, *, limit: int | None = None, page_size: int | None = None, **filters: Any
    ) -> Iterator[Run]:
        return self._iterate(self.aio.list_runs(limit=limit, page_size=page_size, **filters))

    def wait(
        self, run_id: str, timeout: float | None = None, *, outage: float = WAIT_OUTAGE
    ) -> Run:
        return self._call(self.aio.wait(run_id, timeout, outage=outage))

    def resume(
        self,
        run_id: str,
        value: Any = NO_VALUE,
        *,
        interrupt_id: str | None = None,
        max_steps: int | None = None,
    ) -> Run:
        return self._call(
            self.aio.resume(run_id, value, interrupt_id=interrupt_id, max_steps=max_steps)
        )

    def cancel(self, run_id: str, reason: str = "") -> Run:
        return self._call(self.aio.cancel(run_id, reason))

    def upgrade(self, run_id: str, *, dry_run: bool = False) -> RunUpgrade:
        return self._call(self.aio.upgrade(run_id, dry_run=dry_run))

    def fork(self, run_id: str, step: int, patch: Mapping[str, Any] | None = None) -> Run:
        return self._call(self.aio.fork(run_id, step, patch))

    def history_page(
        self, run_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page:
        return self._call(self.aio.history_page(run_id, limit=limit, cursor=cursor))

    def history(self, run_id: str) -> Iterator[HistoryStep]:
        return self._iterate(self.aio.history(run_id))

    def transitions_page(
        self, run_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page:
        return self._call(self.aio.transitions_page(run_id, limit=limit, cursor=cursor))

    def transitions(self, run_id: str) -> Iterator[Transition]:
        return self._iterate(self.aio.transitions(run_id))

    def state(self, run_id: str, step: int | None = None) -> StateAt:
        return self._call(self.aio.state(run_id, step))

    # -- events -------------------------------------------------------------------------------
    def events_page(self, run_id: str, *, after: int = 0, limit: int | None = None) -> Page:
        return self._call(self.aio.events_page(run_id, after=after, limit=limit))

    def events(
        self, run_id: str, *, after: int = 0, follow: bool = True, outage: float = WAIT_OUTAGE
    ) -> Iterator[Event]:
        return self._iterate(self.aio.events(run_id, after=after, follow=follow, outage=outage))

    def watch_runs(self, *, outage: float = WAIT_OUTAGE) -> Iterator[Run]:
        return self._iterate(self.aio.watch_runs(outage=outage))

    # -- human input --------------------------------------------------------------------------
    def interrupts(self) -> list[dict[str, Any]]:
        return self._call(self.aio.interrupts())

    def approvals(self, status: str | None = None, *, run_id: str | None = None) -> list[Approval]:
        return self._call(self.aio.approvals(status, run_id=run_id))

    def approval(self, approval_id: str) -> Approval:
        return self._call(self.aio.approval(approval_id))

    def approve(
        self,
        approval_id: str,
        approver: str,
        *,
        signature: str | None = None,
        comment: str | None = None,
    ) -> Approval:
        return self._call(
            self.aio.approve(approval_id, approver, signature=signature, comment=comment)
        )

    def reject(
        self,
        approval_id: str,
        approver: str,
        *,
        signature: str | None = None,
        reason: str | None = None,
    ) -> Approval:
        return self._call(
            self.aio.reject(approval_id, approver, signature=signature, reason=reason)
        )

    # -- the server ---------------------------------------------------------------------------
    def workflows(self) -> list[WorkflowInfo]:
        return self._call(self.aio.workflows())

    def server_version(self) -> str | None:
        return self._call(self.aio.server_version())

    def health(self) -> bool:
        return self._call(self.aio.health())


async def _make(
    url: str, api_key: str | None, timeout: float, retry: Backoff, poll_interval: float
) -> AsyncClient:
    return AsyncClient(url, api_key, timeout=timeout, retry=retry, poll_interval=poll_interval)
