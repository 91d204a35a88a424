"""The context window, tools and dreamer names tether.memory exports (the store's names are
pinned with the backends)."""

from __future__ import annotations

import tether.memory

PLANE_NAMES = {
    "DREAMER",
    "CompactionPlan",
    "CompactionPolicy",
    "ContextWindow",
    "Conversation",
    "DreamSettings",
    "DropToolResults",
    "EstimateCounter",
    "Fitted",
    "MemoryPlane",
    "ModelTokenCounter",
    "SlidingWindow",
    "Summarize",
    "TemplateCounter",
    "TokenCounter",
    "consolidation_audit",
    "counter_for",
    "dreamer_workflow",
    "memory_tools",
}


def test_plane_names_are_exported() -> None:
    assert set(tether.memory.__all__) >= PLANE_NAMES
    for name in PLANE_NAMES:
        assert getattr(tether.memory, name) is not None
