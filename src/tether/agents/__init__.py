"""Agent patterns: ReAct, ReWOO, supervisor, fork-join of child runs, blackboard, reflection, governance board, semantic router."""
