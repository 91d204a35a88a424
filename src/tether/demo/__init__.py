"""``tether demo``: the offline support copilot that shows the whole system on a laptop.

``run_demo(DemoOptions(...), console, ask)`` drives one demo run to its end (the CLI's
``tether demo``); ``build_workflow()`` is the copilot's graph, to read or reuse.
"""

from tether.demo.copilot import build_workflow
from tether.demo.payments import PaymentProvider, Refund
from tether.demo.session import DEFAULT_TICKET, DemoOptions, DemoOutcome, run_demo

__all__ = [
    "DEFAULT_TICKET",
    "DemoOptions",
    "DemoOutcome",
    "PaymentProvider",
    "Refund",
    "build_workflow",
    "run_demo",
]
