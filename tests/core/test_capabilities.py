"""``has_capability``: a protocol isinstance decided once per class."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tether.core import capabilities
from tether.core.capabilities import has_capability


@runtime_checkable
class Greets(Protocol):
    def greet(self) -> str: ...


class Greeter:
    def greet(self) -> str:
        return "hi"


class Mute:
    pass


def test_the_answer_is_isinstance_s_and_is_kept_per_class() -> None:
    assert has_capability(Greeter(), Greets) is True
    assert has_capability(Mute(), Greets) is False
    assert capabilities._KNOWN[(Greeter, Greets)] is True
    assert capabilities._KNOWN[(Mute, Greets)] is False

    class Subclass(Mute):
        def greet(self) -> str:
            return "late"

    assert has_capability(Subclass(), Greets) is True  # its own class, its own answer
    assert has_capability(Mute(), Greets) is False
