"""``ToolResult.for_model()`` is the text a model loop hands back after every call; outside a
run nothing journals a tool's value, so a tool may return an object JSON cannot write. That
raised a raw ``TypeError`` out of ``for_model()`` (the agent loop crashed on a call that
succeeded); it is now the value's ``str()``."""

from __future__ import annotations

from typing import Any

from tether.tools import ToolExecutor, tool


class Receipt:
    def __init__(self, order: str) -> None:
        self.order = order

    def __str__(self) -> str:
        return f"receipt for {self.order}"


class Broken:
    def __str__(self) -> str:
        raise ValueError("no")


@tool(scope="read")
def receipt(order: str) -> Any:
    """A receipt object."""
    return Receipt(order)


@tool(scope="read")
def broken(order: str) -> Any:
    """An object nobody can print."""
    return Broken()


async def test_a_value_json_cannot_write_is_given_as_text() -> None:
    tools = ToolExecutor([receipt, broken])
    res = await tools.call("receipt", {"order": "1234"})
    assert res.ok and isinstance(res.value, Receipt)
    assert res.for_model() == "receipt for 1234"
    res = await tools.call("broken", {"order": "1234"})
    assert res.ok and res.for_model() == "<a Broken whose str() raised ValueError>"
    res = await tools.call("receipt", {"order": 5})
    assert res.for_model().startswith("error (ToolArgumentsError): ")
