"""The supervisor's task list, pure: its schema, the conflict resolver for tasks that depend
on each other, and which tasks are ready.

The resolver keeps what can run: a dependency on an unknown task is dropped, and a cycle
(tasks waiting on each other, which could never start) is broken by dropping the dependency
that closes it, the one of the task listed later. Each change is reported as a conflict, so
the run's state says what the supervisor asked for and what was done instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field


class Assignment(BaseModel):
    id: str = Field(min_length=1)
    agent: str
    task: str
    depends_on: list[str] = Field(default_factory=list)


class Assignments(BaseModel):
    tasks: list[Assignment] = Field(min_length=1)


def resolve(tasks: Sequence[Assignment]) -> tuple[list[Assignment], list[str]]:
    """Tasks whose dependencies form a DAG over known tasks, and the conflicts resolved."""
    conflicts: list[str] = []
    known = {t.id for t in tasks}
    order = {t.id: i for i, t in enumerate(tasks)}
    deps: dict[str, list[str]] = {}
    for t in tasks:
        keep = []
        for d in t.depends_on:
            if d not in known:
                conflicts.append(f"{t.id} depends on unknown task {d}: dependency dropped")
            elif d == t.id:
                conflicts.append(f"{t.id} depends on itself: dependency dropped")
            elif d not in keep:
                keep.append(d)
        deps[t.id] = keep
    while (cycle := find_cycle(deps)) is not None:
        # the edge of the cycle leaving the task listed last is the one dropped
        last = max(cycle, key=lambda n: order[n])
        nxt = cycle[(cycle.index(last) + 1) % len(cycle)]
        deps[last].remove(nxt)
        conflicts.append(
            f"{' -> '.join([*cycle, cycle[0]])} wait on each other: {last} no longer waits "
            f"for {nxt}"
        )
    resolved = [t.model_copy(update={"depends_on": deps[t.id]}) for t in tasks]
    return resolved, conflicts


def find_cycle(deps: Mapping[str, list[str]]) -> list[str] | None:
    """A cycle of the dependency graph as a list of task ids, or None."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        colour[n] = 1
        stack.append(n)
        for d in deps.get(n, []):
            if colour.get(d) == 1:
                return stack[stack.index(d) :]
            if colour.get(d) is None and (found := visit(d)) is not None:
                return found
        stack.pop()
        colour[n] = 2
        return None

    for n in deps:
        if colour.get(n) is None and (found := visit(n)) is not None:
            return found
    return None


def ready(tasks: Sequence[Assignment], outputs: Mapping[str, str]) -> list[Assignment]:
    return [t for t in tasks if t.id not in outputs and all(d in outputs for d in t.depends_on)]
