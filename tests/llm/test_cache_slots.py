"""The slot extractor behind the semantic cache: what each kind reads, how it normalises, and
when two questions match (no model needed)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.llm.cache_slots import Slots, extract_slots


def slots(text: str) -> list[str]:
    return extract_slots(text).describe()


def same(a: str, b: str) -> bool:
    return extract_slots(a).matches(extract_slots(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is the refund status of order 1234?", "What is the refund status of order 1235?"),
        ("I need 5 more seats", "I need 15 more seats"),
        ("Does it include 10 GB of storage?", "Does it include 100 GB of storage?"),
        ("Remind me in 10 minutes", "Remind me in 10 hours"),
        ("Refund $50 to my card", "Refund $500 to my card"),
        ("Transfer €200 to savings", "Transfer $200 to savings"),
        ("My promo code SAVE20 fails", "My promo code SAVE30 fails"),
        ("Resend invoice INV-2024-0113", "Resend invoice INV-2024-0131"),
        ("Reset the password of alice@example.com", "Reset the password of alicia@example.com"),
        ("Is https://status.acme.io/api down?", "Is https://status.acme.io/web down?"),
        ("Can I reach 10.0.0.12?", "Can I reach 10.0.0.21?"),
        ("Book a room for March 3", "Book a room for March 4"),
        ("Sales on 2024-05-01?", "Sales on 2024-06-01?"),
        ("Am I free on Monday?", "Am I free on Tuesday?"),
        ("Call me at 3pm", "Call me at 4pm"),
        ("Is the store open at 9 am?", "Is the store open at 9 pm?"),
        ("What's on my schedule today?", "What's on my schedule tomorrow?"),
        ("Tickets from this week", "Tickets from next week"),
        ("Is my payment due next Friday?", "Is my payment due this Friday?"),
        ("Was I billed 3 days ago?", "Will I be billed in 3 days?"),
        ("Cancel my subscription", "Don't cancel my subscription"),
        ("Ship it with a signature", "Ship it without a signature"),
        ("I can log in", "I can't log in"),
        ("How do I increase my quota?", "How do I decrease my quota?"),
        ("How do I enable 2FA?", "How do I disable 2FA?"),
        ("I can't log in to the dashboard", "I can't log out of the dashboard"),
        ("Show orders over $100", "Show orders under $100"),
        ("Did the price go up?", "Did the price go down?"),
        ("Pay before the due date", "Pay after the due date"),
        ("Do you ship to Germany?", "Do you ship to France?"),
        ("do you ship to germany?", "do you ship to france?"),
        ("How do I upgrade to the Pro plan?", "How do I upgrade to the Team plan?"),
        ("Can I pay with PayPal?", "Can I pay with Stripe?"),
        ("Status of the 'Billing' queue", "Status of the 'Support' queue"),
        ("Migrate from MySQL to Postgres", "Migrate from Postgres to MySQL"),
        ("Deploy the build to staging", "Deploy the build to production"),
        ("How much is the monthly plan?", "How much is the annual plan?"),
        ("Show me my last order", "Show me my first order"),
    ],
)
def test_questions_that_differ_in_a_slot_do_not_match(a: str, b: str) -> None:
    assert not same(a, b)
    assert extract_slots(a).conflicts(extract_slots(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Refund order 1234", "Has order #1234 been refunded?"),
        ("Refund order 1234", "Refund order no. 1234"),
        ("Withdraw 1,234 now", "Withdraw 1234 now"),
        ("A fee of 12.50 EUR", "A fee of 12.5 eur"),
        ("Set the budget to 2,500 dollars", "Change the budget to $2,500"),
        ("Refund $5", "Refund 5 USD"),
        ("Refund 50 cents", "Refund $0.50"),
        ("Withdraw 5k", "Withdraw 5000"),
        ("I need five more seats", "I need 5 more seats"),
        ("Why was I charged twice?", "Why was I charged 2 times?"),
        ("Does it include 10 GB?", "Is 10GB included?"),
        ("Remind me in 10 minutes", "Ping me in 10 mins"),
        ("A 10% discount", "A 10 percent discount"),
        ("Book it for March 3", "Book it for the 3rd of March"),
        ("Open on December 24th?", "Open on Dec 24?"),
        ("Free on Monday?", "Free on mondays?"),
        ("Meet at 3pm", "Meet at 15:00"),
        ("Wake me at 6:30 am", "Wake me at 06:30"),
        ("Is it open tonight?", "Is it open this evening?"),
        ("I can't log in", "I'm unable to sign in"),
        ("How do I increase my quota?", "How can I raise my quota?"),
        ("How do I increase my quota?", "Can my quota be bigger?"),  # one side only: no clash
        ("Turn on dark mode", "Enable dark mode"),
        ("Add Maria to the group", "Put Maria in the group"),
        ("When is my next appointment?", "When's my upcoming appointment?"),
        ("Translate it from English to Spanish", "Translate it into Spanish from English"),
        ("Send me the report weekly", "Send me the report every week"),
        ("Roll back the prod database", "Revert the production database"),
    ],
)
def test_the_same_slots_written_differently_match(a: str, b: str) -> None:
    assert same(a, b), (slots(a), slots(b))


def test_each_kind_reads_what_it_should() -> None:
    assert slots("Refund order #1234 and ticket SUP-98") == [
        "identifier:SUP-98",
        "number:1234",
        "polarity:money=refund",
    ]
    assert slots("Transfer $1,200.50 on 2024-05-01 at 3:15 pm") == [
        "amount:1200.5 usd",
        "date:2024-05-01",
        "time:15:15",
    ]
    assert slots("Email bob@acme.com the report.pdf from https://acme.io/x.") == [
        "identifier:bob@acme.com",  # ids in the order they are named
        "identifier:report.pdf",
        "identifier:https://acme.io/x",
    ]
    assert slots("Move the meeting from Monday to Wednesday") == [
        "date:mon",
        "date:wed",
        "route:monday > wednesday",
    ]
    assert slots("Any outages last night or the day after tomorrow?") == [
        "relative:day after tomorrow",
        "relative:last night",
    ]
    assert slots("Don't never do that") == ["negation:not", "negation:not"]
    assert slots("Is Dr. Patel in New York on the Pro plan?") == [
        "entity:dr",
        "entity:new york",
        "entity:patel",
        "entity:pro",
    ]


def test_words_that_only_look_like_slots_are_not_read() -> None:
    assert slots("How do I reset my password?") == []
    assert slots("Please cancel it") == ["polarity:lifecycle=cancel"]  # "Please" opens it
    assert slots("Which one is cheaper?") == []  # "one" is a pronoun here
    assert slots("May I change my email?") == []  # the verb, not the month
    assert slots("What happened in May?") == ["date:*-05-*"]
    assert slots("How To Reset My Password In The App") == []  # title case names nothing
    assert slots("WHY IS MY ACCOUNT LOCKED") == ["polarity:lock=lock"]  # nor shouting
    assert slots("I'm locked out, OK?") == ["polarity:lock=lock"]
    assert slots("Show me my invoices") == []  # "show me" is no visibility toggle


def test_conflicts_say_what_differs() -> None:
    order = extract_slots("Refund order 1234 today")
    assert order.conflicts(extract_slots("Refund order 1235 tomorrow")) == [
        "different number, relative"
    ]
    assert extract_slots("Increase my quota").conflicts(extract_slots("Decrease my quota")) == [
        "opposite amount: increase vs decrease"
    ]
    assert order.matches(order) and order.conflicts(order) == []
    assert Slots().key == "" and extract_slots("order 7").key != extract_slots("order 8").key


def test_curly_quotes_and_odd_input_are_read_too() -> None:
    assert slots("Don\u2019t cancel") == slots("Don't cancel")
    assert slots("") == [] and slots("   \n\t") == []
    long = "Refund order 1234 please. " * 2000  # a pasted wall of text: slots, no crash
    assert extract_slots(long).exact.count(("number", "1234")) == 2000


TOKENS = (
    "$ € 1,234 12.5 5k 3pm 6:30 am 2024-05-01 3/14 March May 3rd the of from to into no. # "
    "don't not never Cancel cancel increase decrease over under log in out Dr. New York 'q' "
    '"x" A1B2 INV-20-1 a@b.c http://x.y/z . ? ! : \n today next last week ago one twice GB % '
    "Pro plan prod staging weekly first"
)
TRICKY = st.sampled_from(TOKENS.split(" "))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.lists(TRICKY | st.text(max_size=6), max_size=40).map(" ".join))
def test_any_text_is_read_deterministically_and_matches_itself(text: str) -> None:
    first, again = extract_slots(text), extract_slots(text)
    assert first == again and first.matches(again)
