"""PostgreSQL's claim under shared limits in one round trip: a plpgsql function (schema v10;
v18 adds the previous owner of each claimed run to its rows; v24 reads its candidates in claim
order from indexes, ``claim_order``: the ACTIVE statuses are literals there, not ``p_active``,
so the partial index of the queue applies to every plan of it, custom or generic).

``tether_claim_limited(...)`` takes a transaction-scoped advisory lock (one per schema), then
runs the limited claim of ``sql_queue_limits`` (same logic, with arrays for the lists): inside
a volatile function each statement takes a fresh snapshot, so the running runs it counts
include every claim committed before it got the lock, and two claimers can never both admit a
run into the last free place of a limit. Claims without any limit do not come here: they stay
a single ``UPDATE ... FOR UPDATE SKIP LOCKED`` statement without a lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.store.claim_order import ACTIVE_LITERALS, RELEASED_FIRST
from tether.store.pg_commit import text_array
from tether.store.sql_base import ACTIVE_VALUES
from tether.store.sql_queue_limits import claim_lock_key

_ORDER = "rk, priority DESC, created_at, run_id"


def functions(p: str) -> list[str]:
    """DDL of the limited claim function (``p``: the qualified table prefix)."""
    hit = (
        "((lim.kind = 'queue' AND lim.key = {q}) OR (lim.kind = 'workflow' AND lim.key = {w}) "
        "OR (lim.kind = 'tenant' AND lim.key = {t}))"
    )
    full = hit.format(q="c0.queue", w="c0.workflow", t="c0.tenant")
    win = f"ORDER BY {_ORDER}"
    # each branch: the runs of the workflows and queues asked for, available, not excluded, of
    # no key already full (the ACTIVE statuses as literals: the partial index's own condition)
    served = f"""c0.available_at <= p_now
                AND (p_workflows IS NULL OR c0.workflow = ANY (p_workflows))
                AND (p_queues IS NULL OR c0.queue = ANY (p_queues))
                AND NOT (c0.run_id = ANY (p_exclude))
                AND NOT EXISTS (SELECT 1 FROM lim WHERE lim.room <= 0 AND {full})"""
    cols = "c0.run_id, c0.queue, c0.workflow, c0.tenant"
    within = "c0.priority DESC, c0.created_at, c0.run_id"  # claim_order.WITHIN
    released = RELEASED_FIRST.replace("lease_token", "c0.lease_token")
    return [
        f"""CREATE OR REPLACE FUNCTION {p}claim_limited(p_active text[], p_now double precision,
    p_dead text[], p_workflows text[], p_queues text[], p_exclude text[], p_lookahead integer,
    p_limit integer, p_owner text, p_expires double precision)
RETURNS TABLE (run_id text, lease_token bigint, lease_expires_at double precision,
    priority integer, created_at double precision, previous_owner text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM pg_advisory_xact_lock({claim_lock_key(p)});
    RETURN QUERY
    WITH lim AS MATERIALIZED (
        SELECT l.kind, l.key, l.max_running - (
            SELECT COUNT(*) FROM {p}runs r WHERE r.status = ANY (p_active)
            AND r.owner IS NOT NULL AND r.lease_expires_at > p_now
            AND NOT (r.owner = ANY (p_dead))
            AND ((l.kind = 'queue' AND r.queue = l.key)
                OR (l.kind = 'workflow' AND r.workflow = l.key)
                OR (l.kind = 'tenant' AND r.tenant = l.key))) AS room
        FROM {p}queue_limits l WHERE l.max_running IS NOT NULL),
    cand AS MATERIALIZED (
        SELECT u.run_id, u.queue, u.workflow, u.tenant, u.rk, u.priority, u.created_at, u.owner
        FROM (
            SELECT * FROM (
                SELECT {cols}, 0 AS rk, c0.priority, c0.created_at, c0.owner
                FROM {p}runs c0
                WHERE c0.{ACTIVE_LITERALS} AND c0.owner IS NOT NULL
                    AND c0.lease_expires_at > 0
                    AND (c0.lease_expires_at <= p_now OR c0.owner = ANY (p_dead))
                    AND {served}
                ORDER BY {within} LIMIT p_lookahead FOR UPDATE OF c0 SKIP LOCKED) AS o
            UNION ALL
            SELECT * FROM (
                SELECT {cols}, {released} AS rk, c0.priority, c0.created_at, c0.owner
                FROM {p}runs c0
                WHERE c0.owner IS NULL AND c0.{ACTIVE_LITERALS} AND {served}
                ORDER BY {released}, {within}
                LIMIT p_lookahead FOR UPDATE OF c0 SKIP LOCKED) AS q
        ) AS u
        ORDER BY u.rk, u.priority DESC, u.created_at, u.run_id LIMIT p_lookahead),
    k AS (
        SELECT cand.*,
            ROW_NUMBER() OVER (PARTITION BY cand.queue {win}) AS nq,
            ROW_NUMBER() OVER (PARTITION BY cand.workflow {win}) AS nw,
            ROW_NUMBER() OVER (PARTITION BY cand.tenant {win}) AS nt
        FROM cand),
    ok AS (
        SELECT k.run_id FROM k WHERE NOT EXISTS (SELECT 1 FROM lim WHERE
            (lim.kind = 'queue' AND lim.key = k.queue AND k.nq > lim.room)
            OR (lim.kind = 'workflow' AND lim.key = k.workflow AND k.nw > lim.room)
            OR (lim.kind = 'tenant' AND lim.key = k.tenant AND k.nt > lim.room))
        ORDER BY k.rk, k.priority DESC, k.created_at, k.run_id LIMIT p_limit),
    upd AS (
        UPDATE {p}runs u SET owner = p_owner, lease_token = u.lease_token + 1,
            lease_expires_at = p_expires
        WHERE u.run_id IN (SELECT ok.run_id FROM ok)
        RETURNING u.run_id, u.lease_token, u.lease_expires_at, u.priority, u.created_at)
    SELECT upd.run_id, upd.lease_token, upd.lease_expires_at, upd.priority, upd.created_at,
        cand.owner
    FROM upd JOIN cand ON cand.run_id = upd.run_id;
END
$fn$"""
    ]


def drop_v10(p: str) -> str:
    """Schema v18 returns the previous owner of each claimed run too: a new row type, so the
    v10 function goes first (CREATE OR REPLACE cannot change what a function returns)."""
    return (
        f"DROP FUNCTION IF EXISTS {p}claim_limited(text[], double precision, text[], text[], "
        "text[], text[], integer, integer, text, double precision)"
    )


def call(p: str) -> str:
    """The statement (``?`` placeholders: the dialect rewrites them)."""
    return (
        f"SELECT run_id, lease_token, lease_expires_at, priority, created_at, previous_owner "
        f"FROM {p}claim_limited(CAST(? AS text[]), "
        "CAST(? AS double precision), CAST(? AS text[]), "
        "CAST(? AS text[]), CAST(? AS text[]), CAST(? AS text[]), CAST(? AS integer), "
        "CAST(? AS integer), CAST(? AS text), CAST(? AS double precision))"
    )


def params(
    now: float,
    dead: Sequence[str],
    workflows: Sequence[str] | None,
    queues: Sequence[str] | None,
    exclude: Sequence[str],
    lookahead: int,
    limit: int,
    owner: str,
    expires: float,
) -> tuple[Any, ...]:
    return (
        text_array(list(ACTIVE_VALUES)),
        now,
        text_array(list(dead)),
        None if workflows is None else text_array(list(workflows)),
        None if queues is None else text_array(list(queues)),
        text_array(list(exclude)),
        lookahead,
        limit,
        owner,
        expires,
    )
