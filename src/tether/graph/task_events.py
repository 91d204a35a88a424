"""A step's task events, journaled with the tasks' node writes until a commit holds them.

In a parallel step each finished task's writes are journaled as it finishes (``NodeWrite``),
so a run continued after a crash mid-step does not run that task again. Its events (a tool
call, a model call's usage, a custom event) travel in the same write: the runtime that finishes
the step commits them with it. Once a commit of the step holds them while keeping the step's
writes (an interrupt, a failure, a durable sleep), the writes are stored with their events
emptied in that very commit, so a later resume of the step does not commit them twice.
"""

from __future__ import annotations

from dataclasses import replace

from tether.store.types import Commit, NodeWrite


class HeldTaskEvents:
    """The node writes of this execution whose stored events wait for a commit."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[tuple[int, str], NodeWrite] = {}

    def hold(self, write: NodeWrite) -> None:
        """``write`` is stored with events that are now pending in the run loop."""
        if write.events:
            self._held[(write.step, write.task_id)] = write
        else:
            self._held.pop((write.step, write.task_id), None)

    def settle(self, commit: Commit) -> None:
        """``commit`` carries the pending events: the writes it keeps are stored emptied."""
        if not self._held:
            return
        kept = [
            replace(w, events=[])
            for (step, _task), w in self._held.items()
            if step != commit.clear_node_writes_for_step
        ]
        if kept:
            commit.node_writes = [*commit.node_writes, *kept]
        self._held.clear()
