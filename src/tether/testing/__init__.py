"""Test helpers for tether users and tether's own suite: fakes and conformance suites.

The ``tether`` package never imports this one. ``store_conformance`` needs pytest and
pytest-asyncio; import it from test code only.
"""

from __future__ import annotations

from tether.testing.clock import FakeClock

__all__ = ["FakeClock"]
