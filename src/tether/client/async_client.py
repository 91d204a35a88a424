"""``AsyncClient``: the Runtime API of a ``tether serve`` server, over HTTP (httpx).

    async with AsyncClient("http://127.0.0.1:8000", api_key="tk_...") as client:
        run = await client.submit("triage", {"ticket": "T-1"})
        done = await client.wait(run.run_id)
        async for ev in client.events(run.run_id):
            ...

Errors are the tether errors a Runtime raises (``RunNotFoundError``, ``InvalidInputError``,
``RunStateError``...), plus :mod:`tether.client.errors` for what only a network has (auth,
an unreachable or failing server).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from tether.client.errors import ServerError, ServerUnavailableError
from tether.client.event_stream import (
    StreamUnsupported,
    poll_events,
    stream_events,
    stream_run_changes,
)
from tether.client.http import DEFAULT_RETRY, Http, segment, unreachable
from tether.client.models import (
    SETTLED,
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
from tether.core.errors import InvalidInputError
from tether.core.finite import check_number
from tether.core.lifecycle import RunStatus

__all__ = ["NO_VALUE", "AsyncClient"]

T = TypeVar("T")

WAIT_OUTAGE = 300.0
"""Seconds ``wait`` rides out an unreachable server (a restart, a deploy) before it gives up."""
WAIT_OUTAGE_POLL = 2.0
"""The longest pause between two tries of an unreachable server while waiting."""
NO_VALUE: Any = type("NoValue", (), {"__repr__": lambda self: "NO_VALUE"})()
"""``resume`` without an answer (retry a FAILED run); ``None`` is an answer."""
_SETTLED_NAMES = frozenset(s.value for s in SETTLED)
_PAGE_FILTERS = frozenset({"status", "workflow", "thread_id", "parent_run_id", "failed_only"})
"""The filters ``list_runs`` hands to ``list_page``."""


_id = segment


def _obj(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ServerError(
            f"the server answered {type(data).__name__} where the API has an object; "
            "is this a tether server?"
        )
    return data


def _page(data: Any, parse: Callable[[Mapping[str, Any]], T]) -> Page:
    if not isinstance(data, Mapping) or not isinstance(data.get("items"), list):
        raise ServerError("a listing answered without its items list; is this a tether server?")
    cursor = data.get("next_cursor")
    return Page([parse(x) for x in data["items"]], str(cursor) if cursor else None)


class AsyncClient:
    """A ``tether serve`` server's runs, events, approvals and workflows.

    ``api_key``: the Bearer key (None for a local server without keys). ``timeout``: seconds
    per request (streams wait without one). ``retry``: the backoff of retried calls (see
    :mod:`tether.client.http` for which calls are retried). ``transport``: an httpx transport
    (tests; ``httpx.ASGITransport(app)``)."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: Backoff = DEFAULT_RETRY,
        poll_interval: float = 0.25,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = Http(url, api_key, timeout=timeout, retry=retry, transport=transport)
        self.url = self.http.url
        self.poll_interval = check_number("poll_interval (seconds)", poll_interval, above=True)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient({self.url!r})"

    # -- runs ---------------------------------------------------------------------------------
    async def submit(
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
        """Enqueue a run of ``workflow``; returns it as accepted (usually PLANNED). Without an
        ``idempotency_key`` one is made up, so a retry after a lost answer is the same run
        (for a turn of a thread: the same turn, not a second one)."""
        if idempotency_key is None:
            idempotency_key = f"client-{uuid.uuid4().hex}"
        body: dict[str, Any] = {"workflow": workflow, "input": dict(input or {})}
        extra = {
            "idempotency_key": idempotency_key,
            "thread_id": thread_id,
            "queue": queue,
            "priority": priority,
            "budget": dict(budget) if budget is not None else None,
            "metadata": dict(metadata) if metadata is not None else None,
        }
        body.update({k: v for k, v in extra.items() if v is not None})
        data = await self.http.call("POST", "/v1/runs", body=body, safe=idempotency_key is not None)
        return Run.from_json(_obj(data))

    async def run(self, workflow: str, input: Mapping[str, Any] | None = None, **kw: Any) -> Run:
        """Submit and wait until the run settles (finished, or parked for a human)."""
        run = await self.submit(workflow, input, **kw)
        return await self.wait(run.run_id)

    async def get(self, run_id: str) -> Run:
        path = f"/v1/runs/{_id(run_id, 'run_id')}"
        return Run.from_json(_obj(await self.http.call("GET", path)))

    async def list_page(
        self,
        *,
        status: str | RunStatus | list[str | RunStatus] | None = None,
        workflow: str | None = None,
        thread_id: str | None = None,
        parent_run_id: str | None = None,
        failed_only: bool | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page:
        """One page of runs, newest first (items are summaries: no input, state, result).
        A filter of the wrong kind (``workflow=5``, ``status=3``) is an InvalidInputError here,
        before anything is sent (sent as text it would have matched no run)."""
        for name, text in (
            ("workflow", workflow),
            ("thread_id", thread_id),
            ("parent_run_id", parent_run_id),
            ("cursor", cursor),
        ):
            if text is not None and (not isinstance(text, str) or not text):
                raise InvalidInputError(
                    f"{name} must be a non-empty string (or None: any), got {text!r}"
                )
        if failed_only is not None and not isinstance(failed_only, bool):
            raise InvalidInputError(f"failed_only must be True or False, got {failed_only!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise InvalidInputError(f"limit must be an int >= 1 (or None), got {limit!r}")
        statuses = (
            status if isinstance(status, list | tuple) else [] if status is None else [status]
        )
        if status is not None and not any(statuses):  # sent empty, it would list every run
            raise InvalidInputError(
                f"status {status!r} names no status; use one of {', '.join(RunStatus)} "
                "(or leave status out for runs in any status)"
            )
        if not all(isinstance(s, str) for s in statuses):  # a RunStatus is a str
            raise InvalidInputError(
                f"status must be a run status or a list of them ({', '.join(RunStatus)}), "
                f"got {status!r}"
            )
        params = {
            "status": ",".join(str(s) for s in statuses) or None,
            "workflow": workflow,
            "thread_id": thread_id,
            "parent_run_id": parent_run_id,
            "failed_only": "true" if failed_only else None,
            "limit": limit,
            "cursor": cursor,
        }
        return _page(await self.http.call("GET", "/v1/runs", params=params), Run.from_json)

    async def list_runs(
        self, *, limit: int | None = None, page_size: int | None = None, **filters: Any
    ) -> AsyncIterator[Run]:
        """Every run matching ``filters`` (those of ``list_page``), newest first, page after
        page (``page_size`` runs a request; default the server's); at most ``limit`` runs."""
        unknown = sorted(set(filters) - _PAGE_FILTERS)
        if unknown:
            raise InvalidInputError(
                f"list_runs takes no filter {unknown[0]!r}; it takes: "
                f"{', '.join(sorted(_PAGE_FILTERS | {'limit', 'page_size'}))}"
            )
        for name, value in (("limit", limit), ("page_size", page_size)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise InvalidInputError(f"{name} must be an int >= 1 (or None), got {value!r}")
        cursor: str | None = None
        seen = 0
        while True:
            size = min(500, limit - seen) if limit is not None else None
            if page_size is not None:
                size = min(page_size, size) if size is not None else page_size
            page = await self.list_page(cursor=cursor, limit=size, **filters)
            for run in page.items:
                yield run
                seen += 1
                if limit is not None and seen >= limit:
                    return
            cursor = page.next_cursor
            if cursor is None or not page.items:
                return

    async def wait(
        self, run_id: str, timeout: float | None = None, *, outage: float = WAIT_OUTAGE
    ) -> Run:
        """Until the run completes, fails, is cancelled, or parks (ESCALATED, waiting for an
        answer or an approval): watches the event stream (reconnecting when it breaks) and
        falls back to polling when streaming is impossible. ``TimeoutError`` after
        ``timeout`` seconds. Once it has answered this client, the server may be unreachable
        (a restart, a deploy: the run goes on without it) for up to ``outage`` seconds in a
        row; longer, and ``ServerUnavailableError`` (at once for a server never reached)."""
        check_number("outage (seconds)", outage, error=InvalidInputError)
        if timeout is not None:
            check_number("wait timeout", timeout, unit=" of seconds", error=InvalidInputError)
            if timeout <= 0:  # a look, not a wait: asyncio.wait_for(0) times out a settled run
                run = await self.get(run_id)
                if run.settled:
                    return run
                raise TimeoutError(f"run {run_id} has not settled yet (wait timeout=0)")
        return await asyncio.wait_for(self._wait(run_id, outage), timeout)

    async def _wait(self, run_id: str, outage: float) -> Run:
        run = await self._through(outage, lambda: self.get(run_id))
        if run.settled:
            return run
        try:
            # a stream that keeps breaking falls back to polling, which rides out an outage
            async for ev in stream_events(self.http, run_id):
                if ev.kind == "lifecycle" and ev.data.get("to") in _SETTLED_NAMES:
                    run = await self.get(run_id)
                    if run.settled:
                        return run
            run = await self.get(run_id)  # the stream ended: the run finished
            if run.settled:
                return run
        except ServerError as exc:  # StreamUnsupported, or the server out of reach
            if not (isinstance(exc, StreamUnsupported) or unreachable(exc)):
                raise
        return await self._poll_until_settled(run_id, outage)

    async def _poll_until_settled(self, run_id: str, outage: float) -> Run:
        delay = self.poll_interval
        while True:
            run = await self._through(outage, lambda: self.get(run_id))
            if run.settled:
                return run
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    async def _through(self, outage: float, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, tried again while the server is unreachable (no answer, or a gateway
        in front of it answering 502, 503, 504 for it), for ``outage`` seconds."""
        began: float | None = None
        delay = self.poll_interval
        while True:
            try:
                return await call()
            except ServerError as exc:
                if not unreachable(exc):
                    raise
                if not self.http.answered:  # never reached: a wrong URL, not an outage
                    raise
                now = time.monotonic()
                began = now if began is None else began
                if now - began >= outage:
                    raise ServerUnavailableError(
                        f"{self.http.url} was unreachable for {now - began:.1f} s while waiting "
                        f"(outage={outage:g}): {exc}"
                    ) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, WAIT_OUTAGE_POLL)

    async def resume(
        self,
        run_id: str,
        value: Any = NO_VALUE,
        *,
        interrupt_id: str | None = None,
        max_steps: int | None = None,
    ) -> Run:
        """Answer the run's pending interrupt with ``value`` (``interrupt_id``: the one it
        answers, when it waits on several), grant ``max_steps`` more steps after a step-limit
        trip, or (no value) retry a FAILED run. The run goes back to the workers."""
        body: dict[str, Any] = {}
        if value is not NO_VALUE:
            body["value"] = value
        if interrupt_id is not None:
            body["interrupt_id"] = interrupt_id
        if max_steps is not None:
            body["max_steps"] = max_steps
        path = f"/v1/runs/{_id(run_id, 'run_id')}/resume"
        return Run.from_json(_obj(await self.http.call("POST", path, body=body)))

    async def cancel(self, run_id: str, reason: str = "") -> Run:
        path = f"/v1/runs/{_id(run_id, 'run_id')}/cancel"
        return Run.from_json(_obj(await self.http.call("POST", path, body={"reason": reason})))

    async def upgrade(self, run_id: str, *, dry_run: bool = False) -> RunUpgrade:
        """Move the run to the version of its workflow the server runs, once checked that it
        can continue it (``WorkflowVersionError`` says why not); ``dry_run``: check only.
        Needs a key with the ``admin`` scope. See ``Runtime.upgrade``."""
        path = f"/v1/runs/{_id(run_id, 'run_id')}/upgrade"
        answer = await self.http.call("POST", path, body={"dry_run": bool(dry_run)})
        return RunUpgrade.from_json(_obj(answer))

    async def fork(self, run_id: str, step: int, patch: Mapping[str, Any] | None = None) -> Run:
        """A new run, linked to ``run_id``, continuing from after ``step`` with ``patch``
        applied to the state; returns the new run."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise InvalidInputError(f"step must be an int >= 0, got {step!r}")
        body: dict[str, Any] = {"step": step}
        if patch is not None:
            body["patch"] = dict(patch)
        path = f"/v1/runs/{_id(run_id, 'run_id')}/fork"
        return Run.from_json(_obj(await self.http.call("POST", path, body=body)))

    async def history_page(
        self, run_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page:
        path = f"/v1/runs/{_id(run_id, 'run_id')}/history"
        data = await self.http.call("GET", path, params={"limit": limit, "cursor": cursor})
        return _page(data, HistoryStep.from_json)

    async def history(self, run_id: str) -> AsyncIterator[HistoryStep]:
        """The run's committed steps, oldest first, page after page."""
        async for step in _each(lambda cursor: self.history_page(run_id, cursor=cursor)):
            yield step

    async def transitions_page(
        self, run_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page:
        path = f"/v1/runs/{_id(run_id, 'run_id')}/transitions"
        data = await self.http.call("GET", path, params={"limit": limit, "cursor": cursor})
        return _page(data, Transition.from_json)

    async def transitions(self, run_id: str) -> AsyncIterator[Transition]:
        """The run's changes of status, oldest first, each with who made it (``actor``) and
        why: its lifecycle as ``tether runs history`` shows it."""
        async for tr in _each(lambda cursor: self.transitions_page(run_id, cursor=cursor)):
            yield tr

    async def state(self, run_id: str, step: int | None = None) -> StateAt:
        """The run's state after ``step`` (default: its last committed step)."""
        path = f"/v1/runs/{_id(run_id, 'run_id')}/state"
        return StateAt.from_json(_obj(await self.http.call("GET", path, params={"step": step})))

    # -- events -------------------------------------------------------------------------------
    async def events_page(self, run_id: str, *, after: int = 0, limit: int | None = None) -> Page:
        path = f"/v1/runs/{_id(run_id, 'run_id')}/events"
        data = await self.http.call("GET", path, params={"after": after or None, "limit": limit})
        return _page(data, Event.from_json)

    async def events(
        self, run_id: str, *, after: int = 0, follow: bool = True, outage: float = WAIT_OUTAGE
    ) -> AsyncIterator[Event]:
        """The run's events after ``after`` (a ``seq``), oldest first. ``follow``: live, over
        the server's event stream until the run finishes (a dropped connection is resumed
        with ``Last-Event-ID``: no event missed or repeated; a server unreachable for up to
        ``outage`` seconds in a row is waited for; a server that cannot stream is polled).
        Without ``follow``: the stored events, page by page."""
        _id(run_id, "run_id")
        check_number("outage (seconds)", outage, error=InvalidInputError)
        last = after
        if follow:
            try:
                async for ev in stream_events(self.http, run_id, after, outage):
                    last = ev.seq or last
                    yield ev
                return
            except StreamUnsupported:
                pass

        async def page(seq: int) -> Page:
            if not follow:
                return await self.events_page(run_id, after=seq)
            # polled while following: an outage is waited out, as by the stream
            return await self._through(outage, lambda: self.events_page(run_id, after=seq))

        async for ev in poll_events(
            page,
            self._finished(run_id, outage),
            last,
            follow=follow,
            interval=self.poll_interval,
        ):
            yield ev

    async def watch_runs(self, *, outage: float = WAIT_OUTAGE) -> AsyncIterator[Run]:
        """Runs as they appear and change (summaries: status, step, phase...), live, for a
        runs list or a dashboard: the newest runs first, then one item per change. Endless:
        stop iterating to stop watching. A server unreachable for up to ``outage`` seconds in
        a row is waited for; longer, and ``ServerUnavailableError``."""
        check_number("outage (seconds)", outage, error=InvalidInputError)
        async for run in stream_run_changes(self.http, outage):
            yield run

    def _finished(self, run_id: str, outage: float) -> Callable[[], Awaitable[bool]]:
        async def finished() -> bool:
            return (await self._through(outage, lambda: self.get(run_id))).finished

        return finished

    # -- human input --------------------------------------------------------------------------
    async def interrupts(self) -> list[dict[str, Any]]:
        """Runs waiting for a human answer: {run_id, workflow, step, interrupt, created_at},
        every page of them."""
        items: list[dict[str, Any]] = []
        async for data in self._pages("/v1/interrupts", {}):
            items += [dict(x) for x in _page(data, dict).items]
        return items

    async def approvals(
        self, status: str | None = None, *, run_id: str | None = None
    ) -> list[Approval]:
        """Approval requests (``status``: pending, approved, rejected, void), every page
        of them, newest first."""
        items: list[Approval] = []
        async for data in self._pages("/v1/approvals", {"status": status, "run_id": run_id}):
            items += _page(data, Approval.from_json).items
        return items

    async def _pages(self, path: str, params: dict[str, Any]) -> AsyncIterator[Any]:
        """Each page of a list the server pages with ``next_cursor``."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            data = await self.http.call("GET", path, params={**params, "cursor": cursor})
            yield data
            cursor = data.get("next_cursor") if isinstance(data, dict) else None
            if not cursor:
                return
            _fresh(cursor, seen, path)

    async def approval(self, approval_id: str) -> Approval:
        path = f"/v1/approvals/{_id(approval_id, 'approval_id')}"
        return Approval.from_json(_obj(await self.http.call("GET", path)))

    async def approve(
        self,
        approval_id: str,
        approver: str,
        *,
        signature: str | None = None,
        comment: str | None = None,
    ) -> Approval:
        """Vote yes (``signature``: the approver's signed token where governance needs it)."""
        body = {"approver": approver, "signature": signature, "comment": comment}
        path = f"/v1/approvals/{_id(approval_id, 'approval_id')}/approve"
        data = await self.http.call(
            "POST", path, body={k: v for k, v in body.items() if v is not None}
        )
        return Approval.from_json(_obj(data))

    async def reject(
        self,
        approval_id: str,
        approver: str,
        *,
        signature: str | None = None,
        reason: str | None = None,
    ) -> Approval:
        body = {"approver": approver, "signature": signature, "reason": reason}
        path = f"/v1/approvals/{_id(approval_id, 'approval_id')}/reject"
        data = await self.http.call(
            "POST", path, body={k: v for k, v in body.items() if v is not None}
        )
        return Approval.from_json(_obj(data))

    # -- the server ---------------------------------------------------------------------------
    async def workflows(self) -> list[WorkflowInfo]:
        """The workflows the server runs, with their graphs."""
        return _page(await self.http.call("GET", "/v1/workflows"), WorkflowInfo.from_json).items

    async def server_version(self) -> str | None:
        """The tether version the server runs (from ``/healthz``); None from a server that
        does not report one. Raises ``ServerUnavailableError`` when it does not answer."""
        data = await self.http.call("GET", "/healthz")
        version = data.get("version") if isinstance(data, Mapping) else None
        return str(version) if version else None

    async def health(self) -> bool:
        """Whether the server answers ``/healthz`` (and ``/readyz``: its store is reachable)."""
        try:
            await self.http.call("GET", "/healthz")
            await self.http.call("GET", "/readyz")
        except (ServerError, ServerUnavailableError):
            return False
        return True


async def _each(page_at: Callable[[str | None], Awaitable[Page]]) -> AsyncIterator[Any]:
    """The items of every page ``page_at(cursor)`` answers, from the first on (a page without
    items ends it too: a server repeating its cursor cannot loop the reader)."""
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        page = await page_at(cursor)
        for item in page.items:
            yield item
        cursor = page.next_cursor
        if cursor is None or not page.items:
            return
        _fresh(cursor, seen, "the listing")


def _fresh(cursor: str, seen: set[str], what: str) -> None:
    """A server that hands back a cursor it already gave would have the reader loop forever
    (the same pages again and again): that is no tether server's answer, so say so."""
    if cursor in seen:
        raise ServerError(
            f"{what}: the server returned the cursor {cursor[:40]!r} a second time (a paging "
            "loop); is this a tether server, or a proxy caching its answers?"
        )
    seen.add(cursor)
