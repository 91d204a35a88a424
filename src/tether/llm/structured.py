"""Structured output: ask for JSON matching a schema, validate it, and repair it when it fails.

``generate_structured`` sends the schema as the request's ``response_format`` (providers that
can constrain decoding do: llama.cpp compiles it to a grammar, OpenAI-compatible servers get
``json_schema``), parses the answer (tolerating a ```json fence or prose around the object),
validates it with pydantic or, for a plain schema dict, jsonschema, and on failure sends the
validation errors back to the model and asks for corrected JSON, at most ``max_repairs`` times.
Every attempt is a ``Model.chat`` call, so inside a run each one is journaled.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

import jsonschema
from pydantic import BaseModel, ValidationError

from tether.core.errors import InvalidInputError, StructuredOutputError
from tether.core.messages import Message, json_schema_problem
from tether.llm.model import Model
from tether.llm.request import MessagesLike, as_messages, as_response_format
from tether.llm.types import ModelResponse

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class StructuredAttempt:
    """One try: the model's response and what was wrong with it (empty when it validated)."""

    response: ModelResponse
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class StructuredResult(Generic[T]):
    """The validated value (a pydantic instance, or the parsed JSON for a schema dict) and
    every attempt it took, the last being the one that validated."""

    value: T
    attempts: tuple[StructuredAttempt, ...]

    @property
    def response(self) -> ModelResponse:
        return self.attempts[-1].response

    @property
    def repairs(self) -> int:
        return len(self.attempts) - 1


class _NotJson(ValueError):
    """Text that parses as JSON only by Python's leave: NaN or Infinity (no JSON values), a
    number past a float's range (1e999 read as infinity) or with thousands of digits, nesting
    past the recursion limit."""


def _constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON value; write a number or null")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJson(f"the number {text[:40]} is out of range")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # past sys.get_int_max_str_digits()
        raise _NotJson(f"the number {text[:20]}… has too many digits ({len(text)})") from None


_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_finite, parse_int=_integer)


def _decode(text: str, start: int | None = None) -> Any:
    try:
        return _DECODER.decode(text) if start is None else _DECODER.raw_decode(text, start)[0]
    except RecursionError:
        raise _NotJson("the JSON is nested too deeply") from None


def extract_json(text: str) -> Any:
    """Parse the JSON in a model's answer: the whole text, else the first ```json fence, else
    the first JSON object or array in it. Raises ValueError saying what was found (NaN,
    Infinity and numbers out of a float's range are not JSON: refused, not read as floats)."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("the reply was empty; expected a JSON object")
    try:
        return _decode(stripped)
    except json.JSONDecodeError as exc:
        first_error = f"the reply is not valid JSON ({exc.msg} at character {exc.pos})"
    except _NotJson as exc:
        raise ValueError(f"the reply is not valid JSON: {exc}") from None
    try:
        for fenced in _FENCE.finditer(text):
            try:
                return _decode(fenced.group(1))
            except json.JSONDecodeError:
                continue
        for opener in "{[":
            start = text.find(opener)
            while start != -1:
                try:
                    return _decode(text, start)
                except json.JSONDecodeError:
                    start = text.find(opener, start + 1)
    except _NotJson as exc:
        raise ValueError(f"the reply is not valid JSON: {exc}") from None
    raise ValueError(first_error)


def schema_errors(schema: Mapping[str, Any], value: Any) -> list[str]:
    """Every way ``value`` breaks the JSON ``schema``, as ``path: message`` lines."""
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{_path(e.absolute_path)}: {e.message}" for e in errors]


def check_schema(schema: Mapping[str, Any], what: str = "the output schema") -> None:
    """Raise InvalidInputError when ``schema`` (named ``what`` in the message) is not itself a
    valid JSON schema."""
    problem = json_schema_problem(dict(schema))
    if problem:
        raise InvalidInputError(
            f"{what} is not a valid JSON schema ({problem}); fix it, or build it "
            "from a pydantic class with its model_json_schema()"
        )


def validate_output(output_type: type[BaseModel] | Mapping[str, Any], text: str) -> Any:
    """Parse and validate one answer; raises ``_Invalid`` (private) with the error lines."""
    try:
        data = extract_json(text)
    except ValueError as exc:
        raise _Invalid([str(exc)]) from None
    if isinstance(output_type, Mapping):
        errors = schema_errors(output_type, data)
        if errors:
            raise _Invalid(errors)
        return data
    try:
        return output_type.model_validate(data)
    except ValidationError as exc:
        raise _Invalid(
            [f"{_path(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)]
        ) from None


class _Invalid(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def repair_message(errors: Sequence[str]) -> Message:
    """The user turn that sends validation errors back to the model."""
    listed = "\n".join(f"- {e}" for e in errors)
    return Message.user(
        "Your previous reply did not match the required JSON schema:\n"
        f"{listed}\n"
        "Reply again with only the corrected JSON object, no other text."
    )


CUT_ECHO = 400
"""Characters of a reply cut off at the length limit that a repair shows the model again."""


def repair_turns(response: ModelResponse, errors: Sequence[str]) -> list[Message]:
    """The assistant's failed reply and the user turn asking for a fix. A reply cut off at the
    length limit (a small model repeating itself until the context is full) is echoed only in
    part: the whole of it would leave the repair no room to answer."""
    if response.finish_reason != "length":
        return [response.message(), repair_message(errors)]
    head = response.text[:CUT_ECHO] + ("…" if len(response.text) > CUT_ECHO else "")
    cut = [
        "the reply was cut off at the length limit before the JSON ended: it is far too "
        "long; give a short object with only what the task needs",
        *errors,
    ]
    return [Message.assistant(head), repair_message(cut)]


@overload
async def generate_structured(
    model: Model,
    messages: MessagesLike,
    output_type: type[M],
    *,
    max_repairs: int = 2,
    **chat_options: Any,
) -> StructuredResult[M]: ...


@overload
async def generate_structured(
    model: Model,
    messages: MessagesLike,
    output_type: Mapping[str, Any],
    *,
    max_repairs: int = 2,
    **chat_options: Any,
) -> StructuredResult[Any]: ...


async def generate_structured(
    model: Model,
    messages: MessagesLike,
    output_type: type[BaseModel] | Mapping[str, Any],
    *,
    max_repairs: int = 2,
    **chat_options: Any,
) -> StructuredResult[Any]:
    """Ask ``model`` for output matching ``output_type`` (a pydantic model class or a JSON
    schema dict) and return the validated value with every attempt; ``chat_options`` go to
    ``Model.chat`` (temperature, max_tokens, seed, journal...). Raises StructuredOutputError
    when the output still does not validate after ``max_repairs`` repair rounds."""
    if max_repairs < 0:
        raise InvalidInputError(f"max_repairs must be 0 or more, got {max_repairs}")
    if "response_format" in chat_options:
        raise InvalidInputError(
            "generate_structured sets response_format from output_type; do not pass both"
        )
    if isinstance(output_type, Mapping):
        check_schema(output_type)
    fmt = as_response_format(output_type)
    conversation = list(as_messages(messages))
    attempts: list[StructuredAttempt] = []
    for _ in range(max_repairs + 1):
        response = await model.chat(conversation, response_format=fmt, **chat_options)
        try:
            value = validate_output(output_type, response.text)
        except _Invalid as exc:
            attempts.append(StructuredAttempt(response, tuple(exc.errors)))
            conversation += repair_turns(response, exc.errors)
            continue
        attempts.append(StructuredAttempt(response))
        return StructuredResult(value, tuple(attempts))
    last = attempts[-1]
    raise StructuredOutputError(
        f"{model.name} gave no output matching the {fmt.name if fmt else 'output'} schema in "
        f"{len(attempts)} attempt(s); last errors: {'; '.join(last.errors)}. Simplify the "
        "schema, use a stronger model, or raise max_repairs",
        model=model.name,
        attempts=len(attempts),
        errors=list(last.errors),
        last_output=last.response.text,
    )


def _path(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc) or "(root)"
