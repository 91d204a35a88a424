"""ToolRegistry: the named set of tools a run may call."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tether.core.errors import ConfigurationError, ToolNotFoundError
from tether.tools.contract import ToolContract


class ToolRegistry:
    def __init__(self, tools: Iterable[ToolContract] = ()) -> None:
        self._tools: dict[str, ToolContract] = {}
        for t in tools:
            self.add(t)

    def add(self, contract: ToolContract) -> ToolContract:
        if not isinstance(contract, ToolContract):
            raise ConfigurationError(
                f"expected a ToolContract (decorate the function with @tool), got {contract!r}"
            )
        if contract.name in self._tools and self._tools[contract.name] is not contract:
            raise ConfigurationError(f"a tool named {contract.name!r} is already registered")
        self._tools[contract.name] = contract
        return contract

    def get(self, name: str) -> ToolContract:
        try:
            return self._tools[name]
        except KeyError:
            raise ToolNotFoundError(
                f"no tool named {name!r}; available: {sorted(self._tools)}", tool=name
            ) from None

    def names(self) -> list[str]:
        return sorted(self._tools)

    def specs(self) -> list[dict[str, Any]]:
        return [self._tools[n].spec() for n in self.names()]

    def __iter__(self) -> Iterator[ToolContract]:
        return iter([self._tools[n] for n in self.names()])

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)
