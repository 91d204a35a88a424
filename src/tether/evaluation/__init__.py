"""Evaluation: mind log, agent KPIs, semantic drift monitor, shadow-mode model comparison."""
