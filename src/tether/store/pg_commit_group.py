"""Step commits of several runs made in the same turn of the event loop go out as one statement.

A worker executes many runs at once; runs claimed together reach their step commits together.
Each commit by itself costs a round trip, a transaction and a statement on the server (more of
the server's CPU than the commit function's own work for a trivial run). ``CommitGroup`` holds
a commit until the event loop has run what else was ready (one turn, no timer: a commit alone
leaves at once), then sends the commits gathered meanwhile as one statement
(``pg_commit_batch``): the same fenced commit function once per run, one transaction for all.
Each caller still waits for its own commit, durable (at the store's durability) when it returns.

Only commits a lost reply cannot make ambiguous join: fenced, carrying their base, numbering
their events, no metadata merge or node writes (``groupable``). The batch is all or nothing:

* the server refused it (a fence lost, a status moved, a row locked elsewhere): nothing
  applied; each commit is sent again by itself, and fails or succeeds as it would have alone;
* the connection dropped: the transaction applied for all of them or for none; each run is read
  back and the store's usual after-a-lost-reply check (``pg_commit.applied``) decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from tether.store import pg_commit, run_head
from tether.store.types import Commit, RunRecord

Item = tuple[str, int, Commit]
_Member = tuple[str, int, Commit, "asyncio.Future[RunRecord]"]


def groupable(token: int | None, commit: Commit) -> bool:
    """Whether ``commit`` may go out in a batch with others."""
    return (
        token is not None
        and run_head.usable(commit, token) is not None
        and commit.metadata is None
        and not commit.node_writes
        and pg_commit.last_event_seq(commit) is not None
    )


class CommitGroup:
    """One per store (and event loop): gathers ``groupable`` commits made in one loop turn.

    ``one`` commits a single run the usual way; ``batch`` sends several as one statement and
    raises what the server or connection raised; ``refused`` tells a refusal (nothing
    applied) from a lost reply; ``after_lost`` finishes one commit whose batch lost its reply.
    """

    def __init__(
        self,
        one: Callable[[str, int, Commit], Awaitable[RunRecord]],
        batch: Callable[[Sequence[Item]], Awaitable[list[RunRecord]]],
        refused: Callable[[Exception], bool],
        after_lost: Callable[[str, int, Commit], Awaitable[RunRecord]],
    ) -> None:
        self._one = one
        self._batch = batch
        self._refused = refused
        self._after_lost = after_lost
        self._pending: list[_Member] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        """The event loop of the commits pending (a store used from another loop meanwhile
        sends its commits alone)."""
        self._sending: set[asyncio.Task[None]] = set()

    async def commit(self, run_id: str, token: int, commit: Commit) -> RunRecord:
        loop = asyncio.get_running_loop()
        if self._pending and self._loop is not loop:
            return await self._one(run_id, token, commit)
        done: asyncio.Future[RunRecord] = loop.create_future()
        self._pending.append((run_id, token, commit, done))
        if len(self._pending) == 1:  # the first of this turn: send once the turn has run
            self._loop = loop
            loop.call_soon(self._flush)
        return await done

    async def wait_sent(self) -> None:
        """Until every batch under way is answered (before the store closes its pool)."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    def _flush(self) -> None:
        group = [m for m in self._pending if not m[3].done()]  # a cancelled caller: unsent
        self._pending = []
        if group:
            task = asyncio.get_running_loop().create_task(self._send(group))
            self._sending.add(task)  # held until done (the loop keeps weak references)
            task.add_done_callback(self._sending.discard)

    async def _send(self, group: list[_Member]) -> None:
        try:
            await self._send_group(group)
        finally:  # cancelled (the event loop shutting down): its callers are told so
            for *_item, done in group:
                if not done.done():
                    done.cancel()

    async def _send_group(self, group: list[_Member]) -> None:
        if len(group) == 1:
            await self._settle(group[0], self._one)
            return
        try:
            runs = await self._batch([(run_id, token, c) for run_id, token, c, _f in group])
        except Exception as exc:
            again = self._one if self._refused(exc) else self._after_lost
            await asyncio.gather(*(self._settle(m, again) for m in group))
            return
        for (_run_id, _token, _commit, done), run in zip(group, runs, strict=True):
            if not done.done():
                done.set_result(run)

    @staticmethod
    async def _settle(
        member: _Member, how: Callable[[str, int, Commit], Awaitable[RunRecord]]
    ) -> None:
        run_id, token, commit, done = member
        try:
            run = await how(run_id, token, commit)
        except BaseException as exc:
            if not done.done():
                done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        if not done.done():
            done.set_result(run)
