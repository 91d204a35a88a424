"""The demo shop's orders, and the refund policy its support agents follow."""

from __future__ import annotations

from typing import Any

ORDERS: dict[int, dict[str, Any]] = {
    1234: {
        "order_id": 1234,
        "customer": "Dana Reyes",
        "item": "Noise-cancelling headphones",
        "total_cents": 14900,
        "charges": [
            {"charge_id": "ch_1234_7f3a", "amount_cents": 14900, "at": "2026-11-28T10:02:11Z"},
            {"charge_id": "ch_1234_9c1e", "amount_cents": 14900, "at": "2026-11-28T10:02:14Z"},
        ],
    },
    1235: {
        "order_id": 1235,
        "customer": "Sam Okafor",
        "item": "USB-C dock",
        "total_cents": 8900,
        "charges": [
            {"charge_id": "ch_1235_2b77", "amount_cents": 8900, "at": "2026-11-29T16:40:02Z"},
        ],
    },
}

POLICIES = [
    "Refund policy: a duplicate charge (the same amount charged twice for one order within "
    "10 minutes) is refunded in full to the original payment method, the later charge first. "
    "Refunds above $100.00 need a support lead's approval.",
    "Shipping policy: orders ship within 2 business days; tracking numbers are emailed.",
    "Returns policy: items can be returned within 30 days of delivery for a full refund.",
]

APPROVAL_THRESHOLD_CENTS = 10000
"""Refunds above this need a support lead's signed approval."""


def duplicate_charges(order: dict[str, Any]) -> list[dict[str, Any]]:
    """The charges of an order beyond its first for the same amount (the later ones)."""
    seen: set[int] = set()
    extra = []
    for charge in sorted(order.get("charges", []), key=lambda c: c["at"]):
        if charge["amount_cents"] in seen:
            extra.append(charge)
        seen.add(charge["amount_cents"])
    return extra


def dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"
