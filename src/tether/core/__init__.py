"""Core vocabulary of tether: ids, clock, errors, serde, lifecycle and reducers.

This package imports nothing else of tether; every other plane builds on it.
"""
