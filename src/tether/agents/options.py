"""Checks shared by the patterns' option classes: bad settings fail when the graph is built."""

from __future__ import annotations

from typing import Any

from tether.core.errors import ConfigurationError
from tether.core.governor import GovernanceConfig
from tether.llm.model import Model
from tether.tools.executor import ToolExecutor


def need_model(owner: str, field: str, value: Any) -> None:
    if not isinstance(value, Model):
        raise ConfigurationError(
            f"{owner}.{field} must be a tether.llm Model (e.g. model_from_spec() or a "
            f"ScriptedModel in tests), got {type(value).__name__}"
        )


def need_tools(owner: str, value: Any) -> None:
    if not isinstance(value, ToolExecutor):
        raise ConfigurationError(
            f"{owner}.tools must be a tether.tools.ToolExecutor over the tools it may call, "
            f"got {type(value).__name__}"
        )


def need_count(owner: str, field: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{owner}.{field} must be an int >= {minimum}, got {value!r}")


def need_governance(owner: str, value: Any) -> None:
    if value is not None and not isinstance(value, GovernanceConfig):
        raise ConfigurationError(
            f"{owner}.governance must be a tether.governance.Governance or None, got "
            f"{type(value).__name__}"
        )
