"""The public names of ``tether.demo``."""

from __future__ import annotations

import tether.demo


def test_public_api() -> None:
    assert sorted(tether.demo.__all__) == [
        "DEFAULT_TICKET",
        "DemoOptions",
        "DemoOutcome",
        "PaymentProvider",
        "Refund",
        "build_workflow",
        "run_demo",
    ]
    for name in tether.demo.__all__:
        assert getattr(tether.demo, name) is not None
