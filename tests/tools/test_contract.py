"""@tool builds a ToolContract from type hints; bad arguments become typed errors."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from tether.core.errors import ConfigurationError, ToolArgumentsError, ToolNotFoundError
from tether.tools import RateLimit, Scope, ToolContract, ToolRegistry, ToolRetry, tool


class Forecast(BaseModel):
    city: str
    celsius: float


@tool
def forecast(
    city: Annotated[str, Field(description="City name", min_length=2)],
    days: Annotated[int, Field(ge=1, le=7)] = 1,
    units: Literal["c", "f"] = "c",
) -> Forecast:
    """Weather forecast for a city.

    More text that is not part of the description."""
    return Forecast(city=city, celsius=20.0 + days)


def test_contract_from_type_hints() -> None:
    assert isinstance(forecast, ToolContract)
    assert forecast.name == "forecast"
    assert forecast.description == "Weather forecast for a city."
    assert forecast.scope is Scope.READ and forecast.idempotent
    schema = forecast.input_schema
    assert schema["required"] == ["city"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["city"]["description"] == "City name"
    assert schema["properties"]["days"]["maximum"] == 7
    assert schema["properties"]["units"]["enum"] == ["c", "f"]
    assert forecast.result_schema is not None
    assert forecast.result_schema["properties"]["celsius"]["type"] == "number"
    assert forecast.openai_spec()["function"]["parameters"] == schema


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({}, "city: Field required"),
        ({"city": 12}, "city: Input should be a valid string"),
        ({"city": "x"}, "city: String should have at least 2 characters"),
        ({"city": "Oslo", "days": 9}, "days: Input should be less than or equal to 7"),
        ({"city": "Oslo", "units": "k"}, "units: Input should be 'c' or 'f'"),
        ({"city": "Oslo", "extra": 1}, "extra: Extra inputs are not permitted"),
    ],
)
def test_bad_arguments_raise_tool_arguments_error(args: dict[str, object], fragment: str) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        forecast.validate(args)
    assert fragment in str(info.value)
    assert info.value.tool == "forecast" and info.value.errors


def test_non_mapping_arguments_are_rejected() -> None:
    with pytest.raises(ToolArgumentsError, match="object of named arguments"):
        forecast.validate(["Oslo"])  # type: ignore[arg-type]


async def test_direct_call_validates_and_checks_the_result_type() -> None:
    assert await forecast(city="Oslo", days=2) == Forecast(city="Oslo", celsius=22.0)

    @tool
    def liar() -> int:
        return "not an int"  # type: ignore[return-value]

    with pytest.raises(TypeError, match="does not match its declared result type"):
        await liar()


def test_write_tools_default_to_non_idempotent_and_no_retry() -> None:
    @tool(scope="write")
    async def send(to: str) -> None:
        """Send."""

    assert send.scope is Scope.WRITE and not send.idempotent
    assert send.retry.max_attempts == 1

    @tool(
        scope="destructive",
        idempotent=True,
        idempotency_key=lambda a: a["id"],
        retry=ToolRetry(max_attempts=5),
        rate_limit=RateLimit(2, burst=3),
        timeout=1.5,
    )
    async def drop(id: str, idempotency_key: str) -> None:
        """Drop."""

    assert drop.idempotent and drop.wants_key and drop.timeout == 1.5
    assert drop.derive_key({"id": "x"}) == "x"
    assert "idempotency_key" not in drop.input_schema["properties"]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"scope": "nuclear"}, "unknown scope"),
        ({"timeout": 0}, "timeout must be a finite number of seconds > 0"),
        ({"timeout": float("nan")}, "timeout must be a finite"),  # before: taken
        ({"timeout": float("inf")}, "timeout must be a finite"),
        ({"name": "bad name!"}, "must use letters"),
    ],
)
def test_bad_contract_settings(kwargs: dict[str, object], fragment: str) -> None:
    def f(x: int) -> int:
        return x

    with pytest.raises(ConfigurationError, match=fragment):
        tool(f, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"rate": 0}, "finite rate > 0"),
        ({"rate": float("nan")}, "finite rate > 0"),  # before: taken, every wait NaN
        ({"rate": float("inf")}, "finite rate > 0"),
        ({"rate": 5, "burst": 0}, "burst >= 1"),
        ({"rate": 5, "max_wait": float("nan")}, "max_wait >= 0"),
        ({"rate": 5, "max_wait": -1}, "max_wait >= 0"),
        ({"rate": "5"}, "finite rate > 0"),
    ],
)
def test_bad_rate_limits_are_refused(args: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        RateLimit(**args)  # type: ignore[arg-type]
    assert RateLimit(5, max_wait=float("inf")).max_wait == float("inf")  # wait as needed


def test_untyped_or_variadic_arguments_are_refused() -> None:
    def untyped(x):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(ConfigurationError, match="needs a type annotation"):
        tool(untyped)

    def variadic(*xs: int) -> int:
        return 0

    with pytest.raises(ConfigurationError, match=r"\*args/\*\*kwargs"):
        tool(variadic)


def test_registry() -> None:
    reg = ToolRegistry([forecast])
    assert reg.names() == ["forecast"] and "forecast" in reg and len(reg) == 1
    with pytest.raises(ToolNotFoundError, match="no tool named 'nope'"):
        reg.get("nope")

    @tool(name="forecast")
    def other(x: int) -> int:
        return x

    with pytest.raises(ConfigurationError, match="already registered"):
        reg.add(other)
    with pytest.raises(ConfigurationError, match="decorate the function with @tool"):
        reg.add(lambda: None)  # type: ignore[arg-type]
