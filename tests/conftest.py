"""Fixtures shared across the test packages."""

pytest_plugins = ["tests.small_disk"]
