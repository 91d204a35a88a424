"""The memory plane: context window manager, episodic memory, knowledge graph, consolidation."""

from tether.memory.episodic_memory_backend import InProcessEpisodic
from tether.memory.kg_memory_backend import InProcessKnowledgeGraph
from tether.memory.open import InProcessMemory, open_memory
from tether.memory.protocol import (
    DEFAULT_RANKING,
    EpisodicMemory,
    KnowledgeGraph,
    MemoryBackend,
    NewMemory,
)
from tether.memory.sqlite_episodic import SqliteMemory
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
    "InProcessMemory",
    "KnowledgeGraph",
    "Memory",
    "MemoryBackend",
    "MemoryScope",
    "NewMemory",
    "Provenance",
    "Ranking",
    "Recalled",
    "SqliteMemory",
    "open_memory",
]
