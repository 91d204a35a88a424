"""Personal data written a little off the plain form still reaches the detector as what it is.
A card, SSN or IBAN grouped with a typographic dash (an en dash or minus sign from a word
processor's autocorrect, a non-breaking hyphen from a web page) and an e-mail address in a URL
with its ``@`` percent-encoded (``?email=ada%40example.com``, how every link carries it) or
written as an HTML entity (``ada&#64;example.com``) went to the model as written, unredacted;
the recognizers now read them as ``-`` and ``@``, and each is replaced whole."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from tether import END, START, Graph, RunContext, RunStatus, Runtime
from tether.governance import Governance, PiiDetector, PiiGuard, PiiKey, PiiVault
from tether.llm.fakes import ScriptedModel
from tether.store.sqlite import SqliteStore

NEAR_MISSES = [
    ("CREDIT_CARD", "4111\u20131111\u20131111\u20131111"),  # en dash
    ("CREDIT_CARD", "4111\u22121111\u22121111\u22121111"),  # minus sign
    ("CREDIT_CARD", "4111\u20111111\u20111111\u20111111"),  # non-breaking hyphen
    ("US_SSN", "536\u201122\u20118514"),
    ("IBAN_CODE", "DE89\u20103704\u20100044\u20100532\u20100130\u201000"),  # hyphen
    ("EMAIL_ADDRESS", "ada%40example.com"),
    ("EMAIL_ADDRESS", "ada&#64;example.com"),
]


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector(ner=False)


@pytest.mark.parametrize(("entity", "value"), NEAR_MISSES)
def test_a_near_miss_is_found_whole(detector: PiiDetector, entity: str, value: str) -> None:
    text = f"customer record: {value} (from the CRM)"
    spans = [(s.entity_type, text[s.start : s.end]) for s in detector.detect(text)]
    assert spans == [(entity, value)]


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080/unsubscribe?email=ada%40example.com&list=7",
        "https://intranet/unsubscribe?email=ada@example.com&list=7",
        "https://shop.acme.io/u/ada@example.com",
    ],
)
def test_an_address_in_a_link_is_found_and_only_it(detector: PiiDetector, url: str) -> None:
    # the match used to start in the link's path, whose host was checked as the domain
    text = f"click {url} to leave"
    found = [text[s.start : s.end] for s in detector.detect(text)]
    assert found in (["ada%40example.com"], ["ada@example.com"])


def test_an_address_of_its_own_is_kept_whole(detector: PiiDetector) -> None:
    text = "write to jo+tag=x@example.com"
    assert [text[s.start : s.end] for s in detector.detect(text)] == ["jo+tag=x@example.com"]


def test_plain_text_keeps_its_dashes_and_percent_signs(detector: PiiDetector) -> None:
    # what is no personal data stays so: a range, a discount, an em dash between words
    text = "rooms 10\u201312 are 40% off \u2014 ask at 2040"
    assert detector.detect(text) == []


class S(TypedDict, total=False):
    reply: str


async def test_the_model_never_sees_them(tmp_path: Any) -> None:
    key = PiiKey.generate()
    model = ScriptedModel(["noted"])
    ask = "Refund " + ", ".join(v for _, v in NEAR_MISSES)

    async def agent(state: S, ctx: RunContext) -> dict[str, Any]:
        said = await model.chat(ask)
        return {"reply": said.text}

    g = Graph(S, name="near_miss")
    g.add_node("agent", agent)
    g.add_edge(START, "agent").add_edge("agent", END)
    guard = PiiGuard(key=key, detector=PiiDetector(ner=False))
    wf = g.compile(governance=Governance(parts=[guard]))
    store = SqliteStore(tmp_path / "pii.db")
    async with Runtime(store) as rt:
        res = await rt.run(wf, {})
        assert res.status is RunStatus.COMPLETED
        sent = model.requests[0].messages[-1].content
        for _, value in NEAR_MISSES:
            assert value not in sent
        assert await PiiVault(store).reveal(res.run_id, sent, key) == ask
