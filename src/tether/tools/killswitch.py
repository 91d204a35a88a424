"""Kill switches: stop one tool, a whole scope, or every tool of a tenant, at run time, from any
process. Flags live in the store; each worker re-reads them at most ``refresh`` seconds apart, so a
switch takes effect everywhere within a second."""

from __future__ import annotations

import asyncio
from typing import Any

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import ConfigurationError, InvalidInputError, ToolDisabledError
from tether.core.tenants import check_tenant_name
from tether.store.control import ControlStore
from tether.tools.contract import ToolContract
from tether.tools.policies import Scope

PREFIX = "kill:"


def _esc(name: str) -> str:
    """A name as it is spelt in a flag key: ``%`` and ``|`` escaped (a tenant named
    ``a|tool=x`` must not name tool ``x`` of tenant ``a``); other names as they are, so the
    switches stored before stay in force."""
    if "%" not in name and "|" not in name:
        return name
    return name.replace("%", "%25").replace("|", "%7C")


def _key(*, tool: str | None = None, scope: str | None = None, tenant: str | None = None) -> str:
    parts = [
        f"tenant={_esc(tenant)}" if tenant else "tenant=*",
        f"tool={_esc(tool)}" if tool else "",
        f"scope={scope}" if scope else "",
    ]
    return PREFIX + "|".join(p for p in parts if p)


def _target(key: str, flag: Any) -> dict[str, str | None]:
    """What a stored switch covers: from its flag (written since it says), else its key."""
    if isinstance(flag, dict) and "target" in flag:
        t = flag["target"]
        return {"tool": t.get("tool"), "scope": t.get("scope"), "tenant": t.get("tenant")}
    out: dict[str, str | None] = {"tool": None, "scope": None, "tenant": None}
    for part in key.removeprefix(PREFIX).split("|"):
        name, _, value = part.partition("=")
        if name in out and value != "*":
            out[name] = value.replace("%7C", "|").replace("%25", "%")
    return out


def _check_target(
    tool: str | None, scope: str | None, tenant: str | None, *, new: bool = False
) -> None:
    """Refuse a switch that no call would ever match (it would stop nothing, silently). A
    ``new`` one (``disable``) may not name a tool or tenant with a space at an end or a control
    character either (``'send_email '`` is no tool's name); ``enable`` may still lift such a
    switch stored before."""
    if tool is None and scope is None and tenant is None:
        raise ConfigurationError("say what to disable: tool=, scope= and/or tenant=")
    for what, value in (("tool", tool), ("scope", scope), ("tenant", tenant)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigurationError(f"{what}= must be a non-empty name, got {value!r}")
        if new and value is not None and value.strip() != value:
            raise ConfigurationError(
                f"{what}= has a space at an end, got {value!r} (did you mean {value.strip()!r}?)"
            )
        if new and value is not None and not value.isprintable():
            raise ConfigurationError(f"{what}= holds a control character, got {value!r}")
    if new and tenant is not None:
        try:
            check_tenant_name(tenant)
        except InvalidInputError as exc:
            raise ConfigurationError(f"tenant=: {exc}") from None
    if tool is not None and scope is not None:
        raise ConfigurationError(
            f"give tool= or scope=, not both: tool {tool!r} has one scope already (disable "
            "the tool, or the whole scope)"
        )
    if scope is not None and scope not in {s.value for s in Scope}:
        raise ConfigurationError(f"unknown scope {scope!r}; use one of {[s.value for s in Scope]}")


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
        _check_target(tool, scope, tenant, new=True)
        await self.store.set_flag(
            _key(tool=tool, scope=scope, tenant=tenant),
            {
                "reason": reason or "disabled",
                "at": self.clock.now(),
                "target": {"tool": tool, "scope": scope, "tenant": tenant},
            },
        )
        self._read_at = float("-inf")

    async def enable(
        self, *, tool: str | None = None, scope: str | None = None, tenant: str | None = None
    ) -> None:
        """Lift the switch ``disable`` set with the same arguments."""
        _check_target(tool, scope, tenant)
        await self.store.set_flag(_key(tool=tool, scope=scope, tenant=tenant), None)
        self._read_at = float("-inf")

    async def switches(self) -> list[dict[str, Any]]:
        """The switches in force, read from the store now: what each covers (``tool``,
        ``scope``, ``tenant``; None: any), its ``reason`` and when it was set (``at``)."""
        flags = await self.store.get_flags(PREFIX)
        out = []
        for key, flag in sorted(flags.items()):
            if flag is None:
                continue
            reason = flag.get("reason", "disabled") if isinstance(flag, dict) else "disabled"
            at = flag.get("at") if isinstance(flag, dict) else None
            out.append({**_target(key, flag), "reason": reason, "at": at})
        return out

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
