"""Kill switches: stop one tool, a whole scope, or every tool of a tenant, at run time, from any
process. Flags live in the store; each worker re-reads them at most ``refresh`` seconds apart, so a
switch takes effect everywhere within a second."""

from __future__ import annotations

import asyncio
from typing import Any

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ToolDisabledError
from tether.store.control import ControlStore
from tether.tools.contract import ToolContract

PREFIX = "kill:"


def _key(*, tool: str | None = None, scope: str | None = None, tenant: str | None = None) -> str:
    parts = [
        f"tenant={tenant}" if tenant else "tenant=*",
        f"tool={tool}" if tool else "",
        f"scope={scope}" if scope else "",
    ]
    return PREFIX + "|".join(p for p in parts if p)


class KillSwitch:
    def __init__(
        self, store: ControlStore, *, refresh: float = 0.5, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.store = store
        self.refresh = refresh
        self.clock = clock
        self._flags: dict[str, Any] = {}
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def disable(
        self,
        *,
        tool: str | None = None,
        scope: str | None = None,
        tenant: str | None = None,
        reason: str = "",
    ) -> None:
        """Disable a tool, a scope (read/write/destructive) or, with only ``tenant``, every tool
        of that tenant. Without ``tenant`` the switch applies to all tenants."""
        if tool is None and scope is None and tenant is None:
            raise ValueError("say what to disable: tool=, scope= and/or tenant=")
        await self.store.set_flag(
            _key(tool=tool, scope=scope, tenant=tenant),
            {"reason": reason or "disabled", "at": self.clock.now()},
        )
        self._read_at = float("-inf")

    async def enable(
        self, *, tool: str | None = None, scope: str | None = None, tenant: str | None = None
    ) -> None:
        await self.store.set_flag(_key(tool=tool, scope=scope, tenant=tenant), None)
        self._read_at = float("-inf")

    async def _current(self) -> dict[str, Any]:
        if self.clock.now() - self._read_at >= self.refresh:
            async with self._lock:
                if self.clock.now() - self._read_at >= self.refresh:
                    self._flags = await self.store.get_flags(PREFIX)
                    self._read_at = self.clock.now()
        return self._flags

    async def check(self, contract: ToolContract, tenant: str | None = None) -> None:
        """Raise ToolDisabledError if any switch covers this call."""
        flags = await self._current()
        if not flags:
            return
        candidates = []
        for t in ("*", tenant) if tenant else ("*",):
            candidates += [
                _key(tool=contract.name, tenant=None if t == "*" else t),
                _key(scope=contract.scope.value, tenant=None if t == "*" else t),
            ]
        if tenant:
            candidates.append(_key(tenant=tenant))
        for key in candidates:
            flag = flags.get(key)
            if flag is not None:
                what = key.removeprefix(PREFIX).replace("|", ", ")
                raise ToolDisabledError(
                    f"tool {contract.name!r} is disabled by kill switch ({what}): "
                    f"{flag.get('reason', 'disabled')}",
                    tool=contract.name,
                )
