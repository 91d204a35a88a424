"""A tool whose argument or return type pydantic cannot describe is refused when it is made,
with tether's ConfigurationError naming the tool (it was pydantic's own schema error)."""

from __future__ import annotations

import pytest

from tether.core.errors import ConfigurationError
from tether.tools import tool


class Opaque:
    """A plain class: no schema, no validator."""


def test_an_argument_type_without_a_schema_is_a_configuration_error() -> None:
    def lookup(thing: Opaque) -> int:
        """Look a thing up."""
        return 1

    with pytest.raises(ConfigurationError, match="tool 'lookup': its arguments cannot be") as e:
        tool(lookup)
    assert "Opaque" in str(e.value) and "arbitrary_types_allowed" not in str(e.value)


def test_a_return_type_without_a_schema_is_a_configuration_error() -> None:
    def make(n: int) -> Opaque:
        """Make a thing."""
        return Opaque()

    with pytest.raises(ConfigurationError, match="tool 'make': its return type") as e:
        tool(make)
    assert "annotate the return as Any" in str(e.value)
