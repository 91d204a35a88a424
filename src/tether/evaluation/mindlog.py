"""The mind log of a run: every action with its rationale, its inputs and its raw output, and
what the agent said next, so an audit can set what a tool returned beside what the agent
concluded from it (a "hallucination trace").

Nothing extra is written while a run executes: the mind log is read from what the run stores
anyway, in its order:

* the effect journal: each model call's recorded response (text and tool calls with their
  arguments), each tool call's arguments and raw result (or error), each ``ctx.effect``;
* the run's ``rationale`` events (``ctx.explain`` / ``tether.evaluation.explain``) and
  ``plan`` events (``record_plan``);
* its ``call_refused`` events: the calls governance refused before they reached the journal
  (a policy's deny, a rejected approval, a budget or loop-guard trip), each an entry with
  status ``denied`` or ``stopped``, ``refused_by`` and the reason (``refusals``).

An action's rationale is the node's own explanation when it gave one (the latest ``explain``
of the same task made before the call), else the text the model emitted with the tool call
that chose it (the latest earlier model response of the same task that asked for this tool).
Its conclusion is the text of the next model response in the run that has one, the first
thing the agent said after it saw the observation. ``used_later`` tells whether a fact only
the observation brought in (``observation_use``) shows up in a later decision.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from tether.evaluation.journal_keys import CallSite, call_site
from tether.evaluation.observation_use import decision_facts, new_facts, text_facts, value_facts
from tether.evaluation.rationale import PLAN_EVENT, RATIONALE_EVENT
from tether.evaluation.refusals import REFUSED_EVENT, Refusal, placed, refusals
from tether.store.protocol import RunStore
from tether.store.types import EffectRecord, Event

EVENT_PAGE = 1000


@dataclass(slots=True)
class MindEntry:
    """One journaled call of a run, in journal order.

    ``kind`` is ``thought`` (a model call), ``action`` (a tool call) or ``effect`` (a
    ``ctx.effect``)."""

    index: int
    kind: str
    name: str
    """The model, tool or effect name."""
    key: str
    step: int | None
    node: str | None
    status: str
    """``done``, ``failed`` or ``pending`` (started, no result recorded); for a call governance
    refused before the journal, ``denied`` or ``stopped`` (see ``refused_by``)."""
    ts: float
    input: Any = None
    """A tool's arguments; an effect's request; a model call's request summary."""
    output: Any = None
    """A tool's raw result; a model call's ``{"text", "tool_calls"}``."""
    error: dict[str, Any] | None = None
    rationale: str | None = None
    rationale_source: str | None = None
    """``explain`` (the node said why) or ``model`` (the text the model gave with the call)."""
    decided_by: str | None = None
    """Journal key of the model call whose tool call this action carries out."""
    conclusion: str | None = None
    """The text of the next model response with text after this action (what the agent said
    once it had seen the observation)."""
    used_later: bool | None = None
    """For a successful action: a fact only its observation held appears in a later decision."""
    unsupported: list[str] | None = None
    """For a thought: the numbers its text states that no earlier tool output, tool argument,
    effect, model text or the run's input held (amounts, dates, ids the model may have made
    up); for an action: those of its conclusion."""
    refused_by: str | None = None
    """For a refused call: ``policy``, ``approval``, ``budget``, ``loop_guard``...; the reason
    is ``error["message"]``."""

    def as_dict(self) -> dict[str, Any]:
        """The entry's fields; its values are shared, not copied (``dataclasses.asdict`` deep
        copied every input and output: 4 s of a 10,000-step run's ``tether mindlog --json``)."""
        return {name: getattr(self, name) for name in _ENTRY_FIELDS}


_ENTRY_FIELDS = tuple(f.name for f in fields(MindEntry))


@dataclass(slots=True)
class MindLog:
    run_id: str
    workflow: str
    entries: list[MindEntry] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)
    """The run's ``plan`` events' data, in order (``step``, ``node`` added)."""

    @property
    def actions(self) -> list[MindEntry]:
        return [e for e in self.entries if e.kind == "action"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "plans": self.plans,
            "entries": [e.as_dict() for e in self.entries],
        }


async def run_events(store: RunStore, run_id: str, types: Sequence[str]) -> list[Event]:
    """The run's events of ``types``, read page by page."""
    out: list[Event] = []
    after = 0
    while True:
        page = await store.list_events(run_id, after_seq=after, limit=EVENT_PAGE)
        out.extend(e for e in page if e.type in types)
        if len(page) < EVENT_PAGE:
            return out
        after = page[-1].seq


def _kind(kind: str, request: Any) -> tuple[str, str]:
    req = request if isinstance(request, Mapping) else {}
    if kind == "model":
        return "thought", str(req.get("model", "model"))
    if kind == "tool":
        return "action", str(req.get("tool", "?"))
    return "effect", str(req.get("name", kind))


def _input(kind: str, request: Any) -> Any:
    req = request if isinstance(request, Mapping) else {}
    if kind == "thought":
        return {k: v for k, v in req.items() if k != "model"}
    return req.get("args") if kind == "action" else request


def _decision(result: Any) -> dict[str, Any]:
    if not isinstance(result, Mapping):
        return {"text": "", "tool_calls": []}
    calls = [
        {"name": c.get("name"), "arguments": c.get("arguments") or {}}
        for c in result.get("tool_calls") or ()
        if isinstance(c, Mapping)
    ]
    return {"text": str(result.get("text") or ""), "tool_calls": calls}


def _entry(i: int, rec: EffectRecord, site: CallSite | None) -> MindEntry:
    kind, name = _kind(rec.kind, rec.request)
    if kind == "thought":
        out: Any = _decision(rec.result) if rec.status == "done" else None
    else:
        out = rec.result
    return MindEntry(
        i, kind, name, rec.key, site.step if site else None, site.node if site else None,
        rec.status, rec.created_at, _input(kind, rec.request), out, rec.error,
    )  # fmt: skip


def _refused_entry(r: Refusal) -> MindEntry:
    kind, name = _kind(r.kind, r.request)
    return MindEntry(
        0, kind, name, r.key, r.step, r.node, r.status, r.ts, _input(kind, r.request),
        error=r.error, refused_by=r.refused_by,
    )  # fmt: skip


def _journal(
    run_id: str, effects: Sequence[EffectRecord], events: Sequence[Event]
) -> tuple[list[MindEntry], list[CallSite | None]]:
    """The journaled calls in order, each refused call placed after the last one its task
    made before it; with each entry's call site (from its key)."""
    after: dict[int, list[Refusal]] = {}
    for j, r in placed(run_id, [e.key for e in effects], refusals(events)):
        after.setdefault(j, []).append(r)
    entries = [_refused_entry(r) for r in after.get(-1, ())]
    for j, rec in enumerate(effects):
        entries.append(_entry(j, rec, call_site(run_id, rec.key)))
        entries.extend(_refused_entry(r) for r in after.get(j, ()))
    for i, e in enumerate(entries):
        e.index = i
    return entries, [call_site(run_id, e.key) for e in entries]


class _Rationales:
    """A run's ``explain`` events by task. A task's events come in emit order, so the count of
    calls of one kind each saw never decreases: the rationale of a call is found by bisection."""

    def __init__(self, events: Sequence[Event]) -> None:
        self.by_task = _by_task(events)
        self._counts: dict[tuple[str, str], list[int]] = {}

    def before(self, site: CallSite | None) -> str | None:
        """The latest ``explain`` of the call's task made before the call."""
        if site is None:
            return None
        found = self.by_task.get(site.task_id)
        if not found:
            return None
        counts = self._counts.get((site.task_id, site.kind))
        if counts is None:
            counts = self._counts[(site.task_id, site.kind)] = [_seen(d, site.kind) for d in found]
        i = bisect_right(counts, site.index) - 1
        return str(found[i].get("text", "")) if i >= 0 else None


def _seen(data: Mapping[str, Any], kind: str) -> int:
    calls = data.get("calls")
    return int(calls.get(kind, 0)) if isinstance(calls, Mapping) else 0


def _by_task(events: Sequence[Event]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for e in events:
        if e.type == RATIONALE_EVENT:
            out.setdefault(str(e.data.get("task_id")), []).append(e.data)
    return out


class _Choosers:
    """Which model call chose a tool call: the model calls that asked for each tool, by task
    (``None``: any task, for calls whose key says no task)."""

    def __init__(self, entries: Sequence[MindEntry], sites: Sequence[CallSite | None]) -> None:
        self.entries, self.sites = entries, sites
        self.asked: dict[tuple[str | None, str], list[int]] = {}
        for j, e in enumerate(entries):
            if e.kind != "thought" or not isinstance(e.output, Mapping):
                continue
            where = sites[j]
            task = where.task_id if where is not None else None
            for name in {str(c.get("name")) for c in e.output["tool_calls"]}:
                self.asked.setdefault((task, name), []).append(j)
                if task is not None:
                    self.asked.setdefault((None, name), []).append(j)

    def of(self, i: int) -> int | None:
        """The latest model call before entry ``i`` (of its task when known) that asked for its
        tool, preferring one that asked with the same arguments."""
        entry, site = self.entries[i], self.sites[i]
        found = self.asked.get((site.task_id if site is not None else None, entry.name), [])
        before = found[: bisect_right(found, i - 1)]
        for j in reversed(before):
            calls = self.entries[j].output["tool_calls"]
            if any(
                c.get("name") == entry.name and c.get("arguments") == entry.input for c in calls
            ):
                return j
        return before[-1] if before else None


def _last_said(entries: Sequence[MindEntry]) -> dict[str, int]:
    """Each fact of a decision (a model response, a tool call's arguments): the last entry that
    holds it."""
    out: dict[str, int] = {}
    for i, x in enumerate(entries):
        if x.kind == "thought" and isinstance(x.output, Mapping):
            facts = decision_facts(x.output)
        elif x.kind == "action":
            facts = value_facts(x.input)
        else:
            continue
        for f in facts:
            out[f] = i
    return out


def _numbers(facts: set[str]) -> set[str]:
    return {f for f in facts if f[0].isdigit()}


def _check_numbers(entries: Sequence[MindEntry], run_input: Any) -> None:
    """Mark each thought's numbers that nothing before it in the run held."""
    known = _numbers(value_facts(run_input))
    for e in entries:
        if e.kind == "thought" and isinstance(e.output, Mapping):
            said = _numbers(text_facts(e.output["text"]))
            e.unsupported = sorted(said - known)
            known |= said | _numbers(decision_facts(e.output))
        else:
            known |= _numbers(value_facts(e.input) | value_facts(e.output))


def _next_texts(entries: Sequence[MindEntry]) -> list[int | None]:
    """For each entry, the index of the first later thought with text."""
    out: list[int | None] = [None] * len(entries)
    nxt: int | None = None
    for i in range(len(entries) - 1, -1, -1):
        out[i] = nxt
        e = entries[i]
        if e.kind == "thought" and isinstance(e.output, Mapping) and e.output["text"]:
            nxt = i
    return out


def assemble(
    run_id: str,
    workflow: str,
    effects: Sequence[EffectRecord],
    events: Sequence[Event],
    run_input: Any = None,
) -> MindLog:
    """The mind log from a run's journal, its rationale, plan and ``call_refused`` events and
    its input (pure)."""
    rationales = _Rationales(events)
    entries, sites = _journal(run_id, effects, events)
    choosers = _Choosers(entries, sites)
    last_said = _last_said(entries)
    _check_numbers(entries, run_input)
    next_text = _next_texts(entries)
    for i, e in enumerate(entries):
        if e.kind == "thought":
            continue
        own = rationales.before(sites[i])
        j = choosers.of(i) if e.kind == "action" else None
        if j is not None:
            e.decided_by = entries[j].key
        if own is not None:
            e.rationale, e.rationale_source = own, "explain"
        elif j is not None and entries[j].output["text"]:
            e.rationale, e.rationale_source = entries[j].output["text"], "model"
        k = next_text[i]
        if k is not None:
            e.conclusion, e.unsupported = entries[k].output["text"], entries[k].unsupported
        if e.kind == "action" and e.status == "done":
            chose = [entries[j].output["text"]] if j is not None else []
            facts = new_facts(e.output, [e.input, *chose])
            e.used_later = any(last_said.get(f, -1) > i for f in facts)
    plans = [
        {**e.data, "step": e.step, "node": e.node, "seq": e.seq}
        for e in events
        if e.type == PLAN_EVENT
    ]
    return MindLog(run_id, workflow, entries, plans)


async def mind_log(store: RunStore, run_id: str) -> MindLog:
    """The mind log of a run (raises RunNotFoundError): what the server's
    ``GET /runs/{id}/mindlog`` returns as ``mind_log(store, run_id).as_dict()``."""
    run = await store.get_run(run_id)
    effects = await store.list_effects(run_id)
    events = await run_events(store, run_id, (RATIONALE_EVENT, PLAN_EVENT, REFUSED_EVENT))
    return assemble(run_id, run.workflow, effects, events, run.input)
