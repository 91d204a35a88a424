"""The one sync bridge: drive a Runtime from plain scripts (its event loop runs in a thread)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from tether.graph.runtime import Runtime

T = TypeVar("T")


class SyncRuntime:
    """``with SyncRuntime("sqlite:///runs.db") as rt: rt.run(wf, {...})``.

    Every async Runtime method has a blocking twin here with the same arguments.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tether-sync", daemon=True
        )
        self._thread.start()
        self.runtime: Runtime = self._call(self._make(args, kwargs))

    @staticmethod
    async def _make(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Runtime:
        return await Runtime(*args, **kwargs).open()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.runtime, name)
        if not asyncio.iscoroutinefunction(attr):
            return attr

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self._call(attr(*args, **kwargs))

        blocking.__name__ = name
        blocking.__doc__ = attr.__doc__
        return blocking

    def events(self, run_id: str, *, follow: bool = False) -> list[Any]:
        async def collect() -> list[Any]:
            return [ev async for ev in self.runtime.events(run_id, follow=follow)]

        return self._call(collect())

    def close(self) -> None:
        if self._loop.is_running():
            self._call(self.runtime.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    def __enter__(self) -> SyncRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
