"""Pick a model by a string, so configuration can choose it.

=====================================  ==============================================
``local:smollm2``                      the bundled SmolLM2-135M-Instruct (the default)
``local:/path/to/model.gguf``          any GGUF file, run by llama.cpp in process
``openai:gpt-4o-mini``                 OpenAI (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``)
``openai-compatible:URL:model``        any OpenAI-compatible server: vLLM, llama.cpp,
                                       Ollama... (``TETHER_OPENAI_COMPATIBLE_API_KEY``)
``anthropic:claude-haiku-4-5``         Anthropic (``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``)
=====================================  ==============================================

With no spec, ``TETHER_MODEL`` decides, and without it the bundled local model: tether works
offline with no configuration.
"""

from __future__ import annotations

import os
import re
from typing import Any

from tether.core.errors import ConfigurationError
from tether.llm.model import Model

DEFAULT_MODEL = "local:smollm2"

_COMPATIBLE = re.compile(r"^(?P<url>https?://[^/:]+(?::\d+)?(?:/[^:]*)?):(?P<model>.+)$")
_PORT_NOT_MODEL = re.compile(r"^\d+(?:/.*)?$")
"""What is left after ``http://host:`` when the spec has a port but no model name."""


def model_from_spec(spec: str | None = None, **options: Any) -> Model:
    """Build the model a spec string names; ``options`` go to the provider's constructor."""
    spec = spec or os.environ.get("TETHER_MODEL") or DEFAULT_MODEL
    provider, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ConfigurationError(
            f"model spec {spec!r} must look like 'provider:model' (local:smollm2, "
            "openai:gpt-4o-mini, openai-compatible:http://host:8000/v1:model, anthropic:...)"
        )
    if provider == "local":
        from tether.llm.providers.local import LocalModel

        if rest.endswith(".gguf"):
            return LocalModel(path=rest, **options)
        return LocalModel(rest, **options)
    if provider == "openai":
        from tether.llm.providers.openai_compat import OpenAICompatibleModel

        key = options.pop("api_key", None) or os.environ.get("OPENAI_API_KEY")
        base = options.pop("base_url", None) or os.environ.get(
            "OPENAI_BASE_URL", "https://api.openai.com/v1"
        )
        if not key:
            raise ConfigurationError(
                f"model {spec!r} needs an API key: set OPENAI_API_KEY or pass api_key=..."
            )
        return OpenAICompatibleModel(rest, base_url=base, api_key=key, provider="openai", **options)
    if provider == "openai-compatible":
        match = _COMPATIBLE.match(rest)
        if match is not None and _PORT_NOT_MODEL.match(match["model"]):
            raise ConfigurationError(
                f"model spec {spec!r} names no model ({match['model']!r} is the URL's port "
                "and path): expected 'openai-compatible:URL:model', e.g. "
                f"openai-compatible:{rest}:smollm2"
            )
        if match is None:
            raise ConfigurationError(
                f"model spec {spec!r}: expected 'openai-compatible:URL:model' with URL "
                "http(s)://host[:port][/path], e.g. openai-compatible:http://127.0.0.1:8000/v1:smollm2"
            )
        from tether.llm.providers.openai_compat import OpenAICompatibleModel

        key = options.pop("api_key", None) or os.environ.get("TETHER_OPENAI_COMPATIBLE_API_KEY")
        return OpenAICompatibleModel(
            match["model"],
            base_url=match["url"],
            api_key=key,
            provider="openai-compatible",
            **options,
        )
    if provider == "anthropic":
        from tether.llm.providers.anthropic import AnthropicModel

        key = options.pop("api_key", None) or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise ConfigurationError(
                f"model {spec!r} needs an API key: set ANTHROPIC_API_KEY or pass api_key=..."
            )
        base = options.pop("base_url", None) or os.environ.get(
            "ANTHROPIC_BASE_URL", "https://api.anthropic.com"
        )
        return AnthropicModel(rest, api_key=key, base_url=base, **options)
    raise ConfigurationError(
        f"unknown model provider {provider!r} in {spec!r}; use local, openai, "
        "openai-compatible or anthropic"
    )
