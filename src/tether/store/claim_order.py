"""The claim reads its candidates in claim order from indexes: its work does not grow with the
queue's backlog (schema v23).

Claim order (the same as ``memory.claim_rank``): orphans first (an owner whose lease expired,
or an owner found dead), then runs released mid-flight (a lease token above 0), then
never-started ones; within each, higher priority first, then first come first served.

One statement that sorted every claimable run by that order read the whole backlog on each
claim: a claim of 16 took about 250 ms with 100,000 runs queued on PostgreSQL (6 ms with
1,000), so a deep queue slowed every worker down exactly when it had the most to do. The claim
now reads two branches, each in index order, and merges them:

* **owned** runs whose lease expired (or whose owner is dead): from ``tether_runs_claim``
  (``status, lease_expires_at``), the range ``0 < lease_expires_at <= now`` (with dead owners:
  ``0 < lease_expires_at``, every owned run); an unowned run's expiry is 0 and an owned one's
  ``now + ttl``, so the backlog is not in that range, only runs executing somewhere;
* **unowned** runs: from the partial index ``tether_runs_queued`` of the unowned ACTIVE runs
  (the queue itself), ordered by ``(released first, priority DESC, created_at, run_id)``, read
  until ``limit`` match (available now, of the workflows and queues asked for, not excluded).

What it still passes over, row by row: unowned runs not available yet (delayed, sleeping) that
come first in claim order, and runs of the workflows or queues this claimer does not serve.
The claim under shared limits (``sql_queue_limits``, schema v24) reads its candidates from the
same two branches (``candidates``).
"""

from __future__ import annotations

from tether.core.lifecycle import ACTIVE

ACTIVE_LITERALS = "status IN (" + ", ".join(f"'{s.value}'" for s in sorted(ACTIVE)) + ")"
"""The ACTIVE statuses, written out: a partial index is used where the query's condition
implies its own, which a planner can only tell from the same literals (not from parameters)."""
RELEASED_FIRST = "(CASE WHEN lease_token > 0 THEN 1 ELSE 2 END)"
"""Among unowned runs, those released mid-flight before the never-started ones."""
WITHIN = "priority DESC, created_at, run_id"


def migration(prefix: str) -> list[str]:
    """Schema v23: the index of the queue (the unowned ACTIVE runs), in claim order."""
    return [
        f"CREATE INDEX IF NOT EXISTS tether_runs_queued ON {prefix}runs "
        f"({RELEASED_FIRST}, {WITHIN}) WHERE owner IS NULL AND {ACTIVE_LITERALS}"
    ]


def claim(
    prefix: str,
    skip_locked: str,
    n_workflows: int | None,
    n_exclude: int,
    n_dead: int,
    n_queues: int | None,
    *,
    indexed_by: bool = False,
) -> str:
    """The claim (``?`` placeholders). Parameters: ``now`` (expired leases), the dead owners,
    ``now`` (``available_at``), the workflows, the queues, the excluded runs, ``limit`` (the
    owned branch); ``now``, the workflows, the queues, the excluded runs, ``limit`` (the
    unowned branch); ``limit``; then the claimer and the new expiry. Rows: run id, token,
    expiry, priority, created_at, the previous owner. ``indexed_by``: SQLite's hints (below).
    """
    cands = candidates(
        prefix, skip_locked, n_workflows, n_exclude, n_dead, n_queues, indexed_by=indexed_by
    )
    p = prefix
    return (
        f"WITH c AS MATERIALIZED ({cands}) "
        f"UPDATE {p}runs SET owner = ?, lease_token = lease_token + 1, lease_expires_at = ? "
        "WHERE run_id IN (SELECT run_id FROM c) "
        "RETURNING run_id, lease_token, lease_expires_at, priority, created_at, "
        # the owner the claim took the run from (the CTE read the row before the update)
        f"(SELECT c.owner FROM c WHERE c.run_id = {p}runs.run_id)"
    )


def candidates(
    prefix: str,
    skip_locked: str,
    n_workflows: int | None,
    n_exclude: int,
    n_dead: int,
    n_queues: int | None,
    *,
    indexed_by: bool = False,
    fields: str = "",
    also: str = "",
    out: str = "run_id, owner",
) -> str:
    """The first ``limit`` claimable runs in claim order, read from the two branches (the
    claim's parameters up to the merged ``limit``, see ``claim``). ``fields``: more columns
    of each branch (``", queue, tenant"``), beside ``run_id, owner, rk, priority,
    created_at``; ``also``: one more condition on each branch's runs (``" AND ..."``, no
    parameters; ``{prefix}runs`` names the row); ``out``: the columns the merge returns.
    ``sql_queue_limits`` reads the candidates of the claim under limits so too."""
    p = prefix
    # SQLite's planner has no statistics: it would read every run of a workflow (queue) from
    # that column's index and sort them. ``|| ''`` makes those conditions filters, never an
    # index to read by, and the queue's index is named. PostgreSQL's planner, which knows how
    # many runs each workflow has, needs neither (``|| ''`` would hide that from it).
    tag = " || ''" if indexed_by else ""
    wf = f" AND workflow{tag} IN {_in(n_workflows)}" if n_workflows is not None else ""
    qs = f" AND queue{tag} IN {_in(n_queues)}" if n_queues is not None else ""
    ex = f" AND run_id NOT IN {_in(n_exclude)}" if n_exclude else ""
    dead = f" OR owner IN {_in(n_dead)}" if n_dead else ""
    served = f" AND available_at <= ?{wf}{qs}{ex}"
    owned = (
        f"SELECT run_id, owner{fields}, 0 AS rk, priority, created_at FROM {p}runs "
        f"WHERE {ACTIVE_LITERALS} AND owner IS NOT NULL "
        f"AND lease_expires_at > 0 AND (lease_expires_at <= ?{dead}){served}{also} "
        f"ORDER BY {WITHIN} LIMIT ?{skip_locked}"
    )
    hint = " INDEXED BY tether_runs_queued" if indexed_by else ""
    unowned = (
        f"SELECT run_id, owner{fields}, {RELEASED_FIRST} AS rk, priority, created_at "
        f"FROM {p}runs{hint} WHERE owner IS NULL AND {ACTIVE_LITERALS}{served}{also} "
        f"ORDER BY {RELEASED_FIRST}, {WITHIN} LIMIT ?{skip_locked}"
    )
    return (
        f"SELECT {out} FROM (SELECT * FROM ({owned}) AS o "
        f"UNION ALL SELECT * FROM ({unowned}) AS q) AS u ORDER BY rk, {WITHIN} LIMIT ?"
    )


def _in(n: int) -> str:
    return "(" + ", ".join("?" * n) + ")"
