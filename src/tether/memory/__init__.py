"""The memory plane: context window manager, episodic memory, knowledge graph, consolidation."""

from tether.memory.episodic_memory_backend import InProcessEpisodic
from tether.memory.kg_memory_backend import InProcessKnowledgeGraph
from tether.memory.protocol import (
    DEFAULT_RANKING,
    EpisodicMemory,
    KnowledgeGraph,
    NewMemory,
)
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
    "KEYWORD_ONLY",
    "VECTOR_ONLY",
    "EpisodicMemory",
    "Fact",
    "Hop",
    "InProcessEpisodic",
    "InProcessKnowledgeGraph",
    "KnowledgeGraph",
    "Memory",
    "MemoryScope",
    "NewMemory",
    "Provenance",
    "Ranking",
    "Recalled",
]
