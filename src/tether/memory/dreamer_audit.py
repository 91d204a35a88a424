"""What the dreamer removed: one audit record per memory, read back from the dream runs'
effect journals in the run store.

Each cluster a dream merged (or, in a dry run, would have merged) is one journaled effect
(``memory.consolidate``) whose recorded result lists the memories it removed: id, text,
scope, importance, score, reason (``merged`` or ``stale``), the memory it was merged into,
the dream run, the time, and ``dry_run``. The journal is immutable history, so the audit
outlives the memories and is the same on every backend the run store has.
"""

from __future__ import annotations

from typing import Any

from tether.core.errors import InvalidInputError
from tether.memory.dreamer import CONSOLIDATE, DREAMER
from tether.store.protocol import RunStore

PAGE = 100


async def consolidation_audit(
    runs: RunStore,
    *,
    tenant: str | None,
    memory_id: str | None = None,
    dry_run: bool | None = None,
    workflow: str = DREAMER,
    limit: int = 1000,
    run_id: str | None = None,
) -> list[dict[str, Any]]:
    """Audit records of ``tenant``'s memories removed by dreams (None: the single-tenant
    default), newest dream first; only those of ``memory_id`` when given; only real removals
    (``dry_run=False``) or only dry runs (``True``); only the dream ``run_id`` when given; at
    most ``limit``."""
    if not isinstance(limit, int) or not 1 <= limit <= 100_000:
        raise InvalidInputError(f"limit must be an int in 1..100000, got {limit!r}")
    out: list[dict[str, Any]] = []
    offset = 0
    while len(out) < limit:
        if run_id is not None:
            page = [await runs.get_run(run_id)]
        else:
            page = await runs.list_runs(workflow=workflow, limit=PAGE, offset=offset)
        for run in page:
            for e in await runs.list_effects(run.run_id):
                if e.kind != "effect" or e.status != "done" or not isinstance(e.result, dict):
                    continue
                if (e.request or {}).get("name") != CONSOLIDATE:
                    continue
                for r in e.result.get("removed", []):
                    if r.get("tenant") != tenant:
                        continue
                    if memory_id is not None and r.get("memory_id") != memory_id:
                        continue
                    if dry_run is not None and bool(r.get("dry_run")) != dry_run:
                        continue
                    out.append(r)
        if run_id is not None or len(page) < PAGE:
            break
        offset += PAGE
    return out[:limit]
