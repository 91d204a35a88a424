"""One loaded llama.cpp model, shared process-wide, and the blocking generation it runs.

Everything here is synchronous and meant for worker threads (``asyncio.to_thread``): loading
takes a second or so, generating many. A loaded model serves one generation at a time (its lock);
loads are cached per (file, context size, threads, logprobs) so every ``LocalModel`` on the same
file shares one. Logprobs need llama.cpp to keep the logits of every position
(``logits_all=True``), which costs memory and prompt time, so a model is loaded that way only
for requests that ask for logprobs.
"""

from __future__ import annotations

import atexit
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from tether.core.errors import ConfigurationError, ModelError, ModelRequestError, missing_dependency
from tether.llm.providers.llama_stream import StopFilter, stream_completion


class EngineKey(NamedTuple):
    path: str
    n_ctx: int
    n_threads: int | None
    logits_all: bool


@dataclass(frozen=True)
class Params:
    temperature: float
    max_tokens: int | None
    stop: list[str]
    seed: int
    logprobs: bool


@dataclass(frozen=True)
class Output:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    id: str | None = None
    logprobs: tuple[float, ...] | None = None
    constrained: str | None = None
    """``schema`` when decoding followed the request's JSON schema, ``json`` when the schema
    could not be compiled to a grammar and any JSON was allowed; None for free text."""


@dataclass
class Engine:
    llama: Any
    formatter: Callable[..., Any]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the model's tokenizer, without BOS. Tokenizing only reads the
        vocabulary, so it needs no lock."""
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def prompt(self, messages: list[dict[str, str]]) -> tuple[list[int], list[str], Any]:
        """Token ids of the chat prompt (as llama-cpp's own chat handler builds them), the
        template's stop strings and its stopping criteria. Needs no lock (see count_tokens)."""
        from jinja2 import TemplateError

        try:
            result = self.formatter(messages=messages)
        except (ValueError, TemplateError) as exc:  # a template's raise_exception is a ValueError
            raise ModelRequestError(
                f"the local model's chat template refused the conversation: {exc}; this model "
                "may not accept a system message or two turns of the same role in a row"
            ) from exc
        tokens = self.llama.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        stop = result.stop if isinstance(result.stop, list) else [result.stop]
        return tokens, [s for s in stop if s], result.stopping_criteria

    def generate(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any] | None,
        params: Params,
        cancel: threading.Event,
        on_delta: Callable[[str], None] | None = None,
    ) -> Output:
        """Blocking. Streams text to ``on_delta`` when given; stops early once ``cancel`` is set
        (and does not start when it was set while the call waited for the model)."""
        grammar, constrained = _grammar(json.dumps(schema)) if schema else (None, None)
        tokens, template_stop, template_criteria = self.prompt(messages)
        seen = [0]

        def criteria(input_ids: Any, logits: Any) -> bool:
            # called with the tokens before each newly sampled one (and once more at the
            # end): the longest such prefix tells how many tokens were sampled
            seen[0] = max(seen[0], len(input_ids))
            if template_criteria is not None and template_criteria(input_ids, logits):
                return True
            return cancel.is_set()

        kwargs: dict[str, Any] = {
            "prompt": tokens,
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
            "seed": params.seed,
            "grammar": grammar,
            "stopping_criteria": _criteria_list(criteria),
            "logprobs": 1 if params.logprobs else None,
        }
        with self.lock:
            if cancel.is_set():
                raise ModelError("the call was cancelled before the local model was free")
            try:
                if on_delta is None:
                    result = self.llama.create_completion(
                        stop=[*params.stop, *template_stop], **kwargs
                    )
                    return _output(result, len(tokens), constrained)
                chunks = self.llama.create_completion(stream=True, stop=[], **kwargs)
                stops = StopFilter([*params.stop, *template_stop])
                streamed = stream_completion(
                    chunks, stops, on_delta, lambda: max(0, seen[0] - len(tokens) + 1)
                )
            except ValueError as exc:
                raise ModelRequestError(
                    f"the local model refused the request: {exc}; if the prompt is too long, "
                    "shorten the conversation or load the model with a larger n_ctx"
                ) from exc
            except (RuntimeError, OSError) as exc:
                raise ModelError(f"llama.cpp failed: {exc}") from exc
        return Output(
            text=streamed.text,
            finish_reason=streamed.finish_reason,
            prompt_tokens=len(tokens),
            completion_tokens=streamed.completion_tokens,
            id=streamed.id,
            logprobs=streamed.logprobs,
            constrained=constrained,
        )


def _output(result: dict[str, Any], prompt_tokens: int, constrained: str | None) -> Output:
    choice = result["choices"][0]
    usage = result.get("usage") or {}
    lp = choice.get("logprobs")
    logprobs = (
        tuple(float(x) for x in lp["token_logprobs"] if x is not None) if lp is not None else None
    )
    return Output(
        text=choice["text"],
        finish_reason=choice.get("finish_reason") or "stop",
        prompt_tokens=int(usage.get("prompt_tokens", prompt_tokens)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
        id=result.get("id"),
        logprobs=logprobs,
        constrained=constrained,
    )


def _criteria_list(fn: Callable[[Any, Any], bool]) -> Any:
    from llama_cpp import StoppingCriteriaList

    return StoppingCriteriaList([fn])


@lru_cache(maxsize=64)
def _grammar(schema_json: str) -> tuple[Any, str]:
    """The schema compiled to a llama.cpp grammar; any-JSON when the schema uses something the
    converter cannot express (the output is validated downstream either way)."""
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    try:
        schema_json = json.dumps(grammar_schema(json.loads(schema_json)))
        return LlamaGrammar.from_json_schema(schema_json, verbose=False), "schema"
    except Exception:  # the converter raises assorted errors on unsupported schema features
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False), "json"


_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "dependentSchemas"})
"""Keywords whose value maps names to schemas (a property may be called "pattern")."""


def grammar_schema(schema: Any) -> Any:
    """``schema`` without its string ``pattern`` keywords, for the grammar converter.

    llama-cpp-python turns a regex pattern into GBNF that llama.cpp cannot parse when it holds an
    escape such as ``\\d``: llama.cpp reports "error parsing grammar" and then crashes the whole
    process in native code, past any ``except``. Without the pattern the grammar still fixes the
    JSON's shape, and the output is validated against the full schema downstream."""
    if isinstance(schema, list):
        return [grammar_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "pattern" and isinstance(value, str):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: grammar_schema(sub) for name, sub in value.items()}
        else:
            out[key] = grammar_schema(value)
    return out


_engines: dict[EngineKey, Engine] = {}
_loading = threading.Lock()


@atexit.register
def _close_all() -> None:
    """Free the models while llama_cpp is still importable (its ``__del__`` fails at
    interpreter teardown otherwise)."""
    with _loading:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        with engine.lock:
            engine.llama.close()


def loaded(key: EngineKey) -> Engine | None:
    return _engines.get(key)


def load(key: EngineKey) -> Engine:
    """Load (once per key, process-wide) the model a key names. Blocking."""
    with _loading:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _load(key)
        return engine


def _load(key: EngineKey) -> Engine:
    llama_cpp = _import_llama()
    try:
        llama = llama_cpp.Llama(
            model_path=key.path,
            n_ctx=key.n_ctx,
            n_threads=key.n_threads,
            logits_all=key.logits_all,
            verbose=False,
        )
    except ValueError as exc:
        raise ConfigurationError(f"llama.cpp could not load {key.path}: {exc}") from exc
    return Engine(llama, _formatter(llama))


def _formatter(llama: Any) -> Callable[..., Any]:
    """The chat template llama-cpp would use: the GGUF's own, else ChatML."""
    from llama_cpp import llama_chat_format

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        chatml: Callable[..., Any] = llama_chat_format.format_chatml
        return chatml
    eos, bos = llama.token_eos(), llama.token_bos()
    jinja: Callable[..., Any] = llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
        stop_token_ids=[eos],
    )
    return jinja


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise missing_dependency("local", "llama-cpp-python") from None
    return llama_cpp
