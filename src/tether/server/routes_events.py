"""A run's events: JSON pages and a Server-Sent Events stream; the tenant's run changes.

A stream ends once the key that opened it is revoked (``tether.server.stream_auth``)."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from tether.server import paging, sse, views
from tether.server.dashboard import root_path
from tether.server.keys import Principal
from tether.server.problems import API_PROBLEMS, ApiProblem
from tether.server.schemas import EventPage, RunId
from tether.server.services import Services
from tether.server.stream_auth import REVOKED_FRAME, key_alive, while_authorised
from tether.server.strict_query import known_query
from tether.store.paging import MAX_POSITION

SSE_TYPE = "text/event-stream"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_STREAM_DOC = {
    200: {
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "description": "Server-Sent Events",
    }
}


def _after(after: int | None, cursor: str | None, last_event_id: str | None) -> int:
    if cursor:
        return paging.decode_int("events", cursor)
    if last_event_id is not None and last_event_id.strip():
        text = last_event_id.strip()
        # the ids this stream sends are plain digits: int() would also read '1_0' as 10
        # (skipping events 1 to 10) and '+2', '٣' (another script's digits) as numbers
        seq = int(text) if text.isascii() and text.isdigit() else -1
        if seq < 0 or seq > MAX_POSITION:
            raise ApiProblem(
                422,
                f"Last-Event-ID {last_event_id[:40]!r} is not an event seq (an integer >= 0)",
                kind="invalid-last-event-id",
            )
        return seq
    return after or 0


def router(services: Services) -> APIRouter:
    r = APIRouter(tags=["events"], responses=API_PROBLEMS, dependencies=[Depends(known_query)])
    read = services.require("read")
    rt, settings = services.runtime, services.settings

    def guarded(body: AsyncIterator[str], who: Principal) -> AsyncIterator[str]:
        """The stream, for as long as the key that opened it stays live."""
        alive = key_alive(services.auth.store, who)
        return while_authorised(body, alive, ending=REVOKED_FRAME, every=settings.key_recheck)

    @r.get("/v1/runs/{run_id}/events", response_model=EventPage, summary="A run's events")
    async def events(
        run_id: RunId,
        who: Annotated[Principal, Depends(read)],
        after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
        limit: Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)] = paging.DEFAULT_LIMIT,
        cursor: Annotated[str | None, Query(max_length=1000)] = None,
    ) -> dict[str, Any]:
        await services.run_of(run_id, who)
        start = _after(after, cursor, None)
        page = await rt.store.list_events(run_id, after_seq=start, limit=limit + 1)
        more = len(page) > limit
        page = page[:limit]
        nxt = paging.encode("events", page[-1].seq) if more and page else None
        return {"items": [views.event(ev) for ev in page], "next_cursor": nxt}

    @r.get(
        "/v1/runs/{run_id}/events/stream",
        response_class=StreamingResponse,
        responses=_STREAM_DOC,  # type: ignore[arg-type]
        summary="A run's events as Server-Sent Events (resumable with Last-Event-ID)",
    )
    async def stream(
        run_id: RunId,
        who: Annotated[Principal, Depends(read)],
        after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
        last_event_id: Annotated[str | None, Header(max_length=40)] = None,
    ) -> StreamingResponse:
        run = await services.run_of(run_id, who)
        start = _after(after, None, last_event_id)
        if start > run.event_seq:
            # not an id this stream sent (another run's, a typo): streaming on from there
            # would skip every event until the run's log reached it
            header = last_event_id is not None and bool(last_event_id.strip())
            raise ApiProblem(
                422,
                f"{'Last-Event-ID' if header else 'after'} {start} is past the last event "
                f"of run {run_id} (its events are 1..{run.event_seq}); resume from an id "
                "this run's stream sent, or stream without it from the first event",
                kind="invalid-last-event-id" if header else "validation",
            )
        body = sse.run_events(
            rt, run_id, start, poll=settings.sse_poll, heartbeat=settings.sse_heartbeat
        )
        return StreamingResponse(guarded(body, who), media_type=SSE_TYPE, headers=SSE_HEADERS)

    @r.get(
        "/v1/stream/runs",
        response_class=StreamingResponse,
        responses=_STREAM_DOC,  # type: ignore[arg-type]
        summary="Runs of the tenant as they appear and change (Server-Sent Events)",
        tags=["runs"],
    )
    async def run_changes(
        request: Request, who: Annotated[Principal, Depends(read)]
    ) -> StreamingResponse:
        body = sse.run_changes(
            rt,
            who.tenant,
            poll=settings.runs_poll,
            heartbeat=settings.sse_heartbeat,
            root=root_path(request),
        )
        return StreamingResponse(guarded(body, who), media_type=SSE_TYPE, headers=SSE_HEADERS)

    return r
