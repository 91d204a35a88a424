"""The Runtime's face of durable timers and cron schedules (``tether.graph.timers``,
``tether.graph.schedules``).

``TimersAndSchedules`` is mixed into ``tether.graph.runtime.Runtime``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from tether.graph.builder import Workflow
from tether.graph.schedules import fire_schedules, put_schedule, remove_schedule
from tether.graph.timers import fire_timers, take_back
from tether.store.timers import Schedule

if TYPE_CHECKING:
    from tether.graph.runtime import Runtime


class TimersAndSchedules:
    """Fire due timers and cron slots, schedule runs, take a sleeping run back when due."""

    draining: bool
    _workflows: dict[str, Workflow]
    _background: list[asyncio.Task[Any]]

    if TYPE_CHECKING:

        async def _ensure_open(self) -> None: ...

        def register(self, wf: Workflow) -> Workflow: ...

    def _take_back_when_due(self, run_id: str, until: float) -> None:
        """A run parked by a durable sleep in a runtime that claims nothing (``recover=False``,
        e.g. ``wf.invoke``): this runtime takes it back when due, unless another did first."""
        rt = cast("Runtime", self)
        delay = max(0.0, until - rt.clock.now())  # measured now, not when the task first runs
        task = asyncio.create_task(take_back(rt, run_id, until, delay=delay))
        self._background.append(task)

        def done(t: asyncio.Task[None]) -> None:
            if t in self._background:
                self._background.remove(t)

        task.add_done_callback(done)

    async def fire_timers(self) -> int:
        """Fire the due timers (interrupt timeouts, ...) and cron slots this runtime can
        handle; a runtime with ``recover=True`` does so every ``poll_interval`` by itself.
        Returns how many fired here. A runtime that knows no workflow fires nothing (a timer's
        handler continues a run: another runtime that knows its workflow fires it)."""
        await self._ensure_open()
        if not self._workflows or self.draining:
            return 0
        rt = cast("Runtime", self)
        fired = await fire_timers(rt, workflows=self._workflows)
        return fired + await fire_schedules(rt, self._workflows)

    async def schedule(
        self,
        cron: str,
        wf: Workflow,
        input: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        enabled: bool = True,
        queue: str = "default",
        priority: int = 0,
        tenant: str | None = None,
        timezone: str = "UTC",
    ) -> Schedule:
        """Start a run of ``wf`` with ``input`` at every slot of ``cron`` (5 fields, or 6 with
        seconds last), read as a wall clock in ``timezone`` (an IANA name: ``"Europe/Paris"``;
        each wall-clock slot fires once across daylight-saving changes), exactly once per slot
        across every runtime on the store; the runs
        are enqueued for any runtime with ``recover=True`` that knows ``wf``. The schedule is
        stored under ``name`` (default: the workflow's name); scheduling it again with the
        same expression keeps its next slot. Its runs go on ``queue`` with ``priority`` and
        belong to ``tenant``, as ``start`` takes them. See ``tether.graph.schedules``."""
        await self._ensure_open()
        self.register(wf)
        return await put_schedule(
            cast("Runtime", self),
            cron,
            wf,
            input,
            name=name,
            enabled=enabled,
            queue=queue,
            priority=priority,
            tenant=tenant,
            timezone=timezone,
        )

    async def unschedule(self, name: str) -> bool:
        """Remove the schedule ``name`` (no slot of it fires after); False when there is none.
        The runs it started are not touched."""
        await self._ensure_open()
        return await remove_schedule(cast("Runtime", self), name)
