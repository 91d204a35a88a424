"""Model selection by spec string and environment, and the price table."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.core.errors import ConfigurationError
from tether.llm import DEFAULT_PRICES, Price, PriceTable, Usage, model_from_spec
from tether.llm.pricing import default_prices


@pytest.mark.parametrize(
    ("spec", "base_url", "name"),
    [
        (
            "openai-compatible:http://127.0.0.1:8000/v1:smollm2",
            "http://127.0.0.1:8000/v1",
            "smollm2",
        ),
        (
            "openai-compatible:http://localhost:11434/v1:llama3:8b",
            "http://localhost:11434/v1",
            "llama3:8b",
        ),
        (
            "openai-compatible:https://api.example.com:my-model",
            "https://api.example.com",
            "my-model",
        ),
    ],
)
def test_openai_compatible_specs_split_url_and_model(spec: str, base_url: str, name: str) -> None:
    model = model_from_spec(spec)
    assert model.model_name == name
    assert model.base_url.rstrip("/") == base_url  # type: ignore[attr-defined]
    assert model.name == f"openai-compatible:{name}"


def test_hosted_providers_need_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        model_from_spec("openai:gpt-4o-mini")
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        model_from_spec("anthropic:claude-haiku-4-5")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ak-test")
    assert model_from_spec("openai:gpt-4o-mini").name == "openai:gpt-4o-mini"
    assert model_from_spec("anthropic:claude-haiku-4-5").name == "anthropic:claude-haiku-4-5"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("gpt-4o", "provider:model"),
        ("openai:", "provider:model"),
        ("mystery:model", "unknown model provider 'mystery'"),
        ("openai-compatible:not-a-url", "expected 'openai-compatible:URL:model'"),
        # a URL with a port and no model was read as host 'h' and model '8765/v1'
        (
            "openai-compatible:http://h:8765/v1",
            r"names no model \('8765/v1' is the URL's port and path\): expected "
            r"'openai-compatible:URL:model', e\.g\. openai-compatible:http://h:8765/v1:smollm2",
        ),
        ("openai-compatible:https://h:443", "names no model"),
    ],
)
def test_bad_specs_say_how_to_fix_them(spec: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        model_from_spec(spec)


def test_env_var_picks_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_MODEL", "openai-compatible:http://h:1/v1:m")
    assert model_from_spec().name == "openai-compatible:m"


def test_no_configuration_means_the_bundled_local_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TETHER_MODEL", raising=False)
    assert model_from_spec().name == "local:smollm2"


def test_price_lookup_exact_then_longest_glob() -> None:
    table = PriceTable({"x:*": (1, 1), "x:big*": (10, 20), "x:big-exact": Price(3, 4)})
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert table.cost("x:big-exact", usage) == 7
    assert table.cost("x:big-2", usage) == 30
    assert table.cost("x:small", usage) == 2
    assert table.cost("y:small", usage) is None
    assert DEFAULT_PRICES.cost("local:smollm2", usage) == 0


def test_price_file_merges_over_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text('{"openai-compatible:m": [1.5, 3], "local:*": [0.1, 0.1]}')
    monkeypatch.setenv("TETHER_PRICES", str(prices))
    table = default_prices()
    usage = Usage(input_tokens=2_000_000, output_tokens=0)
    assert table.cost("openai-compatible:m", usage) == 3.0
    assert table.cost("local:smollm2", usage) == pytest.approx(0.2)
    assert table.price("openai:gpt-4o") == DEFAULT_PRICES.price("openai:gpt-4o")


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"m": "cheap"}', '{"m": [-1, 0]}'])
def test_bad_price_files_are_configuration_errors(tmp_path: Path, content: str) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(content)
    with pytest.raises(ConfigurationError):
        PriceTable.from_file(prices)


@pytest.mark.parametrize(
    "content",
    [
        '{"m": "12"}',  # was read as [1, 2]
        '{"m": [1, 2, 3]}',  # the third number was dropped
        '{"m": [true, false]}',  # was [1.0, 0.0]
        '{"m": {"input": 1, "output": 2}}',  # a bare KeyError: 0
        '{"m": [null, 2]}',
    ],
)
def test_a_price_that_is_not_two_numbers_is_refused_naming_the_file(
    tmp_path: Path, content: str
) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(content)
    with pytest.raises(ConfigurationError, match=r"price for 'm' must be .* \(two numbers") as got:
        PriceTable.from_file(prices)
    assert str(prices) in str(got.value)
    assert PriceTable({"m": ["0.15", 0.6]}).price("m") == Price(0.15, 0.6)
