"""An event loop on a thread of its own, driven from blocking code: ``SyncRuntime``'s bridge.

``LoopThread.call(coro)`` runs a coroutine on the loop and blocks until it finishes; being
interrupted while blocked (Ctrl-C) cancels the coroutine. ``iterate(stream)`` turns an async
iterator into a plain one, closing the stream when the caller stops early. Calling from the
loop's own thread (it would wait on itself forever) or after ``stop()`` raises
``ConfigurationError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

from tether.core.errors import ConfigurationError

__all__ = ["DRAIN_TIMEOUT", "LoopThread"]

T = TypeVar("T")
DRAIN_TIMEOUT = 10.0
"""Seconds ``stop()`` waits for worker threads still running (``to_thread``) to finish."""


class LoopThread:
    """A private event loop running forever on a daemon thread until ``stop()``."""

    def __init__(self, name: str = "tether-sync") -> None:
        self.stopped = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop; block until it returns (or raises)."""
        if self.stopped:
            coro.close()
            raise ConfigurationError("this SyncRuntime is closed; open a new one")
        if threading.current_thread() is self._thread:
            coro.close()
            raise ConfigurationError(
                "a SyncRuntime was called from its own event loop (inside a node it runs), "
                "where it would wait on itself forever; use the async Runtime there, awaited "
                "(hand it to nodes through deps)"
            )
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()  # interrupted while waiting (Ctrl-C): stop what we waited for
            raise

    def iterate(self, stream: AsyncIterator[T]) -> Iterator[T]:
        """``stream``'s items one by one; leaving early closes the stream on the loop."""
        try:
            while True:
                try:
                    yield self.call(_next(stream))
                except StopAsyncIteration:
                    return
        finally:
            if self.stopped:
                pass
            elif threading.current_thread() is self._thread:  # collected on the loop itself
                asyncio.run_coroutine_threadsafe(_aclose(stream), self._loop)
            else:
                self.call(_aclose(stream))

    def stop(self) -> None:
        """Finish the loop's async generators and worker threads, stop it, join the thread.
        Stopping twice is a no-op."""
        if self.stopped:
            return
        self.stopped = True
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(_drain(self._loop), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


async def _next(stream: AsyncIterator[T]) -> T:
    return await anext(stream)


async def _aclose(stream: AsyncIterator[Any]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


async def _drain(loop: asyncio.AbstractEventLoop) -> None:
    await loop.shutdown_asyncgens()
    # a node's thread (``thread=True``) cannot be cancelled: do not wait on it forever
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(loop.shutdown_default_executor(), DRAIN_TIMEOUT)
