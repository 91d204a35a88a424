"""When a runtime's claim loop runs next: at once on a wake-up, else after its poll interval.

The store announces runs that become claimable (``tether.store.wakeup``): a submit, a release,
a park until a time, a resume for any worker. ``WakeSignal`` hears those announcements for the
queues its runtime serves, from any thread, and lets the claim loop wait until one arrives, the
earliest announced ``available_at`` it knows of comes, or the poll interval (the fallback for
what nobody announces: an expired lease) passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Collection

from tether.core.clock import Clock


class WakeSignal:
    """The claim loop's alarm clock (one per runtime, used on the runtime's event loop)."""

    def __init__(self, queues: Collection[str] | None, clock: Clock) -> None:
        self.queues = frozenset(queues) if queues is not None else None
        self.clock = clock
        self._poke = asyncio.Event()
        """Set to make a waiting ``wait`` look again (claim now, or an earlier due time)."""
        self._claim = False
        self._due = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self.after_slot = False
        """The last claim found work (or no free slot): claim again when a run ends here."""

    def bind(self) -> None:
        """Remember the running loop: announcements from other threads are handed to it."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()

    def hear(self, queue: str, available_at: float) -> None:
        """A store's announcement (``store.wakeup.Listener``); any thread."""
        if self.queues is not None and queue and queue not in self.queues:
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._thread:
            self._note(available_at)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._note, available_at)

    def _note(self, available_at: float) -> None:
        if available_at <= self.clock.now():
            self.wake()
        elif available_at < self._due:
            self._due = available_at
            self._poke.set()  # a waiter sleeps until this earlier time now

    def wake(self) -> None:
        """Claim now (the runtime's loop thread)."""
        self._claim = True
        self._poke.set()

    def slot_freed(self) -> None:
        """A run stopped executing here: claim again if the last claim found more work."""
        if self.after_slot:
            self.after_slot = False
            self.wake()

    async def wait(self, poll_interval: float) -> None:
        """Until a wake-up, the earliest known ``available_at``, or ``poll_interval``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + poll_interval
        while not self._claim:
            timeout = min(end - loop.time(), self._due - self.clock.now())
            if timeout <= 0:
                break
            self._poke.clear()
            # not asyncio.wait_for: on 3.11 it can swallow a cancellation that races with the
            # event (close() would then wait on a claim loop gone back to sleep)
            alarm = loop.call_later(timeout, self._poke.set)
            try:
                await self._poke.wait()
            finally:
                alarm.cancel()
        self._claim = False
        if self._due <= self.clock.now():
            self._due = math.inf
        # always yield: with a deadline already past nothing above awaited, and a claim loop
        # over a store whose reads do not yield (SQLite) would then never let a signal in
        await asyncio.sleep(0)
