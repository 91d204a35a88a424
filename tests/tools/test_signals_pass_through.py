"""tether's control-flow signals (an interrupt, an approval asked, a guard) are BaseExceptions
that park the run: a tool raising one, sync (in its worker thread) or async, is not failed for
it (the guard against a tool's ``sys.exit`` turned them into ToolErrors, and a governed tool's
escalation let the run complete instead of waiting for a human)."""

from __future__ import annotations

import pytest

from tether.core.errors import EscalationSignal
from tether.tools import ToolExecutor, tool


@tool(scope="read", idempotent=True)
def sync_guard(order: int) -> str:
    """Look at an order."""
    raise EscalationSignal("needs a look", kind="guard")


@tool(scope="read", idempotent=True)
async def async_guard(order: int) -> str:
    """Look at an order."""
    raise EscalationSignal("needs a look", kind="guard")


@pytest.mark.parametrize("guarded", [sync_guard, async_guard], ids=["sync", "async"])
async def test_a_tools_escalation_propagates(guarded: object) -> None:
    executor = ToolExecutor([guarded])  # type: ignore[list-item]
    with pytest.raises(EscalationSignal, match="needs a look"):
        await executor.call(guarded.name, {"order": 1})  # type: ignore[attr-defined]
