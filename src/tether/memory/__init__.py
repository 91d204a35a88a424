"""The memory plane: context window manager, episodic memory, knowledge graph, consolidation."""

from tether.memory.compaction import (
    CompactionPlan,
    CompactionPolicy,
    DropToolResults,
    SlidingWindow,
)
from tether.memory.compaction_summary import Summarize
from tether.memory.consolidation import DreamSettings
from tether.memory.context_window import ContextWindow, Fitted
from tether.memory.conversation import Conversation
from tether.memory.dreamer import DREAMER, dreamer_workflow
from tether.memory.dreamer_audit import consolidation_audit
from tether.memory.episodic_memory_backend import InProcessEpisodic
from tether.memory.kg_memory_backend import InProcessKnowledgeGraph
from tether.memory.open import InProcessMemory, open_memory
from tether.memory.plane import MemoryPlane
from tether.memory.protocol import (
    DEFAULT_RANKING,
    EpisodicMemory,
    KnowledgeGraph,
    MemoryBackend,
    NewMemory,
)
from tether.memory.sqlite_episodic import SqliteMemory
from tether.memory.tokens import (
    EstimateCounter,
    ModelTokenCounter,
    TemplateCounter,
    TokenCounter,
    counter_for,
)
from tether.memory.tools import memory_tools
from tether.memory.types import (
    KEYWORD_ONLY,
    VECTOR_ONLY,
    Fact,
    Hop,
    Memory,
    MemoryScope,
    Provenance,
    Ranking,
    Recalled,
)

__all__ = [
    "DEFAULT_RANKING",
    "DREAMER",
    "KEYWORD_ONLY",
    "VECTOR_ONLY",
    "CompactionPlan",
    "CompactionPolicy",
    "ContextWindow",
    "Conversation",
    "DreamSettings",
    "DropToolResults",
    "EpisodicMemory",
    "EstimateCounter",
    "Fact",
    "Fitted",
    "Hop",
    "InProcessEpisodic",
    "InProcessKnowledgeGraph",
    "InProcessMemory",
    "KnowledgeGraph",
    "Memory",
    "MemoryBackend",
    "MemoryPlane",
    "MemoryScope",
    "ModelTokenCounter",
    "NewMemory",
    "Provenance",
    "Ranking",
    "Recalled",
    "SlidingWindow",
    "SqliteMemory",
    "Summarize",
    "TemplateCounter",
    "TokenCounter",
    "consolidation_audit",
    "counter_for",
    "dreamer_workflow",
    "memory_tools",
    "open_memory",
]
