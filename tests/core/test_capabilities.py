"""``has_capability``: a protocol isinstance decided once per class."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import pytest

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


@runtime_checkable
class Named(Protocol):
    name: str


class HasName:
    def __init__(self) -> None:
        self.name = "set on the instance"


class GreetsNone:
    greet = None  # a method member set to None does not count


class ExplicitGreeter(Greets):  # names the protocol among its bases
    pass


def test_the_first_answer_is_isinstance_s_without_asking_abc() -> None:
    for obj, proto in (
        (HasName(), Named),
        (Mute(), Named),
        (GreetsNone(), Greets),
        (ExplicitGreeter(), Greets),
    ):
        assert has_capability(obj, proto) is isinstance(obj, proto), (obj, proto)


def test_every_store_protocol_answers_as_isinstance_does() -> None:
    from tether.store import live, protocol, wakeup
    from tether.store.memory import MemoryStore
    from tether.store.sqlite import SqliteStore

    protocols = [
        value
        for module in (protocol, live, wakeup)
        for value in vars(module).values()
        if isinstance(value, type) and getattr(value, "_is_runtime_protocol", False)
    ]
    assert len(protocols) > 5
    stores = [MemoryStore(), SqliteStore(":memory:")]
    for store in stores:
        for proto in protocols:
            assert has_capability(store, proto) is isinstance(store, proto), (store, proto)


def test_a_class_without_the_protocol_among_its_bases_is_answered_without_isinstance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Quiet:
        pass

    class Loud:
        def greet(self) -> str:
            return "HI"

    def slow(cls: type, obj: object) -> bool:
        raise AssertionError("isinstance walks every subclass of the protocol when it says no")

    monkeypatch.setattr(type(Greets), "__instancecheck__", slow)
    assert has_capability(Quiet(), Greets) is False
    assert has_capability(Loud(), Greets) is True
