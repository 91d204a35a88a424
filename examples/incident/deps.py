"""What a triage run works with (the runtime's ``deps``): the host, the sandbox, the runbooks in
memory, the model and the tools, opened over one directory and one SQLite file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.llm import Model
from tether.memory import MemoryPlane, MemoryScope, open_memory
from tether.memory.protocol import MemoryBackend
from tether.memory.types import Provenance
from tether.store.protocol import RunStore
from tether.tools import ToolExecutor
from tether.tools.sandbox import Sandbox

from .graph import TENANT
from .models import make_embedder, make_model
from .tools import make_tools
from .world import RUNBOOKS, Host


@dataclass
class Deps:
    host: Host
    memory: MemoryBackend
    plane: MemoryPlane
    model: Model
    tools: ToolExecutor
    embedder: str
    """Which embedder recalls the runbooks (MiniLM, or the fallback and why)."""
    sandbox: str
    """The sandbox's isolation as a probe saw it: ``network/filesystem``."""

    def deps(self) -> dict[str, Any]:
        return {"tools": self.tools, "model": self.model}

    async def close(self) -> None:
        await self.plane.close()


async def open_deps(
    directory: Path, store_url: str, runs: RunStore, model: Model | str, *, weak_sandbox: bool
) -> Deps:
    embedder, embedder_name = make_embedder()
    memory = open_memory(store_url, embedder=embedder)
    await memory.setup()
    plane = MemoryPlane(memory)
    scope = MemoryScope(TENANT)
    if await memory.count(scope) == 0:  # a new directory: the team's runbooks
        for rb in RUNBOOKS:
            await plane.remember(
                rb["text"],
                scope=scope,
                importance=0.9,
                metadata={k: v for k, v in rb.items() if k != "text"},
                provenance=Provenance(source="system", trusted=True),
                journal=False,
            )
    box = Sandbox(allow_weak_isolation=weak_sandbox)
    probe = await box.run("print('ok')")  # WeakIsolationError here: see --allow-weak-sandbox
    host = Host(directory)
    llm = make_model(model) if isinstance(model, str) else model
    tools = make_tools(host, box, plane, runs)
    isolation = f"{probe.network}/{probe.filesystem}"
    return Deps(host, memory, plane, llm, tools, embedder_name, isolation)
