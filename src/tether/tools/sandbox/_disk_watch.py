"""The parent's watch over a scratch directory no tmpfs caps (no mount namespace: the weak
isolation mode): its usage measured every :data:`.scratchfs.POLL_S`, the code killed over
``max_disk_bytes`` or ``max_disk_files``. Not a hard bound: what the code writes between two
measurements is the overshoot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .limits import SandboxLimits
from .scratchfs import POLL_S, usage

__all__ = ["over_limits", "watch_scratch"]


def over_limits(scratch: str, limits: SandboxLimits) -> bool:
    """Whether ``scratch`` holds more than the limits allow (allocated space, entries)."""
    used, entries = usage(scratch, limits.max_disk_files)
    return used > limits.max_disk_bytes or entries > limits.max_disk_files


async def watch_scratch(
    scratch: str,
    limits: SandboxLimits,
    capped: Callable[[], bool],
    kill: Callable[[], None],
) -> None:
    """Until cancelled, or ``capped()`` says the launcher covered scratch with its tmpfs (the
    host directory then holds only the input files): ``kill()`` once it is over the limits."""
    while True:
        await asyncio.sleep(POLL_S)
        if capped():
            return
        if await asyncio.to_thread(over_limits, scratch, limits):
            kill()
            return
