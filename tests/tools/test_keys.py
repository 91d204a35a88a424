"""The idempotency key a tool gets from the executor: its rule's, the run's, or (outside a run)
a one-off key its retries share; a broken rule is a typed error, never a crash."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tether.core.errors import ConfigurationError, ToolError, ToolTransientError
from tether.tools import ToolExecutor, ToolRetry, tool

FAST = ToolRetry(max_attempts=3, initial_interval=0.001, jitter=False)


def flaky_charge(seen: list[str | None]) -> Any:
    @tool(scope="write", idempotent=True, retry=FAST)
    async def charge(order_id: str, idempotency_key: str) -> str:
        """Fails its first attempt of each call with a transient error."""
        seen.append(idempotency_key)
        if len(seen) % 2 == 1:
            raise ToolTransientError("upstream 503", status=503)
        return f"charged {order_id}"

    return charge


async def test_outside_a_run_each_call_has_a_key_its_retries_share() -> None:
    seen: list[str | None] = []
    executor = ToolExecutor([flaky_charge(seen)])
    first = await executor.call("charge", {"order_id": "A1"})
    second = await executor.call("charge", {"order_id": "A1"})
    assert first.ok and second.ok and first.attempts == second.attempts == 2
    assert all(isinstance(k, str) and k for k in seen)
    assert seen[0] == seen[1] == first.key, "a retry is the same call: the same key"
    assert seen[2] == seen[3] == second.key
    assert first.key != second.key, "another call: another key"


async def test_a_given_key_is_used_and_a_rule_wins_over_it() -> None:
    seen: list[str | None] = []

    @tool(scope="write", idempotent=True, idempotency_key=lambda a: f"order-{a['order_id']}")
    async def ruled(order_id: str, idempotency_key: str) -> str:
        """Keyed by its order."""
        seen.append(idempotency_key)
        return "ok"

    executor = ToolExecutor([flaky_charge(seen), ruled])
    assert (await executor.call("charge", {"order_id": "A1"}, key="mine")).key == "mine"
    assert (await executor.call("ruled", {"order_id": "A1"}, key="mine")).key == "order-A1"
    assert seen == ["mine", "mine", "order-A1"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (lambda a: a["missing"], "its idempotency_key rule raised KeyError"),
        (lambda a: 42, "returned 42; it must return a non-empty string"),
        (lambda a: "", "returned ''; it must return a non-empty string"),
    ],
)
async def test_a_broken_key_rule_is_a_typed_error_not_a_crash(rule: Any, message: str) -> None:
    calls: list[str] = []

    @tool(scope="write", idempotent=True, idempotency_key=rule)
    async def charge(order_id: str, idempotency_key: str) -> str:
        """Never reached: the key comes first."""
        calls.append(idempotency_key)
        return "ok"

    res = await ToolExecutor([charge]).call("charge", {"order_id": "A1"})
    assert not res.ok and type(res.error) is ToolError and message in str(res.error)
    assert res.error.tool == "charge" and not res.error.retryable and calls == []
    with pytest.raises(ToolError, match="idempotency_key rule"):
        charge.derive_key({"order_id": "A1"})


async def test_a_rule_of_two_arguments_keys_each_tenants_ids_apart() -> None:
    """Order 1234 of tenant acme and order 1234 of tenant globex are two refunds: a rule that
    takes the tenant keeps their keys apart, so a provider deduping on the key pays both."""
    provider: dict[str, str] = {}

    @tool(
        scope="write",
        idempotent=True,
        idempotency_key=lambda a, tenant: f"{tenant}:refund-{a['order_id']}",
    )
    async def refund(order_id: str, idempotency_key: str) -> str:
        """Refund an order."""
        return provider.setdefault(idempotency_key, f"refund {len(provider) + 1}")

    executor = ToolExecutor([refund])
    acme = await executor.call("refund", {"order_id": "1234"}, tenant="acme")
    globex = await executor.call("refund", {"order_id": "1234"}, tenant="globex")
    again = await executor.call("refund", {"order_id": "1234"}, tenant="acme")
    assert (acme.key, globex.key) == ("acme:refund-1234", "globex:refund-1234")
    assert (acme.value, globex.value, again.value) == ("refund 1", "refund 2", "refund 1")
    assert refund.derive_key({"order_id": "9"}) == "None:refund-9"  # no tenant: None


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("order_id", "must be a function of the arguments, got 'order_id'"),
        (lambda: "k", "has 0 positional"),
        (lambda a, tenant, extra: "k", "has 3 positional (3 required)"),
    ],
)
def test_what_cannot_be_a_key_rule_is_refused_when_the_tool_is_made(
    rule: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):

        @tool(scope="write", idempotent=True, idempotency_key=rule)
        async def charge(order_id: str) -> str:
            """Charge an order."""
            return "ok"


def test_rules_with_defaults_or_star_args_are_called_with_the_arguments_only() -> None:
    @tool(idempotency_key=lambda a, *rest: f"k-{a['order_id']}")
    def starred(order_id: str) -> str:
        """Read."""
        return order_id

    @tool(idempotency_key=lambda a, prefix="p": f"{prefix}-{a['order_id']}")
    def defaulted(order_id: str) -> str:
        """Read."""
        return order_id

    assert starred.derive_key({"order_id": "1"}, "acme") == "k-1"
    assert defaulted.derive_key({"order_id": "1"}, "acme") == "acme-1"
