"""A fake clock for asyncio: an event loop whose time jumps to the next timer whenever nothing
is ready to run, so ``asyncio.sleep``, ``asyncio.timeout`` and ``asyncio.wait(timeout=...)``
take no real time and happen in the order their deadlines say, however loaded the machine is.

``@virtual_time`` runs an ``async def`` test on such a loop (the test becomes a plain function,
so pytest-asyncio leaves it alone). Inside, ``asyncio.get_running_loop().time()`` is the
virtual clock: assert on it instead of ``time.perf_counter()``. Only for code that waits on
timers and coroutines: real I/O and threads are still waited for, but a timer due meanwhile
fires at once (time does not pass while the loop waits for them).
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _JumpingSelector:
    """Wraps the loop's selector: when no I/O is ready and the loop would sleep until its
    next timer, move the clock there instead of sleeping."""

    def __init__(self, inner: selectors.BaseSelector, loop: VirtualTimeLoop) -> None:
        self._inner = inner
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timers: only I/O (a thread's callback) can wake the loop
            return self._inner.select(None)
        self._loop.advance(timeout)
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        self._selector = _JumpingSelector(self._selector, self)  # type: ignore[has-type]

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)


def virtual_time(test: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Run the ``async def`` test on a fresh :class:`VirtualTimeLoop`."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> T:
        loop = VirtualTimeLoop()
        try:
            return loop.run_until_complete(test(*args, **kwargs))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    return run


def now() -> float:
    """The running loop's clock (virtual under ``@virtual_time``)."""
    return asyncio.get_running_loop().time()
