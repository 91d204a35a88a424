"""What the a2a-sdk saves of a task (its history, metadata, artifacts), kept in tether's store.

The SDK saves a whole ``Task`` each time the task changes: the messages of its history (the
user's messages, the agent's earlier status messages), the metadata its status updates carry,
its artifacts. Its status is not kept: ``RunTaskStore`` reads that from the run. A snapshot is
kept in memory (a bounded cache, for the tasks an agent serves now) and written to the store as
a control-plane flag (``ControlStore.set_flag``, one upsert) under ``a2a/<workflow>/<task id>``
with the tenant it belongs to, so a restarted server (or another server process) answers
``GetTask`` with the same history. A save that changes nothing the store holds (a status
update alone) writes nothing. A store without flags keeps snapshots in memory only.

Flags are found by key prefix (``get_flags``), which the SQL stores answer with a scan of the
flags table: fine for the tasks of a server's agents; a table of their own (a schema
migration) would index them and purge them with their runs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from a2a.types import Task
from google.protobuf.json_format import (  # type: ignore[import-untyped]
    MessageToDict,
    ParseDict,
    ParseError,
)

from tether.store.control import ControlStore
from tether.store.protocol import RunStore

PREFIX = "a2a/"
"""Flag keys of the snapshots: ``a2a/<workflow>/<task id>``."""


def _persisted(task: Task) -> dict[str, Any]:
    """The part of a snapshot the store keeps: everything but the status (the run's)."""
    kept = Task()
    kept.CopyFrom(task)
    kept.ClearField("status")
    out: dict[str, Any] = MessageToDict(kept)
    return out


class TaskSnapshots:
    """The SDK's snapshots of one agent's tasks: memory first, the store's flags behind it."""

    def __init__(self, store: RunStore, workflow: str, *, cached: int) -> None:
        self.control = store if isinstance(store, ControlStore) else None
        self.workflow = workflow
        self.cached = cached
        self._held: OrderedDict[str, tuple[str | None, Task]] = OrderedDict()
        self._written: dict[str, dict[str, Any]] = {}
        """What the store holds of each cached task (a save that changes nothing skips it)."""

    def key(self, task_id: str) -> str:
        return f"{PREFIX}{self.workflow}/{task_id}"

    def _hold(self, task_id: str, tenant: str | None, task: Task) -> None:
        self._held[task_id] = (tenant, task)
        self._held.move_to_end(task_id)
        while len(self._held) > self.cached:
            gone, _ = self._held.popitem(last=False)
            self._written.pop(gone, None)

    def cached_copy(self, task_id: str, tenant: str | None) -> Task | None:
        """The snapshot held in memory, if ``tenant``'s (no store read)."""
        held = self._held.get(task_id)
        if held is None or held[0] != tenant:
            return None
        out = Task()
        out.CopyFrom(held[1])
        return out

    async def save(self, task: Task, tenant: str | None) -> None:
        """Keep ``task``'s snapshot, in the store and then in memory (so a snapshot read from
        memory is one the store holds too)."""
        snapshot = Task()
        snapshot.CopyFrom(task)
        if self.control is not None:
            kept = _persisted(task)
            if self._written.get(task.id) != kept:
                await self.control.set_flag(self.key(task.id), {"tenant": tenant, "task": kept})
                self._written[task.id] = kept
        self._hold(task.id, tenant, snapshot)

    async def get(self, task_id: str, tenant: str | None) -> Task | None:
        """The snapshot of ``task_id`` if ``tenant``'s: from memory, else from the store."""
        held = self._held.get(task_id)
        if held is not None:
            return self.cached_copy(task_id, tenant)
        if self.control is None:
            return None
        key = self.key(task_id)
        value = (await self.control.get_flags(key)).get(key)
        if not isinstance(value, dict) or value.get("tenant") != tenant:
            return None
        task = Task()
        try:
            ParseDict(value.get("task") or {}, task, ignore_unknown_fields=True)
        except ParseError:  # written by a newer SDK in a shape this one cannot read
            return None
        self._hold(task_id, tenant, task)
        self._written[task_id] = _persisted(task)
        return self.cached_copy(task_id, tenant)

    async def delete(self, task_id: str, tenant: str | None) -> None:
        """Forget ``tenant``'s snapshot of ``task_id``, in memory and in the store."""
        if await self.get(task_id, tenant) is None:
            return
        self._held.pop(task_id, None)
        self._written.pop(task_id, None)
        if self.control is not None:
            await self.control.set_flag(self.key(task_id), None)
