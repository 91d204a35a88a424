"""Fork-join of child runs: one durable child run per branch, joined when all finish, on a
quorum, or at a timeout.

Each branch runs ``options.branch`` (a compiled workflow) as its own run, linked to the parent
(``parent_run_id``), so it is durable on its own (a crash resumes it from its checkpoint) and
draws on the parent's budget envelope when the branch workflow is governed by the same
``Budget``: a child's spend can trip the whole tree. Branch inputs come from the state field
``options.inputs`` (a list of dicts). The join writes ``results`` (one per branch, in order:
``index``, ``run_id``, ``status``, ``state`` or ``error``) and ``joined``: ``all``, ``quorum``,
``timeout``, or ``unreachable`` (too many branches failed for the quorum; with fewer branches
than the quorum, none is started and ``results`` is empty). Branches still running at a quorum
or a timeout are cancelled.

The timeout is fixed in the run's journal when the fork first runs, so a parent resumed after
a crash keeps its original deadline; a child that escalates (a budget trip, a guard) escalates
the parent with the same kind. A child waiting for a human parks the parent on an interrupt
whose payload is ``{"branch": i, "run_id": <child>, "question": <the child's payload>}``:
resume the parent with the answer and it goes down to that branch (and only to the question it
was given for: see ``tether.graph.relay``), which continues; branches ask one at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from tether.agents.children import asked, escalated, follow, start_child
from tether.agents.options import need_governance
from tether.core.errors import ConfigurationError, InvalidInputError, RunStateError
from tether.core.governor import GovernanceConfig
from tether.core.lifecycle import FINISHED, RunStatus
from tether.graph.builder import Graph, Workflow
from tether.graph.context import RunContext
from tether.graph.relay import Relay
from tether.graph.results import RunResult
from tether.graph.runtime import Runtime
from tether.graph.types import END, START

Join = Literal["all", "quorum"]


class ForkJoinState(TypedDict, total=False):
    branches: list[dict[str, Any]]
    results: list[dict[str, Any]]
    joined: str


@dataclass(frozen=True)
class ForkJoinOptions:
    branch: Workflow
    """The workflow each branch runs as a child run."""
    inputs: str = "branches"
    """The state field holding the list of branch inputs."""
    join: Join = "all"
    quorum: int | None = None
    """With ``join="quorum"``: how many branches must complete."""
    timeout: float | None = None
    """Seconds after the fork at which the join happens with what finished by then."""
    governance: GovernanceConfig | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.branch, Workflow):
            raise ConfigurationError(
                f"ForkJoinOptions.branch must be a compiled Workflow, got "
                f"{type(self.branch).__name__}"
            )
        if self.join not in ("all", "quorum"):
            raise ConfigurationError(
                f"ForkJoinOptions.join is 'all' or 'quorum', not {self.join!r}"
            )
        if self.join == "quorum" and (
            isinstance(self.quorum, bool) or not isinstance(self.quorum, int) or self.quorum < 1
        ):
            raise ConfigurationError("ForkJoinOptions(join='quorum') needs quorum=<int >= 1>")
        if self.timeout is not None and (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, int | float)
            or not self.timeout > 0
        ):
            raise ConfigurationError(f"ForkJoinOptions.timeout must be > 0, got {self.timeout!r}")
        need_governance("ForkJoinOptions", self.governance)


def branch_inputs(state: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    items = state.get(field)
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise InvalidInputError(
            f"fork-join reads its branches from state field {field!r}: a list of dicts (one "
            f"input per child run), got {type(items).__name__}"
        )
    return [dict(i) for i in items]


def outcome(index: int, res: RunResult) -> dict[str, Any]:
    out: dict[str, Any] = {"index": index, "run_id": res.run_id, "status": res.status.value}
    if res.status is RunStatus.COMPLETED:
        out["state"] = res.state
    elif res.error:
        out["error"] = res.error.get("message", "")
    return out


def join_reason(options: ForkJoinOptions, done: int, ok: int, total: int) -> str | None:
    """Why the join happens now, or None to keep waiting."""
    if options.join == "quorum":
        need = options.quorum or 0
        if ok >= need:
            return "quorum"
        if ok + (total - done) < need:
            return "unreachable"
        return None
    return "all" if done == total else None


def question(index: int, res: RunResult) -> dict[str, Any]:
    """What the parent's human sees when branch ``index`` waits for an answer."""
    return {"branch": index, "run_id": res.run_id, "question": asked(res)}


def fork_join_node(
    options: ForkJoinOptions,
) -> Callable[[Mapping[str, Any], RunContext], Awaitable[dict[str, Any]]]:
    """The fork-join as a node function, for a graph of your own (``add_node(name, fn)``)."""

    async def fork_join(state: Mapping[str, Any], ctx: RunContext) -> dict[str, Any]:
        host = ctx.host
        inputs = branch_inputs(state, options.inputs)
        deadline: float | None = None
        if options.timeout is not None:
            timeout = options.timeout

            async def fix() -> float:
                return host.clock.now() + timeout

            deadline = float(await ctx.journaled("fork_deadline", {"timeout": timeout}, fix))
        if join_reason(options, 0, 0, len(inputs)) == "unreachable":
            # fewer branches than the quorum: none is started (a branch's effects for nothing)
            ctx.emit("join", {"joined": "unreachable", "statuses": [], "branches": len(inputs)})
            return {"results": [], "joined": "unreachable"}
        ids = []
        for i, data in enumerate(inputs):
            meta = {"fork_of": ctx.run_id, "branch": i}
            child = await start_child(ctx, options.branch, (ctx.task_id, i), data, meta)
            ids.append(child.run_id)
        ctx.emit("fork", {"children": ids, "join": options.join, "quorum": options.quorum})
        relay = Relay(ctx)
        waiters = {asyncio.ensure_future(follow(host, cid)): i for i, cid in enumerate(ids)}
        settled: dict[int, RunResult] = {}
        handled: set[asyncio.Future[RunResult]] = set()
        reason: str | None = join_reason(options, 0, 0, len(ids))  # no branches: 'all' at once
        try:
            while reason is None:
                wait_for = None if deadline is None else max(0.0, deadline - host.clock.now())
                # every follower not handled yet, done or not: one that finished while the
                # loop passed an answer down is still to be read (asyncio.wait returns it)
                pending = [w for w in waiters if w not in handled]
                done, _ = await asyncio.wait(
                    pending, timeout=wait_for, return_when=asyncio.FIRST_COMPLETED
                )
                for w in sorted(done, key=waiters.__getitem__):  # branch order: deterministic
                    handled.add(w)
                    res, i = w.result(), waiters[w]
                    if res.status is RunStatus.ESCALATED:
                        if (res.escalation or {}).get("kind") != "interrupt":
                            raise escalated(res)
                        # raises (the parent asks the branch's question) until the parent is
                        # resumed; the answer goes down to the branch, which is followed again
                        await relay.pass_down(host, ids[i], res.interrupts, question(i, res))
                        waiters[asyncio.ensure_future(follow(host, ids[i]))] = i
                        continue
                    settled[i] = res
                ok = sum(r.status is RunStatus.COMPLETED for r in settled.values())
                reason = join_reason(options, len(settled), ok, len(ids))
                if reason is None and deadline is not None and host.clock.now() >= deadline:
                    reason = "timeout"
        finally:
            for w in waiters:
                w.cancel()
        results = []
        for i, cid in enumerate(ids):
            if i in settled:
                results.append(outcome(i, settled[i]))
                continue
            rec = await host.store.get_run(cid)
            if rec.status not in FINISHED and isinstance(host, Runtime):
                try:
                    rec = await host.cancel(
                        cid, reason=f"fork-join {reason}", actor=f"run:{ctx.run_id}"
                    )
                except RunStateError:  # it finished between the read and the cancel
                    rec = await host.store.get_run(cid)
            if rec.status in (RunStatus.COMPLETED, RunStatus.FAILED):
                # it finished on its own before the join read it: its state or error too
                results.append(outcome(i, await host.wait(cid)))
                continue
            results.append({"index": i, "run_id": cid, "status": rec.status.value})
        ctx.emit("join", {"joined": reason, "statuses": [r["status"] for r in results]})
        return {"results": results, "joined": reason}

    return fork_join


def fork_join(options: ForkJoinOptions, *, name: str = "fork_join") -> Workflow:
    """A workflow that forks ``options.branch`` over ``state[options.inputs]`` and joins."""
    g = Graph(ForkJoinState, name=name)
    g.add_node("fork_join", fork_join_node(options))
    g.add_edge(START, "fork_join").add_edge("fork_join", END)
    return g.compile(governance=options.governance)
