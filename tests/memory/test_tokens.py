"""Token counts of the bundled local model: its own tokenizer and chat template, exactly."""

from __future__ import annotations

import random

from tether.core.messages import Message
from tether.llm import LocalModel
from tether.llm.types import ModelRequest
from tether.memory.compaction_summary import Summarize
from tether.memory.context_window import ContextWindow
from tether.memory.conversation import Conversation
from tether.memory.tokens import TemplateCounter, counter_for

TEXTS = [
    "Book a flight to Lisbon on the 3rd of May, please; aisle seat.",
    "Done: TP123 departs 09:40, gate B12. Total 120.50 EUR.",
    "¿Dónde está la estación? 東京 → 大阪, 2 tickets",
    "ERR-4021: quota exceeded for tenant acme (id=7f3a9c)",
    "ok",
]


def test_local_model_counts_are_exact_for_whole_prompts() -> None:
    model = LocalModel()
    counter = counter_for(model)
    assert isinstance(counter, TemplateCounter) and counter.exact
    rng = random.Random(3)
    for _ in range(25):
        msgs: list[Message] = []
        if rng.random() < 0.6:
            msgs.append(Message.system(rng.choice(TEXTS)))
        for i in range(rng.randint(1, 6)):
            role = "user" if i % 2 == 0 else "assistant"
            msgs.append(Message(role=role, content=" ".join(rng.sample(TEXTS, 2))))
        if rng.random() < 0.3:
            msgs.append(Message.system("Summary: " + rng.choice(TEXTS)))
        expected = model.count_prompt(ModelRequest(messages=tuple(msgs)))
        assert counter.count_messages(msgs) == expected, [m.role for m in msgs]


def test_window_budget_defaults_to_the_local_models_context() -> None:
    model = LocalModel(n_ctx=512)
    window = ContextWindow(model)
    assert window.limit == 512 and window.budget == 512
    conv = Conversation.start("Say hi.", system="Be brief.")
    assert window.tokens(conv) == model.count_prompt(ModelRequest(messages=tuple(conv.messages())))


async def test_the_bundled_model_summarises_within_its_own_context() -> None:
    model = LocalModel(n_ctx=512, n_threads=1)  # one thread: no spinning on a busy machine
    one_call = Summarize(model, summary_tokens=32, max_calls=1)  # seconds, not minutes
    window = ContextWindow(model, keep_recent=2, policies=[one_call])
    conv = Conversation.start("Goal: plan a team dinner in Lisbon.", system="Be brief.")
    facts = [
        "We are 12 people.",
        "Two of us are vegetarian.",
        "The budget is 40 euros each.",
        "Friday the 9th works for everyone.",
        "Alfama is close to the office.",
    ]
    for i in range(15):
        conv = conv.add(facts[i % len(facts)], Message.assistant(f"Noted, point {i}."))
    fitted = await window.fit(conv)
    assert fitted.actions == ("summarize",) and fitted.conversation.folded > 0
    assert fitted.tokens <= window.budget
    assert fitted.conversation.summary.strip()
    assert fitted.messages[1].content == "Goal: plan a team dinner in Lisbon."
    exact = model.count_prompt(ModelRequest(messages=tuple(fitted.messages)))
    assert fitted.tokens == exact


def test_a_server_running_the_same_gguf_counts_exactly_with_its_tokenizer() -> None:
    from tether.llm import OpenAICompatibleModel

    local = LocalModel()
    served = OpenAICompatibleModel("smollm2", base_url="http://127.0.0.1:9/v1", tokenizer=local)
    counter = counter_for(served)
    assert isinstance(counter, TemplateCounter) and counter.exact
    msgs = [Message.system(TEXTS[0]), Message.user(TEXTS[1]), Message.assistant(TEXTS[3])]
    assert counter.count_messages(msgs) == local.count_prompt(ModelRequest(messages=tuple(msgs)))
    bare = OpenAICompatibleModel("gpt-x", base_url="http://127.0.0.1:9/v1")
    assert counter_for(bare).exact is False  # the documented estimate
