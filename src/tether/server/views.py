"""What the API answers, built from the store's records (plain dicts, JSON-ready)."""

from __future__ import annotations

import json
from typing import Any, cast

from tether.core import serde
from tether.core.capabilities import has_capability
from tether.core.lifecycle import ACTIVE, FINISHED, PARKED, RunStatus
from tether.graph.builder import Workflow
from tether.graph.types import END, START
from tether.store.approvals import ApprovalRecord
from tether.store.protocol import RunStore
from tether.store.run_usage import RunUsage, RunUsageTotals
from tether.store.types import Event, RunRecord
from tether.store.usage import ModelCallTotals

NO_USAGE = RunUsage()
LIST_METADATA_BYTES = 4096
"""Most bytes of a run's metadata, escalation and error (each, as JSON) a list item carries
(``GET /v1/runs``, the run-change stream): metadata may hold up to ``max_body_bytes`` a run, and
a page of 500 such runs was half a gigabyte (an interrupt's payload, an exception's message
likewise). ``GET /v1/runs/{id}`` returns all of them."""
_SKIPS = 64
"""Entries too large for what is left that ``listed`` passes over before it stops looking."""


def phase(status: RunStatus) -> str:
    """Where a run is in its life: queued, running, waiting (for a human) or finished."""
    if status in FINISHED:
        return "finished"
    if status in PARKED:
        return "waiting"
    if status in (RunStatus.RECEIVED, RunStatus.PLANNED):
        return "queued"
    assert status in ACTIVE
    return "running"


def run_summary(run: RunRecord, current_nodes: list[str] | None = None) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "status": run.status.value,
        "phase": phase(run.status),
        "step": run.step,
        "event_seq": run.event_seq,
        "error": run.error,
        "escalation": run.escalation,
        "usage": None,
        "parent_run_id": run.parent_run_id,
        "parent_step": run.parent_step,
        "thread_id": run.thread_id,
        "queue": run.queue,
        "priority": run.priority,
        "tenant": run.tenant,
        "metadata": run.metadata,
        "metadata_truncated": None,
        "escalation_truncated": None,
        "error_truncated": None,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "current_nodes": current_nodes or [],
        "idempotency_key": sent_key(run),
        "input_hash": run.input_hash,
        "owner": run.owner,
        "lease_token": run.lease_token,
        "lease_expires_at": run.lease_expires_at,
        "available_at": run.available_at,
    }


def sent_key(run: RunRecord) -> str | None:
    """The run's idempotency key as its submitter sent it: the server keeps a tenant's keys
    apart by storing them as ``tenant:<tenant, escaped>:<key>`` (``routes_runs``)."""
    key = run.idempotency_key
    if key is None or run.tenant is None:
        return key
    prefix = f"tenant:{run.tenant.replace('%', '%25').replace(':', '%3A')}:"
    return key[len(prefix) :] if key.startswith(prefix) else key


def sums_usage(store: RunStore) -> bool:
    """Whether ``store`` sums runs' usage in one query (``RunUsageTotals``), decided once per
    store class (``has_capability``)."""
    return has_capability(store, RunUsageTotals)


def _size(value: Any) -> int:
    """Bytes of ``value`` as JSON (as the API sends it)."""
    try:
        return len(serde.dumps(value))
    except TypeError:  # what orjson refuses (an integer beyond 64 bits): as the API sends it
        return len(json.dumps(value, separators=(",", ":"), default=str).encode())


CUT_FIELDS = ("metadata", "escalation", "error")
"""A run's objects a list item bounds (each to ``LIST_METADATA_BYTES``): its metadata (the
submitter's), its escalation (an interrupt's payload, a tool call's arguments: as large as the
run made them) and its error (an exception's message)."""


def _cut(obj: dict[str, Any], whole: int, href: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``obj`` (``whole`` bytes) cut to its entries that fit in ``LIST_METADATA_BYTES`` (whole
    entries, in order), and the marker saying so: ``{"bytes", "omitted_keys", "href"}``."""
    kept: dict[str, Any] = {}
    used, skipped = 2, 0  # {}
    for key, value in obj.items():
        size = _size({key: value}) - 1  # "key":value and its comma
        if used + size <= LIST_METADATA_BYTES:
            kept[key] = value
            used += size
        elif (skipped := skipped + 1) > _SKIPS or LIST_METADATA_BYTES - used < 8:
            break  # the work per run stays bounded however many entries it has
    return kept, {"bytes": whole, "omitted_keys": len(obj) - len(kept), "href": href}


def listed(run: RunRecord, root: str = "") -> dict[str, Any]:
    """A run as a list carries it: its summary, with each of its metadata, escalation and
    error over ``LIST_METADATA_BYTES`` cut to the entries that fit (whole entries, in order)
    and ``<field>_truncated`` saying so: ``{"bytes": <size of all of it>, "omitted_keys": <how
    many entries are left out>, "href": "<root>/v1/runs/<id>"}`` (where to read all of it;
    ``root``: the path the server is mounted under)."""
    item = run_summary(run)
    for name in CUT_FIELDS:
        obj = item[name]
        if not isinstance(obj, dict):
            continue
        whole = _size(obj)
        if whole > LIST_METADATA_BYTES:
            href = f"{root}/v1/runs/{run.run_id}"
            item[name], item[f"{name}_truncated"] = _cut(obj, whole, href)
    return item


async def run_items(store: RunStore, runs: list[RunRecord], root: str = "") -> list[dict[str, Any]]:
    """Runs as ``GET /v1/runs`` lists them (and the run-change stream sends them): each
    ``listed`` (its metadata, escalation and error bounded) with its usage (tokens, cost,
    calls), summed for all of them in one query where the store can (``RunUsageTotals``);
    else without usage."""
    if not runs:
        return []
    if not sums_usage(store):
        return [listed(run, root) for run in runs]
    used = await cast(RunUsageTotals, store).runs_usage([run.run_id for run in runs])
    out = []
    for run in runs:
        item = listed(run, root)
        item["usage"] = used.get(run.run_id, NO_USAGE).as_dict()
        out.append(item)
    return out


def usage(models: list[ModelCallTotals], tool_calls: int) -> dict[str, Any]:
    return {
        "input_tokens": sum(m.input_tokens for m in models),
        "output_tokens": sum(m.output_tokens for m in models),
        "cost": sum(m.cost for m in models),
        "model_calls": sum(m.calls for m in models),
        "tool_calls": tool_calls,
    }


def run_detail(
    run: RunRecord,
    state: dict[str, Any] | None,
    current_nodes: list[str],
    used: dict[str, Any],
) -> dict[str, Any]:
    out = run_summary(run, current_nodes)
    out.update(input=run.input, state=state, result=run.result, usage=used)
    return out


def event(ev: Event) -> dict[str, Any]:
    return {
        "seq": ev.seq,
        "kind": ev.type,
        "data": ev.data,
        "created_at": ev.ts,
        "step": ev.step,
        "node": ev.node,
    }


def interrupts(run: RunRecord) -> list[dict[str, Any]]:
    """One item per interrupt an ESCALATED run waits on."""
    if run.status is not RunStatus.ESCALATED or not run.escalation:
        return []
    return [
        {
            "run_id": run.run_id,
            "workflow": run.workflow,
            "step": run.step,
            "interrupt": item if isinstance(item, dict) else {"payload": item},
            "created_at": run.updated_at,
        }
        for item in run.escalation.get("interrupts", [])
    ]


def approval(rec: ApprovalRecord) -> dict[str, Any]:
    intent = rec.intent or {}
    return {
        "approval_id": rec.approval_id,
        "run_id": rec.run_id,
        "tool": intent.get("tool"),
        "arguments": intent.get("args"),
        "reason": rec.reason,
        "required_approvers": int(rec.rule.get("required", 1) or 1),
        "votes": [{k: v for k, v in d.items() if k != "signature"} for d in rec.decisions],
        "status": rec.status,
        "deadline": rec.deadline_at,
        "created_at": rec.created_at,
        "updated_at": rec.updated_at,
        "intent": intent,
        "intent_hash": rec.intent_hash,
        "rule": rec.rule,
    }


def workflow(wf: Workflow) -> dict[str, Any]:
    """A workflow's graph for display: nodes, static and conditional edges, entry nodes."""
    g = wf.graph
    nodes = [{"id": START, "label": "start", "phase": None}]
    nodes += [{"id": n, "label": n, "phase": spec.phase.value} for n, spec in g.nodes.items()]
    nodes.append({"id": END, "label": "end", "phase": None})
    edges: list[dict[str, Any]] = [
        {"source": s, "target": t, "conditional": False, "label": None} for s, t in g.edges
    ]
    for srcs, target in g.barriers:
        edges += [
            {"source": s, "target": target, "conditional": False, "label": "join"} for s in srcs
        ]
    for ce in g.conditional:
        targets: list[tuple[str | None, str]]
        if ce.path_map:
            targets = [(str(k), v) for k, v in ce.path_map.items()]
        else:
            targets = [(None, t) for t in (ce.targets or ())]
        edges += [
            {"source": ce.source, "target": t, "conditional": True, "label": label}
            for label, t in targets
        ]
    for name, spec in g.nodes.items():
        for t in spec.destinations or ():
            edges.append({"source": name, "target": t, "conditional": True, "label": "goto"})
    entry = [t for s, t in g.edges if s == START]
    entry += [e["target"] for e in edges if e["source"] == START and e["conditional"]]
    return {
        "name": wf.name,
        "version": wf.version,
        "graph": {
            "nodes": nodes,
            "edges": edges,
            "entry": list(dict.fromkeys(entry)),
            "phases": {n: spec.phase.value for n, spec in g.nodes.items()},
        },
    }
