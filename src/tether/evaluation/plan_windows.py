"""Plan fidelity's windows: which of a run's journaled calls carried out which of its plans.

A call belongs to the latest plan (``record_plan``, in event order) it was made after: a plan
of an earlier step, or one of its own task at its step that the task recorded before it (by
the task's call counts at the plan). Each call is placed once, by bisection over the plans'
steps and over each task's call counts, so a run of 10,000 steps with a plan at each is read
in linear time (comparing every call with every plan took minutes).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from tether.evaluation.journal_keys import call_site
from tether.evaluation.mindlog import MindEntry, MindLog


class PlanIndex:
    """The plans of a run, indexed to find the latest one a call was made after."""

    def __init__(self, plans: Sequence[Mapping[str, Any]]) -> None:
        self.plans = plans
        latest_at: dict[int, int] = {}
        self.tasks: dict[str, list[int]] = {}
        for n, plan in enumerate(plans):
            step = plan.get("step")
            if step is None:
                continue
            latest_at[int(step)] = n
            self.tasks.setdefault(str(plan.get("task_id", "")), []).append(n)
        self.steps = sorted(latest_at)
        self.latest_upto: list[int] = []
        """For each of ``steps``: the latest plan at that step or before."""
        best = -1
        for s in self.steps:
            best = max(best, latest_at[s])
            self.latest_upto.append(best)
        self._counts: dict[tuple[str, str], list[int]] = {}

    def _same_task(self, task_id: str, kind: str, index: int) -> int:
        """The latest plan of the task recorded before its call ``index`` of ``kind``."""
        found = self.tasks.get(task_id)
        if not found:
            return -1
        counts = self._counts.get((task_id, kind))
        if counts is None:
            counts = self._counts[(task_id, kind)] = [_made(self.plans[n], kind) for n in found]
        i = bisect_right(counts, index)
        return found[i - 1] if i else -1

    def latest(self, run_id: str, e: MindEntry) -> int | None:
        """The index of the latest plan entry ``e`` was made after (None: before every plan)."""
        if e.step is None:
            return None
        k = bisect_left(self.steps, e.step) - 1
        n = self.latest_upto[k] if k >= 0 else -1
        kind = "tool:" + e.name if e.kind == "action" else "model" if e.kind == "thought" else ""
        site = call_site(run_id, e.key)
        if kind and site is not None and site.step == e.step:
            n = max(n, self._same_task(site.task_id, kind, site.index))
        return n if n >= 0 else None


def _made(plan: Mapping[str, Any], kind: str) -> int:
    calls = plan.get("calls")
    return int(calls.get(kind, 0) or 0) if isinstance(calls, Mapping) else 0


def plan_windows(log: MindLog) -> tuple[int, int]:
    """(planned steps, planned steps executed) over the run's plans: each plan's steps against
    the tool calls (and the nodes that made journaled calls, once per step) that carried it
    out, matched as multisets by name."""
    plans = log.plans
    index = PlanIndex(plans)
    done: list[Counter[str]] = [Counter() for _ in plans]
    ran: list[set[tuple[int | None, str]]] = [set() for _ in plans]
    for e in log.entries:
        n = index.latest(log.run_id, e)
        if n is None:
            continue
        if e.kind == "action":
            done[n][e.name] += 1
        if e.node is not None:
            ran[n].add((e.step, e.node))
    planned = executed = 0
    for plan, did, nodes in zip(plans, done, ran, strict=True):
        steps = Counter(str(s) for s in plan.get("steps") or ())
        for _, node in nodes:  # a node that ran counts once per step
            did[node] += 1
        planned += sum(steps.values())
        executed += sum((steps & did).values())
    return planned, executed
