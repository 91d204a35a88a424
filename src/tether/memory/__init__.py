"""The memory plane: context window manager, episodic memory, knowledge graph, consolidation."""
