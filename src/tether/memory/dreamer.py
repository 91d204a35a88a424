"""The dreamer: consolidation of one tenant's episodic memories as a durable tether workflow.

::

    dreamer = dreamer_workflow(plane, model)            # a compiled Graph
    await rt.run(dreamer, {"goals": ["ship the billing migration"]}, tenant="acme")
    await rt.schedule("0 3 * * *", dreamer, {}, name="dream-acme", tenant="acme")

Two steps. ``plan`` lists the tenant's memories (the scope's, oldest first), embeds them and
the goals, and decides what to merge and prune (:mod:`tether.memory.consolidation`); the plan is
checkpointed. ``consolidate`` then, per cluster: asks ``model`` to merge the members into one
statement (a journaled model call; without a model the best-scoring member's text stands for
the cluster), adds that memory (provenance ``consolidation``, trusted only if every member
was) and removes the members: one journaled effect per cluster, so a crashed dream resumes
where it stopped, never merging a cluster twice.

``dry_run=True`` changes nothing and calls no model; both modes journal an audit record per
memory removed (or that would be): its text, scope, score and why, queryable with
:func:`tether.memory.dreamer_audit.consolidation_audit`. Every read and write is scoped to the
run's tenant (a run without one: the input's ``tenant``): a dream never sees, merges or removes
another tenant's memories, and a tenant's run cannot name another tenant in its input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import InvalidInputError, UserError
from tether.core.messages import Message
from tether.graph import END, START, Graph, RetryPolicy, RunContext, Workflow
from tether.llm.embeddings import Embedder, default_embedder, embed_unit
from tether.llm.model import Model
from tether.memory.consolidation import DreamSettings, Scored, plan_dream
from tether.memory.plane import MemoryPlane
from tether.memory.types import Memory, MemoryScope, Provenance

DREAMER = "tether.memory.dreamer"
CONSOLIDATE = "memory.consolidate"
"""The name of the journaled effect that merges (or audits, in a dry run) one cluster."""
CHECK = "memory.consolidate.check"
"""The name of the journaled effect that reads which of a cluster's members still exist."""
MERGE_INSTRUCTIONS = (
    "Merge these related memories into one concise statement. Keep every fact, name, number, "
    "identifier and date. When they disagree, the later memory (higher number) is right. "
    "Answer with the statement only."
)
PAGE = 1000


def _transient(exc: BaseException) -> bool:
    return not isinstance(exc, UserError)


RETRY = RetryPolicy(max_attempts=3, initial_interval=0.5, retry_on=_transient)
"""Each step is retried (a store or model hiccup), never for bad input."""


class DreamState(TypedDict, total=False):
    tenant: str | None
    agent: str | None
    goals: list[str]
    dry_run: bool
    settings: dict[str, Any]
    plan: dict[str, Any]
    audit: list[dict[str, Any]]
    merged: list[dict[str, Any]]
    forgotten: list[dict[str, Any]]


def _scope_of(state: DreamState, ctx: RunContext) -> MemoryScope:
    """The memories a dream consolidates: its run's tenant's (a run with a tenant dreams for
    that tenant only, whatever its input says), else the input's ``tenant``."""
    run_tenant = ctx.tenant
    if run_tenant is not None:
        asked = state.get("tenant", run_tenant)
        if asked != run_tenant:
            raise InvalidInputError(
                f"run {ctx.run_id} belongs to tenant {run_tenant!r}: it consolidates that "
                f"tenant's memories only, not {asked!r}'s (leave 'tenant' out of the input, "
                "or start the dream for that tenant)"
            )
        return MemoryScope(run_tenant, agent=state.get("agent"))
    if "tenant" not in state:
        raise InvalidInputError(
            "a dream needs the tenant whose memories it consolidates: start it for the tenant "
            "(tenant='acme'), or say so in its input: {'tenant': 'acme'} ({'tenant': None} "
            "for the single-tenant default)"
        )
    return MemoryScope(state["tenant"], agent=state.get("agent"))


def _record(s: Scored) -> dict[str, Any]:
    m = s.memory
    return {
        "memory_id": m.id,
        "tenant": m.scope.tenant,
        "agent": m.scope.agent,
        "run_id": m.scope.run_id,
        "thread_id": m.scope.thread_id,
        "text": m.text,
        "importance": m.importance,
        "created_at": m.created_at,
        "access_count": m.access_count,
        "trusted": m.provenance.trusted,
        "score": round(s.score, 6),
    }


async def _memories(plane: MemoryPlane, scope: MemoryScope, cap: int) -> list[Memory]:
    out: list[Memory] = []
    cursor: str | None = None
    while len(out) < cap:
        page, cursor = await plane.episodic.list(
            scope, limit=min(PAGE, cap - len(out)), cursor=cursor
        )
        out.extend(m for m in page if m.scope.tenant == scope.tenant)
        if cursor is None:
            break
    return out


async def _present(plane: MemoryPlane, ids: Sequence[str], tenant: str | None) -> list[str]:
    """Which of ``ids`` the tenant still holds (a user may forget one while a dream runs)."""
    scope = MemoryScope(tenant)
    return [i for i in ids if await plane.episodic.get(i, scope=scope) is not None]


def _common(records: Sequence[dict[str, Any]], key: str) -> Any:
    values = {r[key] for r in records}
    return values.pop() if len(values) == 1 else None


def dreamer_workflow(
    plane: MemoryPlane,
    model: Model | None = None,
    *,
    embedder: Embedder | None = None,
    name: str = DREAMER,
    clock: Clock = SYSTEM_CLOCK,
    max_tokens: int = 256,
    retry: RetryPolicy | None = RETRY,
    governance: Any = None,
) -> Workflow:
    """The consolidation workflow over ``plane``'s episodic store (see the module). ``model``
    writes merged memories; ``embedder`` (default: MiniLM) measures similarity; ``retry``
    retries a failed step (journaled work is replayed, not redone); ``governance`` governs
    the dream's model calls like any run's."""

    def embedder_() -> Embedder:
        return embedder if embedder is not None else default_embedder()

    async def plan(state: DreamState, ctx: RunContext) -> dict[str, Any]:
        scope = _scope_of(state, ctx)
        settings = DreamSettings.from_dict(state.get("settings"))
        goals = [g for g in state.get("goals", []) if isinstance(g, str) and g.strip()]
        memories = await _memories(plane, scope, settings.max_memories)
        now = clock.now()
        emb = embedder_()
        vectors = await embed_unit(emb, [m.text for m in memories])
        goal_vectors = await embed_unit(emb, goals) if goals else None
        decided = plan_dream(memories, vectors, goal_vectors, now, settings)
        return {
            "plan": {
                "now": now,
                "merges": [[_record(s) for s in group] for group in decided.merges],
                "prunes": [_record(s) for s in decided.prunes],
                "hot": decided.hot,
                "looked_at": decided.looked_at,
            }
        }

    async def merged_text(records: list[dict[str, Any]]) -> str:
        if model is None:
            return str(max(records, key=lambda r: (r["score"], r["created_at"]))["text"])
        listing = "\n".join(f"{i + 1}. {r['text']}" for i, r in enumerate(records))
        answer = await model.chat(
            [Message.system(MERGE_INSTRUCTIONS), Message.user(listing)],
            temperature=0.0,
            max_tokens=max_tokens,
        )
        text = answer.text.strip()
        return text or str(records[-1]["text"])

    async def apply(
        key: str,
        records: list[dict[str, Any]],
        text: str | None,
        dry: bool,
        tenant: str | None,
        run_id: str,
        at: float,
    ) -> dict[str, Any]:
        new_id: str | None = None
        ids = [r["memory_id"] for r in records]
        if text is None and not dry:  # stale ones: only those still there are removed
            held = set(await _present(plane, ids, tenant))
            records = [r for r in records if r["memory_id"] in held]
        if text is not None and not dry:
            scope = MemoryScope(
                tenant,
                agent=_common(records, "agent"),
                run_id=_common(records, "run_id"),
                thread_id=_common(records, "thread_id"),
            )
            found = await plane.episodic.search(text, scope=scope, k=5, record_access=False)
            again = [h.memory for h in found if h.memory.metadata.get("consolidation_key") == key]
            if again:  # a crash after the add, before the journal kept its result
                new_id = again[0].id
            elif gone := sorted(set(ids) - set(await _present(plane, ids, tenant))):
                # forgotten while the merge was written: the text may hold it; keep nothing
                return {"merged_into": None, "removed": [], "forgotten": gone}
            else:
                new = await plane.episodic.add(
                    text,
                    scope=scope,
                    importance=max(float(r["importance"]) for r in records),
                    metadata={
                        "consolidated_from": [r["memory_id"] for r in records],
                        "consolidation_key": key,
                    },
                    provenance=Provenance(
                        source="consolidation",
                        trusted=all(r["trusted"] for r in records),
                        run_id=run_id,
                    ),
                    created_at=max(float(r["created_at"]) for r in records),
                )
                new_id = new.id
        if not dry and records:
            await plane.episodic.forget(
                [r["memory_id"] for r in records], scope=MemoryScope(tenant)
            )
        reason = "merged" if text is not None else "stale"
        removed = [
            {
                **r,
                "reason": reason,
                "merged_into": new_id,
                "dream_run": run_id,
                "at": at,
                "dry_run": dry,
            }
            for r in records
        ]
        return {"merged_into": new_id, "removed": removed}

    async def consolidate(state: DreamState, ctx: RunContext) -> dict[str, Any]:
        scope = _scope_of(state, ctx)
        dry = bool(state.get("dry_run", False))
        p = state["plan"]
        audit: list[dict[str, Any]] = []
        merged: list[dict[str, Any]] = []
        forgotten: list[dict[str, Any]] = []
        jobs: list[tuple[list[dict[str, Any]], bool]] = [(g, True) for g in p["merges"]]
        if p["prunes"]:
            jobs.append((p["prunes"], False))
        for n, (planned, merge) in enumerate(jobs):
            key = f"{ctx.run_id}:{n}"
            ids = [r["memory_id"] for r in planned]
            # journaled, so a resumed dream decides as the first attempt did
            held = set(await ctx.effect(CHECK, _present, plane, ids, scope.tenant, idempotent=True))
            records = [r for r in planned if r["memory_id"] in held]
            gone = [i for i in ids if i not in held]
            if len(records) < (2 if merge else 1):  # nothing left to merge (or to prune)
                forgotten.append({"from": ids, "forgotten": gone, "consolidated": False})
                continue
            text = (await merged_text(records) if not dry else "") if merge else None
            out = await ctx.effect(
                CONSOLIDATE,
                apply,
                key,
                records,
                text,
                dry,
                scope.tenant,
                ctx.run_id,
                p["now"],
                idempotent=True,
            )
            if out.get("forgotten"):  # forgotten while the merge was written: left alone
                forgotten.append(
                    {"from": ids, "forgotten": out["forgotten"], "consolidated": False}
                )
                continue
            if gone:
                forgotten.append({"from": ids, "forgotten": gone, "consolidated": True})
            audit.extend(out["removed"])
            if merge:
                merged.append({"id": out["merged_into"], "from": [r["memory_id"] for r in records]})
        ctx.emit(
            "memory_consolidated",
            {
                "tenant": scope.tenant,
                "dry_run": dry,
                "merged": len(merged),
                "removed": len(audit),
                "forgotten": len(forgotten),
                "looked_at": p["looked_at"],
                "hot": p["hot"],
            },
        )
        return {"audit": audit, "merged": merged, "forgotten": forgotten}

    g = Graph(DreamState, name=name)
    g.add_node("plan", plan, retry=retry)
    g.add_node("consolidate", consolidate, retry=retry)
    g.add_edge(START, "plan")
    g.add_edge("plan", "consolidate")
    g.add_edge("consolidate", END)
    return g.compile(governance=governance)
